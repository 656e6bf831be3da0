//! The live configuration as an apply file (the admin UI's export), and the
//! listing both export and `plan` compare against, read through AdminService
//! like any client. Secrets are left out: provider keys have no `secret`, client
//! keys no `key`, OAuth templates no `client_secret`, which applying the
//! file again reads as "keep the stored one". Revoked client keys are left
//! out (they can only be deleted), and so are built-in OAuth templates that
//! were not overridden.

use std::collections::BTreeMap;

use aigw_proto::pb::admin::admin_service_client::AdminServiceClient;
use aigw_proto::pb::admin::{
    BudgetInfo, BudgetLimits, ClientKeyInfo, ListRequest, OAuthTemplateSpec, PriceSpec,
    ProviderInfo, RouteSpec, TeamInfo,
};
use tonic::Status;

use crate::client::Transport;
use crate::error::{Error, Result};
use crate::file::{
    ApplyFile, ClientKeyDoc, Expiry, HealthCheckDoc, KeyDoc, LimitsDoc, Num, OAuthTemplateDoc,
    PriceDoc, ProviderDoc, RouteDoc, TeamDoc, UserDoc,
};

/// The configuration as the Admin API lists it.
#[derive(Debug, Default, Clone)]
pub struct Live {
    pub providers: Vec<ProviderInfo>,
    pub pricing: Vec<PriceSpec>,
    pub client_keys: Vec<ClientKeyInfo>,
    pub routes: Vec<RouteSpec>,
    pub oauth_templates: Vec<OAuthTemplateSpec>,
    pub teams: Vec<TeamInfo>,
    pub budgets: Vec<BudgetInfo>,
}

fn listing(what: &'static str) -> impl FnOnce(Status) -> Error {
    move |status| Error::Rpc {
        what: format!("listing {what}"),
        status: Box::new(status),
    }
}

/// Lists everything an apply file can hold, as the caller sees it.
pub async fn load<T: Transport>(client: &mut AdminServiceClient<T>) -> Result<Live> {
    let r = ListRequest {};
    Ok(Live {
        providers: client
            .list_providers(r)
            .await
            .map_err(listing("providers"))?
            .into_inner()
            .providers,
        pricing: client
            .list_pricing(r)
            .await
            .map_err(listing("pricing"))?
            .into_inner()
            .pricing,
        client_keys: client
            .list_client_keys(r)
            .await
            .map_err(listing("client keys"))?
            .into_inner()
            .client_keys,
        routes: client
            .list_routes(r)
            .await
            .map_err(listing("routes"))?
            .into_inner()
            .routes,
        oauth_templates: client
            .list_o_auth_templates(r)
            .await
            .map_err(listing("oauth templates"))?
            .into_inner()
            .templates,
        teams: client
            .list_teams(r)
            .await
            .map_err(listing("teams"))?
            .into_inner()
            .teams,
        budgets: client
            .list_budgets(r)
            .await
            .map_err(listing("budgets"))?
            .into_inner()
            .budgets,
    })
}

/// Limits as the file writes them; None when no limit is set.
pub fn limits_doc(l: &BudgetLimits) -> Option<LimitsDoc> {
    let d = LimitsDoc {
        rps: l.rps.map(Num),
        rpm: l.rpm.map(Num),
        tokens_per_minute: l.tokens_per_minute.map(Num),
        tokens_per_day: l.tokens_per_day.map(Num),
        cost_per_day: l.cost_per_day.map(Num),
        cost_per_month: l.cost_per_month.map(Num),
        concurrent: l.concurrent.map(Num),
        global: l.global,
        when_store_down: l.when_store_down.clone(),
    };
    let any = d.rps.is_some()
        || d.rpm.is_some()
        || d.tokens_per_minute.is_some()
        || d.tokens_per_day.is_some()
        || d.cost_per_day.is_some()
        || d.cost_per_month.is_some()
        || d.concurrent.is_some()
        || d.global
        || !d.when_store_down.is_empty();
    any.then_some(d)
}

