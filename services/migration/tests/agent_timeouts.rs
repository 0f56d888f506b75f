#![allow(clippy::unwrap_used)]
//! The agent against a service that stops answering: a message not acknowledged in time,
//! or a connection that goes silent, makes the agent reconnect and resend the same
//! message (same id, same bytes).

mod common;

use common::{AGENT, HANG, shared_dir};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

async fn read_frame(stream: &mut UnixStream) -> Option<Vec<u8>> {
    let mut len = [0_u8; 4];
    stream.read_exact(&mut len).await.ok()?;
    let mut body = vec![0_u8; u32::from_le_bytes(len) as usize];
    stream.read_exact(&mut body).await.ok()?;
    Some(body)
}

async fn write_json(stream: &mut UnixStream, value: &Value) {
    let body = value.to_string();
    let len = u32::try_from(body.len()).unwrap().to_le_bytes();
    stream.write_all(&len).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
}

async fn ack(stream: &mut UnixStream, id: &str) {
    write_json(
        stream,
        &json!({"id": format!("ack-{id}"), "type": "ACKNOWLEDGMENT",
                "timestamp": "2026-11-25T10:00:00Z", "payload": {"success": true}, "correlationId": id}),
    )
    .await;
}

/// Accepts the next connection and reads frames until one of `message_type` arrives.
async fn accept_until(
    listener: &UnixListener,
    message_type: &str,
) -> (UnixStream, Vec<(String, Vec<u8>)>) {
    let (mut stream, _) = tokio::time::timeout(HANG, listener.accept())
        .await
        .expect("the agent did not (re)connect")
        .unwrap();
    let frames = read_until(&mut stream, message_type).await;
    (stream, frames)
}

