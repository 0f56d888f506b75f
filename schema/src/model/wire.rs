//! The wire profile: everything a peer must agree on below the level of messages.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{PrimitiveType, TypeRef};
use crate::intlit::IntLit;

/// Everything a peer must agree on below the level of individual messages.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireProfile {
    /// Transports, in order of preference, with their default addresses.
    pub transports: Vec<Transport>,
    /// How the byte stream is cut into messages.
    pub framing: Framing,
    /// How payloads are encoded inside a frame.
    pub encoding: Encoding,
    /// Where the message type, id, correlation id, timestamp and payload live.
    pub envelope: Envelope,
    /// The casing every payload key and envelope key must follow.
    pub key_casing: Casing,
    /// The casing every message wire name must follow, when the protocol has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_casing: Option<Casing>,
    /// How 64-bit integers are written in JSON.
    #[serde(default)]
    pub int64_encoding: Int64Encoding,
    /// What a receiver does with object keys the catalogue does not declare.
    #[serde(default)]
    pub unknown_keys: UnknownKeys,
    /// Size limits, enforced before allocation.
    pub limits: Limits,
    /// Heartbeats, timeouts and reconnection.
    #[serde(default)]
    pub timing: Timing,
    /// The message that acknowledges messages declared `acknowledged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_message: Option<String>,
    /// The message that may answer any request in place of its declared reply (an error
    /// response); it must be a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The keep-alive message sent every `timing.heartbeatIntervalMs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_message: Option<String>,
    /// What a receiver sends for a frame it cannot attribute to a message (its id cannot
    /// be read). Required when the profile has an `ackMessage` or `errorMessage` and the
    /// catalogue declares error codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unattributable: Option<Unattributable>,
    /// Message priorities, when the protocol has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<PriorityProfile>,
    /// Why the profile is what it is: decisions a seed leaves open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// A transport and its default address on one platform.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Transport {
    /// A Unix domain stream socket.
    #[serde(rename_all = "camelCase")]
    Unix {
        /// Default socket path. `$XDG_RUNTIME_DIR` and `$HOME` are expanded by the runtime.
        path: String,
        /// Platforms this transport is used on.
        #[serde(default = "linux")]
        platform: Platform,
        /// File descriptors travel with frames (SCM_RIGHTS).
        #[serde(default)]
        fd_passing: bool,
        /// Channel this transport carries (see `channels`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// Why this transport, and anything a deployer must know.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
    },
    /// A connected pair of Unix sockets created by one process and handed to two peers.
    #[serde(rename_all = "camelCase")]
    Socketpair {
        /// Platforms this transport is used on.
        #[serde(default = "linux")]
        platform: Platform,
        /// File descriptors travel with frames (SCM_RIGHTS).
        #[serde(default)]
        fd_passing: bool,
        /// Channel this transport carries (see `channels`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// How the two ends reach the peers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
    },
    /// A Windows named pipe.
    #[serde(rename_all = "camelCase")]
    NamedPipe {
        /// Pipe name, e.g. `\\.\pipe\XStateNet.MessageBus`.
        name: String,
        /// Platforms this transport is used on.
        #[serde(default = "windows")]
        platform: Platform,
        /// Channel this transport carries (see `channels`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// Why this transport, and anything a deployer must know.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
    },
    /// A Linux netlink socket.
    #[serde(rename_all = "camelCase")]
    Netlink {
        /// Netlink protocol number (`NETLINK_USERSOCK` is 2).
        protocol: IntLit,
        /// Multicast group for announcements, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        multicast_group: Option<IntLit>,
        /// Platforms this transport is used on.
        #[serde(default = "linux")]
        platform: Platform,
        /// Channel this transport carries (see `channels`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// Why this transport, and anything a deployer must know.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
    },
}

fn linux() -> Platform {
    Platform::Linux
}
fn windows() -> Platform {
    Platform::Windows
}

/// An operating system family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Platform {
    /// Linux.
    Linux,
    /// Any Unix-like system with Unix domain sockets (Linux, macOS, BSD).
    Unix,
    /// Windows.
    Windows,
}

/// How a byte stream is cut into messages.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Framing {
    /// An unsigned length prefix counting the body bytes that follow it.
    #[serde(rename_all = "camelCase")]
    LengthPrefixed {
        /// Width of the prefix: `u16`, `u32` or `u64`.
        width: PrimitiveType,
        /// Byte order of the prefix.
        byte_order: ByteOrder,
    },
    /// One UTF-8 message per line, terminated by `\n` (a preceding `\r` is tolerated).
    NewlineDelimited,
    /// A fixed binary header struct that carries the message length.
    #[serde(rename_all = "camelCase")]
    BinaryHeader {
        /// The header struct (a `struct` type with `layout: "c"`).
        header: String,
        /// Byte order of every integer in the header and payload.
        byte_order: ByteOrder,
        /// What the header's length field counts.
        length_counts: LengthCounts,
    },
}

/// Byte order of multi-byte integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ByteOrder {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

/// What a length field counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LengthCounts {
    /// The header and the payload together.
    HeaderAndPayload,
    /// The payload alone.
    Payload,
}

/// Payload encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Encoding {
    /// UTF-8 JSON (RFC 8259).
    Json,
    /// Little-endian binary in C layout, followed by the variable-length tail fields.
    BinaryLe,
}

