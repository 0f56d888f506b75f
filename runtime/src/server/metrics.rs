//! The server's counters: a [`MetricsSnapshot`] and its Prometheus text form.
//!
//! Besides what the server counts itself, a [`Service`](super::Service) feeds
//! [`Metrics::record_message`] (messages by type and direction) and
//! [`Metrics::record_latency`] (a fixed-bucket histogram of handling times), through
//! [`ConnectionInfo::metrics`](super::ConnectionInfo::metrics) or
//! [`ServerHandle::recorder`](super::ServerHandle::recorder).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::connection::CloseReason;

/// How many distinct message types [`Metrics::record_message`] keeps apart; further
/// types are counted under [`OTHER_MESSAGE_TYPE`].
pub const MAX_MESSAGE_TYPES: usize = 256;

/// The longest message type name (in bytes) kept as its own label; longer names are
/// counted under [`OTHER_MESSAGE_TYPE`].
pub const MAX_MESSAGE_TYPE_LEN: usize = 128;

/// The label under which message types beyond the limits are counted.
pub const OTHER_MESSAGE_TYPE: &str = "other";

/// Upper bounds of the latency histogram's buckets, in microseconds: 10µs to 10s in a
/// 1-2.5-5 series. Observations above the last bound only count in `+Inf`.
const LATENCY_BOUNDS_MICROS: [u64; 19] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Whether a message was received or sent; a label of the per-type counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Received from the peer.
    In,
    /// Sent to the peer.
    Out,
}

impl Direction {
    /// `"in"` or `"out"`, the metrics label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// Messages of one type, by direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageCounts {
    /// Messages received.
    pub received: u64,
    /// Messages sent.
    pub sent: u64,
}

/// The live counters of one message type.
#[derive(Debug, Default)]
struct TypeCounters {
    received: AtomicU64,
    sent: AtomicU64,
}

impl TypeCounters {
    fn of(&self, direction: Direction) -> &AtomicU64 {
        match direction {
            Direction::In => &self.received,
            Direction::Out => &self.sent,
        }
    }
}

/// One message type's counter in one direction, from [`Metrics::message_counter`].
#[derive(Debug, Clone)]
pub struct MessageCounter {
    counters: Arc<TypeCounters>,
    direction: Direction,
}

