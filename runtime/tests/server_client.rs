//! The server over real Unix sockets: round trips, concurrency, the connection limit,
//! read timeouts, oversize frames, stale connections, heartbeats, full queues, graceful
//! shutdown and metrics.
//!
//! Timeouts are configured small; the only wall-clock values besides them are generous
//! failure guards (`GUARD`).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use ipcspec_runtime::codec::LengthPrefixedCodec;
use ipcspec_runtime::server::{
    CloseReason, ConnectionInfo, Direction, Heartbeat, Outcome, SendError, Server, ServerConfig,
    ServerHandle, Service, ShutdownReport,
};
use ipcspec_runtime::transport::Connection;
use ipcspec_runtime::transport::unix::{Listener, ListenerOptions, connect};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;

/// How long anything may take before the test fails: generous, never a threshold.
const GUARD: Duration = Duration::from_secs(10);

const MAX_FRAME: usize = 64 * 1024;

type Client = Framed<Connection, LengthPrefixedCodec>;

/// Echoes frames; `whoami` answers the peer's pid, `slow` answers after a pause, `close`
/// answers `bye` and closes, `push N` queues N frames through the connection handle.
#[derive(Default)]
struct Echo {
    handled: AtomicUsize,
}

impl Service for Echo {
    async fn handle(&self, conn: &ConnectionInfo, frame: Bytes) -> Outcome {
        self.handled.fetch_add(1, Ordering::Relaxed);
        match &frame[..] {
            b"whoami" => {
                let pid = conn.peer().and_then(|peer| peer.pid).unwrap_or(0);
                Outcome::reply(pid.to_string())
            }
            b"slow" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Outcome::reply(&b"slow done"[..])
            }
            b"close" => Outcome::reply(&b"bye"[..]).and_close(),
            b"bad" => Outcome::none().error("invalid_message"),
            other if other.starts_with(b"push ") => {
                let count: usize = std::str::from_utf8(&other[5..]).unwrap().parse().unwrap();
                for i in 0..count {
                    conn.handle().send(format!("pushed {i}")).unwrap();
                }
                Outcome::none()
            }
            _ => Outcome::reply(frame),
        }
    }
}

struct Running {
    _dir: TempDir,
    path: PathBuf,
    handle: ServerHandle,
    task: JoinHandle<ShutdownReport>,
}

fn config() -> ServerConfig {
    ServerConfig {
        max_frame_bytes: MAX_FRAME,
        frame_read_timeout: Some(Duration::from_millis(200)),
        stale_after: None,
        drain_timeout: Duration::from_secs(2),
        ..ServerConfig::from_profile(&common::WIRE)
    }
}

async fn start(config: ServerConfig) -> Running {
    start_with(config, Echo::default()).await
}

async fn start_with<S: Service>(config: ServerConfig, service: S) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.sock");
    let listener = Listener::bind(&path, ListenerOptions::default())
        .await
        .unwrap();
    let server = Server::new(config, service);
    let handle = server.handle();
    let task = tokio::spawn(server.serve(listener));
    Running {
        _dir: dir,
        path,
        handle,
        task,
    }
}

async fn client(path: &Path) -> Client {
    let connection = connect(path, GUARD).await.unwrap();
    Framed::new(
        connection,
        LengthPrefixedCodec::new(common::PREFIX, MAX_FRAME),
    )
}

async fn recv(client: &mut Client) -> Option<Bytes> {
    tokio::time::timeout(GUARD, client.next())
        .await
        .expect("no frame within the guard")
        .map(|frame| frame.unwrap().freeze())
}

async fn round_trip(client: &mut Client, frame: &'static str) -> Bytes {
    client.send(frame.as_bytes()).await.unwrap();
    recv(client).await.expect("connection closed")
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

/// Reads raw bytes until end-of-file; fails if the peer does not close within the guard.
async fn read_to_eof(connection: &mut Connection) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(GUARD, connection.read_to_end(&mut rest))
        .await
        .expect("connection not closed within the guard")
        .ok();
    rest
}

