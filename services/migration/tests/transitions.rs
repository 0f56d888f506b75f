#![allow(clippy::unwrap_used)]
//! Every transition the catalogue declares for the Migration system is taken by the
//! reference implementation, or listed here as not applicable with the reason.
//!
//! The real `migration-agent` runs against scripted services on real sockets with
//! `IPCSPEC_TRANSITION_LOG` set, so the generated machine itself writes each transition
//! it allows to the log; the test then compares the log with the catalogue's transition
//! table (`AgentConnection::TABLE`). A transition added to the catalogue fails this test
//! until a scenario takes it or it is listed, and a listed one that is taken fails too.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{AGENT, HANG, shared_dir};
use ipcspec_generated::migration::{self, AgentConnection};
use ipcspec_runtime::machine::{MachineTable, TRANSITION_LOG_ENV};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// Declared transitions no scenario takes, with the reason, as their log lines.
const NOT_APPLICABLE: &[(&str, &str)] = &[
    (
        "AgentConnection: CONNECTED --event closed--> RECONNECTING",
        "the agent takes `send AGENT_STARTED` in the same step as the connection comes up \
         (the frame is written right after), so a loss is always seen from STARTING",
    ),
    (
        "AgentConnection: CONNECTING --event timeout--> RECONNECTING",
        "on a Unix socket the kernel answers a connect at once (accepted into the backlog, \
         refused or missing); CONNECTION_TIMEOUT_SECONDS can expire only on a Windows named \
         pipe, which this implementation does not have yet",
    ),
];

/// Machines whose transitions this file does not check yet, with the reason.
const NOT_CHECKED_HERE: &[(&str, &str)] = &[(
    "UserMigration",
    "the service's per-user machine: checked against the real service in \
     tests/user_migration.rs (every_user_migration_transition_is_taken_by_the_service)",
)];

async fn read_frame(stream: &mut UnixStream) -> Option<Value> {
    let mut len = [0_u8; 4];
    stream.read_exact(&mut len).await.ok()?;
    let mut body = vec![0_u8; u32::from_le_bytes(len) as usize];
    stream.read_exact(&mut body).await.ok()?;
    serde_json::from_slice(&body).ok()
}

async fn write_json(stream: &mut UnixStream, value: &Value) {
    let body = value.to_string();
    let len = u32::try_from(body.len()).unwrap().to_le_bytes();
    // The agent may already have closed: that is what some scenarios wait for.
    let _ = stream.write_all(&len).await;
    let _ = stream.write_all(body.as_bytes()).await;
}

async fn ack(stream: &mut UnixStream, id: &str, error: Option<&str>) {
    let payload = match error {
        None => json!({"success": true}),
        Some(code) => json!({"success": false, "errorCode": code, "errorMessage": "scripted"}),
    };
    write_json(
        stream,
        &json!({"id": format!("ack-{id}"), "type": "ACKNOWLEDGMENT",
                "timestamp": "2026-11-25T10:00:00Z", "payload": payload, "correlationId": id}),
    )
    .await;
}

/// Accepts the next connection and reads its first frame, which must be AGENT_STARTED;
/// returns the stream and that frame's id.
async fn accept_started(listener: &UnixListener) -> (UnixStream, String) {
    let (mut stream, _) = tokio::time::timeout(HANG, listener.accept())
        .await
        .expect("the agent did not (re)connect")
        .unwrap();
    let started = tokio::time::timeout(HANG, read_frame(&mut stream))
        .await
        .unwrap()
        .expect("closed before AGENT_STARTED");
    assert_eq!(started["type"], "AGENT_STARTED");
    (stream, started["id"].as_str().unwrap().to_owned())
}

/// Reads frames until one of `message_type`; returns its id.
async fn read_until(stream: &mut UnixStream, message_type: &str) -> String {
    loop {
        let frame = tokio::time::timeout(HANG, read_frame(stream))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("closed before {message_type}"));
        if frame["type"] == message_type {
            return frame["id"].as_str().unwrap().to_owned();
        }
    }
}

