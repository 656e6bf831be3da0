//! Checks on what an app sends, made once before any routing or forwarding:
//! a body that passes through untouched must still be one a provider's JSON
//! parser accepts whole (UTF-8, bounded nesting), and the model name must be
//! one that cannot steer the upstream path.

use aigw_proto::model::names;

use crate::error::GatewayError;

/// Deepest nesting of objects and arrays accepted (serde_json's own limit,
/// which the translating path hits anyway).
pub const MAX_JSON_DEPTH: usize = 128;

/// The body is a JSON object, valid UTF-8 throughout, nested at most
/// `MAX_JSON_DEPTH` deep. Syntax is left to the parser that reads it next;
/// this pass only catches what that parser skips when it ignores a field
/// (serde_json neither checks UTF-8 nor counts depth in ignored values).
pub fn json_body(body: &[u8]) -> Result<(), GatewayError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => {
            return Err(GatewayError::invalid(
                "The request body is empty; send a JSON object.",
                None,
            ));
        }
        Some(_) => {
            return Err(GatewayError::BadJson(
                "the body must be a JSON object".into(),
            ));
        }
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Err(GatewayError::BadJson(format!(
            "the body is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        )));
    }
    if depth(body) > MAX_JSON_DEPTH {
        return Err(GatewayError::BadJson(format!(
            "the body is nested more than {MAX_JSON_DEPTH} levels deep"
        )));
    }
    Ok(())
}

/// Deepest nesting of `{`/`[` outside strings (one linear pass). Strings,
/// most of a chat body's bytes, are crossed with `memchr2` from quote or
/// backslash to the next: a byte-at-a-time loop checked a 64 KB body in
/// about 60 µs (docs/benchmarks.md, "Request body checks").
fn depth(body: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        i += 1;
        match b {
            b'"' => loop {
                let Some(off) = memchr::memchr2(b'"', b'\\', &body[i.min(body.len())..]) else {
                    // An unterminated string: nothing after it is nesting.
                    return max;
                };
                let at = i + off;
                // A backslash escapes the byte after it, whatever it is.
                i = at + if body[at] == b'\\' { 2 } else { 1 };
                if body[at] == b'"' {
                    break;
                }
            },
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The app's model name, refused (400, `param: model`) unless it is one
/// providers use; see `names::check_model_name`.
pub fn model(name: &str) -> Result<(), GatewayError> {
    names::check_model_name(name)
        .map_err(|e| GatewayError::invalid(format!("Invalid model: {e}."), Some("model")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-at-a-time pass `depth` replaced: the oracle it must agree with.
    fn depth_bytewise(body: &[u8]) -> usize {
        let (mut depth, mut max) = (0usize, 0usize);
        let mut in_str = false;
        let mut escaped = false;
        for &b in body {
            if in_str {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_str = false;
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    proptest::proptest! {
        /// Bodies made of the bytes that matter (quotes, backslashes,
        /// brackets) and filler, in any order, truncated anywhere.
        #[test]
        fn depth_agrees_with_the_bytewise_pass(
            body in proptest::collection::vec(
                proptest::sample::select(&b"\"\\{}[]a :,"[..]), 0..200)
        ) {
            proptest::prop_assert_eq!(depth(&body), depth_bytewise(&body));
        }
    }

    #[test]
    fn depth_counts_outside_strings_only() {
        assert_eq!(depth(br#"{"a":"x\\"},[["#), 2);
        assert_eq!(depth(br#"{"a":"x\"#), 1);
        assert_eq!(depth(br#"{"a":"x"#), 1);
        assert_eq!(depth(br#"{"a":[1,{"b":"[[[{{{"}]}"#), 3);
        assert_eq!(depth(br#"{"a":"\"[{"}"#), 1);
        assert_eq!(depth(b"{}"), 1);
    }

    #[test]
    fn bodies() {
        assert!(json_body(br#" {"model":"m"}"#).is_ok());
        assert!(json_body(b"  ").is_err());
        assert!(json_body(b"[1]").is_err());
        let mut bad = br#"{"model":"m","x":""#.to_vec();
        bad.extend_from_slice(&[0xff, 0xfe]);
        bad.extend_from_slice(br#""}"#);
        let e = json_body(&bad).unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let e = json_body(deep.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("nested"), "{e}");
        let ok = format!("{{\"a\":{}{}}}", "[".repeat(127), "]".repeat(127));
        assert!(json_body(ok.as_bytes()).is_ok());
    }

    #[test]
    fn models() {
        assert!(model("gpt-4o").is_ok());
        let e = model("x:batchGenerateContent#").unwrap_err();
        assert_eq!(e.status(), http::StatusCode::BAD_REQUEST);
    }
}
