//! What the runner needs to know about a catalogue's wire, read from the catalogue
//! itself, and the implementation's declared capabilities.

use std::path::Path;

use anyhow::{Context, bail};
use ipcspec_schema::model::{ByteOrder, Framing};
use serde::{Deserialize, Serialize};

/// How frames are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FrameKind {
    /// A 4-byte little-endian length, then the body.
    LengthPrefixedU32Le,
    /// One body per line.
    Newline,
}

/// A catalogue's wire, as far as the runner uses it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Protocol {
    /// The catalogue's name.
    pub catalogue: String,
    /// Framing.
    pub framing: FrameKind,
    /// Envelope keys.
    pub type_key: String,
    /// The id key, when envelopes have one.
    pub id_key: Option<String>,
    /// The payload key.
    pub payload_key: Option<String>,
    /// The timestamp key.
    pub timestamp_key: Option<String>,
    /// The correlation key.
    pub correlation_key: Option<String>,
    /// The heartbeat message, passed over by expectations.
    pub heartbeat: Option<String>,
    /// The acknowledgment message.
    pub ack: Option<String>,
    /// Every message name.
    pub messages: Vec<String>,
}

impl Protocol {
    /// Reads the catalogue at `path`; it must be valid.
    ///
    /// # Errors
    ///
    /// An invalid catalogue, or a wire the runner does not drive yet (binary headers).
    pub fn load(path: &Path) -> anyhow::Result<(Protocol, Capabilities)> {
        let loaded = ipcspec_schema::load::load_file(path);
        let Some(catalogue) = loaded.valid() else {
            bail!(
                "{} is not a valid catalogue (run `ipcspec check {}`)",
                path.display(),
                path.display()
            );
        };
        let wire = &catalogue.wire;
        let framing = match &wire.framing {
            Framing::LengthPrefixed { byte_order, .. } if *byte_order == ByteOrder::Little => {
                FrameKind::LengthPrefixedU32Le
            }
            Framing::NewlineDelimited => FrameKind::Newline,
            other => bail!(
                "{}: the runner does not drive {other:?} framing yet",
                path.display()
            ),
        };
        let int = |lit: &Option<ipcspec_schema::intlit::IntLit>| {
            lit.as_ref().and_then(|l| u64::try_from(l.value).ok())
        };
        let protocol = Protocol {
            catalogue: catalogue.name.clone(),
            framing,
            type_key: wire.envelope.type_key.clone(),
            id_key: wire.envelope.id.clone(),
            payload_key: wire.envelope.payload.clone(),
            timestamp_key: wire.envelope.timestamp.clone(),
            correlation_key: wire.envelope.correlation_id.clone(),
            heartbeat: wire.heartbeat_message.clone(),
            ack: wire.ack_message.clone(),
            messages: catalogue.messages.iter().map(|m| m.name.clone()).collect(),
        };
        let capabilities = Capabilities {
            max_message_bytes: u64::try_from(wire.limits.max_message_bytes.value).unwrap_or(0),
            frame_read_timeout_ms: int(&wire.timing.frame_read_timeout_ms).unwrap_or(10_000),
            heartbeat_interval_ms: int(&wire.timing.heartbeat_interval_ms).unwrap_or(30_000),
            stale_after_ms: int(&wire.timing.stale_after_ms).unwrap_or(90_000),
            ack_timeout_ms: int(&wire.timing.request_timeout_ms).unwrap_or(30_000),
            max_connections: int(&wire.limits.max_connections).unwrap_or(512),
            features: Vec::new(),
        };
        Ok((protocol, capabilities))
    }
}

/// What the implementation declares about itself: its limits (defaults: the
/// catalogue's) and optional features. Size and timing cases are derived from it, so an
/// implementation configured with short timeouts runs the suite quickly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Capabilities {
    /// The largest body it accepts.
    pub max_message_bytes: u64,
    /// How long it waits for a started frame to complete.
    pub frame_read_timeout_ms: u64,
    /// Its heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Silence after which it closes a connection.
    pub stale_after_ms: u64,
    /// How long a peer waits for an acknowledgment.
    pub ack_timeout_ms: u64,
    /// Connections it serves at once.
    pub max_connections: u64,
    /// Optional features (`identity` for peer-credential binding, ...).
    #[serde(default)]
    pub features: Vec<String>,
}

/// A capabilities file: any subset of the fields, over the catalogue's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CapabilitiesFile {
    max_message_bytes: Option<u64>,
    frame_read_timeout_ms: Option<u64>,
    heartbeat_interval_ms: Option<u64>,
    stale_after_ms: Option<u64>,
    ack_timeout_ms: Option<u64>,
    max_connections: Option<u64>,
    #[serde(default)]
    features: Vec<String>,
}

impl Capabilities {
    /// `self` with the values of the capabilities file at `path` over it.
    ///
    /// # Errors
    ///
    /// An unreadable or malformed file, named with the problem.
    pub fn overlay(mut self, path: &Path) -> anyhow::Result<Capabilities> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the capabilities file {}", path.display()))?;
        let file: CapabilitiesFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a capabilities file", path.display()))?;
        let set = |slot: &mut u64, value: Option<u64>| {
            if let Some(value) = value {
                *slot = value;
            }
        };
        set(&mut self.max_message_bytes, file.max_message_bytes);
        set(&mut self.frame_read_timeout_ms, file.frame_read_timeout_ms);
        set(&mut self.heartbeat_interval_ms, file.heartbeat_interval_ms);
        set(&mut self.stale_after_ms, file.stale_after_ms);
        set(&mut self.ack_timeout_ms, file.ack_timeout_ms);
        set(&mut self.max_connections, file.max_connections);
        self.features = file.features;
        Ok(self)
    }

    /// The value of a capability by its JSON name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<u64> {
        Some(match name {
            "maxMessageBytes" => self.max_message_bytes,
            "frameReadTimeoutMs" => self.frame_read_timeout_ms,
            "heartbeatIntervalMs" => self.heartbeat_interval_ms,
            "staleAfterMs" => self.stale_after_ms,
            "ackTimeoutMs" => self.ack_timeout_ms,
            "maxConnections" => self.max_connections,
            _ => return None,
        })
    }
}
