//! The control plane's Prometheus metrics, served on `AIGW_METRICS_LISTEN`
//! (a plain HTTP port of its own: the gRPC port speaks only gRPC, over mTLS
//! in production, which scrapers do not).
//!
//! Trace ingest is counted as it happens (rate, duplicates, refusals,
//! batch store time, lag from a request's start to its commit); snapshot
//! and node state is read when scraped, so a version or a node that is gone
//! is gone from `/metrics` too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use aigw_proto::pb::trace::TraceRecord;
use aigw_proto::prometheus::{CONTENT_TYPE, Families};
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::db::now_ms;
use crate::push::{Publisher, Registry};

pub const TRACES_STORED: &str = "aigw_trace_ingest_stored_total";
pub const TRACES_DUPLICATE: &str = "aigw_trace_ingest_duplicates_total";
pub const BATCHES: &str = "aigw_trace_ingest_batches_total";
pub const BATCH_FAILURES: &str = "aigw_trace_ingest_batch_failures_total";
pub const BATCH_DURATION: &str = "aigw_trace_ingest_batch_duration_seconds";
pub const INGEST_LAG: &str = "aigw_trace_ingest_lag_seconds";
pub const PUBLISHES: &str = "aigw_snapshot_publishes_total";

/// Most distinct regions reported; nodes beyond are counted as `other`
/// (a join-token node names its own region).
const MAX_REGIONS: usize = 64;

/// When the current snapshot was published (epoch ms).
static PUBLISHED_AT_MS: AtomicI64 = AtomicI64::new(0);

pub fn describe() {
    describe_counter!(TRACES_STORED, "Trace records stored (new request ids).");
    describe_counter!(
        TRACES_DUPLICATE,
        "Trace records received again (a resend after a lost ack) and not stored twice."
    );
    describe_counter!(BATCHES, "Trace batches committed and acknowledged.");
    describe_counter!(
        BATCH_FAILURES,
        "Trace batches the database did not take (the data plane resends them)."
    );
    describe_histogram!(
        BATCH_DURATION,
        Unit::Seconds,
        "Time from a trace batch's arrival to its commit (queue wait included)."
    );
    describe_histogram!(
        INGEST_LAG,
        Unit::Seconds,
        "Per batch, from the start of its oldest request to its commit: how far stored traces trail the traffic."
    );
    describe_counter!(
        PUBLISHES,
        "New snapshot versions published to the data planes."
    );
    describe_counter!(
        "aigw_traces_refused_total",
        "Trace records the database refused for their content (dropped, logged)."
    );
    describe_histogram!(
        "aigw_trace_group_records",
        "Trace records stored per group commit (the batches of every stream queued meanwhile, in one transaction)."
    );
    describe_counter!(
        "aigw_traces_expired_total",
        "Traces deleted by retention (AIGW_TRACE_RETENTION_DAYS)."
    );
    describe_counter!(
        "aigw_health_checks_total",
        "Credential health checks made by the control plane, by result and trigger."
    );
    describe_counter!(
        "aigw_snapshot_pushes_total",
        "Snapshots pushed to data planes, by kind (whole, delta)."
    );
    describe_counter!(
        "aigw_snapshot_push_bytes_total",
        "Bytes of snapshots pushed to data planes, by kind (whole, delta)."
    );
    describe_counter!(
        "aigw_oauth_refreshes_total",
        "OAuth access token refreshes, by result and reason."
    );
    // Present at 0 from the start, so rates over them are defined (an
    // alert's rate() has no data, rather than 0, for a series not yet
    // served): every unlabelled counter, and the labelled ones whose
    // label values are few and fixed.
    for name in [
        TRACES_STORED,
        TRACES_DUPLICATE,
        BATCHES,
        BATCH_FAILURES,
        "aigw_traces_refused_total",
        "aigw_traces_expired_total",
    ] {
        counter!(name).increment(0);
    }
    for (result, reason) in OAUTH_RESULTS
        .iter()
        .flat_map(|res| OAUTH_REASONS.iter().map(move |rea| (*res, *rea)))
    {
        counter!("aigw_oauth_refreshes_total", "result" => result, "reason" => reason).increment(0);
    }
    for status in crate::health::probe::Status::ALL {
        for trigger in crate::health::Trigger::ALL {
            counter!("aigw_health_checks_total", "status" => status.as_str(), "trigger" => trigger.as_str())
                .increment(0);
        }
    }
    for kind in ["whole", "delta"] {
        counter!("aigw_snapshot_pushes_total", "kind" => kind).increment(0);
        counter!("aigw_snapshot_push_bytes_total", "kind" => kind).increment(0);
    }
}

/// `result` values of `aigw_oauth_refreshes_total` (`oauth/refresher.rs`).
const OAUTH_RESULTS: [&str; 3] = ["ok", "revoked", "error"];
/// `reason` values of `aigw_oauth_refreshes_total` (`oauth::refresher::Reason`).
const OAUTH_REASONS: [&str; 3] = ["schedule", "unauthorized", "admin"];

/// Called when a version is published (and at start).
pub fn snapshot_published() {
    PUBLISHED_AT_MS.store(now_ms(), Ordering::Relaxed);
    counter!(PUBLISHES).increment(1);
}

/// What the metrics need of a batch before it is stored.
pub struct Batch {
    oldest_started_ms: Option<i64>,
    started: Instant,
}

