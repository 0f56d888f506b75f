//! What the runner needs to know about a catalogue's wire, read from the catalogue
//! itself, and the implementation's declared capabilities.

use std::path::Path;

use anyhow::{Context, bail};
use ipcspec_schema::model::{ByteOrder, Framing, PrimitiveType};
use serde::{Deserialize, Serialize};

/// How frames are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FrameKind {
    /// A length of `width` bytes (2, 4 or 8) in the given byte order, then the body.
    #[serde(rename_all = "camelCase")]
    LengthPrefixed {
        /// Bytes of the prefix.
        width: usize,
        /// Most significant byte first.
        big_endian: bool,
    },
    /// One body per line.
    Newline,
}

impl FrameKind {
    /// The length declared by the prefix at the start of `buf` (length-prefixed framing;
    /// `None` while `buf` is shorter than the prefix).
    #[must_use]
    pub fn read_prefix(self, buf: &[u8]) -> Option<u64> {
        let FrameKind::LengthPrefixed { width, big_endian } = self else {
            return None;
        };
        let prefix = buf.get(..width)?;
        let mut bytes = [0u8; 8];
        Some(if big_endian {
            bytes[8 - width..].copy_from_slice(prefix);
            u64::from_be_bytes(bytes)
        } else {
            bytes[..width].copy_from_slice(prefix);
            u64::from_le_bytes(bytes)
        })
    }

    /// The prefix declaring `length`, or `None` when the width cannot hold it (or the
    /// framing has no prefix).
    #[must_use]
    pub fn prefix(self, length: u64) -> Option<Vec<u8>> {
        let FrameKind::LengthPrefixed { width, big_endian } = self else {
            return None;
        };
        if width < 8 && length >> (8 * width) != 0 {
            return None;
        }
        Some(if big_endian {
            length.to_be_bytes()[8 - width..].to_vec()
        } else {
            length.to_le_bytes()[..width].to_vec()
        })
    }
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
    /// An invalid catalogue, or a wire the runner does not drive yet (binary headers:
    /// scenarios are written in JSON).
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
            Framing::LengthPrefixed { width, byte_order } => FrameKind::LengthPrefixed {
                width: match width {
                    PrimitiveType::U16 => 2,
                    PrimitiveType::U32 => 4,
                    PrimitiveType::U64 => 8,
                    other => bail!(
                        "{}: a length prefix of type `{}` is not one the language admits",
                        path.display(),
                        other.name()
                    ),
                },
                big_endian: *byte_order == ByteOrder::Big,
            },
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
            frame_read_timeout_ms: int(&wire.timing.frame_read_timeout_ms),
            heartbeat_interval_ms: int(&wire.timing.heartbeat_interval_ms),
            stale_after_ms: int(&wire.timing.stale_after_ms),
            ack_timeout_ms: int(&wire.timing.request_timeout_ms),
            max_connections: int(&wire.limits.max_connections),
            features: Vec::new(),
        };
        Ok((protocol, capabilities))
    }
}

/// What the implementation declares about itself: its limits (defaults: the
/// catalogue's; `None` where the catalogue states none and the capabilities file gives
/// none, so a case needing it fails saying so) and optional features. Size and timing
/// cases are derived from it, so an implementation configured with short timeouts runs
/// the suite quickly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Capabilities {
    /// The largest body it accepts.
    pub max_message_bytes: u64,
    /// How long it waits for a started frame to complete.
    pub frame_read_timeout_ms: Option<u64>,
    /// Its heartbeat interval.
    pub heartbeat_interval_ms: Option<u64>,
    /// Silence after which it closes a connection.
    pub stale_after_ms: Option<u64>,
    /// How long a peer waits for an acknowledgment.
    pub ack_timeout_ms: Option<u64>,
    /// Connections it serves at once.
    pub max_connections: Option<u64>,
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
        if let Some(value) = file.max_message_bytes {
            self.max_message_bytes = value;
        }
        let set = |slot: &mut Option<u64>, value: Option<u64>| {
            if value.is_some() {
                *slot = value;
            }
        };
        set(&mut self.frame_read_timeout_ms, file.frame_read_timeout_ms);
        set(&mut self.heartbeat_interval_ms, file.heartbeat_interval_ms);
        set(&mut self.stale_after_ms, file.stale_after_ms);
        set(&mut self.ack_timeout_ms, file.ack_timeout_ms);
        set(&mut self.max_connections, file.max_connections);
        self.features = file.features;
        Ok(self)
    }

    /// The value of a capability by its JSON name: `Err` names an unknown capability,
    /// `Ok(None)` one neither the catalogue nor the capabilities file states.
    ///
    /// # Errors
    ///
    /// An unknown name.
    pub fn get(&self, name: &str) -> Result<Option<u64>, UnknownCapability> {
        Ok(match name {
            "maxMessageBytes" => Some(self.max_message_bytes),
            "frameReadTimeoutMs" => self.frame_read_timeout_ms,
            "heartbeatIntervalMs" => self.heartbeat_interval_ms,
            "staleAfterMs" => self.stale_after_ms,
            "ackTimeoutMs" => self.ack_timeout_ms,
            "maxConnections" => self.max_connections,
            _ => return Err(UnknownCapability),
        })
    }
}

/// A capability name the runner does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCapability;

impl Capabilities {}
