//! Gemini's `batchEmbedContents` names its model twice: in the URL, which
//! the gateway routes, authorizes and prices by, and in each of its
//! `requests` (`"model": "models/…"`), which Gemini reads. An inner model
//! other than the URL's would be served unchecked (an allow-list or a
//! route passed by), so it is refused; and where a route serves the model
//! under another name (`model_map`), the inner names follow the URL's.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use crate::error::GatewayError;

/// The endpoint whose body names models.
pub const ENDPOINT: &str = "batchEmbedContents";

#[derive(Deserialize)]
struct Batch<'a> {
    #[serde(default, borrow)]
    requests: Vec<Inner<'a>>,
}

#[derive(Deserialize)]
struct Inner<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
}

fn bare(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

/// Refuses a batch with a request for another model than the URL's
/// (`url_model`, without `models/`).
pub fn check(body: &[u8], url_model: &str) -> Result<(), GatewayError> {
    let batch: Batch<'_> =
        serde_json::from_slice(body).map_err(|e| GatewayError::BadJson(e.to_string()))?;
    for (i, r) in batch.requests.iter().enumerate() {
        if let Some(m) = r.model.as_deref()
            && bare(m) != url_model
        {
            return Err(GatewayError::InvalidRequest {
                message: format!(
                    "`requests[{i}].model` is not the model in the URL (`{url_model}`): a batch embeds with the URL's model only"
                ),
                param: Some("requests.model"),
            });
        }
    }
    Ok(())
}

/// The batch with every request's model named `models/{to}`, the name its
/// route serves the URL's model under.
pub fn rename(body: &[u8], to: &str) -> Result<Bytes, GatewayError> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| GatewayError::BadJson(e.to_string()))?;
    if let Some(requests) = v.get_mut("requests").and_then(Value::as_array_mut) {
        for r in requests {
            if let Some(m) = r.get_mut("model") {
                *m = Value::String(format!("models/{to}"));
            }
        }
    }
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| GatewayError::BadJson(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: &str = r#"{"requests":[
        {"model":"models/text-embedding-004","content":{"parts":[{"text":"a"}]}},
        {"model":"text-embedding-004","content":{"parts":[{"text":"b"}]},"taskType":"RETRIEVAL_QUERY"},
        {"content":{"parts":[{"text":"c"}]}}
    ]}"#;

    #[test]
    fn only_the_urls_model_is_embedded() {
        assert!(check(BATCH.as_bytes(), "text-embedding-004").is_ok());
        let other = BATCH.replacen("models/text-embedding-004", "models/gemini-other", 1);
        let e = check(other.as_bytes(), "text-embedding-004").unwrap_err();
        assert!(
            matches!(&e, GatewayError::InvalidRequest { message, .. } if message.contains("requests[0].model")),
            "{e:?}"
        );
        assert!(matches!(
            check(br#"{"requests":{"model":"x"}}"#, "m"),
            Err(GatewayError::BadJson(_))
        ));
    }

    #[test]
    fn a_renamed_model_is_renamed_inside_too() {
        let out = rename(BATCH.as_bytes(), "embed-v2").unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let models: Vec<Option<&str>> = v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.get("model").and_then(Value::as_str))
            .collect();
        assert_eq!(
            models,
            [Some("models/embed-v2"), Some("models/embed-v2"), None]
        );
        assert_eq!(v["requests"][1]["taskType"], "RETRIEVAL_QUERY");
    }
}
