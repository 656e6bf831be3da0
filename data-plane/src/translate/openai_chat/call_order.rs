//! Parallel tool calls, one after another. OpenAI's chunks address each
//! call's argument deltas by `index`, so a vendor may interleave them (call
//! 0's arguments after call 1 started); every other format streams a call
//! whole before the next starts (Anthropic closes a call's block when the
//! next opens, Responses and Gemini finish its item). Translated, the calls
//! after the one being streamed wait until its arguments are a whole JSON
//! value, or the answer ends. A model that streams calls in turn, as OpenAI
//! does, waits for nothing.

use crate::translate::ir::StreamEvent;

/// Most bytes held back (arguments, and what each held event costs
/// besides): past it the held calls go out as they are (in order), and
/// later events pass as they come. Far beyond real calls; a bound on what
/// a misbehaving upstream can make us hold.
const MAX_HELD_BYTES: usize = 4 * 1024 * 1024;
/// What a held event costs beyond its arguments (a held call's argument
/// deltas are joined into one, so a call holds at most two events).
const EVENT_BYTES: usize = 64;

#[derive(Default)]
pub struct CallOrder {
    /// The call whose events pass now; later calls' events wait.
    live: usize,
    calls: Vec<Pending>,
    held_bytes: usize,
    /// Everything held went out (the answer ended, or too much was
    /// held): events pass as they come.
    released: bool,
}

#[derive(Default)]
struct Pending {
    held: Vec<StreamEvent>,
    json: JsonEnd,
}

impl CallOrder {
    /// One event of the call at IR `index` (its start or an argument
    /// delta; calls start in index order): passed on now if that call is
    /// the one streaming, else held.
    pub fn push(&mut self, index: usize, ev: StreamEvent, out: &mut Vec<StreamEvent>) {
        if index >= self.calls.len() {
            self.calls.resize_with(index + 1, Pending::default);
        }
        if let (StreamEvent::ToolCallDelta { arguments, .. }, Some(c)) =
            (&ev, self.calls.get_mut(index))
        {
            c.json.feed(arguments);
        }
        if self.released || index <= self.live {
            // (A late delta of a call already whole passes as it is: there
            // is nothing better to do with it.)
            out.push(ev);
            if !self.released {
                self.advance(out);
            }
            return;
        }
        let Some(c) = self.calls.get_mut(index) else {
            return;
        };
        match (ev, c.held.last_mut()) {
            (
                StreamEvent::ToolCallDelta { arguments, .. },
                Some(StreamEvent::ToolCallDelta { arguments: joined, .. }),
            ) => {
                self.held_bytes += arguments.len();
                joined.push_str(&arguments);
            }
            (ev, _) => {
                self.held_bytes += EVENT_BYTES
                    + match &ev {
                        StreamEvent::ToolCallDelta { arguments, .. } => arguments.len(),
                        _ => 0,
                    };
                c.held.push(ev);
            }
        }
        if self.held_bytes > MAX_HELD_BYTES {
            for c in &mut self.calls {
                out.append(&mut c.held);
            }
            self.released = true;
            self.held_bytes = 0;
        }
    }

    /// While the streaming call's arguments are whole, the next call's
    /// held events go out and it becomes the one streaming.
    fn advance(&mut self, out: &mut Vec<StreamEvent>) {
        while self.calls.get(self.live).is_some_and(|c| c.json.closed) {
            self.live += 1;
            if let Some(c) = self.calls.get_mut(self.live) {
                out.append(&mut c.held);
            }
        }
    }

    /// The answer ends: every held call's events in order, each call
    /// closed by `close(index, out)` (which may add the arguments a call
    /// never had) before the next starts; every call is closed, whether it
    /// was held or not. Later events pass as they come.
    pub fn flush(&mut self, mut close: impl FnMut(usize, &mut Vec<StreamEvent>), out: &mut Vec<StreamEvent>) {
        for (i, c) in self.calls.iter_mut().enumerate() {
            out.append(&mut c.held);
            close(i, out);
        }
        self.released = true;
        self.held_bytes = 0;
    }
}

