//! The server: accepts connections from any [`Accept`], reads length-prefixed frames,
//! hands each to a [`Service`] and writes back what it returns.
//!
//! The server knows nothing of envelopes or catalogues: a frame is a byte string, and the
//! [`Service`] decodes it, dispatches it (a generated `dispatch_to_<role>` plugs in
//! there), and returns an [`Outcome`]: the frames to send back (acknowledgments,
//! replies), whether to close, and an error kind to count.
//!
//! - **Connection manager.** Every connection gets a [`ConnectionId`] and a
//!   [`ConnectionHandle`] in a registry ([`ServerHandle::connection`],
//!   [`ServerHandle::connections`], [`ServerHandle::broadcast`]). Beyond
//!   [`ServerConfig::max_connections`] a new connection is sent the frame
//!   [`ServerConfig::refusal`] builds (if any) and closed; the others carry on.
//! - **Bounded outbound queues.** Each connection has a queue of at most
//!   [`ServerConfig::outbound_queue_capacity`] frames and
//!   [`ServerConfig::outbound_queue_bytes`] bytes, written in order by its own writer
//!   task (everything queued goes out in one write). Pushes from any task
//!   ([`ConnectionHandle::send`], [`ConnectionHandle::send_parts`]) frame the body
//!   straight into the queue, and fail with [`SendError::QueueFull`] rather than grow
//!   memory; the service's replies wait up to [`ServerConfig::reply_timeout`] for room,
//!   after which the connection is closed as a slow consumer. This is the broker's fan-in
//!   point: many connections' handlers push to one connection's queue.
//! - **Reading.** Frames are cut with the [`ServerConfig::framing`]: length-prefixed
//!   ([`LengthPrefixedCodec`](crate::codec::LengthPrefixedCodec)) or newline-delimited
//!   ([`NewlineCodec`](crate::codec::NewlineCodec), whose bad lines are skipped and
//!   reported to [`Service::on_bad_frame`]). A declared length above [`ServerConfig::max_frame_bytes`] closes that connection
//!   before anything is allocated; a frame whose first byte arrived but which is not
//!   complete within [`ServerConfig::frame_read_timeout`] closes it too; so does a
//!   connection that sends no frame within [`ServerConfig::stale_after`]. Frames of one
//!   connection are handled one at a time, in order; connections run concurrently.
//! - **Heartbeats.** With [`ServerConfig::heartbeat`], each connection's writer sends the
//!   frame the callback builds at every interval.
//! - **Graceful shutdown.** [`ServerHandle::shutdown`] stops the accept loop (dropping the
//!   listener, which removes a Unix socket file), stops reading, lets running handlers
//!   finish and queue their replies, writes every queued frame and closes each
//!   connection, all within [`ServerConfig::drain_timeout`]; what is left is aborted.
//! - **Abort safety.** Every task the server spawns is owned by the future
//!   [`Server::serve`] returns (connection tasks by its `JoinSet`, each writer task by
//!   its connection task). Dropping that future, or aborting the task running it, aborts
//!   them all and closes every connection at once, without draining and without
//!   [`Service::on_close`]; the connections are deregistered and counted as closed by
//!   `shutdown`.
//! - **Observability.** A `tracing` span per connection (`ipcspec.connection`, with id and
//!   peer credentials), and counters as a [`MetricsSnapshot`] or Prometheus text
//!   ([`ServerHandle::prometheus`]). The service adds per-message-type counters and a
//!   handling-latency histogram through [`ConnectionInfo::metrics`] (or
//!   [`ServerHandle::recorder`]): [`Metrics::record_message`], [`Metrics::record_latency`].
//!
//! ```no_run
//! use bytes::Bytes;
//! use ipcspec_runtime::codec::{ByteOrder, Framing, LengthPrefix, PrefixWidth};
//! use ipcspec_runtime::profile::{Limits, RoleMessages, Timing, WireProfile};
//! use ipcspec_runtime::server::{ConnectionInfo, Outcome, Server, ServerConfig, Service};
//! use ipcspec_runtime::transport::unix::{Listener, ListenerOptions};
//!
//! struct Echo;
//!
//! impl Service for Echo {
//!     async fn handle(&self, _conn: &ConnectionInfo, frame: Bytes) -> Outcome {
//!         Outcome::reply(frame)
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // A generated module's `WIRE` (`ipcspec_generated::migration::WIRE`) is such a profile.
//! const WIRE: WireProfile = WireProfile {
//!     catalogue: "echo",
//!     framing: Framing::LengthPrefixed(LengthPrefix {
//!         width: PrefixWidth::U32,
//!         byte_order: ByteOrder::Little,
//!     }),
//!     limits: Limits {
//!         max_message_bytes: 1 << 16,
//!         max_line_bytes: None,
//!         max_nesting_depth: None,
//!         max_connections: Some(8),
//!     },
//!     timing: Timing {
//!         heartbeat_interval: None,
//!         stale_after: None,
//!         connect_timeout: None,
//!         request_timeout: None,
//!         frame_read_timeout: None,
//!         reconnect: None,
//!     },
//!     messages: RoleMessages { ack: None, error: None, heartbeat: None },
//! };
//! let listener = Listener::bind("/run/echo.sock", ListenerOptions::default()).await?;
//! let server = Server::new(ServerConfig::from_profile(&WIRE), Echo);
//! let handle = server.handle();
//! tokio::spawn(async move {
//!     tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
//!     handle.shutdown();
//! });
//! server.serve(listener).await;
//! # Ok(())
//! # }
//! ```

