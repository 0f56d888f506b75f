//! One served connection: its handle, its reader loop and its writer task.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::config::{Heartbeat, ServerConfig};
use super::metrics::Metrics;
use super::service::Service;
use crate::codec::{FatalFrameError, FrameCodec, FrameEvent, Framing};
use crate::transport::{BoxReader, BoxWriter, ConnectionId, PeerCredentials};

/// How many queued frames the writer coalesces into one write.
const MAX_BATCH: usize = 64;

/// Extra time given to a closing writer beyond the drain timeout before it is aborted.
const WRITER_MARGIN: Duration = Duration::from_millis(500);

/// Where the connection timer rests when no deadline is near.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why a connection was closed. [`CloseReason::as_str`] is its metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed the connection between frames.
    PeerClosed,
    /// The peer closed the connection inside a frame.
    Truncated,
    /// A started frame did not complete within the frame read timeout.
    ReadTimeout,
    /// No complete frame arrived within `stale_after`.
    Stale,
    /// The peer declared a frame larger than the limit.
    FrameTooLarge,
    /// Reading failed.
    ReadError,
    /// Writing failed (typically: the peer is gone).
    WriteError,
    /// The service's [`Outcome`](super::Outcome) asked to close.
    ClosedByService,
    /// [`ConnectionHandle::close`] was called.
    ClosedByServer,
    /// The service's replies found the outbound queue full for longer than the reply
    /// timeout.
    SlowConsumer,
    /// The server shut down.
    Shutdown,
}

impl CloseReason {
    /// The reason's snake_case name, used as a metrics label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::Truncated => "truncated",
            CloseReason::ReadTimeout => "read_timeout",
            CloseReason::Stale => "stale",
            CloseReason::FrameTooLarge => "frame_too_large",
            CloseReason::ReadError => "read_error",
            CloseReason::WriteError => "write_error",
            CloseReason::ClosedByService => "closed_by_service",
            CloseReason::ClosedByServer => "closed_by_server",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Shutdown => "shutdown",
        }
    }

    /// Whether the frames still queued are written before closing (otherwise they are
    /// dropped: the peer is gone or the stream cannot be trusted).
    fn drains(self) -> bool {
        matches!(
            self,
            CloseReason::PeerClosed
                | CloseReason::ClosedByService
                | CloseReason::ClosedByServer
                | CloseReason::Shutdown
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`ConnectionHandle::send`] did not queue a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection's outbound queue is full: the peer does not read fast enough. The
    /// frame was not queued; nothing grows.
    #[error("the outbound queue of {id} is full ({capacity} frames)")]
    QueueFull {
        /// The connection.
        id: ConnectionId,
        /// The queue's capacity.
        capacity: usize,
    },
    /// The connection is closing or closed.
    #[error("{id} is closed")]
    Closed {
        /// The connection.
        id: ConnectionId,
    },
    /// The frame exceeds the maximum frame size.
    #[error("a frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The frame's size.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// What a connection's handles share.
struct Shared {
    id: ConnectionId,
    peer: Option<PeerCredentials>,
    tx: mpsc::Sender<Bytes>,
    capacity: usize,
    max_frame_bytes: usize,
    framing: Framing,
    close: watch::Sender<Option<CloseReason>>,
    metrics: Arc<Metrics>,
}

impl Shared {
    /// Asks the connection to close for `reason`, unless a reason was already given.
    fn request_close(&self, reason: CloseReason) {
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }
}

/// A cheap, cloneable handle to push frames to one connection from any task.
///
/// Frames go through the connection's bounded outbound queue, written in order by its
/// writer task; [`ConnectionHandle::send`] never waits and never grows memory.
#[derive(Clone)]
pub struct ConnectionHandle {
    shared: Arc<Shared>,
}

impl ConnectionHandle {
    /// The connection's id.
    #[must_use]
    pub fn id(&self) -> ConnectionId {
        self.shared.id
    }

    /// The peer's credentials, when the transport reports them.
    #[must_use]
    pub fn peer(&self) -> Option<PeerCredentials> {
        self.shared.peer
    }

    /// Queues `frame` (a body, without length prefix) for this connection.
    ///
    /// # Errors
    ///
    /// [`SendError::QueueFull`] when the queue is full (counted as a `queue_full` error),
    /// [`SendError::Closed`] once the connection is closing, [`SendError::TooLarge`] for a
    /// frame above the maximum frame size.
    pub fn send(&self, frame: impl Into<Bytes>) -> Result<(), SendError> {
        let frame = frame.into();
        let shared = &self.shared;
        if frame.len() > shared.max_frame_bytes {
            return Err(SendError::TooLarge {
                len: frame.len(),
                max: shared.max_frame_bytes,
            });
        }
        if shared.close.borrow().is_some() {
            return Err(SendError::Closed { id: shared.id });
        }
        shared.tx.try_send(frame).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => {
                shared.metrics.error("queue_full");
                SendError::QueueFull {
                    id: shared.id,
                    capacity: shared.capacity,
                }
            }
            mpsc::error::TrySendError::Closed(_) => SendError::Closed { id: shared.id },
        })
    }

    /// Frames waiting in the outbound queue now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.shared
            .capacity
            .saturating_sub(self.shared.tx.capacity())
    }

    /// Closes the connection gracefully: no more frames are read, the frames already
    /// queued are written (within the drain timeout), then the connection is closed.
    pub fn close(&self) {
        self.shared.request_close(CloseReason::ClosedByServer);
    }

    /// Whether the connection is closing or closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.close.borrow().is_some()
    }

    /// The server's metrics (see [`ConnectionInfo::metrics`]).
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Marks the connection closed for `reason` (unless it already was), so that sends
    /// fail; used when its task was aborted and cannot say so itself.
    pub(crate) fn mark_closed(&self, reason: CloseReason) {
        self.shared.request_close(reason);
    }
}

