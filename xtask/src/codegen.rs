//! `cargo xtask codegen [--check]`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use ipcspec_codegen::emit::{self, vectors};
use ipcspec_codegen::output::{OutputFile, Target, write_all};
use ipcspec_codegen::{Format, check_in};

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
    let report = check_in(&root, &relative);
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

    // Each catalogue is lowered once; every emitter, the vectors included, reads the same
    // modules, and every file goes through `write_all`.
    let modules = ipcspec_codegen::lower(&report.loaded).map_err(|e| anyhow!("{e}"))?;
    let mut files = emit::emit(&modules, &Target::REPOSITORY).context("generating")?;
    files.push(retired_ids(&root, &files)?);
    let dirs = |target: Target| root.join(target.repository_dir());
    let written = write_all(&root, &dirs, &files, check_only, &[]).context("writing")?;

    let stale: Vec<String> = written
        .changed
        .iter()
        .map(|p| p.display().to_string())
        .chain(
            written
                .removed
                .iter()
                .map(|p| format!("{} (no longer generated)", p.display())),
        )
        .collect();
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
        files.len(),
        if check_only { "checked" } else { "generated" },
        stale.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

/// `conformance/vectors/retired.txt` with the ids of the vectors files on disk that are no
/// longer generated appended, so that no id is ever reused; fails when a generated vector
/// takes a retired id.
fn retired_ids(root: &Path, files: &[OutputFile]) -> anyhow::Result<OutputFile> {
    let retired_text = std::fs::read_to_string(root.join(vectors::RETIRED_PATH))
        .with_context(|| format!("reading {}", vectors::RETIRED_PATH))?;
    let retired = vectors::parse_retired(&retired_text);
    vectors::refuse_retired(files, &retired)?;

    let mut new_ids = BTreeSet::new();
    for file in files.iter().filter(|f| f.target == Target::Vectors) {
        new_ids.extend(vectors::ids_in(&file.contents)?);
    }
    let dir = root.join(vectors::VECTORS_DIR);
    let mut on_disk: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    on_disk.sort();
    let mut gone = BTreeSet::new();
    for path in &on_disk {
        let relative = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {relative}"))?;
        let ids = vectors::ids_in(&text).with_context(|| {
            format!("{relative} is not a vectors file (restore it from git before regenerating, so its ids can be retired)")
        })?;
        gone.extend(
            ids.into_iter()
                .filter(|id| !new_ids.contains(id) && !retired.contains(id)),
        );
    }
    Ok(OutputFile {
        target: Target::Vectors,
        path: "retired.txt".into(),
        contents: vectors::retire(&retired_text, &gone),
    })
}
