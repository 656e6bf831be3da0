//! The streamed response body: passes upstream events to the app as they
//! arrive (whole events, never the whole stream), or translates them event by
//! event, reads usage on the way, and runs the request's logging phase when
//! the stream ends, breaks, or the app hangs up (it owns the request's
//! context from the moment the answer's head leaves).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};

use crate::context::RequestCtx;
use crate::json_array::JsonArrayParser;
use crate::providers::openai::{self, ChunkAction};
use crate::redact::Redactor;
use crate::sse::{Event, SseParser};
use crate::trace_report::Written;
use crate::translate::ir::ChatRequest;
use crate::translate::tool_names::ToolNames;
use crate::translate::{self, Codec, Format, Framing, StreamDecoder, StreamEncoder, StreamEvent};
use crate::upstream_client::UpstreamBody;

/// How upstream events become the app's.
pub enum Mode {
    /// OpenAI chat to an OpenAI app: forwarded as is, usage read on the way;
    /// the usage chunk the gateway asked for on the app's behalf is dropped.
    OpenAiChat { strip_usage_chunk: bool },
    /// Same format on both sides: forwarded as is; the decoder only reads usage.
    Observe(Box<dyn StreamDecoder>),
    /// Different formats: decoded into IR events, encoded for the app.
    Translate {
        decoder: Box<dyn StreamDecoder>,
        encoder: Box<dyn StreamEncoder>,
        /// Tool names sent fitted to the target: given back to the app.
        names: Option<ToolNames>,
    },
    /// Gemini's JSON-array streaming (no `?alt=sse`) to a Gemini app:
    /// bytes forwarded untouched, each array element read for usage.
    JsonArray {
        parser: JsonArrayParser,
        decoder: Box<dyn StreamDecoder>,
    },
    /// Neither SSE nor a JSON array (a vendor that answers a stream request
    /// with one JSON body): bytes forwarded untouched, counted, and the
    /// first [`MAX_KEPT_RAW`] bytes kept, so a whole JSON answer's own usage
    /// is read at the end.
    Raw { kept: Option<Vec<u8>> },
}

/// The most of a [`Mode::Raw`] body kept to read its usage from.
const MAX_KEPT_RAW: usize = 256 * 1024;

/// How a stream is metered, decided by the respond phase.
pub struct Metering {
    pub mode: Mode,
    /// Takes the pool's secret out of every frame for the app (an error
    /// event may quote it). Frames of SSE are whole events; raw bytes and
    /// JSON arrays carry a tail that may begin a secret to the next chunk.
    pub redactor: Arc<Redactor>,
    /// The app's format and framing: a passed-through stream the upstream
    /// cut short gets the app's own error event at its end.
    pub app: Format,
    pub framing: Framing,
    /// The upstream's format: it says which event closes its streams.
    pub upstream: &'static dyn Codec,
    /// The stream is given up when the upstream sends nothing this long.
    pub idle_timeout: Duration,
}

