//! The reconnecting client against a real server over a Unix socket: backoff delays,
//! queueing while the server is down, resend of unacknowledged messages with server-side
//! duplicate suppression, giving up, and the queue bound.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ipcspec_runtime::client::reconnect::{
    AckIdFn, ConnectionEvent, OnReconnect, Queueing, ReconnectInbound, Rng, Status,
};
use ipcspec_runtime::client::{
    JsonCorrelator, ReconnectConfig, ReconnectError, ReconnectPolicy, ReconnectingClient,
};
use ipcspec_runtime::server::{
    ConnectionInfo, Outcome, Server, ServerConfig, ServerHandle, Service,
};
use ipcspec_runtime::transport::unix::{Listener, ListenerOptions};
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// How long anything may take before the test fails: generous, never a threshold.
const GUARD: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Log {
    /// Message numbers handled for the first time, in order.
    handled: Vec<u64>,
    seen: HashSet<u64>,
    duplicates: usize,
    /// Frames that were not messages (registrations).
    other: Vec<String>,
}

/// Handles `msg N` once per N (duplicates suppressed by id) and answers `ack N`; when
/// `lossy`, the first handling of every third message is not acknowledged, so it is
/// resent after a reconnect and must be suppressed.
#[derive(Debug, Clone)]
struct Dedupe {
    log: Arc<Mutex<Log>>,
    lossy: bool,
}

impl Service for Dedupe {
    async fn handle(&self, _conn: &ConnectionInfo, frame: Bytes) -> Outcome {
        let text = String::from_utf8_lossy(&frame).into_owned();
        let mut log = self.log.lock().unwrap();
        let Some(n) = text
            .strip_prefix("msg ")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            log.other.push(text);
            return Outcome::none();
        };
        if !log.seen.insert(n) {
            log.duplicates += 1;
            return Outcome::reply(format!("ack {n}"));
        }
        log.handled.push(n);
        if self.lossy && n % 3 == 0 {
            return Outcome::none();
        }
        Outcome::reply(format!("ack {n}"))
    }
}

struct Running {
    handle: ServerHandle,
    task: JoinHandle<ipcspec_runtime::server::ShutdownReport>,
}

async fn start(path: &Path, service: Dedupe) -> Running {
    let listener = Listener::bind(path, ListenerOptions::default())
        .await
        .unwrap();
    let server = Server::new(
        ServerConfig {
            stale_after: None,
            drain_timeout: Duration::from_millis(500),
            ..ServerConfig::from_profile(&common::WIRE)
        },
        service,
    );
    let handle = server.handle();
    let task = tokio::spawn(server.serve(listener));
    Running { handle, task }
}

async fn stop(running: Running) {
    running.handle.shutdown();
    tokio::time::timeout(GUARD, running.task)
        .await
        .unwrap()
        .unwrap();
}

fn socket() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.sock");
    (dir, path)
}

fn policy() -> ReconnectPolicy {
    ReconnectPolicy {
        max_attempts: 200,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
        multiplier: 2.0,
        jitter: 0.5,
        max_queued: 1000,
    }
}

fn ack_id() -> AckIdFn {
    Arc::new(|frame: &[u8]| {
        std::str::from_utf8(frame)
            .ok()?
            .strip_prefix("ack ")
            .map(str::to_owned)
    })
}

fn config(policy: ReconnectPolicy) -> ReconnectConfig {
    ReconnectConfig {
        policy,
        connect_timeout: Duration::from_secs(1),
        ack_id: Some(ack_id()),
        seed: Some(7),
        ..ReconnectConfig::from_profile(&common::WIRE)
    }
}

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

async fn wait_status(client: &ReconnectingClient, what: &str, matches: impl Fn(&Status) -> bool) {
    let mut status = client.status();
    tokio::time::timeout(GUARD, status.wait_for(|s| matches(s)))
        .await
        .unwrap_or_else(|_| panic!("status never became {what}"))
        .unwrap();
}

/// Reads inbound frames in the background so the connection keeps being read.
fn drain(mut inbound: ReconnectInbound) -> JoinHandle<Option<ReconnectError>> {
    tokio::spawn(async move {
        while let Some(event) = inbound.recv().await {
            if let Err(error) = event {
                return Some(error);
            }
        }
        None
    })
}