/// A spawned task that is aborted when this guard is dropped, so that a task never
/// outlives the task that owns it (for example when the server's future is dropped).
#[derive(Debug)]
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl fmt::Debug for ConnectionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionHandle")
            .field("id", &self.shared.id)
            .field("peer", &self.shared.peer)
            .field("closing", &*self.shared.close.borrow())
            .finish_non_exhaustive()
    }
}

/// What a [`Service`] knows about the connection a frame came from.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    handle: ConnectionHandle,
}

impl ConnectionInfo {
    /// The connection's id.
    #[must_use]
    pub fn id(&self) -> ConnectionId {
        self.handle.id()
    }

    /// The peer's credentials (`SO_PEERCRED` on Unix sockets), when the transport reports
    /// them.
    #[must_use]
    pub fn peer(&self) -> Option<PeerCredentials> {
        self.handle.peer()
    }

    /// A handle to push frames to this connection later, or to close it.
    #[must_use]
    pub fn handle(&self) -> &ConnectionHandle {
        &self.handle
    }

    /// The server's metrics, for the service to record message types
    /// ([`Metrics::record_message`]) and handling latencies
    /// ([`Metrics::record_latency`]).
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        self.handle.metrics()
    }
}

/// What the writer task is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterMode {
    Run,
    /// Write what is queued until this instant, then close.
    Drain(Instant),
    /// Stop now, dropping what is queued.
    Abort,
}

/// A connection ready to be served: its info (handle included) and its halves.
pub(crate) struct Opened {
    pub(crate) info: ConnectionInfo,
    reader: BoxReader,
    writer: BoxWriter,
    rx: mpsc::Receiver<Bytes>,
    close_rx: watch::Receiver<Option<CloseReason>>,
}

/// Sets up the queue and handle of a new connection.
pub(crate) fn open(
    id: ConnectionId,
    peer: Option<PeerCredentials>,
    reader: BoxReader,
    writer: BoxWriter,
    config: &ServerConfig,
    metrics: Arc<Metrics>,
) -> Opened {
    let capacity = config.outbound_queue_capacity.max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let (close, close_rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        id,
        peer,
        tx,
        capacity,
        max_frame_bytes: config.max_frame_bytes,
        framing: config.framing,
        close,
        metrics,
    });
    Opened {
        info: ConnectionInfo {
            handle: ConnectionHandle { shared },
        },
        reader,
        writer,
        rx,
        close_rx,
    }
}

