//! `cargo xtask codegen [--check]`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
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
        files.len(),
        if check_only { "checked" } else { "generated" },
        stale.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
