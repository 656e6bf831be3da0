//! What a request may use at most, reserved in its budgets before it is
//! forwarded (see `ratelimit`): the prompt at one token per two bytes of
//! the body (tokenizers make a token of at least one byte, and a JSON body
//! carries more than its text), plus the answer's cap as the app set it
//! (`max_tokens`, `max_completion_tokens`, `max_output_tokens`,
//! `generationConfig.maxOutputTokens`), else `default_max_output`.
//! The cost is that usage at the model's price.

use std::borrow::Cow;

use aigw_proto::model::Price;

use crate::endpoints::{AppCall, Op};
use crate::ratelimit::Demand;

/// The prompt's share of a reservation (also the input a request abandoned
/// before its usage arrived is charged for, when the provider reported none).
/// An inline image counts as [`IMAGE_TOKENS`], not by its bytes: providers
/// bill an image by its pixels (a few hundred to a few thousand tokens),
/// and a 4 MB photo counted as text would be charged a million tokens when
/// its stream is stopped, or refused outright under a daily budget.
pub fn prompt_tokens(body: &[u8]) -> u64 {
    scan(body).prompt
}

/// What the body says of the prompt it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prompt {
    /// Its tokens, as [`prompt_tokens`] counts them.
    pub prompt: u64,
    /// Input it refers to that the gateway cannot see or bound: a previous
    /// response or a conversation stored at the provider, a stored prompt,
    /// a file or cached content by id or URI. Each is reserved as
    /// `AIGW_UNSEEN_INPUT_TOKENS` (counted by its few bytes of reference, a
    /// 40,000-token history would be reserved as ten tokens, and parallel
    /// requests would overrun a budget by as many times).
    pub unseen: u64,
}

pub fn scan(body: &[u8]) -> Prompt {
    let s = strings(body);
    let text = (body.len() - s.image_bytes) as u64;
    Prompt {
        prompt: text
            .div_ceil(2)
            .saturating_add(s.images.saturating_mul(IMAGE_TOKENS)),
        unseen: s.unseen,
    }
}

/// The most tokens a provider bills one image in a prompt: OpenAI's largest
/// (about 2,500 for its patch-based models), Gemini's tiles of a large
/// image, Anthropic's 1,600, with room.
const IMAGE_TOKENS: u64 = 4_096;

/// Base64 strings shorter than this count as text: an image that small
/// costs fewer tokens counted by bytes than [`IMAGE_TOKENS`].
const MIN_IMAGE_BYTES: usize = 2 * IMAGE_TOKENS as usize;

/// How a base64 image starts, by format: PNG, JPEG, GIF, WebP. Recognised
/// by its content, not by the field it is in (every format names it
/// differently), and only images: a PDF's pages cost tokens by their text.
const IMAGE_MAGIC: [&[u8]; 4] = [b"iVBORw0KGgo", b"/9j/", b"R0lGOD", b"UklGR"];

/// What [`strings`] finds.
#[derive(Default)]
struct Strings {
    /// Bytes of inline images.
    image_bytes: usize,
    /// Images, inline or by URL.
    images: u64,
    /// References to input the gateway cannot see (see [`Prompt::unseen`]).
    unseen: u64,
}

