//! The live configuration as an apply file (the admin UI's export), and the
//! listing both export and `plan` compare against. Secrets are left out:
//! provider keys have no `secret` and client keys no `key`, which applying
//! the file again reads as "keep the stored one". Revoked client keys are
//! left out too (they can only be deleted).

use std::collections::BTreeMap;

use aigw_proto::pb::admin::{ClientKeyInfo, PriceSpec, ProviderInfo, RouteSpec};

use super::file::{
    ApplyFile, ClientKeyDoc, Expiry, KeyDoc, LimitsDoc, Num, PriceDoc, ProviderDoc, RouteDoc,
};
use crate::admin::{client_keys, pricing, providers, routes};
use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// The configuration as the Admin API lists it.
#[derive(Debug, Default, Clone)]
pub struct Live {
    pub providers: Vec<ProviderInfo>,
    pub pricing: Vec<PriceSpec>,
    pub client_keys: Vec<ClientKeyInfo>,
    pub routes: Vec<RouteSpec>,
}

pub fn load(conn: &mut AnyConnection) -> Result<Live> {
    Ok(Live {
        providers: providers::list(conn)?,
        pricing: pricing::list(conn)?,
        client_keys: client_keys::list(conn, None)?,
        routes: routes::list(conn)?,
    })
}

pub fn to_file(live: &Live) -> ApplyFile {
    ApplyFile {
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
                        weight: Num(k.weight),
                    })
                    .collect(),
                model_map: p.model_map.clone().into_iter().collect::<BTreeMap<_, _>>(),
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
            .map(|k| {
                let limits = LimitsDoc {
                    rpm: k.rpm.map(Num),
                    tokens_per_day: k.tokens_per_day.map(Num),
                    cost_per_day: k.cost_per_day.map(Num),
                };
                let any = limits.rpm.is_some()
                    || limits.tokens_per_day.is_some()
                    || limits.cost_per_day.is_some();
                ClientKeyDoc {
                    name: k.name.clone(),
                    key: None,
                    models: k.models.clone(),
                    limits: any.then_some(limits),
                    expires_at: (k.expires_at_ms != 0).then_some(Expiry(k.expires_at_ms)),
                }
            })
            .collect(),
        routes: live
            .routes
            .iter()
            .map(|r| RouteDoc {
                model: r.model.clone(),
                providers: r.providers.clone(),
            })
            .collect(),
    }
}

pub fn to_yaml(live: &Live, generated_at: &str) -> Result<String> {
    let body = serde_yaml::to_string(&to_file(live))
        .map_err(|e| Error::internal(format!("exporting the configuration: {e}")))?;
    Ok(format!(
        "# aigw configuration exported {generated_at}.\n\
         # Secrets are left out: provider keys without `secret` and client keys\n\
         # without `key` keep the stored ones when this file is applied again.\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::file::parse;
    use aigw_proto::pb::admin::ProviderKeyInfo;

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
                }],
                model_map: [("fast".to_string(), "gpt-4o-mini".to_string())].into(),
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
            }],
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
    }
}