mod config;
mod connection;
pub(crate) mod metrics;
mod outbox;
mod service;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

pub use config::{Heartbeat, HeartbeatFn, RefusalFn, RefusalInfo, ServerConfig};
pub use connection::{CloseReason, ConnectionHandle, ConnectionInfo, SendError};
pub use metrics::{
    Direction, LatencyHistogram, MAX_MESSAGE_TYPE_LEN, MAX_MESSAGE_TYPES, MessageCounter,
    MessageCounts, Metrics, MetricsSnapshot, OTHER_MESSAGE_TYPE,
};
pub use service::{Outcome, Service};

use crate::codec::FrameCodec;
use crate::transport::{Accept, Connection, ConnectionId};

/// How long the accept loop pauses after a failed accept (for example `EMFILE`).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Extra time graceful shutdown gives connection tasks beyond the drain timeout.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(1);

/// What the server and its handles share.
#[derive(Debug)]
struct State {
    connections: Mutex<HashMap<ConnectionId, ConnectionHandle>>,
    /// The connection limit now ([`ServerHandle::set_max_connections`] changes it).
    max_connections: std::sync::atomic::AtomicUsize,
    metrics: Arc<Metrics>,
    shutdown: watch::Sender<bool>,
}

impl State {
    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<ConnectionId, ConnectionHandle>> {
        // The map stays consistent even if a holder panicked: every critical section is
        // a single insert, remove or read.
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes connection `id` from the registry and counts its close, unless it was
    /// removed already (by the cleanup after an abort).
    fn deregister(&self, id: ConnectionId, reason: CloseReason) {
        let removed = self.registry().remove(&id);
        if removed.is_some() {
            self.metrics.closed(reason);
        }
    }

    /// Empties the registry of connections whose tasks were aborted: marks each closed
    /// and counts it as closed by `shutdown`.
    fn deregister_all(&self) {
        let handles: Vec<ConnectionHandle> =
            self.registry().drain().map(|(_, handle)| handle).collect();
        for handle in handles {
            handle.mark_closed(CloseReason::Shutdown);
            self.metrics.closed(CloseReason::Shutdown);
        }
    }
}

/// The tasks of a running [`Server::serve`]. Dropped (when `serve` returns, or when its
/// future is dropped or aborted) it aborts every task still running (the `JoinSet` does;
/// each connection task aborts its writer as it is dropped), marks the server shut down
/// and deregisters the connections left.
struct Tasks {
    set: JoinSet<()>,
    state: Arc<State>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.set.abort_all();
        self.state.shutdown.send_replace(true);
        self.state.deregister_all();
    }
}

/// A server for one [`Service`]; see the [module documentation](self).
#[derive(Debug)]
pub struct Server<S> {
    service: Arc<S>,
    config: Arc<ServerConfig>,
    state: Arc<State>,
}

