//! The client: one connection, fire-and-forget sends, and requests that resolve when
//! the frame answering them arrives.
//!
//! Like the server, the client is catalogue-agnostic: frames are byte strings, and a
//! [`Correlator`] says which id a request carries and which id an inbound frame answers.
//! [`JsonCorrelator`] reads them from top-level fields of a JSON envelope
//! (`id` / `correlationId` for the ipcspec catalogues).
//!
//! - [`Client::send`] queues a frame on the bounded outbound queue (waiting for room);
//!   [`Client::try_send`] fails with [`ClientError::QueueFull`] instead.
//! - [`Client::request`] registers the request's id in a pending map of oneshot senders,
//!   sends the frame and waits, up to a timeout, for an inbound frame whose correlation id
//!   matches. A reply arriving after its request timed out (or was cancelled) is discarded
//!   and counted ([`ClientMetrics::late_replies`]); the last
//!   [`ClientConfig::remembered_expired_ids`] such ids are remembered for this.
//! - Every other inbound frame goes to the [`Inbound`] channel. It is bounded: a client
//!   that neither reads nor drops its [`Inbound`] eventually stops reading the connection
//!   (replies included). Dropping [`Inbound`] discards such frames (counted).
//! - When the connection closes, pending requests fail with [`ClientError::Closed`] and
//!   [`Inbound::recv`] returns `None`. Dropping every clone of the [`Client`] writes the
//!   frames still queued and closes the connection's write side.
//!
//! [`ReconnectingClient`] wraps a [`Client`] for peers that must survive restarts:
//! exponential backoff with jitter, a bounded queue while disconnected, and resend of
//! unacknowledged messages with their original bytes (so the server can suppress
//! duplicates by id) before the queue is flushed in order.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::codec::{FrameCodec, FrameEvent, Framing};
use crate::profile::WireProfile;
use crate::transport::unix::ConnectError;
use crate::transport::{BoxReader, BoxWriter, Connection, ConnectionId, PeerCredentials};

pub mod reconnect;
pub use reconnect::{ReconnectConfig, ReconnectError, ReconnectPolicy, ReconnectingClient};

/// Frames the writer coalesces into one write.
const MAX_BATCH: usize = 64;

/// Finds the ids that tie requests and replies together.
pub trait Correlator: Send + Sync + 'static {
    /// The id an outgoing request carries, which its reply's correlation id will equal.
    fn request_id(&self, frame: &[u8]) -> Option<String>;

    /// The id an inbound frame answers, when it is a reply.
    fn correlation_id(&self, frame: &[u8]) -> Option<String>;
}

/// A [`Correlator`] for JSON objects: the request id and the correlation id are
/// top-level fields. String values are used as they are; numbers by their JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonCorrelator {
    /// The field holding a message's id (`id`).
    pub id_field: &'static str,
    /// The field holding the id a reply answers (`correlationId`).
    pub correlation_field: &'static str,
}

impl JsonCorrelator {
    /// The ipcspec JSON envelope: `id` and `correlationId`.
    pub const ENVELOPE: JsonCorrelator = JsonCorrelator {
        id_field: "id",
        correlation_field: "correlationId",
    };

    /// The value of the top-level field `name` of a JSON object: a string as it is,
    /// anything else but `null` by its JSON text. Scans the object once without building
    /// a map (this runs for every frame sent and received).
    fn field(frame: &[u8], name: &str) -> Option<String> {
        use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

        struct Field<'n>(&'n str);

        impl<'de> Visitor<'de> for Field<'_> {
            type Value = Option<&'de RawValue>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if found.is_none() && key == self.0 {
                        found = Some(map.next_value::<&'de RawValue>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(found)
            }
        }

        impl<'de> DeserializeSeed<'de> for Field<'_> {
            type Value = Option<&'de RawValue>;

            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }
        }

        let mut deserializer = serde_json::Deserializer::from_slice(frame);
        let raw = Field(name).deserialize(&mut deserializer).ok()??;
        if let Ok(text) = serde_json::from_str::<String>(raw.get()) {
            return Some(text);
        }
        match raw.get().trim() {
            "null" => None,
            other => Some(other.to_owned()),
        }
    }
}

impl Default for JsonCorrelator {
    fn default() -> Self {
        JsonCorrelator::ENVELOPE
    }
}

