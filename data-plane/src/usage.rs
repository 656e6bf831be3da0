//! Token usage as the trace records it, whatever format it came in.

use aigw_proto::model::Price;

/// `input` counts every prompt token, cached ones and cache writes
/// included; `cached` (read from the provider's prompt cache) and
/// `cache_write` (written to it) are disjoint subsets of `input`,
/// `cache_write_1h` a subset of `cache_write`, `reasoning` of `output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    pub reasoning: u64,
    pub cache_write: u64,
    pub cache_write_1h: u64,
}

/// What a cache write costs over the input price, as Anthropic (the one
/// provider that reports writes) bills them: 1.25x for a 5-minute write,
/// 2x for a 1-hour one.
const WRITE_5M_SURCHARGE: f64 = 0.25;
const WRITE_1H_SURCHARGE: f64 = 1.0;

impl Usage {
    /// USD; 0 when the model has no price (the trace still has the tokens).
    /// Cache writes are input tokens billed above the input price.
    pub fn cost(&self, price: Option<Price>) -> f64 {
        price.map_or(0.0, |p| {
            let writes = self
                .cache_write
                .min(self.input.saturating_sub(self.cached.min(self.input)));
            let one_hour = self.cache_write_1h.min(writes);
            let surcharge = (writes - one_hour) as f64 * WRITE_5M_SURCHARGE
                + one_hour as f64 * WRITE_1H_SURCHARGE;
            p.cost(self.input, self.cached, self.output) + surcharge * p.input / 1_000_000.0
        })
    }
}