pub struct MeteredStream {
    inner: UpstreamBody,
    parser: SseParser,
    mode: Mode,
    redactor: Arc<Redactor>,
    app: Format,
    framing: Framing,
    upstream: &'static dyn Codec,
    events: Vec<StreamEvent>,
    /// The request's context until its logging phase has run.
    ctx: Option<RequestCtx>,
    /// The trace's ticket once filed: the frame that carries the closing
    /// event (or the end) waits in `held` until the record is written.
    written: Option<Written>,
    held: Option<Option<Result<Frame<Bytes>, BoxError>>>,
    status: u16,
    done: bool,
    /// An upstream error held back until the bytes before it are delivered.
    failed: Option<BoxError>,
    /// Fires when the upstream has sent nothing for `idle_timeout`.
    idle: Pin<Box<tokio::time::Sleep>>,
    idle_timeout: Duration,
    /// What was streamed, to charge a stream the app abandons before the
    /// provider reports usage: characters of text and tool arguments, and
    /// OpenAI chunks with content (about a token each).
    streamed_chars: u64,
    streamed_chunks: u64,
    /// Tool-call indices the stream has named (the formats' state keeps
    /// one entry per call, looked up per event: bounded, see
    /// [`MAX_TOOL_CALLS`]).
    tool_calls: Vec<u32>,
    /// Upstream bytes of a translated stream (whose encoder may keep the
    /// text and arguments until the end: bounded, see [`MAX_TRANSLATED`]).
    translated_bytes: usize,
    /// The stream outgrew a bound: it ends with this error.
    overrun: Option<&'static str>,
    /// The upstream sent an error event (Anthropic's `event: error`, an
    /// `error` chunk): its answer broke off, even if the connection then
    /// closes cleanly, and its last usage report is not the final one.
    upstream_error: bool,
    /// The decoder saw the upstream's finish (a translated stream that ends
    /// without one was cut short, and its app is told so).
    finished: bool,
    /// Upstream events forwarded as they came.
    forwarded: u64,
    /// The end of the last chunk of a stream that is not whole events, held
    /// back because a secret may start there (see
    /// [`Redactor::unfinished_tail`]).
    carry: Option<Bytes>,
    /// What this stream's trace is if the process is killed before it
    /// ends (freed once it is filed).
    in_flight: Option<crate::trace_report::Slot>,
    /// The app went away, and the rest is read for its usage (see
    /// [`AppStream`]): however it ends, the trace says the app left.
    abandoned: bool,
}

/// The most tool calls one streamed answer may hold (models make a handful
/// in parallel; a stream naming more is broken or hostile).
const MAX_TOOL_CALLS: usize = 256;

/// The most upstream bytes a translated stream may carry (a 128k-token
/// answer in per-token OpenAI chunks is about 25 MB).
const MAX_TRANSLATED: usize = 64 * 1024 * 1024;

/// The trace's error when a stream outgrows [`MAX_TOOL_CALLS`] or
/// [`MAX_TRANSLATED`].
const STREAM_TOO_LARGE: &str = "upstream stream too large";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Marks an OpenAI chunk that carries content (searched once per event;
/// a prebuilt finder, not `str::contains`'s per-call setup).
static DELTA: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new("\"delta\""));

/// The trace's error when the upstream's stream carried an error event.
const UPSTREAM_ERROR_EVENT: &str = "upstream sent an error mid-stream";
/// A stream still open when the data plane's shutdown drain ran out.
const SHUT_DOWN: &str = "data plane shut down before the stream ended";
/// A stream that ended without the upstream's finish.
const ENDED_EARLY: &str = "upstream stream ended before its finish";
/// What the app reads then.
const ENDED_EARLY_MESSAGE: &str = "the upstream stream ended before the answer was complete";
/// What the app reads when the upstream's connection broke mid-stream.
const CUT_MESSAGE: &str = "the upstream connection broke before the answer was complete";

/// The trace's error when the app left before the stream's end.
const CLIENT_CLOSED: &str = "client closed the stream early";

/// The trace's error when one upstream event outgrows [`crate::sse::MAX_EVENT`].
const EVENT_TOO_LARGE: &str = "upstream event too large";

#[derive(Debug, thiserror::Error)]
#[error("the upstream sent nothing for {0} s")]
struct Stalled(u64);

impl MeteredStream {
    pub fn new(inner: UpstreamBody, metering: Metering, ctx: RequestCtx, status: u16) -> Self {
        let Metering {
            mode,
            redactor,
            app,
            framing,
            upstream,
            idle_timeout,
        } = metering;
        let in_flight = ctx.keep_in_flight(status);
        Self {
            inner,
            parser: SseParser::new(),
            mode,
            redactor,
            app,
            framing,
            upstream,
            events: Vec::new(),
            ctx: Some(ctx),
            written: None,
            held: None,
            status,
            done: false,
            failed: None,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            streamed_chars: 0,
            streamed_chunks: 0,
            tool_calls: Vec::new(),
            translated_bytes: 0,
            overrun: None,
            upstream_error: false,
            finished: false,
            forwarded: 0,
            carry: None,
            in_flight,
            abandoned: false,
        }
    }

