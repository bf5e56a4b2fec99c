//! Latency summaries and message-order bookkeeping: the arithmetic behind the figures, kept apart
//! from the network code so it can be tested exactly.

use serde::Serialize;
use std::collections::BTreeMap;

/// The nearest-rank percentile `p` (0..=100) of `sorted` (ascending): the smallest sample with
/// at least p% of the samples at or below it. No interpolation, so every figure printed is a
/// latency that was actually observed. `None` for no samples.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    // rank is 1-based; p = 0 means the first sample.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Summary {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest sample.
    pub max_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

impl Summary {
    /// Summarizes samples given in nanoseconds (sorts them in place).
    pub fn of_nanos(samples: &mut [u64]) -> Summary {
        samples.sort_unstable();
        let us = |p: f64| percentile(samples, p).map_or(0.0, |ns| ns as f64 / 1000.0);
        let mean = if samples.is_empty() {
            0.0
        } else {
            samples.iter().map(|&ns| ns as f64).sum::<f64>() / samples.len() as f64 / 1000.0
        };
        Summary {
            count: samples.len(),
            p50_us: us(50.0),
            p90_us: us(90.0),
            p99_us: us(99.0),
            max_us: us(100.0),
            mean_us: mean,
        }
    }

    /// "p50 / p99 / max" in milliseconds, for the tables.
    pub fn short_ms(&self) -> String {
        if self.count == 0 {
            return "-".into();
        }
        format!(
            "{:.2} / {:.2} / {:.2} ms",
            self.p50_us / 1000.0,
            self.p99_us / 1000.0,
            self.max_us / 1000.0
        )
    }
}

/// Arrivals of one sender's numbered messages (numbered 0, 1, 2... in the order it sent them, one
/// at a time): duplicates, and reorderings (a message arriving after one sent later than it).
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    seen: Vec<u64>,
    highest: Option<u64>,
    /// Distinct messages received.
    pub unique: u64,
    /// Messages received again.
    pub duplicates: u64,
    /// Messages that arrived after a message sent later.
    pub reordered: u64,
}

impl SeqTracker {
    /// Records the arrival of message `seq`.
    pub fn record(&mut self, seq: u64) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.unique += 1;
        match self.highest {
            Some(h) if seq < h => self.reordered += 1,
            _ => self.highest = Some(seq),
        }
    }

    /// Whether message `seq` has arrived.
    pub fn has(&self, seq: u64) -> bool {
        self.seen
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }

    /// Messages in `0..sent` that were acknowledged (not in `failed`) and never arrived.
    pub fn lost(&self, sent: u64, failed: &[u64]) -> u64 {
        (0..sent)
            .filter(|s| !self.has(*s) && !failed.contains(s))
            .count() as u64
    }
}

/// Counts of things by kind (error kinds, status codes), sorted for stable output.
pub type Tally = BTreeMap<String, u64>;

/// Adds one to `kind` in `tally`.
pub fn bump(tally: &mut Tally, kind: impl Into<String>) {
    *tally.entry(kind.into()).or_default() += 1;
}

/// Adds every count of `other` to `tally`.
pub fn merge(tally: &mut Tally, other: &Tally) {
    for (k, v) in other {
        *tally.entry(k.clone()).or_default() += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(50));
        assert_eq!(percentile(&sorted, 99.0), Some(99));
        assert_eq!(percentile(&sorted, 99.5), Some(100));
        assert_eq!(percentile(&sorted, 100.0), Some(100));
        assert_eq!(percentile(&sorted, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        // Four samples: the median is the second (nearest rank), not an interpolated 2.5.
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 51.0), Some(3));
    }

    #[test]
    fn summary_in_microseconds() {
        let mut ns = vec![3_000, 1_000, 2_000, 10_000];
        let s = Summary::of_nanos(&mut ns);
        assert_eq!(s.count, 4);
        assert_eq!(s.p50_us, 2.0);
        assert_eq!(s.p99_us, 10.0);
        assert_eq!(s.max_us, 10.0);
        assert_eq!(s.mean_us, 4.0);
        assert_eq!(Summary::of_nanos(&mut []).short_ms(), "-");
    }

    #[test]
    fn seq_tracker_counts_duplicates_reorders_and_losses() {
        let mut t = SeqTracker::default();
        for seq in [0, 1, 3, 2, 3, 200, 4] {
            t.record(seq);
        }
        assert_eq!(t.unique, 6);
        assert_eq!(t.duplicates, 1);
        // 2 came after 3; 4 came after 200.
        assert_eq!(t.reordered, 2);
        assert!(t.has(200) && !t.has(5));
        // Sent 0..=6; 5 failed (not acknowledged), so only 6 is lost.
        assert_eq!(t.lost(7, &[5]), 1);
    }
}
