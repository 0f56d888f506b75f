//! `cargo xtask codegen [--check]`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use ipcspec_codegen::emit::vectors;
use ipcspec_codegen::output::{OutputFile, Target, write_all};
use ipcspec_codegen::{Format, check};

use crate::project_root;

/// The catalogues in `specs/`, sorted.
pub fn spec_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("specs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().is_none_or(|n| n != "catalogue.schema.json")
        })
        .collect();
    files.sort();
    Ok(files)
}

pub fn run(check_only: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let root = project_root();
    let specs = spec_files(&root)?;
    if specs.is_empty() {
        bail!("no catalogues in {}", root.join("specs").display());
    }
    // Relative paths keep diagnostics short and identical on every machine.
    let relative: Vec<PathBuf> = specs
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| p.clone())
        })
        .collect();
    let previous = std::env::current_dir()?;
    std::env::set_current_dir(&root)?;
    let report = check(&relative);
    std::env::set_current_dir(previous)?;
    eprint!(
        "{}",
        report.render(Format::Human, ipcspec_codegen::stderr_wants_color())
    );
    if !report.ok() {
        bail!(
            "{} error(s) in the catalogues; fix them, then run `cargo xtask codegen` again",
            report.error_count()
        );
    }

    let mut files = match ipcspec_codegen::generate(&report.loaded, &Target::ALL) {
        Ok(files) => files,
        Err(error) => bail!("{error}"),
    };
    // The meta-schema lives beside the catalogues, outside generated/.
    let meta = OutputFile {
        target: Target::Docs,
        path: String::new(),
        contents: ipcspec_schema::meta::meta_schema_json(),
    };
    let generated = root.join("generated");
    let dirs = |target: Target| generated.join(target.dir());
    let written = write_all(&root, &dirs, &files, check_only, &[]).context("writing generated/")?;
    let meta_path = root.join("specs/catalogue.schema.json");
    let meta_stale =
        std::fs::read_to_string(&meta_path).ok().as_deref() != Some(meta.contents.as_str());
    if meta_stale && !check_only {
        std::fs::write(&meta_path, &meta.contents)
            .context("writing specs/catalogue.schema.json")?;
    }
    files.push(meta);
    let mut stale: Vec<String> = written
        .changed
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    if meta_stale {
        stale.push("specs/catalogue.schema.json".into());
    }
    // The conformance vectors and their schema live in conformance/, outside generated/.
    let conformance = conformance_vectors(&root, &report.loaded, check_only)?;
    stale.extend(conformance.stale);
    stale.extend(
        written
            .removed
            .iter()
            .map(|p| format!("{} (no longer generated)", p.display())),
    );
    if check_only && !stale.is_empty() {
        bail!(
            "generated files are stale:\n  {}\nrun `cargo xtask codegen` and commit the result",
            stale.join("\n  ")
        );
    }
    for path in &stale {
        eprintln!("updated {path}");
    }
    eprintln!(
        "codegen: {} catalogue(s) valid, {} file(s) {}, {} changed, in {:.1} ms",
        specs.len(),
        files.len() + conformance.files,
        if check_only { "checked" } else { "generated" },
        stale.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

/// What syncing the conformance vectors found.
struct Conformance {
    /// Files produced (vectors files, their schema, the retired list).
    files: usize,
    /// Files that were (or, under check, would be) written or removed.
    stale: Vec<String>,
}

/// Regenerates `conformance/vectors/<catalogue>.json` and
/// `conformance/schema/vectors.schema.json` (or, under check, lists the stale ones), and
/// appends the ids of vectors that are no longer generated to
/// `conformance/vectors/retired.txt`, so that no id is ever reused.
fn conformance_vectors(
    root: &Path,
    loaded: &[ipcspec_schema::Loaded],
    check_only: bool,
) -> anyhow::Result<Conformance> {
    let mut modules = Vec::new();
    for l in loaded {
        let catalogue = l.valid().context("an invalid catalogue")?;
        let mut module = match ipcspec_codegen::ir::lower(catalogue) {
            Ok(module) => module,
            Err(_) => bail!("{}: names collide", l.source.path.display()),
        };
        if let Some(name) = l.source.path.file_name() {
            module.source = name.to_string_lossy().into_owned();
        }
        modules.push(module);
    }
    modules.sort_by(|a, b| a.name.cmp(&b.name));

    let retired_path = root.join(vectors::RETIRED_PATH);
    let retired_text = std::fs::read_to_string(&retired_path)
        .with_context(|| format!("reading {}", vectors::RETIRED_PATH))?;
    let retired = vectors::parse_retired(&retired_text);
    let generated = vectors::emit(&modules, &retired).context("generating conformance vectors")?;

    let mut stale = Vec::new();
    // Ids in the files on disk that are no longer generated are retired.
    let produced: BTreeSet<&str> = generated.iter().map(|f| f.path.as_str()).collect();
    let mut new_ids = BTreeSet::new();
    for file in &generated {
        new_ids.extend(vectors::ids_in(&file.contents)?);
    }
    let mut gone = BTreeSet::new();
    let dir = root.join(vectors::VECTORS_DIR);
    let mut on_disk: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    on_disk.sort();
    for path in &on_disk {
        let relative = path
            .strip_prefix(root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.display().to_string());
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {relative}"))?;
        let ids = vectors::ids_in(&text).with_context(|| {
            format!("{relative} is not a vectors file (restore it from git before regenerating, so its ids can be retired)")
        })?;
        gone.extend(
            ids.into_iter()
                .filter(|id| !new_ids.contains(id) && !retired.contains(id)),
        );
        if !produced.contains(relative.as_str()) {
            if !check_only {
                std::fs::remove_file(path).with_context(|| format!("removing {relative}"))?;
            }
            stale.push(format!("{relative} (no longer generated)"));
        }
    }

    let mut outputs: Vec<(String, String)> = generated
        .into_iter()
        .map(|f| (f.path, f.contents))
        .collect();
    outputs.push((vectors::SCHEMA_PATH.to_owned(), vectors::schema_text()));
    outputs.push((
        vectors::RETIRED_PATH.to_owned(),
        vectors::retire(&retired_text, &gone),
    ));
    let files = outputs.len();
    for (path, contents) in outputs {
        let full = root.join(&path);
        if std::fs::read_to_string(&full).ok().as_deref() == Some(contents.as_str()) {
            continue;
        }
        if !check_only {
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&full, contents).with_context(|| format!("writing {path}"))?;
        }
        stale.push(path);
    }
    Ok(Conformance { files, stale })
}