    /// Handles one upstream event; appends what the app gets to `out`.
    fn on_event(&mut self, ev: Event, out: &mut Output) {
        let forward = match &mut self.mode {
            Mode::OpenAiChat { strip_usage_chunk } => {
                if let Some(c) = &mut self.ctx {
                    c.trace.observe_answer(ev.data.as_bytes());
                }
                let mut scratch = Default::default();
                let u = self
                    .ctx
                    .as_mut()
                    .map_or(&mut scratch, |c| &mut c.trace.usage);
                if DELTA.find(ev.data.as_bytes()).is_some() {
                    self.streamed_chunks += 1;
                }
                if openai::finishes_choice(&ev.data) {
                    self.finished = true;
                }
                if ev.data.trim_start().starts_with("{\"error\"") {
                    self.upstream_error = true;
                }
                openai::scan_chunk(&ev, u, *strip_usage_chunk) == ChunkAction::Forward
            }
            Mode::Observe(decoder) => {
                decoder.event(&ev, &mut self.events);
                true
            }
            Mode::Translate { decoder, .. } => {
                decoder.event(&ev, &mut self.events);
                false
            }
            Mode::JsonArray { .. } | Mode::Raw { .. } => true,
        };
        self.use_events(out);
        if forward {
            // The app's SDK may stop reading at the closing event, so the
            // request is logged (budgets charged, trace handed to the
            // spool) before that event leaves.
            if self.upstream.is_closing(&ev) {
                self.finished = true;
                self.file_trace(End::Clean);
            }
            self.forwarded += 1;
            out.push_event(ev.raw);
        }
    }

    /// The upstream stopped short (cut, stalled, too large): what the
    /// decoder still holds (calls a translation held back to keep them in
    /// turn) goes to the app before the error, and counts toward the
    /// estimate of what was generated.
    fn drain_decoder(&mut self, out: &mut Output) {
        if let Mode::Observe(decoder)
        | Mode::Translate { decoder, .. }
        | Mode::JsonArray { decoder, .. } = &mut self.mode
        {
            decoder.end(&mut self.events);
        }
        self.use_events(out);
    }

    /// The upstream ended cleanly: flush what the formats still owe.
    fn on_end(&mut self, out: &mut Output) {
        if let Some(ev) = self.parser.finish() {
            self.on_event(ev, out);
        }
        self.drain_decoder(out);
        if let Mode::Translate { encoder, .. } = &mut self.mode {
            encoder.end(out.buf());
        }
        // A stream passed through that the upstream ended before its
        // finish: the app's SDK would take the truncated answer for a
        // whole one, so it ends with the app's error event, as a
        // translated stream does.
        if self.passed_through() && !self.finished && !self.upstream_error {
            self.app_error_event(ENDED_EARLY_MESSAGE, out);
        }
    }

    /// Ends the app's stream with its own format's error event (an SDK
    /// raises it as the API error it is; a connection torn down instead
    /// reads as a network failure, which some clients, Gemini CLI among
    /// them, do not survive). `false` where the stream has no events of
    /// the app's format to add one to (raw bytes, Gemini's JSON array
    /// passed through): the caller then ends it with an error.
    ///
    /// After the answer's closing event, or the upstream's own error event,
    /// the app has been told how the answer ends: nothing more is added
    /// (a second error would replace the upstream's, an error after the
    /// close would fail a whole answer), and the body ends cleanly.
    fn app_error_event(&mut self, message: &str, out: &mut Output) -> bool {
        if matches!(self.mode, Mode::JsonArray { .. } | Mode::Raw { .. }) {
            return false;
        }
        if self.upstream_error || self.finished {
            if let Mode::Translate { encoder, .. } = &mut self.mode {
                encoder.end(out.buf());
            }
            return true;
        }
        let message = message.to_string();
        match &mut self.mode {
            Mode::Translate { encoder, .. } => {
                encoder.event(&StreamEvent::Error { message }, out.buf());
                encoder.end(out.buf());
            }
            Mode::OpenAiChat { .. } | Mode::Observe(_) if self.app == Format::Responses => {
                // Numbered after the upstream's events (one each, from 0).
                translate::responses::error_event(self.forwarded, &message, out.buf());
            }
            Mode::OpenAiChat { .. } | Mode::Observe(_) => {
                let req = ChatRequest::default();
                let mut encoder = self.app.codec().stream_encoder(&req, self.framing);
                encoder.event(&StreamEvent::Error { message }, out.buf());
            }
            Mode::JsonArray { .. } | Mode::Raw { .. } => return false,
        }
        true
    }

