//! What applying a file would change, object by object and field by field,
//! against the live configuration (the admin UI's diff). Secrets are never
//! shown: a secret or client key in the file is compared with the stored
//! one by its hint (the same first and last characters), which is all the
//! control plane keeps readable.

use std::collections::{BTreeMap, HashSet};

use aigw_proto::model::Strategy;
use aigw_proto::pb::admin::ConfigChange;

use crate::export::{Live, key_limits, limits_doc};
use crate::file::{ApplyFile, LimitsDoc};
use crate::rules::Rules;

fn change(kind: &str, name: &str, action: &str, details: Vec<String>) -> ConfigChange {
    ConfigChange {
        kind: kind.into(),
        name: name.into(),
        action: action.into(),
        details,
    }
}

/// Records "field: old -> new" when they differ.
fn diff<T: PartialEq + std::fmt::Debug>(out: &mut Vec<String>, field: &str, old: &T, new: &T) {
    if old != new {
        out.push(format!("{field}: {old:?} -> {new:?}"));
    }
}

/// An optional price as the file writes it ("unset" when it is not).
fn price_text(p: Option<f64>) -> String {
    p.map_or_else(|| "unset".to_string(), |v| v.to_string())
}

fn strategy(s: &str) -> String {
    s.parse::<Strategy>()
        .map_or_else(|()| s.to_string(), |st| st.as_str().to_string())
}

/// Limits written in a file, in the form the listings give them back.
fn limits_of(l: Option<&LimitsDoc>) -> Option<LimitsDoc> {
    l.map(LimitsDoc::to_spec).as_ref().and_then(limits_doc)
}

fn limits_text(l: &Option<LimitsDoc>) -> String {
    l.as_ref()
        .and_then(|l| serde_json::to_string(l).ok())
        .unwrap_or_else(|| "none".into())
}