/// Serves one connection until it closes; returns why it closed. The caller removes it
/// from the registry and counts the close.
pub(crate) async fn serve<S: Service>(
    opened: Opened,
    service: Arc<S>,
    config: Arc<ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) -> CloseReason {
    let Opened {
        info,
        mut reader,
        writer,
        rx,
        mut close_rx,
    } = opened;
    let shared = Arc::clone(&info.handle.shared);
    let metrics = Arc::clone(&shared.metrics);

    let (mode_tx, mode_rx) = watch::channel(WriterMode::Run);
    // Owned by this task: if it is aborted (the server's future dropped), the writer is
    // aborted too and the socket closes, rather than the writer living on detached.
    let mut writer_task = AbortOnDrop(tokio::spawn(
        write_loop(
            writer,
            rx,
            mode_rx,
            config.heartbeat.clone(),
            Arc::clone(&shared),
        )
        .in_current_span(),
    ));

    service.on_connect(&info).await;

    let mut codec = FrameCodec::new(config.framing, config.max_frame_bytes);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    // When the first byte of the frame being received arrived; `None` between frames.
    let mut started: Option<Instant> = None;
    let mut last_frame = Instant::now();

    // Futures that live across iterations: re-creating them for every frame registers
    // and deregisters waiters and timers each time, which shows in the round trip.
    let close = close_requested(&mut close_rx);
    tokio::pin!(close);
    let shutdown_started = super::shutdown_requested(&mut shutdown);
    tokio::pin!(shutdown_started);
    // One timer for both deadlines. It is moved only when a deadline comes *earlier*
    // than where it is armed; when it fires early (the stale deadline moved on with each
    // frame) the loop re-arms it. So a steady exchange touches the timer wheel rarely.
    let timer = tokio::time::sleep_until(Instant::now() + FAR_FUTURE);
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;

    let reason = 'conn: loop {
        match codec.decode(&mut buf) {
            Ok(Some(event)) => {
                let now = Instant::now();
                last_frame = now;
                started = if buf.is_empty() { None } else { Some(now) };
                let outcome = match event {
                    FrameEvent::Frame(frame) => {
                        metrics.message_in(frame.len());
                        service.handle(&info, frame.freeze()).await
                    }
                    FrameEvent::Bad(bad) => {
                        tracing::info!(kind = bad.kind, "skipped a bad frame");
                        service.on_bad_frame(&info, bad).await
                    }
                };
                if let Some(kind) = outcome.error {
                    metrics.error(kind);
                }
                for reply in outcome.frames {
                    if reply.len() > config.max_frame_bytes {
                        tracing::warn!(
                            len = reply.len(),
                            max = config.max_frame_bytes,
                            "dropping a reply above the frame limit"
                        );
                        metrics.error("reply_too_large");
                        continue;
                    }
                    // Room in the queue is the common case: no timer for it.
                    let reply = match shared.tx.try_send(reply) {
                        Ok(()) => continue,
                        // The writer is gone; the close request says why.
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                        Err(mpsc::error::TrySendError::Full(reply)) => reply,
                    };
                    match tokio::time::timeout(config.reply_timeout, shared.tx.send(reply)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_closed)) => break,
                        Err(_elapsed) => {
                            metrics.error("slow_consumer");
                            break 'conn CloseReason::SlowConsumer;
                        }
                    }
                }
                if outcome.close {
                    break CloseReason::ClosedByService;
                }
                continue;
            }
            Ok(None) => {}
            Err(FatalFrameError::TooLarge { declared, max }) => {
                tracing::warn!(declared, max, "peer declared a frame above the limit");
                metrics.error("frame_too_large");
                break CloseReason::FrameTooLarge;
            }
            Err(error) => {
                tracing::warn!(%error, "framing error");
                metrics.error("read_io");
                break CloseReason::ReadError;
            }
        }

        let frame_deadline = started.map(|at| at + config.frame_read_timeout);
        let stale_deadline = config.stale_after.map(|after| last_frame + after);
        let deadline = match (frame_deadline, stale_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(8 * 1024);
        }
        if let Some(deadline) = deadline
            && armed.is_none_or(|at| deadline < at)
        {
            timer.as_mut().reset(deadline);
            armed = Some(deadline);
        }

        tokio::select! {
            biased;
            reason = &mut close => break reason,
            () = &mut shutdown_started => break CloseReason::Shutdown,
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) => {
                    if started.is_some() || !buf.is_empty() {
                        metrics.error("truncated");
                        break CloseReason::Truncated;
                    }
                    break CloseReason::PeerClosed;
                }
                Ok(_) => {
                    if started.is_none() {
                        started = Some(Instant::now());
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "read failed");
                    metrics.error("read_io");
                    break CloseReason::ReadError;
                }
            },
            () = &mut timer, if armed.is_some() => {
                let now = Instant::now();
                if deadline.is_none_or(|at| at > now) {
                    // Armed for a deadline that has since moved: re-arm and go on.
                    armed = None;
                    timer.as_mut().reset(now + FAR_FUTURE);
                    continue;
                }
                if frame_deadline.is_some_and(|at| at <= now) {
                    tracing::info!(timeout = ?config.frame_read_timeout, "frame not completed in time");
                    metrics.error("read_timeout");
                    break CloseReason::ReadTimeout;
                }
                tracing::info!(after = ?config.stale_after, "no frame received; connection is stale");
                metrics.error("stale");
                break CloseReason::Stale;
            }
        }
    };

    shared.request_close(reason);
    drop(reader);
    let mode = if reason.drains() {
        WriterMode::Drain(Instant::now() + config.drain_timeout)
    } else {
        WriterMode::Abort
    };
    // The writer may have finished already (write error); then there is no receiver.
    let _ = mode_tx.send(mode);
    if tokio::time::timeout(config.drain_timeout + WRITER_MARGIN, &mut writer_task)
        .await
        .is_err()
    {
        writer_task.0.abort();
    }
    tracing::debug!(%reason, "connection closed");
    service.on_close(&info, reason).await;
    reason
}

