//! Model listings built from what the snapshot routes, in each SDK's shape.

use aigw_proto::model::ClientKey;
use serde_json::{Value, json};

use crate::error::ApiFormat;
use crate::runtime::Runtime;

/// Routed model names the key may use, with the provider serving each.
/// Globs can't be listed, so only literal names appear: provider model
/// names, route names, model-map aliases and priced models a glob routes.
pub fn routed_models<'a>(rt: &'a Runtime, key: &ClientKey) -> Vec<(&'a str, &'a str)> {
    let snap = &rt.snapshot;
    let literal = |m: &&str| !m.contains(['*', '?']);
    let candidates = snap
        .providers
        .iter()
        .flat_map(|p| {
            p.models
                .iter()
                .map(|g| g.as_str())
                .chain(p.model_map.keys().map(String::as_str))
        })
        .chain(snap.routes.iter().map(|r| r.model.as_str()))
        .chain(snap.pricing.keys().map(String::as_str))
        .filter(literal);
    let mut out: Vec<(&str, &str)> = Vec::new();
    for m in candidates {
        if out.iter().any(|(n, _)| *n == m) || !key.allows(m) {
            continue;
        }
        if let Some(u) = rt.route(m) {
            out.push((m, u.provider.name.as_str()));
        }
    }
    out.sort();
    out
}

pub fn list(rt: &Runtime, key: &ClientKey, format: ApiFormat) -> String {
    let models = routed_models(rt, key);
    let v = match format {
        ApiFormat::OpenAi => json!({
            "object": "list",
            "data": models.iter().map(|(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner})).collect::<Vec<_>>(),
        }),
        ApiFormat::Anthropic => json!({
            "data": models.iter().map(|(id, _)| json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"})).collect::<Vec<_>>(),
            "has_more": false,
            "first_id": models.first().map(|(id, _)| *id),
            "last_id": models.last().map(|(id, _)| *id),
        }),
        ApiFormat::Gemini => json!({
            "models": models.iter().map(|(id, _)| gemini_model(id)).collect::<Vec<_>>(),
        }),
    };
    v.to_string()
}

/// One model in Gemini's `Model` shape.
pub fn gemini_model(id: &str) -> Value {
    json!({
        "name": format!("models/{id}"),
        "baseModelId": id,
        "version": "001",
        "displayName": id,
        "description": "",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens", "embedContent"],
    })
}
