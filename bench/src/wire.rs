//! The bytes every row exchanges: one Migration USER_ACTION request and its
//! ACKNOWLEDGMENT, the ids they carry, and the hand-written serde types the
//! `tokio-codec` and `tarpc` rows use.
//!
//! Request ids are `b-` and a 12-digit zero-padded counter, so every request frame of a
//! run has the same length and the id always sits at byte [`ID_OFFSET`].

use std::collections::BTreeMap;
use std::io;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The fixed `timestamp` of every request, so the request bytes are identical in every row.
pub const REQUEST_TIMESTAMP: &str = "2026-11-25T10:00:00Z";

/// Where the id starts in a request body (after `{"id":"`).
pub const ID_OFFSET: usize = 7;

/// Length of every request id and ack id (`b-` + 12 digits).
pub const ID_LEN: usize = 14;

/// The largest frame body accepted anywhere in the benchmark: the catalogue's limit.
pub const MAX_FRAME: usize = ipcspec_generated::migration::WIRE.limits.max_message_bytes;

/// The `sessionId` of the durable row's AGENT_STARTED.
pub const SESSION_ID: &str = "bench-1";

/// The id of request number `n`.
pub fn request_id(n: u64) -> String {
    format!("b-{n:012}")
}

/// The id of the `n`th acknowledgment a server sends.
pub fn ack_id(n: u64) -> String {
    format!("a-{n:012}")
}

/// The request number a request id (or a correlation id) carries.
pub fn request_number(id: &str) -> Option<u64> {
    let digits = id.strip_prefix("b-")?;
    if digits.len() != ID_LEN - 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The body of request number `n` from user `user`:
/// `{"id":"b-…","type":"USER_ACTION","timestamp":…,"payload":{"userId":…,"action":"STATUS_VIEWED","details":{"screen":"status"}}}`.
pub fn request_body(n: u64, user: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{}","type":"USER_ACTION","timestamp":"{REQUEST_TIMESTAMP}","payload":{{"userId":"{user}","action":"STATUS_VIEWED","details":{{"screen":"status"}}}}}}"#,
        request_id(n)
    )
    .into_bytes()
}

/// The AGENT_STARTED body the durable row sends first on its connection.
pub fn agent_started_body(user: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"s-{:012}","type":"AGENT_STARTED","timestamp":"{REQUEST_TIMESTAMP}","payload":{{"userId":"{user}","version":"1.0.0","sessionId":"{SESSION_ID}"}}}}"#,
        0
    )
    .into_bytes()
}

/// `body` with its 4-byte little-endian length prefix.
pub fn frame(body: &[u8]) -> io::Result<Vec<u8>> {
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// The current time as the envelope writes it (RFC 3339, UTC, `Z`).
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| REQUEST_TIMESTAMP.to_owned())
}

/// The login name of this process's user (the durable service compares the payload's
/// `userId` with the connection's peer credentials): the `/etc/passwd` entry of the real
/// uid, else `$USER` or `$LOGNAME`.
pub fn login_name() -> anyhow::Result<String> {
    let uid = rustix::process::getuid().as_raw();
    if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let mut fields = line.split(':');
            let (Some(name), Some(_), Some(entry_uid)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if entry_uid.parse::<u32>().ok() == Some(uid) {
                return Ok(name.to_owned());
            }
        }
    }
    for var in ["USER", "LOGNAME"] {
        if let Ok(name) = std::env::var(var)
            && !name.is_empty()
        {
            return Ok(name);
        }
    }
    bail!("no login name for uid {uid} in /etc/passwd, $USER or $LOGNAME; pass --user")
}

/// Checks that `user` can be put in the JSON bodies unescaped (the catalogue's `UserId`
/// pattern).
pub fn check_user(user: &str) -> anyhow::Result<()> {
    let valid = !user.is_empty()
        && user.len() <= 32
        && !user.starts_with(['-', '.'])
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid {
        bail!("user name `{user}` is not a valid Migration userId");
    }
    Ok(())
}

/// The USER_ACTION envelope as someone writing the client and server by hand would
/// declare it (used by the `tokio-codec` and `tarpc` rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestEnvelope {
    /// Message id.
    pub id: String,
    /// Message type (`USER_ACTION`).
    #[serde(rename = "type")]
    pub message_type: String,
    /// RFC 3339 creation time.
    pub timestamp: String,
    /// The USER_ACTION payload.
    pub payload: UserAction,
}

/// The USER_ACTION payload, hand-written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserAction {
    /// The agent's user.
    #[serde(rename = "userId")]
    pub user_id: String,
    /// What the user did.
    pub action: String,
    /// Action details.
    pub details: BTreeMap<String, String>,
}

