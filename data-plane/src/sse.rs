//! Incremental Server-Sent Events framing. Upstream bytes arrive split at
//! arbitrary offsets; this hands back whole events together with their exact
//! original bytes, so the gateway can pass them on untouched (or drop one)
//! while reading their `data` for usage.

use bytes::{Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event's bytes exactly as received, blank-line terminator included.
    pub raw: Bytes,
    /// `event:` field, if any.
    pub event: Option<String>,
    /// All `data:` lines joined with `\n` (per the SSE spec).
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseParser {
    buf: BytesMut,
    /// Bytes of `buf` already scanned without finding an event end.
    scanned: usize,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Option<Event> {
        let end = self.find_event_end()?;
        let raw = self.buf.split_to(end).freeze();
        self.scanned = 0;
        Some(parse_fields(raw))
    }

    /// Whatever is left when the stream ends (an event without its blank line).
    pub fn finish(&mut self) -> Option<Event> {
        if self.buf.is_empty() {
            return None;
        }
        let raw = self.buf.split().freeze();
        self.scanned = 0;
        let ev = parse_fields(raw);
        Some(ev)
    }

    /// Offset just past the blank line ending the first event. A trailing
    /// lone `\r` is not trusted yet: the `\n` of a CRLF may still be coming.
    /// Jumps from line end to line end (`memchr`): events are a few hundred
    /// bytes of JSON on one line, and this runs on every upstream frame.
    fn find_event_end(&mut self) -> Option<usize> {
        let b = &self.buf[..];
        // `scanned` is always the start of a line not yet known to be complete.
        let mut line_start = self.scanned;
        while let Some(off) = memchr::memchr2(b'\n', b'\r', &b[line_start..]) {
            let i = line_start + off;
            let term_len = match (b[i], b.get(i + 1)) {
                (b'\r', Some(b'\n')) => 2,
                (b'\r', None) => break,
                _ => 1,
            };
            // A blank line ends the event (a blank first line is noise).
            if i == line_start && line_start > 0 {
                return Some(i + term_len);
            }
            line_start = i + term_len;
        }
        self.scanned = line_start;
        None
    }
}

/// The fields of one event's bytes. Lines end at `\n` or `\r` (a CRLF
/// leaves an empty line between, skipped like any blank line).
fn parse_fields(raw: Bytes) -> Event {
    let mut event = None;
    let mut data: Option<String> = None;
    let mut rest: &[u8] = &raw;
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

    #[test]
    fn unterminated_tail_is_returned_on_finish() {
        let ev = all(b"data: x\n\ndata: partial", &[]);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].data, "partial");
    }
}
