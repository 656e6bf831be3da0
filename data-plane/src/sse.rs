//! Incremental Server-Sent Events framing. Upstream bytes arrive split at
//! arbitrary offsets; this hands back whole events together with their exact
//! original bytes, so the gateway can pass them on untouched (or drop one)
//! while reading their `data` for usage.

use bytes::BytesMut;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event's bytes exactly as received, blank-line terminator included.
    /// Split off the parser's buffer (not frozen): events forwarded one
    /// after another join again without a copy (`BytesMut::unsplit`).
    pub raw: BytesMut,
    /// `event:` field, if any.
    pub event: Option<String>,
    /// All `data:` lines joined with `\n` (per the SSE spec).
    pub data: String,
}

/// The most bytes one event may take. Providers send events of a few
/// hundred bytes (a Gemini chunk with an inline image, a few MB); past this
/// the stream is ended with an error rather than buffered without bound.
pub const MAX_EVENT: usize = 16 * 1024 * 1024;

/// The least the parser's buffer grows by: two dozen events of a typical
/// chat stream, about what hyper's own read buffer holds; an open stream
/// keeps at most one partly used block beside it.
const BLOCK: usize = 8 * 1024;

#[derive(Debug, Default)]
pub struct SseParser {
    buf: BytesMut,
    /// Start of the line not yet known to be complete.
    line_start: usize,
    /// Where the search for the next line end resumes: a long line arriving
    /// in many reads is searched once, not again on every read.
    scan_from: usize,
    /// The event so far has a line that is not blank (leading blank lines
    /// are noise, not an empty event).
    has_line: bool,
    /// The last line ended at a `\r` that was the last byte read: a `\n`
    /// coming next completes that CRLF rather than making a blank line.
    after_cr: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: &[u8]) {
        // Room for many events at once: events split off one allocation in
        // order join again without a copy when forwarded (`Event::raw`);
        // growing by each read's size would give every event its own.
        if self.buf.capacity() - self.buf.len() < chunk.len() {
            self.buf.reserve(chunk.len().max(BLOCK));
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Option<Event> {
        let end = self.find_event_end()?;
        let raw = self.buf.split_to(end);
        self.line_start = 0;
        self.scan_from = 0;
        Some(parse_fields(raw))
    }

    /// Whether the event being read has outgrown [`MAX_EVENT`] (checked once
    /// the complete events are taken: what is left is one unfinished event).
    pub fn too_large(&self) -> bool {
        self.buf.len() > MAX_EVENT
    }

    /// Whatever is left when the stream ends (an event without its blank line).
    pub fn finish(&mut self) -> Option<Event> {
        let rest = std::mem::take(self);
        (!rest.buf.is_empty()).then(|| parse_fields(rest.buf))
    }

    /// Offset just past the blank line ending the first event. Line ends
    /// are `\n`, `\r\n` or `\r` (the SSE spec's three), taken as soon as
    /// they arrive: a `\r` ending the buffer ends its line now, and a `\n`
    /// that follows in the next read is folded into it. Jumps from line end
    /// to line end (`memchr`): events are a few hundred bytes of JSON on
    /// one line, and this runs on every upstream frame.
    fn find_event_end(&mut self) -> Option<usize> {
        let b = &self.buf[..];
        loop {
            if self.after_cr {
                if *b.get(self.line_start)? == b'\n' {
                    self.line_start += 1;
                    self.scan_from = self.line_start;
                }
                self.after_cr = false;
            }
            let Some(off) = memchr::memchr2(b'\n', b'\r', &b[self.scan_from..]) else {
                self.scan_from = b.len();
                return None;
            };
            let i = self.scan_from + off;
            let blank = i == self.line_start;
            let end = match (b[i], b.get(i + 1)) {
                (b'\r', Some(b'\n')) => i + 2,
                (b'\r', None) => {
                    self.after_cr = true;
                    i + 1
                }
                _ => i + 1,
            };
            self.line_start = end;
            self.scan_from = end;
            if !blank {
                self.has_line = true;
            } else if std::mem::take(&mut self.has_line) {
                return Some(end);
            }
        }
    }
}

/// The fields of one event's bytes. Lines end at `\n` or `\r` (a CRLF
/// leaves an empty line between, skipped like any blank line). A UTF-8 BOM
/// opening an event (the stream's first, where the SSE spec allows one) is
/// not part of its first field's name.
fn parse_fields(raw: BytesMut) -> Event {
    let mut event = None;
    let mut data: Option<String> = None;
    let mut rest: &[u8] = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&raw);
    while !rest.is_empty() {
        let line = match memchr::memchr2(b'\n', b'\r', rest) {
            Some(i) => {
                let line = &rest[..i];
                rest = &rest[i + 1..];
                line
            }
            None => std::mem::take(&mut rest),
        };
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(&text(value));
                }
                None => data = Some(text(value).into_owned()),
            },
            b"event" => event = Some(text(value).into_owned()),
            _ => {}
        }
    }
    Event {
        raw,
        event,
        data: data.unwrap_or_default(),
    }
}

