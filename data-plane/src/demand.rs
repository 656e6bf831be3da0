//! What a request may use at most, reserved in its budgets before it is
//! forwarded (see `ratelimit`): the prompt at one token per two bytes of
//! the body (tokenizers make a token of at least one byte, and a JSON body
//! carries more than its text), plus the answer's cap as the app set it
//! (`max_tokens`, `max_completion_tokens`, `max_output_tokens`,
//! `generationConfig.maxOutputTokens`), else `default_max_output`.
//! The cost is that usage at the model's price.

use aigw_proto::model::Price;
use serde::Deserialize;

use crate::endpoints::{AppCall, Op};
use crate::ratelimit::Demand;

#[derive(Deserialize, Default)]
struct Caps {
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    #[serde(rename = "generationConfig", alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
}

#[derive(Deserialize, Default)]
struct GenerationConfig {
    #[serde(rename = "maxOutputTokens", alias = "max_output_tokens")]
    max_output_tokens: Option<u64>,
}

/// The prompt's share of a reservation (also the input a request abandoned
/// before its usage arrived is charged for, when the provider reported none).
pub fn prompt_tokens(body: &[u8]) -> u64 {
    (body.len() as u64).div_ceil(2)
}

pub fn estimate(
    call: &AppCall,
    body: &[u8],
    price: Option<Price>,
    default_max_output: u64,
) -> Demand {
    let input = prompt_tokens(body);
    let output = match call.op {
        Op::Embed | Op::CountTokens => 0,
        Op::Generate => {
            let caps: Caps = serde_json::from_slice(body).unwrap_or_default();
            caps.max_completion_tokens
                .or(caps.max_tokens)
                .or(caps.max_output_tokens)
                .or(caps.generation_config.and_then(|g| g.max_output_tokens))
                .unwrap_or(default_max_output)
        }
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

    #[test]
    fn caps_from_every_format_bound_the_answer() {
        let price = Price {
            input: 1.0,
            output: 2.0,
            cached_input: 1.0,
        };
        let body = br#"{"model":"m","max_tokens":100,"messages":[]}"#;
        let d = estimate(&call("/v1/messages"), body, Some(price), 4096);
        let input = prompt_tokens(body);
        assert_eq!(d.tokens, input + 100);
        assert!((d.cost - (input as f64 + 200.0) / 1e6).abs() < 1e-12);
        let g = br#"{"contents":[],"generationConfig":{"maxOutputTokens":7}}"#;
        assert_eq!(
            estimate(&call("/v1beta/models/g:generateContent"), g, None, 4096).tokens,
            prompt_tokens(g) + 7
        );
        let r = br#"{"model":"m","max_output_tokens":9}"#;
        assert_eq!(
            estimate(&call("/v1/responses"), r, None, 4096).tokens,
            prompt_tokens(r) + 9
        );
        let none = br#"{"model":"m","messages":[]}"#;
        assert_eq!(
            estimate(&call("/v1/chat/completions"), none, None, 4096).tokens,
            prompt_tokens(none) + 4096
        );
        assert_eq!(
            estimate(&call("/v1/embeddings"), none, None, 4096).tokens,
            prompt_tokens(none)
        );
    }
}
