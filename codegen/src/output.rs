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
    /// The catalogue language's meta-schema (`specs/catalogue.schema.json`).
    MetaSchema,
    /// The conformance vectors and their retired ids (`conformance/vectors`).
    Vectors,
    /// The JSON Schema of the vectors format (`conformance/schema`).
    VectorsSchema,
}

impl Target {
    /// The targets under `generated/`, in output order: what `ipcspec generate` writes.
    pub const ALL: [Target; 5] = [
        Target::Rust,
        Target::C,
        Target::Ts,
        Target::JsonSchema,
        Target::Docs,
    ];

    /// Every file this repository derives from its catalogues: [`Target::ALL`], then the
    /// meta-schema and the conformance files (`cargo xtask codegen`).
    pub const REPOSITORY: [Target; 8] = [
        Target::Rust,
        Target::C,
        Target::Ts,
        Target::JsonSchema,
        Target::Docs,
        Target::MetaSchema,
        Target::Vectors,
        Target::VectorsSchema,
    ];

    /// The directory name under `generated/` (for the targets outside it, the last
    /// component of [`Target::repository_dir`]).
    pub fn dir(self) -> &'static str {
        match self {
            Target::Rust => "rust",
            Target::C => "c",
            Target::Ts => "ts",
            Target::JsonSchema => "jsonschema",
            Target::Docs => "docs",
            Target::MetaSchema => "specs",
            Target::Vectors => "vectors",
            Target::VectorsSchema => "schema",
        }
    }

    /// The target's directory relative to the repository root.
    pub fn repository_dir(self) -> &'static str {
        match self {
            Target::Rust => "generated/rust",
            Target::C => "generated/c",
            Target::Ts => "generated/ts",
            Target::JsonSchema => "generated/jsonschema",
            Target::Docs => "generated/docs",
            Target::MetaSchema => "specs",
            Target::Vectors => "conformance/vectors",
            Target::VectorsSchema => "conformance/schema",
        }
    }

    /// Whether a file at `relative` (inside the target's directory) is derived, so that it
    /// is removed when no emitter produces it any more. The trees under `generated/` are
    /// derived whole; `conformance/vectors` shares its directory with its README, so only
    /// its top-level `.json` files are; `specs/` and `conformance/schema` hold hand-written
    /// files beside the derived one, so nothing there is removed.
    pub fn derives(self, relative: &Path) -> bool {
        match self {
            Target::Rust | Target::C | Target::Ts | Target::JsonSchema | Target::Docs => true,
            Target::Vectors => {
                relative.components().count() == 1
                    && relative.extension().is_some_and(|e| e == "json")
            }
            Target::MetaSchema | Target::VectorsSchema => false,
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
            let kept = !target.derives(relative)
                || keep
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

    use super::*;

    fn file(target: Target, path: &str) -> OutputFile {
        OutputFile {
            target,
            path: path.into(),
            contents: "{}\n".into(),
        }
    }

    #[test]
    fn stale_files_are_removed_only_where_the_target_derives_them() {
        let root = std::env::temp_dir().join(format!("ipcspec-output-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let vectors = root.join("conformance/vectors");
        let specs = root.join("specs");
        std::fs::create_dir_all(&vectors).unwrap();
        std::fs::create_dir_all(&specs).unwrap();
        std::fs::write(vectors.join("README.md"), "hand-written\n").unwrap();
        std::fs::write(vectors.join("old.json"), "{}\n").unwrap();
        std::fs::write(specs.join("migration.json"), "{}\n").unwrap();
        let files = [
            file(Target::Vectors, "new.json"),
            file(Target::MetaSchema, "catalogue.schema.json"),
        ];
        let dirs = |target: Target| root.join(target.repository_dir());

        let checked = write_all(&root, &dirs, &files, true, &[]).unwrap();
        assert_eq!(
            checked.removed,
            vec![PathBuf::from("conformance/vectors/old.json")]
        );
        assert_eq!(checked.changed.len(), 2);
        assert!(vectors.join("old.json").exists(), "a check writes nothing");
        assert!(!vectors.join("new.json").exists(), "a check writes nothing");

        write_all(&root, &dirs, &files, false, &[]).unwrap();
        assert!(!vectors.join("old.json").exists());
        assert!(vectors.join("new.json").exists());
        assert!(specs.join("catalogue.schema.json").exists());
        assert!(vectors.join("README.md").exists(), "not derived, kept");
        assert!(specs.join("migration.json").exists(), "not derived, kept");

        let again = write_all(&root, &dirs, &files, false, &[]).unwrap();
        assert!(again.changed.is_empty() && again.removed.is_empty());
        assert_eq!(again.unchanged, 2);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