async fn stop(running: Running) -> ShutdownReport {
    running.handle.shutdown();
    tokio::time::timeout(GUARD, running.task)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn echo_round_trip_with_peer_credentials() {
    let running = start(config()).await;
    let mut client = client(&running.path).await;
    assert_eq!(round_trip(&mut client, "hello").await, &b"hello"[..]);
    assert_eq!(round_trip(&mut client, "").await, &b""[..]);
    let pid = round_trip(&mut client, "whoami").await;
    assert_eq!(pid, std::process::id().to_string().as_bytes());

    eventually("writes counted", || {
        running.handle.metrics().messages_out == 3
    })
    .await;
    let metrics = running.handle.metrics();
    assert_eq!(metrics.messages_in, 3);
    assert_eq!(metrics.connections_accepted, 1);
    assert_eq!(metrics.connections_active, 1);

    drop(client);
    eventually("close counted", || {
        running.handle.metrics().closed(CloseReason::PeerClosed) == 1
    })
    .await;
    assert_eq!(running.handle.metrics().connections_active, 0);
    assert!(stop(running).await.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_clients() {
    let running = start(config()).await;
    let mut tasks = Vec::new();
    for n in 0..50 {
        let path = running.path.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = client(&path).await;
            for i in 0..20 {
                let frame = format!("client {n} frame {i}");
                client.send(frame.as_bytes()).await.unwrap();
                assert_eq!(recv(&mut client).await.unwrap(), frame.as_bytes());
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(GUARD, task).await.unwrap().unwrap();
    }
    // The writer counts a frame after writing it, so the count may trail the reads.
    eventually("writes counted", || {
        running.handle.metrics().messages_out == 1000
    })
    .await;
    let metrics = running.handle.metrics();
    assert_eq!(metrics.connections_accepted, 50);
    assert_eq!(metrics.messages_in, 1000);
    assert!(stop(running).await.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_beyond_the_limit_are_refused_with_a_frame() {
    let running = start(ServerConfig {
        max_connections: 2,
        refusal: Some(Arc::new(|info| {
            Some(Bytes::from(format!(
                "REFUSED {} limit {}",
                info.id, info.max_connections
            )))
        })),
        ..config()
    })
    .await;
    let mut first = client(&running.path).await;
    let mut second = client(&running.path).await;
    assert_eq!(round_trip(&mut first, "one").await, &b"one"[..]);
    assert_eq!(round_trip(&mut second, "two").await, &b"two"[..]);

    let mut third = client(&running.path).await;
    let refusal = recv(&mut third).await.unwrap();
    assert!(refusal.starts_with(b"REFUSED conn#"), "{refusal:?}");
    assert!(refusal.ends_with(b"limit 2"), "{refusal:?}");
    assert!(
        recv(&mut third).await.is_none(),
        "refused connection stays open"
    );

    // The served clients carry on.
    assert_eq!(round_trip(&mut first, "still").await, &b"still"[..]);
    assert_eq!(round_trip(&mut second, "here").await, &b"here"[..]);
    let metrics = running.handle.metrics();
    assert_eq!(metrics.connections_refused, 1);
    assert_eq!(metrics.connections_accepted, 2);

    // A freed slot is available again.
    drop(first);
    eventually("slot freed", || running.handle.connections().len() == 1).await;
    let mut fourth = client(&running.path).await;
    assert_eq!(round_trip(&mut fourth, "four").await, &b"four"[..]);

    // The limit can change while serving (a configuration reload): raised, one more
    // fits; lowered below the count, open connections stay and new ones are refused.
    running.handle.set_max_connections(3);
    assert_eq!(running.handle.max_connections(), 3);
    let mut fifth = client(&running.path).await;
    assert_eq!(round_trip(&mut fifth, "five").await, &b"five"[..]);
    running.handle.set_max_connections(1);
    let mut sixth = client(&running.path).await;
    let refusal = recv(&mut sixth).await.unwrap();
    assert!(refusal.ends_with(b"limit 1"), "{refusal:?}");
    assert_eq!(round_trip(&mut fifth, "kept").await, &b"kept"[..]);
    assert!(stop(running).await.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_a_frame_is_dropped_after_the_read_timeout_and_others_keep_working() {
    let running = start(config()).await;
    let mut staller = connect(&running.path, GUARD).await.unwrap();
    let mut worker = client(&running.path).await;
    assert_eq!(round_trip(&mut worker, "before").await, &b"before"[..]);

    // Declares 10 bytes, sends 3, then stalls.
    staller
        .write_all(&[10, 0, 0, 0, b'a', b'b', b'c'])
        .await
        .unwrap();
    // Meanwhile the other client is served.
    for _ in 0..5 {
        assert_eq!(round_trip(&mut worker, "during").await, &b"during"[..]);
    }
    assert!(read_to_eof(&mut staller).await.is_empty());
    eventually("read timeout counted", || {
        running.handle.metrics().closed(CloseReason::ReadTimeout) == 1
    })
    .await;
    assert_eq!(running.handle.metrics().errors_of("read_timeout"), 1);
    assert_eq!(round_trip(&mut worker, "after").await, &b"after"[..]);
    assert_eq!(running.handle.connections().len(), 1);
    assert!(stop(running).await.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frame_arriving_slowly_but_in_time_is_accepted() {
    let running = start(ServerConfig {
        frame_read_timeout: Some(Duration::from_secs(5)),
        ..config()
    })
    .await;
    let mut connection = connect(&running.path, GUARD).await.unwrap();
    for byte in [5, 0, 0, 0, b'h', b'e', b'l', b'l', b'o'] {
        connection.write_all(&[byte]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut client = Framed::new(
        connection,
        LengthPrefixedCodec::new(common::PREFIX, MAX_FRAME),
    );
    assert_eq!(recv(&mut client).await.unwrap(), &b"hello"[..]);
    assert!(stop(running).await.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversize_declared_length_closes_only_that_connection() {
    let running = start(config()).await;
    let mut liar = connect(&running.path, GUARD).await.unwrap();
    let mut worker = client(&running.path).await;
    assert_eq!(round_trip(&mut worker, "before").await, &b"before"[..]);

    let declared = u32::try_from(MAX_FRAME + 1).unwrap();
    liar.write_all(&declared.to_le_bytes()).await.unwrap();
    assert!(read_to_eof(&mut liar).await.is_empty());
    eventually("oversize counted", || {
        running.handle.metrics().closed(CloseReason::FrameTooLarge) == 1
    })
    .await;
    assert_eq!(running.handle.metrics().errors_of("frame_too_large"), 1);
    assert_eq!(round_trip(&mut worker, "after").await, &b"after"[..]);
    assert!(stop(running).await.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_connection_goes_stale() {
    let running = start(ServerConfig {
        stale_after: Some(Duration::from_millis(200)),
        ..config()
    })
    .await;
    let mut idle = client(&running.path).await;
    assert_eq!(round_trip(&mut idle, "hi").await, &b"hi"[..]);
    assert!(recv(&mut idle).await.is_none());
    eventually("stale counted", || {
        running.handle.metrics().closed(CloseReason::Stale) == 1
    })
    .await;
    assert!(stop(running).await.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn heartbeats_are_sent_at_the_interval() {
    let running = start(ServerConfig {
        heartbeat: Some(Heartbeat {
            interval: Duration::from_millis(20),
            frame: Arc::new(|id| Bytes::from(format!("HEARTBEAT {id}"))),
            message_type: Some("HEARTBEAT"),
        }),
        ..config()
    })
    .await;
    let mut client = client(&running.path).await;
    for _ in 0..3 {
        let frame = recv(&mut client).await.unwrap();
        assert!(frame.starts_with(b"HEARTBEAT conn#"), "{frame:?}");
    }
    // Each heartbeat is counted as a message of its type.
    let sent = running
        .handle
        .metrics()
        .messages_of(Direction::Out, "HEARTBEAT");
    assert!(sent >= 3, "{sent} heartbeats counted");
    assert!(stop(running).await.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_can_close_after_its_reply_and_count_errors() {
    let running = start(config()).await;
    let mut client = client(&running.path).await;
    client.send(&b"bad"[..]).await.unwrap();
    assert_eq!(round_trip(&mut client, "close").await, &b"bye"[..]);
    assert!(recv(&mut client).await.is_none());
    eventually("close counted", || {
        running
            .handle
            .metrics()
            .closed(CloseReason::ClosedByService)
            == 1
    })
    .await;
    assert_eq!(running.handle.metrics().errors_of("invalid_message"), 1);
    assert!(stop(running).await.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_outbound_queue_reports_queue_full_and_others_are_unaffected() {
    let running = start(ServerConfig {
        outbound_queue_capacity: 4,
        ..config()
    })
    .await;
    // Connects and never reads.
    let mut sleeper = client(&running.path).await;
    sleeper.send(&b"whoami"[..]).await.unwrap();
    let mut worker = client(&running.path).await;
    assert_eq!(round_trip(&mut worker, "hi").await, &b"hi"[..]);
    eventually("both registered", || {
        running.handle.connections().len() == 2
    })
    .await;
    let target = running.handle.connections()[0].clone();

    let big = Bytes::from(vec![b'x'; MAX_FRAME]);
    let mut queued = 0;
    let full = loop {
        match target.send(big.clone()) {
            Ok(()) => queued += 1,
            Err(error) => break error,
        }
        assert!(queued < 100_000, "the queue never filled");
        tokio::task::yield_now().await;
    };
    assert!(
        matches!(full, SendError::QueueFull { max_frames: 4, .. }),
        "{full:?}"
    );
    assert!(running.handle.metrics().errors_of("queue_full") >= 1);
    assert_eq!(
        target.send(vec![b'x'; MAX_FRAME + 1]),
        Err(SendError::TooLarge {
            len: MAX_FRAME + 1,
            max: MAX_FRAME
        })
    );

    // A broadcast reaches the reader and misses the sleeper. The sleeper's writer may
    // still move a few frames into the socket before it blocks for good, so broadcast
    // until its queue stays full.
    let mut broadcasts = 0;
    loop {
        let report = running.handle.broadcast(&b"news"[..]);
        assert_eq!(report.sent + report.queue_full, 2, "{report:?}");
        assert_eq!(recv(&mut worker).await.unwrap(), &b"news"[..]);
        if report.queue_full == 1 {
            break;
        }
        broadcasts += 1;
        assert!(
            broadcasts < 100_000,
            "the sleeper's queue never stayed full"
        );
    }
    assert_eq!(round_trip(&mut worker, "still").await, &b"still"[..]);
    // A frame no connection can take is refused everywhere, not miscounted as closed.
    let report = running.handle.broadcast(vec![b'x'; MAX_FRAME + 1]);
    assert_eq!(
        (report.sent, report.refused, report.closed),
        (0, 2, 0),
        "{report:?}"
    );

    // Closing the sleeper's connection from the server refuses further pushes.
    target.close();
    assert!(matches!(
        target.send(&b"late"[..]),
        Err(SendError::Closed { .. })
    ));
    drop(sleeper);
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_finishes_handlers_and_drains_queues() {
    let running = start(config()).await;
    let mut pushed = client(&running.path).await;
    let mut waiting = client(&running.path).await;

    // 100 frames queued for a client that is not reading yet.
    pushed.send(&b"push 100"[..]).await.unwrap();
    // A handler still running when shutdown starts.
    waiting.send(&b"slow"[..]).await.unwrap();
    eventually("handlers started", || {
        running.handle.metrics().messages_in == 2
    })
    .await;

    running.handle.shutdown();
    for i in 0..100 {
        let frame = recv(&mut pushed).await.unwrap();
        assert_eq!(frame, format!("pushed {i}").as_bytes());
    }
    assert!(recv(&mut pushed).await.is_none());
    assert_eq!(recv(&mut waiting).await.unwrap(), &b"slow done"[..]);
    assert!(recv(&mut waiting).await.is_none());

    let path = running.path.clone();
    let handle = running.handle.clone();
    let report = tokio::time::timeout(GUARD, running.task)
        .await
        .unwrap()
        .unwrap();
    assert!(report.drained, "{report:?}");
    assert_eq!(handle.metrics().closed(CloseReason::Shutdown), 2);
    assert_eq!(handle.metrics().connections_active, 0);
    assert!(!path.exists(), "socket file left behind");
    assert!(connect(&path, GUARD).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_text_contains_the_counters() {
    let running = start(ServerConfig {
        max_connections: 1,
        ..config()
    })
    .await;
    let mut client = client(&running.path).await;
    assert_eq!(round_trip(&mut client, "x").await, &b"x"[..]);
    let mut refused = connect(&running.path, GUARD).await.unwrap();
    read_to_eof(&mut refused).await;
    eventually("refusal and reply counted", || {
        let metrics = running.handle.metrics();
        metrics.connections_refused == 1 && metrics.messages_out == 1
    })
    .await;
    let text = running.handle.prometheus();
    for line in [
        "# TYPE ipcspec_server_messages_in_total counter",
        "ipcspec_server_messages_in_total 1",
        "ipcspec_server_messages_out_total 1",
        "ipcspec_server_connections_accepted_total 1",
        "ipcspec_server_connections_refused_total 1",
        "ipcspec_server_connections_active 1",
        "# TYPE ipcspec_server_connections_closed_total counter",
        "# TYPE ipcspec_server_errors_total counter",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    drop(client);
    eventually("close counted", || {
        running.handle.metrics().closed(CloseReason::PeerClosed) == 1
    })
    .await;
    assert!(
        running
            .handle
            .prometheus()
            .contains("ipcspec_server_connections_closed_total{reason=\"peer_closed\"} 1\n")
    );
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aborting_the_server_task_closes_every_connection() {
    let running = start(config()).await;
    let mut idle = client(&running.path).await;
    assert_eq!(round_trip(&mut idle, "hello").await, &b"hello"[..]);
    // A second connection has a handler running when the server is aborted.
    let mut busy = client(&running.path).await;
    assert_eq!(round_trip(&mut busy, "hello").await, &b"hello"[..]);
    busy.send(&b"slow"[..]).await.unwrap();
    let handle = running.handle.connections()[0].clone();

    running.task.abort();
    let aborted = tokio::time::timeout(GUARD, running.task)
        .await
        .expect("server task not finished within the guard");
    assert!(aborted.unwrap_err().is_cancelled());

    // Both peers see end-of-file: no writer task outlived the server.
    for client in [idle, busy] {
        let mut connection = client.into_inner();
        read_to_eof(&mut connection).await;
    }
    assert!(running.handle.is_shutting_down());
    assert!(running.handle.connections().is_empty());
    assert!(handle.is_closed());
    assert!(matches!(
        handle.send(&b"late"[..]),
        Err(SendError::Closed { .. })
    ));
    let metrics = running.handle.metrics();
    assert_eq!(metrics.connections_active, 0);
    assert_eq!(metrics.closed(CloseReason::Shutdown), 2);
}

/// A write half that records its drop, and whose `poll_shutdown` never completes once
/// `stuck` is set (as if the peer never read): the writer hangs in its final drain.
struct StuckWriter {
    stuck: Arc<std::sync::atomic::AtomicBool>,
    shutting_down: Arc<AtomicUsize>,
    dropped: Arc<std::sync::atomic::AtomicBool>,
}

impl tokio::io::AsyncWrite for StuckWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.shutting_down.fetch_add(1, Ordering::SeqCst);
        if self.stuck.load(Ordering::SeqCst) {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(Ok(()))
        }
    }
}

impl Drop for StuckWriter {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// Accepts the connections sent on a channel.
struct Channel(tokio::sync::mpsc::Receiver<Connection>);

impl ipcspec_runtime::transport::Accept for Channel {
    async fn accept_connection(&mut self) -> std::io::Result<Connection> {
        match self.0.recv().await {
            Some(connection) => Ok(connection),
            None => std::future::pending().await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aborting_the_server_during_a_stuck_drain_drops_the_writer() {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    // Long drain: a writer that outlived the server would hang on for all of it.
    let server = Server::new(
        ServerConfig {
            drain_timeout: Duration::from_secs(300),
            ..config()
        },
        Echo::default(),
    );
    let handle = server.handle();
    let task = tokio::spawn(server.serve(Channel(rx)));

    let stuck = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let shutting_down = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (_peer, reader) = tokio::io::duplex(1024);
    let writer = StuckWriter {
        stuck: Arc::clone(&stuck),
        shutting_down: Arc::clone(&shutting_down),
        dropped: Arc::clone(&dropped),
    };
    tx.send(Connection::from_halves(reader, writer, None))
        .await
        .unwrap();
    eventually("connection served", || {
        handle.metrics().connections_accepted == 1
    })
    .await;

    handle.shutdown();
    eventually("writer draining", || {
        shutting_down.load(Ordering::SeqCst) > 0
    })
    .await;
    task.abort();
    let aborted = tokio::time::timeout(GUARD, task)
        .await
        .expect("server task not finished within the guard");
    assert!(aborted.unwrap_err().is_cancelled());
    eventually("writer dropped", || dropped.load(Ordering::SeqCst)).await;
    assert!(handle.connections().is_empty());
    assert_eq!(handle.metrics().connections_active, 0);
}

/// Echoes frames and records each frame's first word as its message type, both ways,
/// and a handling latency per frame.
struct Recording;

impl Service for Recording {
    async fn handle(&self, conn: &ConnectionInfo, frame: Bytes) -> Outcome {
        let started = std::time::Instant::now();
        let message_type = std::str::from_utf8(&frame)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned();
        conn.metrics().record_message(Direction::In, &message_type);
        conn.metrics()
            .record_message(Direction::Out, &format!("{message_type}_reply"));
        conn.metrics().record_latency(started.elapsed());
        Outcome::reply(frame)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_records_message_types_and_latencies() {
    let running = start_with(config(), Recording).await;
    let mut client = client(&running.path).await;
    for frame in ["ping 1", "ping 2", "ping 3", "get \"x\"", "weird\\\"type\n"] {
        assert_eq!(round_trip(&mut client, frame).await, frame.as_bytes());
    }
    running
        .handle
        .recorder()
        .record_message(Direction::Out, "notice");

    let metrics = running.handle.metrics();
    assert_eq!(metrics.messages_of(Direction::In, "ping"), 3);
    assert_eq!(metrics.messages_of(Direction::Out, "ping_reply"), 3);
    assert_eq!(metrics.messages_of(Direction::In, "get"), 1);
    assert_eq!(metrics.messages_of(Direction::Out, "notice"), 1);
    assert_eq!(metrics.latency.count, 5);

    let text = running.handle.prometheus();
    for line in [
        "# TYPE ipcspec_server_messages_by_type_total counter",
        "ipcspec_server_messages_by_type_total{direction=\"in\",message_type=\"ping\"} 3",
        "ipcspec_server_messages_by_type_total{direction=\"out\",message_type=\"ping_reply\"} 3",
        "ipcspec_server_messages_by_type_total{direction=\"in\",message_type=\"get\"} 1",
        "ipcspec_server_messages_by_type_total{direction=\"out\",message_type=\"notice\"} 1",
        "ipcspec_server_messages_by_type_total{direction=\"in\",message_type=\"weird\\\\\\\"type\\n\"} 1",
        "# TYPE ipcspec_server_handling_latency_seconds histogram",
        "ipcspec_server_handling_latency_seconds_bucket{le=\"+Inf\"} 5",
        "ipcspec_server_handling_latency_seconds_count 5",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    let buckets: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("ipcspec_server_handling_latency_seconds_bucket{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(buckets.last(), Some(&5));
    assert!(
        text.lines()
            .any(|l| l.starts_with("ipcspec_server_handling_latency_seconds_sum "))
    );
    stop(running).await;
}