    /// Events forwarded as the upstream sent them.
    fn passed_through(&self) -> bool {
        matches!(self.mode, Mode::OpenAiChat { .. } | Mode::Observe(_))
    }

    /// Takes the usage from the IR events just decoded (the last report wins:
    /// decoders already turn cumulative or split reports into totals) and,
    /// when translating, writes the events for the app.
    fn use_events(&mut self, out: &mut Output) {
        if self.events.is_empty() {
            return;
        }
        for e in &self.events {
            match e {
                StreamEvent::Usage(u) => {
                    if let Some(c) = &mut self.ctx {
                        c.trace.usage = *u;
                    }
                }
                StreamEvent::Start { model, .. } => {
                    if let Some(c) = &mut self.ctx
                        && c.trace.response_model.is_empty()
                    {
                        c.trace.response_model.clone_from(model);
                    }
                }
                StreamEvent::TextDelta(t) | StreamEvent::RefusalDelta(t) => {
                    self.streamed_chars += t.len() as u64
                }
                StreamEvent::ToolCallDelta { arguments, index } => {
                    self.streamed_chars += arguments.len() as u64;
                    if !self.tool_calls.contains(index) {
                        self.tool_calls.push(*index);
                    }
                }
                StreamEvent::ToolCallStart { index, .. } if !self.tool_calls.contains(index) => {
                    self.tool_calls.push(*index);
                }
                StreamEvent::Error { .. } => self.upstream_error = true,
                StreamEvent::Finish(_) => self.finished = true,
                _ => {}
            }
            if self.tool_calls.len() > MAX_TOOL_CALLS {
                // Not one more event to the encoder: the stream ends here.
                self.overrun = Some(STREAM_TOO_LARGE);
                self.events.clear();
                return;
            }
        }
        match &mut self.mode {
            Mode::Translate { encoder, names, .. } => {
                let buf = out.buf();
                for mut e in self.events.drain(..) {
                    if let Some(names) = names {
                        names.restore_event(&mut e);
                    }
                    encoder.event(&e, buf);
                }
            }
            _ => self.events.clear(),
        }
    }

    /// The logging phase, once: whichever of end, break or drop comes
    /// first. What the provider reported is kept; what it had not reported
    /// is estimated from what was streamed, as the trace says (a stream cut
    /// just before OpenAI's closing usage chunk is not free).
    fn file_trace(&mut self, end: End) {
        let Some(mut ctx) = self.ctx.take() else {
            return;
        };
        let streamed = self.streamed_chars.div_ceil(4).max(self.streamed_chunks);
        let end = match end {
            // Read on after the app left: however the rest went, the app
            // left first.
            End::Broken(_) if self.abandoned => End::Abandoned,
            End::Clean if self.upstream_error => End::Broken(UPSTREAM_ERROR_EVENT),
            End::Clean
                if !self.finished
                    && (self.passed_through() || matches!(self.mode, Mode::Translate { .. })) =>
            {
                End::Broken(ENDED_EARLY)
            }
            other => other,
        };
        let left = self.abandoned.then_some(CLIENT_CLOSED);
        let error = match end {
            End::Clean => {
                // One whole JSON answer reports its own usage.
                if let Mode::Raw { kept: Some(body) } = &self.mode
                    && let Some(u) = self.upstream.usage(body)
                {
                    ctx.trace.usage = u;
                }
                ctx.trace.charge_if_unreported(streamed);
                left
            }
            End::Broken(why) => {
                ctx.trace.charge_unreported(streamed, "estimated_broken");
                Some(why)
            }
            End::Abandoned => {
                ctx.trace.charge_unreported(streamed, "estimated_abandoned");
                Some(CLIENT_CLOSED)
            }
        };
        if let Some(e) = error {
            ctx.trace.set_error(e);
            crate::telemetry::metrics::request_error(crate::telemetry::metrics::stream_error_kind(
                e,
            ));
        }
        self.written = Some(ctx.log_stream(self.status, self.in_flight.take()));
    }
}

