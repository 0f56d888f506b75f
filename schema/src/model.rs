//! The catalogue model: the Rust form of the catalogue language.
//!
//! These types are what a catalogue file deserializes into and what the meta-schema
//! (`specs/catalogue.schema.json`) is generated from, so their doc comments are the
//! descriptions an editor shows. They are plain data: no IO, no positions. Where a
//! diagnostic needs a position, the loader keeps a JSON pointer in [`Src`] and the
//! [`crate::SourceMap`] turns it into a byte span.
//!
//! Every collection is a JSON array of objects with a `name`, never an object keyed by
//! name: the order of fields is meaningful (C layout, docs), and a duplicate name is a
//! diagnostic that can point at both definitions instead of a key silently overwritten.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::intlit::IntLit;

/// Where an item came from: the JSON pointer of its object in the catalogue file.
/// Filled by the loader; not part of the catalogue language.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Src(pub String);

impl Src {
    /// The pointer of a member of this item, e.g. `src.at("fields").at(3)`.
    pub fn at(&self, token: impl std::fmt::Display) -> Src {
        let token = token.to_string().replace('~', "~0").replace('/', "~1");
        Src(format!("{}/{}", self.0, token))
    }

    /// The pointer as text (`""` for the document root).
    pub fn pointer(&self) -> &str {
        &self.0
    }
}

/// A protocol catalogue: every message of one IPC system, written once.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "ipcspec catalogue")]
pub struct Catalogue {
    /// Path or URL of the meta-schema, so editors complete and check the file.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Identifier of the catalogue, lower kebab-case (`migration`, `direct-ipc`). Generated
    /// modules and files are named after it.
    pub name: String,
    /// Human title used in generated documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Semantic version of the protocol (`MAJOR.MINOR.PATCH`).
    pub version: String,
    /// What the system is and who talks to whom.
    pub description: String,
    /// The parties of the protocol.
    pub roles: Vec<Role>,
    /// Logical channels when a system uses more than one kind of connection (for example
    /// a control channel to a broker and direct peer channels). Omit for a single channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
    /// How messages travel: transports, framing, encoding, envelope, limits, timing.
    pub wire: WireProfile,
    /// Named types used by payloads, headers and ioctl arguments.
    #[serde(default)]
    pub types: Vec<TypeDef>,
    /// The messages of the protocol.
    pub messages: Vec<Message>,
    /// ioctl commands (Linux `_IO`/`_IOR`/`_IOW`/`_IOWR` numbers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ioctls: Vec<Ioctl>,
    /// Named constants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constants: Vec<Constant>,
    /// Error codes a peer may report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorCode>,
    /// Lifecycles of roles, connections and requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state_machines: Vec<StateMachine>,
}

/// A party of the protocol, e.g. `service` and `agent`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Role {
    /// Lower snake_case or kebab-case identifier used by messages and state machines.
    pub name: String,
    /// What this party is and how it runs.
    pub doc: String,
    #[serde(skip)]
    pub src: Src,
}

/// A logical channel: one kind of connection between two ends.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Channel {
    /// Identifier referenced by transports and messages.
    pub name: String,
    /// The two ends of a connection of this channel; each end is a role or a list of roles
    /// that may stand there (`["main", ["renderer", "utility"]]`).
    pub between: Vec<Names>,
    /// What the channel carries.
    pub doc: String,
    #[serde(skip)]
    pub src: Src,
}

/// One name, or a list of them (roles of a channel end or state machine, channels of a
/// message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Names {
    /// A single name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl Names {
    /// The names, in order.
    pub fn names(&self) -> &[String] {
        match self {
            Names::One(one) => std::slice::from_ref(one),
            Names::Many(many) => many,
        }
    }

    /// True if `role` is among them.
    pub fn contains(&self, role: &str) -> bool {
        self.names().iter().any(|r| r == role)
    }
}

// By hand for the same reason as `TypeRef`: untagged's only error is "did not match".
impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamesVisitor;

        impl<'de> serde::de::Visitor<'de> for NamesVisitor {
            type Value = Names;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a name or a list of names")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Names, E> {
                Ok(Names::One(v.to_owned()))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Names, A::Error> {
                Vec::<String>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(Names::Many)
            }
        }

        deserializer.deserialize_any(NamesVisitor)
    }
}

