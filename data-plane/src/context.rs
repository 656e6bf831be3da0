//! The request's context: everything the pipeline learns about one
//! authenticated model call, owned by the pipeline while it runs and moved
//! into the streamed body when the answer streams. Whoever holds it last
//! runs the logging phase ([`RequestCtx::log`]), exactly once: a context
//! cannot be dropped unlogged without its budget reservation being
//! released and its trace lost, so every path ends in `log`.

use aigw_proto::model::ClientKey;

use crate::endpoints::AppCall;
use crate::error::GatewayError;
use crate::ratelimit::Held;
use crate::state::AppState;
use crate::trace_report::{TraceDraft, TraceSink, Written};

pub struct RequestCtx {
    /// The trace being filled in (usage, price, attempts, timings).
    pub trace: TraceDraft,
    /// The request's reservation in its budgets (the limits phase's), if
    /// any budget governs it.
    pub held: Option<Held>,
    sink: TraceSink,
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
    pub fn log(self, status: u16) -> Written {
        let Self { trace, held, sink } = self;
        let rec = trace.finish(status);
        if let Some(held) = held {
            held.settle(rec.input_tokens.saturating_add(rec.output_tokens), rec.cost);
        }
        sink.submit(&rec)
    }
}
