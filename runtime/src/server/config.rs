//! [`ServerConfig`]: limits, timeouts, heartbeats and the refusal frame.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::profile::WireProfile;
use crate::transport::{ConnectionId, PeerCredentials};

/// Builds the frame sent to a connection refused at the connection limit (`None` sends
/// nothing and just closes).
pub type RefusalFn = Arc<dyn Fn(&RefusalInfo) -> Option<Bytes> + Send + Sync>;

/// Builds one heartbeat frame (called for every heartbeat, so each can carry a fresh id
/// and timestamp).
pub type HeartbeatFn = Arc<dyn Fn(ConnectionId) -> Bytes + Send + Sync>;

/// What the refusal callback knows about a connection it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefusalInfo {
    /// The refused connection's id.
    pub id: ConnectionId,
    /// Its peer's credentials, when the transport reports them.
    pub peer: Option<PeerCredentials>,
    /// The connection limit that was reached.
    pub max_connections: usize,
}

/// Server-initiated keep-alive frames.
#[derive(Clone)]
pub struct Heartbeat {
    /// Time between heartbeats on each connection (the first one after one interval).
    pub interval: Duration,
    /// Encodes one heartbeat frame.
    pub frame: HeartbeatFn,
    /// The heartbeat's message type, counted in the per-type metrics for every heartbeat
    /// sent (`None` counts nothing).
    pub message_type: Option<&'static str>,
}

impl fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heartbeat")
            .field("interval", &self.interval)
            .field("message_type", &self.message_type)
            .finish_non_exhaustive()
    }
}

/// How a [`Server`](super::Server) treats its connections.
///
/// Made from a catalogue's wire profile ([`ServerConfig::from_profile`]), then adjusted
/// by the service (its command line, a heartbeat frame builder, a refusal frame).
#[derive(Clone)]
pub struct ServerConfig {
    /// How frames are cut (the catalogue's framing).
    pub framing: crate::codec::Framing,
    /// Connections served at once; one more is refused (see `refusal`) and closed.
    pub max_connections: usize,
    /// The largest frame body accepted or sent, in bytes. A peer declaring more is
    /// disconnected before anything is allocated for it.
    pub max_frame_bytes: usize,
    /// Frames queued per connection waiting to be written. A push beyond it fails with
    /// [`SendError::QueueFull`](super::SendError::QueueFull).
    pub outbound_queue_capacity: usize,
    /// Bytes (framing included) queued per connection waiting to be written, NATS's
    /// `max_pending`: a push that would go beyond it fails like one beyond
    /// `outbound_queue_capacity`. An empty queue takes any frame, so every frame up to
    /// `max_frame_bytes` can be sent whatever this limit. The batch the writer is
    /// writing no longer counts, so a connection holds at most about twice this.
    pub outbound_queue_bytes: usize,
    /// How long a frame may take to arrive completely once its first byte was received;
    /// a connection exceeding it is dropped. `None` waits for ever.
    pub frame_read_timeout: Option<Duration>,
    /// A connection that sends no complete frame for this long is stale and dropped;
    /// `None` keeps idle connections forever.
    pub stale_after: Option<Duration>,
    /// Heartbeats the server sends on each connection, or `None`.
    pub heartbeat: Option<Heartbeat>,
    /// The frame sent to a connection refused at the limit, or `None` to send nothing.
    pub refusal: Option<RefusalFn>,
    /// How long the service's replies to one frame may wait for room in a full outbound
    /// queue before the connection is closed as a slow consumer.
    pub reply_timeout: Duration,
    /// How long a closing connection may take to write the frames still queued (and the
    /// refusal frame to take), and how long graceful shutdown waits for connections to
    /// finish before aborting them.
    pub drain_timeout: Duration,
}

impl ServerConfig {
    /// Frames queued per connection unless the service says otherwise.
    pub const OUTBOUND_QUEUE_CAPACITY: usize = 256;
    /// Bytes queued per connection unless the service says otherwise: 64 MiB, NATS's
    /// default `max_pending`.
    pub const OUTBOUND_QUEUE_BYTES: usize = 64 * 1024 * 1024;
    /// How long replies may wait for room in a full queue unless the service says
    /// otherwise.
    pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long closing and shutdown may take unless the service says otherwise.
    pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

    /// The configuration the catalogue's wire profile describes: its framing, frame
    /// limit (the line limit for newline framing), connection limit (none when the
    /// catalogue sets none), frame read timeout and stale time. Heartbeat and refusal
    /// frames are the service's to build (`profile.timing.heartbeat_interval` says how
    /// often); the queue bounds and drain times are the runtime's own (the associated
    /// constants), as no catalogue states them.
    #[must_use]
    pub fn from_profile(profile: &WireProfile) -> ServerConfig {
        ServerConfig {
            framing: profile.framing,
            max_connections: profile.limits.max_connections.unwrap_or(usize::MAX),
            max_frame_bytes: profile.max_frame_bytes(),
            outbound_queue_capacity: Self::OUTBOUND_QUEUE_CAPACITY,
            outbound_queue_bytes: Self::OUTBOUND_QUEUE_BYTES,
            frame_read_timeout: profile.timing.frame_read_timeout,
            stale_after: profile.timing.stale_after,
            heartbeat: None,
            refusal: None,
            reply_timeout: Self::REPLY_TIMEOUT,
            drain_timeout: Self::DRAIN_TIMEOUT,
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("framing", &self.framing)
            .field("max_connections", &self.max_connections)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("outbound_queue_capacity", &self.outbound_queue_capacity)
            .field("outbound_queue_bytes", &self.outbound_queue_bytes)
            .field("frame_read_timeout", &self.frame_read_timeout)
            .field("stale_after", &self.stale_after)
            .field("heartbeat", &self.heartbeat)
            .field("refusal", &self.refusal.as_ref().map(|_| "<fn>"))
            .field("reply_timeout", &self.reply_timeout)
            .field("drain_timeout", &self.drain_timeout)
            .finish()
    }
}
