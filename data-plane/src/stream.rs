//! The streamed response body: passes upstream SSE events to the app as they
//! arrive (whole events, never the whole stream), reads usage on the way, and
//! files the trace when the stream ends, breaks, or the app hangs up.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use hyper::body::Incoming;

use crate::providers::openai::{self, ChunkAction};
use crate::sse::SseParser;
use crate::trace_report::{TraceDraft, TraceSink};

pub struct MeteredStream {
    inner: Incoming,
    parser: SseParser,
    strip_usage_chunk: bool,
    trace: Option<(TraceDraft, TraceSink)>,
    status: u16,
    done: bool,
}

impl MeteredStream {
    pub fn new(
        inner: Incoming,
        strip_usage_chunk: bool,
        draft: TraceDraft,
        sink: TraceSink,
        status: u16,
    ) -> Self {
        Self {
            inner,
            parser: SseParser::new(),
            strip_usage_chunk,
            trace: Some((draft, sink)),
            status,
            done: false,
        }
    }

    /// Whole events ready to forward, joined into one frame.
    fn drain(&mut self) -> Bytes {
        let mut first: Option<Bytes> = None;
        let mut more: Option<BytesMut> = None;
        while let Some(ev) = self.parser.next_event() {
            let action = match &mut self.trace {
                Some((d, _)) => openai::scan_chunk(&ev, &mut d.usage, self.strip_usage_chunk),
                None => ChunkAction::Forward,
            };
            if action == ChunkAction::Drop {
                continue;
            }
            match (&first, &mut more) {
                (None, _) => first = Some(ev.raw),
                (Some(f), None) => {
                    let mut m = BytesMut::with_capacity(f.len() + ev.raw.len());
                    m.extend_from_slice(f);
                    m.extend_from_slice(&ev.raw);
                    more = Some(m);
                }
                (Some(_), Some(m)) => m.extend_from_slice(&ev.raw),
            }
        }
        match more {
            Some(m) => m.freeze(),
            None => first.unwrap_or_default(),
        }
    }

    fn file_trace(&mut self, error: Option<&str>) {
        if let Some((mut d, sink)) = self.trace.take() {
            if let Some(e) = error {
                d.set_error(e);
            }
            sink.submit(d.finish(self.status));
        }
    }
}

impl Body for MeteredStream {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if let Some((d, _)) = &mut this.trace {
                        d.first_byte();
                    }
                    this.parser.push(&data);
                    let out = this.drain();
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
                Some(Err(e)) => {
                    this.done = true;
                    this.file_trace(Some("upstream stream cut"));
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.done = true;
                    let tail = this.parser.finish();
                    let mut out = None;
                    if let Some(ev) = tail {
                        let keep = match &mut this.trace {
                            Some((d, _)) => {
                                openai::scan_chunk(&ev, &mut d.usage, this.strip_usage_chunk)
                            }
                            None => ChunkAction::Forward,
                        };
                        if keep == ChunkAction::Forward {
                            out = Some(ev.raw);
                        }
                    }
                    this.file_trace(None);
                    if let Some(b) = out {
                        return Poll::Ready(Some(Ok(Frame::data(b))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        // The app went away mid-stream: the answer was (partly) delivered, so
        // the trace is filed with what was counted.
        self.file_trace(Some("client closed the stream early"));
    }
}