/// A client key's limits as a budget's.
pub fn key_limits(k: &ClientKeyInfo) -> BudgetLimits {
    BudgetLimits {
        rps: k.rps,
        rpm: k.rpm,
        tokens_per_minute: k.tokens_per_minute,
        tokens_per_day: k.tokens_per_day,
        cost_per_day: k.cost_per_day,
        cost_per_month: k.cost_per_month,
        concurrent: k.concurrent,
        global: k.global,
        when_store_down: k.when_store_down.clone(),
    }
}

fn budget_of<'a>(live: &'a Live, subject: &str) -> Option<&'a BudgetLimits> {
    live.budgets
        .iter()
        .find(|b| b.subject == subject)
        .and_then(|b| b.limits.as_ref())
}

pub fn to_file(live: &Live) -> ApplyFile {
    ApplyFile {
        oauth_templates: live
            .oauth_templates
            .iter()
            .filter(|t| !t.builtin || t.overrides_builtin)
            .map(|t| OAuthTemplateDoc {
                name: t.name.clone(),
                description: t.description.clone(),
                authorize_url: t.authorize_url.clone(),
                token_url: t.token_url.clone(),
                device_authorization_url: t.device_authorization_url.clone(),
                client_id: t.client_id.clone(),
                client_secret: None,
                scopes: t.scopes.clone(),
                redirect_uri: t.redirect_uri.clone(),
                authorize_params: t.authorize_params.clone().into_iter().collect(),
                token_format: t.token_format.clone(),
                request_headers: t.request_headers.clone().into_iter().collect(),
                api_base_url: t.api_base_url.clone(),
                provider_kind: t.provider_kind.clone(),
                notes: t.notes.clone(),
            })
            .collect(),
        providers: live
            .providers
            .iter()
            .map(|p| ProviderDoc {
                name: p.name.clone(),
                kind: p.kind.clone(),
                base_url: p.base_url.clone(),
                models: p.models.clone(),
                strategy: p.strategy.clone(),
                keys: p
                    .keys
                    .iter()
                    .map(|k| KeyDoc {
                        name: k.name.clone(),
                        secret: String::new(),
                        oauth: k.oauth_template.clone(),
                        weight: Num(k.weight),
                    })
                    .collect(),
                model_map: p.model_map.clone().into_iter().collect::<BTreeMap<_, _>>(),
                health_check: Some(HealthCheckDoc {
                    interval_secs: Num(p.health_check_interval_secs),
                }),
                affinity: p.affinity.clone(),
            })
            .collect(),
        pricing: live
            .pricing
            .iter()
            .map(|p| PriceDoc {
                model: p.model.clone(),
                input: Num(p.input),
                output: Num(p.output),
                cached_input: p.cached_input.map(Num),
            })
            .collect(),
        client_keys: live
            .client_keys
            .iter()
            .filter(|k| !k.revoked)
            .map(|k| ClientKeyDoc {
                name: k.name.clone(),
                key: None,
                models: k.models.clone(),
                limits: limits_doc(&key_limits(k)),
                expires_at: (k.expires_at_ms != 0).then_some(Expiry(k.expires_at_ms)),
                owner: (!k.owner.is_empty()).then(|| k.owner.clone()),
            })
            .collect(),
        routes: live
            .routes
            .iter()
            .map(|r| RouteDoc {
                model: r.model.clone(),
                providers: r.providers.clone(),
                strict: r.strict,
                alias_of: (!r.alias_of.is_empty()).then(|| r.alias_of.clone()),
            })
            .collect(),
        teams: live
            .teams
            .iter()
            .map(|t| TeamDoc {
                name: t.name.clone(),
                members: t.members.clone(),
                limits: budget_of(live, &format!("team:{}", t.name)).and_then(limits_doc),
            })
            .collect(),
        users: live
            .budgets
            .iter()
            .filter_map(|b| {
                let name = b.subject.strip_prefix("user:")?;
                Some(UserDoc {
                    name: name.to_string(),
                    limits: b.limits.as_ref().and_then(limits_doc),
                })
            })
            .collect(),
    }
}

