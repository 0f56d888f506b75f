//! Generated files and writing them: the one helper every emitter goes through.
//!
//! Output is deterministic (emitters iterate the IR in order, never a hash map), so a
//! second run is byte-identical. Under `--check` nothing is written and every file whose
//! contents differ is listed.

use std::path::{Path, PathBuf};

/// Which output tree a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// The Rust crate (`generated/rust`).
    Rust,
    /// C headers (`generated/c`).
    C,
    /// TypeScript definitions (`generated/ts`).
    Ts,
    /// JSON Schemas (`generated/jsonschema`).
    JsonSchema,
    /// Documentation (`generated/docs`).
    Docs,
}

impl Target {
    /// Every target, in output order.
    pub const ALL: [Target; 5] = [
        Target::Rust,
        Target::C,
        Target::Ts,
        Target::JsonSchema,
        Target::Docs,
    ];

    /// The directory name under `generated/`.
    pub fn dir(self) -> &'static str {
        match self {
            Target::Rust => "rust",
            Target::C => "c",
            Target::Ts => "ts",
            Target::JsonSchema => "jsonschema",
            Target::Docs => "docs",
        }
    }
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// The tree it belongs to.
    pub target: Target,
    /// Path inside that tree, with `/` separators (`src/migration.rs`).
    pub path: String,
    /// Full contents.
    pub contents: String,
}

/// What writing (or checking) a set of files found.
#[derive(Debug, Default)]
pub struct WriteReport {
    /// Files written (or, under check, that would be).
    pub changed: Vec<PathBuf>,
    /// Files already up to date.
    pub unchanged: usize,
    /// Files in the output trees that no emitter produces any more (deleted, or listed
    /// under check).
    pub removed: Vec<PathBuf>,
}

/// Writes `files` under `root/<target dir>` (or checks them when `check` is set). Files
/// found in a target directory that are not produced are stale: removed, or reported
/// under check. Directories listed in `keep` (e.g. `rust/tests`) are left alone.
pub fn write_all(
    root: &Path,
    dirs: &dyn Fn(Target) -> PathBuf,
    files: &[OutputFile],
    check: bool,
    keep: &[&str],
) -> std::io::Result<WriteReport> {
    let mut report = WriteReport::default();
    let mut produced = std::collections::BTreeSet::new();
    for file in files {
        let path = dirs(file.target).join(&file.path);
        produced.insert(path.clone());
        let current = std::fs::read(&path).ok();
        if current.as_deref() == Some(file.contents.as_bytes()) {
            report.unchanged += 1;
            continue;
        }
        if !check {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, &file.contents)?;
        }
        report
            .changed
            .push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
    }
    let targets: std::collections::BTreeSet<Target> = files.iter().map(|f| f.target).collect();
    for target in targets {
        let dir = dirs(target);
        for path in walk(&dir)? {
            let relative = path.strip_prefix(&dir).unwrap_or(&path);
            let kept = keep
                .iter()
                .any(|k| Path::new(target.dir()).join(relative).starts_with(k));
            if produced.contains(&path) || kept {
                continue;
            }
            if !check {
                std::fs::remove_file(&path)?;
            }
            report
                .removed
                .push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(report)
}

fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
