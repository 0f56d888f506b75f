//! Correctness of every benchmark implementation, as the benchmark runs them: server and
//! client in separate processes over a Unix socket, a few round trips and a short
//! pipelined burst; every request must be acknowledged exactly once, successfully, with
//! its own id as `correlationId`. No timing is checked.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ipcspec-bench");

/// Kills the server when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(implementation: &str, socket: &Path) -> Server {
    let mut child = Command::new(BIN)
        .args(["server", "--impl", implementation, "--socket"])
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut ready = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("listening on")
                && let Some(tx) = ready.take()
            {
                tx.send(()).unwrap();
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("the {implementation} server did not start"));
    server
}

fn client(implementation: &str, socket: &Path, mode: &str, count: u64) -> serde_json::Value {
    let output = Command::new(BIN)
        .args(["client", "--impl", implementation, "--mode", mode])
        .args([
            "--count",
            &count.to_string(),
            "--warmup",
            "5",
            "--user",
            "bench",
        ])
        .arg("--socket")
        .arg(socket)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{implementation} {mode} client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn every_implementation_acknowledges_every_request_with_its_id() {
    for implementation in ["raw", "tokio-codec", "tarpc", "runtime"] {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("ipc.sock");
        let _server = start_server(implementation, &socket);
        for (mode, count) in [("rtt", 50), ("throughput", 200)] {
            let report = client(implementation, &socket, mode, count);
            assert_eq!(report["impl"], implementation, "{report}");
            assert_eq!(report["mode"], mode, "{report}");
            assert_eq!(report["count"], count, "{report}");
            assert_eq!(report["acks"], count, "{implementation} {mode}: {report}");
            assert_eq!(
                report["correlated"], count,
                "{implementation} {mode}: {report}"
            );
        }
    }
}

#[test]
fn the_suite_runs_every_row_and_writes_its_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("migration.json");
    let output = Command::new(BIN)
        .args([
            "migration",
            "--unpinned-only",
            "--rounds",
            "2",
            "--user",
            "bench",
        ])
        .args([
            "--warmup",
            "2",
            "--rtt-count",
            "20",
            "--throughput-count",
            "50",
        ])
        .args(["--service-missing", "not built in this test", "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("runtime targets (unpinned)"), "{table}");
    assert!(
        table.contains("(e) durable       skipped: not built in this test"),
        "{table}"
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let rows = results["runs"][0]["rows"].as_array().unwrap();
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        ["ok", "ok", "ok", "ok", "skipped: not built in this test"]
    );
    for row in &rows[..4] {
        assert_eq!(row["rtt"]["correlated"], 20, "{row}");
        assert_eq!(row["throughput"]["correlated"], 50, "{row}");
        assert_eq!(row["rtt_rounds"].as_array().unwrap().len(), 2, "{row}");
        assert_eq!(
            row["throughput_rounds"].as_array().unwrap().len(),
            2,
            "{row}"
        );
    }
    assert_eq!(results["runs"][0]["targets"].as_array().unwrap().len(), 4);
}
