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

    /// `req_`, the process's prefix (16 hex digits), the count (at least
    /// 10). Written in place: one per request.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if n >> 40 != 0 {
            return format!("req_{:016x}{:010x}", self.prefix, n);
        }
        let mut v = *b"req_00000000000000000000000000";
        // Both fit their slices exactly: cannot fail.
        let _ = hex::encode_to_slice(self.prefix.to_be_bytes(), &mut v[4..20]);
        let _ = hex::encode_to_slice(&n.to_be_bytes()[3..], &mut v[20..30]);
        String::from_utf8_lossy(&v).into_owned()
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod ids_tests {
    use super::*;

    #[test]
    fn request_ids_are_the_prefix_and_the_count_in_hex() {
        let ids = RequestIds::new();
        for n in [0u64, 1, 0xab_cdef, (1 << 40) - 1, 1 << 40, u64::MAX / 2] {
            ids.next.store(n, Ordering::Relaxed);
            assert_eq!(ids.next(), format!("req_{:016x}{:010x}", ids.prefix, n));
        }
    }
}
