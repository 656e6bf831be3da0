//! The snapshot as the data plane uses it.

use std::collections::HashMap;

use super::Glob;
use super::budget::{Budget, Lease, Leases, Limits};
use super::keys::{ClientKey, Extras, KeyChangeError, KeyTable};
use super::names::{BadModelName, check_glob, check_model_name};
use super::provider::{KeyHealth, Provider, ProviderKey, ProviderKind, check_key_headers};
use crate::pb::config as pb;

/// Why a snapshot was refused; sent back in the NACK.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InvalidSnapshot {
    #[error("snapshot has no version")]
    NoVersion,
    #[error("provider {provider:?}: unknown kind {kind:?}")]
    UnknownKind { provider: String, kind: String },
    #[error("provider {provider:?}: unknown strategy {strategy:?}")]
    UnknownStrategy { provider: String, strategy: String },
    #[error("provider {provider:?}: base_url {url:?} must start with http:// or https://")]
    BadBaseUrl { provider: String, url: String },
    #[error("provider {0:?} is defined twice")]
    DuplicateProvider(String),
    #[error("client key {name:?}: key hash must be 32 bytes, got {len}")]
    BadKeyHash { name: String, len: usize },
    #[error("price for {model:?}: {field} must be a finite, non-negative number")]
    BadPrice { model: String, field: &'static str },
    #[error("route for {route:?} names unknown provider {provider:?}")]
    UnknownRouteProvider { route: String, provider: String },
    #[error("route for {0:?} names no provider")]
    EmptyRoute(String),
    #[error("route for {0:?} has both providers and alias_of")]
    AliasWithProviders(String),
    #[error("alias {route:?} points to {target:?}, which is itself an alias")]
    AliasChain { route: String, target: String },
    #[error("alias {route:?} points to {target:?}, which no route or provider serves")]
    AliasUnroutable { route: String, target: String },
    #[error(
        "provider {provider:?}, key {key:?}: the secret must be 1 to {MAX_SECRET} visible ASCII characters (no spaces or line breaks), as an HTTP header requires"
    )]
    BadSecret { provider: String, key: String },
    #[error("provider {provider:?}, key {key:?}: header {header:?} is not allowed or not valid")]
    BadKeyHeader {
        provider: String,
        key: String,
        header: String,
    },
    #[error("provider {provider:?}: unknown affinity {affinity:?}")]
    UnknownAffinity { provider: String, affinity: String },
    #[error("{owner}: {field} is not a valid limit")]
    BadLimit { owner: String, field: &'static str },
    #[error("client key {key:?} counts toward budget {budget:?}, which the snapshot lacks")]
    UnknownBudget { key: String, budget: String },
    #[error("client key {0:?}: its id or name is longer than 1024 bytes")]
    KeyTextTooLong(String),
    #[error("two client keys have the same hash")]
    DuplicateKeyHash,
    #[error("{owner}: model pattern {glob:?}: {reason}")]
    BadGlob {
        owner: String,
        glob: String,
        reason: BadModelName,
    },
}

/// Longest upstream secret (API key or access token) a snapshot may carry.
pub const MAX_SECRET: usize = 8192;

/// Largest encoded snapshot the control plane publishes; data planes accept
/// a little more (`MAX_SNAPSHOT_MESSAGE`), so one it publishes always fits.
pub const MAX_SNAPSHOT_BYTES: usize = 48 * 1024 * 1024;
/// The data planes' gRPC message limit on the snapshot stream.
pub const MAX_SNAPSHOT_MESSAGE: usize = MAX_SNAPSHOT_BYTES + 1024 * 1024;

/// A secret goes into a header (`Authorization: Bearer …`, `x-api-key`):
/// visible ASCII only, so it cannot break or add a header line.
fn check_secret(provider: &str, key: &str, secret: &str) -> Result<(), InvalidSnapshot> {
    let ok = !secret.is_empty()
        && secret.len() <= MAX_SECRET
        && secret.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(InvalidSnapshot::BadSecret {
            provider: provider.into(),
            key: key.into(),
        })
    }
}