impl Correlator for JsonCorrelator {
    fn request_id(&self, frame: &[u8]) -> Option<String> {
        JsonCorrelator::field(frame, self.id_field)
    }

    fn correlation_id(&self, frame: &[u8]) -> Option<String> {
        JsonCorrelator::field(frame, self.correlation_field)
    }
}

/// Limits of a [`Client`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// How frames are cut (the catalogue's framing; a line newline framing must skip
    /// is logged and counted in `bad_frames`).
    pub framing: Framing,
    /// The largest frame body sent or accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Frames queued waiting to be written.
    pub outbound_queue_capacity: usize,
    /// Inbound frames (not replies) waiting to be read from [`Inbound`].
    pub inbound_queue_capacity: usize,
    /// How many ids of timed-out or cancelled requests are remembered, so their late
    /// replies are discarded rather than delivered to [`Inbound`].
    pub remembered_expired_ids: usize,
    /// Close the connection when nothing at all is received for this long (the server
    /// is presumed dead: its heartbeats stopped); `None` waits for ever.
    pub idle_timeout: Option<Duration>,
}

impl ClientConfig {
    /// Frames queued each way unless the client says otherwise.
    pub const QUEUE_CAPACITY: usize = 256;
    /// Expired request ids remembered unless the client says otherwise.
    pub const REMEMBERED_EXPIRED_IDS: usize = 1024;

    /// The configuration the catalogue's wire profile describes: its framing, its frame
    /// limit (the line limit for newline framing), and an idle timeout of the profile's
    /// stale time (the server's heartbeats stopped). Queue sizes are the runtime's own
    /// (the associated constants), as no catalogue states them.
    #[must_use]
    pub fn from_profile(profile: &WireProfile) -> ClientConfig {
        ClientConfig {
            framing: profile.framing,
            max_frame_bytes: profile.max_frame_bytes(),
            outbound_queue_capacity: Self::QUEUE_CAPACITY,
            inbound_queue_capacity: Self::QUEUE_CAPACITY,
            remembered_expired_ids: Self::REMEMBERED_EXPIRED_IDS,
            idle_timeout: profile.timing.stale_after,
        }
    }
}

/// Why a send or request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
    /// The outbound queue is full ([`Client::try_send`] only).
    #[error("the outbound queue is full")]
    QueueFull,
    /// The frame exceeds the maximum frame size.
    #[error("a frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The frame's size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The [`Correlator`] found no id in the request.
    #[error("the request carries no id")]
    NoRequestId,
    /// A request with the same id is already waiting for its reply.
    #[error("a request with id `{id}` is already pending")]
    DuplicateRequestId {
        /// The id.
        id: String,
    },
    /// No reply arrived in time.
    #[error("no reply to `{id}` within {after:?}")]
    Timeout {
        /// The request's id.
        id: String,
        /// The timeout.
        after: Duration,
    },
}

/// A [`Client`]'s counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientMetrics {
    /// Frames received.
    pub messages_in: u64,
    /// Frames written.
    pub messages_out: u64,
    /// Replies delivered to a waiting request.
    pub replies: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Replies that arrived after their request timed out or was cancelled, discarded.
    pub late_replies: u64,
    /// Inbound frames discarded because [`Inbound`] was dropped.
    pub inbound_dropped: u64,
    /// Connections closed by [`ClientConfig::idle_timeout`].
    pub idle_timeouts: u64,
    /// Inbound frames the framing skipped (newline framing: over-long or not UTF-8).
    pub bad_frames: u64,
}

#[derive(Debug, Default)]
struct Counters {
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    replies: AtomicU64,
    timeouts: AtomicU64,
    late_replies: AtomicU64,
    inbound_dropped: AtomicU64,
    idle_timeouts: AtomicU64,
    bad_frames: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Requests waiting for replies, and ids whose requests gave up.
#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<String, oneshot::Sender<Bytes>>,
    expired: VecDeque<String>,
    /// False once the connection is closed: no new request may wait.
    open: bool,
}

/// What the reader task and the request futures share.
#[derive(Debug)]
struct Router {
    pending: Mutex<Pending>,
    counters: Counters,
    remembered_expired_ids: usize,
    /// Set by [`Client::close`]; the reader stops.
    close: tokio::sync::watch::Sender<bool>,
    /// Round trips of successful requests.
    round_trips: crate::server::metrics::Histogram,
}

