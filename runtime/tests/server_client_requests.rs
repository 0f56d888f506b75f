//! The client against the server over real Unix sockets, with a small hand-written JSON
//! envelope protocol shaped like the catalogues' (`id`, `type`, `payload`,
//! `correlationId`; every message but HEARTBEAT and ACKNOWLEDGMENT acknowledged).
//!
//! The runtime does not depend on `ipcspec-generated`, and these tests do not either, so
//! they build while the generated crate is being changed.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ipcspec_runtime::client::{Client, ClientConfig, ClientError, Inbound, JsonCorrelator};
use ipcspec_runtime::server::{
    ConnectionInfo, Heartbeat, Outcome, Server, ServerConfig, ServerHandle, Service, ShutdownReport,
};
use ipcspec_runtime::transport::unix::{Listener, ListenerOptions};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// How long anything may take before the test fails: generous, never a threshold.
const GUARD: Duration = Duration::from_secs(10);

fn frame(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap())
}

fn parse(frame: &[u8]) -> Value {
    serde_json::from_slice(frame).unwrap()
}

fn ack(id: &Value, success: bool) -> Bytes {
    frame(&json!({
        "id": format!("ack-{}", id.as_str().unwrap_or("?")),
        "type": "ACKNOWLEDGMENT",
        "payload": { "success": success },
        "correlationId": id,
    }))
}

/// Acknowledges everything but HEARTBEAT and ACKNOWLEDGMENT. `DELAYED` is acknowledged
/// `payload.ms` later from another task (so acknowledgments can overtake each other);
/// `NOTIFY` also pushes a NOTICE (not a reply) before the acknowledgment.
struct Protocol;

impl Service for Protocol {
    async fn handle(&self, conn: &ConnectionInfo, body: Bytes) -> Outcome {
        let Ok(message) = serde_json::from_slice::<Value>(&body) else {
            return Outcome::none().error("invalid_message");
        };
        let id = message["id"].clone();
        match message["type"].as_str() {
            Some("HEARTBEAT" | "ACKNOWLEDGMENT") => Outcome::none(),
            Some("DELAYED") => {
                let ms = message["payload"]["ms"].as_u64().unwrap_or(0);
                let handle = conn.handle().clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let _ = handle.send(ack(&id, true));
                });
                Outcome::none()
            }
            Some("NOTIFY") => Outcome::replies([
                frame(&json!({"id": "n1", "type": "NOTICE", "payload": {"text": "hello"}})),
                ack(&id, true),
            ]),
            Some(_) => Outcome::reply(ack(&id, true)),
            None => Outcome::reply(ack(&id, false)).error("invalid_message"),
        }
    }
}

struct Running {
    _dir: TempDir,
    path: PathBuf,
    handle: ServerHandle,
    task: JoinHandle<ShutdownReport>,
}

async fn start(config: ServerConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.sock");
    let listener = Listener::bind(&path, ListenerOptions::default())
        .await
        .unwrap();
    let server = Server::new(config, Protocol);
    let handle = server.handle();
    let task = tokio::spawn(server.serve(listener));
    Running {
        _dir: dir,
        path,
        handle,
        task,
    }
}

async fn client(running: &Running) -> (Client, Inbound) {
    Client::connect(
        &running.path,
        GUARD,
        ClientConfig::from_profile(&common::WIRE),
        JsonCorrelator::ENVELOPE,
    )
    .await
    .unwrap()
}

fn message(id: &str, message_type: &str, payload: Value) -> Bytes {
    frame(
        &json!({"id": id, "type": message_type, "timestamp": "2025-01-01T00:00:00Z", "payload": payload}),
    )
}

async fn next(inbound: &mut Inbound) -> Option<Bytes> {
    tokio::time::timeout(GUARD, inbound.recv())
        .await
        .expect("nothing received within the guard")
}

