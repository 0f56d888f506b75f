#![allow(clippy::unwrap_used)]
//! The command-line client and the client library against the real bus: `listen` and
//! `send` in separate processes, `status`, and a client that re-registers its machines
//! after the bus restarts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ipcspec_xstatenet::{BusClient, Incoming};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

mod common;

use common::{BUS, HANG, start_bus as start};

async fn start_bus(socket: &Path) -> tokio::process::Child {
    start(socket, &[]).await
}

fn socket_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("XStateNet.MessageBus")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_send_and_status_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let socket = socket_in(&dir);
    let _bus = start_bus(&socket).await;
    let mut listener = Command::new(BUS)
        .args(["listen", "machine-2", "--socket"])
        .arg(&socket)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    // Wait until machine-2 is registered, then send from another process.
    tokio::time::timeout(HANG, async {
        loop {
            let status = Command::new(BUS)
                .arg("status")
                .arg("--socket")
                .arg(&socket)
                .output()
                .await
                .unwrap();
            assert!(status.status.success());
            let value: Value = serde_json::from_slice(&status.stdout).unwrap();
            if value["health"]["RegisteredMachines"] == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    let sent = Command::new(BUS)
        .args([
            "send",
            "--from",
            "machine-1",
            "--to",
            "machine-2",
            "--event",
            "TEST_EVENT",
        ])
        .args(["--payload", r#"{"Data":"Hello"}"#, "--socket"])
        .arg(&socket)
        .output()
        .await
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let line = tokio::time::timeout(HANG, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["EventName"], "TEST_EVENT");
    assert_eq!(event["SourceMachineId"], "machine-1");
    assert_eq!(event["Payload"], json!({"Data": "Hello"}));

    // A refused event is a failure with the bus's reason.
    let refused = Command::new(BUS)
        .args([
            "send",
            "--from",
            "machine-1",
            "--to",
            "nobody",
            "--event",
            "X",
            "--socket",
        ])
        .arg(&socket)
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("UNKNOWN_TARGET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_library_registers_again_after_the_bus_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let socket = socket_in(&dir);
    let mut bus = start_bus(&socket).await;
    let (receiver, mut events) = BusClient::connect(&socket).await.unwrap();
    receiver.register("receiver").await.unwrap();
    let (sender, _sender_events) = BusClient::connect(&socket).await.unwrap();
    sender.register("sender").await.unwrap();
    sender
        .send_event("sender", "receiver", "BEFORE", Some(json!({"n": 1})))
        .await
        .unwrap();
    let event = events.wait_for("BEFORE", HANG).await.unwrap();
    assert_eq!(event.source_machine_id, "sender");
    assert_eq!(receiver.health().await.unwrap().registered_machines, 2);

    // The bus dies and comes back; both clients reconnect and register again by themselves.
    bus.kill().await.unwrap();
    let _bus = start_bus(&socket).await;
    tokio::time::timeout(HANG, async {
        loop {
            receiver.connected().await;
            if let Ok(health) = receiver.health().await
                && health.registered_machines == 2
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the machines were not registered again");
    sender
        .send_event("sender", "receiver", "AFTER", None)
        .await
        .unwrap();
    let event = events.wait_for("AFTER", HANG).await.unwrap();
    assert_eq!(event.payload, None);

    // A refusal reaches the sender's events.
    let (other, mut other_events) = BusClient::connect(&socket).await.unwrap();
    other.register("other").await.unwrap();
    other
        .send_event("other", "missing", "X", None)
        .await
        .unwrap();
    match tokio::time::timeout(HANG, other_events.recv())
        .await
        .unwrap()
        .unwrap()
    {
        Incoming::Error(error) => assert_eq!(error.error_code, "UNKNOWN_TARGET"),
        other => panic!("{other:?}"),
    }
}
