//! Log-scale histograms of durations in microseconds, mergeable and small
//! enough to keep one per rollup row. Bucket `i` holds values `v` with
//! `floor(8 * log2(v)) == i`, so each bucket is 2^(1/8) (9 %) wide and a
//! percentile read from it is within 4.5 % of the true value. Stored as
//! text, sparse: `"index:count,index:count"` in index order.

use std::fmt::Write as _;

/// Buckets per doubling.
const PER_OCTAVE: f64 = 8.0;
/// Values are clamped to 2^40 µs (about 12 days): index 320 at most.
const MAX_INDEX: u16 = 320;

/// Dense counts by bucket index, never ending in a zero: merging two is a
/// few hundred additions, with no allocation once grown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
}

/// An encoded histogram parsed once: (index, count) pairs, to add to several
/// histograms without parsing the text again.
pub type Pairs = Vec<(u16, u64)>;

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
    fn add(&mut self, i: u16, n: u64) {
        let i = usize::from(i.min(MAX_INDEX));
        if n == 0 {
            return;
        }
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += n;
    }

    pub fn record(&mut self, us: u64) {
        self.add(index_of(us), 1);
    }

    pub fn merge(&mut self, other: &Histogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    pub fn add_pairs(&mut self, pairs: &[(u16, u64)]) {
        for (i, n) in pairs {
            self.add(*i, *n);
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
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
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_of(u16::try_from(i).unwrap_or(MAX_INDEX)).round() / 1000.0;
            }
        }
        0.0
    }

    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(64);
        for (i, n) in self.counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            if !s.is_empty() {
                s.push(',');
            }
            let _ = write!(s, "{i}:{n}");
        }
        s
    }

    /// The pairs of an encoded histogram; malformed entries (which only a
    /// hand-edited database holds) are skipped.
    pub fn parse(text: &str) -> Pairs {
        text.split(',')
            .filter_map(|entry| {
                let (i, n) = entry.split_once(':')?;
                Some((
                    i.parse::<u16>().ok()?.min(MAX_INDEX),
                    n.parse::<u64>().ok()?,
                ))
            })
            .collect()
    }

    /// Adds the counts of an encoded histogram.
    pub fn merge_encoded(&mut self, text: &str) {
        self.add_pairs(&Self::parse(text));
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