/// How a stream ended, for its logging phase.
enum End {
    /// The closing event, or the upstream's end.
    Clean,
    /// The upstream cut, stalled or overran it (the trace's error).
    Broken(&'static str),
    /// The app went away mid-stream.
    Abandoned,
}

/// Bytes for the app from one upstream frame, without copying when a single
/// frame passes through untouched, or when the events passing through are
/// the parser's buffer in order (each split off it, joined again in place).
#[derive(Default)]
struct Output {
    first: Option<Bytes>,
    more: Option<BytesMut>,
}

impl Output {
    /// An upstream event forwarded as it came.
    fn push_event(&mut self, raw: BytesMut) {
        if raw.is_empty() {
            return;
        }
        match (&self.first, &mut self.more) {
            (None, None) => self.more = Some(raw),
            // O(1) when `raw` follows `m` in the parser's buffer, else a copy.
            (None, Some(m)) => m.unsplit(raw),
            (Some(_), _) => self.buf().extend_from_slice(&raw),
        }
    }

    fn push(&mut self, b: Bytes) {
        if b.is_empty() {
            return;
        }
        match (&self.first, &mut self.more) {
            (None, None) => self.first = Some(b),
            (_, Some(m)) => m.extend_from_slice(&b),
            (Some(_), None) => {
                let mut m = BytesMut::new();
                if let Some(f) = self.first.take() {
                    m.extend_from_slice(&f);
                }
                m.extend_from_slice(&b);
                self.more = Some(m);
            }
        }
    }

    fn buf(&mut self) -> &mut BytesMut {
        let first = self.first.take();
        let m = self.more.get_or_insert_with(BytesMut::new);
        if let Some(f) = first {
            m.extend_from_slice(&f);
        }
        m
    }

    fn len(&self) -> usize {
        self.first.as_ref().map_or(0, Bytes::len) + self.more.as_ref().map_or(0, BytesMut::len)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn into_bytes(self) -> Bytes {
        match (self.first, self.more) {
            (_, Some(m)) => m.freeze(),
            (Some(f), None) => f,
            (None, None) => Bytes::new(),
        }
    }
}

/// Most bytes gathered into one frame for the app.
const MAX_FRAME: usize = 64 * 1024;

impl Body for MeteredStream {
    type Data = Bytes;
    type Error = BoxError;

    /// The next frame for the app; once the trace is filed, that frame
    /// leaves only when the record is written.
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.held.is_none() {
            match this.next_frame(cx) {
                Poll::Ready(f) => this.held = Some(f),
                Poll::Pending => return Poll::Pending,
            }
        }
        std::task::ready!(this.poll_written(cx));
        Poll::Ready(this.held.take().unwrap_or(None))
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.failed.is_none() && self.held.is_none()
    }
}

impl MeteredStream {
    /// Takes what the upstream has already sent before the answer's head
    /// leaves (never waiting for more), so the head and the first events
    /// go out in one write; when that was the whole answer, waits for its
    /// trace as the frame would have. One write, and one wake-up of the
    /// app, less per streamed answer.
    pub async fn prime(&mut self) {
        std::future::poll_fn(|cx| self.poll_prime(cx)).await;
    }