impl Router {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Every critical section leaves the maps consistent.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops waiting for `id`, remembering it so a late reply is recognised.
    fn expire(&self, id: &str) {
        let mut pending = self.pending();
        if pending.waiting.remove(id).is_some() && self.remembered_expired_ids > 0 {
            if pending.expired.len() >= self.remembered_expired_ids {
                pending.expired.pop_front();
            }
            pending.expired.push_back(id.to_owned());
        }
    }
}

/// Removes a request from the pending map if it is dropped before its reply arrives
/// (timeout or cancellation).
struct PendingGuard<'a> {
    router: &'a Router,
    id: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.router.expire(&self.id);
    }
}

struct Inner {
    id: ConnectionId,
    peer: Option<PeerCredentials>,
    tx: mpsc::Sender<Bytes>,
    max_frame_bytes: usize,
    correlator: Arc<dyn Correlator>,
    router: Arc<Router>,
}

/// A connection to a server; cheap to clone (clones share the connection). See the
/// [module documentation](self).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.inner.id)
            .field("peer", &self.inner.peer)
            .finish_non_exhaustive()
    }
}

/// The inbound frames that are not replies to requests.
#[derive(Debug)]
pub struct Inbound {
    rx: mpsc::Receiver<Bytes>,
}

impl Inbound {
    /// The next inbound frame, or `None` once the connection is closed and every frame
    /// received was read.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }
}

impl Client {
    /// Connects to the Unix socket at `path` within `timeout`.
    ///
    /// # Errors
    ///
    /// The [`ConnectError`] of [`unix::connect`](crate::transport::unix::connect()).
    pub async fn connect(
        path: impl AsRef<Path>,
        timeout: Duration,
        config: ClientConfig,
        correlator: impl Correlator,
    ) -> Result<(Client, Inbound), ConnectError> {
        let connection = crate::transport::unix::connect(path, timeout).await?;
        Ok(Client::from_connection(connection, config, correlator))
    }

