//! Token usage as the trace records it, whatever format it came in.

use aigw_proto::model::Price;

/// `input` counts every prompt token, cached ones included; `cached` and
/// `reasoning` are subsets of `input` and `output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    pub reasoning: u64,
}

impl Usage {
    /// USD; 0 when the model has no price (the trace still has the tokens).
    pub fn cost(&self, price: Option<Price>) -> f64 {
        price.map_or(0.0, |p| p.cost(self.input, self.cached, self.output))
    }
}
