#![allow(clippy::unwrap_used)]
//! The server speaking newline-delimited frames (the bus's framing): lines in pieces and
//! many per read, a bad line answered through `Service::on_bad_frame` while the
//! connection goes on, heartbeats and the refusal as lines.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ipcspec_runtime::codec::{BadFrame, Framing};
use ipcspec_runtime::server::{ConnectionInfo, Heartbeat, Outcome, Server, ServerConfig, Service};
use ipcspec_runtime::transport::unix::{Listener, ListenerOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

const GUARD: Duration = Duration::from_secs(10);

struct Lines;

impl Service for Lines {
    async fn handle(&self, _conn: &ConnectionInfo, frame: Bytes) -> Outcome {
        let text = String::from_utf8(frame.to_vec()).unwrap();
        Outcome::reply(format!("echo {text}"))
    }

    async fn on_bad_frame(&self, _conn: &ConnectionInfo, bad: BadFrame) -> Outcome {
        Outcome::reply(format!("error {}", bad.kind)).error(bad.kind)
    }
}

async fn start(
    config: ServerConfig,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    ipcspec_runtime::server::ServerHandle,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sock");
    let listener = Listener::bind(&path, ListenerOptions::default())
        .await
        .unwrap();
    let server = Server::new(
        ServerConfig {
            framing: Framing::Newline,
            max_frame_bytes: 64,
            ..config
        },
        Lines,
    );
    let handle = server.handle();
    tokio::spawn(server.serve(listener));
    (dir, path, handle)
}

async fn line(reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>) -> String {
    let mut text = String::new();
    let n = tokio::time::timeout(GUARD, reader.read_line(&mut text))
        .await
        .unwrap()
        .unwrap();
    assert!(n > 0, "closed");
    text.trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_are_frames_and_a_bad_line_is_answered_without_closing() {
    let (_dir, path, handle) = start(ServerConfig::from_profile(&common::WIRE)).await;
    let (read, mut write) = UnixStream::connect(&path).await.unwrap().into_split();
    let mut reader = BufReader::new(read);

    // Pieces of one line, then several lines in one write (a blank line is skipped).
    write.write_all(b"hel").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    write.write_all(b"lo\r\n\none\ntwo\n").await.unwrap();
    assert_eq!(line(&mut reader).await, "echo hello");
    assert_eq!(line(&mut reader).await, "echo one");
    assert_eq!(line(&mut reader).await, "echo two");

    // Over the 64-byte limit: skipped, answered, and the next line is served.
    let long = "x".repeat(200);
    write
        .write_all(format!("{long}\nafter\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(line(&mut reader).await, "error line_too_long");
    assert_eq!(line(&mut reader).await, "echo after");

    // Not UTF-8: the same.
    write.write_all(b"\xff\xfe\nstill here\n").await.unwrap();
    assert_eq!(line(&mut reader).await, "error invalid_utf8");
    assert_eq!(line(&mut reader).await, "echo still here");

    let metrics = handle.metrics();
    assert_eq!(metrics.errors.get("line_too_long"), Some(&1));
    assert_eq!(metrics.errors.get("invalid_utf8"), Some(&1));
    assert_eq!(metrics.connections_active, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_the_refusal_are_lines() {
    let (_dir, path, _handle) = start(ServerConfig {
        max_connections: 1,
        heartbeat: Some(Heartbeat {
            interval: Duration::from_millis(20),
            frame: Arc::new(|_| Bytes::from_static(b"{\"Type\":\"Heartbeat\"}")),
            message_type: Some("Heartbeat"),
        }),
        refusal: Some(Arc::new(|info| {
            Some(Bytes::from(format!("full at {}", info.max_connections)))
        })),
        ..ServerConfig::from_profile(&common::WIRE)
    })
    .await;
    let (read, _write) = UnixStream::connect(&path).await.unwrap().into_split();
    let mut reader = BufReader::new(read);
    assert_eq!(line(&mut reader).await, "{\"Type\":\"Heartbeat\"}");

    let (read, _write2) = UnixStream::connect(&path).await.unwrap().into_split();
    let mut refused = BufReader::new(read);
    assert_eq!(line(&mut refused).await, "full at 1");
    let mut rest = String::new();
    assert_eq!(
        refused.read_line(&mut rest).await.unwrap(),
        0,
        "closed after the refusal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_speaks_lines_too() {
    use ipcspec_runtime::client::{Client, ClientConfig, JsonCorrelator};
    let (_dir, path, _handle) = start(ServerConfig::from_profile(&common::WIRE)).await;
    let (client, mut inbound) = Client::connect(
        &path,
        GUARD,
        ClientConfig {
            framing: Framing::Newline,
            ..ClientConfig::from_profile(&common::WIRE)
        },
        JsonCorrelator::ENVELOPE,
    )
    .await
    .unwrap();
    client.send(Bytes::from_static(b"ping")).await.unwrap();
    client.send(Bytes::from_static(b"pong")).await.unwrap();
    let first = tokio::time::timeout(GUARD, inbound.recv())
        .await
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(GUARD, inbound.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&first[..], &second[..]),
        (&b"echo ping"[..], &b"echo pong"[..])
    );
}