// ---------------------------------------------------------------------------------------
// Wire profile
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------

/// A built-in scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PrimitiveType {
    /// `true` or `false`; one byte in C layout.
    Bool,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary64.
    F64,
    /// UTF-8 text.
    String,
    /// Raw bytes; base64 (RFC 4648, padded) in JSON.
    Bytes,
    /// A UUID; canonical hyphenated lower-case text in JSON, 16 bytes in binary.
    Uuid,
    /// An instant; RFC 3339 UTC text in JSON, u64 nanoseconds since the Unix epoch in binary.
    Timestamp,
    /// A span of time; integer milliseconds in JSON, u64 nanoseconds in binary.
    Duration,
    /// Any JSON value (an application-defined payload such as an event's data).
    Json,
    /// A file descriptor passed beside the frame (SCM_RIGHTS); in JSON, its index among
    /// the descriptors received with the frame.
    Fd,
}

impl PrimitiveType {
    /// Every primitive with its catalogue spelling.
    pub const ALL: [(PrimitiveType, &'static str); 18] = [
        (Self::Bool, "bool"),
        (Self::I8, "i8"),
        (Self::I16, "i16"),
        (Self::I32, "i32"),
        (Self::I64, "i64"),
        (Self::U8, "u8"),
        (Self::U16, "u16"),
        (Self::U32, "u32"),
        (Self::U64, "u64"),
        (Self::F32, "f32"),
        (Self::F64, "f64"),
        (Self::String, "string"),
        (Self::Bytes, "bytes"),
        (Self::Uuid, "uuid"),
        (Self::Timestamp, "timestamp"),
        (Self::Duration, "duration"),
        (Self::Json, "json"),
        (Self::Fd, "fd"),
    ];

    /// The primitive spelled `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(p, _)| *p)
    }

    /// The catalogue spelling.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// Inclusive range of an integer primitive.
    pub fn int_range(self) -> Option<(i128, i128)> {
        Some(match self {
            Self::I8 => (i8::MIN.into(), i8::MAX.into()),
            Self::I16 => (i16::MIN.into(), i16::MAX.into()),
            Self::I32 => (i32::MIN.into(), i32::MAX.into()),
            Self::I64 => (i64::MIN.into(), i64::MAX.into()),
            Self::U8 => (0, u8::MAX.into()),
            Self::U16 => (0, u16::MAX.into()),
            Self::U32 => (0, u32::MAX.into()),
            Self::U64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }

    /// True for the unsigned integers.
    pub fn is_unsigned(self) -> bool {
        matches!(self, Self::U8 | Self::U16 | Self::U32 | Self::U64)
    }

    /// True for the floating-point types.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64)
    }

    /// Size and alignment in C layout, for the primitives C layout admits.
    pub fn c_size(self) -> Option<u64> {
        Some(match self {
            Self::Bool | Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::I64 | Self::U64 | Self::F64 | Self::Timestamp | Self::Duration => 8,
            Self::Uuid => 16,
            _ => return None,
        })
    }

    /// Alignment in C layout (a UUID is a byte array).
    pub fn c_align(self) -> Option<u64> {
        match self {
            Self::Uuid => Some(1),
            other => other.c_size(),
        }
    }
}

/// A reference to a type: a primitive or named type by name, or a composite.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TypeRef {
    /// A primitive (`u32`, `string`, ...) or the name of a type in `types`.
    Named(String),
    /// A composite type.
    Composite(Composite),
}

