//! What a client measures and prints: latency percentiles, throughput, and the tally of
//! acknowledgments that proves every request was answered.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::wire;

/// The one-line JSON result a `client` run prints on stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientReport {
    /// The implementation measured (`raw`, `tokio-codec`, `tarpc`, `runtime`, `durable`).
    #[serde(rename = "impl")]
    pub implementation: String,
    /// `rtt` or `throughput`.
    pub mode: String,
    /// Measured requests.
    pub count: u64,
    /// Warm-up round trips before measuring.
    pub warmup: u64,
    /// Acknowledgments received for measured requests.
    pub acks: u64,
    /// Acknowledgments that reported success and answered a distinct measured request.
    pub correlated: u64,
    /// Median round trip, µs (`rtt` only).
    pub p50_us: Option<f64>,
    /// 99th percentile round trip, µs (`rtt` only).
    pub p99_us: Option<f64>,
    /// Mean round trip, µs (`rtt` only).
    pub mean_us: Option<f64>,
    /// Fastest round trip, µs (`rtt` only).
    pub min_us: Option<f64>,
    /// Slowest round trip, µs (`rtt` only).
    pub max_us: Option<f64>,
    /// Time from the first request to the last acknowledgment, s.
    pub elapsed_s: f64,
    /// `count / elapsed_s`.
    pub msgs_per_s: f64,
}

impl ClientReport {
    /// A report of `samples` sequential round trips.
    pub fn rtt(implementation: &str, warmup: u64, samples: &[Duration], tally: &Tally) -> Self {
        let mut nanos: Vec<u64> = samples
            .iter()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .collect();
        nanos.sort_unstable();
        let total: Duration = samples.iter().sum();
        let us = |ns: u64| ns as f64 / 1000.0;
        let count = samples.len() as u64;
        let elapsed = total.as_secs_f64();
        ClientReport {
            implementation: implementation.to_owned(),
            mode: "rtt".to_owned(),
            count,
            warmup,
            acks: tally.acks,
            correlated: tally.correlated,
            p50_us: percentile(&nanos, 50.0).map(us),
            p99_us: percentile(&nanos, 99.0).map(us),
            mean_us: (count > 0).then(|| total.as_secs_f64() * 1e6 / count as f64),
            min_us: nanos.first().copied().map(us),
            max_us: nanos.last().copied().map(us),
            elapsed_s: elapsed,
            msgs_per_s: rate(count, elapsed),
        }
    }

    /// A report of `count` pipelined requests whose last ack arrived `elapsed` after the
    /// first request was written.
    pub fn throughput(
        implementation: &str,
        warmup: u64,
        count: u64,
        elapsed: Duration,
        tally: &Tally,
    ) -> Self {
        let elapsed = elapsed.as_secs_f64();
        ClientReport {
            implementation: implementation.to_owned(),
            mode: "throughput".to_owned(),
            count,
            warmup,
            acks: tally.acks,
            correlated: tally.correlated,
            p50_us: None,
            p99_us: None,
            mean_us: None,
            min_us: None,
            max_us: None,
            elapsed_s: elapsed,
            msgs_per_s: rate(count, elapsed),
        }
    }
}

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// The `p`th percentile (nearest rank) of sorted `values`.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Counts the acks of the measured requests `first .. first + count`: each must report
/// success and answer a distinct one of them.
#[derive(Debug)]
pub struct Tally {
    first: u64,
    seen: Vec<bool>,
    /// Acks received.
    pub acks: u64,
    /// Acks that succeeded and answered a distinct measured request.
    pub correlated: u64,
}

impl Tally {
    /// A tally for requests `first .. first + count`.
    pub fn new(first: u64, count: u64) -> Self {
        Tally {
            first,
            seen: vec![false; usize::try_from(count).unwrap_or(0)],
            acks: 0,
            correlated: 0,
        }
    }

    /// Records one ack answering `correlation_id`.
    pub fn record(&mut self, correlation_id: Option<&str>, success: bool) {
        self.acks += 1;
        let Some(number) = correlation_id.and_then(wire::request_number) else {
            return;
        };
        let Some(index) = number
            .checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        if let Some(seen) = self.seen.get_mut(index)
            && !*seen
            && success
        {
            *seen = true;
            self.correlated += 1;
        }
    }

    /// Every measured request has been answered (successfully or not).
    pub fn complete(&self) -> bool {
        self.acks >= self.seen.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), Some(50));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn tally_counts_distinct_successful_answers() {
        let mut tally = Tally::new(10, 3);
        tally.record(Some("b-000000000010"), true);
        tally.record(Some("b-000000000010"), true);
        tally.record(Some("b-000000000009"), true);
        tally.record(Some("b-000000000011"), false);
        tally.record(None, true);
        assert_eq!((tally.acks, tally.correlated), (5, 1));
    }
}
