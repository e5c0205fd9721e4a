//! A histogram counted with atomics only. prometheus-client's own takes a
//! mutex on every observation; this one is observed by the scheduler
//! workers on every scorer call, so it must never make two of them wait
//! for each other.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of a histogram's buckets in whole units (nanoseconds,
/// ops), ascending, and how many units make one exposed unit.
#[derive(Debug, Clone, Copy)]
pub struct Buckets {
    pub bounds: &'static [u64],
    /// `1e9` for nanoseconds shown as seconds, `1.0` for counts.
    pub per: f64,
}

/// A scorer call: 10 µs (a native scorer on a few nodes) to 1 s (well past
/// any sane deadline), in nanoseconds.
pub const CALL: Buckets = Buckets {
    bounds: &[
        10_000,
        25_000,
        50_000,
        100_000,
        250_000,
        500_000,
        1_000_000,
        2_500_000,
        5_000_000,
        10_000_000,
        25_000_000,
        50_000_000,
        100_000_000,
        250_000_000,
        500_000_000,
        1_000_000_000,
    ],
    per: 1e9,
};

/// A commit of the store: 100 µs (no fsync, one small op) to 10 s (a disk
/// in trouble), in nanoseconds.
pub const COMMIT: Buckets = Buckets {
    bounds: &[
        100_000,
        250_000,
        500_000,
        1_000_000,
        2_500_000,
        5_000_000,
        10_000_000,
        25_000_000,
        50_000_000,
        100_000_000,
        250_000_000,
        500_000_000,
        1_000_000_000,
        2_500_000_000,
        5_000_000_000,
        10_000_000_000,
    ],
    per: 1e9,
};

/// Ops in one commit: 1 to the writer's largest batch (1024 by default).
pub const OPS: Buckets = Buckets {
    bounds: &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    per: 1.0,
};

/// Clones share the counts.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    buckets: Buckets,
    /// One per bound, and the last for what is above them all.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(buckets: Buckets) -> Self {
        Self(Arc::new(Inner {
            buckets,
            counts: (0..=buckets.bounds.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum: AtomicU64::new(0),
        }))
    }

    /// Counts one observation of `value` units.
    pub fn observe(&self, value: u64) {
        let inner = &*self.0;
        // The first bucket whose bound is at least the value (`le`).
        let i = inner.buckets.bounds.partition_point(|&b| b < value);
        if let Some(count) = inner.counts.get(i) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        inner.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Counts one observation of `d` (a histogram in nanoseconds).
    pub fn observe_duration(&self, d: Duration) {
        self.observe(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Observations so far, and their sum in the exposed unit.
    #[cfg(test)]
    pub fn count_and_sum(&self) -> (u64, f64) {
        let inner = &*self.0;
        let count = inner.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        let sum = inner.sum.load(Ordering::Relaxed) as f64 / inner.buckets.per;
        (count, sum)
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = &*self.0;
        let per = inner.buckets.per;
        // Read once: the count is the buckets' total, so `_count` and the
        // `+Inf` bucket always agree even while workers observe.
        let buckets: Vec<(f64, u64)> = inner
            .buckets
            .bounds
            .iter()
            .map(|&b| b as f64 / per)
            .chain([f64::INFINITY])
            .zip(inner.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = inner.sum.load(Ordering::Relaxed) as f64 / per;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    #[test]
    fn a_value_lands_in_the_first_bucket_that_holds_it() {
        let h = Histogram::new(OPS);
        for v in [1, 2, 3, 1024, 5000] {
            h.observe(v);
        }
        let counts: Vec<u64> =
            h.0.counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect();
        // le=1: 1; le=2: 2; le=4: 3; le=1024: 1024; +Inf: 5000.
        assert_eq!(counts[0], 1);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[2], 1);
        assert_eq!(counts[10], 1);
        assert_eq!(counts[11], 1);
        assert_eq!(h.count_and_sum(), (5, 6030.0));
    }

    #[test]
    fn nanoseconds_are_shown_in_seconds() {
        let h = Histogram::new(CALL);
        h.observe_duration(Duration::from_micros(30));
        h.observe_duration(Duration::from_secs(2));
        let (count, sum) = h.count_and_sum();
        assert_eq!(count, 2);
        assert!((sum - 2.00003).abs() < 1e-12, "{sum}");
    }

    #[test]
    fn bounds_ascend() {
        for b in [CALL, COMMIT, OPS] {
            assert!(b.bounds.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