#[test]
fn delays_grow_exponentially_are_capped_and_jitter_stays_in_bounds() {
    let exact = ReconnectPolicy {
        max_attempts: 7,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        multiplier: 2.0,
        jitter: 0.0,
        max_queued: 1,
    };
    let delays: Vec<u128> = exact
        .delays(Rng::seeded(1))
        .map(|d| d.as_millis())
        .collect();
    assert_eq!(delays, [10, 20, 40, 80, 100, 100, 100]);

    let bases = [10.0, 20.0, 40.0, 80.0, 100.0, 100.0, 100.0];
    for jitter in [0.25, 0.5, 1.0] {
        let policy = ReconnectPolicy {
            jitter,
            ..exact.clone()
        };
        let first: Vec<Duration> = policy.delays(Rng::seeded(42)).collect();
        let again: Vec<Duration> = policy.delays(Rng::seeded(42)).collect();
        let other: Vec<Duration> = policy.delays(Rng::seeded(43)).collect();
        assert_eq!(first, again, "a fixed seed gives a fixed sequence");
        assert_ne!(first, other, "different seeds differ");
        assert_eq!(first.len(), 7);
        for (delay, base) in first.iter().zip(bases) {
            let ms = delay.as_secs_f64() * 1000.0;
            assert!(
                ms <= base + 1e-6 && ms >= base * (1.0 - jitter) - 1e-6,
                "{ms} outside [{}, {base}] for jitter {jitter}",
                base * (1.0 - jitter)
            );
        }
    }
    // Over many draws full jitter spreads across the range.
    let full = ReconnectPolicy {
        max_attempts: 1000,
        initial_delay: Duration::from_millis(100),
        jitter: 1.0,
        ..exact
    };
    let draws: Vec<f64> = full
        .delays(Rng::seeded(9))
        .map(|d| d.as_secs_f64())
        .collect();
    assert!(draws.iter().any(|&d| d < 0.02) && draws.iter().any(|&d| d > 0.08));
    assert_eq!(
        ReconnectPolicy {
            max_attempts: 0,
            ..ReconnectPolicy::default()
        }
        .delays(Rng::seeded(1))
        .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_sent_while_the_server_is_down_arrive_in_order_after_restart() {
    let (_dir, path) = socket();
    let log = Arc::new(Mutex::new(Log::default()));
    let service = Dedupe {
        log: Arc::clone(&log),
        lossy: false,
    };
    let running = start(&path, service.clone()).await;
    let hook: OnReconnect = Arc::new(|generation| vec![Bytes::from(format!("hello {generation}"))]);
    let (client, inbound) = ReconnectingClient::connect(
        &path,
        ReconnectConfig {
            on_reconnect: Some(hook),
            ..config(policy())
        },
        JsonCorrelator::ENVELOPE,
    )
    .await
    .unwrap();
    let _reader = drain(inbound);
    for n in 0..10 {
        client
            .send(format!("msg {n}"), n.to_string())
            .await
            .unwrap();
    }
    eventually("first ten acknowledged", || client.unacked() == 0).await;

    stop(running).await;
    wait_status(&client, "reconnecting", |s| {
        matches!(s, Status::Reconnecting { .. })
    })
    .await;
    for n in 10..30 {
        client
            .send(format!("msg {n}"), n.to_string())
            .await
            .unwrap();
    }
    assert_eq!(client.queued(), 20);

    let running = start(&path, service).await;
    wait_status(&client, "connected again", |s| {
        matches!(s, Status::Connected { generation: 2 })
    })
    .await;
    eventually("all thirty handled", || {
        log.lock().unwrap().handled.len() == 30
    })
    .await;
    eventually("all acknowledged", || client.unacked() == 0).await;
    {
        let log = log.lock().unwrap();
        assert_eq!(log.handled, (0..30).collect::<Vec<u64>>());
        assert_eq!(log.duplicates, 0);
        assert_eq!(log.other, ["hello 1", "hello 2"]);
    }
    assert_eq!(client.queued(), 0);
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unacknowledged_messages_are_resent_and_each_id_is_handled_once_in_order() {
    let (_dir, path) = socket();
    let log = Arc::new(Mutex::new(Log::default()));
    let service = Dedupe {
        log: Arc::clone(&log),
        lossy: true,
    };
    let mut running = Some(start(&path, service.clone()).await);
    let (client, inbound) =
        ReconnectingClient::connect(&path, config(policy()), JsonCorrelator::ENVELOPE)
            .await
            .unwrap();
    let _reader = drain(inbound);
    for n in 0..200u64 {
        client
            .send(format!("msg {n}"), n.to_string())
            .await
            .unwrap();
        if n == 100 {
            // Stopping stops reading: frames still in the socket are lost and resent.
            stop(running.take().unwrap()).await;
        }
        if n == 140 {
            // Acknowledges everything, duplicates included.
            let honest = Dedupe {
                lossy: false,
                ..service.clone()
            };
            running = Some(start(&path, honest).await);
        }
        if n % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    eventually("all handled", || log.lock().unwrap().handled.len() == 200).await;
    eventually("all acknowledged", || client.unacked() == 0).await;
    {
        let log = log.lock().unwrap();
        assert_eq!(log.handled, (0..200).collect::<Vec<u64>>());
        assert!(
            log.duplicates > 0,
            "lossy acks made the client resend handled messages"
        );
    }
    stop(running.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn giving_up_after_max_attempts_is_reported() {
    let (_dir, path) = socket();
    let service = Dedupe {
        log: Arc::default(),
        lossy: false,
    };
    let running = start(&path, service).await;
    let (client, mut inbound) = ReconnectingClient::connect(
        &path,
        config(ReconnectPolicy {
            max_attempts: 3,
            ..policy()
        }),
        JsonCorrelator::ENVELOPE,
    )
    .await
    .unwrap();
    stop(running).await;
    let error = tokio::time::timeout(GUARD, async {
        loop {
            match inbound.recv().await {
                Some(Ok(_)) => {}
                Some(Err(error)) => break error,
                None => panic!("inbound closed without an error"),
            }
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(error, ReconnectError::GaveUp { attempts: 3, .. }),
        "{error:?}"
    );
    assert!(
        tokio::time::timeout(GUARD, inbound.recv())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        *client.status().borrow(),
        Status::Failed { attempts: 3, .. }
    ));
    assert!(matches!(
        client.send("msg 1", "1").await,
        Err(ReconnectError::GaveUp { .. })
    ));

    // Nothing listening at all: the initial connection gives up too.
    let (_other, missing) = socket();
    let failed = ReconnectingClient::connect(
        &missing,
        config(ReconnectPolicy {
            max_attempts: 2,
            ..policy()
        }),
        JsonCorrelator::ENVELOPE,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(failed, ReconnectError::GaveUp { attempts: 2, .. }),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_queue_is_bounded_while_disconnected() {
    let (_dir, path) = socket();
    let service = Dedupe {
        log: Arc::default(),
        lossy: false,
    };
    let running = start(&path, service).await;
    let (client, inbound) = ReconnectingClient::connect(
        &path,
        config(ReconnectPolicy {
            max_queued: 3,
            ..policy()
        }),
        JsonCorrelator::ENVELOPE,
    )
    .await
    .unwrap();
    let _reader = drain(inbound);
    stop(running).await;
    wait_status(&client, "reconnecting", |s| {
        matches!(s, Status::Reconnecting { .. })
    })
    .await;
    for n in 0..3 {
        client
            .send(format!("msg {n}"), n.to_string())
            .await
            .unwrap();
    }
    assert_eq!(
        client.send("msg 3", "3").await,
        Err(ReconnectError::QueueFull { max: 3 })
    );
    assert_eq!(client.queued(), 3);
    assert!(matches!(
        client.send(vec![0u8; 2 * 1024 * 1024], "big").await,
        Err(ReconnectError::TooLarge { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unacknowledged_messages_are_bounded_and_acked_by_hand() {
    let (_dir, path) = socket();
    let log = Arc::new(Mutex::new(Log::default()));
    let running = start(
        &path,
        Dedupe {
            log: Arc::clone(&log),
            lossy: false,
        },
    )
    .await;
    let (client, inbound) = ReconnectingClient::connect(
        &path,
        ReconnectConfig {
            ack_id: None,
            max_unacked: 2,
            ..config(policy())
        },
        JsonCorrelator::ENVELOPE,
    )
    .await
    .unwrap();
    let _reader = drain(inbound);
    client.send("msg 0", "0").await.unwrap();
    client.send("msg 1", "1").await.unwrap();
    assert_eq!(
        client.send("msg 2", "2").await,
        Err(ReconnectError::TooManyUnacked { max: 2 })
    );
    assert!(client.ack("0"));
    assert!(!client.ack("0"));
    client.send("msg 2", "2").await.unwrap();
    eventually("handled", || log.lock().unwrap().handled.len() == 3).await;
    stop(running).await;
}

/// The queue policy a protocol configures: a message replacing the queued one with its
/// key keeps that place, and a full queue drops its oldest droppable message first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_messages_follow_their_queueing_while_disconnected() {
    let (_dir, path) = socket();
    let log = Arc::new(Mutex::new(Log::default()));
    let service = Dedupe {
        log: Arc::clone(&log),
        lossy: false,
    };
    let running = start(&path, service.clone()).await;
    let (client, inbound) = ReconnectingClient::connect(
        &path,
        config(ReconnectPolicy {
            max_queued: 4,
            ..policy()
        }),
        JsonCorrelator::ENVELOPE,
    )
    .await
    .unwrap();
    let _reader = drain(inbound);
    stop(running).await;
    wait_status(&client, "reconnecting", |s| {
        matches!(s, Status::Reconnecting { .. })
    })
    .await;
    let send = |n: u64, queueing: Queueing| {
        let client = client.clone();
        async move {
            client
                .send_with(format!("msg {n}"), n.to_string(), queueing)
                .await
        }
    };
    let latest = || Queueing::Latest("progress".to_owned());
    assert_eq!(send(1, latest()).await, Ok(None));
    assert_eq!(send(2, Queueing::Droppable).await, Ok(None));
    assert_eq!(
        send(3, latest()).await,
        Ok(Some("1".to_owned())),
        "replaced"
    );
    assert_eq!(send(4, Queueing::Keep).await, Ok(None));
    assert_eq!(send(5, Queueing::Droppable).await, Ok(None));
    assert_eq!(client.queued(), 4);
    // Full: the oldest droppable (2) gives way, then the next (5), then nothing can.
    assert_eq!(send(6, Queueing::Keep).await, Ok(Some("2".to_owned())));
    assert_eq!(send(7, Queueing::Droppable).await, Ok(Some("5".to_owned())));
    assert_eq!(send(8, Queueing::Keep).await, Ok(Some("7".to_owned())));
    assert_eq!(
        send(9, Queueing::Keep).await,
        Err(ReconnectError::QueueFull { max: 4 })
    );
    assert_eq!(send(10, latest()).await, Ok(Some("3".to_owned())));

    let running = start(&path, service).await;
    eventually("the queue handled", || {
        log.lock().unwrap().handled.len() == 4
    })
    .await;
    assert_eq!(log.lock().unwrap().handled, [10, 4, 6, 8]);
    stop(running).await;
}

/// With `hold_until_ready`, a new connection carries only the registration until the
/// protocol says it was accepted; the connection's events arrive in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_messages_wait_for_ready_and_events_tell_the_connection_story() {
    let (_dir, path) = socket();
    let log = Arc::new(Mutex::new(Log::default()));
    let service = Dedupe {
        log: Arc::clone(&log),
        lossy: false,
    };
    let events: Arc<Mutex<Vec<ConnectionEvent>>> = Arc::default();
    let running = start(&path, service.clone()).await;
    let hook: OnReconnect = Arc::new(|generation| vec![Bytes::from(format!("hello {generation}"))]);
    let (client, inbound) = ReconnectingClient::connect(
        &path,
        ReconnectConfig {
            on_reconnect: Some(hook),
            hold_until_ready: true,
            on_event: Some({
                let events = Arc::clone(&events);
                Arc::new(move |event: &ConnectionEvent| events.lock().unwrap().push(event.clone()))
            }),
            ..config(policy())
        },
        JsonCorrelator::ENVELOPE,
    )
    .await
    .unwrap();
    let _reader = drain(inbound);
    client.send("msg 1", "1").await.unwrap();
    eventually("the registration arrived", || {
        log.lock().unwrap().other.len() == 1
    })
    .await;
    assert_eq!(client.queued(), 1, "held until ready");
    assert!(log.lock().unwrap().handled.is_empty());
    assert!(!client.ready(2).await, "not the current connection");
    assert!(client.ready(1).await);
    eventually("the held message handled", || {
        log.lock().unwrap().handled == [1]
    })
    .await;
    assert!(!client.ready(1).await, "already ready");

    stop(running).await;
    eventually("the loss reported", || {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, ConnectionEvent::AttemptFailed { .. }))
    })
    .await;
    let running = start(&path, service).await;
    eventually("reconnected", || {
        events
            .lock()
            .unwrap()
            .contains(&ConnectionEvent::Connected { generation: 2 })
    })
    .await;
    drop(client);
    eventually("closed", || {
        events.lock().unwrap().last() == Some(&ConnectionEvent::Closed)
    })
    .await;
    let events = events.lock().unwrap().clone();
    assert_eq!(
        events[..3],
        [
            ConnectionEvent::Attempt { attempt: 1 },
            ConnectionEvent::Connected { generation: 1 },
            ConnectionEvent::Lost {
                generation: 1,
                idle: false
            },
        ]
    );
    assert!(matches!(
        events[3..],
        [
            ConnectionEvent::Attempt { attempt: 1 },
            ConnectionEvent::AttemptFailed {
                attempt: 1,
                timed_out: false
            },
            ..
        ]
    ));
    stop(running).await;
}