pub fn to_yaml(live: &Live, generated_at: &str) -> Result<String> {
    let mut value = serde_yaml::to_value(to_file(live)).map_err(Error::Export)?;
    escape_refs(&mut value);
    let body = serde_yaml::to_string(&value).map_err(Error::Export)?;
    Ok(format!(
        "# aigw configuration exported {generated_at}.\n\
         # Secrets are left out: provider keys without `secret`, client keys\n\
         # without `key` and OAuth templates without `client_secret` keep the\n\
         # stored ones when this file is applied again.\n{body}"
    ))
}

/// Writes every `${` of a string value as `$${`, which an apply file reads
/// back as the text `${` (`crate::vars`): a name or description holding
/// `${AIGW_ADMIN_TOKEN}` is exported as text, so applying the export with
/// `control-plane apply` cannot expand it from the applier's environment.
/// Mapping keys are left alone: an apply file never expands them.
fn escape_refs(v: &mut serde_yaml::Value) {
    use serde_yaml::Value;
    match v {
        Value::String(s) if s.contains("${") => *s = s.replace("${", "$${"),
        Value::Sequence(items) => items.iter_mut().for_each(escape_refs),
        Value::Mapping(map) => map.values_mut().for_each(escape_refs),
        Value::Tagged(t) => escape_refs(&mut t.value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::parse;
    use aigw_proto::pb::admin::ProviderKeyInfo;

    /// A `${VAR}` written in a name or any other string is exported as
    /// text: applying the export with every variable set (as
    /// `control-plane apply` would, from the applier's environment) gives
    /// back the same strings, never a variable's value.
    #[test]
    fn dollar_braces_in_strings_are_exported_as_text() {
        let tricky = [
            "ops-${AIGW_ADMIN_TOKEN}",
            "a-$${X}-b",
            "${bad-name}",
            "tail-${",
            "$$ and $ and $$$",
            "${X",
        ];
        let live = Live {
            teams: tricky
                .iter()
                .map(|n| TeamInfo {
                    name: (*n).into(),
                    members: vec![format!("m-{n}")],
                })
                .collect(),
            providers: vec![ProviderInfo {
                name: "p-${AIGW_MASTER_KEY}".into(),
                kind: "openai".into(),
                keys: vec![ProviderKeyInfo {
                    name: "k-${HOME}".into(),
                    weight: 1,
                    ..Default::default()
                }],
                model_map: [("${K}".to_string(), "v-${V}".to_string())].into(),
                ..Default::default()
            }],
            oauth_templates: vec![OAuthTemplateSpec {
                name: "t".into(),
                description: "uses ${AIGW_ADMIN_TOKEN}".into(),
                token_url: "https://idp.example/token".into(),
                client_id: "c".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let yaml = to_yaml(&live, "now").unwrap();
        let leak = |_: &str| Some("LEAKED".to_string());
        let back = parse(&yaml, &leak).unwrap();
        assert!(!format!("{back:?}").contains("LEAKED"), "{yaml}");
        let names: Vec<&str> = back.teams.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, tricky, "{yaml}");
        for (t, n) in back.teams.iter().zip(tricky) {
            assert_eq!(t.members, [format!("m-{n}")]);
        }
        let p = &back.providers[0];
        assert_eq!(
            (p.name.as_str(), p.keys[0].name.as_str()),
            ("p-${AIGW_MASTER_KEY}", "k-${HOME}")
        );
        assert_eq!(p.model_map["${K}"], "v-${V}");
        assert_eq!(
            back.oauth_templates[0].description,
            "uses ${AIGW_ADMIN_TOKEN}"
        );
    }

    #[test]
    fn exports_without_secrets_and_reads_back() {
        let live = Live {
            providers: vec![ProviderInfo {
                name: "openai-main".into(),
                kind: "openai".into(),
                base_url: String::new(),
                models: vec!["gpt-4o*".into()],
                strategy: "weighted".into(),
                keys: vec![ProviderKeyInfo {
                    name: "team-a".into(),
                    secret_hint: "sk-…a1b2".into(),
                    weight: 3,
                    ..Default::default()
                }],
                model_map: [("fast".to_string(), "gpt-4o-mini".to_string())].into(),
                health_check_interval_secs: 60,
                ..Default::default()
            }],
            pricing: vec![PriceSpec {
                model: "gpt-4o".into(),
                input: 2.5,
                output: 10.0,
                cached_input: Some(1.25),
            }],
            client_keys: vec![
                ClientKeyInfo {
                    name: "checkout".into(),
                    key_hint: "sk-aigw-…zzzz".into(),
                    rpm: Some(600),
                    cost_per_day: Some(25.0),
                    expires_at_ms: 1_769_817_600_000,
                    ..Default::default()
                },
                ClientKeyInfo {
                    name: "old".into(),
                    revoked: true,
                    ..Default::default()
                },
            ],
            routes: vec![RouteSpec {
                model: "gpt-4o*".into(),
                providers: vec!["openai-main".into()],
                ..Default::default()
            }],
            teams: vec![TeamInfo {
                name: "search".into(),
                members: vec!["ann".into()],
            }],
            budgets: vec![
                BudgetInfo {
                    subject: "team:search".into(),
                    limits: Some(BudgetLimits {
                        cost_per_month: Some(100.0),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                BudgetInfo {
                    subject: "user:ann".into(),
                    limits: Some(BudgetLimits {
                        rpm: Some(60),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            oauth_templates: vec![
                OAuthTemplateSpec {
                    name: "claude".into(),
                    builtin: true,
                    ..Default::default()
                },
                OAuthTemplateSpec {
                    name: "corp".into(),
                    token_url: "https://idp.example/token".into(),
                    client_id: "aigw".into(),
                    has_client_secret: true,
                    ..Default::default()
                },
            ],
        };
        let yaml = to_yaml(&live, "now").unwrap();
        assert!(!yaml.contains("a1b2") && !yaml.contains("zzzz"), "{yaml}");
        assert!(!yaml.contains("secret:") && !yaml.contains("old"), "{yaml}");
        assert!(yaml.contains("expires_at: 2026-01-31T00:00:00Z"), "{yaml}");
        let back = parse(&yaml, &|_| None).unwrap();
        assert_eq!(back.providers[0].keys[0].weight, Num(3));
        assert_eq!(back.providers[0].model_map["fast"], "gpt-4o-mini");
        assert_eq!(back.pricing[0].cached_input, Some(Num(1.25)));
        let k = &back.client_keys[0];
        assert_eq!(
            (k.key.as_deref(), k.expires_at),
            (None, Some(Expiry(1_769_817_600_000)))
        );
        assert_eq!(k.limits.as_ref().unwrap().rpm, Some(Num(600)));
        assert_eq!(back.routes[0].providers, ["openai-main"]);
        assert_eq!(back.teams[0].members, ["ann"]);
        let team_limits = back.teams[0].limits.as_ref().unwrap();
        assert_eq!(team_limits.cost_per_month, Some(Num(100.0)));
        assert_eq!(back.users[0].limits.as_ref().unwrap().rpm, Some(Num(60)));
        // Built-in templates stay out; a stored one is there, without its secret.
        assert_eq!(back.oauth_templates.len(), 1);
        assert_eq!(back.oauth_templates[0].client_secret, None);
        assert_eq!(
            back.providers[0]
                .health_check
                .as_ref()
                .unwrap()
                .interval_secs,
            Num(60)
        );
    }
}
