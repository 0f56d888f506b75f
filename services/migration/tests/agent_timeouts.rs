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
    let mut frames = Vec::new();
    loop {
        let frame = tokio::time::timeout(HANG, read_frame(&mut stream))
            .await
            .unwrap()
            .expect("closed early");
        let value: Value = serde_json::from_slice(&frame).unwrap();
        let kind = value["type"].as_str().unwrap().to_owned();
        frames.push((value["id"].as_str().unwrap().to_owned(), frame));
        if kind == message_type {
            return (stream, frames);
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

    // The first service acknowledges AGENT_STARTED and then nothing.
    let (mut first, frames) = accept_until(&listener, "USER_ACTION").await;
    let started = &frames[0].0;
    ack(&mut first, started).await;
    let (message_id, original) = frames.last().unwrap().clone();

    // The agent gives up on it and reconnects: AGENT_STARTED again, then the same bytes.
    let (mut second, frames) = accept_until(&listener, "USER_ACTION").await;
    let (resent_id, resent) = frames.last().unwrap().clone();
    assert_eq!(resent_id, message_id);
    assert_eq!(resent, original, "the message was not resent byte for byte");
    // The first connection was closed by the agent.
    assert!(read_frame(&mut first).await.is_none());
    ack(&mut second, &frames[0].0).await;
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