fn checked_glob(owner: &str, glob: String) -> Result<Glob, InvalidSnapshot> {
    match check_glob(&glob) {
        Ok(()) => Ok(Glob::new(glob)),
        Err(reason) => Err(InvalidSnapshot::BadGlob {
            owner: owner.into(),
            glob,
            reason,
        }),
    }
}

pub(crate) fn checked_globs(owner: &str, globs: Vec<String>) -> Result<Vec<Glob>, InvalidSnapshot> {
    globs.into_iter().map(|g| checked_glob(owner, g)).collect()
}

fn checked_name(owner: &str, name: &str) -> Result<(), InvalidSnapshot> {
    check_model_name(name).map_err(|reason| InvalidSnapshot::BadGlob {
        owner: owner.into(),
        glob: name.into(),
        reason,
    })
}

/// Providers tried in order for the models a glob matches.
#[derive(Debug, Clone)]
pub struct Route {
    pub model: Glob,
    /// Indexes into `Snapshot::providers`, in fallback order. Empty for an alias.
    pub providers: Vec<usize>,
    /// Refuse a request carrying a field the provider's format cannot
    /// express, rather than dropping hints and bookkeeping fields.
    pub strict: bool,
    /// An alias: the models the glob matches are served exactly as this
    /// model (its route, provider model map, pricing and allow-list).
    pub alias_of: Option<String>,
}

/// The model a request is served as, once aliases are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served<'a> {
    pub model: &'a str,
    /// The route the request takes (or the alias that led to it) is strict.
    pub strict: bool,
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Falls back to `input` when the provider gives no cache discount.
    pub cached_input: f64,
}

impl Price {
    /// `input_tokens` counts cached tokens too; they are billed at the cached rate.
    pub fn cost(&self, input_tokens: u64, cached_tokens: u64, output_tokens: u64) -> f64 {
        let cached = cached_tokens.min(input_tokens);
        let fresh = input_tokens - cached;
        (fresh as f64 * self.input
            + cached as f64 * self.cached_input
            + output_tokens as f64 * self.output)
            / 1_000_000.0
    }
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: String,
    pub providers: Vec<Provider>,
    /// Keyed by model name; a model matches its own entry exactly, else the
    /// longest glob entry that matches.
    pub pricing: HashMap<String, Price>,
    /// The glob entries of `pricing`, most specific first (longest, then by
    /// name): the first that matches wins, whatever the map's order.
    pub price_globs: Vec<(Glob, Price)>,
    /// Every client key, by hash.
    pub keys: KeyTable,
    pub routes: Vec<Route>,
    /// Users' and teams' budgets, by id.
    pub budgets: HashMap<String, Budget>,
    pub leases: Leases,
}

impl Snapshot {
    /// The first provider (in snapshot order) whose globs match.
    pub fn route(&self, model: &str) -> Option<&Provider> {
        self.route_chain(model).next().map(|i| &self.providers[i])
    }

    /// What a request for `model` is served as: the target of the first
    /// matching route when that route is an alias (one level: aliases of
    /// aliases are refused when the snapshot is built), else `model`.
    pub fn resolve<'a>(&'a self, model: &'a str) -> Served<'a> {
        let route = self.routes.iter().find(|r| r.model.matches(model));
        match route {
            Some(Route {
                alias_of: Some(target),
                strict,
                ..
            }) => Served {
                model: target,
                strict: *strict || self.strict_route(target),
            },
            Some(r) => Served {
                model,
                strict: r.strict,
            },
            None => Served {
                model,
                strict: false,
            },
        }
    }

    fn strict_route(&self, model: &str) -> bool {
        self.routes
            .iter()
            .find(|r| r.model.matches(model))
            .is_some_and(|r| r.strict)
    }

