#![allow(clippy::unwrap_used)]
//! The `ipcspec-conformance` command: its exit status (0 all passed, 1 conformance
//! failures, 2 harness errors), selection, expected failures, and the three reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let output = Command::new("sh")
        .arg(root().join("tools/python/venv.sh"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// Runs the runner against the Python service (with `defect`, if any).
fn run(defect: Option<&str>, out: &Path, extra: &[&str]) -> Output {
    let mut command = format!(
        "exec {} {}",
        python().display(),
        root()
            .join("conformance/tests/implementations/migration_service.py")
            .display()
    );
    if let Some(defect) = defect {
        command.push_str(&format!(" --defect {defect}"));
    }
    Command::new(env!("CARGO_BIN_EXE_ipcspec-conformance"))
        .current_dir(root())
        .args(["run", "--spec", "specs/migration.json", "--spawn", &command])
        .args([
            "--capabilities",
            "conformance/capabilities/migration-service.json",
        ])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn last_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn exit_status_and_reports_follow_the_verdicts() {
    let dir = tempfile::tempdir().unwrap();

    // Everything selected passes: 0.
    let out = dir.path().join("pass");
    let output = run(None, &out, &["--group", "heartbeat"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(last_line(&output), "2 passed, 0 failed");

    // A conformance failure: 1, and every report names it.
    let out = dir.path().join("fail");
    let output = run(Some("no-heartbeats"), &out, &["--group", "heartbeat"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(last_line(&output), "1 passed, 1 failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("FAILED     migration/heartbeat/heartbeat-sent"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let case = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "migration/heartbeat/heartbeat-sent")
        .unwrap();
    assert_eq!(case["verdict"], "failed");
    assert!(!case["transcript"].as_array().unwrap().is_empty());
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"1\""), "{junit}");
    let failing = junit
        .lines()
        .find(|l| l.contains("name=\"migration/heartbeat/heartbeat-sent\""))
        .unwrap();
    assert!(failing.contains("<failure message="), "{junit}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("migration/heartbeat/heartbeat-sent") && html.contains("<details"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page loads nothing"
    );

    // The failure expected: 0 (xfail). A case expected to fail that passes: 1.
    let expected = dir.path().join("expected-failures.txt");
    std::fs::write(
        &expected,
        "# known problems\nmigration/heartbeat/heartbeat-sent # this build sends no heartbeats\n",
    )
    .unwrap();
    let out = dir.path().join("xfail");
    let expected_arg = expected.to_str().unwrap();
    let output = run(
        Some("no-heartbeats"),
        &out,
        &["--group", "heartbeat", "--expected-failures", expected_arg],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("xfail"));
    let output = run(
        None,
        &out,
        &["--group", "heartbeat", "--expected-failures", expected_arg],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("XPASS"));
}

#[test]
fn one_case_can_be_selected() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        None,
        dir.path(),
        &["--case", "migration/protocol/duplicate-id"],
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(last_line(&output), "1 passed, 0 failed");
}

#[test]
fn harness_errors_exit_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there.
    let output = Command::new(env!("CARGO_BIN_EXE_ipcspec-conformance"))
        .current_dir(root())
        .args(["run", "--spec", "specs/migration.json", "--connect"])
        .arg(format!("unix:{}", dir.path().join("nobody.sock").display()))
        .args(["--case", "migration/protocol/duplicate-id", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ERROR") && stdout.contains("nothing accepts on"),
        "{stdout}"
    );

    // A scenario file with a mistake names the file and the problem.
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        r#"{"catalogue": "migration", "cases": [{"id": "x"}]}"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ipcspec-conformance"))
        .current_dir(root())
        .args([
            "run",
            "--spec",
            "specs/migration.json",
            "--connect",
            "unix:/nonexistent",
        ])
        .arg("--scenarios")
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.json is not a scenario file") && stderr.contains("missing field"),
        "{stderr}"
    );
}
