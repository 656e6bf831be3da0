//! What the text of a JSON document reads as once its string escapes are
//! decoded, for finding a secret an answer echoes escaped (`\u002d` for
//! `-`, as .NET's and Python's `ensure_ascii` encoders write characters):
//! the app, an SDK or an admin reads the decoded text, so that is where a
//! secret must not be. Both planes redact with this; matches are mapped
//! back to the bytes that wrote them, so the rest of the document is left
//! as it was sent.

use std::ops::Range;

/// `input` with every JSON escape decoded (`\uXXXX` and surrogate pairs to
/// UTF-8, a lone surrogate to U+FFFD); bytes that are not an escape,
/// including a backslash that starts none, are kept as they are.
pub fn unescape(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    let mut buf = [0u8; 4];
    while i < input.len() {
        let (used, n) = piece(input, i, &mut buf);
        out.extend_from_slice(&buf[..n]);
        i += used;
    }
    out
}

/// The bytes of `input` that wrote `decoded`, a range of [`unescape`]'s
/// output: whole escapes, so a match starting or ending inside one covers
/// all of it.
pub fn source_span(input: &[u8], decoded: Range<usize>) -> Range<usize> {
    let (mut i, mut at, mut start) = (0, 0, None);
    let mut buf = [0u8; 4];
    while i < input.len() {
        let (used, n) = piece(input, i, &mut buf);
        if start.is_none() && at + n > decoded.start {
            start = Some(i);
        }
        i += used;
        at += n;
        if at >= decoded.end {
            break;
        }
    }
    start.unwrap_or(i)..i
}

/// `input` with the source of every decoded range `find` reports replaced
/// by `with`; `None` when it reports none (or `input` has no `\u`: every
/// other escape is few enough forms to search for as they are written).
pub fn replace_escaped(
    input: &[u8],
    find: impl Fn(&[u8], &mut Vec<Range<usize>>),
    with: &[u8],
) -> Option<Vec<u8>> {
    memchr::memmem::find(input, b"\\u")?;
    let text = unescape(input);
    let mut found = Vec::new();
    find(&text, &mut found);
    if found.is_empty() {
        return None;
    }
    let mut spans: Vec<Range<usize>> = found.into_iter().map(|r| source_span(input, r)).collect();
    spans.sort_by_key(|r| r.start);
    let mut out = Vec::with_capacity(input.len());
    let mut at = 0;
    for r in spans {
        if r.end <= at {
            continue;
        }
        out.extend_from_slice(&input[at..r.start.max(at)]);
        out.extend_from_slice(with);
        at = r.end;
    }
    out.extend_from_slice(&input[at..]);
    Some(out)
}

/// Pushes the range of every occurrence of `needle` in `text` onto `found`:
/// the usual `find` of [`replace_escaped`].
pub fn find_all(text: &[u8], needle: &[u8], found: &mut Vec<Range<usize>>) {
    found.extend(memchr::memmem::find_iter(text, needle).map(|i| i..i + needle.len()));
}

/// One piece of `input` at `i`: how many bytes it takes, and the bytes it
/// stands for, written into `out`.
fn piece(input: &[u8], i: usize, out: &mut [u8; 4]) -> (usize, usize) {
    let b = input[i];
    out[0] = b;
    if b != b'\\' {
        return (1, 1);
    }
    let simple = match input.get(i + 1) {
        Some(b'"') => b'"',
        Some(b'\\') => b'\\',
        Some(b'/') => b'/',
        Some(b'b') => 0x08,
        Some(b'f') => 0x0c,
        Some(b'n') => b'\n',
        Some(b'r') => b'\r',
        Some(b't') => b'\t',
        Some(b'u') => return unicode(input, i, out),
        _ => return (1, 1),
    };
    out[0] = simple;
    (2, 1)
}

/// `\uXXXX` at `i`, with its low surrogate when it is a high one.
fn unicode(input: &[u8], i: usize, out: &mut [u8; 4]) -> (usize, usize) {
    let Some(hi) = hex4(input, i + 2) else {
        return (1, 1);
    };
    let (c, used) = if (0xD800..0xDC00).contains(&hi) {
        match (input.get(i + 6..i + 8), hex4(input, i + 8)) {
            (Some(b"\\u"), Some(lo)) if (0xDC00..0xE000).contains(&lo) => (
                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)),
                12,
            ),
            _ => (None, 6),
        }
    } else {
        (char::from_u32(hi), 6)
    };
    let n = c.unwrap_or('\u{FFFD}').encode_utf8(out).len();
    (used, n)
}

fn hex4(input: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(input.get(at..at + 4)?).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finder(needle: &'static [u8]) -> impl Fn(&[u8], &mut Vec<Range<usize>>) {
        move |text, found| find_all(text, needle, found)
    }

    #[test]
    fn escapes_decode_as_a_json_reader_reads_them() {
        let text = br#"a\u002db \"q\" \\ \/ \n \ud83d\ude00 \ud800x \u00e9 \q"#;
        let want = "a-b \"q\" \\ / \n \u{1F600} \u{FFFD}x é \\q";
        assert_eq!(String::from_utf8(unescape(text)).unwrap(), want);
        let back: String =
            serde_json::from_str(r#""a\u002db \"q\" \\ \/ \n \ud83d\ude00""#).unwrap();
        assert_eq!(back, "a-b \"q\" \\ / \n \u{1F600}");
    }

    #[test]
    fn a_secret_written_with_unicode_escapes_is_replaced_where_it_was_written() {
        let body =
            br#"{"error":{"message":"Invalid key sk\u002dpool\u002dSECRET used","n":"\u00e9"}}"#;
        let out = replace_escaped(body, finder(b"sk-pool-SECRET"), b"[redacted]").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"error":{"message":"Invalid key [redacted] used","n":"\u00e9"}}"#
        );
        // Every character escaped, and twice in one body.
        let all: String = "sk-pool-SECRET"
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let body = format!(r#"["{all}","x{all}y"]"#);
        let out = replace_escaped(body.as_bytes(), finder(b"sk-pool-SECRET"), b"[r]").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r#"["[r]","x[r]y"]"#);
    }

    #[test]
    fn nothing_is_copied_without_a_unicode_escape_or_a_match() {
        assert_eq!(
            replace_escaped(br#""sk-pool-SECRET""#, finder(b"sk-pool-SECRET"), b"x"),
            None
        );
        assert_eq!(
            replace_escaped(br#""caf\u00e9""#, finder(b"sk-pool-SECRET"), b"x"),
            None
        );
    }

    #[test]
    fn a_span_covers_the_whole_escapes_a_match_touches() {
        let input = br#"ab\u00e9cd"#;
        // "é" is two bytes decoded; a range ending inside it covers the escape.
        assert_eq!(source_span(input, 1..3), 1..8);
        assert_eq!(source_span(input, 4..6), 8..10);
    }
}