    /// Indexes of the providers to try for `model`, in order: the first
    /// matching route's chain, else the first provider whose globs match.
    /// An alias route's chain is its target's. Allocation-free: it runs for
    /// every request.
    pub fn route_chain<'s>(&'s self, model: &str) -> impl Iterator<Item = usize> + use<'s> {
        let model = self.resolve(model).model;
        let route = self.routes.iter().find(|r| r.model.matches(model));
        let listed: &[usize] = route.map_or(&[], |r| &r.providers);
        let fallback = match route {
            Some(_) => None,
            None => self.providers.iter().position(|p| p.serves(model)),
        };
        listed.iter().copied().chain(fallback)
    }

    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.pricing.get(model) {
            return Some(*p);
        }
        self.price_globs
            .iter()
            .find(|(g, _)| g.matches(model))
            .map(|(_, p)| *p)
    }

    /// Sets `pricing` and derives `price_globs` from it.
    pub fn set_pricing(&mut self, pricing: HashMap<String, Price>) {
        let mut globs: Vec<(Glob, Price)> = pricing
            .iter()
            .map(|(m, p)| (Glob::new(m.as_str()), *p))
            .filter(|(g, _)| !g.is_literal())
            .collect();
        globs.sort_by(|(a, _), (b, _)| {
            b.as_str()
                .len()
                .cmp(&a.as_str().len())
                .then_with(|| a.as_str().cmp(b.as_str()))
        });
        self.pricing = pricing;
        self.price_globs = globs;
    }
}

fn normalize_base_url(
    provider: &str,
    kind: ProviderKind,
    url: &str,
) -> Result<String, InvalidSnapshot> {
    let url = if url.is_empty() {
        match kind.default_base_url() {
            Some(u) => u,
            None => {
                return Err(InvalidSnapshot::BadBaseUrl {
                    provider: provider.into(),
                    url: url.into(),
                });
            }
        }
    } else {
        url
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(InvalidSnapshot::BadBaseUrl {
            provider: provider.into(),
            url: url.into(),
        });
    }
    let trimmed = url.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
    Ok(trimmed.to_string())
}

fn check_price(model: &str, field: &'static str, v: f64) -> Result<f64, InvalidSnapshot> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(InvalidSnapshot::BadPrice {
            model: model.into(),
            field,
        })
    }
}

impl TryFrom<pb::Snapshot> for Snapshot {
    type Error = InvalidSnapshot;