impl RequestEnvelope {
    /// Request number `n` from `user`; serializes to exactly [`request_body`]`(n, user)`.
    pub fn new(n: u64, user: &str) -> Self {
        RequestEnvelope {
            id: request_id(n),
            message_type: "USER_ACTION".to_owned(),
            timestamp: REQUEST_TIMESTAMP.to_owned(),
            payload: UserAction {
                user_id: user.to_owned(),
                action: "STATUS_VIEWED".to_owned(),
                details: BTreeMap::from([("screen".to_owned(), "status".to_owned())]),
            },
        }
    }
}

/// The ACKNOWLEDGMENT envelope, hand-written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckEnvelope {
    /// The ack's own id.
    pub id: String,
    /// `ACKNOWLEDGMENT`.
    #[serde(rename = "type")]
    pub message_type: String,
    /// RFC 3339 creation time.
    pub timestamp: String,
    /// `{"success": true}`.
    pub payload: AckPayload,
    /// The acknowledged request's id.
    #[serde(rename = "correlationId")]
    pub correlation_id: String,
}

/// The ACKNOWLEDGMENT payload, hand-written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckPayload {
    /// Whether the request was accepted.
    pub success: bool,
}

impl AckEnvelope {
    /// The success ack number `n` for the request `correlation_id`, stamped now.
    pub fn success(n: u64, correlation_id: String) -> Self {
        AckEnvelope {
            id: ack_id(n),
            message_type: "ACKNOWLEDGMENT".to_owned(),
            timestamp: now_rfc3339(),
            payload: AckPayload { success: true },
            correlation_id,
        }
    }
}

/// What a client reads from any ack it receives: the type, the correlation id and the
/// success flag (unknown keys and other messages' payloads are ignored).
#[derive(Debug, Deserialize)]
pub struct AckView<'a> {
    /// Message type.
    #[serde(rename = "type", borrow)]
    pub message_type: &'a str,
    /// The answered request's id, on acks.
    #[serde(rename = "correlationId", default, borrow)]
    pub correlation_id: Option<&'a str>,
    /// The payload; only `success` is read.
    #[serde(default)]
    pub payload: Option<AckViewPayload>,
}

/// The part of an ack payload a client reads.
#[derive(Debug, Deserialize)]
pub struct AckViewPayload {
    /// Whether the request was accepted.
    #[serde(default)]
    pub success: Option<bool>,
}

impl AckView<'_> {
    /// Parses `body` as an ack view.
    pub fn parse(body: &[u8]) -> anyhow::Result<AckView<'_>> {
        serde_json::from_slice(body).context("reading an inbound frame")
    }

    /// Whether this is an ACKNOWLEDGMENT.
    pub fn is_ack(&self) -> bool {
        self.message_type == "ACKNOWLEDGMENT"
    }

    /// Whether the ack reports success.
    pub fn succeeded(&self) -> bool {
        self.payload.as_ref().and_then(|p| p.success) == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_request_serializes_to_the_shared_bytes() {
        let body = request_body(42, "root");
        let typed = serde_json::to_vec(&RequestEnvelope::new(42, "root")).unwrap();
        assert_eq!(
            String::from_utf8(typed).unwrap(),
            String::from_utf8(body).unwrap()
        );
    }

    #[test]
    fn generated_envelope_serializes_to_the_shared_bytes() {
        use ipcspec_generated::migration::{Envelope, UserActionPayload, UserActionType};
        let envelope = Envelope {
            id: request_id(7),
            message_type: "USER_ACTION".to_owned(),
            timestamp: OffsetDateTime::parse(REQUEST_TIMESTAMP, &Rfc3339).unwrap(),
            payload: UserActionPayload {
                user_id: "alice".to_owned(),
                action: UserActionType::StatusViewed,
                backup_id: None,
                details: Some(BTreeMap::from([("screen".to_owned(), "status".to_owned())])),
            },
            correlation_id: None,
        };
        assert_eq!(
            serde_json::to_vec(&envelope).unwrap(),
            request_body(7, "alice")
        );
    }

    #[test]
    fn ids_have_a_fixed_length_and_position() {
        let body = request_body(123, "root");
        assert_eq!(&body[ID_OFFSET..ID_OFFSET + ID_LEN], b"b-000000000123");
        assert_eq!(request_id(u64::from(u32::MAX)).len(), ID_LEN);
        assert_eq!(ack_id(5).len(), ID_LEN);
        assert_eq!(request_number("b-000000000123"), Some(123));
        assert_eq!(request_number("a-000000000123"), None);
        assert_eq!(request_number("b-12"), None);
    }

    #[test]
    fn ack_view_reads_acks() {
        let ack = serde_json::to_vec(&AckEnvelope::success(1, request_id(9))).unwrap();
        let view = AckView::parse(&ack).unwrap();
        assert!(view.is_ack() && view.succeeded());
        assert_eq!(view.correlation_id, Some("b-000000000009"));
    }

    #[test]
    fn user_names_are_checked() {
        check_user("root").unwrap();
        assert!(check_user("a\"b").is_err());
        assert!(check_user("-x").is_err());
    }
}