// Written by hand rather than `#[serde(untagged)]`, whose only error is "did not match any
// variant": a map is handed to `Composite` so its own precise error (unknown key, missing
// `len`) reaches the catalogue author.
impl<'de> Deserialize<'de> for TypeRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TypeRefVisitor;

        impl<'de> serde::de::Visitor<'de> for TypeRefVisitor {
            type Value = TypeRef;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a type name (\"u32\", \"MyStruct\") or {\"list\": T}, {\"map\": T}, {\"array\": {\"of\": T, \"len\": N}}",
                )
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TypeRef, E> {
                Ok(TypeRef::Named(v.to_owned()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<TypeRef, A::Error> {
                Composite::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(TypeRef::Composite)
            }
        }

        deserializer.deserialize_any(TypeRefVisitor)
    }
}

/// A composite type: exactly one of `list`, `map`, `array`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Composite {
    /// A variable-length sequence of the element type.
    List(Box<TypeRef>),
    /// A JSON object with string keys and values of the given type.
    Map(Box<TypeRef>),
    /// A fixed-size array: `{"array": {"of": "u8", "len": 16}}`.
    Array(FixedArray),
}

/// A fixed-size array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixedArray {
    /// Element type.
    pub of: Box<TypeRef>,
    /// Number of elements (at least 1).
    pub len: IntLit,
}

/// Value constraints on a field or alias. JSON Schema keywords with the same meaning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Constraints {
    /// Smallest allowed number (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// Largest allowed number (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// Shortest allowed string, in Unicode scalar values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<IntLit>,
    /// Longest allowed string, in Unicode scalar values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<IntLit>,
    /// ECMA-262 regular expression the whole string must match (write `^...$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Fewest list elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<IntLit>,
    /// Most list elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<IntLit>,
}

impl Constraints {
    /// True when no constraint is set.
    pub fn is_empty(&self) -> bool {
        self == &Constraints::default()
    }
}

/// A named type, selected by `kind`.
// Catalogues hold dozens of types, loaded once: boxing variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum TypeDef {
    /// A record of named fields.
    Struct(StructDef),
    /// A string enumeration.
    Enum(EnumDef),
    /// An integer enumeration with an explicit width.
    IntEnum(IntEnumDef),
    /// A tagged union.
    Union(UnionDef),
    /// Another name for a type, optionally narrowed by constraints.
    Alias(AliasDef),
}

impl TypeDef {
    /// The type's name.
    pub fn name(&self) -> &str {
        match self {
            TypeDef::Struct(d) => &d.name,
            TypeDef::Enum(d) => &d.name,
            TypeDef::IntEnum(d) => &d.name,
            TypeDef::Union(d) => &d.name,
            TypeDef::Alias(d) => &d.name,
        }
    }

    /// The type's documentation.
    pub fn doc(&self) -> &str {
        match self {
            TypeDef::Struct(d) => &d.doc,
            TypeDef::Enum(d) => &d.doc,
            TypeDef::IntEnum(d) => &d.doc,
            TypeDef::Union(d) => &d.doc,
            TypeDef::Alias(d) => &d.doc,
        }
    }

    /// Where the type is defined.
    pub fn src(&self) -> &Src {
        match self {
            TypeDef::Struct(d) => &d.src,
            TypeDef::Enum(d) => &d.src,
            TypeDef::IntEnum(d) => &d.src,
            TypeDef::Union(d) => &d.src,
            TypeDef::Alias(d) => &d.src,
        }
    }

    /// Sets where the type is defined (used by the loader).
    pub fn set_src(&mut self, src: Src) {
        match self {
            TypeDef::Struct(d) => d.src = src,
            TypeDef::Enum(d) => d.src = src,
            TypeDef::IntEnum(d) => d.src = src,
            TypeDef::Union(d) => d.src = src,
            TypeDef::Alias(d) => d.src = src,
        }
    }

    /// The `kind` keyword of this definition.
    pub fn kind(&self) -> &'static str {
        match self {
            TypeDef::Struct(_) => "struct",
            TypeDef::Enum(_) => "enum",
            TypeDef::IntEnum(_) => "intEnum",
            TypeDef::Union(_) => "union",
            TypeDef::Alias(_) => "alias",
        }
    }
}

/// Layout of a struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Layout {
    /// A JSON object (or an ordered record in binary tails); no C representation.
    #[default]
    Record,
    /// C layout: fields at natural alignment with every padding byte an explicit field.
    C,
}

/// A struct definition.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StructDef {
    /// The type's name, PascalCase or the name a seed gives it.
    pub name: String,
    /// What the type means.
    pub doc: String,
    /// `c` for structs that cross a binary boundary (binary payloads, ioctl arguments).
    #[serde(default)]
    pub layout: Layout,
    /// C layout only: the size the author expects; checked against the computed size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<IntLit>,
    /// The fields, in wire order.
    pub fields: Vec<Field>,
    #[serde(skip)]
    pub src: Src,
}