    fn try_from(s: pb::Snapshot) -> Result<Self, Self::Error> {
        if s.version.is_empty() {
            return Err(InvalidSnapshot::NoVersion);
        }
        let mut providers = Vec::with_capacity(s.providers.len());
        for p in s.providers {
            if providers.iter().any(|q: &Provider| q.name == p.name) {
                return Err(InvalidSnapshot::DuplicateProvider(p.name));
            }
            let kind = p.kind.parse().map_err(|()| InvalidSnapshot::UnknownKind {
                provider: p.name.clone(),
                kind: p.kind.clone(),
            })?;
            let strategy = p
                .strategy
                .parse()
                .map_err(|()| InvalidSnapshot::UnknownStrategy {
                    provider: p.name.clone(),
                    strategy: p.strategy.clone(),
                })?;
            let base_url = normalize_base_url(&p.name, kind, &p.base_url)?;
            let owner = format!("provider {:?}", p.name);
            let affinity = p
                .affinity
                .parse()
                .map_err(|()| InvalidSnapshot::UnknownAffinity {
                    provider: p.name.clone(),
                    affinity: p.affinity.clone(),
                })?;
            let mut keys = Vec::with_capacity(p.keys.len());
            for k in p.keys {
                check_secret(&p.name, &k.name, &k.secret)?;
                let headers = check_key_headers(&p.name, &k.name, &k.headers)?;
                keys.push(ProviderKey {
                    weight: k.weight.max(1),
                    health: k
                        .health
                        .filter(|h| !h.status.is_empty())
                        .map(|h| KeyHealth {
                            status: h.status,
                            retry_at_ms: h.retry_at_ms,
                            detail: h.detail,
                        }),
                    oauth: k.oauth,
                    headers,
                    name: k.name,
                    secret: k.secret,
                });
            }
            for (from, to) in &p.model_map {
                checked_name(&owner, from)?;
                checked_name(&owner, to)?;
            }
            providers.push(Provider {
                kind,
                strategy,
                base_url,
                models: checked_globs(&owner, p.models)?,
                keys,
                model_map: p.model_map.into_iter().collect(),
                affinity,
                name: p.name,
            });
        }
        let mut routes = Vec::with_capacity(s.routes.len());
        for r in s.routes {
            let alias_of = (!r.alias_of.is_empty()).then_some(r.alias_of);
            if let Some(target) = &alias_of {
                checked_name(&format!("route {:?} alias_of", r.model), target)?;
            }
            match (&alias_of, r.providers.is_empty()) {
                (None, true) => return Err(InvalidSnapshot::EmptyRoute(r.model)),
                (Some(_), false) => return Err(InvalidSnapshot::AliasWithProviders(r.model)),
                _ => {}
            }
            let mut chain = Vec::with_capacity(r.providers.len());
            for name in &r.providers {
                let idx = providers
                    .iter()
                    .position(|p: &Provider| &p.name == name)
                    .ok_or_else(|| InvalidSnapshot::UnknownRouteProvider {
                        route: r.model.clone(),
                        provider: name.clone(),
                    })?;
                chain.push(idx);
            }
            routes.push(Route {
                model: checked_glob("route", r.model)?,
                providers: chain,
                strict: r.strict,
                alias_of,
            });
        }
        let mut pricing = HashMap::with_capacity(s.pricing.len());
        for p in s.pricing {
            checked_glob("pricing", p.model.clone())?;
            let input = check_price(&p.model, "input", p.input)?;
            let output = check_price(&p.model, "output", p.output)?;
            let cached_input = match p.cached_input {
                Some(c) => check_price(&p.model, "cached_input", c)?,
                None => input,
            };
            pricing.insert(
                p.model,
                Price {
                    input,
                    output,
                    cached_input,
                },
            );
        }
        let mut extras = Extras::default();
        let client_keys = s
            .client_keys
            .into_iter()
            .map(|k| ClientKey::from_pb(k, &mut extras))
            .collect::<Result<Vec<_>, _>>()?;
        let mut budgets = HashMap::with_capacity(s.budgets.len());
        for b in s.budgets {
            let limits = Limits::from_pb(&format!("budget {:?}", b.id), b.limits)?;
            budgets.insert(
                b.id.clone(),
                Budget {
                    id: b.id,
                    name: b.name,
                    limits,
                    global: b.global,
                },
            );
        }
        let leases = s
            .leases
            .into_iter()
            .map(|l| {
                (
                    (l.budget, l.region, l.period),
                    Lease {
                        tokens: l.tokens,
                        cost: l.cost.filter(|c| c.is_finite() && *c >= 0.0),
                    },
                )
            })
            .collect();
        let mut snapshot = Snapshot {
            version: s.version,
            providers,
            pricing: HashMap::new(),
            price_globs: Vec::new(),
            keys: KeyTable::default(),
            routes,
            budgets,
            leases,
        };
        snapshot.set_pricing(pricing);
        snapshot.check_aliases()?;
        snapshot.with_keys(client_keys)
    }
}

impl From<KeyChangeError> for InvalidSnapshot {
    fn from(_: KeyChangeError) -> Self {
        Self::DuplicateKeyHash
    }
}