/// Whether a JSON value written in pieces has ended: its outermost object
/// or array closed (strings and escapes crossed).
#[derive(Default)]
struct JsonEnd {
    depth: u32,
    in_string: bool,
    escaped: bool,
    closed: bool,
}

impl JsonEnd {
    fn feed(&mut self, s: &str) {
        for b in s.bytes() {
            if self.closed {
                return;
            }
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    self.closed = self.depth == 0;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(index: u32) -> StreamEvent {
        StreamEvent::ToolCallStart {
            index,
            id: format!("call_{index}"),
            name: "f".into(),
        }
    }

    fn args(index: u32, a: &str) -> StreamEvent {
        StreamEvent::ToolCallDelta {
            index,
            arguments: a.into(),
        }
    }

    #[test]
    fn the_next_call_waits_until_the_arguments_before_it_are_whole() {
        let mut o = CallOrder::default();
        let mut out = Vec::new();
        o.push(0, start(0), &mut out);
        o.push(0, args(0, r#"{"s":"}\"{"#), &mut out);
        o.push(1, start(1), &mut out);
        o.push(1, args(1, r#"{"y":2}"#), &mut out);
        assert_eq!(out, [start(0), args(0, r#"{"s":"}\"{"#)]);
        out.clear();
        o.push(0, args(0, r#"","n":[1]}"#), &mut out);
        assert_eq!(out, [args(0, r#"","n":[1]}"#), start(1), args(1, r#"{"y":2}"#)]);
        // Call 1 is whole too: call 2 passes at once.
        out.clear();
        o.push(2, start(2), &mut out);
        assert_eq!(out, [start(2)]);
    }

    #[test]
    fn the_end_closes_each_held_call_before_the_next() {
        let mut o = CallOrder::default();
        let mut out = Vec::new();
        o.push(0, start(0), &mut out);
        o.push(1, start(1), &mut out);
        o.push(1, args(1, "{}"), &mut out);
        o.flush(|i, out| out.push(args(i as u32, "<end>")), &mut out);
        assert_eq!(out, [start(0), args(0, "<end>"), start(1), args(1, "{}"), args(1, "<end>")]);
        // After the end, events pass as they come.
        out.clear();
        o.push(3, start(3), &mut out);
        assert_eq!(out, [start(3)]);
    }

    #[test]
    fn holding_is_bounded() {
        let mut o = CallOrder::default();
        let mut out = Vec::new();
        o.push(0, start(0), &mut out);
        o.push(1, start(1), &mut out);
        let big = "x".repeat(MAX_HELD_BYTES / 2);
        o.push(1, args(1, &big), &mut out);
        assert_eq!(out.len(), 1);
        o.push(1, args(1, &big), &mut out);
        // Held deltas were joined: the held call went out as one.
        assert_eq!(out.len(), 3, "the held call went out past the bound");
        assert_eq!(out[2], args(1, &big.repeat(2)));
        // Then events pass as they come, and the end still gives `{}` to
        // every call that had no arguments.
        o.push(2, start(2), &mut out);
        assert_eq!(out.len(), 4);
        out.clear();
        o.flush(|i, out| out.push(args(i as u32, "<end>")), &mut out);
        assert_eq!(out, [args(0, "<end>"), args(1, "<end>"), args(2, "<end>")]);
    }

    /// A flood of one-byte deltas for a held call is held as one delta,
    /// not an event each (memory of the arguments' size).
    #[test]
    fn many_small_deltas_of_a_held_call_are_one() {
        let mut o = CallOrder::default();
        let mut out = Vec::new();
        o.push(0, start(0), &mut out);
        o.push(1, start(1), &mut out);
        for _ in 0..100_000 {
            o.push(1, args(1, "1"), &mut out);
        }
        assert_eq!(o.calls[1].held.len(), 2);
        assert_eq!(o.held_bytes, 100_000 + 2 * EVENT_BYTES);
        o.push(0, args(0, "{}"), &mut out);
        assert_eq!(out.len(), 4);
    }
}