/// A field of a struct.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Field {
    /// The key on the wire (JSON) or the member name (C), exactly as written.
    pub name: String,
    /// The field's type.
    #[serde(rename = "type")]
    pub ty: TypeRef,
    /// What the field means, with its unit.
    pub doc: String,
    /// The key may be absent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// The value may be `null`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nullable: bool,
    /// Value constraints.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub constraints: Constraints,
    /// C layout: this field is padding and must be zero.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub padding: bool,
    /// C layout: this `u64` holds a user-space pointer to `pointee.of` elements, counted
    /// by the integer field `pointee.countField`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointee: Option<Pointee>,
    /// Binary tail field (`bytes`, `string` or a list after the fixed part): the integer
    /// field of the fixed part that holds its element count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_field: Option<String>,
}

/// What a user pointer points to.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pointee {
    /// Element type.
    pub of: TypeRef,
    /// The integer field holding the number of elements.
    pub count_field: String,
}

/// A string enumeration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnumDef {
    /// The type's name, PascalCase or the name a seed gives it.
    pub name: String,
    /// What the type means.
    pub doc: String,
    /// The members.
    pub values: Vec<EnumValue>,
    #[serde(skip)]
    pub src: Src,
}

/// A member of a string enumeration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnumValue {
    /// The member's name in generated code (e.g. `RENDERER`).
    pub name: String,
    /// The string on the wire (e.g. `renderer`); defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What the member means.
    pub doc: String,
}

impl EnumValue {
    /// The string on the wire.
    pub fn wire(&self) -> &str {
        self.value.as_deref().unwrap_or(&self.name)
    }
}

/// An integer enumeration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntEnumDef {
    /// The type's name, PascalCase or the name a seed gives it.
    pub name: String,
    /// What the type means.
    pub doc: String,
    /// The integer type that carries the value.
    pub repr: PrimitiveType,
    /// The members.
    pub values: Vec<IntEnumValue>,
    #[serde(skip)]
    pub src: Src,
}

/// A member of an integer enumeration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntEnumValue {
    /// The member's name in generated code.
    pub name: String,
    /// The value on the wire.
    pub value: IntLit,
    /// What the member means.
    pub doc: String,
}

/// How a union's variant is marked on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UnionRepr {
    /// `{"<tag>": "Variant", ...variant fields}`; every variant must be a record struct.
    Internal,
    /// `{"<tag>": "Variant", "<content>": {...}}`.
    Adjacent,
}

/// A tagged union.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnionDef {
    /// The type's name, PascalCase or the name a seed gives it.
    pub name: String,
    /// What the type means.
    pub doc: String,
    /// Representation on the wire.
    pub repr: UnionRepr,
    /// Key holding the variant's tag.
    pub tag: String,
    /// Adjacent representation only: key holding the variant's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The variants.
    pub variants: Vec<Variant>,
    #[serde(skip)]
    pub src: Src,
}

/// A union variant.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Variant {
    /// The variant's name in generated code.
    pub name: String,
    /// The tag on the wire; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_value: Option<String>,
    /// The variant's content type; absent for a variant that carries nothing.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<TypeRef>,
    /// What the variant means.
    pub doc: String,
}

impl Variant {
    /// The tag on the wire.
    pub fn wire(&self) -> &str {
        self.tag_value.as_deref().unwrap_or(&self.name)
    }
}

/// An alias.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AliasDef {
    /// The type's name, PascalCase or the name a seed gives it.
    pub name: String,
    /// What the type means.
    pub doc: String,
    /// The aliased type.
    #[serde(rename = "type")]
    pub ty: TypeRef,
    /// Constraints narrowing the aliased type.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub constraints: Constraints,
    #[serde(skip)]
    pub src: Src,
}

// ---------------------------------------------------------------------------------------
// Messages, ioctls, constants, errors
// ---------------------------------------------------------------------------------------

