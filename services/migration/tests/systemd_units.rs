#![allow(clippy::unwrap_used)]
//! The shipped systemd units start what they claim: their `ExecStart` lines, with the
//! production paths moved into a temporary directory, run the real binaries to a
//! working service and agent, and the units pass `systemd-analyze verify` (`cargo xtask
//! test` installs it; without it the test fails saying how to install it).

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{AGENT, HANG, SERVICE, shared_dir};

/// The arguments of the unit's `ExecStart` (after the binary), with the catalogue's
/// production paths moved under `dir`.
fn exec_start(unit: &str, dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("systemd")
            .join(unit),
    )
    .unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("{unit} has no ExecStart"));
    let dir = dir.display().to_string();
    line.split_whitespace()
        .skip(1)
        .map(|arg| {
            arg.replace("/run/migration-service", &dir)
                .replace("/var/lib/migration-service", &dir)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_units_exec_start_lines_run_a_working_service_and_agent() {
    let dir = shared_dir();
    let args = exec_start("migration-service.service", dir.path());
    assert!(args.contains(&"--socket-mode".to_owned()), "{args:?}");
    let mut service = tokio::process::Command::new(SERVICE)
        .args(&args)
        .env_remove("NOTIFY_SOCKET")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let socket = dir.path().join("ipc.sock");
    let ready = tokio::time::timeout(HANG, async {
        while !socket.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "the service from the unit never listened");
    // The production mode: every user may connect.
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o666);

    let mut agent = tokio::process::Command::new(AGENT)
        .args(exec_start("migration-agent.service", dir.path()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = agent.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let first = tokio::time::timeout(HANG, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("the agent printed nothing");
    assert!(first.contains("ACKNOWLEDGMENT"), "{first}");
    // `run --stay` keeps the agent connected although its stdin is empty.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(agent.try_wait().unwrap().is_none(), "the agent exited");
    // The operator asks it to exit: it does, with 0 (so systemd does not restart it).
    let db = dir.path().join("state.db");
    let push = tokio::process::Command::new(SERVICE)
        .args(["push", "--all", "--db"])
        .arg(&db)
        .args(["shutdown", "--grace-seconds", "1"])
        .output()
        .await
        .unwrap();
    assert!(push.status.success());
    let status = tokio::time::timeout(HANG, agent.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    service.start_kill().unwrap();
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    let version = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run systemd-analyze ({error}): install it (Debian/Ubuntu: \
                 `apt-get install systemd`; `cargo xtask test` does this when it is missing)"
            )
        });
    assert!(version.status.success(), "systemd-analyze --version failed");
    let dir = shared_dir();
    for (unit, binary, name) in [
        (
            "migration-service.service",
            SERVICE,
            "/usr/bin/migration-service",
        ),
        ("migration-agent.service", AGENT, "/usr/bin/migration-agent"),
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("systemd")
                .join(unit),
        )
        .unwrap();
        let copy = dir.path().join(unit);
        std::fs::write(&copy, text.replace(name, binary)).unwrap();
        let output = std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&copy)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && !stderr.contains(unit),
            "systemd-analyze verify {unit}: {stderr}"
        );
    }
}
