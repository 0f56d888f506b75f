//! Frames of the Migration protocol: encoding envelopes, reading received ones, and the
//! acknowledgments both sides send.
//!
//! Everything here works on the generated `Envelope` and payload types; the framing (the
//! 4-byte length prefix) is the runtime's.

use bytes::Bytes;
use ipcspec_generated::migration::{
    AcknowledgmentPayload, AgentMessage, Envelope, ErrorCode, ServiceMessage, UNATTRIBUTABLE_CODE,
    UNATTRIBUTABLE_MESSAGE, constraints,
};
use ipcspec_runtime::validate::{Path, ValidationErrors};
use serde::Serialize;
use serde_json::value::RawValue;

/// A fresh message id: a UUID, as the catalogue recommends.
#[must_use]
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The current time, for envelope timestamps (whole microseconds, which RFC 3339 keeps).
#[must_use]
pub fn now() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// Formats `at` as RFC 3339, as the store keeps timestamps.
#[must_use]
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Parses an RFC 3339 timestamp the store wrote.
#[must_use]
pub fn parse_rfc3339(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// Encodes one message: the envelope with `id`, `message_type`, the current time and
/// `payload`, and `correlation_id` on replies.
///
/// # Errors
///
/// Only if the payload cannot be serialized, which generated payloads always can.
pub fn encode<P: Serialize>(
    id: &str,
    message_type: &str,
    payload: P,
    correlation_id: Option<&str>,
) -> Result<Bytes, serde_json::Error> {
    let envelope = Envelope {
        id: id.to_owned(),
        message_type: message_type.to_owned(),
        timestamp: now(),
        payload,
        correlation_id: correlation_id.map(str::to_owned),
    };
    serde_json::to_vec(&envelope).map(Bytes::from)
}

/// Encodes a message the service sends.
///
/// # Errors
///
/// See [`encode`].
pub fn encode_service(id: &str, message: &ServiceMessage) -> Result<Bytes, serde_json::Error> {
    encode(id, message.message_type(), message.payload_json()?, None)
}

/// Encodes a message an agent sends.
///
/// # Errors
///
/// See [`encode`].
pub fn encode_agent(id: &str, message: &AgentMessage) -> Result<Bytes, serde_json::Error> {
    encode(id, message.message_type(), message.payload_json()?, None)
}

/// The ACKNOWLEDGMENT of message `correlation_id`: success, or the error code and detail.
///
/// # Errors
///
/// See [`encode`]; a caller treats it as an internal error and sends nothing (never an
/// empty frame).
pub fn ack(
    correlation_id: &str,
    outcome: Result<(), (ErrorCode, String)>,
) -> Result<Bytes, serde_json::Error> {
    let payload = match outcome {
        Ok(()) => AcknowledgmentPayload {
            success: true,
            error_code: None,
            error_message: None,
        },
        Err((code, message)) => AcknowledgmentPayload {
            success: false,
            error_code: Some(code.as_str().to_owned()),
            error_message: Some(truncate(&message, 1000)),
        },
    };
    encode(&new_id(), "ACKNOWLEDGMENT", payload, Some(correlation_id))
}

/// The answer to a frame whose envelope `id` cannot be read: the catalogue's
/// [`UNATTRIBUTABLE_MESSAGE`] without `correlationId`, refusing with
/// [`UNATTRIBUTABLE_CODE`] and `error`.
///
/// # Errors
///
/// Only if the acknowledgment cannot be serialized, which it always can.
pub fn unattributable(error: &str) -> Result<Bytes, serde_json::Error> {
    let payload = AcknowledgmentPayload {
        success: false,
        error_code: Some(UNATTRIBUTABLE_CODE.as_str().to_owned()),
        error_message: Some(truncate(error, 1000)),
    };
    encode(&new_id(), UNATTRIBUTABLE_MESSAGE, payload, None)
}

/// `text` cut to at most `max` characters (the catalogue bounds `errorMessage`).
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// A received frame, decoded as far as it could be.
#[derive(Debug)]
pub enum Received<'a> {
    /// A well-formed envelope whose `id` satisfies the catalogue's `MessageId`.
    Envelope(Envelope<&'a RawValue>),
    /// Not a valid envelope, but its `id` could be read, so the error can be
    /// acknowledged.
    Invalid {
        /// The message's id.
        id: String,
        /// What is wrong.
        error: String,
    },
    /// Not even an id could be read: the frame is answered with
    /// [`unattributable`] and logged.
    Unreadable {
        /// What is wrong.
        error: String,
    },
}

/// Decodes a received frame strictly (unknown envelope keys and arrays for objects are
/// errors), checking the envelope `id` and `correlationId` against the catalogue's
/// `MessageId` constraints.
#[must_use]
pub fn receive(frame: &[u8]) -> Received<'_> {
    const MAX_DEPTH: usize = ipcspec_generated::migration::MAX_NESTING_DEPTH as usize;
    if ipcspec_runtime::nesting::deeper_than(frame, MAX_DEPTH) {
        let error = format!("the body nests deeper than {MAX_DEPTH} levels of arrays and objects");
        return match readable_id(frame) {
            Some(id) => Received::Invalid { id, error },
            None => Received::Unreadable { error },
        };
    }
    match ipcspec_runtime::strict::from_slice::<Envelope<&RawValue>>(frame) {
        Ok(envelope) => {
            // An id that breaks the catalogue cannot be echoed in `correlationId`.
            if let Err(error) = message_id_verdict(&envelope.id) {
                return Received::Unreadable {
                    error: format!("invalid envelope: `id`: {error}"),
                };
            }
            match envelope.correlation_id.as_deref().map(message_id_verdict) {
                Some(Err(error)) => Received::Invalid {
                    id: envelope.id.clone(),
                    error: format!("invalid envelope: `correlationId`: {error}"),
                },
                _ => Received::Envelope(envelope),
            }
        }
        Err(error) => match readable_id(frame) {
            Some(id) => Received::Invalid {
                id,
                error: format!("invalid envelope: {error}"),
            },
            None => Received::Unreadable {
                error: error.to_string(),
            },
        },
    }
}