    fn poll_prime(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.held.is_none() {
            match self.next_frame(cx) {
                Poll::Ready(f) => self.held = Some(f),
                Poll::Pending => return Poll::Ready(()),
            }
        }
        self.poll_written(cx)
    }

    /// Ready once the filed trace (if any) is written.
    fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(w) = &mut self.written {
            std::task::ready!(Pin::new(w).poll(cx));
            self.written = None;
        }
        Poll::Ready(())
    }

    /// Takes every upstream frame that is ready now (never waiting for more)
    /// and makes one frame for the app: a burst of events that arrived in
    /// one read leaves in one write (the upstream connection is driven by
    /// this body, see `upstream_client`).
    fn next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self;
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            let mut out = Output::default();
            loop {
                match Pin::new(&mut this.inner).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        let Ok(data) = frame.into_data() else {
                            continue;
                        };
                        let len = data.len();
                        let deadline = tokio::time::Instant::now() + this.idle_timeout;
                        this.idle.as_mut().reset(deadline);
                        if let Some(c) = &mut this.ctx {
                            c.trace.first_byte();
                        }
                        if let Mode::JsonArray { parser, decoder } = &mut this.mode {
                            parser.push(&data);
                            while let Some(ev) = parser.next_event() {
                                decoder.event(&ev, &mut this.events);
                            }
                            if parser.gave_up() {
                                // Past what it could parse (from this chunk on,
                                // the events before it in the chunk counted
                                // twice rather than the rest not at all):
                                // counted by bytes.
                                this.streamed_chars += len as u64;
                            }
                            this.use_events(&mut out);
                            out.push(data);
                        } else if let Mode::Raw { kept } = &mut this.mode {
                            // Not events (a vendor that answered a stream request
                            // with one JSON body, or plain text): counted by its
                            // bytes, as an answer without usage is, not as free.
                            this.streamed_chars += len as u64;
                            match kept {
                                Some(k) if k.len() + len <= MAX_KEPT_RAW => {
                                    k.extend_from_slice(&data)
                                }
                                _ => *kept = None,
                            }
                            out.push(data);
                        } else {
                            this.parser.push(&data);
                            while this.overrun.is_none()
                                && let Some(ev) = this.parser.next_event()
                            {
                                this.on_event(ev, &mut out);
                            }
                            if this.parser.too_large() {
                                this.overrun = Some(EVENT_TOO_LARGE);
                            }
                        }
                        if matches!(this.mode, Mode::Translate { .. }) {
                            this.translated_bytes += len;
                            if this.translated_bytes > MAX_TRANSLATED {
                                this.overrun = Some(STREAM_TOO_LARGE);
                            }
                        }
                        if let Some(why) = this.overrun {
                            // Going on would let one upstream take the node's
                            // memory or a core: deliver what came before, then
                            // end the stream with an error.
                            this.done = true;
                            this.drain_decoder(&mut out);
                            this.file_trace(End::Broken(why));
                            if !this.app_error_event(why, &mut out) {
                                this.failed = Some(why.into());
                            }
                            break;
                        }
                        if out.len() >= MAX_FRAME {
                            break;
                        }
                    }
                    Poll::Ready(Some(Err(e))) => {
                        this.done = true;
                        this.drain_decoder(&mut out);
                        this.file_trace(End::Broken("upstream stream cut"));
                        // Deliver what arrived before the cut, then the error:
                        // the app's error event where its framing has one.
                        if this.app_error_event(CUT_MESSAGE, &mut out) {
                            break;
                        }
                        if out.is_empty() {
                            return Poll::Ready(Some(Err(e.into())));
                        }
                        this.failed = Some(e.into());
                        break;
                    }
                    Poll::Ready(None) => {
                        this.done = true;
                        this.on_end(&mut out);
                        this.file_trace(End::Clean);
                        break;
                    }
                    Poll::Pending => {
                        if !out.is_empty() {
                            break;
                        }
                        if this.idle.as_mut().poll(cx).is_ready() {
                            this.done = true;
                            this.drain_decoder(&mut out);
                            this.file_trace(End::Broken("upstream stream stalled"));
                            let stalled = Stalled(this.idle_timeout.as_secs());
                            if this.app_error_event(&stalled.to_string(), &mut out) {
                                break;
                            }
                            return Poll::Ready(Some(Err(stalled.into())));
                        }
                        return Poll::Pending;
                    }
                }
            }
            let out = this.scrub(out);
            if out.is_empty() {
                if !this.done {
                    // All of it held back as a possible secret's start: read on.
                    continue;
                }
                return Poll::Ready(this.failed.take().map(Err));
            }
            if let (Some(slot), Some(c)) = (&this.in_flight, &this.ctx) {
                slot.progress(this.streamed_chars, this.streamed_chunks, &c.trace.usage);
            }
            return Poll::Ready(Some(Ok(Frame::data(out))));
        }
    }

    /// `out` without the pool's secret. SSE frames are whole events; other
    /// streams carry over a tail that may start a secret to the next chunk
    /// (until the stream is done). A stream the upstream cuts or stalls
    /// ends with its error, and the tail held then is not delivered: it may
    /// be the first bytes of a secret.
    fn scrub(&mut self, out: Output) -> Bytes {
        if !matches!(self.mode, Mode::JsonArray { .. } | Mode::Raw { .. }) {
            return self.redactor.scrub(out.into_bytes());
        }
        let out = match self.carry.take() {
            Some(carry) => {
                let mut joined = BytesMut::from(carry);
                joined.extend_from_slice(&out.into_bytes());
                joined.freeze()
            }
            None => out.into_bytes(),
        };
        let mut out = self.redactor.scrub(out);
        if !self.done {
            let held = self.redactor.unfinished_tail(&out);
            if held > 0 {
                self.carry = Some(out.split_off(out.len() - held));
            }
        }
        out
    }
}