/// Resolves with the reason once a close is requested.
async fn close_requested(close: &mut watch::Receiver<Option<CloseReason>>) -> CloseReason {
    match close.wait_for(Option::is_some).await {
        Ok(reason) => (*reason).unwrap_or(CloseReason::ClosedByServer),
        Err(_) => CloseReason::ClosedByServer,
    }
}

/// Writes queued frames (coalescing what is ready into one write) and heartbeats until
/// told to drain or abort.
async fn write_loop(
    mut writer: BoxWriter,
    mut rx: mpsc::Receiver<Bytes>,
    mut mode: watch::Receiver<WriterMode>,
    heartbeat: Option<Heartbeat>,
    shared: Arc<Shared>,
) {
    let mut codec = FrameCodec::new(shared.framing, shared.max_frame_bytes);
    let mut out = BytesMut::new();
    let mut ticker = heartbeat.map(|heartbeat| {
        let mut interval = tokio::time::interval_at(
            Instant::now() + heartbeat.interval,
            heartbeat.interval.max(Duration::from_millis(1)),
        );
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        (interval, heartbeat.frame, heartbeat.message_type)
    });
    let mut frames = Vec::new();
    loop {
        let current = *mode.borrow_and_update();
        match current {
            WriterMode::Run => {}
            WriterMode::Abort => return,
            WriterMode::Drain(deadline) => {
                drain(writer, rx, &mut codec, &shared, deadline).await;
                return;
            }
        }
        // Queued frames first: a ready frame is taken without registering for the other
        // events, and the mode is read again at the top of every turn anyway.
        tokio::select! {
            biased;
            frame = rx.recv() => {
                let Some(frame) = frame else { return };
                frames.push(frame);
                while frames.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(frame) => frames.push(frame),
                        Err(_) => break,
                    }
                }
            }
            () = tick(&mut ticker) => {
                if let Some((_, make, message_type)) = &ticker {
                    frames.push(make(shared.id));
                    if let Some(message_type) = message_type {
                        shared.metrics.record_message(super::Direction::Out, message_type);
                    }
                }
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        let (count, bytes) = encode(&mut codec, &mut out, frames.drain(..), &shared);
        // The write usually completes at once; the abort watch is polled only if not.
        let written = tokio::select! {
            biased;
            result = writer.write_all(&out) => result,
            () = aborted(&mut mode) => return,
        };
        out.clear();
        if let Err(error) = written {
            tracing::debug!(%error, "write failed");
            shared.metrics.error("write_io");
            shared.request_close(CloseReason::WriteError);
            return;
        }
        shared.metrics.messages_out(count, bytes);
    }
}

/// Waits for the next heartbeat tick, or forever without heartbeats.
async fn tick(
    ticker: &mut Option<(
        tokio::time::Interval,
        super::config::HeartbeatFn,
        Option<&'static str>,
    )>,
) {
    match ticker {
        Some((interval, _, _)) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves once the writer is told to abort (or its controller is gone).
async fn aborted(mode: &mut watch::Receiver<WriterMode>) {
    let _ = mode.wait_for(|mode| *mode == WriterMode::Abort).await;
}

/// Encodes `frames` into `out`; returns how many were encoded and their body bytes.
fn encode(
    codec: &mut FrameCodec,
    out: &mut BytesMut,
    frames: impl IntoIterator<Item = Bytes>,
    shared: &Shared,
) -> (usize, usize) {
    let (mut count, mut bytes) = (0, 0);
    for frame in frames {
        let len = frame.len();
        match codec.encode(frame, out) {
            Ok(()) => {
                count += 1;
                bytes += len;
            }
            Err(error) => {
                tracing::warn!(%error, "dropping an outbound frame");
                shared.metrics.error("frame_too_large_out");
            }
        }
    }
    (count, bytes)
}

/// Writes every frame still queued, until `deadline`, then shuts the write half down.
async fn drain(
    mut writer: BoxWriter,
    mut rx: mpsc::Receiver<Bytes>,
    codec: &mut FrameCodec,
    shared: &Shared,
    deadline: Instant,
) {
    rx.close();
    let mut frames = Vec::new();
    while let Ok(frame) = rx.try_recv() {
        frames.push(frame);
    }
    let mut out = BytesMut::new();
    let (count, bytes) = encode(codec, &mut out, frames, shared);
    let result = tokio::time::timeout_at(deadline, async {
        writer.write_all(&out).await?;
        writer.shutdown().await
    })
    .await;
    match result {
        Ok(Ok(())) => shared.metrics.messages_out(count, bytes),
        Ok(Err(error)) => {
            tracing::debug!(%error, "write failed while draining");
            shared.metrics.error("write_io");
        }
        Err(_elapsed) => {
            tracing::info!("drain deadline passed; dropping the frames still queued");
            shared.metrics.error("drain_timeout");
        }
    }
}
