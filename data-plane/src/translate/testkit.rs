//! Helpers the codecs' tests share: run a stream decoder over SSE bytes cut
//! anywhere, and an encoder over IR events.

use bytes::BytesMut;

use super::{StreamDecoder, StreamEncoder, StreamEvent};
use crate::sse::SseParser;

/// Feeds `bytes` to an SSE parser in pieces cut at `cuts`, decoding each event.
pub fn decode_with(
    mut d: impl StreamDecoder,
    bytes: &[u8],
    cuts: impl IntoIterator<Item = usize>,
) -> Vec<StreamEvent> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cuts.into_iter().chain([bytes.len()]) {
        p.push(&bytes[last..c]);
        last = c;
        while let Some(e) = p.next_event() {
            d.event(&e, &mut out);
        }
    }
    if let Some(e) = p.finish() {
        d.event(&e, &mut out);
    }
    d.end(&mut out);
    out
}

/// The app's stream an encoder writes for `evs`, closing included.
pub fn encode_with(mut enc: impl StreamEncoder, evs: &[StreamEvent]) -> String {
    let mut out = BytesMut::new();
    for e in evs {
        enc.event(e, &mut out);
    }
    enc.end(&mut out);
    String::from_utf8(out.to_vec()).unwrap()
}