/// Where the parts of a message live: keys of a JSON object, or fields of the binary
/// header struct. `type` is always required, `payload` in JSON; the rest are optional.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    /// Key (or header field) holding the message type: a wire name in JSON, a code in binary.
    #[serde(rename = "type")]
    pub type_key: String,
    /// JSON only: key holding the payload. In binary framing the payload follows the header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Key (or header field) holding the sender-unique message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Type of the message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_type: Option<TypeRef>,
    /// Key (or header field) holding the send time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Key (or header field) holding the id of the message a reply or acknowledgment answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Binary header only: field holding the total length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<String>,
    /// Binary header only: field holding a fixed magic number, and its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub magic: Option<FixedField>,
    /// Binary header only: field holding the protocol version, and its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<FixedField>,
    /// Binary header only: field holding flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
    /// Binary header only: what the envelope sets in `flags` for each message; with it,
    /// the flags of every message are exactly these bits and a receiver refuses others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag_bits: Option<FlagBits>,
    /// Binary header only: the integrity checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// Envelope members a sender may leave out: `id` and `timestamp` on any message,
    /// `correlationId` on a reply to a message that had no id. Every other member named
    /// above is required on every message (the correlation id on every reply).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional: Vec<EnvelopeMember>,
    /// Why the envelope looks the way it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// The bits the envelope sets in a binary header's flags, per message.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlagBits {
    /// An integer constant whose bits are set on every message marked `isReply` (replies,
    /// errors, acknowledgments) and clear on every other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// An integer constant: the message's priority (the value of the wire profile's
    /// `priority` enum for the message's `priority`, or the profile's default) shifted
    /// left by this many bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_shift: Option<String>,
    /// The error code a receiver answers a message whose flags differ with.
    pub error: String,
}

/// An envelope member that may be optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EnvelopeMember {
    /// The message id.
    Id,
    /// The send time.
    Timestamp,
    /// The correlation id of replies.
    CorrelationId,
}

/// A header field whose value is fixed by the protocol.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixedField {
    /// The header field.
    pub field: String,
    /// The constant (from `constants`) it must hold.
    pub constant: String,
}

/// A checksum over the message.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checksum {
    /// The header field holding the checksum.
    pub field: String,
    /// The algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// What the checksum covers.
    pub covers: ChecksumCoverage,
}

/// Checksum algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ChecksumAlgorithm {
    /// CRC-32C (Castagnoli), as computed by SSE4.2 `crc32`.
    Crc32c,
}

/// What a checksum covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ChecksumCoverage {
    /// The header with the checksum field zeroed, then the payload.
    MessageWithChecksumZeroed,
}

/// A naming convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Casing {
    /// `correlationId`
    #[serde(rename = "camelCase")]
    Camel,
    /// `CorrelationId`
    #[serde(rename = "PascalCase")]
    Pascal,
    /// `correlation_id`
    #[serde(rename = "snake_case")]
    Snake,
    /// `CORRELATION_ID`
    #[serde(rename = "SCREAMING_SNAKE_CASE")]
    ScreamingSnake,
    /// `correlation-id`
    #[serde(rename = "kebab-case")]
    Kebab,
}

/// How 64-bit integers appear in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Int64Encoding {
    /// As JSON numbers. Values beyond 2^53 lose precision in JavaScript `number`.
    #[default]
    Number,
    /// As decimal strings, exact in every language (the protobuf JSON mapping).
    String,
}

/// The answer to a frame whose id cannot be read, so that no peer is left to guess
/// whether it was received.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Unattributable {
    /// The message sent: the profile's `ackMessage` or `errorMessage`.
    pub message: String,
    /// The error code it carries (one of `errors`).
    pub code: String,
    /// What its correlation id holds, since there is no message id to copy.
    pub correlation: UnattributedCorrelation,
    /// When the receiver sends it, and what it does next (closes, or keeps reading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// The correlation id of an answer to a frame nobody can attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UnattributedCorrelation {
    /// The correlation id is left out (JSON envelopes, where it is optional).
    Absent,
    /// The correlation id is the zero value of its type: the nil UUID, or 0 in a binary
    /// header.
    Zero,
}

/// Receiver policy for undeclared object keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UnknownKeys {
    /// Undeclared keys are a schema error.
    #[default]
    Reject,
    /// Undeclared keys are ignored (forward compatibility).
    Ignore,
}

/// Size limits of the wire profile.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Largest message body in bytes (JSON body, or header plus payload for binary).
    pub max_message_bytes: IntLit,
    /// Largest line in bytes, newline excluded (newline-delimited framing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_line_bytes: Option<IntLit>,
    /// Deepest JSON nesting a receiver accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nesting_depth: Option<IntLit>,
    /// Most connections a server accepts at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<IntLit>,
    /// Why these limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// Timing of the wire profile. All durations are in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timing {
    /// Interval between heartbeats sent by each side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_ms: Option<IntLit>,
    /// Silence after which a peer is considered dead (usually several heartbeat intervals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after_ms: Option<IntLit>,
    /// How long a client waits for a connection to be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<IntLit>,
    /// How long a requester waits for a reply or acknowledgment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout_ms: Option<IntLit>,
    /// How long a receiver waits for the rest of a started frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_read_timeout_ms: Option<IntLit>,
    /// How a client reconnects after losing the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect: Option<Reconnect>,
    /// Why these timings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// Reconnection policy: exponential backoff with jitter.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reconnect {
    /// Attempts before giving up.
    pub max_attempts: IntLit,
    /// Delay before the first retry.
    pub initial_delay_ms: IntLit,
    /// Upper bound of the delay.
    pub max_delay_ms: IntLit,
    /// Factor applied to the delay after each failed attempt (at least 1).
    pub multiplier: f64,
    /// Fraction of the delay randomised, 0 (none) to 1 (full jitter).
    pub jitter: f64,
    /// Most messages queued while disconnected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queued_messages: Option<IntLit>,
}

/// Priority levels of messages.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriorityProfile {
    /// The integer enum type whose values are the priorities.
    #[serde(rename = "enum")]
    pub enum_type: String,
    /// The value used when a message declares none.
    pub default: String,
}