/// How graceful shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Every connection finished within the drain timeout.
    pub drained: bool,
    /// Connection tasks aborted at the deadline.
    pub aborted: usize,
}

/// The result of [`ServerHandle::broadcast`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Broadcast {
    /// Connections the frame was queued for.
    pub sent: usize,
    /// Connections whose queue was full.
    pub queue_full: usize,
    /// Connections that were closing.
    pub closed: usize,
    /// Connections that could not take the frame at all: it is above the frame limit or
    /// the framing cannot carry it (every connection, then).
    pub refused: usize,
}

impl<S: Service> Server<S> {
    /// A server running `service` with `config`.
    pub fn new(config: ServerConfig, service: S) -> Self {
        let (shutdown, _) = watch::channel(false);
        let max_connections = config.max_connections;
        Server {
            service: Arc::new(service),
            config: Arc::new(config),
            state: Arc::new(State {
                connections: Mutex::new(HashMap::new()),
                max_connections: std::sync::atomic::AtomicUsize::new(max_connections),
                metrics: Arc::new(Metrics::default()),
                shutdown,
            }),
        }
    }

    /// A handle to reach connections, read metrics and shut the server down.
    #[must_use]
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            state: Arc::clone(&self.state),
        }
    }

    /// The service.
    #[must_use]
    pub fn service(&self) -> &Arc<S> {
        &self.service
    }

    /// Accepts connections from `acceptor` and serves them until
    /// [`ServerHandle::shutdown`], then shuts down gracefully and reports how it went.
    /// A failed accept is logged, counted (`accept`) and retried after a short pause.
    pub async fn serve<A: Accept + Send>(self, mut acceptor: A) -> ShutdownReport {
        let mut shutdown = self.state.shutdown.subscribe();
        let mut tasks = Tasks {
            set: JoinSet::new(),
            state: Arc::clone(&self.state),
        };
        let tasks = &mut tasks.set;
        loop {
            tokio::select! {
                biased;
                () = shutdown_requested(&mut shutdown) => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = acceptor.accept_connection() => match accepted {
                    Ok(connection) => self.admit(connection, tasks),
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        self.state.metrics.error("accept");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }
        drop(acceptor);
        tracing::info!(
            connections = tasks.len(),
            "shutting down: no longer accepting, draining connections"
        );
        let deadline = tokio::time::Instant::now() + self.config.drain_timeout + SHUTDOWN_MARGIN;
        let drained = tokio::time::timeout_at(deadline, async {
            while tasks.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        let aborted = tasks.len();
        if !drained {
            tracing::warn!(aborted, "shutdown deadline passed; aborting connections");
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            // Aborted tasks did not deregister themselves.
            self.state.deregister_all();
        }
        ShutdownReport { drained, aborted }
    }

    /// Serves `connection`, or refuses it at the connection limit.
    fn admit(&self, connection: Connection, tasks: &mut JoinSet<()>) {
        let id = connection.id();
        let peer = connection.peer();
        let span = tracing::info_span!("ipcspec.connection", %id, ?peer);
        let (reader, writer) = connection.into_split();
        let opened = {
            let mut registry = self.state.registry();
            let max_connections = self
                .state
                .max_connections
                .load(std::sync::atomic::Ordering::Relaxed);
            if registry.len() >= max_connections {
                drop(registry);
                self.state.metrics.refused();
                let info = RefusalInfo {
                    id,
                    peer,
                    max_connections,
                };
                let frame = self
                    .config
                    .refusal
                    .as_ref()
                    .and_then(|refusal| refusal(&info));
                tracing::warn!(parent: &span, max = max_connections, "connection limit reached; refusing");
                tasks.spawn(
                    refuse(
                        writer,
                        frame,
                        Arc::clone(&self.config),
                        Arc::clone(&self.state.metrics),
                    )
                    .instrument(span),
                );
                return;
            }
            let opened = connection::open(
                id,
                peer,
                reader,
                writer,
                &self.config,
                Arc::clone(&self.state.metrics),
            );
            registry.insert(id, opened.info.handle().clone());
            opened
        };
        self.state.metrics.accepted();
        tracing::debug!(parent: &span, "serving connection");
        let service = Arc::clone(&self.service);
        let config = Arc::clone(&self.config);
        let state = Arc::clone(&self.state);
        let shutdown = self.state.shutdown.subscribe();
        tasks.spawn(
            async move {
                let reason = connection::serve(opened, service, config, shutdown).await;
                state.deregister(id, reason);
            }
            .instrument(span),
        );
    }
}

/// Resolves once shutdown is requested (or the server is gone). Returns nothing, so no
/// lock guard is held across an await.
pub(crate) async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

/// Writes the refusal frame (if any) and closes, within the drain timeout.
async fn refuse(
    mut writer: crate::transport::BoxWriter,
    frame: Option<Bytes>,
    config: Arc<ServerConfig>,
    metrics: Arc<Metrics>,
) {
    let Some(frame) = frame else {
        let _ = writer.shutdown().await;
        return;
    };
    let len = frame.len();
    let mut out = BytesMut::new();
    if let Err(error) =
        FrameCodec::new(config.framing, config.max_frame_bytes).encode(frame, &mut out)
    {
        tracing::warn!(%error, "refusal frame not sent");
        metrics.error("frame_too_large_out");
        return;
    }
    let result = tokio::time::timeout(config.drain_timeout, async {
        writer.write_all(&out).await?;
        writer.shutdown().await
    })
    .await;
    match result {
        Ok(Ok(())) => metrics.messages_out(1, len),
        Ok(Err(error)) => {
            tracing::debug!(%error, "refusal frame not written");
            metrics.error("refusal_write");
        }
        Err(_elapsed) => metrics.error("refusal_write"),
    }
}

/// A cloneable handle to a [`Server`]: its connections, its metrics, its shutdown.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    state: Arc<State>,
}

impl ServerHandle {
    /// Starts graceful shutdown (see the [module documentation](self)); returns at once.
    /// [`Server::serve`] returns when it is complete.
    pub fn shutdown(&self) {
        self.state.shutdown.send_replace(true);
    }

    /// Changes the connection limit from now on (configuration reload). Connections
    /// already open stay; new ones are refused while the count is at or above `max`.
    pub fn set_max_connections(&self, max: usize) {
        self.state
            .max_connections
            .store(max, std::sync::atomic::Ordering::Relaxed);
    }

    /// The connection limit now.
    #[must_use]
    pub fn max_connections(&self) -> usize {
        self.state
            .max_connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether shutdown has started.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        *self.state.shutdown.borrow()
    }

    /// The handle of the open connection `id`.
    #[must_use]
    pub fn connection(&self, id: ConnectionId) -> Option<ConnectionHandle> {
        self.state.registry().get(&id).cloned()
    }

    /// Handles of every open connection, in id order.
    #[must_use]
    pub fn connections(&self) -> Vec<ConnectionHandle> {
        let mut handles: Vec<_> = self.state.registry().values().cloned().collect();
        handles.sort_by_key(ConnectionHandle::id);
        handles
    }

    /// Queues `frame` on every open connection, never waiting: a connection whose queue
    /// is full misses it (and counts a `queue_full` error).
    pub fn broadcast(&self, frame: impl Into<Bytes>) -> Broadcast {
        let frame = frame.into();
        let mut report = Broadcast::default();
        for handle in self.connections() {
            match handle.send(&frame) {
                Ok(()) => report.sent += 1,
                Err(SendError::QueueFull { .. }) => report.queue_full += 1,
                Err(SendError::Closed { .. }) => report.closed += 1,
                Err(_) => report.refused += 1,
            }
        }
        report
    }

    /// The counters now.
    #[must_use]
    pub fn metrics(&self) -> MetricsSnapshot {
        self.state.metrics.snapshot()
    }

    /// The live metrics, for recording message types ([`Metrics::record_message`]) and
    /// handling latencies ([`Metrics::record_latency`]) outside a handler; a handler
    /// reaches them through [`ConnectionInfo::metrics`].
    #[must_use]
    pub fn recorder(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The counters now, in the Prometheus text format.
    #[must_use]
    pub fn prometheus(&self) -> String {
        self.metrics().prometheus()
    }
}