/// Waits until the agent closes `stream`.
async fn closed_by_agent(stream: &mut UnixStream) {
    tokio::time::timeout(HANG, async { while read_frame(stream).await.is_some() {} })
        .await
        .expect("the agent kept the connection open");
}

fn agent(socket: &Path, log: &Path, args: &[&str]) -> tokio::process::Command {
    let delay = if args.contains(&"--reconnect-delay-ms") {
        &[][..]
    } else {
        &["--reconnect-delay-ms", "20"][..]
    };
    let mut command = tokio::process::Command::new(AGENT);
    command
        .arg("--socket")
        .arg(socket)
        .args(["--session", "t"])
        .args(delay)
        .args(args)
        .env(TRANSITION_LOG_ENV, log)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

async fn finished(child: tokio::process::Child) -> std::process::Output {
    tokio::time::timeout(HANG, child.wait_with_output())
        .await
        .expect("the agent did not exit")
        .unwrap()
}

/// Accepted, one message, exit (`start` .. `READY`, then `exit`).
async fn ready_then_exit(socket: &Path, log: &Path) {
    let listener = UnixListener::bind(socket).unwrap();
    let child = agent(
        socket,
        log,
        &["send", "user-action", r#"{"action":"HELP_REQUESTED"}"#],
    )
    .spawn()
    .unwrap();
    let (mut stream, started) = accept_started(&listener).await;
    ack(&mut stream, &started, None).await;
    let message = read_until(&mut stream, "USER_ACTION").await;
    ack(&mut stream, &message, None).await;
    assert!(finished(child).await.status.success());
}

/// Refused for good (`fatalRejection`).
async fn fatal_rejection(socket: &Path, log: &Path) {
    let listener = UnixListener::bind(socket).unwrap();
    let child = agent(socket, log, &["run", "--stay"]).spawn().unwrap();
    let (mut stream, started) = accept_started(&listener).await;
    ack(&mut stream, &started, Some("USER_MISMATCH")).await;
    finished(child).await;
}

/// A retryable refusal, a loss while starting, a missing acknowledgment, a loss when
/// ready, a silent service, then SHUTDOWN_REQUEST.
async fn every_way_back(socket: &Path, log: &Path) {
    let listener = UnixListener::bind(socket).unwrap();
    let child = agent(
        socket,
        log,
        &[
            "--ack-timeout-seconds",
            "1",
            "--stale-seconds",
            "1",
            "run",
            "--stay",
        ],
    )
    .spawn()
    .unwrap();
    // STARTING --retryableRejection--> RECONNECTING --retry--> CONNECTING ...
    let (mut stream, started) = accept_started(&listener).await;
    ack(&mut stream, &started, Some("INTERNAL_ERROR")).await;
    closed_by_agent(&mut stream).await;
    // STARTING --closed-->
    let (stream, _) = accept_started(&listener).await;
    drop(stream);
    // STARTING --timeout--> (no acknowledgment within a second; heartbeats keep the
    // connection from going stale meanwhile)
    let (mut stream, _) = accept_started(&listener).await;
    let heartbeat = json!({"id": "hb", "type": "HEARTBEAT",
                           "timestamp": "2026-11-25T10:00:00Z", "payload": {}});
    tokio::time::timeout(HANG, async {
        loop {
            write_json(&mut stream, &heartbeat).await;
            let tick = tokio::time::sleep(std::time::Duration::from_millis(200));
            tokio::select! {
                frame = read_frame(&mut stream) => if frame.is_none() { break },
                () = tick => {}
            }
        }
    })
    .await
    .expect("the agent kept waiting for the acknowledgment");
    // READY --closed--> (once the agent is READY: frames and the loss are separate
    // events, so a close right after the acknowledgment may be seen first)
    let (mut stream, started) = accept_started(&listener).await;
    let ready = "AgentConnection: STARTING --receive ACKNOWLEDGMENT--> READY";
    let before = count(log, ready);
    ack(&mut stream, &started, None).await;
    tokio::time::timeout(HANG, async {
        while count(log, ready) == before {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the agent never became READY");
    drop(stream);
    // READY --stale--> (nothing from the service for a second)
    let (mut stream, started) = accept_started(&listener).await;
    ack(&mut stream, &started, None).await;
    closed_by_agent(&mut stream).await;
    // READY --receive SHUTDOWN_REQUEST--> CLOSED
    let (mut stream, started) = accept_started(&listener).await;
    ack(&mut stream, &started, None).await;
    write_json(
        &mut stream,
        &json!({"id": "shutdown-1", "type": "SHUTDOWN_REQUEST",
                "timestamp": "2026-11-25T10:00:00Z",
                "payload": {"reason": "MIGRATION_COMPLETED", "gracePeriod": 5000}}),
    )
    .await;
    let output = finished(child).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// No service at all (`error`, then `exhausted`).
async fn unreachable(socket: &Path, log: &Path) {
    let child = agent(socket, log, &["--reconnect-attempts", "2", "run", "--stay"])
        .spawn()
        .unwrap();
    assert!(!finished(child).await.status.success());
}

/// The service goes away for good while a message waits: the agent stops waiting and
/// exits while reconnecting (`RECONNECTING --exit-->`).
async fn exit_while_reconnecting(socket: &Path, log: &Path) {
    let listener = UnixListener::bind(socket).unwrap();
    let child = agent(
        socket,
        log,
        &[
            "--reconnect-delay-ms",
            "200",
            "send",
            "user-action",
            r#"{"action":"HELP_REQUESTED"}"#,
            "--timeout",
            "2",
        ],
    )
    .spawn()
    .unwrap();
    let (mut stream, started) = accept_started(&listener).await;
    ack(&mut stream, &started, None).await;
    read_until(&mut stream, "USER_ACTION").await;
    drop(listener);
    std::fs::remove_file(socket).unwrap();
    drop(stream);
    assert!(!finished(child).await.status.success());
}

/// How often `line` is in the transition log so far.
fn count(log: &Path, line: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == line)
        .count()
}

fn declared(table: &MachineTable) -> BTreeSet<String> {
    table.log_lines().into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_declared_transition_is_taken_or_listed() {
    let dir = shared_dir();
    let log = dir.path().join("transitions.log");
    let socket = |name: &str| -> PathBuf { dir.path().join(name) };
    ready_then_exit(&socket("a.sock"), &log).await;
    fatal_rejection(&socket("b.sock"), &log).await;
    every_way_back(&socket("c.sock"), &log).await;
    unreachable(&socket("missing.sock"), &log).await;
    exit_while_reconnecting(&socket("e.sock"), &log).await;

    let taken: BTreeSet<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let listed: BTreeSet<String> = NOT_APPLICABLE
        .iter()
        .map(|(t, _)| (*t).to_owned())
        .collect();
    let declared = declared(&AgentConnection::TABLE);
    let missing: Vec<&String> = declared
        .iter()
        .filter(|t| !taken.contains(*t) && !listed.contains(*t))
        .collect();
    assert!(
        missing.is_empty(),
        "declared, never taken and not listed: {missing:#?}"
    );
    let taken_but_listed: Vec<&String> = listed.intersection(&taken).collect();
    assert!(
        taken_but_listed.is_empty(),
        "listed as not applicable, yet taken: {taken_but_listed:#?}"
    );
    let unknown: Vec<&String> = listed
        .iter()
        .chain(taken.iter().filter(|t| t.starts_with("AgentConnection:")))
        .filter(|t| !declared.contains(*t))
        .collect();
    assert!(unknown.is_empty(), "not declared: {unknown:#?}");
    // Every machine of the catalogue is checked here or listed with the reason.
    let machines: Vec<&str> = migration::MACHINES.iter().map(|m| m.name).collect();
    let accounted: Vec<&str> = [AgentConnection::TABLE.name]
        .into_iter()
        .chain(NOT_CHECKED_HERE.iter().map(|(name, _)| *name))
        .collect();
    assert_eq!(
        machines, accounted,
        "a machine was added or renamed: check it here"
    );
}