/// The envelope `id` of a frame that is not a valid envelope, if it is a JSON object
/// with a string `id` that is a valid `MessageId`.
fn readable_id(frame: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: String,
    }
    let IdOnly { id } = serde_json::from_slice(frame).ok()?;
    message_id_verdict(&id).is_ok().then_some(id)
}

/// Whether `id` is a valid `MessageId`, by the catalogue's rules.
fn message_id_verdict(id: &str) -> Result<(), ValidationErrors> {
    let mut errors = Vec::new();
    constraints::message_id(id, &Path::Root, &mut errors);
    ValidationErrors::result(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!(
            r#"{{"id":"m-1","type":"HEARTBEAT","timestamp":"2026-11-25T10:00:00Z","payload":{{"x":{}1{}}}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
    }

    #[test]
    fn a_body_nested_deeper_than_the_limit_is_refused_naming_the_limit() {
        // The envelope is level 1, the payload 2: 63 more levels make 65.
        match receive(nested(63).as_bytes()) {
            Received::Invalid { id, error } => {
                assert_eq!(id, "m-1");
                assert!(error.contains("nests deeper than 64"), "{error}");
            }
            other => panic!("not refused for its depth: {other:?}"),
        }
        // At the limit the envelope is read (the payload's own checks come later).
        assert!(matches!(
            receive(nested(62).as_bytes()),
            Received::Envelope(_)
        ));
    }

    #[test]
    fn envelope_ids_are_checked_by_the_catalogue_rules() {
        // An id that breaks MessageId cannot be echoed: the frame is unattributable.
        let frame = br#"{"id":"has spaces","type":"HEARTBEAT","timestamp":"2026-11-25T10:00:00Z","payload":{}}"#;
        match receive(frame) {
            Received::Unreadable { error } => assert!(error.contains("`id`"), "{error}"),
            other => panic!("an invalid id was accepted: {other:?}"),
        }
        // A valid id with an invalid correlationId is refused, correlated by the id.
        let frame = br#"{"id":"m-2","type":"ACKNOWLEDGMENT","timestamp":"2026-11-25T10:00:00Z","payload":{"success":true},"correlationId":"has spaces"}"#;
        match receive(frame) {
            Received::Invalid { id, error } => {
                assert_eq!(id, "m-2");
                assert!(error.contains("`correlationId`"), "{error}");
            }
            other => panic!("an invalid correlationId was accepted: {other:?}"),
        }
    }
}