    /// A client over an established connection (from any transport).
    ///
    /// # Panics
    ///
    /// Panics outside a tokio runtime (it spawns the reader and writer tasks).
    pub fn from_connection(
        connection: Connection,
        config: ClientConfig,
        correlator: impl Correlator,
    ) -> (Client, Inbound) {
        let id = connection.id();
        let peer = connection.peer();
        let (reader, writer) = connection.into_split();
        let (tx, rx) = mpsc::channel(config.outbound_queue_capacity.max(1));
        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_queue_capacity.max(1));
        let correlator: Arc<dyn Correlator> = Arc::new(correlator);
        let router = Arc::new(Router {
            pending: Mutex::new(Pending {
                open: true,
                ..Pending::default()
            }),
            counters: Counters::default(),
            remembered_expired_ids: config.remembered_expired_ids,
            close: tokio::sync::watch::Sender::new(false),
            round_trips: crate::server::metrics::Histogram::default(),
        });
        let span = tracing::debug_span!("ipcspec.client", %id);
        tokio::spawn(
            write_loop(
                writer,
                rx,
                config.framing,
                config.max_frame_bytes,
                Arc::clone(&router),
            )
            .instrument(span.clone()),
        );
        tokio::spawn(
            read_loop(
                reader,
                inbound_tx,
                config.framing,
                config.max_frame_bytes,
                config.idle_timeout,
                Arc::clone(&correlator),
                Arc::clone(&router),
            )
            .instrument(span),
        );
        let client = Client {
            inner: Arc::new(Inner {
                id,
                peer,
                tx,
                max_frame_bytes: config.max_frame_bytes,
                correlator,
                router,
            }),
        };
        (client, Inbound { rx: inbound_rx })
    }

    /// The connection's id.
    #[must_use]
    pub fn id(&self) -> ConnectionId {
        self.inner.id
    }

    /// Closes the connection now: reading and writing stop (frames queued and not yet
    /// written are dropped), [`Inbound`] ends once drained, waiting requests and later
    /// sends fail with [`ClientError::Closed`]. Used to give up on a peer that stopped
    /// answering (a [`ReconnectingClient`] then reconnects and resends what was not
    /// acknowledged).
    pub fn close(&self) {
        self.inner.router.close.send_replace(true);
    }

    /// The server's credentials, when the transport reports them.
    #[must_use]
    pub fn peer(&self) -> Option<PeerCredentials> {
        self.inner.peer
    }

    fn check_size(&self, frame: &Bytes) -> Result<(), ClientError> {
        if frame.len() > self.inner.max_frame_bytes {
            return Err(ClientError::TooLarge {
                len: frame.len(),
                max: self.inner.max_frame_bytes,
            });
        }
        Ok(())
    }

    /// Queues `frame`, waiting for room in the outbound queue.
    ///
    /// # Errors
    ///
    /// [`ClientError::Closed`] once the connection is closed, [`ClientError::TooLarge`].
    pub async fn send(&self, frame: impl Into<Bytes>) -> Result<(), ClientError> {
        let frame = frame.into();
        self.check_size(&frame)?;
        self.inner
            .tx
            .send(frame)
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Queues `frame` without waiting.
    ///
    /// # Errors
    ///
    /// [`ClientError::QueueFull`], [`ClientError::Closed`], [`ClientError::TooLarge`].
    pub fn try_send(&self, frame: impl Into<Bytes>) -> Result<(), ClientError> {
        let frame = frame.into();
        self.check_size(&frame)?;
        self.inner.tx.try_send(frame).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => ClientError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => ClientError::Closed,
        })
    }

    /// Sends `frame` and waits up to `timeout` (queueing included) for the inbound frame
    /// whose correlation id equals the request's id.
    ///
    /// # Errors
    ///
    /// [`ClientError::NoRequestId`] when the correlator finds no id,
    /// [`ClientError::DuplicateRequestId`] when that id is already pending,
    /// [`ClientError::Timeout`] (a reply arriving later is discarded and counted),
    /// [`ClientError::Closed`] when the connection closes first, [`ClientError::TooLarge`].
    pub async fn request(
        &self,
        frame: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        let frame = frame.into();
        self.check_size(&frame)?;
        let id = self
            .inner
            .correlator
            .request_id(&frame)
            .ok_or(ClientError::NoRequestId)?;
        let router = &*self.inner.router;
        let (reply_tx, reply_rx) = oneshot::channel();
        {
            let mut pending = router.pending();
            if !pending.open {
                return Err(ClientError::Closed);
            }
            if pending.waiting.contains_key(&id) {
                return Err(ClientError::DuplicateRequestId { id });
            }
            pending.expired.retain(|expired| *expired != id);
            pending.waiting.insert(id.clone(), reply_tx);
        }
        let guard = PendingGuard {
            router,
            id: id.clone(),
        };
        let sent_at = std::time::Instant::now();
        let exchange = async {
            self.inner
                .tx
                .send(frame)
                .await
                .map_err(|_| ClientError::Closed)?;
            reply_rx.await.map_err(|_| ClientError::Closed)
        };
        let result = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_elapsed) => {
                bump(&router.counters.timeouts);
                Err(ClientError::Timeout { id, after: timeout })
            }
        };
        drop(guard);
        if result.is_ok() {
            router.round_trips.record(sent_at.elapsed());
        }
        result
    }

    /// The round-trip latency of the requests answered so far (queueing included), in
    /// the same buckets as the server's handling-latency histogram.
    #[must_use]
    pub fn round_trip_latency(&self) -> crate::server::LatencyHistogram {
        self.inner.router.round_trips.snapshot()
    }

    /// The counters now.
    #[must_use]
    pub fn metrics(&self) -> ClientMetrics {
        let counters = &self.inner.router.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ClientMetrics {
            messages_in: load(&counters.messages_in),
            messages_out: load(&counters.messages_out),
            replies: load(&counters.replies),
            timeouts: load(&counters.timeouts),
            late_replies: load(&counters.late_replies),
            inbound_dropped: load(&counters.inbound_dropped),
            idle_timeouts: load(&counters.idle_timeouts),
            bad_frames: load(&counters.bad_frames),
        }
    }
}

