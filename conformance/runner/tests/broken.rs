#![allow(clippy::unwrap_used)]
//! The suite can fail, and fails precisely: a second Migration service, written in Python
//! against the generated JSON Schema (`conformance/tests/implementations/`), passes every
//! case without defect, and with each deliberate defect fails exactly the cases
//! `expected.json` lists for it, no more and no fewer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ipcspec_conformance::engine::{Context, Target, Verdict};
use ipcspec_conformance::run::{Selection, load_scenarios, run};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python, with `jsonschema` (tools/python/venv.sh creates it).
fn python() -> PathBuf {
    let script = root().join("tools/python/venv.sh");
    let output = Command::new("sh").arg(&script).output().unwrap();
    assert!(
        output.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// Runs the Migration suite against the Python service with `defect` and returns the ids
/// of the cases that did not pass.
fn failing_cases(python: &Path, defect: &str) -> BTreeSet<String> {
    let root = root();
    let file = load_scenarios(&root.join("conformance/scenarios/migration.json")).unwrap();
    let ctx = Context::new(
        &root.join("specs/migration.json"),
        Some(&root.join("conformance/capabilities/migration-service.json")),
        ipcspec_conformance::engine::default_other_user(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let flag = if defect == "none" {
        String::new()
    } else {
        format!(" --defect {defect}")
    };
    let command = format!(
        "exec {} {}{flag}",
        python.display(),
        root.join("conformance/tests/implementations/migration_service.py")
            .display()
    );
    let mut target = Target::Spawn {
        command: command.clone(),
        socket: dir.path().join("impl.sock"),
        log: dir.path().join("implementation.log"),
        child: None,
    };
    // Server cases only: the Python implementation is a service.
    let selection = Selection {
        strict: true,
        ..Selection::default()
    };
    let report = run(
        &ctx,
        &file,
        &mut target,
        &command,
        &selection,
        &BTreeMap::new(),
    );
    target.stop();
    let report = report.unwrap();
    assert_eq!(
        report.summary.errors,
        0,
        "harness errors with {defect}: {}",
        report.human()
    );
    report
        .cases
        .iter()
        .filter(|case| case.verdict != Verdict::Skipped && !case.verdict.passed())
        .map(|case| case.id.clone())
        .collect()
}

#[test]
fn each_broken_implementation_is_caught_by_exactly_its_cases() {
    let expected: BTreeMap<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(root().join("conformance/tests/implementations/expected.json"))
            .unwrap(),
    )
    .unwrap();
    let python = python();
    // The runs are independent (own process, own socket): run them side by side.
    let runs: Vec<(
        String,
        BTreeSet<String>,
        std::thread::JoinHandle<BTreeSet<String>>,
    )> = expected
        .iter()
        .filter(|(defect, _)| !defect.starts_with('$'))
        .map(|(defect, cases)| {
            let want: BTreeSet<String> = cases
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect();
            let (python, name) = (python.clone(), defect.clone());
            (
                defect.clone(),
                want,
                std::thread::spawn(move || failing_cases(&python, &name)),
            )
        })
        .collect();
    assert!(
        runs.len() >= 6,
        "expected.json lists {} implementations",
        runs.len()
    );
    let mut problems = Vec::new();
    for (defect, want, run) in runs {
        let got = run.join().unwrap();
        if got != want {
            problems.push(format!(
                "{defect}: missed {:?}; also failed {:?}",
                want.difference(&got).collect::<Vec<_>>(),
                got.difference(&want).collect::<Vec<_>>()
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
