//! Everything derived from one snapshot, built together and swapped together
//! (one `ArcSwap`, loaded once per request): the key index, the routing
//! table, the credential pools and the pricing. Building is fallible and
//! happens off to the side; the swap itself cannot fail.
//!
//! The client keys live once, in the snapshot's key table. A delta that
//! changes only keys keeps the previous runtime's upstreams as they are
//! (pools, credential health, cool-downs, round-robin positions).

use std::sync::Arc;

use aigw_proto::model::{ClientKey, Provider, ProviderKind, Snapshot};
use aigw_proto::pb::config as pb;
use http::{HeaderName, HeaderValue};

use crate::schedule::{Pool, PoolKey, stable_hash};

#[derive(Debug)]
pub struct Upstream {
    pub provider: Provider,
    pub pool: Pool,
}

#[derive(Debug)]
pub struct Runtime {
    pub snapshot: Snapshot,
    /// The snapshot as the control plane sent it, without its client keys
    /// (small): with the keys, converted back, it is the disk copy.
    pub core: Arc<pb::Snapshot>,
    pub upstreams: Vec<Arc<Upstream>>,
    /// When this node built it (for `aigw_snapshot_age_seconds`).
    pub applied_at: std::time::SystemTime,
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
    /// credential and starts afresh. `core` is `snapshot` as sent, without
    /// its keys.
    pub fn build(
        snapshot: Snapshot,
        mut core: pb::Snapshot,
        previous: Option<&Runtime>,
    ) -> Result<Self, BuildError> {
        core.client_keys = Vec::new();
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
                let kept = previous.and_then(|p| p.key_of(&provider.name, &k.name, &k.secret));
                let blocked_until_ms = match &k.health {
                    None => 0,
                    Some(h) if h.retry_at_ms > 0 => u64::try_from(h.retry_at_ms).unwrap_or(0),
                    Some(_) => u64::MAX,
                };
                let health = match kept {
                    Some(prev) => {
                        if prev.blocked_until_ms != 0 && blocked_until_ms == 0 {
                            // The control plane's check found it well again
                            // (the provider took the key back): so does this
                            // node, rather than wait out the bench its own
                            // refused request set.
                            prev.health.forgive_rejection();
                        }
                        prev.health.clone()
                    }
                    None => Arc::default(),
                };
                pool_keys.push(PoolKey {
                    seed: stable_hash(&[provider.name.as_bytes(), k.name.as_bytes()]),
                    name: k.name.clone(),
                    auth_header,
                    auth,
                    headers,
                    secret: k.secret.clone(),
                    redactor: Arc::new(crate::redact::Redactor::new([k.secret.as_str()])),
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
            core: Arc::new(core),
            upstreams,
            applied_at: std::time::SystemTime::now(),
        })
    }

    /// After a delta that changed only client keys: `previous`'s upstreams
    /// and core, shared as they are.
    pub fn with_new_keys(snapshot: Snapshot, previous: &Runtime) -> Self {
        let mut core = previous.core.clone();
        if core.version != snapshot.version {
            Arc::make_mut(&mut core).version = snapshot.version.clone();
        }
        Self {
            snapshot,
            core,
            upstreams: previous.upstreams.clone(),
            applied_at: std::time::SystemTime::now(),
        }
    }

    pub fn version(&self) -> &str {
        &self.snapshot.version
    }

    pub fn client_key(&self, hash: &[u8; 32]) -> Option<&ClientKey> {
        self.snapshot.keys.get(hash)
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

    /// `key` of `provider`, if it still has `secret`.
    fn key_of(&self, provider: &str, key: &str, secret: &str) -> Option<&PoolKey> {
        let u = self
            .upstreams
            .iter()
            .find(|u| u.provider.name == provider)?;
        u.pool
            .keys
            .iter()
            .find(|k| k.name == key && k.secret == secret)
    }
}

/// Where a provider of `kind` takes its API key: its format's codec knows.
fn auth_for(kind: ProviderKind) -> (HeaderName, &'static str) {
    crate::translate::Format::from(kind).codec().auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(secret: &str, previous: Option<&Runtime>) -> Runtime {
        build_with(secret, None, previous)
    }

    fn build_with(
        secret: &str,
        health: Option<pb::KeyHealth>,
        previous: Option<&Runtime>,
    ) -> Runtime {
        let core = pb::Snapshot {
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
                    health,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        Runtime::build(Snapshot::try_from(core.clone()).unwrap(), core, previous).unwrap()
    }

    #[test]
    fn a_cool_down_follows_the_secret_not_the_name() {
        let old = build("token-1", None);
        old.upstreams[0].pool.keys[0].health.cool_down(60_000);
        let same = build("token-1", Some(&old));
        assert!(Arc::ptr_eq(
            &same.upstreams[0].pool.keys[0].health,
            &old.upstreams[0].pool.keys[0].health
        ));
        // A refreshed access token is a new credential: usable at once.
        let fresh = build("token-2", Some(&old));
        assert!(!Arc::ptr_eq(
            &fresh.upstreams[0].pool.keys[0].health,
            &old.upstreams[0].pool.keys[0].health
        ));
        assert!(fresh.upstreams[0].pool.pick(&[], None).is_ok());
    }

    /// The provider refused the key here (a bench of a minute), the control
    /// plane's check found it unusable, then well again: the node takes it
    /// back with that snapshot, not a minute later. A rate limit's bench
    /// stays.
    #[test]
    fn a_key_the_checks_find_well_again_is_taken_back_at_once() {
        let unusable = pb::KeyHealth {
            status: "invalid_credential".into(),
            ..Default::default()
        };
        let blocked = build_with("sk-1", Some(unusable), None);
        blocked.upstreams[0].pool.keys[0].health.reject(60_000);
        let well = build_with("sk-1", None, Some(&blocked));
        assert!(well.upstreams[0].pool.pick(&[], None).is_ok());

        let limited = build_with("sk-1", Some(pb::KeyHealth::default()), None);
        let h = &limited.upstreams[0].pool.keys[0].health;
        h.reject(60_000);
        h.cool_down(120_000);
        let after = build_with("sk-1", None, Some(&limited));
        assert!(after.upstreams[0].pool.pick(&[], None).is_err());

        // Unblocked in the snapshot without any change: the bench stays.
        let plain = build("sk-2", None);
        plain.upstreams[0].pool.keys[0].health.reject(60_000);
        let again = build("sk-2", Some(&plain));
        assert!(again.upstreams[0].pool.pick(&[], None).is_err());
    }
}