impl Snapshot {
    /// This snapshot with `keys` as its client keys (checked: one hash per
    /// key, budgets the snapshot has).
    pub fn with_keys(mut self, keys: Vec<ClientKey>) -> Result<Self, InvalidSnapshot> {
        self.check_key_budgets(keys.iter())?;
        self.keys = KeyTable::new(keys)?;
        Ok(self)
    }

    /// Every budget the keys count toward is in the snapshot. Keys share
    /// their settings, so each set is checked once.
    pub fn check_key_budgets<'a>(
        &self,
        keys: impl Iterator<Item = &'a ClientKey>,
    ) -> Result<(), InvalidSnapshot> {
        let mut checked: Option<*const [String]> = None;
        for k in keys {
            let budgets = k.budgets();
            if budgets.is_empty() || checked == Some(std::ptr::from_ref(budgets)) {
                continue;
            }
            if let Some(missing) = budgets.iter().find(|b| !self.budgets.contains_key(*b)) {
                return Err(InvalidSnapshot::UnknownBudget {
                    key: k.name().to_string(),
                    budget: missing.clone(),
                });
            }
            checked = Some(std::ptr::from_ref(budgets));
        }
        Ok(())
    }
}

impl Snapshot {
    /// Every alias leads, in one step, to a model something serves.
    fn check_aliases(&self) -> Result<(), InvalidSnapshot> {
        for r in &self.routes {
            let Some(target) = &r.alias_of else { continue };
            let err = |chain: bool| {
                let (route, target) = (r.model.as_str().to_string(), target.clone());
                if chain {
                    InvalidSnapshot::AliasChain { route, target }
                } else {
                    InvalidSnapshot::AliasUnroutable { route, target }
                }
            };
            let next = self.routes.iter().find(|x| x.model.matches(target));
            if next.is_some_and(|x| x.alias_of.is_some()) {
                return Err(err(true));
            }
            if self.route_chain(target).next().is_none() {
                return Err(err(false));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str, kind: &str, url: &str) -> pb::Provider {
        pb::Provider {
            name: name.into(),
            kind: kind.into(),
            base_url: url.into(),
            models: vec!["gpt-4o*".into()],
            strategy: "weighted".into(),
            keys: vec![],
            model_map: Default::default(),
            affinity: String::new(),
        }
    }

    #[test]
    fn valid_snapshot_normalizes_urls() {
        let s = Snapshot::try_from(pb::Snapshot {
            version: "v1".into(),
            providers: vec![
                provider("a", "openai", ""),
                provider("b", "openai-compatible", "http://x:1/v1/"),
            ],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.providers[0].base_url, "https://api.openai.com");
        assert_eq!(s.providers[1].base_url, "http://x:1");
        assert_eq!(s.route("gpt-4o-mini").unwrap().name, "a");
        assert!(s.route("claude").is_none());
        assert_eq!(s.route_chain("claude").next(), None);
    }

    #[test]
    fn invalid_snapshots_are_refused() {
        let bad_kind = pb::Snapshot {
            version: "v".into(),
            providers: vec![provider("a", "mystery", "")],
            ..Default::default()
        };
        assert!(matches!(
            Snapshot::try_from(bad_kind),
            Err(InvalidSnapshot::UnknownKind { .. })
        ));
        let compat_without_url = pb::Snapshot {
            version: "v".into(),
            providers: vec![provider("a", "openai-compatible", "")],
            ..Default::default()
        };
        assert!(matches!(
            Snapshot::try_from(compat_without_url),
            Err(InvalidSnapshot::BadBaseUrl { .. })
        ));
        let bad_route = pb::Snapshot {
            version: "v".into(),
            providers: vec![provider("a", "openai", "")],
            routes: vec![pb::Route {
                model: "gpt-*".into(),
                providers: vec!["a".into(), "ghost".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(matches!(
            Snapshot::try_from(bad_route),
            Err(InvalidSnapshot::UnknownRouteProvider { .. })
        ));
        // Aliases: one step, to a model something serves, without providers.
        let with_routes = |routes: Vec<pb::Route>| pb::Snapshot {
            version: "v".into(),
            providers: vec![provider("a", "openai", "")],
            routes,
            ..Default::default()
        };
        let alias = |model: &str, target: &str| pb::Route {
            model: model.into(),
            alias_of: target.into(),
            ..Default::default()
        };
        assert!(matches!(
            Snapshot::try_from(with_routes(vec![alias("claude-*", "nowhere")])),
            Err(InvalidSnapshot::AliasUnroutable { .. })
        ));
        assert!(matches!(
            Snapshot::try_from(with_routes(vec![
                alias("claude-*", "c-x"),
                alias("c-*", "gpt-4o")
            ])),
            Err(InvalidSnapshot::AliasChain { .. })
        ));
        let strict_target = pb::Route {
            model: "gpt-4o".into(),
            providers: vec!["a".into()],
            strict: true,
            ..Default::default()
        };
        let s = Snapshot::try_from(with_routes(vec![
            alias("claude-*", "gpt-4o"),
            strict_target,
        ]))
        .unwrap();
        let served = s.resolve("claude-haiku-4-5");
        assert_eq!((served.model, served.strict), ("gpt-4o", true));
        assert_eq!(
            s.route("claude-haiku-4-5").map(|p| p.name.as_str()),
            Some("a")
        );
        assert!(!s.resolve("gpt-4o-mini").strict);
        let mut both = alias("claude-*", "gpt-4o");
        both.providers = vec!["a".into()];
        assert!(matches!(
            Snapshot::try_from(with_routes(vec![both])),
            Err(InvalidSnapshot::AliasWithProviders(_))
        ));
        let no_version = pb::Snapshot::default();
        assert_eq!(
            Snapshot::try_from(no_version).unwrap_err(),
            InvalidSnapshot::NoVersion
        );
    }

    #[test]
    fn cost_bills_cached_tokens_at_cached_rate() {
        let p = Price {
            input: 2.5,
            output: 10.0,
            cached_input: 1.25,
        };
        // 1000 input of which 400 cached, 500 output.
        let c = p.cost(1000, 400, 500);
        let expected = (600.0 * 2.5 + 400.0 * 1.25 + 500.0 * 10.0) / 1e6;
        assert!((c - expected).abs() < 1e-12);
    }

    #[test]
    fn price_lookup_prefers_exact_then_longest_glob() {
        let mut pricing = HashMap::new();
        let p = |x| Price {
            input: x,
            output: x,
            cached_input: x,
        };
        pricing.insert("gpt-4o".to_string(), p(1.0));
        pricing.insert("gpt-*".to_string(), p(2.0));
        pricing.insert("gpt-4o-*".to_string(), p(3.0));
        let mut s = Snapshot {
            version: "v".into(),
            providers: vec![],
            pricing: HashMap::new(),
            price_globs: vec![],
            keys: KeyTable::default(),
            routes: vec![],
            budgets: HashMap::new(),
            leases: HashMap::new(),
        };
        s.set_pricing(pricing.clone());
        assert_eq!(s.price("gpt-4o").unwrap().input, 1.0);
        assert_eq!(s.price("gpt-4o-mini").unwrap().input, 3.0);
        assert_eq!(s.price("gpt-3.5").unwrap().input, 2.0);
        assert!(s.price("claude").is_none());
        // Ties between globs of one length go to the first by name, never to
        // whichever the map happens to yield first.
        for _ in 0..20 {
            let mut tied = pricing.clone();
            tied.insert("gpt-4?-mini".to_string(), p(4.0));
            tied.insert("gpt-4o-min?".to_string(), p(5.0));
            tied.insert("gpt-4o-m*ni".to_string(), p(6.0));
            s.set_pricing(tied);
            assert_eq!(s.price("gpt-4o-mini").unwrap().input, 4.0);
        }
    }
}
