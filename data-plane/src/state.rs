//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::forward::HttpClient;
use crate::ratelimit::Limiter;
use crate::runtime::Runtime;
use crate::telemetry::Otel;
use crate::trace_report::TraceSink;

pub struct AppState {
    pub cfg: Config,
    pub node_id: String,
    pub live: Arc<ArcSwapOption<Runtime>>,
    pub client: HttpClient,
    pub traces: TraceSink,
    pub ids: RequestIds,
    pub prometheus: Option<PrometheusHandle>,
    pub limiter: Arc<Limiter>,
    pub otel: Otel,
    /// Request body bytes held by every request in flight.
    pub bodies: Arc<crate::body_budget::BodyBudget>,
}

/// Request ids unique across nodes and restarts without a random draw per
/// request: a random per-process prefix and a counter.
pub struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        let mut b = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        Self {
            prefix: u64::from_le_bytes(b),
            next: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("req_{:016x}{:010x}", self.prefix, n)
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}
