//! The catalogue language end to end: the four specs load clean, each broken catalogue
//! gives exactly its expected diagnostic (rendered output pinned by insta), and the
//! meta-schema agrees with the loader.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::path::{Path, PathBuf};

use ipcspec_schema::render::{Style, render, render_short};
use ipcspec_schema::{load_file, load_str};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn spec_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("specs"))
        .expect("specs/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json") && !p.ends_with("catalogue.schema.json")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_four_seed_catalogues_load_without_any_diagnostic() {
    let files = spec_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "direct-ipc.json",
        "migration.json",
        "vexfs.json",
        "xstatenet.json",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "specs/{expected} is missing"
        );
    }
    for file in files {
        let loaded = load_file(&file);
        assert!(
            loaded.diagnostics.is_empty() && loaded.catalogue.is_some(),
            "{} has diagnostics:\n{}",
            file.display(),
            render(&loaded.source, &loaded.diagnostics, Style::Plain)
        );
    }
}

#[test]
fn fixtures_are_valid() {
    for name in ["minimal.json", "binary.json"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let loaded = load_file(&path);
        assert!(
            loaded.is_ok() && loaded.diagnostics.is_empty(),
            "{name}:\n{}",
            render(&loaded.source, &loaded.diagnostics, Style::Plain)
        );
    }
}

/// Each file in `tests/broken/` is named `<code>__<case>.json` and must produce the
/// diagnostic `ipcspec::<code>`, and no error of any other code, so every case tests
/// exactly one rule. The full rendering is a snapshot.
#[test]
fn broken_catalogues_give_their_expected_diagnostic() {
    insta::glob!("broken/*.json", |path| {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (code, _) = stem
            .split_once("__")
            .expect("file named <code>__<case>.json");
        let expected = format!("ipcspec::{code}");
        let text = std::fs::read_to_string(path).unwrap();
        let shown = PathBuf::from("broken").join(path.file_name().unwrap());
        let loaded = load_str(&shown, text);
        assert!(!loaded.is_ok(), "{stem} loaded without error");
        let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code).collect();
        assert!(
            codes.contains(&expected.as_str()),
            "{stem}: expected {expected}, got {codes:?}"
        );
        for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
            assert_eq!(
                d.code, expected,
                "{stem}: unexpected extra error: {}",
                d.message
            );
        }
        for d in &loaded.diagnostics {
            assert!(
                d.help.is_some(),
                "{stem}: diagnostic without a fix hint: {}",
                d.message
            );
            assert!(
                !d.labels.is_empty(),
                "{stem}: diagnostic without a location: {}",
                d.message
            );
        }
        let rendered = format!(
            "{}\n{}",
            render_short(&loaded.source, &loaded.diagnostics),
            render(&loaded.source, &loaded.diagnostics, Style::Plain)
        );
        insta::assert_snapshot!(rendered);
    });
}

#[test]
fn several_shape_errors_are_reported_in_one_run() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/shape__several-items.json");
    let loaded = load_file(&path);
    assert_eq!(loaded.diagnostics.len(), 2, "{:#?}", loaded.diagnostics);
}

fn meta_validator() -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(&ipcspec_schema::meta::meta_schema_json()).unwrap();
    jsonschema::validator_for(&schema).expect("the meta-schema is a valid JSON Schema")
}

#[test]
fn meta_schema_accepts_the_catalogues_and_rejects_a_broken_one() {
    let validator = meta_validator();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut valid = spec_files();
    valid.push(fixtures.join("minimal.json"));
    valid.push(fixtures.join("binary.json"));
    for file in valid {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
    for broken in [
        "shape__unknown-field",
        "shape__missing-doc",
        "shape__unknown-kind",
    ] {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/broken/{broken}.json"));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert!(
            !validator.is_valid(&doc),
            "the meta-schema accepted {broken}"
        );
    }
}

#[test]
fn checked_in_meta_schema_is_fresh() {
    let path = root().join("specs/catalogue.schema.json");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == ipcspec_schema::meta::meta_schema_json(),
        "specs/catalogue.schema.json is stale: run `cargo xtask codegen` and commit the result"
    );
}