/// Waits until `condition` holds, failing after the guard.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + GUARD;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_resolves_with_its_acknowledgment() {
    let running = start(ServerConfig::from_profile(&common::WIRE)).await;
    let (client, _inbound) = client(&running).await;
    assert_eq!(client.peer().unwrap().pid, Some(std::process::id()));
    let reply = client
        .request(message("m-1", "BACKUP_STARTED", json!({})), GUARD)
        .await
        .unwrap();
    let reply = parse(&reply);
    assert_eq!(reply["type"], "ACKNOWLEDGMENT");
    assert_eq!(reply["correlationId"], "m-1");
    assert_eq!(reply["payload"]["success"], true);
    assert_eq!(client.metrics().replies, 1);
    // The round trip is in the client's latency histogram.
    let latency = client.round_trip_latency();
    assert_eq!(latency.count, 1);
    assert!(latency.sum > Duration::ZERO);
    running.handle.shutdown();
    running.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_get_their_own_replies_out_of_order() {
    let running = start(ServerConfig::from_profile(&common::WIRE)).await;
    let (client, _inbound) = client(&running).await;
    let mut tasks = Vec::new();
    for n in 0..20u64 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("req-{n}");
            // Later requests are acknowledged sooner.
            let request = message(&id, "DELAYED", json!({"ms": (20 - n) * 10}));
            let reply = client.request(request, GUARD).await.unwrap();
            assert_eq!(parse(&reply)["correlationId"], id.as_str());
        }));
    }
    for task in tasks {
        tokio::time::timeout(GUARD, task).await.unwrap().unwrap();
    }
    let metrics = client.metrics();
    assert_eq!((metrics.replies, metrics.timeouts), (20, 0));
    running.handle.shutdown();
    running.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timed_out_request_discards_its_late_reply() {
    let running = start(ServerConfig::from_profile(&common::WIRE)).await;
    let (client, mut inbound) = client(&running).await;
    let error = client
        .request(
            message("slow-1", "DELAYED", json!({"ms": 300})),
            Duration::from_millis(20),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Timeout { id, .. } if id == "slow-1"),
        "{error:?}"
    );
    assert_eq!(client.metrics().timeouts, 1);
    eventually("late reply counted", || client.metrics().late_replies == 1).await;

    // The late acknowledgment never reached the inbound channel: the first inbound frame
    // is the notice sent afterwards.
    let reply = client
        .request(message("n-1", "NOTIFY", json!({})), GUARD)
        .await
        .unwrap();
    assert_eq!(parse(&reply)["correlationId"], "n-1");
    let notice = parse(&next(&mut inbound).await.unwrap());
    assert_eq!(notice["type"], "NOTICE");

    // The id can be used again.
    let reply = client
        .request(message("slow-1", "PING", json!({})), GUARD)
        .await
        .unwrap();
    assert_eq!(parse(&reply)["correlationId"], "slow-1");
    running.handle.shutdown();
    running.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frames_that_are_not_replies_go_to_inbound() {
    let running = start(ServerConfig {
        heartbeat: Some(Heartbeat {
            interval: Duration::from_millis(20),
            frame: Arc::new(|_| message("hb", "HEARTBEAT", json!({}))),
            message_type: Some("HEARTBEAT"),
        }),
        ..ServerConfig::from_profile(&common::WIRE)
    })
    .await;
    let (client, mut inbound) = client(&running).await;
    // A fire-and-forget send: its acknowledgment is not a reply to a request.
    client
        .send(message("f-1", "STATUS", json!({})))
        .await
        .unwrap();
    let mut saw_ack = false;
    let mut heartbeats = 0;
    while !saw_ack || heartbeats < 2 {
        let received = parse(&next(&mut inbound).await.unwrap());
        match received["type"].as_str().unwrap() {
            "HEARTBEAT" => heartbeats += 1,
            "ACKNOWLEDGMENT" => {
                assert_eq!(received["correlationId"], "f-1");
                saw_ack = true;
            }
            other => panic!("unexpected {other}"),
        }
    }
    running.handle.shutdown();
    running.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_errors_are_precise() {
    let running = start(ServerConfig::from_profile(&common::WIRE)).await;
    let (client, _inbound) = client(&running).await;
    assert_eq!(
        client
            .request(frame(&json!({"type": "PING"})), GUARD)
            .await
            .unwrap_err(),
        ClientError::NoRequestId
    );
    let pending = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .request(message("dup", "DELAYED", json!({"ms": 200})), GUARD)
                .await
        })
    };
    eventually("first request sent", || client.metrics().messages_out == 1).await;
    assert_eq!(
        client
            .request(message("dup", "PING", json!({})), GUARD)
            .await
            .unwrap_err(),
        ClientError::DuplicateRequestId { id: "dup".into() }
    );
    assert!(pending.await.unwrap().is_ok());
    let huge = Bytes::from(vec![
        b' ';
        ClientConfig::from_profile(&common::WIRE)
            .max_frame_bytes
            + 1
    ]);
    assert!(matches!(
        client.send(huge).await,
        Err(ClientError::TooLarge { .. })
    ));
    running.handle.shutdown();
    running.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closing_server_fails_pending_requests_and_ends_inbound() {
    let running = start(ServerConfig::from_profile(&common::WIRE)).await;
    let (client, mut inbound) = client(&running).await;
    let pending = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .request(message("never", "DELAYED", json!({"ms": 60_000})), GUARD)
                .await
        })
    };
    eventually("request sent", || client.metrics().messages_out == 1).await;
    eventually("request received", || {
        running.handle.metrics().messages_in == 1
    })
    .await;
    running.handle.shutdown();
    assert_eq!(
        tokio::time::timeout(GUARD, pending).await.unwrap().unwrap(),
        Err(ClientError::Closed)
    );
    assert!(next(&mut inbound).await.is_none());
    assert_eq!(
        client
            .request(message("after", "PING", json!({})), GUARD)
            .await,
        Err(ClientError::Closed)
    );
    assert!(running.task.await.unwrap().drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_server_is_given_up_after_the_idle_timeout_but_heartbeats_keep_it() {
    // Without heartbeats the server sends nothing: the client closes.
    let silent = start(ServerConfig::from_profile(&common::WIRE)).await;
    let (client, mut inbound) = Client::connect(
        &silent.path,
        GUARD,
        ClientConfig {
            idle_timeout: Some(Duration::from_millis(200)),
            ..ClientConfig::from_profile(&common::WIRE)
        },
        JsonCorrelator::ENVELOPE,
    )
    .await
    .unwrap();
    assert!(next(&mut inbound).await.is_none());
    assert_eq!(client.metrics().idle_timeouts, 1);
    assert_eq!(
        client
            .request(message("late", "PING", json!({})), GUARD)
            .await
            .unwrap_err(),
        ClientError::Closed
    );

    // With heartbeats more frequent than the timeout, the connection lives on.
    let beating = start(ServerConfig {
        heartbeat: Some(Heartbeat {
            interval: Duration::from_millis(20),
            frame: Arc::new(|_| message("hb", "HEARTBEAT", json!({}))),
            message_type: Some("HEARTBEAT"),
        }),
        ..ServerConfig::from_profile(&common::WIRE)
    })
    .await;
    let (client, mut inbound) = Client::connect(
        &beating.path,
        GUARD,
        ClientConfig {
            idle_timeout: Some(Duration::from_secs(5)),
            ..ClientConfig::from_profile(&common::WIRE)
        },
        JsonCorrelator::ENVELOPE,
    )
    .await
    .unwrap();
    for _ in 0..5 {
        assert!(next(&mut inbound).await.is_some());
    }
    assert_eq!(client.metrics().idle_timeouts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn close_ends_the_connection_and_fails_waiting_requests() {
    let running = start(ServerConfig::from_profile(&common::WIRE)).await;
    let (client, mut inbound) = client(&running).await;
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .request(message("d1", "DELAYED", json!({"ms": 60_000})), GUARD)
                .await
        })
    };
    eventually("the request is sent", || client.metrics().messages_out == 1).await;
    client.close();
    assert!(next(&mut inbound).await.is_none());
    assert_eq!(waiting.await.unwrap().unwrap_err(), ClientError::Closed);
    eventually("the server saw the close", || {
        running.handle.metrics().connections_active == 0
    })
    .await;
}
