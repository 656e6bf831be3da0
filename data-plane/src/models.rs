//! Model listings built from what the snapshot routes.

use aigw_proto::model::ClientKey;
use serde_json::json;

use crate::runtime::Runtime;

/// Routed model names the key may use. Globs can't be listed, so only
/// literal names appear, plus priced models a glob routes.
pub fn routed_models<'a>(rt: &'a Runtime, key: &ClientKey) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    let literal = rt.snapshot.providers.iter().flat_map(|p| {
        p.models
            .iter()
            .filter(|g| g.is_literal())
            .map(move |g| g.as_str())
    });
    let priced = rt
        .snapshot
        .pricing
        .keys()
        .map(String::as_str)
        .filter(|m| !m.contains(['*', '?']));
    for m in literal.chain(priced) {
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

pub fn openai_list(rt: &Runtime, key: &ClientKey) -> String {
    let data: Vec<_> = routed_models(rt, key)
        .into_iter()
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
        .collect();
    json!({"object": "list", "data": data}).to_string()
}
