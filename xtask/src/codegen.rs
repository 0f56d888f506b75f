//! `cargo xtask codegen [--check]`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use ipcspec_codegen::{Format, check};

use crate::project_root;

/// A file the generator produces, with its full intended contents.
struct Output {
    path: PathBuf,
    contents: String,
}

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

    let outputs = vec![Output {
        path: root.join("specs/catalogue.schema.json"),
        contents: ipcspec_schema::meta::meta_schema_json(),
    }];

    let mut stale = Vec::new();
    for output in &outputs {
        let current = std::fs::read_to_string(&output.path).ok();
        if current.as_deref() == Some(output.contents.as_str()) {
            continue;
        }
        let shown = output
            .path
            .strip_prefix(&root)
            .unwrap_or(&output.path)
            .display()
            .to_string();
        if check_only {
            stale.push(shown);
        } else {
            if let Some(parent) = output.path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&output.path, &output.contents)
                .with_context(|| format!("writing {shown}"))?;
            eprintln!("updated {shown}");
        }
    }
    if !stale.is_empty() {
        bail!(
            "generated files are stale:\n  {}\nrun `cargo xtask codegen` and commit the result",
            stale.join("\n  ")
        );
    }
    eprintln!(
        "codegen: {} catalogue(s) valid, {} file(s) {} in {:.1} ms",
        specs.len(),
        outputs.len(),
        if check_only { "up to date" } else { "written" },
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