/// How long the rest of an abandoned stream is read for its usage, once
/// the answer's finish has come: only the usage report is left (OpenAI
/// sends it in a chunk after the finish, Anthropic in `message_delta`,
/// Responses in `response.completed`), and nothing more is generated.
const USAGE_WAIT_AFTER_FINISH: Duration = Duration::from_secs(5);

/// How long it is read when the app left mid-answer: the provider keeps
/// generating meanwhile (at a cost), so only briefly, to catch an app that
/// leaves just before the end. Past it, the connection closes and what was
/// not reported is estimated.
const USAGE_WAIT_MID_ANSWER: Duration = Duration::from_secs(1);

/// The streamed body the app reads. When the app hangs up before the end,
/// the upstream is read on in the background for a moment, for the usage
/// the provider reports last: otherwise an app could leave right after the
/// answer's last text, before the usage chunk, and be charged an estimate
/// that cannot see hidden reasoning (thousands of tokens billed by the
/// provider, a few dozen charged to the key and its budgets).
pub struct AppStream(Option<Box<MeteredStream>>);

impl AppStream {
    pub fn new(stream: MeteredStream) -> Self {
        Self(Some(Box::new(stream)))
    }

    /// See [`MeteredStream::prime`].
    pub async fn prime(&mut self) {
        if let Some(s) = &mut self.0 {
            s.prime().await;
        }
    }
}

impl Body for AppStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.0 {
            Some(s) => Pin::new(&mut **s).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(|s| s.is_end_stream())
    }
}

