//! What generated handler traits and dispatchers take and return.
//!
//! A generated `dispatch_to_<role>` function decodes a payload for its message type
//! (`decode_json`, `decode_binary`), checks it against the catalogue's constraints
//! ([`validated`]), and only then calls the matching handler method, so a handler
//! receives only values that satisfy the catalogue. It wraps the handler's reply in the
//! role's message enum and passes on what the handler asked for besides ([`Handled`]:
//! follow-up messages, closing the connection). A refusal is a [`HandlerError`] with the
//! catalogue's own error-code enum. The runtime's transports fill the [`MessageContext`]
//! from the envelope or header.

use std::fmt;

use serde_json::value::RawValue;

use crate::binary::{Binary, DecodeError, Reader};
use crate::serde_as::DeserializeAs;
use crate::validate::{Validate, ValidationErrors};

/// A message id or correlation id as the envelope carried it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageId {
    /// A textual id (strings and UUIDs in JSON envelopes).
    Text(String),
    /// A numeric id (binary headers, integer ids).
    Number(u64),
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageId::Text(text) => f.write_str(text),
            MessageId::Number(number) => write!(f, "{number}"),
        }
    }
}

/// Credentials of the peer process, where the transport reports them (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCredentials {
    /// User id.
    pub uid: Option<u32>,
    /// Group id.
    pub gid: Option<u32>,
    /// Process id.
    pub pid: Option<u32>,
}

/// What a handler knows about the message besides its payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageContext {
    /// The message's id, when the envelope has one.
    pub message_id: Option<MessageId>,
    /// The id of the message this one answers, on replies.
    pub correlation_id: Option<MessageId>,
    /// When the sender created the message, when the envelope says.
    pub timestamp: Option<time::OffsetDateTime>,
    /// Who sent it.
    pub peer: PeerCredentials,
}

/// A handler's refusal: one of the catalogue's error codes (`C`, the generated
/// `ErrorCode` enum), a message for the peer, the refusal's structured detail (`D`, what
/// the service's error reply carries besides code and message; `()` when nothing), and
/// whether the connection closes once the refusal is sent. The service turns it into the
/// catalogue's error reply; nothing is parsed back from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError<C, D = ()> {
    /// The catalogue's error code.
    pub code: C,
    /// Detail for the peer.
    pub message: String,
    /// Structured detail of the refusal.
    pub detail: D,
    /// Close the connection after answering (a refusal the catalogue makes final).
    pub close: bool,
}

impl<C, D: Default> HandlerError<C, D> {
    /// A refusal with `code` and `message`, default detail, the connection kept open.
    pub fn new(code: C, message: impl Into<String>) -> Self {
        HandlerError {
            code,
            message: message.into(),
            detail: D::default(),
            close: false,
        }
    }
}

impl<C, D> HandlerError<C, D> {
    /// The same refusal with `detail`.
    #[must_use]
    pub fn with_detail<E>(self, detail: E) -> HandlerError<C, E> {
        HandlerError {
            code: self.code,
            message: self.message,
            detail,
            close: self.close,
        }
    }

    /// The same refusal, closing the connection once it is sent.
    #[must_use]
    pub fn and_close(mut self) -> Self {
        self.close = true;
        self
    }
}

impl<C: fmt::Display, D> fmt::Display for HandlerError<C, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl<C: fmt::Display + fmt::Debug, D: fmt::Debug> std::error::Error for HandlerError<C, D> {}

/// What a handler returns when it accepts a message: its reply (`()` for a message
/// without one), the messages to send on the same connection after the reply or
/// acknowledgment (`F`, in the form the service sends them), and whether the connection
/// closes after that. A handler states these in its return value; the service acts on
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled<R, F = ()> {
    /// The reply.
    pub reply: R,
    /// Messages to send on this connection after the reply, in order.
    pub then: Vec<F>,
    /// Close the connection after sending.
    pub close: bool,
}

impl<R, F> Handled<R, F> {
    /// `reply`, nothing after it, the connection kept open.
    pub fn reply(reply: R) -> Self {
        Handled {
            reply,
            then: Vec::new(),
            close: false,
        }
    }

    /// The same, followed by `messages`.
    #[must_use]
    pub fn then(mut self, messages: impl IntoIterator<Item = F>) -> Self {
        self.then.extend(messages);
        self
    }

    /// The same, closing the connection after sending.
    #[must_use]
    pub fn and_close(mut self) -> Self {
        self.close = true;
        self
    }

