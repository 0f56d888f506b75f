#![allow(clippy::unwrap_used)]
//! The scenario files themselves: they follow the checked-in schema (which is the one the
//! runner's types generate), their ids are unique, and every requirement they cite is an
//! anchor of the generated docs.

use std::path::{Path, PathBuf};

use ipcspec_conformance::run::load_scenarios;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("conformance/scenarios"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

#[test]
fn the_checked_in_schema_is_the_one_the_runner_generates() {
    let generated = serde_json::to_string_pretty(&schemars::schema_for!(
        ipcspec_conformance::scenario::ScenarioFile
    ))
    .unwrap()
        + "\n";
    let path = root().join("conformance/schema/scenarios.schema.json");
    let checked_in = std::fs::read_to_string(&path).unwrap();
    assert!(
        checked_in == generated,
        "{} is stale: run `cargo run -p ipcspec-conformance -- schema > conformance/schema/scenarios.schema.json`",
        path.display()
    );
}

#[test]
fn every_scenario_file_follows_the_schema_and_cites_real_anchors() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("conformance/schema/scenarios.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for path in scenario_files() {
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        let file = load_scenarios(&path).unwrap();
        for case in &file.cases {
            assert!(
                case.id.starts_with(&format!("{}/", file.catalogue)),
                "{}: case id {} does not start with the catalogue's name",
                path.display(),
                case.id
            );
            assert!(!case.cites.is_empty(), "{} cites nothing", case.id);
            for cite in &case.cites {
                let (page, anchor) = cite.split_once('#').unwrap();
                let docs = std::fs::read_to_string(root().join("generated/docs").join(page))
                    .unwrap_or_else(|e| panic!("{}: {cite}: {e}", case.id));
                assert!(
                    docs.contains(&format!("<a id=\"{anchor}\"></a>")),
                    "{} cites {cite}, which is no anchor of generated/docs/{page}",
                    case.id
                );
            }
        }
    }
}

#[test]
fn a_duplicate_case_id_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.json");
    let case = serde_json::json!({"id": "x/a/b", "title": "t", "group": "a", "level": "must",
        "role": "server", "cites": ["x.md#a"], "steps": []});
    std::fs::write(
        &path,
        serde_json::json!({"catalogue": "x", "cases": [case.clone(), case]}).to_string(),
    )
    .unwrap();
    let error = load_scenarios(&path).unwrap_err().to_string();
    assert!(error.contains("`x/a/b` appears twice"), "{error}");
}

#[test]
fn patterns_match_by_subset_with_wildcards() {
    use ipcspec_conformance::engine::matches;
    use serde_json::json;
    let actual = json!({"type": "ACK", "payload": {"success": true, "code": null}, "id": "1"});
    assert!(matches(&json!({"type": "ACK"}), &actual));
    assert!(matches(&json!({"payload": {"success": true}}), &actual));
    assert!(matches(
        &json!({"id": "$any", "missing": "$absent"}),
        &actual
    ));
    assert!(!matches(&json!({"id": "$absent"}), &actual));
    assert!(!matches(&json!({"payload": {"success": false}}), &actual));
    assert!(!matches(&json!({"other": "$any"}), &actual));
}
