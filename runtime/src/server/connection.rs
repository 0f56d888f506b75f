//! One served connection: its handle, its reader loop and its writer task.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use super::config::{Heartbeat, ServerConfig};
use super::metrics::Metrics;
use super::outbox::{Batch, Outbox, PushError};
use super::service::Service;
use crate::codec::{FatalFrameError, FrameCodec, FrameEvent};
use crate::transport::{BoxReader, BoxWriter, ConnectionId, PeerCredentials};

/// The read buffer's starting size: small, so an idle connection costs little memory.
const MIN_READ: usize = 1024;

/// The read buffer's largest size, reached by doubling while reads fill it.
const MAX_READ: usize = 64 * 1024;

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
    #[error("the outbound queue of {id} is full (at most {max_frames} frames, {max_bytes} bytes)")]
    QueueFull {
        /// The connection.
        id: ConnectionId,
        /// The queue's frame limit.
        max_frames: usize,
        /// The queue's byte limit.
        max_bytes: usize,
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
    /// The framing cannot carry the frame (for lines: empty, not UTF-8, with a newline
    /// or a trailing carriage return).
    #[error("the frame cannot be sent: {reason}")]
    Invalid {
        /// Why.
        reason: String,
    },
}

/// What a connection's handles share.
struct Shared {
    id: ConnectionId,
    peer: Option<PeerCredentials>,
    outbox: Outbox,
    max_frame_bytes: usize,
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
/// writer task; [`ConnectionHandle::send`] never waits and never grows memory beyond the
/// queue's limits ([`ServerConfig::outbound_queue_capacity`] frames,
/// [`ServerConfig::outbound_queue_bytes`] bytes).
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

    /// Queues `frame` (a body, without framing) for this connection.
    ///
    /// # Errors
    ///
    /// [`SendError::QueueFull`] when the queue is full (counted as a `queue_full` error),
    /// [`SendError::Closed`] once the connection is closing, [`SendError::TooLarge`] for a
    /// frame above the maximum frame size, [`SendError::Invalid`] for a frame the framing
    /// cannot carry.
    pub fn send(&self, frame: impl AsRef<[u8]>) -> Result<(), SendError> {
        self.send_parts(&[frame.as_ref()])
    }

    /// Queues one frame whose body is `parts` concatenated: the body is framed straight
    /// into the queue, so a frame assembled from pieces (say, a received payload between
    /// a new head and tail) costs no buffer of its own. Errors as [`Self::send`].
    ///
    /// # Errors
    ///
    /// As [`Self::send`].
    pub fn send_parts(&self, parts: &[&[u8]]) -> Result<(), SendError> {
        let len = parts.iter().map(|part| part.len()).sum();
        self.push(len, || self.shared.outbox.push(parts))
    }

    /// [`Self::send_parts`] for text: the parts are UTF-8 by their type, so newline
    /// framing does not check them again.
    ///
    /// # Errors
    ///
    /// As [`Self::send`].
    pub fn send_str_parts(&self, parts: &[&str]) -> Result<(), SendError> {
        let len = parts.iter().map(|part| part.len()).sum();
        self.push(len, || self.shared.outbox.push_str(parts))
    }

    fn push(
        &self,
        len: usize,
        push: impl FnOnce() -> Result<(), PushError>,
    ) -> Result<(), SendError> {
        let shared = &self.shared;
        if len > shared.max_frame_bytes {
            return Err(SendError::TooLarge {
                len,
                max: shared.max_frame_bytes,
            });
        }
        if shared.close.borrow().is_some() {
            return Err(SendError::Closed { id: shared.id });
        }
        push().map_err(|error| match error {
            PushError::Full => {
                shared.metrics.error("queue_full");
                SendError::QueueFull {
                    id: shared.id,
                    max_frames: shared.outbox.max_frames(),
                    max_bytes: shared.outbox.max_bytes(),
                }
            }
            PushError::Closed => SendError::Closed { id: shared.id },
            PushError::Invalid(reason) => SendError::Invalid { reason },
        })
    }

    /// Frames waiting in the outbound queue now (a batch being written not counted).
    #[must_use]
    pub fn queued(&self) -> usize {
        self.shared.outbox.queued().0
    }

