#![allow(clippy::unwrap_used)]
//! Every transition the XStateNet catalogue declares is taken by the bus, or listed here
//! with the reason. The real `xstatenet-bus` runs with `IPCSPEC_TRANSITION_LOG` set, so
//! the generated machine writes each transition it allows; the log is compared with the
//! catalogue's tables (`MACHINES`) both ways.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

use common::{BUS, HANG};
use ipcspec_generated::xstatenet;
use ipcspec_runtime::machine::TRANSITION_LOG_ENV;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Declared transitions no test takes yet, with the reason.
const NOT_TAKEN: &[(&str, &str)] = &[
    (
        "ServiceLifecycle: Running --event healthCheckFailed--> Unhealthy",
        "not implemented yet: the bus's periodic check closes dead peers but does not yet \
         judge the bus itself (accept failures, MaxConnections reached)",
    ),
    (
        "ServiceLifecycle: Unhealthy --event healthCheckPassed--> Running",
        "not implemented yet: the bus never becomes Unhealthy (see healthCheckFailed)",
    ),
    (
        "ServiceLifecycle: Unhealthy --event stop--> Stopping",
        "not implemented yet: the bus never becomes Unhealthy (see healthCheckFailed)",
    ),
];

/// Machines whose transitions this test does not check yet, with the reason.
const NOT_CHECKED: &[(&str, &str)] = &[(
    "ClientConnection",
    "not implemented yet: the client library (src/client.rs) does not drive the generated \
     machine; its reconnecting client reports the events it would move on",
)];

fn bus(socket: &Path, log: &Path) -> Command {
    let mut command = Command::new(BUS);
    command
        .arg("--socket")
        .arg(socket)
        .arg("--config")
        .arg(socket.parent().unwrap())
        .env(TRANSITION_LOG_ENV, log)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn until_listening(child: &mut Child) {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::time::timeout(HANG, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("listening on") {
                return;
            }
        }
        panic!("the bus exited before listening");
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_declared_transition_is_taken_or_listed() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bus.sock");
    let log = dir.path().join("transitions.log");

    // Starting --listening--> Running, then SIGTERM: --stop--> Stopping --closed--> Stopped.
    let mut running = bus(&socket, &log).spawn().unwrap();
    until_listening(&mut running).await;
    // A second bus on the same live socket cannot listen: Starting --error--> Stopped.
    let second = bus(&socket, &log).output();
    let second = tokio::time::timeout(HANG, second).await.unwrap().unwrap();
    assert!(!second.status.success());
    let pid = running.id().expect("the bus is running");
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(HANG, running.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());

    let taken: BTreeSet<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let listed: BTreeSet<String> = NOT_TAKEN.iter().map(|(t, _)| (*t).to_owned()).collect();
    let checked: Vec<_> = xstatenet::MACHINES
        .iter()
        .filter(|m| NOT_CHECKED.iter().all(|(name, _)| *name != m.name))
        .collect();
    let declared: BTreeSet<String> = checked.iter().flat_map(|m| m.log_lines()).collect();
    let missing: Vec<&String> = declared
        .iter()
        .filter(|t| !taken.contains(*t) && !listed.contains(*t))
        .collect();
    assert!(
        missing.is_empty(),
        "declared, never taken, not listed: {missing:#?}"
    );
    let wrong: Vec<&String> = listed
        .iter()
        .filter(|t| taken.contains(*t) || !declared.contains(*t))
        .collect();
    assert!(
        wrong.is_empty(),
        "listed, yet taken or not declared: {wrong:#?}"
    );
    assert!(
        taken.iter().all(|t| declared.contains(t)),
        "taken but not declared: {taken:#?}"
    );
    let names: Vec<&str> = xstatenet::MACHINES.iter().map(|m| m.name).collect();
    assert_eq!(
        names,
        ["ServiceLifecycle", NOT_CHECKED[0].0],
        "a machine was added or renamed: check it here"
    );
}
