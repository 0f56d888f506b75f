//! Every emitter's output for the fixture catalogues, pinned with insta. The fixtures use
//! every construct of the language (`everything.json` on a JSON wire, `binwire.json` on a
//! binary one), so a change in any emitter shows up here for review.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::path::Path;

use ipcspec_codegen::output::Target;

fn generate(fixture: &str) -> Vec<ipcspec_codegen::output::OutputFile> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let loaded = ipcspec_schema::load_file(&path);
    assert!(
        loaded.is_ok(),
        "{fixture} has diagnostics: {:?}",
        loaded.diagnostics
    );
    ipcspec_codegen::generate(&[loaded], &Target::ALL).unwrap()
}

fn snapshot_all(fixture: &str) {
    let stem = fixture.trim_end_matches(".json");
    let files = generate(fixture);
    let targets: std::collections::BTreeSet<Target> = files.iter().map(|f| f.target).collect();
    assert_eq!(
        targets.len(),
        Target::ALL.len(),
        "every emitter produced output for {fixture}"
    );
    for file in files {
        let name = format!(
            "{stem}__{}__{}",
            file.target.dir(),
            file.path.replace('/', "__")
        );
        insta::assert_snapshot!(name, file.contents);
    }
}

#[test]
fn everything_json_wire() {
    snapshot_all("everything.json");
}

#[test]
fn binwire_binary_wire() {
    snapshot_all("binwire.json");
}

#[test]
fn generation_is_deterministic() {
    for fixture in ["everything.json", "binwire.json"] {
        assert_eq!(
            generate(fixture),
            generate(fixture),
            "{fixture}: two runs differ"
        );
    }
}

/// The checked-in `generated/` tree is what the generator produces for `specs/` now: a
/// test that fails when someone edits a catalogue or an emitter and forgets to run
/// `cargo xtask codegen` (CI also runs `cargo xtask codegen --check`).
#[test]
fn checked_in_generated_tree_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut specs: Vec<_> = std::fs::read_dir(root.join("specs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json") && !p.ends_with("catalogue.schema.json")
        })
        .collect();
    specs.sort();
    let loaded: Vec<_> = specs.iter().map(|p| ipcspec_schema::load_file(p)).collect();
    let files = ipcspec_codegen::generate(&loaded, &Target::ALL).unwrap();
    let stale: Vec<String> = files
        .iter()
        .filter(|f| {
            let path = root.join("generated").join(f.target.dir()).join(&f.path);
            std::fs::read_to_string(path).ok().as_deref() != Some(f.contents.as_str())
        })
        .map(|f| format!("generated/{}/{}", f.target.dir(), f.path))
        .collect();
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; run `cargo xtask codegen` and commit the result"
    );
}