impl MessageCounter {
    /// Counts one message.
    pub fn count(&self) {
        self.counters
            .of(self.direction)
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// The live latency histogram: one counter per bucket (not cumulative) and one beyond
/// the last bound; the count is their sum, so it always matches the `+Inf` bucket.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_MICROS.len()],
    overflow: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub(crate) fn record(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let index = LATENCY_BOUNDS_MICROS.partition_point(|&bound| bound * 1_000 < nanos);
        match self.buckets.get(index) {
            Some(bucket) => bucket.fetch_add(1, Ordering::Relaxed),
            None => self.overflow.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LatencyHistogram {
        let mut cumulative = 0;
        let buckets = LATENCY_BOUNDS_MICROS
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, bucket)| {
                cumulative += bucket.load(Ordering::Relaxed);
                (Duration::from_micros(bound), cumulative)
            })
            .collect();
        LatencyHistogram {
            buckets,
            count: cumulative + self.overflow.load(Ordering::Relaxed),
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// The server's live counters, shared by the accept loop, every connection task and
/// the service.
///
/// The server counts frames, bytes, connections and errors itself. A
/// [`Service`](super::Service) adds what only it knows: the type of each message
/// ([`Metrics::record_message`]) and how long handling took
/// ([`Metrics::record_latency`]). Both appear in [`MetricsSnapshot`] and its Prometheus
/// text.
#[derive(Debug, Default)]
pub struct Metrics {
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    active: AtomicU64,
    closed: Mutex<BTreeMap<&'static str, u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Read-locked to count a type already seen (the common case, so handlers on
    /// several threads do not queue up), write-locked to add one.
    by_type: RwLock<BTreeMap<String, Arc<TypeCounters>>>,
    latency: Histogram,
}

impl Metrics {
    /// Counts one message of `message_type` in `direction`.
    ///
    /// Label cardinality is bounded: beyond [`MAX_MESSAGE_TYPES`] distinct types, or for
    /// a name longer than [`MAX_MESSAGE_TYPE_LEN`] bytes, the message is counted under
    /// [`OTHER_MESSAGE_TYPE`].
    pub fn record_message(&self, direction: Direction, message_type: &str) {
        let known = self
            .by_type
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(message_type)
            .map(|counters| counters.of(direction).fetch_add(1, Ordering::Relaxed));
        if known.is_none() {
            self.message_counter(direction, message_type).count();
        }
    }

    /// The counter [`Metrics::record_message`] bumps for `message_type` in `direction`,
    /// to keep: counting through it is one atomic add, with no lookup (for a service's
    /// hot path). The same limits apply: a type beyond them gets the
    /// [`OTHER_MESSAGE_TYPE`] counter.
    pub fn message_counter(&self, direction: Direction, message_type: &str) -> MessageCounter {
        let mut by_type = self
            .by_type
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = if message_type.len() > MAX_MESSAGE_TYPE_LEN {
            OTHER_MESSAGE_TYPE
        } else if by_type.contains_key(message_type)
            || by_type.len() - usize::from(by_type.contains_key(OTHER_MESSAGE_TYPE))
                < MAX_MESSAGE_TYPES
        {
            message_type
        } else {
            OTHER_MESSAGE_TYPE
        };
        let counters = match by_type.get(key) {
            Some(counters) => Arc::clone(counters),
            None => Arc::clone(by_type.entry(key.to_owned()).or_default()),
        };
        MessageCounter {
            counters,
            direction,
        }
    }

    /// Records how long handling one message took in the latency histogram.
    pub fn record_latency(&self, latency: Duration) {
        self.latency.record(latency);
    }

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
            messages_by_type: self
                .by_type
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|(name, counters)| {
                    let counts = MessageCounts {
                        received: counters.received.load(Ordering::Relaxed),
                        sent: counters.sent.load(Ordering::Relaxed),
                    };
                    (name.clone(), counts)
                })
                .collect(),
            latency: self.latency.snapshot(),
        }
    }
}

/// Locks a counter map. A poisoned lock only means another thread panicked while
/// counting; the map is still a valid map.
fn lock<T>(map: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str) {
    *lock(map).entry(key).or_insert(0) += 1;
}

fn copy<T: Clone>(map: &Mutex<T>) -> T {
    lock(map).clone()
}

/// The latency histogram at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatencyHistogram {
    /// `(upper bound, observations at or below it)`, cumulative, bounds ascending
    /// (10µs to 10s). The `+Inf` bucket is `count`.
    pub buckets: Vec<(Duration, u64)>,
    /// Observations recorded.
    pub count: u64,
    /// Their total.
    pub sum: Duration,
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
    /// Messages by type, as recorded by the service through
    /// [`Metrics::record_message`].
    pub messages_by_type: BTreeMap<String, MessageCounts>,
    /// Handling latencies, as recorded by the service through
    /// [`Metrics::record_latency`].
    pub latency: LatencyHistogram,
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

    /// Messages of `message_type` recorded in `direction`.
    #[must_use]
    pub fn messages_of(&self, direction: Direction, message_type: &str) -> u64 {
        self.messages_by_type
            .get(message_type)
            .map_or(0, |counts| match direction {
                Direction::In => counts.received,
                Direction::Out => counts.sent,
            })
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
        let name = "messages_by_type_total";
        let _ = writeln!(
            out,
            "# HELP ipcspec_server_{name} Messages by type and direction, as recorded by the service."
        );
        let _ = writeln!(out, "# TYPE ipcspec_server_{name} counter");
        for (message_type, counts) in &self.messages_by_type {
            let message_type = escape_label(message_type);
            for (direction, value) in [
                (Direction::In, counts.received),
                (Direction::Out, counts.sent),
            ] {
                if value > 0 {
                    let _ = writeln!(
                        out,
                        "ipcspec_server_{name}{{direction=\"{}\",message_type=\"{message_type}\"}} {value}",
                        direction.as_str()
                    );
                }
            }
        }
        let name = "handling_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP ipcspec_server_{name} Time to handle a message, as recorded by the service."
        );
        let _ = writeln!(out, "# TYPE ipcspec_server_{name} histogram");
        for (bound, value) in &self.latency.buckets {
            let _ = writeln!(
                out,
                "ipcspec_server_{name}_bucket{{le=\"{}\"}} {value}",
                bound.as_secs_f64()
            );
        }
        let count = self.latency.count;
        let _ = writeln!(out, "ipcspec_server_{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "ipcspec_server_{name}_sum {}",
            self.latency.sum.as_secs_f64()
        );
        let _ = writeln!(out, "ipcspec_server_{name}_count {count}");
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