impl Drop for AppStream {
    fn drop(&mut self) {
        let Some(mut s) = self.0.take() else {
            return;
        };
        let wait = if s.ctx.is_none() || s.done || std::thread::panicking() {
            None
        } else if s.finished {
            Some(USAGE_WAIT_AFTER_FINISH)
        } else {
            Some(USAGE_WAIT_MID_ANSWER)
        };
        let stopping = crate::listener::FORCED_CLOSE.load(std::sync::atomic::Ordering::Relaxed);
        match (wait, tokio::runtime::Handle::try_current()) {
            (Some(wait), Ok(rt)) if !stopping => match ReadingOn::enter() {
                Some(slot) => {
                    s.abandoned = true;
                    rt.spawn(read_for_usage(s, wait, slot));
                }
                None => drop(s),
            },
            // Filed now, by the stream's own drop.
            _ => drop(s),
        }
    }
}

/// The most abandoned streams read on at once, per node: each holds an
/// upstream connection and its budget reservation for up to
/// [`USAGE_WAIT_AFTER_FINISH`], so an app that opens and drops streams in
/// a loop cannot make the node hold unboundedly many. Past it, a dropped
/// stream is filed at once with an estimate, as before reading on existed.
const MAX_READING_ON: usize = 1024;

static READING_ON: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One of the [`MAX_READING_ON`] places, given back when dropped.
struct ReadingOn;

impl ReadingOn {
    fn enter() -> Option<Self> {
        use std::sync::atomic::Ordering::Relaxed;
        READING_ON
            .fetch_update(Relaxed, Relaxed, |n| (n < MAX_READING_ON).then_some(n + 1))
            .ok()
            .map(|_| Self)
    }
}

impl Drop for ReadingOn {
    fn drop(&mut self) {
        READING_ON.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Reads an abandoned stream on, for at most `wait`, until its trace is
/// filed (the closing event, the end, a break); then drops it, which files
/// it as abandoned if it was not.
async fn read_for_usage(mut s: Box<MeteredStream>, wait: Duration, _slot: ReadingOn) {
    let read = async {
        while s.ctx.is_some() {
            match std::future::poll_fn(|cx| s.next_frame(cx)).await {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    };
    let _ = tokio::time::timeout(wait, read).await;
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        // The app went away mid-stream: the answer was (partly) delivered,
        // and the provider billed what it generated until the connection
        // closed. Or a bug panicked while the stream was read (the app got
        // a 500 if no head had left, else a cut connection).
        if std::thread::panicking() {
            self.file_trace(End::Broken(crate::context::PANICKED));
        } else if self.abandoned {
            // Read on for its usage until now: the app left first.
            self.file_trace(End::Abandoned);
        } else if crate::listener::FORCED_CLOSE.load(std::sync::atomic::Ordering::Relaxed) {
            self.file_trace(End::Broken(SHUT_DOWN));
        } else {
            self.file_trace(End::Abandoned);
        }
    }
}

#[cfg(test)]
mod output_tests {
    use super::Output;
    use crate::sse::SseParser;

    fn events(input: &[u8]) -> Vec<crate::sse::Event> {
        let mut p = SseParser::new();
        p.push(input);
        std::iter::from_fn(|| p.next_event()).collect()
    }

    /// Events forwarded in order leave as the bytes that came, in the
    /// parser's own buffer (no copy); one left out (a usage chunk the app
    /// did not ask for) leaves the others whole and in order.
    #[test]
    fn forwarded_events_join_in_place() {
        let input = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
        let evs = events(input);
        let start = evs[0].raw.as_ptr();
        let mut out = Output::default();
        for ev in evs {
            out.push_event(ev.raw);
        }
        let joined = out.into_bytes();
        assert_eq!(&joined[..], &input[..]);
        assert_eq!(joined.as_ptr(), start, "joined where the parser read them");

        let mut evs = events(input);
        evs.remove(1);
        let mut out = Output::default();
        out.push(bytes::Bytes::from_static(b": hi\n\n"));
        for ev in evs {
            out.push_event(ev.raw);
        }
        assert_eq!(
            &out.into_bytes()[..],
            b": hi\n\ndata: {\"a\":1}\n\ndata: [DONE]\n\n"
        );
    }
}