/// The changes applying `doc` (with `prune`) would make to `live`, in the
/// order apply makes them: OAuth templates, providers, prices, client keys,
/// routes, teams and budgets, then deletions. Secrets are compared by the
/// hints `rules` make of them.
pub fn plan(doc: &ApplyFile, live: &Live, prune: bool, rules: &impl Rules) -> Vec<ConfigChange> {
    let mut out = Vec::new();
    for t in &doc.oauth_templates {
        let Some(old) = live
            .oauth_templates
            .iter()
            .find(|o| o.name == t.name && (!o.builtin || o.overrides_builtin))
        else {
            out.push(change(
                "oauth_template",
                &t.name,
                "create",
                vec![format!("token_url: {}", t.token_url)],
            ));
            continue;
        };
        let mut d = Vec::new();
        diff(&mut d, "description", &old.description, &t.description);
        diff(
            &mut d,
            "authorize_url",
            &old.authorize_url,
            &t.authorize_url,
        );
        diff(&mut d, "token_url", &old.token_url, &t.token_url);
        diff(
            &mut d,
            "device_authorization_url",
            &old.device_authorization_url,
            &t.device_authorization_url,
        );
        diff(&mut d, "client_id", &old.client_id, &t.client_id);
        diff(&mut d, "scopes", &old.scopes, &t.scopes);
        diff(&mut d, "redirect_uri", &old.redirect_uri, &t.redirect_uri);
        let old_params: BTreeMap<_, _> = old.authorize_params.clone().into_iter().collect();
        diff(&mut d, "authorize_params", &old_params, &t.authorize_params);
        diff(&mut d, "token_format", &old.token_format, &t.token_format);
        let old_headers: BTreeMap<_, _> = old.request_headers.clone().into_iter().collect();
        diff(&mut d, "request_headers", &old_headers, &t.request_headers);
        diff(&mut d, "api_base_url", &old.api_base_url, &t.api_base_url);
        diff(
            &mut d,
            "provider_kind",
            &old.provider_kind,
            &t.provider_kind,
        );
        diff(&mut d, "notes", &old.notes, &t.notes);
        if t.client_secret.as_deref().is_some_and(|s| !s.is_empty()) {
            d.push("client_secret: set from the file".into());
        }
        let action = if d.is_empty() { "unchanged" } else { "update" };
        out.push(change("oauth_template", &t.name, action, d));
    }
    for p in &doc.providers {
        let Some(old) = live.providers.iter().find(|o| o.name == p.name) else {
            let keys: Vec<&str> = p.keys.iter().map(|k| k.name.as_str()).collect();
            out.push(change(
                "provider",
                &p.name,
                "create",
                vec![
                    format!("kind: {}", p.kind),
                    format!("models: {:?}", p.models),
                    format!("keys: {keys:?}"),
                ],
            ));
            continue;
        };
        let mut d = Vec::new();
        diff(&mut d, "kind", &old.kind, &p.kind);
        diff(
            &mut d,
            "base_url",
            &old.base_url,
            &p.base_url.trim().to_string(),
        );
        diff(&mut d, "models", &old.models, &p.models);
        diff(&mut d, "strategy", &old.strategy, &strategy(&p.strategy));
        let old_map: BTreeMap<_, _> = old.model_map.clone().into_iter().collect();
        diff(&mut d, "model_map", &old_map, &p.model_map);
        let interval = p
            .health_check
            .as_ref()
            .map_or(rules.default_health_interval_secs(), |h| h.interval_secs.0);
        diff(
            &mut d,
            "health_check.interval_secs",
            &old.health_check_interval_secs,
            &interval,
        );
        diff(&mut d, "affinity", &old.affinity, &p.affinity);
        let old_keys: Vec<&str> = old.keys.iter().map(|k| k.name.as_str()).collect();
        let new_keys: Vec<&str> = p.keys.iter().map(|k| k.name.as_str()).collect();
        diff(&mut d, "keys", &old_keys, &new_keys);
        for k in &p.keys {
            let Some(ok) = old.keys.iter().find(|o| o.name == k.name) else {
                continue;
            };
            diff(
                &mut d,
                &format!("key {} weight", k.name),
                &ok.weight,
                &k.weight.0.max(1),
            );
            let secret = k.secret.trim();
            if !secret.is_empty() && rules.secret_hint(secret) != ok.secret_hint {
                d.push(format!("key {} secret: changes", k.name));
            }
        }
        let action = if d.is_empty() { "unchanged" } else { "update" };
        out.push(change("provider", &p.name, action, d));
    }
    for p in &doc.pricing {
        let new = (p.input.0, p.output.0, p.cached_input.map(|c| c.0));
        match live.pricing.iter().find(|o| o.model == p.model) {
            None => out.push(change(
                "price",
                &p.model,
                "create",
                vec![format!(
                    "input {} output {} cached_input {}",
                    new.0,
                    new.1,
                    price_text(new.2)
                )],
            )),
            Some(o) => {
                let mut d = Vec::new();
                diff(&mut d, "input", &o.input, &new.0);
                diff(&mut d, "output", &o.output, &new.1);
                if o.cached_input != new.2 {
                    d.push(format!(
                        "cached_input: {} -> {}",
                        price_text(o.cached_input),
                        price_text(new.2)
                    ));
                }
                let action = if d.is_empty() { "unchanged" } else { "update" };
                out.push(change("price", &p.model, action, d));
            }
        }
    }
    for k in &doc.client_keys {
        let limits = limits_of(k.limits.as_ref());
        let expires = k.expires_at.map_or(0, |e| e.0);
        match live.client_keys.iter().find(|o| o.name == k.name) {
            None => {
                let key = if k.key.as_deref().is_some_and(|s| !s.is_empty()) {
                    "key: from the file"
                } else {
                    "key: generated, shown once"
                };
                out.push(change("client_key", &k.name, "create", vec![key.into()]));
            }
            Some(o) => {
                let mut d = Vec::new();
                if o.revoked {
                    d.push("revoked: applying fails (delete it or rename)".into());
                }
                if let Some(key) = k.key.as_deref().filter(|s| !s.is_empty())
                    && rules.client_key_hint(key) != o.key_hint
                {
                    d.push("key: changes".into());
                }
                diff(&mut d, "models", &o.models, &k.models);
                let old_limits = limits_doc(&key_limits(o));
                if limits_text(&old_limits) != limits_text(&limits) {
                    d.push(format!(
                        "limits: {} -> {}",
                        limits_text(&old_limits),
                        limits_text(&limits)
                    ));
                }
                diff(&mut d, "expires_at_ms", &o.expires_at_ms, &expires);
                // Unsaid, the owner stays as it is.
                if let Some(owner) = k.owner.as_ref().filter(|w| **w != o.owner) {
                    diff(&mut d, "owner", &o.owner, owner);
                }
                let action = if d.is_empty() { "unchanged" } else { "update" };
                out.push(change("client_key", &k.name, action, d));
            }
        }
    }
    for r in &doc.routes {
        let alias = r.alias_of.clone().unwrap_or_default();
        match live.routes.iter().find(|o| o.model == r.model) {
            None => out.push(change(
                "route",
                &r.model,
                "create",
                vec![if alias.is_empty() {
                    format!("providers: {:?}", r.providers)
                } else {
                    format!("alias_of: {alias}")
                }],
            )),
            Some(o) => {
                let mut d = Vec::new();
                diff(&mut d, "providers", &o.providers, &r.providers);
                diff(&mut d, "strict", &o.strict, &r.strict);
                diff(&mut d, "alias_of", &o.alias_of, &alias);
                let action = if d.is_empty() { "unchanged" } else { "update" };
                out.push(change("route", &r.model, action, d));
            }
        }
    }
    let budget = |subject: &str| {
        live.budgets
            .iter()
            .find(|b| b.subject == subject)
            .and_then(|b| b.limits.as_ref())
            .and_then(limits_doc)
    };
    for t in &doc.teams {
        let limits = limits_of(t.limits.as_ref());
        match live.teams.iter().find(|o| o.name == t.name) {
            None => out.push(change(
                "team",
                &t.name,
                "create",
                vec![
                    format!("members: {:?}", t.members),
                    format!("limits: {}", limits_text(&limits)),
                ],
            )),
            Some(o) => {
                let mut d = Vec::new();
                let (mut old_m, mut new_m) = (o.members.clone(), t.members.clone());
                old_m.sort();
                new_m.sort();
                diff(&mut d, "members", &old_m, &new_m);
                let old_limits = budget(&format!("team:{}", t.name));
                if limits_text(&old_limits) != limits_text(&limits) {
                    d.push(format!(
                        "limits: {} -> {}",
                        limits_text(&old_limits),
                        limits_text(&limits)
                    ));
                }
                let action = if d.is_empty() { "unchanged" } else { "update" };
                out.push(change("team", &t.name, action, d));
            }
        }
    }
    for u in &doc.users {
        let limits = limits_of(u.limits.as_ref());
        let old_limits = budget(&format!("user:{}", u.name));
        let d = if limits_text(&old_limits) == limits_text(&limits) {
            Vec::new()
        } else {
            vec![format!(
                "limits: {} -> {}",
                limits_text(&old_limits),
                limits_text(&limits)
            )]
        };
        let action = match (&old_limits, d.is_empty()) {
            (_, true) => "unchanged",
            (None, false) => "create",
            (Some(_), false) => "update",
        };
        out.push(change("user_budget", &u.name, action, d));
    }
    if prune {
        let keys: HashSet<&str> = doc.client_keys.iter().map(|k| k.name.as_str()).collect();
        let prices: HashSet<&str> = doc.pricing.iter().map(|p| p.model.as_str()).collect();
        let routes: HashSet<&str> = doc.routes.iter().map(|r| r.model.as_str()).collect();
        let providers: HashSet<&str> = doc.providers.iter().map(|p| p.name.as_str()).collect();
        // Keys a user owns are never pruned (as in `apply --prune`).
        for k in live
            .client_keys
            .iter()
            .filter(|k| !keys.contains(k.name.as_str()) && k.owner.is_empty())
        {
            out.push(change("client_key", &k.name, "delete", Vec::new()));
        }
        for p in live
            .pricing
            .iter()
            .filter(|p| !prices.contains(p.model.as_str()))
        {
            out.push(change("price", &p.model, "delete", Vec::new()));
        }
        for r in live
            .routes
            .iter()
            .filter(|r| !routes.contains(r.model.as_str()))
        {
            out.push(change("route", &r.model, "delete", Vec::new()));
        }
        for p in live
            .providers
            .iter()
            .filter(|p| !providers.contains(p.name.as_str()))
        {
            out.push(change("provider", &p.name, "delete", Vec::new()));
        }
        let templates: HashSet<&str> = doc
            .oauth_templates
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        for t in live
            .oauth_templates
            .iter()
            .filter(|t| (!t.builtin || t.overrides_builtin) && !templates.contains(t.name.as_str()))
        {
            out.push(change("oauth_template", &t.name, "delete", Vec::new()));
        }
        let teams: HashSet<&str> = doc.teams.iter().map(|t| t.name.as_str()).collect();
        for t in live
            .teams
            .iter()
            .filter(|t| !teams.contains(t.name.as_str()))
        {
            out.push(change("team", &t.name, "delete", Vec::new()));
        }
        let users: HashSet<&str> = doc.users.iter().map(|u| u.name.as_str()).collect();
        for b in &live.budgets {
            if let Some(name) = b.subject.strip_prefix("user:")
                && !users.contains(name)
            {
                out.push(change("user_budget", name, "delete", Vec::new()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::to_yaml;
    use crate::file::parse;
    use crate::rules::TestRules;
    use aigw_proto::pb::admin::{ClientKeyInfo, PriceSpec, ProviderInfo, ProviderKeyInfo};

    fn live() -> Live {
        Live {
            providers: vec![ProviderInfo {
                name: "p".into(),
                kind: "openai".into(),
                models: vec!["gpt-*".into()],
                strategy: "round-robin".into(),
                keys: vec![ProviderKeyInfo {
                    name: "a".into(),
                    secret_hint: TestRules.secret_hint("sk-secret-number-one"),
                    weight: 1,
                    ..Default::default()
                }],
                health_check_interval_secs: TestRules.default_health_interval_secs(),
                ..Default::default()
            }],
            pricing: vec![PriceSpec {
                model: "gpt-4o".into(),
                input: 2.5,
                output: 10.0,
                cached_input: None,
            }],
            client_keys: vec![
                ClientKeyInfo {
                    name: "ci".into(),
                    rpm: Some(10),
                    ..Default::default()
                },
                ClientKeyInfo {
                    name: "anns".into(),
                    owner: "ann".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn the_export_applied_again_changes_nothing() {
        let l = live();
        let doc = parse(&to_yaml(&l, "now").unwrap(), &|_| None).unwrap();
        let p = plan(&doc, &l, true, &TestRules);
        assert!(p.iter().all(|c| c.action == "unchanged"), "{p:?}");
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn changes_field_by_field_without_secrets() {
        let doc = parse(
            "providers:\n  - name: p\n    kind: openai\n    models: [gpt-*, o3]\n    keys:\n      - name: a\n        secret: sk-another-secret-99\n\
             pricing:\n  - model: gpt-4o\n    input: 2.5\n    output: 12\n  - model: o3\n    input: 2\n    output: 8\n\
             client_keys:\n  - name: new-app\n\
             routes:\n  - model: gpt-*\n    providers: [p]\n",
            &|_| None,
        )
        .unwrap();
        let p = plan(&doc, &live(), true, &TestRules);
        let by = |kind: &str, name: &str| {
            p.iter()
                .find(|c| c.kind == kind && c.name == name)
                .unwrap_or_else(|| panic!("{kind} {name} in {p:?}"))
        };
        let prov = by("provider", "p");
        assert_eq!(prov.action, "update");
        assert!(prov.details.iter().any(|d| d.starts_with("models:")));
        assert!(prov.details.contains(&"key a secret: changes".to_string()));
        assert!(!format!("{p:?}").contains("sk-another"), "no secret shown");
        assert_eq!(by("price", "gpt-4o").details, ["output: 10.0 -> 12.0"]);
        assert_eq!(
            by("price", "o3").details,
            ["input 2 output 8 cached_input unset"]
        );
        assert_eq!(by("client_key", "new-app").action, "create");
        assert_eq!(by("route", "gpt-*").action, "create");
        // Pruning deletes the unowned key only.
        assert_eq!(by("client_key", "ci").action, "delete");
        assert!(!p.iter().any(|c| c.name == "anns"));
        // Without pruning: the same plan, less its deletes.
        let without_deletes: Vec<ConfigChange> =
            p.iter().filter(|c| c.action != "delete").cloned().collect();
        assert_eq!(without_deletes.len(), p.len() - 1);
        assert_eq!(plan(&doc, &live(), false, &TestRules), without_deletes);
    }
}