    /// The same with the reply mapped by `f` (what a dispatcher does to wrap a reply
    /// payload in the role's message enum).
    pub fn map<S>(self, f: impl FnOnce(R) -> S) -> Handled<S, F> {
        Handled {
            reply: f(self.reply),
            then: self.then,
            close: self.close,
        }
    }
}

impl<F> Handled<(), F> {
    /// Accepted: no reply, nothing after it.
    pub fn done() -> Self {
        Handled::reply(())
    }
}

impl<R, F> From<R> for Handled<R, F> {
    fn from(reply: R) -> Self {
        Handled::reply(reply)
    }
}

/// Why a received message reached no handler: its type is unknown or not received by
/// this role, its payload does not decode, or it breaks the catalogue's constraints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Unhandled {
    /// No message of the catalogue has this wire name.
    #[error("unknown message type `{message_type}`")]
    UnknownType {
        /// The wire name received.
        message_type: String,
    },
    /// No message of the catalogue has this code.
    #[error("unknown message code {code:#x}")]
    UnknownCode {
        /// The code received.
        code: u32,
    },
    /// The catalogue has the message, but this role never receives it.
    #[error("message `{message_type}` is not sent to this role")]
    NotReceived {
        /// The message's wire name.
        message_type: &'static str,
    },
    /// A JSON payload does not match the message's payload type.
    #[error("malformed `{message_type}` payload{}: {source}", at_path(path))]
    MalformedJson {
        /// The message's wire name.
        message_type: &'static str,
        /// Where in the payload decoding failed (`settings.logLevel`, `items[2]`); empty
        /// at the payload itself.
        path: String,
        /// serde's error, with line and column.
        source: serde_json::Error,
    },
    /// A binary payload does not decode as the message's payload type.
    #[error("malformed `{message_type}` payload: {source}")]
    MalformedBinary {
        /// The message's wire name.
        message_type: &'static str,
        /// The codec's error, with field path and offset.
        source: DecodeError,
    },
    /// The payload decodes but breaks the catalogue's constraints; the handler was not
    /// called.
    #[error("invalid `{message_type}` payload: {errors}")]
    Invalid {
        /// The message's wire name.
        message_type: &'static str,
        /// Every violated constraint, with its path.
        errors: ValidationErrors,
    },
}

/// Why a received message was not handled: it reached no handler, or the handler refused
/// it with one of the catalogue's codes (`C`) and detail (`D`).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError<C, D = ()> {
    /// No handler was called.
    #[error(transparent)]
    Unhandled(#[from] Unhandled),
    /// The handler refused the message.
    #[error("`{message_type}` handler refused it: {error}")]
    Refused {
        /// The message's wire name.
        message_type: &'static str,
        /// The handler's refusal.
        error: HandlerError<C, D>,
    },
}

fn at_path(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!(" at `{path}`")
    }
}

/// Decodes `T` strictly from `json` (see [`crate::strict`]), saying where an error
/// happens.
///
/// Tracking the path costs on every value decoded, and almost every payload is valid: so
/// the payload is decoded without tracking first, and only a payload that fails is decoded
/// again, tracked, for the path (the same decoder on the same text fails the same way).
fn decode_tracked<'de, T, A>(json: &'de str) -> Result<T, (String, serde_json::Error)>
where
    A: DeserializeAs<'de, T> + ?Sized,
{
    if let Ok(value) = crate::strict::from_str_as::<T, A>(json) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(
        crate::strict::Strict::new(&mut deserializer),
        &mut track,
    );
    match A::deserialize_as(tracked) {
        Ok(value) => deserializer
            .end()
            .map(|()| value)
            .map_err(|error| (String::new(), error)),
        Err(error) => Err((track.path().to_string(), error)),
    }
}

/// One message of a catalogue, as generated `MESSAGES` tables list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    /// Wire name.
    pub name: &'static str,
    /// Numeric code (binary headers), when the catalogue gives one.
    pub code: Option<u32>,
    /// Roles that send it.
    pub from: &'static [&'static str],
    /// Roles that receive it.
    pub to: &'static [&'static str],
    /// Channels it travels on (empty for single-channel catalogues).
    pub channels: &'static [&'static str],
    /// The payload type as the catalogue writes it (`BackupRequestPayload`,
    /// `list<i64>`), or `None` for a message without payload.
    pub payload: Option<&'static str>,
    /// The message that answers it.
    pub reply: Option<&'static str>,
    /// It answers another message and carries a correlation id.
    pub is_reply: bool,
    /// The receiver acknowledges it with the catalogue's acknowledgment message.
    pub acknowledged: bool,
    /// Its priority value's name, when the catalogue sets one.
    pub priority: Option<&'static str>,
}