/// A message of the protocol.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Message {
    /// The wire name, exactly as peers write it (e.g. `BACKUP_REQUEST`, `SendEvent`).
    pub name: String,
    /// Numeric type code; required by binary-header framing, unique per catalogue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<IntLit>,
    /// Names that send it.
    pub from: Vec<String>,
    /// Names that receive it.
    pub to: Vec<String>,
    /// The channel (or channels) it travels on, when the catalogue declares channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Names>,
    /// Payload type; absent for a message without payload (`{}` in JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<TypeRef>,
    /// The message the receiver answers with, correlated by the envelope's correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// This message is a reply (it carries a correlation id).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_reply: bool,
    /// The receiver acknowledges it with `wire.ackMessage`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub acknowledged: bool,
    /// Default priority: a value name of `wire.priority.enum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// What the message means, when it is sent and what the receiver does.
    pub doc: String,
    #[serde(skip)]
    pub src: Src,
}

/// Direction of an ioctl's argument transfer, seen from user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum IoctlDirection {
    /// `_IO`: no argument.
    None,
    /// `_IOR`: the kernel writes the argument for user space to read.
    Read,
    /// `_IOW`: user space writes the argument for the kernel.
    Write,
    /// `_IOWR`: both.
    ReadWrite,
}

/// An ioctl command.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ioctl {
    /// The request macro name (e.g. `VEXFS_IOCTL_IPC_REGISTER_SERVICE`).
    pub name: String,
    /// The ioctl type (magic): one character such as `"V"`, or an integer 0..=255.
    pub magic: IntLit,
    /// The command number, 0..=255.
    pub number: IntLit,
    /// Direction of the argument.
    pub direction: IoctlDirection,
    /// The argument struct (C layout); absent for direction `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg: Option<String>,
    /// What the command does and what it returns.
    pub doc: String,
    #[serde(skip)]
    pub src: Src,
}

/// A named constant.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Constant {
    /// Name, SCREAMING_SNAKE_CASE.
    pub name: String,
    /// Type: an integer, float, bool or string primitive.
    #[serde(rename = "type")]
    pub ty: PrimitiveType,
    /// The value: a number, a hex string (`"0x56455849"`), a bool or a string.
    pub value: serde_json::Value,
    /// What the constant means, with its unit.
    pub doc: String,
    #[serde(skip)]
    pub src: Src,
}

/// An error code.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorCode {
    /// Symbolic name, as it appears on the wire where errors are strings.
    pub name: String,
    /// Numeric code, where errors are numbers on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<IntLit>,
    /// When it is reported and what the receiver should do.
    pub doc: String,
    #[serde(skip)]
    pub src: Src,
}

// ---------------------------------------------------------------------------------------
// State machines
// ---------------------------------------------------------------------------------------

/// A lifecycle: of a role's session, a connection or a request.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateMachine {
    /// Name (e.g. `RegistrationState`); generated as an enum of the states.
    pub name: String,
    /// The role (or roles) that hold this state.
    pub role: Names,
    /// What the machine tracks.
    pub doc: String,
    /// The state a new instance starts in.
    pub initial: String,
    /// The states.
    pub states: Vec<State>,
    /// The transitions.
    pub transitions: Vec<Transition>,
    #[serde(skip)]
    pub src: Src,
}

/// A state.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct State {
    /// Name (e.g. `SUBSCRIBING`).
    pub name: String,
    /// Wire or display string of the state (e.g. `subscribing`); defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What holds in this state.
    pub doc: String,
    /// Messages the role may send in this state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sends: Vec<String>,
    /// Messages the role accepts in this state; others are a protocol error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receives: Vec<String>,
    /// No transition leaves this state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminal: bool,
}

/// A transition between states.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transition {
    /// Source state.
    pub from: String,
    /// Target state.
    pub to: String,
    /// What causes it: exactly one of `send`, `receive` or `event`.
    pub on: Trigger,
    /// What happens on the way (actions, cleanup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// What causes a transition.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Trigger {
    /// The role sends this message.
    Send(String),
    /// The role receives this message.
    Receive(String),
    /// A local event: `connected`, `closed`, `timeout`, `error`, `exit`, ...
    Event(String),
}
