//! Model listings built from what the snapshot routes, in each SDK's shape.

use aigw_proto::model::ClientKey;

use crate::runtime::Runtime;
use crate::translate::Format;

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
        if out.iter().any(|(n, _)| *n == m) || !may_use(rt, key, m) {
            continue;
        }
        if let Some(u) = rt.route(m) {
            out.push((m, u.provider.name.as_str()));
        }
    }
    out.sort();
    out
}

/// Whether a request for `model` would pass the key's allow-list: an alias
/// is checked as the model it is served as, as the request path does, so
/// a listing never offers a model the key is then refused.
fn may_use(rt: &Runtime, key: &ClientKey, model: &str) -> bool {
    key.allows(rt.snapshot.resolve(model).model)
}

/// The listing in the shape `format`'s SDKs read.
pub fn list(rt: &Runtime, key: &ClientKey, format: Format) -> String {
    format.codec().model_list(&routed_models(rt, key))
}

/// One model the key may use, in `format`'s shape; `None` when it may not
/// use it, or nothing routes it (the same models the listing names, and
/// globs too: `models.retrieve` of a routed dated name finds it).
pub fn one(rt: &Runtime, key: &ClientKey, format: Format, id: &str) -> Option<String> {
    if !may_use(rt, key, id) {
        return None;
    }
    let owner = rt.route(id)?.provider.name.as_str();
    Some(format.codec().model_entry(id, owner))
}