    /// Bytes waiting in the outbound queue now, framing included.
    #[must_use]
    pub fn queued_bytes(&self) -> usize {
        self.shared.outbox.queued().1
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
    let (close, close_rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        id,
        peer,
        outbox: Outbox::new(
            config.framing,
            config.max_frame_bytes,
            config.outbound_queue_capacity,
            config.outbound_queue_bytes,
        ),
        max_frame_bytes: config.max_frame_bytes,
        close,
        metrics,
    });
    Opened {
        info: ConnectionInfo {
            handle: ConnectionHandle { shared },
        },
        reader,
        writer,
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
            mode_rx,
            config.heartbeat.clone(),
            Arc::clone(&shared),
        )
        .in_current_span(),
    ));

    service.on_connect(&info).await;

    let mut codec = FrameCodec::new(config.framing, config.max_frame_bytes);
    // Grows while reads fill it and shrinks when they do not, so a busy connection reads
    // in large chunks and an idle one holds little.
    let mut read_size = MIN_READ;
    let mut buf = BytesMut::new();
    // When the first byte of the frame being received arrived; `None` between frames.
    let mut started: Option<Instant> = None;
    // When the last read returned: the arrival time of every frame it completed, so the
    // clock is read once per read rather than once per frame.
    let mut read_at = Instant::now();
    let mut last_frame = read_at;

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
                last_frame = read_at;
                started = if buf.is_empty() { None } else { Some(read_at) };
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
                    let pushed = match shared.outbox.push(&[&reply]) {
                        Err(PushError::Full) => {
                            shared
                                .outbox
                                .push_wait(&[&reply], config.reply_timeout)
                                .await
                        }
                        other => other,
                    };
                    match pushed {
                        Ok(()) => {}
                        // The writer is gone; the close request says why.
                        Err(PushError::Closed) => break,
                        Err(PushError::Invalid(reason)) => {
                            tracing::warn!(%reason, "dropping a reply the framing cannot carry");
                            metrics.error("frame_too_large_out");
                        }
                        Err(PushError::Full) => {
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
            Err(FatalFrameError::BadHeader(error)) => {
                tracing::warn!(%error, "bad binary header");
                metrics.error("bad_header");
                break CloseReason::ReadError;
            }
            Err(error) => {
                tracing::warn!(%error, "framing error");
                metrics.error("read_io");
                break CloseReason::ReadError;
            }
        }

        let frame_deadline = started
            .zip(config.frame_read_timeout)
            .map(|(at, timeout)| at + timeout);
        let stale_deadline = config.stale_after.map(|after| last_frame + after);
        let deadline = match (frame_deadline, stale_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if buf.is_empty() && buf.capacity() > 2 * read_size {
            // Reads shrank back after a burst: let the burst's buffer go.
            buf = BytesMut::new();
        }
        if buf.capacity() - buf.len() < read_size / 2 {
            buf.reserve(read_size);
        }
        let room = buf.capacity() - buf.len();
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
                Ok(n) => {
                    read_at = Instant::now();
                    if started.is_none() {
                        started = Some(read_at);
                    }
                    if n == room {
                        read_size = (read_size * 2).min(MAX_READ);
                    } else if n < read_size / 4 {
                        read_size = (read_size / 2).max(MIN_READ);
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

/// Writes queued frames (everything queued at a time, in one write) and heartbeats
/// until told to drain or abort.
async fn write_loop(
    mut writer: BoxWriter,
    mut mode: watch::Receiver<WriterMode>,
    heartbeat: Option<Heartbeat>,
    shared: Arc<Shared>,
) {
    let mut ticker = heartbeat.map(|heartbeat| {
        let mut interval = tokio::time::interval_at(
            Instant::now() + heartbeat.interval,
            heartbeat.interval.max(Duration::from_millis(1)),
        );
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        (interval, heartbeat.frame, heartbeat.message_type)
    });
    let mut batch = Batch::default();
    loop {
        let current = *mode.borrow_and_update();
        match current {
            WriterMode::Run => {}
            WriterMode::Abort => return,
            WriterMode::Drain(deadline) => {
                drain(writer, &shared, deadline).await;
                return;
            }
        }
        if !shared.outbox.take(&mut batch) {
            // Nothing queued: wait for a push, a heartbeat or a new mode.
            tokio::select! {
                biased;
                () = shared.outbox.ready() => {}
                () = tick(&mut ticker) => {
                    if let Some((_, make, message_type)) = &ticker {
                        // A full queue already has frames on their way; the peer
                        // hears from us without a heartbeat.
                        if shared.outbox.push(&[&make(shared.id)]).is_ok()
                            && let Some(message_type) = message_type
                        {
                            shared.metrics.record_message(super::Direction::Out, message_type);
                        }
                    }
                }
                changed = mode.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            continue;
        }
        // The write usually completes at once; the abort watch is polled only if not.
        let written = tokio::select! {
            biased;
            result = writer.write_all(&batch.bytes) => result,
            () = aborted(&mut mode) => return,
        };
        if let Err(error) = written {
            tracing::debug!(%error, "write failed");
            shared.metrics.error("write_io");
            shared.request_close(CloseReason::WriteError);
            return;
        }
        shared.metrics.messages_out(batch.frames, batch.body_bytes);
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

/// Writes every frame still queued, until `deadline`, then shuts the write half down.
async fn drain(mut writer: BoxWriter, shared: &Shared, deadline: Instant) {
    let batch = shared.outbox.close();
    let result = tokio::time::timeout_at(deadline, async {
        writer.write_all(&batch.bytes).await?;
        writer.shutdown().await
    })
    .await;
    match result {
        Ok(Ok(())) => shared.metrics.messages_out(batch.frames, batch.body_bytes),
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
