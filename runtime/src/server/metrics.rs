//! The server's counters: a [`MetricsSnapshot`] and its Prometheus text form.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::connection::CloseReason;

/// The live counters, shared by the accept loop and every connection task.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    active: AtomicU64,
    closed: Mutex<BTreeMap<&'static str, u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub(crate) fn message_in(&self, bytes: usize) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn messages_out(&self, count: usize, bytes: usize) {
        self.messages_out.fetch_add(count as u64, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        bump(&self.closed, reason.as_str());
    }

    pub(crate) fn error(&self, kind: &'static str) {
        bump(&self.errors, kind);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            messages_in: self.messages_in.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            connections_accepted: self.accepted.load(Ordering::Relaxed),
            connections_refused: self.refused.load(Ordering::Relaxed),
            connections_active: self.active.load(Ordering::Relaxed),
            connections_closed: copy(&self.closed),
            errors: copy(&self.errors),
        }
    }
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str) {
    // A poisoned lock only means another thread panicked while counting; the map is
    // still a valid map.
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *map.entry(key).or_insert(0) += 1;
}

fn copy(map: &Mutex<BTreeMap<&'static str, u64>>) -> BTreeMap<&'static str, u64> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// The server's counters at one moment.
///
/// Counters only grow, except `connections_active`. Keys of `connections_closed` are
/// [`CloseReason::as_str`] values; keys of `errors` are the server's error kinds
/// (`frame_too_large`, `read_timeout`, `stale`, `read_io`, `write_io`, `accept`,
/// `queue_full`, `slow_consumer`, `truncated`, `refusal_write`) and whatever kinds the
/// service reports through [`Outcome::error`](super::Outcome::error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Frames received and handed to the service.
    pub messages_in: u64,
    /// Frames written to peers (replies, pushed frames, heartbeats, refusals).
    pub messages_out: u64,
    /// Body bytes of the frames received (prefixes not counted).
    pub bytes_in: u64,
    /// Body bytes of the frames written (prefixes not counted).
    pub bytes_out: u64,
    /// Connections accepted and served.
    pub connections_accepted: u64,
    /// Connections refused because the connection limit was reached.
    pub connections_refused: u64,
    /// Connections open now.
    pub connections_active: u64,
    /// Connections closed, by reason.
    pub connections_closed: BTreeMap<&'static str, u64>,
    /// Errors, by kind.
    pub errors: BTreeMap<&'static str, u64>,
}

impl MetricsSnapshot {
    /// Connections closed for `reason`.
    #[must_use]
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.connections_closed
            .get(reason.as_str())
            .copied()
            .unwrap_or(0)
    }

    /// Errors of `kind`.
    #[must_use]
    pub fn errors_of(&self, kind: &str) -> u64 {
        self.errors.get(kind).copied().unwrap_or(0)
    }

    /// The snapshot in the Prometheus text exposition format (version 0.0.4), every
    /// metric prefixed `ipcspec_server_`.
    #[must_use]
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let scalars: [(&str, &str, &str, u64); 7] = [
            (
                "messages_in_total",
                "counter",
                "Frames received.",
                self.messages_in,
            ),
            (
                "messages_out_total",
                "counter",
                "Frames written.",
                self.messages_out,
            ),
            (
                "bytes_in_total",
                "counter",
                "Body bytes received.",
                self.bytes_in,
            ),
            (
                "bytes_out_total",
                "counter",
                "Body bytes written.",
                self.bytes_out,
            ),
            (
                "connections_accepted_total",
                "counter",
                "Connections accepted.",
                self.connections_accepted,
            ),
            (
                "connections_refused_total",
                "counter",
                "Connections refused at the connection limit.",
                self.connections_refused,
            ),
            (
                "connections_active",
                "gauge",
                "Connections open now.",
                self.connections_active,
            ),
        ];
        for (name, kind, help, value) in scalars {
            let _ = writeln!(out, "# HELP ipcspec_server_{name} {help}");
            let _ = writeln!(out, "# TYPE ipcspec_server_{name} {kind}");
            let _ = writeln!(out, "ipcspec_server_{name} {value}");
        }
        labelled(
            &mut out,
            "connections_closed_total",
            "Connections closed, by reason.",
            "reason",
            &self.connections_closed,
        );
        labelled(
            &mut out,
            "errors_total",
            "Errors, by kind.",
            "kind",
            &self.errors,
        );
        out
    }
}

fn labelled(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: &BTreeMap<&'static str, u64>,
) {
    let _ = writeln!(out, "# HELP ipcspec_server_{name} {help}");
    let _ = writeln!(out, "# TYPE ipcspec_server_{name} counter");
    for (key, value) in values {
        let _ = writeln!(
            out,
            "ipcspec_server_{name}{{{label}=\"{}\"}} {value}",
            escape_label(key)
        );
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_every_counter_and_escapes_labels() {
        let metrics = Metrics::default();
        metrics.accepted();
        metrics.message_in(10);
        metrics.error("bad \"kind\"\n");
        metrics.closed(CloseReason::PeerClosed);
        let text = metrics.snapshot().prometheus();
        assert!(text.contains("ipcspec_server_messages_in_total 1\n"));
        assert!(text.contains("ipcspec_server_bytes_in_total 10\n"));
        assert!(text.contains("ipcspec_server_connections_active 0\n"));
        assert!(
            text.contains("ipcspec_server_connections_closed_total{reason=\"peer_closed\"} 1\n")
        );
        assert!(text.contains("ipcspec_server_errors_total{kind=\"bad \\\"kind\\\"\\n\"} 1\n"));
    }
}
