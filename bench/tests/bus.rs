//! Correctness of the message-bus benchmark's `xstatenet-bus` side, as the benchmark runs
//! it: a fresh bus and separate client processes per row, tiny counts; every round trip
//! must be answered with its own `n` and every streamed event received. NATS is left out
//! (`--nats-missing`), so no `nats-server` is needed. No timing is checked.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ipcspec-bench");

/// `xstatenet-bus` next to `ipcspec-bench` (same target directory and profile).
/// `cargo test --workspace` (the test command) builds it with every other binary; run
/// alone, this test builds it first.
fn bus_binary() -> PathBuf {
    let profile_dir = Path::new(BIN).parent().unwrap();
    let existing = profile_dir.join("xstatenet-bus");
    if existing.exists() {
        return existing;
    }
    let target_dir = profile_dir.parent().unwrap();
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut build = Command::new(cargo);
    build
        .args(["build", "-p", "ipcspec-xstatenet", "--bin", "xstatenet-bus"])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap());
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        build.arg("--release");
    }
    let status = build.status().unwrap();
    assert!(status.success(), "building xstatenet-bus failed ({status})");
    let bus = profile_dir.join("xstatenet-bus");
    assert!(bus.exists(), "{} is missing after the build", bus.display());
    bus
}

#[test]
fn every_bus_row_delivers_every_event() {
    let bus = bus_binary();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bus.json");
    let output = Command::new(BIN)
        .arg("bus")
        .arg("--bus-bin")
        .arg(&bus)
        .args(["--nats-missing", "not used in tests", "--unpinned-only"])
        .args(["--warmup", "5", "--rtt-count", "20"])
        .args([
            "--stream-count",
            "200",
            "--fan-in",
            "3",
            "--fan-in-count",
            "50",
        ])
        .args(["--rounds", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ipcspec-bench bus failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let runs = results["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let rows = runs[0]["rows"].as_array().unwrap();
    let expected = [
        ("round trip", 20),
        ("request/reply", 20),
        ("one-to-one", 200),
        ("fan-in", 150),
    ];
    assert_eq!(rows.len(), expected.len());
    for (row, (name, count)) in rows.iter().zip(expected) {
        assert_eq!(row["row"], name);
        let bus = &row["bus"];
        assert_eq!(bus["status"], "ok", "{name}: {bus}");
        assert_eq!(bus["report"]["count"], count, "{name}: {bus}");
        assert_eq!(bus["report"]["received"], count, "{name}: {bus}");
        assert!(
            row["nats"]["status"]
                .as_str()
                .unwrap()
                .starts_with("skipped"),
            "{name}: {}",
            row["nats"]
        );
    }
}