/// The body's JSON strings that are images or references to unseen input.
///
/// Inline images: strings of at least [`MIN_IMAGE_BYTES`], all base64,
/// that begin like an image, where the formats put one: the value of a
/// `data` member (Anthropic's `source.data`, Gemini's `inlineData.data`)
/// bare, or of a `url` or `image_url` member (OpenAI's) as a
/// `data:image/…;base64,` URL. Text that merely starts like an image, in a
/// message's text, counts as text.
///
/// By reference, read by where they are (see [`Place`]): an `http(s)` URL
/// the provider fetches as an image (OpenAI's `image_url`, Anthropic's
/// image `source.url`) is one image whatever its size; input stored at the
/// provider or fetched as a document is unseen (see [`Prompt::unseen`]).
/// Tool arguments, metadata and citations may name URLs or ids too: they
/// are not input, and are not counted.
///
/// One pass, no parsing into values: the body is already known to be
/// valid JSON by then, or is refused anyway. Member names and short values
/// with escapes are decoded (`"previous\u005fresponse_id"` is the same
/// member to the provider).
fn strings(body: &[u8]) -> Strings {
    let mut found = Strings::default();
    let mut stack: Vec<Frame<'_>> = Vec::with_capacity(16);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            open @ (b'{' | b'[') => {
                let (under, excluded) = match stack.last() {
                    Some(f) if f.object => (f.key.clone(), f.excluded),
                    Some(f) => (Cow::Borrowed(&b""[..]), f.excluded),
                    None => (Cow::Borrowed(&b""[..]), false),
                };
                let excluded = excluded || not_input(&under, stack.len());
                stack.push(Frame {
                    object: open == b'{',
                    under,
                    key: Cow::Borrowed(b""),
                    kind: Cow::Borrowed(b""),
                    expect_key: open == b'{',
                    excluded,
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(f) = stack.last_mut()
                    && f.object
                {
                    f.expect_key = true;
                }
            }
            b'"' => {
                let start = i + 1;
                let Some(end) = string_end(body, start) else {
                    return found;
                };
                let raw = &body[start..end];
                i = end;
                match stack.last_mut() {
                    Some(f) if f.object && f.expect_key => {
                        f.key = unescaped(body, start, end, usize::MAX);
                        f.expect_key = false;
                    }
                    _ => found.value(raw, &mut stack, body, start, end),
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// An object or array the scan is inside.
struct Frame<'a> {
    object: bool,
    /// The member this container is the value of ("" in an array or at
    /// the top).
    under: Cow<'a, [u8]>,
    /// In an object: the member whose value comes next.
    key: Cow<'a, [u8]>,
    /// In an object: its `type`, if read yet.
    kind: Cow<'a, [u8]>,
    expect_key: bool,
    /// Inside what is not the prompt's input (see [`not_input`]).
    excluded: bool,
}

/// Members whose values are not input the provider reads in: a tool
/// call's arguments (Anthropic's `input` below the top, Gemini's `args`
/// and `response`), metadata, citations and annotations of answers
/// passed back, and tools' schemas.
fn not_input(member: &[u8], depth: usize) -> bool {
    match member {
        b"input" => depth > 1,
        b"args" | b"response" | b"metadata" | b"citations" | b"annotations" | b"parameters"
        | b"input_schema" | b"inputSchema" | b"properties" => true,
        _ => false,
    }
}

/// Where a string value is: which member holds it, what that member's
/// object is under, and how deep.
struct Place<'s> {
    member: &'s [u8],
    parent: &'s [u8],
    /// The `type` of the object around the value's object (an Anthropic
    /// block around its `source`).
    block: &'s [u8],
    depth: usize,
}

impl Strings {
    fn value<'a>(
        &mut self,
        raw: &[u8],
        stack: &mut [Frame<'a>],
        body: &'a [u8],
        start: usize,
        end: usize,
    ) {
        let depth = stack.len();
        let (member, excluded) = match stack.last() {
            Some(f) if f.object => (f.key.clone(), f.excluded),
            Some(f) => (Cow::Borrowed(&b""[..]), f.excluded),
            None => return,
        };
        if raw.len() >= MIN_IMAGE_BYTES && is_image(raw, &member) {
            self.image_bytes += raw.len();
            self.images += 1;
            return;
        }
        // Short values only are decoded: ids, URLs' starts, types.
        let s = unescaped(body, start, end, 512);
        if &*member == b"type"
            && let Some(f) = stack.last_mut()
        {
            f.kind = s.clone();
        }
        if excluded || s.is_empty() {
            return;
        }
        let n = stack.len();
        let place = Place {
            member: &member,
            parent: stack.last().map_or(&b""[..], |f| &f.under),
            block: n.checked_sub(2).map_or(&b""[..], |k| &stack[k].kind),
            depth,
        };
        match by_reference(&s, &place) {
            Some(Reference::Image) => self.images += 1,
            Some(Reference::Unseen) => self.unseen += 1,
            None => {}
        }
    }
}

enum Reference {
    Image,
    Unseen,
}

/// What the string `s`, at `place`, refers to, if it refers to input.
fn by_reference(s: &[u8], place: &Place<'_>) -> Option<Reference> {
    let top = place.depth == 1;
    match place.member {
        // Responses: the stored history and conversation this one continues.
        b"previous_response_id" | b"conversation" if top => Some(Reference::Unseen),
        // Gemini's cached contents.
        b"cachedContent" | b"cached_content" if top => Some(Reference::Unseen),
        // A stored prompt or conversation by object: `{"id": "pmpt_…"}`.
        b"id" if place.depth == 2 && matches!(place.parent, b"prompt" | b"conversation") => {
            Some(Reference::Unseen)
        }
        // Files uploaded to the provider, or fetched by it.
        b"file_id" | b"file_url" | b"fileUri" | b"file_uri" => Some(Reference::Unseen),
        // A stored Responses item pulled in by id.
        b"type" if s == b"item_reference" => Some(Reference::Unseen),
        // OpenAI's image by URL: `image_url: "…"` or `image_url: {url}`.
        b"image_url" if is_http(s) => Some(Reference::Image),
        b"url" if place.parent == b"image_url" && is_http(s) => Some(Reference::Image),
        // Anthropic's `source: {type: url}`: an image, or a document (a PDF
        // of any length).
        b"url" if place.parent == b"source" && is_http(s) => Some(if place.block == b"image" {
            Reference::Image
        } else {
            Reference::Unseen
        }),
        _ => None,
    }
}

/// An `http(s)` URL, as the provider reads it (any case, `\/` escaped).
fn is_http(s: &[u8]) -> bool {
    let head: Vec<u8> = s
        .iter()
        .filter(|c| **c != b'\\')
        .take(8)
        .map(u8::to_ascii_lowercase)
        .collect();
    head.starts_with(b"https://") || head.starts_with(b"http://")
}

/// Where the string opened before `start` ends: the next quote not escaped.
fn string_end(body: &[u8], start: usize) -> Option<usize> {
    let mut end = start;
    loop {
        match memchr::memchr2(b'"', b'\\', body.get(end..)?) {
            Some(k) if body[end + k] == b'\\' => end += k + 2,
            Some(k) => return Some(end + k),
            None => return None,
        }
    }
}

/// The string `body[start..end]` with its escapes decoded, when it has
/// some and is at most `max` bytes (else as written).
fn unescaped(body: &[u8], start: usize, end: usize, max: usize) -> Cow<'_, [u8]> {
    let raw = &body[start..end];
    if end - start > max || memchr::memchr(b'\\', raw).is_none() {
        return Cow::Borrowed(raw);
    }
    match serde_json::from_slice::<String>(&body[start - 1..=end]) {
        Ok(s) => Cow::Owned(s.into_bytes()),
        Err(_) => Cow::Borrowed(raw),
    }
}

/// Whether the string `s`, the value of `member`, is an inline image.
fn is_image(s: &[u8], member: &[u8]) -> bool {
    let data = match member {
        b"data" => s,
        b"url" | b"image_url" => match s.strip_prefix(b"data:image/") {
            Some(url) => match memchr::memmem::find(&url[..url.len().min(64)], b";base64,") {
                Some(at) => &url[at + 8..],
                None => return false,
            },
            None => return false,
        },
        _ => return false,
    };
    // JSON may escape base64's `/` as `\/`.
    let head: Vec<u8> = data
        .iter()
        .take(24)
        .filter(|c| **c != b'\\')
        .copied()
        .collect();
    // Base64 has no spaces, commas or periods; text has them all. (A
    // vectorized search: checking every byte's class was 1 GB/s, about
    // 0.8 ms for a 1 MB photo; `cargo bench --bench demand`.)
    IMAGE_MAGIC.iter().any(|m| head.starts_with(m))
        && memchr::memchr3(b' ', b',', b'.', data).is_none()
}

/// `input` is the body's [`prompt_tokens`] (scanned once per request, and
/// also kept for the abandoned-stream charge), plus what its unseen input
/// is reserved as; `output_cap` and `choices`
/// are what the app set (read with the routing fields, in `plan::Probe`,
/// so the body is parsed once): each of `choices` answers may reach the cap.
pub fn estimate(
    call: &AppCall,
    input: u64,
    output_cap: Option<u64>,
    choices: u64,
    price: Option<Price>,
    default_max_output: u64,
) -> Demand {
    let output = match call.op {
        Op::Embed | Op::CountTokens => 0,
        Op::Generate => output_cap
            .unwrap_or(default_max_output)
            .saturating_mul(choices.max(1)),
    };
    Demand {
        tokens: input.saturating_add(output),
        cost: price.map_or(0.0, |p| p.cost(input, 0, output)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::{Endpoint, classify};

    fn call(path: &str) -> AppCall {
        match classify(&http::Method::POST, path, None, &http::HeaderMap::new()) {
            Endpoint::Call(c) => c,
            other => panic!("{other:?}"),
        }
    }

    /// As the pipeline does it: the cap from the probe, then the estimate.
    fn est(path: &str, body: &[u8], price: Option<Price>) -> Demand {
        let c = call(path);
        let probe = crate::plan::Probe::parse(&c, body).expect("probe");
        let input = prompt_tokens(body);
        estimate(&c, input, probe.output_cap, probe.choices, price, 4096)
    }

    #[test]
    fn caps_from_every_format_bound_the_answer() {
        let price = Price {
            input: 1.0,
            output: 2.0,
            cached_input: 1.0,
        };
        let body = br#"{"model":"m","max_tokens":100,"messages":[]}"#;
        let d = est("/v1/messages", body, Some(price));
        let input = prompt_tokens(body);
        assert_eq!(d.tokens, input + 100);
        assert!((d.cost - (input as f64 + 200.0) / 1e6).abs() < 1e-12);
        let g = br#"{"contents":[],"generationConfig":{"maxOutputTokens":7}}"#;
        assert_eq!(
            est("/v1beta/models/g:generateContent", g, None).tokens,
            prompt_tokens(g) + 7
        );
        let r = br#"{"model":"m","max_output_tokens":9}"#;
        assert_eq!(est("/v1/responses", r, None).tokens, prompt_tokens(r) + 9);
        let none = br#"{"model":"m","messages":[]}"#;
        assert_eq!(
            est("/v1/chat/completions", none, None).tokens,
            prompt_tokens(none) + 4096
        );
        assert_eq!(
            est("/v1/embeddings", none, None).tokens,
            prompt_tokens(none)
        );
    }

    /// A photo is reserved (and charged, when its stream is stopped before
    /// the usage came) as an image, not as a million tokens of text; bytes
    /// that merely look like one, or a PDF, still count as text.
    #[test]
    fn inline_images_count_as_images_not_bytes() {
        let photo = format!("/9j/{}", "A".repeat(400_000));
        let text_len = |body: &str| body.len() - photo.len();
        for body in [
            format!(
                r#"{{"messages":[{{"role":"user","content":[{{"type":"image_url","image_url":{{"url":"data:image/jpeg;base64,{photo}"}}}}]}}]}}"#
            ),
            format!(
                r#"{{"messages":[{{"role":"user","content":[{{"type":"image","source":{{"type":"base64","media_type":"image/jpeg","data":"{photo}"}}}}]}}]}}"#
            ),
            format!(
                r#"{{"contents":[{{"parts":[{{"inlineData":{{"mimeType":"image/jpeg","data":"{photo}"}}}},{{"text":"what is \"this\"?"}}]}}]}}"#
            ),
        ] {
            let url_prefix = if body.contains("data:image") {
                "data:image/jpeg;base64,".len()
            } else {
                0
            };
            let text = (text_len(&body) - url_prefix) as u64;
            assert_eq!(
                prompt_tokens(body.as_bytes()),
                text.div_ceil(2) + IMAGE_TOKENS,
                "{}",
                &body[..80]
            );
        }
        // Not images: long text, a PDF, a small image (cheaper as bytes),
        // text that starts like an image, where text goes or with text in
        // it.
        for (member, s) in [
            ("data", "A".repeat(400_000)),
            ("data", format!("JVBERi0{}", "A".repeat(400_000))),
            ("data", format!("/9j/{}", "A".repeat(1_000))),
            ("content", photo.clone()),
            ("text", format!("data:image/jpeg;base64,{photo}")),
            ("data", format!("/9j/ {}", "A".repeat(400_000))),
        ] {
            let body = format!(r#"{{"messages":[{{"{member}": "{s}"}}]}}"#);
            assert_eq!(
                prompt_tokens(body.as_bytes()),
                (body.len() as u64).div_ceil(2),
                "{member}: {}",
                &s[..20]
            );
        }
        // Spaced as pretty-printers write it, and `/` escaped: still one.
        let escaped = photo.replace('/', "\\/");
        let body = format!(r#"{{"data" : "{escaped}"}}"#);
        let text = (body.len() - escaped.len()) as u64;
        assert_eq!(
            prompt_tokens(body.as_bytes()),
            text.div_ceil(2) + IMAGE_TOKENS
        );
        // An unterminated string ends the scan without a panic.
        assert_eq!(prompt_tokens(br#"{"a":"\"#), 4);
    }

    /// Images the provider fetches count as images; input stored at the
    /// provider and named by id counts as unseen, once per reference; the
    /// same words in a message's text or a tool's schema count as text.
    #[test]
    fn references_and_remote_images_are_found_where_the_formats_put_them() {
        let count = |body: &str| {
            let p = scan(body.as_bytes());
            (p.prompt - (body.len() as u64).div_ceil(2), p.unseen)
        };
        let chat_image = r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}"#;
        assert_eq!(count(chat_image), (IMAGE_TOKENS, 0));
        let responses_image = r#"{"input":[{"role":"user","content":[{"type":"input_image","image_url":"http://x/a.jpg"}]}]}"#;
        assert_eq!(count(responses_image), (IMAGE_TOKENS, 0));
        let anthropic_image = r#"{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x/b.png"}}]}]}"#;
        assert_eq!(count(anthropic_image), (IMAGE_TOKENS, 0));
        for (body, refs) in [
            (
                r#"{"model":"m","previous_response_id":"resp_1","input":"hi"}"#,
                1,
            ),
            (r#"{"model":"m","conversation":"conv_1","input":"hi"}"#, 1),
            (
                r#"{"model":"m","conversation":{"id":"conv_1"},"input":"hi"}"#,
                1,
            ),
            (r#"{"model":"m","prompt":{"id":"pmpt_1","version":"2"}}"#, 1),
            (
                r#"{"input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"},{"type":"input_file","file_url":"https://x/a.pdf"}]}]}"#,
                2,
            ),
            (
                r#"{"contents":[{"parts":[{"fileData":{"mimeType":"video/mp4","fileUri":"https://g/f/1"}}]}],"cachedContent":"cachedContents/c1"}"#,
                2,
            ),
            // Written with escapes, or in Gemini's snake_case: the same
            // members to the provider.
            (
                r#"{"model":"m","previous\u005fresponse_id":"resp_1","input":"hi"}"#,
                1,
            ),
            (r#"{"model":"m","conversation":{"\u0069d":"conv_1"}}"#, 1),
            (
                r#"{"contents":[{"parts":[{"file_data":{"mime_type":"application/pdf","file_uri":"https://g/f/2"}}]}],"cached_content":"cachedContents/c2"}"#,
                2,
            ),
            // A stored item pulled in by id, a PDF by URL.
            (
                r#"{"input":[{"type":"item_reference","id":"msg_1"},{"role":"user","content":"go on"}]}"#,
                1,
            ),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]}]}"#,
                1,
            ),
            // Text and schemas that merely name them.
            (
                r#"{"messages":[{"role":"user","content":"set previous_response_id to resp_1"}]}"#,
                0,
            ),
            (
                r#"{"tools":[{"name":"t","input_schema":{"properties":{"file_id":{"type":"string"}}}}],"messages":[{"role":"user","content":"file_id"}]}"#,
                0,
            ),
            (
                r#"{"messages":[{"role":"tool","tool_call_id":"call_1","content":"x"}]}"#,
                0,
            ),
            // Not input: metadata.
            (
                r#"{"metadata":{"conversation":"chat-42"},"messages":[]}"#,
                0,
            ),
        ] {
            assert_eq!(count(body).1, refs, "{body}");
        }
        // Images by URL however the URL is written; URLs that are not
        // input (a tool call's arguments, search results) are not images.
        for (body, images) in [
            (
                r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"HTTPS:\/\/x\/a.png"}}]}]}"#,
                1,
            ),
            (
                r#"{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"WebFetch","input":{"url":"https://x/page"}}]}]}"#,
                0,
            ),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"web_search_tool_result","content":[{"type":"web_search_result","url":"https://x/1"},{"type":"web_search_result","url":"https://x/2"}]}]}]}"#,
                0,
            ),
            (
                r#"{"contents":[{"parts":[{"functionCall":{"name":"fetch","args":{"url":"https://x","image_url":"https://y"}}}]}]}"#,
                0,
            ),
        ] {
            let found = strings(body.as_bytes());
            assert_eq!((found.images, found.unseen), (images, 0), "{body}");
        }
    }

    /// What a hostile app could use to be reserved less than it may use:
    /// two caps read in different orders by the budget and a translator, a
    /// cap written as a float or a string, several answers per request.
    #[test]
    fn the_reservation_bounds_what_the_upstream_may_produce() {
        let both = br#"{"model":"m","max_completion_tokens":1,"max_tokens":64000,"messages":[]}"#;
        let chat = "/v1/chat/completions";
        assert_eq!(est(chat, both, None).tokens, prompt_tokens(both) + 64000);
        let gemini = "/v1beta/models/g:generateContent";
        for g in [
            &br#"{"contents":[],"generationConfig":{"maxOutputTokens":64000.0}}"#[..],
            br#"{"contents":[],"generationConfig":{"maxOutputTokens":"64000"}}"#,
        ] {
            assert_eq!(est(gemini, g, None).tokens, prompt_tokens(g) + 64000);
        }
        let n = br#"{"model":"m","n":128,"max_tokens":300,"messages":[]}"#;
        assert_eq!(est(chat, n, None).tokens, prompt_tokens(n) + 128 * 300);
        let n_default = br#"{"model":"m","n":3,"messages":[]}"#;
        assert_eq!(
            est(chat, n_default, None).tokens,
            prompt_tokens(n_default) + 3 * 4096
        );
        let c = br#"{"contents":[],"generationConfig":{"maxOutputTokens":10,"candidateCount":4}}"#;
        assert_eq!(est(gemini, c, None).tokens, prompt_tokens(c) + 40);
        // Not counts: ignored (the provider refuses them).
        let junk = br#"{"model":"m","max_tokens":-5,"n":1.5,"messages":[]}"#;
        assert_eq!(est(chat, junk, None).tokens, prompt_tokens(junk) + 4096);
    }
}
