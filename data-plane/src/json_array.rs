//! Incremental reader of a streamed JSON array, the framing Gemini uses for
//! `:streamGenerateContent` without `?alt=sse`: `[{…}\r\n,{…}\r\n,{…}]`,
//! split across reads at any byte. It hands back each top-level object as an
//! [`Event`] whose `data` is the object's JSON, so the SSE stream decoders
//! can read usage from it; the bytes themselves are forwarded untouched by
//! the caller.

use std::collections::VecDeque;

use bytes::BytesMut;

use crate::sse::Event;

/// An element larger than this is not metered (the bytes still pass).
const MAX_ELEMENT: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct JsonArrayParser {
    /// Bytes of the element being read (from its `{`), if one is open.
    buf: BytesMut,
    depth: usize,
    in_str: bool,
    escaped: bool,
    /// Too large or malformed: stop looking; everything still passes.
    gave_up: bool,
    /// Elements read, oldest first (a deque: one read may hold thousands).
    ready: VecDeque<Event>,
}

impl JsonArrayParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the stream could not be read (usage then stays unknown).
    pub fn gave_up(&self) -> bool {
        self.gave_up
    }

    pub fn push(&mut self, chunk: &[u8]) {
        if self.gave_up {
            return;
        }
        let mut start = (self.depth >= 2).then_some(0usize);
        for (i, &b) in chunk.iter().enumerate() {
            if self.in_str {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_str = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_str = true,
                b'[' | b'{' => {
                    self.depth += 1;
                    if self.depth == 2 {
                        start = Some(i);
                    }
                }
                b']' | b'}' => {
                    if self.depth == 0 {
                        self.gave_up = true;
                        return;
                    }
                    self.depth -= 1;
                    if self.depth == 1
                        && let Some(s) = start.take()
                    {
                        self.buf.extend_from_slice(&chunk[s..=i]);
                        let raw = self.buf.split();
                        self.ready.push_back(Event {
                            data: String::from_utf8_lossy(&raw).into_owned(),
                            raw,
                            event: None,
                        });
                    }
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            self.buf.extend_from_slice(&chunk[s..]);
            if self.buf.len() > MAX_ELEMENT {
                self.gave_up = true;
                self.buf = BytesMut::new();
            }
        }
    }

    /// The next complete element, if any.
    pub fn next_event(&mut self) -> Option<Event> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &mut JsonArrayParser) -> Vec<String> {
        std::iter::from_fn(|| p.next_event())
            .map(|e| e.data)
            .collect()
    }

    #[test]
    fn elements_split_anywhere_come_out_whole() {
        let stream = "[{\"a\":1,\"s\":\"}]{[\\\"\"}\r\n,{\"b\":{\"c\":[2]}}\r\n]";
        for cut in 0..stream.len() {
            let mut p = JsonArrayParser::new();
            p.push(&stream.as_bytes()[..cut]);
            let mut got = all(&mut p);
            p.push(&stream.as_bytes()[cut..]);
            got.extend(all(&mut p));
            assert_eq!(
                got,
                ["{\"a\":1,\"s\":\"}]{[\\\"\"}", "{\"b\":{\"c\":[2]}}"],
                "cut at {cut}"
            );
            assert!(!p.gave_up());
        }
    }

    #[test]
    fn junk_makes_it_give_up_quietly() {
        let mut p = JsonArrayParser::new();
        p.push(b"]]]");
        assert!(p.gave_up());
        assert!(p.next_event().is_none());
    }
}
