//! Prometheus exposition shared by the three binaries: one recorder setup
//! (latency histograms with the same buckets everywhere, so dashboards can
//! compare processes) and a writer for families computed at scrape time.
//!
//! Values that describe *current state* (the snapshot version a node
//! serves, how many credentials are cooling, how old the trace spool is)
//! are computed when scraped rather than kept as gauges in the recorder: a
//! gauge with a label that changes (a version, a removed provider) would
//! otherwise stay exported forever at its last value.

use std::fmt::Write as _;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Seconds: from a cached-answer fast path (0.5 ms) to a long generation (5 min).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];

/// Counts of things handled together (traces stored in one group write):
/// one to a few thousand.
pub const COUNT_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
];

/// Installs the process-wide recorder: every `*_seconds` histogram gets
/// [`LATENCY_BUCKETS`], every `*_records` one [`COUNT_BUCKETS`] (a
/// histogram without buckets is exported as a summary, which cannot be
/// summed across processes). None (with a warning) if one is already
/// installed.
pub fn install() -> Option<PrometheusHandle> {
    match builder().and_then(PrometheusBuilder::install_recorder) {
        Ok(h) => {
            start_upkeep(h.clone());
            Some(h)
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed");
            None
        }
    }
}

/// The recorder's configuration: the buckets by metric name.
fn builder() -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_records".into()), COUNT_BUCKETS)
}

/// How often histogram samples are folded into their buckets.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps every histogram sample in a queue until something
/// folds it into the buckets; without this only a scrape does, so a process
/// nobody scrapes grows by every request's samples (about 30 MB per
/// million requests). A thread, not a task: it needs no runtime.
fn start_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP);
                handle.run_upkeep();
            }
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "metrics upkeep thread not started; histograms fold only when scraped");
    }
}

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Families computed at scrape time, appended after the recorder's.
#[derive(Default)]
pub struct Families {
    out: String,
}

impl Families {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a gauge family (HELP and TYPE lines).
    pub fn gauge(&mut self, name: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} gauge");
        self
    }

    /// Starts a counter family (its name ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} counter");
        self
    }

    /// One sample of the family started last.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
        self
    }

    /// The recorder's exposition followed by these families.
    pub fn render_after(self, handle: Option<&PrometheusHandle>) -> String {
        let mut text = handle.map(PrometheusHandle::render).unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&self.out);
        text
    }
}

/// Label values escaped as the text format requires.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Histograms are exported as histograms (with buckets), which a
    /// dashboard can sum across processes; one without buckets would be a
    /// summary.
    #[test]
    fn seconds_and_records_histograms_have_buckets() {
        let recorder = builder().expect("builder").build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("aigw_trace_group_records").record(12.0);
            metrics::histogram!("aigw_x_duration_seconds").record(0.003);
        });
        let text = handle.render();
        assert!(
            text.contains("# TYPE aigw_trace_group_records histogram"),
            "{text}"
        );
        assert!(
            text.contains("aigw_trace_group_records_bucket{le=\"25\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE aigw_x_duration_seconds histogram"),
            "{text}"
        );
    }

    #[test]
    fn families_are_valid_exposition() {
        let mut f = Families::new();
        f.gauge("aigw_snapshot_info", "The snapshot served.")
            .sample("aigw_snapshot_info", &[("version", "ab\"c\\\n")], 1.0);
        f.gauge("aigw_age_seconds", "Age.")
            .sample("aigw_age_seconds", &[], 2.5);
        let text = f.render_after(None);
        assert_eq!(
            text,
            "# HELP aigw_snapshot_info The snapshot served.\n# TYPE aigw_snapshot_info gauge\n\
             aigw_snapshot_info{version=\"ab\\\"c\\\\\\n\"} 1\n\
             # HELP aigw_age_seconds Age.\n# TYPE aigw_age_seconds gauge\naigw_age_seconds 2.5\n"
        );
    }
}