/// Reads frames, routing replies to their requests and the rest to `inbound`; on close,
/// fails every pending request.
async fn read_loop(
    mut reader: BoxReader,
    inbound: mpsc::Sender<Bytes>,
    framing: Framing,
    max_frame_bytes: usize,
    idle_timeout: Option<Duration>,
    correlator: Arc<dyn Correlator>,
    router: Arc<Router>,
) {
    let mut closed = router.close.subscribe();
    let mut codec = FrameCodec::new(framing, max_frame_bytes);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut inbound = Some(inbound);
    'read: loop {
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(FrameEvent::Frame(frame))) => {
                    let frame = frame.freeze();
                    bump(&router.counters.messages_in);
                    route(frame, &mut inbound, &*correlator, &router).await;
                }
                Ok(Some(FrameEvent::Bad(bad))) => {
                    tracing::warn!(kind = bad.kind, detail = %bad.detail, "skipped a bad frame from the server");
                    bump(&router.counters.bad_frames);
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "framing error; closing");
                    break 'read;
                }
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(8 * 1024);
        }
        let read = tokio::select! {
            read = reader.read_buf(&mut buf) => read,
            () = idle(idle_timeout) => {
                tracing::warn!(?idle_timeout, "nothing received from the server; closing");
                bump(&router.counters.idle_timeouts);
                // The writer stops too: the peer is presumed dead.
                router.close.send_replace(true);
                break;
            }
            _ = closed.wait_for(|closed| *closed) => {
                tracing::debug!("closed by the client");
                break;
            }
        };
        match read {
            Ok(0) => {
                if !buf.is_empty() {
                    tracing::debug!(bytes = buf.len(), "connection closed inside a frame");
                }
                break;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "read failed; closing");
                break;
            }
        }
    }
    let mut pending = router.pending();
    pending.open = false;
    // Dropping the senders fails every waiting request with `Closed`.
    pending.waiting.clear();
}

/// Resolves after `timeout` (restarted for every read), or never.
async fn idle(timeout: Option<Duration>) {
    match timeout {
        Some(timeout) => tokio::time::sleep(timeout).await,
        None => std::future::pending().await,
    }
}

/// Delivers one inbound frame.
async fn route(
    frame: Bytes,
    inbound: &mut Option<mpsc::Sender<Bytes>>,
    correlator: &dyn Correlator,
    router: &Router,
) {
    if let Some(id) = correlator.correlation_id(&frame) {
        let mut pending = router.pending();
        if let Some(waiter) = pending.waiting.remove(&id) {
            drop(pending);
            bump(&router.counters.replies);
            // The request may have given up at this very moment; then it is late.
            if waiter.send(frame).is_err() {
                bump(&router.counters.late_replies);
            }
            return;
        }
        if let Some(position) = pending.expired.iter().position(|expired| *expired == id) {
            pending.expired.remove(position);
            drop(pending);
            tracing::debug!(%id, "discarding a reply that arrived after its request gave up");
            bump(&router.counters.late_replies);
            return;
        }
    }
    let delivered = match inbound {
        Some(sender) => sender.send(frame).await.is_ok(),
        None => false,
    };
    if !delivered {
        *inbound = None;
        bump(&router.counters.inbound_dropped);
    }
}

/// Writes queued frames until every [`Client`] clone is dropped, then closes the write
/// side.
async fn write_loop(
    mut writer: BoxWriter,
    mut rx: mpsc::Receiver<Bytes>,
    framing: Framing,
    max_frame_bytes: usize,
    router: Arc<Router>,
) {
    let mut closed = router.close.subscribe();
    let mut codec = FrameCodec::new(framing, max_frame_bytes);
    let mut out = BytesMut::new();
    loop {
        let frame = tokio::select! {
            frame = rx.recv() => frame,
            _ = closed.wait_for(|closed| *closed) => None,
        };
        let Some(frame) = frame else { break };
        let mut frames = vec![frame];
        while frames.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(frame) => frames.push(frame),
                Err(_) => break,
            }
        }
        let mut count = 0;
        for frame in frames {
            // Sizes were checked when queueing; a line the framing cannot carry (an
            // embedded newline) is dropped with a warning rather than split in two.
            match codec.encode(frame, &mut out) {
                Ok(()) => count += 1,
                Err(error) => tracing::warn!(%error, "dropping an outbound frame"),
            }
        }
        let written = tokio::select! {
            written = writer.write_all(&out) => written,
            _ = closed.wait_for(|closed| *closed) => break,
        };
        if let Err(error) = written {
            tracing::debug!(%error, "write failed; closing");
            return;
        }
        out.clear();
        router
            .counters
            .messages_out
            .fetch_add(count, Ordering::Relaxed);
    }
    let _ = writer.shutdown().await;
}