/// The message named `name` in `messages`.
pub fn find<'m>(messages: &'m [MessageInfo], name: &str) -> Option<&'m MessageInfo> {
    messages.iter().find(|m| m.name == name)
}

/// The message with code `code` in `messages`.
pub fn find_code(messages: &[MessageInfo], code: u32) -> Option<&MessageInfo> {
    messages.iter().find(|m| m.code == Some(code))
}

/// The error for a message type a dispatcher has no arm for: unknown to the catalogue, or
/// known but not received by the dispatcher's role.
pub fn unhandled(messages: &[MessageInfo], message_type: &str) -> Unhandled {
    match find(messages, message_type) {
        Some(info) => Unhandled::NotReceived {
            message_type: info.name,
        },
        None => Unhandled::UnknownType {
            message_type: message_type.to_owned(),
        },
    }
}

/// [`unhandled`] for a numeric code.
pub fn unhandled_code(messages: &[MessageInfo], code: u32) -> Unhandled {
    match find_code(messages, code) {
        Some(info) => Unhandled::NotReceived {
            message_type: info.name,
        },
        None => Unhandled::UnknownCode { code },
    }
}

/// Wraps a handler's refusal of `message_type` (`.map_err(refused("PING"))`).
pub fn refused<C, D>(
    message_type: &'static str,
) -> impl FnOnce(HandlerError<C, D>) -> DispatchError<C, D> {
    move |error| DispatchError::Refused {
        message_type,
        error,
    }
}

/// Checks a decoded payload of `message_type` against the catalogue's constraints: the
/// step between decoding and the handler. Allocates nothing for a valid payload.
pub fn validated<T: Validate + ?Sized>(
    message_type: &'static str,
    payload: &T,
) -> Result<(), Unhandled> {
    payload.validate().map_err(|errors| Unhandled::Invalid {
        message_type,
        errors,
    })
}

/// Decodes a JSON payload of `message_type`, strictly (structs only from objects, see
/// [`crate::strict`]).
pub fn decode_json<'de, T: serde::Deserialize<'de>>(
    message_type: &'static str,
    payload: &'de RawValue,
) -> Result<T, Unhandled> {
    decode_tracked::<T, crate::serde_as::Same>(payload.get()).map_err(|(path, source)| {
        Unhandled::MalformedJson {
            message_type,
            path,
            source,
        }
    })
}

/// Decodes a JSON payload of `message_type` through the adapter `A` (payloads such as an
/// `i64` under `int64Encoding: string`).
pub fn decode_json_as<'de, T, A>(
    message_type: &'static str,
    payload: &'de RawValue,
) -> Result<T, Unhandled>
where
    A: DeserializeAs<'de, T> + ?Sized,
{
    decode_tracked::<T, A>(payload.get()).map_err(|(path, source)| Unhandled::MalformedJson {
        message_type,
        path,
        source,
    })
}

/// The payload of a message without payload type: `{}` — with no keys at all when the
/// catalogue rejects unknown keys.
pub fn decode_empty_json(
    message_type: &'static str,
    payload: &RawValue,
    reject_unknown_keys: bool,
) -> Result<(), Unhandled> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Closed {}

    #[derive(serde::Deserialize)]
    struct Open {}

    // Strict: `[]` is no empty payload.
    let result = if reject_unknown_keys {
        crate::strict::from_str::<Closed>(payload.get()).map(drop)
    } else {
        crate::strict::from_str::<Open>(payload.get()).map(drop)
    };
    result.map_err(|source| Unhandled::MalformedJson {
        message_type,
        path: String::new(),
        source,
    })
}

/// Decodes a binary payload of `message_type`, which must span all of `payload`.
pub fn decode_binary<T: Binary>(
    message_type: &'static str,
    payload: &[u8],
) -> Result<T, Unhandled> {
    T::from_bytes(payload).map_err(|source| Unhandled::MalformedBinary {
        message_type,
        source,
    })
}

/// The payload of a binary message without payload type: nothing.
pub fn decode_empty_binary(message_type: &'static str, payload: &[u8]) -> Result<(), Unhandled> {
    Reader::new(payload)
        .finish()
        .map_err(|source| Unhandled::MalformedBinary {
            message_type,
            source,
        })
}
