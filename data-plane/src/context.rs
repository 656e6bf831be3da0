//! The request's context: everything the pipeline learns about one
//! authenticated model call, owned by the pipeline while it runs and moved
//! into the streamed body when the answer streams. Whoever holds it last
//! runs the logging phase ([`RequestCtx::log`]), exactly once. Every path
//! of the pipeline ends in `log`; a context dropped before it (the app hung
//! up while its whole answer was being made, and hyper dropped the request's
//! future) runs it from `Drop`, so that request is traced and charged too.

use aigw_proto::model::ClientKey;

use crate::endpoints::AppCall;
use crate::error::GatewayError;
use crate::ratelimit::Held;
use crate::state::AppState;
use crate::trace_report::{KILLED, Slot, TraceDraft, TraceSink, Written};

pub struct RequestCtx {
    /// The trace being filled in (usage, price, attempts, timings).
    pub trace: TraceDraft,
    /// The request's reservation in its budgets (the limits phase's), if
    /// any budget governs it.
    pub held: Option<Held>,
    sink: TraceSink,
    /// The logging phase has run.
    logged: bool,
}

impl RequestCtx {
    pub fn new(
        state: &AppState,
        key: &ClientKey,
        call: &AppCall,
        parts: &http::request::Parts,
        request_id: &str,
    ) -> Self {
        let mut trace = TraceDraft::new(
            request_id,
            call.endpoint,
            call.format.as_str(),
            &state.cfg.region,
            &state.node_id,
        );
        key.id().clone_into(&mut trace.rec.client_key_id);
        key.name().clone_into(&mut trace.rec.client_key_name);
        trace.span = state.otel.request(&parts.headers, call.endpoint);
        Self {
            trace,
            held: None,
            sink: state.traces.clone(),
            logged: false,
        }
    }

    /// The logging phase, for a request that failed before an answer.
    #[must_use = "the error answer must wait until its trace is written"]
    pub fn log_error(mut self, e: &GatewayError) -> Written {
        self.trace.set_error(e.kind());
        if let GatewayError::RateLimited {
            budget_id, limit, ..
        } = e
        {
            self.trace.rec.refused_by = format!("{budget_id}/{limit}");
        }
        tracing::debug!(request_id = %self.trace.rec.request_id, origin = e.origin().as_str(), error = %e, "request failed");
        self.log(e.status().as_u16())
    }

    /// The logging phase: closes the trace with the status the app got,
    /// charges the budgets what it records (the reservation is settled with
    /// the real usage and cost; released when there is none), and files it.
    /// The end of the app's answer waits for the returned ticket.
    #[must_use = "the answer's end must wait until its trace is written"]
    pub fn log(mut self, status: u16) -> Written {
        self.file(status, None)
    }

    /// [`Self::log`] for a stream, which frees its in-flight slot once its
    /// record is in the spool.
    #[must_use = "the answer's end must wait until its trace is written"]
    pub fn log_stream(mut self, status: u16, slot: Option<Slot>) -> Written {
        self.file(status, slot)
    }

    /// Keeps what this request's trace would be were the process killed
    /// now, mid-stream, until the returned slot is dropped (filed at the
    /// next start then: `trace_report::inflight`).
    pub fn keep_in_flight(&self, status: u16) -> Option<Slot> {
        let over = self.trace.if_cut_now(status, KILLED);
        self.sink
            .begin_stream(&[&self.trace.rec, &over], self.trace.price)
    }

    fn file(&mut self, status: u16, slot: Option<Slot>) -> Written {
        self.logged = true;
        let rec = self.trace.finish(status);
        if let Some(held) = self.held.take() {
            held.settle(rec.input_tokens.saturating_add(rec.output_tokens), rec.cost);
        }
        self.sink.submit_stream(&rec, slot)
    }
}

/// The status a trace records for a request whose app left before its
/// answer (nginx's "client closed request").
pub const CLIENT_CLOSED: u16 = 499;

/// The trace's error for a request whose handler panicked (answered 500).
pub const PANICKED: &str = "internal error: the request's handler panicked";

impl Drop for RequestCtx {
    fn drop(&mut self) {
        if self.logged {
            return;
        }
        // The app left before its whole answer came. Once a credential was
        // tried the provider may have made all of it (and bills it), and
        // how much is unknown: the reservation's estimate is charged, so
        // hanging up cannot make a request free.
        // Or a bug panicked while answering (the service answers 500): the
        // trace says so, and charges as for an app that left.
        let panicked = std::thread::panicking();
        if !self.trace.rec.provider_key.is_empty() {
            let output = self.trace.output_estimate;
            self.trace.charge_unreported(output, "estimated_abandoned");
        }
        let (status, error) = if panicked {
            // Counted where its 500 is answered (`service.rs`).
            (500, PANICKED)
        } else {
            crate::telemetry::metrics::request_error("client_closed");
            (CLIENT_CLOSED, "client closed the connection early")
        };
        self.trace.set_error(error);
        // Nobody waits for the ticket: the record is queued all the same.
        drop(self.file(status, None));
    }
}
