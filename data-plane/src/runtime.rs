//! Everything derived from one snapshot, built together and swapped together
//! (one `ArcSwap`, loaded once per request): the key index, the routing
//! table, the credential pools and the pricing. Building is fallible and
//! happens off to the side; the swap itself cannot fail.

use std::collections::HashMap;
use std::sync::Arc;

use aigw_proto::model::{ClientKey, Provider, ProviderKind, Snapshot};
use http::{HeaderName, HeaderValue};

use crate::schedule::{KeyHealth, Pool, PoolKey, stable_hash};

#[derive(Debug)]
pub struct Upstream {
    pub provider: Provider,
    pub pool: Pool,
}

#[derive(Debug)]
pub struct Runtime {
    pub snapshot: Snapshot,
    keys: HashMap<[u8; 32], Arc<ClientKey>>,
    pub upstreams: Vec<Arc<Upstream>>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "provider {provider:?}, key {key:?}: the secret or a header is not a valid HTTP header value"
)]
pub struct BuildError {
    provider: String,
    key: String,
}

impl Runtime {
    /// `previous` lends its credential health, so a config change does not
    /// forget which keys are rate limited; a key whose secret changed (an
    /// OAuth account's refreshed access token, a rotated API key) is a new
    /// credential and starts afresh.
    pub fn build(snapshot: Snapshot, previous: Option<&Runtime>) -> Result<Self, BuildError> {
        let keys = snapshot
            .client_keys
            .iter()
            .map(|k| (k.key_hash, Arc::new(k.clone())))
            .collect();
        let mut upstreams = Vec::with_capacity(snapshot.providers.len());
        for provider in &snapshot.providers {
            let mut pool_keys = Vec::with_capacity(provider.keys.len());
            for k in &provider.keys {
                let bad = || BuildError {
                    provider: provider.name.clone(),
                    key: k.name.clone(),
                };
                // An OAuth account's access token is always a bearer token.
                let (auth_header, scheme) = if k.oauth {
                    (http::header::AUTHORIZATION, "Bearer ")
                } else {
                    auth_for(provider.kind)
                };
                let mut auth =
                    HeaderValue::try_from(format!("{scheme}{}", k.secret)).map_err(|_| bad())?;
                auth.set_sensitive(true);
                let headers = k
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        Ok((
                            HeaderName::try_from(n.as_str()).map_err(|_| bad())?,
                            HeaderValue::try_from(v.as_str()).map_err(|_| bad())?,
                        ))
                    })
                    .collect::<Result<Vec<_>, BuildError>>()?;
                let health = previous
                    .and_then(|p| p.health_of(&provider.name, &k.name, &k.secret))
                    .unwrap_or_default();
                let blocked_until_ms = match &k.health {
                    None => 0,
                    Some(h) if h.retry_at_ms > 0 => u64::try_from(h.retry_at_ms).unwrap_or(0),
                    Some(_) => u64::MAX,
                };
                pool_keys.push(PoolKey {
                    seed: stable_hash(&[provider.name.as_bytes(), k.name.as_bytes()]),
                    name: k.name.clone(),
                    auth_header,
                    auth,
                    headers,
                    secret: k.secret.clone(),
                    weight: k.weight,
                    health,
                    blocked_until_ms,
                    blocked_for_reach: k.health.as_ref().is_some_and(|h| {
                        matches!(h.status.as_str(), "network_error" | "upstream_down")
                    }),
                });
            }
            upstreams.push(Arc::new(Upstream {
                pool: Pool::new(pool_keys, provider.strategy),
                provider: provider.clone(),
            }));
        }
        Ok(Self {
            snapshot,
            keys,
            upstreams,
        })
    }

    pub fn version(&self) -> &str {
        &self.snapshot.version
    }

    pub fn client_key(&self, hash: &[u8; 32]) -> Option<&Arc<ClientKey>> {
        self.keys.get(hash)
    }

    /// The providers to try for `model`, in order (a route's fallback
    /// chain, else the first provider whose globs match).
    pub fn route_chain(&self, model: &str) -> impl Iterator<Item = &Arc<Upstream>> + '_ {
        self.snapshot
            .route_chain(model)
            .filter_map(|i| self.upstreams.get(i))
    }

    pub fn route(&self, model: &str) -> Option<&Arc<Upstream>> {
        self.route_chain(model).next()
    }

    /// The health of `key` of `provider`, if it still has `secret`.
    fn health_of(&self, provider: &str, key: &str, secret: &str) -> Option<Arc<KeyHealth>> {
        let u = self
            .upstreams
            .iter()
            .find(|u| u.provider.name == provider)?;
        let k = u
            .pool
            .keys
            .iter()
            .find(|k| k.name == key && k.secret == secret)?;
        Some(k.health.clone())
    }
}

/// Where a provider of `kind` takes its API key: its format's codec knows.
fn auth_for(kind: ProviderKind) -> (HeaderName, &'static str) {
    crate::translate::Format::from(kind).codec().auth()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw_proto::pb::config as pb;

    fn snapshot(secret: &str) -> Snapshot {
        Snapshot::try_from(pb::Snapshot {
            version: secret.into(),
            providers: vec![pb::Provider {
                name: "p".into(),
                kind: "openai".into(),
                models: vec!["*".into()],
                keys: vec![pb::ProviderKey {
                    name: "k".into(),
                    secret: secret.into(),
                    weight: 1,
                    oauth: true,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn a_cool_down_follows_the_secret_not_the_name() {
        let old = Runtime::build(snapshot("token-1"), None).unwrap();
        old.upstreams[0].pool.keys[0].health.cool_down(60_000);
        let same = Runtime::build(snapshot("token-1"), Some(&old)).unwrap();
        assert!(Arc::ptr_eq(
            &same.upstreams[0].pool.keys[0].health,
            &old.upstreams[0].pool.keys[0].health
        ));
        // A refreshed access token is a new credential: usable at once.
        let fresh = Runtime::build(snapshot("token-2"), Some(&old)).unwrap();
        assert!(!Arc::ptr_eq(
            &fresh.upstreams[0].pool.keys[0].health,
            &old.upstreams[0].pool.keys[0].health
        ));
        assert!(fresh.upstreams[0].pool.pick(&[], None).is_ok());
    }
}
