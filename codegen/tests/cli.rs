//! `ipcspec check` as a user runs it: a real process, real files, exit codes.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ipcspec(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ipcspec"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("ipcspec runs")
}

#[test]
fn check_accepts_the_four_catalogues() {
    let out = ipcspec(&[
        "check",
        "specs/migration.json",
        "specs/vexfs.json",
        "specs/direct-ipc.json",
        "specs/xstatenet.json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("4 catalogue(s) OK"), "{stderr}");
}

#[test]
fn check_fails_with_located_diagnostics() {
    let out = ipcspec(&[
        "check",
        "--format",
        "short",
        "specs/migration.json",
        "schema/tests/broken/unknown-type__payload.json",
        "schema/tests/broken/syntax__comment.json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("schema/tests/broken/unknown-type__payload.json:")
            && stderr.contains(
                "error[ipcspec::unknown-type]: unknown type `Txt` (did you mean `Text`?)"
            ),
        "{stderr}"
    );
    assert!(
        stderr.contains("schema/tests/broken/syntax__comment.json:2:3: error[ipcspec::syntax]"),
        "{stderr}"
    );
    assert!(stderr.contains("2 error(s) in 2 file(s)"), "{stderr}");
}

#[test]
fn check_reports_a_missing_file() {
    let out = ipcspec(&["check", "specs/no-such-catalogue.json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read specs/no-such-catalogue.json"),
        "{stderr}"
    );
}

#[test]
fn generate_writes_every_target_for_an_outside_catalogue() {
    let out = std::env::temp_dir().join(format!("ipcspec-cli-generate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let dir = |name: &str| out.join(name).display().to_string();
    let (rust, c, ts, schema, docs) =
        (dir("rust"), dir("c"), dir("ts"), dir("schema"), dir("docs"));
    let result = ipcspec(&[
        "generate",
        "--rust",
        &rust,
        "--c",
        &c,
        "--ts",
        &ts,
        "--jsonschema",
        &schema,
        "--docs",
        &docs,
        "specs/migration.json",
    ]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    // The same bytes as the checked-in tree for this catalogue.
    for (generated, written) in [
        ("generated/c/migration.h", out.join("c/migration.h")),
        ("generated/ts/migration.ts", out.join("ts/migration.ts")),
        (
            "generated/jsonschema/migration.schema.json",
            out.join("schema/migration.schema.json"),
        ),
        ("generated/docs/migration.md", out.join("docs/migration.md")),
        (
            "generated/rust/src/migration.rs",
            out.join("rust/src/migration.rs"),
        ),
    ] {
        let expected = std::fs::read_to_string(root().join(generated)).unwrap();
        let actual = std::fs::read_to_string(&written).unwrap();
        assert!(
            expected == actual,
            "{} differs from {generated}",
            written.display()
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn generate_refuses_an_invalid_catalogue_and_writes_nothing() {
    let out = std::env::temp_dir().join(format!("ipcspec-cli-refuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let target = out.display().to_string();
    let result = ipcspec(&[
        "generate",
        "--c",
        &target,
        "schema/tests/broken/unknown-type__payload.json",
    ]);
    assert_eq!(result.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&result.stderr).contains("nothing generated"));
    assert!(!out.exists());
}
