//! Pool secrets an upstream echoes back, taken out of what the app gets.
//!
//! Upstreams put the key they were sent into their messages ("Incorrect API
//! key provided: sk-…"), in error answers and also mid-stream, in error
//! events, and some vendors answer `200` with an error object. The app must
//! never read a pool secret, so every byte from the upstream to the app
//! passes a [`Redactor`]: error answers one built from every secret of the
//! pool, answers and streams the one of the credential they were sent with
//! (built once per credential, when the snapshot is compiled, so the cost
//! on the request path is a search per frame).

use aigw_proto::json_text;
use bytes::Bytes;
use memchr::memmem::Finder;

/// What a secret becomes.
pub const REDACTED: &[u8] = b"[redacted]";

/// Shorter values are not searched for: they would match ordinary text,
/// and no provider issues keys that short.
const MIN_SECRET: usize = 8;

/// The forms of some secrets an upstream may echo: each as it is, and as a
/// JSON string writes it (`\"` and `\\` escaped, and `/` as `\/`, as
/// PHP's `json_encode` does), since the app's message is the decoded text.
/// Text with `\uXXXX` escapes (.NET's encoder writes `-` and `+` so, and
/// Python's `ensure_ascii` every non-ASCII character) is searched once more
/// decoded, for the secrets as they are.
#[derive(Default)]
pub struct Redactor {
    forms: Vec<Finder<'static>>,
    plain: Vec<Finder<'static>>,
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut forms: Vec<Finder<'static>> = Vec::new();
        let mut plain = Vec::new();
        for s in secrets.into_iter().filter(|s| s.len() >= MIN_SECRET) {
            plain.push(Finder::new(s.as_bytes()).into_owned());
            let json = serde_json::to_string(s).unwrap_or_default();
            let json = json.get(1..json.len().saturating_sub(1)).unwrap_or(s);
            let slashed = json.replace('/', "\\/");
            for form in [s, json, slashed.as_str()] {
                // Each distinct form once: most secrets have nothing to escape.
                if !forms.iter().any(|f| f.needle() == form.as_bytes()) {
                    forms.push(Finder::new(form.as_bytes()).into_owned());
                }
            }
        }
        Self { forms, plain }
    }

    /// `body` with every form of every secret replaced by [`REDACTED`];
    /// the same bytes, not copied, when none occurs.
    pub fn scrub(&self, body: Bytes) -> Bytes {
        let mut out: Option<Vec<u8>> = None;
        for f in &self.forms {
            let hay: &[u8] = out.as_deref().unwrap_or(&body);
            if f.find(hay).is_none() {
                continue;
            }
            let mut next = Vec::with_capacity(hay.len());
            let mut at = 0;
            for i in f.find_iter(hay) {
                next.extend_from_slice(&hay[at..i]);
                next.extend_from_slice(REDACTED);
                at = i + f.needle().len();
            }
            next.extend_from_slice(&hay[at..]);
            out = Some(next);
        }
        let hay: &[u8] = out.as_deref().unwrap_or(&body);
        let find = |text: &[u8], found: &mut Vec<_>| {
            for f in &self.plain {
                json_text::find_all(text, f.needle(), found);
            }
        };
        if let Some(next) = json_text::replace_escaped(hay, find, REDACTED) {
            out = Some(next);
        }
        out.map(Bytes::from).unwrap_or(body)
    }

    /// How many bytes at the end of `data` could be the start of a secret
    /// that the next chunk completes. A stream that is not made of whole
    /// events (raw bytes, Gemini's JSON array) holds them back until that
    /// chunk comes, so a secret cut by a read boundary is still found; an
    /// ordinary chunk ends in no secret's prefix and holds back nothing.
    pub fn unfinished_tail(&self, data: &[u8]) -> usize {
        let held = self
            .forms
            .iter()
            .map(|f| prefix_tail(f.needle(), data))
            .max()
            .unwrap_or(0);
        held.max(self.escaped_tail(data))
    }

    /// [`Self::unfinished_tail`] for the secrets as a JSON reader decodes
    /// them, where the end of `data` has `\uXXXX` escapes (a secret written
    /// so, cut by the read, would match neither half) or ends inside one.
    fn escaped_tail(&self, data: &[u8]) -> usize {
        let Some(longest) = self.plain.iter().map(|f| f.needle().len()).max() else {
            return 0;
        };
        // Six bytes an escaped character, at most, for these ASCII secrets.
        let from = data.len().saturating_sub(6 * longest);
        let window = &data[from..];
        // An escape the read cut in two is held from its backslash.
        let cut = window
            .iter()
            .rposition(|&b| b == b'\\')
            .filter(|&p| {
                let rest = &window[p + 1..];
                rest.is_empty() || (rest[0] == b'u' && rest.len() < 5)
            })
            .unwrap_or(window.len());
        let body = &window[..cut];
        if cut == window.len() && memchr::memmem::find(body, b"\\u").is_none() {
            return 0;
        }
        let text = json_text::unescape(body);
        let start = self
            .plain
            .iter()
            .map(|f| prefix_tail(f.needle(), &text))
            .max()
            .filter(|&n| n > 0)
            .map(|n| json_text::source_span(body, text.len() - n..text.len()).start);
        match start {
            Some(at) => window.len() - at,
            None => window.len() - cut,
        }
    }

    /// [`Self::scrub`] for a message.
    pub fn scrub_str(&self, text: &str) -> String {
        let out = self.scrub(Bytes::copy_from_slice(text.as_bytes()));
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// How many bytes at the end of `data` are a proper prefix of `needle`
/// (the longest such tail; 0 when none is).
fn prefix_tail(needle: &[u8], data: &[u8]) -> usize {
    let from = data.len().saturating_sub(needle.len().saturating_sub(1));
    let Some(&first) = needle.first() else {
        return 0;
    };
    // The earliest start is the longest tail this needle could need.
    memchr::memchr_iter(first, &data[from..])
        .find(|&i| needle.starts_with(&data[from + i..]))
        .map_or(0, |i| data.len() - from - i)
}

impl std::fmt::Debug for Redactor {
    /// The secrets never print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} forms)", self.forms.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_echoed_secrets() {
        let r = Redactor::new(["sk-secret-123456", "short"]);
        let b = Bytes::from_static(b"bad key sk-secret-123456 and sk-secret-123456; short stays");
        assert_eq!(
            r.scrub(b),
            Bytes::from_static(b"bad key [redacted] and [redacted]; short stays")
        );
    }

    #[test]
    fn scrubs_secrets_echoed_json_escaped() {
        let secret = "sk/ab\"cd\\ef-0123456789";
        let r = Redactor::new([secret]);
        let php = Bytes::from_static(br#"{"message":"bad key sk\/ab\"cd\\ef-0123456789"}"#);
        assert_eq!(
            r.scrub(php),
            Bytes::from_static(br#"{"message":"bad key [redacted]"}"#)
        );
        let plain = Bytes::from_static(br#"{"message":"bad key sk/ab\"cd\\ef-0123456789"}"#);
        assert_eq!(
            r.scrub(plain),
            Bytes::from_static(br#"{"message":"bad key [redacted]"}"#)
        );
        assert_eq!(
            r.scrub_str("key sk/ab\"cd\\ef-0123456789!"),
            "key [redacted]!"
        );
    }

    /// .NET writes `-` and `+` as `\u002d` and `\u002b`; the app's SDK
    /// decodes them, so the secret is found decoded and the escapes that
    /// wrote it are replaced, the rest of the body left as sent.
    #[test]
    fn scrubs_secrets_echoed_with_unicode_escapes() {
        let r = Redactor::new(["sk-pool-SECRETPOOLKEY-7f3a", "sk-sl/ash+Key=0123"]);
        let body = Bytes::from_static(
            br#"{"error":{"message":"Invalid key sk\u002dpool\u002dSECRETPOOLKEY\u002d7f3a \u00e9","k":"sk-sl\/ash\u002bKey=0123"}}"#,
        );
        assert_eq!(
            r.scrub(body),
            Bytes::from_static(
                br#"{"error":{"message":"Invalid key [redacted] \u00e9","k":"[redacted]"}}"#
            )
        );
        let escaped = Bytes::from_static(br#"{"text":"caf\u00e9 sk-pool"}"#);
        let ptr = escaped.as_ptr();
        assert_eq!(
            r.scrub(escaped).as_ptr(),
            ptr,
            "nothing found, nothing copied"
        );
    }

    /// A secret written with `\u` escapes and cut by a read is held back
    /// whole, however the read cut it: between two escapes, inside one,
    /// right after its backslash.
    #[test]
    fn holds_back_a_secret_written_with_unicode_escapes_cut_by_a_read() {
        let r = Redactor::new(["sk-pool-SECRETPOOLKEY-7f3a"]);
        let body: &[u8] = br#"{"message":"Invalid key sk\u002dpool\u002dSECRETPOOLKEY\u002d7f3a"}"#;
        let start = memchr::memmem::find(body, b"sk\\u").unwrap();
        for at in start + 1..body.len() - 3 {
            let (head, tail) = body.split_at(at);
            let held = r.unfinished_tail(head);
            assert!(held >= at - start, "cut at {at}: held {held}");
            let sent = r.scrub(Bytes::copy_from_slice(&head[..at - held]));
            let rest = [&head[at - held..], tail].concat();
            let got = [&sent[..], &r.scrub(Bytes::from(rest))[..]].concat();
            assert_eq!(
                got, br#"{"message":"Invalid key [redacted]"}"#,
                "cut at {at}"
            );
        }
        // Escaped text that is no secret's start holds nothing back.
        assert_eq!(r.unfinished_tail(br#"{"t":"caf\u00e9"}"#), 0);
    }

    #[test]
    fn holds_back_only_what_could_start_a_secret() {
        let r = Redactor::new(["AIzaSecretKey-0123456789"]);
        assert_eq!(r.unfinished_tail(b"{\"text\": \"hi\"}\n"), 0);
        assert_eq!(r.unfinished_tail(b"key=AIzaSec"), 7);
        assert_eq!(r.unfinished_tail(b"A"), 1);
        // A whole secret is not a tail: scrub takes it.
        assert_eq!(r.unfinished_tail(b"AIzaSecretKey-0123456789"), 0);
        assert_eq!(r.unfinished_tail(b""), 0);
    }

    #[test]
    fn bytes_without_a_secret_are_not_copied() {
        let r = Redactor::new(["sk-secret-123456"]);
        let b = Bytes::from(vec![b'x'; 100]);
        let ptr = b.as_ptr();
        assert_eq!(r.scrub(b).as_ptr(), ptr);
        assert!(format!("{r:?}").starts_with("Redactor("));
    }
}