    #[test]
    fn message_types_are_counted_by_direction_and_escaped() {
        let metrics = Metrics::default();
        metrics.record_message(Direction::In, "ping");
        metrics.record_message(Direction::In, "ping");
        metrics.record_message(Direction::Out, "pong");
        metrics.record_message(Direction::In, "we\\ird \"type\"\n");
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.messages_of(Direction::In, "ping"), 2);
        assert_eq!(snapshot.messages_of(Direction::Out, "ping"), 0);
        assert_eq!(snapshot.messages_of(Direction::Out, "pong"), 1);
        let text = snapshot.prometheus();
        assert!(text.contains("# TYPE ipcspec_server_messages_by_type_total counter\n"));
        assert!(text.contains(
            "ipcspec_server_messages_by_type_total{direction=\"in\",message_type=\"ping\"} 2\n"
        ));
        assert!(text.contains(
            "ipcspec_server_messages_by_type_total{direction=\"out\",message_type=\"pong\"} 1\n"
        ));
        assert!(text.contains(
            "ipcspec_server_messages_by_type_total{direction=\"in\",message_type=\"we\\\\ird \\\"type\\\"\\n\"} 1\n"
        ));
    }

    #[test]
    fn message_type_cardinality_is_capped() {
        let metrics = Metrics::default();
        for n in 0..MAX_MESSAGE_TYPES + 50 {
            metrics.record_message(Direction::In, &format!("type_{n}"));
        }
        // Types already known keep their own counter after the cap is reached.
        metrics.record_message(Direction::Out, "type_0");
        metrics.record_message(Direction::In, &"x".repeat(MAX_MESSAGE_TYPE_LEN + 1));
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.messages_by_type.len(), MAX_MESSAGE_TYPES + 1);
        assert_eq!(snapshot.messages_of(Direction::In, OTHER_MESSAGE_TYPE), 51);
        assert_eq!(snapshot.messages_of(Direction::Out, "type_0"), 1);
        assert_eq!(snapshot.messages_of(Direction::In, "type_255"), 1);
        assert_eq!(snapshot.messages_of(Direction::In, "type_256"), 0);
        let total: u64 = snapshot
            .messages_by_type
            .values()
            .map(|counts| counts.received)
            .sum();
        assert_eq!(total, (MAX_MESSAGE_TYPES + 51) as u64);
    }

    #[test]
    fn latency_histogram_is_cumulative_and_counts_every_record() {
        let metrics = Metrics::default();
        let latencies = [
            Duration::ZERO,
            Duration::from_micros(10),
            Duration::from_micros(11),
            Duration::from_millis(3),
            Duration::from_millis(3),
            Duration::from_secs(10),
            Duration::from_secs(60),
        ];
        for latency in latencies {
            metrics.record_latency(latency);
        }
        let histogram = metrics.snapshot().latency;
        assert_eq!(histogram.count, latencies.len() as u64);
        assert_eq!(histogram.sum, latencies.iter().sum::<Duration>());
        assert_eq!(histogram.buckets.len(), LATENCY_BOUNDS_MICROS.len());
        assert!(
            histogram
                .buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        );
        let at = |bound: Duration| {
            histogram
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .unwrap()
                .1
        };
        assert_eq!(at(Duration::from_micros(10)), 2);
        assert_eq!(at(Duration::from_micros(25)), 3);
        assert_eq!(at(Duration::from_millis(2) + Duration::from_micros(500)), 3);
        assert_eq!(at(Duration::from_millis(5)), 5);
        assert_eq!(at(Duration::from_secs(10)), 6);

        let text = metrics.snapshot().prometheus();
        assert!(text.contains("# TYPE ipcspec_server_handling_latency_seconds histogram\n"));
        assert!(
            text.contains("ipcspec_server_handling_latency_seconds_bucket{le=\"0.00001\"} 2\n")
        );
        assert!(text.contains("ipcspec_server_handling_latency_seconds_bucket{le=\"0.005\"} 5\n"));
        assert!(text.contains("ipcspec_server_handling_latency_seconds_bucket{le=\"10\"} 6\n"));
        assert!(text.contains("ipcspec_server_handling_latency_seconds_bucket{le=\"+Inf\"} 7\n"));
        assert!(text.contains("ipcspec_server_handling_latency_seconds_count 7\n"));
        assert!(text.contains("ipcspec_server_handling_latency_seconds_sum 70.006021\n"));
        // Buckets in the text are cumulative too, ending at the count.
        let values: Vec<u64> = text
            .lines()
            .filter(|line| line.starts_with("ipcspec_server_handling_latency_seconds_bucket"))
            .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(values.len(), LATENCY_BOUNDS_MICROS.len() + 1);
        assert!(values.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(values.last(), Some(&7));
    }
}
