//! Log-scale histograms of durations in microseconds, mergeable and small
//! enough to keep one per rollup row. Bucket `i` holds values `v` with
//! `floor(8 * log2(v)) == i`, so each bucket is 2^(1/8) (9 %) wide and a
//! percentile read from it is within 4.5 % of the true value. Stored as
//! text, sparse: `"index:count,index:count"` in index order.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Buckets per doubling.
const PER_OCTAVE: f64 = 8.0;
/// Values are clamped to 2^40 µs (about 12 days): index 320 at most.
const MAX_INDEX: u16 = 320;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: BTreeMap<u16, u64>,
}

fn index_of(us: u64) -> u16 {
    if us <= 1 {
        return 0;
    }
    let i = ((us as f64).log2() * PER_OCTAVE).floor();
    (i as u16).min(MAX_INDEX)
}

/// The geometric middle of bucket `i`, in microseconds.
fn value_of(i: u16) -> f64 {
    ((f64::from(i) + 0.5) / PER_OCTAVE).exp2()
}

impl Histogram {
    pub fn record(&mut self, us: u64) {
        *self.counts.entry(index_of(us)).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (i, n) in &other.counts {
            *self.counts.entry(*i).or_default() += n;
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Nearest-rank percentile (`q` in 0..=1) in milliseconds; 0 when empty.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        let n = self.count();
        if n == 0 {
            return 0.0;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, c) in &self.counts {
            seen += c;
            if seen >= rank {
                return value_of(*i).round() / 1000.0;
            }
        }
        0.0
    }

    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(self.counts.len() * 8);
        for (i, n) in &self.counts {
            if !s.is_empty() {
                s.push(',');
            }
            let _ = write!(s, "{i}:{n}");
        }
        s
    }

    /// Adds the counts of an encoded histogram; malformed entries (which
    /// only a hand-edited database holds) are skipped.
    pub fn merge_encoded(&mut self, text: &str) {
        for entry in text.split(',') {
            let Some((i, n)) = entry.split_once(':') else {
                continue;
            };
            if let (Ok(i), Ok(n)) = (i.parse::<u16>(), n.parse::<u64>()) {
                *self.counts.entry(i.min(MAX_INDEX)).or_default() += n;
            }
        }
    }

    pub fn decode(text: &str) -> Histogram {
        let mut h = Histogram::default();
        h.merge_encoded(text);
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_five_percent() {
        let mut h = Histogram::default();
        for ms in 1..=1000u64 {
            h.record(ms * 1000);
        }
        for (q, want) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = h.percentile_ms(q);
            assert!((got - want).abs() / want < 0.05, "p{q}: {got} vs {want}");
        }
        assert_eq!(Histogram::default().percentile_ms(0.5), 0.0);
    }

    #[test]
    fn encodes_merges_and_skips_garbage() {
        let mut a = Histogram::default();
        a.record(0);
        a.record(1500);
        a.record(1500);
        let text = a.encode();
        assert_eq!(Histogram::decode(&text), a);
        let mut b = Histogram::decode("bad,7:x,84:2");
        b.merge(&a);
        assert_eq!(b.count(), 5);
        b.merge_encoded(&text);
        assert_eq!(b.count(), 8);
        assert!(Histogram::decode("").is_empty());
        let mut huge = Histogram::default();
        huge.record(u64::MAX);
        assert_eq!(huge.encode(), format!("{MAX_INDEX}:1"));
    }
}