/// Reads frames (id and bytes) until one of `message_type` arrives.
async fn read_until(stream: &mut UnixStream, message_type: &str) -> Vec<(String, Vec<u8>)> {
    let mut frames = Vec::new();
    loop {
        let frame = tokio::time::timeout(HANG, read_frame(stream))
            .await
            .unwrap()
            .expect("closed early");
        let value: Value = serde_json::from_slice(&frame).unwrap();
        let kind = value["type"].as_str().unwrap().to_owned();
        frames.push((value["id"].as_str().unwrap().to_owned(), frame));
        if kind == message_type {
            return frames;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_message_is_resent_on_a_new_connection() {
    let dir = shared_dir();
    let socket = dir.path().join("ipc.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let agent = tokio::process::Command::new(AGENT)
        .arg("--socket")
        .arg(&socket)
        .args(["--ack-timeout-seconds", "1", "--session", "t"])
        .args(["send", "user-action", r#"{"action":"HELP_REQUESTED"}"#])
        .kill_on_drop(true)
        .output();
    let agent = tokio::spawn(agent);

    // The first service acknowledges AGENT_STARTED (only then does the agent send its
    // message, in READY) and then nothing.
    let (mut first, frames) = accept_until(&listener, "AGENT_STARTED").await;
    assert_eq!(frames.len(), 1, "AGENT_STARTED comes first, alone");
    ack(&mut first, &frames[0].0).await;
    let (message_id, original) = read_until(&mut first, "USER_ACTION")
        .await
        .last()
        .unwrap()
        .clone();

    // The agent gives up on it and reconnects: AGENT_STARTED again, then the same bytes.
    let (mut second, frames) = accept_until(&listener, "AGENT_STARTED").await;
    assert_eq!(frames.len(), 1, "nothing before AGENT_STARTED is accepted");
    ack(&mut second, &frames[0].0).await;
    let (resent_id, resent) = read_until(&mut second, "USER_ACTION")
        .await
        .last()
        .unwrap()
        .clone();
    assert_eq!(resent_id, message_id);
    assert_eq!(resent, original, "the message was not resent byte for byte");
    // The first connection was closed by the agent.
    assert!(read_frame(&mut first).await.is_none());
    ack(&mut second, &message_id).await;
    let output = tokio::time::timeout(HANG, agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_service_is_left_after_the_stale_timeout() {
    let dir = shared_dir();
    let socket = dir.path().join("ipc.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let mut agent = tokio::process::Command::new(AGENT)
        .arg("--socket")
        .arg(&socket)
        .args(["--stale-seconds", "1", "--session", "t", "run", "--stay"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (mut first, frames) = accept_until(&listener, "AGENT_STARTED").await;
    ack(&mut first, &frames[0].0).await;
    // Nothing more from this "service": the agent closes and comes back.
    let (mut second, frames) = accept_until(&listener, "AGENT_STARTED").await;
    assert!(read_frame(&mut first).await.is_none());
    ack(&mut second, &frames[0].0).await;
    agent.start_kill().unwrap();
}

/// Waits until the transition log holds `line`.
async fn wait_for_line(log: &std::path::Path, line: &str) {
    tokio::time::timeout(HANG, async {
        while !std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .any(|l| l == line)
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never logged: {line}"));
}

/// While disconnected the agent queues only the latest BACKUP_PROGRESS of a backup
/// (MAX_QUEUED_MESSAGES), in its place, and sends nothing before AGENT_STARTED is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_latest_progress_is_queued_while_disconnected() {
    let dir = shared_dir();
    let socket = dir.path().join("ipc.sock");
    let log = dir.path().join("transitions.log");
    let listener = UnixListener::bind(&socket).unwrap();
    let mut agent = tokio::process::Command::new(AGENT)
        .arg("--socket")
        .arg(&socket)
        .args([
            "--session",
            "t",
            "--reconnect-delay-ms",
            "50",
            "run",
            "--stay",
        ])
        .env(ipcspec_runtime::machine::TRANSITION_LOG_ENV, &log)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (mut first, frames) = accept_until(&listener, "AGENT_STARTED").await;
    ack(&mut first, &frames[0].0).await;
    wait_for_line(
        &log,
        "AgentConnection: STARTING --receive ACKNOWLEDGMENT--> READY",
    )
    .await;
    // The service goes away; wait until the agent's machine says so.
    drop(listener);
    std::fs::remove_file(&socket).unwrap();
    drop(first);
    wait_for_line(
        &log,
        "AgentConnection: READY --event closed--> RECONNECTING",
    )
    .await;

    let backup = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
    let mut lines = String::new();
    for percent in [10, 20, 30] {
        lines += &json!({"type": "BACKUP_PROGRESS", "payload": {
            "backupId": backup, "percentComplete": percent,
            "bytesTransferred": percent, "totalBytes": 100}})
        .to_string();
        lines.push('\n');
    }
    lines += &json!({"type": "USER_ACTION", "payload": {"action": "HELP_REQUESTED"}}).to_string();
    lines.push('\n');
    let mut stdin = agent.stdin.take().unwrap();
    stdin.write_all(lines.as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    // Give the agent the lines before the service is back (they are queued, not sent).
    tokio::time::timeout(HANG, async {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("RECONNECTING --event retry--> CONNECTING")
                .count()
                >= 2
            {
                break;
            }
        }
    })
    .await
    .unwrap();

    let listener = UnixListener::bind(&socket).unwrap();
    let (mut second, frames) = accept_until(&listener, "AGENT_STARTED").await;
    assert_eq!(
        frames.len(),
        1,
        "nothing goes out before AGENT_STARTED is accepted"
    );
    ack(&mut second, &frames[0].0).await;
    let frames = read_until(&mut second, "USER_ACTION").await;
    let kinds: Vec<(String, Value)> = frames
        .iter()
        .map(|(_, bytes)| {
            let value: Value = serde_json::from_slice(bytes).unwrap();
            (
                value["type"].as_str().unwrap().to_owned(),
                value["payload"]["percentComplete"].clone(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("BACKUP_PROGRESS".to_owned(), json!(30.0)),
            ("USER_ACTION".to_owned(), Value::Null),
        ],
        "only the latest progress, in its place"
    );
    agent.start_kill().unwrap();
}
