//! [`WireProfile`]: everything about a catalogue's wire that a connection needs, as plain
//! data. The runtime defines the types and knows no catalogue; the generator fills one
//! constant per catalogue (`<catalogue>::WIRE`), and servers, clients and codecs are built
//! from it ([`ServerConfig::from_profile`](crate::server::ServerConfig::from_profile),
//! [`ClientConfig::from_profile`](crate::client::ClientConfig::from_profile),
//! [`ReconnectConfig::from_profile`](crate::client::ReconnectConfig::from_profile),
//! [`WireProfile::codec`]). A value the catalogue leaves out is `None` here, never a
//! default borrowed from another catalogue.

use std::time::Duration;

use crate::codec::{FrameCodec, Framing};

/// A catalogue's wire profile: framing, limits, timings and the messages that play a
/// role in the protocol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WireProfile {
    /// The catalogue's name (`migration`).
    pub catalogue: &'static str,
    /// How the byte stream is cut into messages.
    pub framing: Framing,
    /// Size and count limits.
    pub limits: Limits,
    /// Timeouts and intervals.
    pub timing: Timing,
    /// The messages with a role in the protocol, by wire name.
    pub messages: RoleMessages,
}

/// The catalogue's limits (`wire.limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest message, in bytes (for binary headers, header included).
    pub max_message_bytes: usize,
    /// The longest line of newline-delimited framing, in bytes, the newline not counted.
    pub max_line_bytes: Option<usize>,
    /// The deepest JSON nesting a receiver accepts.
    pub max_nesting_depth: Option<usize>,
    /// Connections a server serves at once.
    pub max_connections: Option<usize>,
}

/// The catalogue's timings (`wire.timing`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Time between heartbeats.
    pub heartbeat_interval: Option<Duration>,
    /// Silence after which a peer is presumed dead.
    pub stale_after: Option<Duration>,
    /// How long a connection attempt may take.
    pub connect_timeout: Option<Duration>,
    /// How long a request waits for its answer.
    pub request_timeout: Option<Duration>,
    /// How long a started frame may take to arrive completely.
    pub frame_read_timeout: Option<Duration>,
    /// How a client reconnects.
    pub reconnect: Option<Reconnect>,
}

/// The catalogue's reconnection policy (`wire.timing.reconnect`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reconnect {
    /// Attempts in a row before giving up.
    pub max_attempts: u32,
    /// The wait before the first attempt.
    pub initial_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
    /// Growth factor of the wait.
    pub multiplier: f64,
    /// Randomised fraction of each wait.
    pub jitter: f64,
    /// Messages queued while disconnected.
    pub max_queued_messages: Option<usize>,
}

/// The messages with a role in the protocol (`wire.ackMessage` and the like).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleMessages {
    /// The acknowledgment.
    pub ack: Option<&'static str>,
    /// The error reply.
    pub error: Option<&'static str>,
    /// The heartbeat.
    pub heartbeat: Option<&'static str>,
}

impl WireProfile {
    /// The largest frame body: the line limit for newline-delimited framing, the message
    /// limit otherwise.
    #[must_use]
    pub fn max_frame_bytes(&self) -> usize {
        match self.framing {
            Framing::Newline => self
                .limits
                .max_line_bytes
                .unwrap_or(self.limits.max_message_bytes),
            Framing::LengthPrefixed(_) | Framing::BinaryHeader(_) => self.limits.max_message_bytes,
        }
    }

    /// A decoder and encoder for this profile's framing and frame limit.
    #[must_use]
    pub fn codec(&self) -> FrameCodec {
        FrameCodec::new(self.framing, self.max_frame_bytes())
    }
}