impl Batch {
    pub fn of(records: &[TraceRecord]) -> Self {
        Self {
            oldest_started_ms: records
                .iter()
                .map(|r| r.started_at_ms)
                .filter(|t| *t > 0)
                .min(),
            started: Instant::now(),
        }
    }

    pub fn stored(self, stored: u32, duplicates: u32) {
        histogram!(BATCH_DURATION).record(self.started.elapsed().as_secs_f64());
        counter!(BATCHES).increment(1);
        counter!(TRACES_STORED).increment(u64::from(stored));
        counter!(TRACES_DUPLICATE).increment(u64::from(duplicates));
        if let Some(t) = self.oldest_started_ms {
            let lag_ms = now_ms().saturating_sub(t).max(0);
            histogram!(INGEST_LAG).record(lag_ms as f64 / 1000.0);
        }
    }

    pub fn failed(self) {
        counter!(BATCH_FAILURES).increment(1);
    }
}

/// `/metrics`: the recorder's counters and the state read now.
pub fn render(
    handle: Option<&PrometheusHandle>,
    publisher: &Publisher,
    registry: &Registry,
) -> String {
    let mut f = Families::new();
    let current = publisher.current();
    f.gauge(
        "aigw_snapshot_info",
        "The configuration snapshot published (its version label), 1.",
    )
    .sample("aigw_snapshot_info", &[("version", current.version())], 1.0);
    let published = PUBLISHED_AT_MS.load(Ordering::Relaxed);
    f.gauge(
        "aigw_snapshot_age_seconds",
        "Seconds since the current snapshot was published.",
    )
    .sample(
        "aigw_snapshot_age_seconds",
        &[],
        if published > 0 {
            (now_ms() - published).max(0) as f64 / 1000.0
        } else {
            0.0
        },
    );
    f.gauge(
        "aigw_snapshot_bytes",
        "Encoded size of the current snapshot.",
    )
    .sample("aigw_snapshot_bytes", &[], current.encoded_len as f64);
    // Per region: nodes connected, and how many of them serve the current version.
    let mut regions: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for n in registry.list().into_iter().filter(|n| n.connected) {
        let region = if regions.len() < MAX_REGIONS || regions.contains_key(&n.region) {
            n.region
        } else {
            "other".to_string()
        };
        let e = regions.entry(region).or_default();
        e.0 += 1;
        if n.applied_version == current.version() {
            e.1 += 1;
        }
    }
    f.gauge(
        "aigw_nodes_connected",
        "Data planes with an open snapshot stream, by region.",
    );
    for (region, (n, _)) in &regions {
        f.sample("aigw_nodes_connected", &[("region", region)], *n as f64);
    }
    f.gauge(
        "aigw_nodes_current",
        "Connected data planes that acknowledged the current snapshot, by region.",
    );
    for (region, (_, current)) in &regions {
        f.sample("aigw_nodes_current", &[("region", region)], *current as f64);
    }
    f.render_after(handle)
}

/// Serves `GET /metrics` on `addr` until the process ends; prints
/// `control-plane metrics on ADDR` once bound.
pub async fn serve(
    addr: SocketAddr,
    handle: Option<PrometheusHandle>,
    publisher: Publisher,
    registry: Registry,
) -> std::io::Result<SocketAddr> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let body = render(handle.as_ref(), &publisher, &registry);
            async move { ([(http::header::CONTENT_TYPE, CONTENT_TYPE)], body) }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_rendered_per_region_with_help() {
        let compiled = crate::compile::Compiled::new(Default::default(), Vec::new().into());
        let v1 = compiled.version().to_string();
        let publisher = Publisher::new(compiled);
        let registry = Registry::default();
        let a = registry.connect("a", "eu", &v1);
        registry.connect("b", "eu", "v0");
        registry.connect("c", "us", &v1);
        registry.disconnect("a", a);
        let text = render(None, &publisher, &registry);
        assert!(
            text.contains(&format!("aigw_snapshot_info{{version=\"{v1}\"}} 1\n")),
            "{text}"
        );
        assert!(
            text.contains("aigw_nodes_connected{region=\"eu\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("aigw_nodes_current{region=\"eu\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("aigw_nodes_current{region=\"us\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("# HELP aigw_snapshot_bytes "), "{text}");
    }

    /// `/metrics` of a control plane that has done nothing yet: the
    /// counters alerts take a rate() of are there, at 0.
    #[test]
    fn counters_are_served_at_zero_from_the_start() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, describe);
        let text = handle.render();
        let mut want = vec![
            "aigw_traces_expired_total 0".to_string(),
            "aigw_traces_refused_total 0".to_string(),
            "aigw_snapshot_pushes_total{kind=\"whole\"} 0".to_string(),
            "aigw_snapshot_push_bytes_total{kind=\"delta\"} 0".to_string(),
            "aigw_health_checks_total{status=\"ok\",trigger=\"schedule\"} 0".to_string(),
            "aigw_health_checks_total{status=\"network_error\",trigger=\"admin\"} 0".to_string(),
        ];
        for result in OAUTH_RESULTS {
            for reason in OAUTH_REASONS {
                want.push(format!(
                    "aigw_oauth_refreshes_total{{result=\"{result}\",reason=\"{reason}\"}} 0"
                ));
            }
        }
        for series in want {
            assert!(text.contains(&format!("{series}\n")), "{series}:\n{text}");
        }
    }
}