/// A field's value as text; bytes that are not UTF-8 become U+FFFD, as the
/// SSE spec decodes them (the checked conversion first: it is the fast one).
fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], split_at: &[usize]) -> Vec<Event> {
        let mut p = SseParser::new();
        let mut out = vec![];
        let mut last = 0;
        for &s in split_at.iter().chain(std::iter::once(&input.len())) {
            p.push(&input[last..s]);
            last = s;
            while let Some(e) = p.next_event() {
                out.push(e);
            }
        }
        out.extend(p.finish());
        out
    }

    const STREAM: &[u8] = b": keep-alive\n\nevent: delta\ndata: {\"a\":1}\n\ndata: line1\r\ndata: line2\r\n\r\ndata: cr\r\rdata: [DONE]\n\n";

    fn check(events: &[Event]) {
        let datas: Vec<_> = events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(datas, ["", "{\"a\":1}", "line1\nline2", "cr", "[DONE]"]);
        assert_eq!(events[1].event.as_deref(), Some("delta"));
        let rejoined: Vec<u8> = events.iter().flat_map(|e| e.raw.to_vec()).collect();
        assert_eq!(rejoined, STREAM);
    }

    #[test]
    fn whole_stream() {
        check(&all(STREAM, &[]));
    }

    #[test]
    fn split_at_every_offset() {
        for i in 0..=STREAM.len() {
            check(&all(STREAM, &[i]));
        }
    }

    #[test]
    fn split_everywhere() {
        let cuts: Vec<usize> = (1..STREAM.len()).collect();
        check(&all(STREAM, &cuts));
    }

    /// Deterministic xorshift, so a failing case can be replayed by seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Property: for random streams (any line ending, comments, multi-line
    /// data, event names) cut at random offsets, the parser yields exactly
    /// the events written, and their raw bytes rebuild the input.
    #[test]
    fn random_streams_split_anywhere() {
        for seed in 1..=3000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut input = Vec::new();
            let mut expected = Vec::new();
            for _ in 0..1 + rng.below(6) {
                let eol: &[u8] = match rng.below(3) {
                    0 => b"\n",
                    1 => b"\r\n",
                    _ => b"\r",
                };
                if rng.below(4) == 0 {
                    input.extend_from_slice(b": comment");
                    input.extend_from_slice(eol);
                }
                let name = (rng.below(3) == 0).then(|| format!("ev{}", rng.below(100)));
                if let Some(n) = &name {
                    input.extend_from_slice(format!("event: {n}").as_bytes());
                    input.extend_from_slice(eol);
                }
                let lines: Vec<String> = (0..1 + rng.below(3))
                    .map(|i| format!("{{\"k\":{i},\"v\":\"x:y\"}}"))
                    .collect();
                for l in &lines {
                    input.extend_from_slice(b"data: ");
                    input.extend_from_slice(l.as_bytes());
                    input.extend_from_slice(eol);
                }
                input.extend_from_slice(eol);
                expected.push((name, lines.join("\n")));
            }
            let mut cuts: Vec<usize> = (0..rng.below(8))
                .map(|_| rng.below(input.len() as u64 + 1) as usize)
                .collect();
            cuts.sort();
            let got = all(&input, &cuts);
            let got_pairs: Vec<_> = got
                .iter()
                .filter(|e| !e.data.is_empty() || e.event.is_some())
                .map(|e| (e.event.clone(), e.data.clone()))
                .collect();
            assert_eq!(got_pairs, expected, "seed {seed}");
            let rejoined: Vec<u8> = got.iter().flat_map(|e| e.raw.to_vec()).collect();
            assert_eq!(rejoined, input, "seed {seed}");
        }
    }

    /// Bytes that are not UTF-8 are replaced in the fields, kept as they
    /// came in the raw event.
    #[test]
    fn invalid_utf8_is_replaced_in_fields_only() {
        let input = b"event: a\xffb\ndata: x\xfe\ndata: y\n\n";
        let ev = all(input, &[]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].event.as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(ev[0].data, "x\u{FFFD}\ny");
        assert_eq!(&ev[0].raw[..], &input[..]);
    }

    /// A `\r` ending the read ends its event at once (the event is not
    /// held until more bytes come); a `\n` arriving next joins the stream's
    /// bytes without making an event of its own.
    #[test]
    fn a_lone_cr_ends_the_event_without_waiting() {
        let mut p = SseParser::new();
        p.push(b"data: a\r\r");
        assert_eq!(p.next_event().map(|e| e.data), Some("a".into()));
        p.push(b"\ndata: b\r\n\r\n");
        let ev = p.next_event().unwrap();
        assert_eq!(ev.data, "b");
        assert_eq!(&ev.raw[..], b"\ndata: b\r\n\r\n");
        assert!(p.next_event().is_none());
        assert!(p.finish().is_none());
    }

    /// A CRLF cut between its two bytes inside an event is one line end,
    /// not a line end and a blank line.
    #[test]
    fn a_crlf_cut_in_two_does_not_end_the_event() {
        let mut p = SseParser::new();
        p.push(b"event: e\r");
        assert!(p.next_event().is_none());
        p.push(b"\ndata: x\r");
        assert!(p.next_event().is_none());
        p.push(b"\n\r\n");
        let ev = p.next_event().unwrap();
        assert_eq!((ev.event.as_deref(), ev.data.as_str()), (Some("e"), "x"));
    }

    /// A long line read in many small pieces is searched once: the search
    /// resumes where the last read's ended.
    #[test]
    fn a_long_line_is_not_searched_again_on_every_read() {
        let mut p = SseParser::new();
        p.push(b"data: ");
        for _ in 0..1000 {
            p.push(&[b'a'; 100]);
            assert!(p.next_event().is_none());
            assert_eq!(p.scan_from, p.buf.len());
            assert_eq!(p.line_start, 0);
        }
        p.push(b"\n\n");
        assert_eq!(p.next_event().unwrap().data.len(), 100_000);
    }

    #[test]
    fn an_event_past_the_bound_is_too_large() {
        let mut p = SseParser::new();
        p.push(b"data: x\n\ndata: ");
        p.push(&vec![b'a'; MAX_EVENT]);
        assert_eq!(p.next_event().unwrap().data, "x");
        assert!(p.next_event().is_none());
        assert!(p.too_large());
    }

    #[test]
    fn a_bom_opening_the_stream_is_not_part_of_the_field_name() {
        let ev = all(b"\xEF\xBB\xBFevent: e\ndata: x\n\n", &[]);
        assert_eq!(ev[0].event.as_deref(), Some("e"));
        assert_eq!(ev[0].data, "x");
    }

    #[test]
    fn unterminated_tail_is_returned_on_finish() {
        let ev = all(b"data: x\n\ndata: partial", &[]);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].data, "partial");
    }
}
