//! The `apply` file: its shape, `${VAR}` expansion and parsing.
//!
//! Variables are expanded inside YAML string values after the YAML itself is
//! parsed, never in the raw text, so a secret containing `#`, `:` or quotes
//! cannot change the document's structure, and comments are never expanded.
//! Before parsing, each `${NAME}` is only replaced by a placeholder YAML
//! reads as plain text (`Refs`), so `{ key: ${KEY} }` parses as it would
//! with the value written in.
//! Numeric fields also accept strings (`rpm: ${RPM}` expands to "600").
//! Unknown fields are errors, so a typo cannot be silently ignored.
//!
//! The same types serialize the live configuration for export
//! (`export.rs`): empty and absent fields are left out, and so are secrets.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_yaml::Value;

use crate::error::{Error, Result};
use crate::vars;
pub use crate::vars::expand;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pricing: Vec<PriceDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_keys: Vec<ClientKeyDoc>,
    /// Explicit routes with fallbacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteDoc>,
    /// OAuth client settings (see docs/oauth.md), applied before the
    /// providers whose keys name them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oauth_templates: Vec<OAuthTemplateDoc>,
    /// Teams: their members (existing users) and their budget.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<TeamDoc>,
    /// Users' budgets (the users themselves are managed in the UI or
    /// through IdentityService).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserDoc>,
}

/// An OAuth template: the fields of `OAuthTemplateSpec`.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthTemplateDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub authorize_url: String,
    pub token_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device_authorization_url: String,
    pub client_id: String,
    /// Write-only; omitted: keep the stored one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub redirect_uri: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authorize_params: BTreeMap<String, String>,
    /// form (default) | json
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_format: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_base_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

impl fmt::Debug for OAuthTemplateDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthTemplateDoc")
            .field("name", &self.name)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TeamDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsDoc>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsDoc>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDoc {
    /// Glob of the model names the route serves.
    pub model: String,
    /// Provider names, tried in order (none for an alias).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// Refuse fields the provider's format cannot express instead of
    /// dropping hints and client bookkeeping.
    #[serde(default, skip_serializing_if = "is_false")]
    pub strict: bool,
    /// Serve the matched models as this model (an alias).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_of: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderDoc {
    pub name: String,
    /// openai | anthropic | gemini | openai-compatible
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Empty means round-robin.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub strategy: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyDoc>,
    /// The app's model name -> the name sent upstream.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub model_map: BTreeMap<String, String>,
    /// `{ interval_secs: 60 }`: how often the control plane checks each
    /// key (0: only when a data plane saw one fail). Omitted: every 60 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckDoc>,
    /// "" (off) or "prompt-cache".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub affinity: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckDoc {
    pub interval_secs: Num<u32>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDoc {
    pub name: String,
    /// An API key; omitted for an OAuth account, or to keep the secret
    /// stored for an existing key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret: String,
    /// An OAuth account of this template instead of an API key: it is
    /// connected through the Admin API (its tokens are never in a file).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub oauth: String,
    #[serde(default = "one")]
    pub weight: Num<u32>,
}

impl fmt::Debug for KeyDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyDoc")
            .field("name", &self.name)
            .field("weight", &self.weight.0)
            .field("oauth", &self.oauth)
            .finish_non_exhaustive()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn one() -> Num<u32> {
    Num(1)
}

/// USD per million tokens.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriceDoc {
    pub model: String,
    pub input: Num<f64>,
    pub output: Num<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<Num<f64>>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientKeyDoc {
    pub name: String,
    /// Omitted: keep the current key, or generate one for a new client key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsDoc>,
    /// RFC 3339 (`2026-01-31T00:00:00Z`) or milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Expiry>,
    /// The username owning the key (its keys count toward the user's and
    /// the team's budgets, and `--prune` leaves owned keys alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl fmt::Debug for ClientKeyDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKeyDoc")
            .field("name", &self.name)
            .field("models", &self.models)
            .field("limits", &self.limits)
            .field("expires_at", &self.expires_at)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<Num<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<Num<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<Num<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<Num<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_day: Option<Num<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_month: Option<Num<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<Num<u64>>,
    /// Tokens and cost across all regions (leases) rather than per region.
    #[serde(default, skip_serializing_if = "is_false")]
    pub global: bool,
    /// "local" (default) or "refuse" while the limit store is down.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub when_store_down: String,
}

impl LimitsDoc {
    pub fn to_spec(&self) -> aigw_proto::pb::admin::BudgetLimits {
        aigw_proto::pb::admin::BudgetLimits {
            rps: self.rps.map(|n| n.0),
            rpm: self.rpm.map(|n| n.0),
            tokens_per_minute: self.tokens_per_minute.map(|n| n.0),
            tokens_per_day: self.tokens_per_day.map(|n| n.0),
            cost_per_day: self.cost_per_day.map(|n| n.0),
            cost_per_month: self.cost_per_month.map(|n| n.0),
            concurrent: self.concurrent.map(|n| n.0),
            global: self.global,
            when_store_down: self.when_store_down.clone(),
        }
    }
}

/// A number written as a YAML number or as a string (after `${VAR}`
/// expansion every value is a string).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num<T>(pub T);

impl<'de, T> Deserialize<'de> for Num<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T> V<T>
        where
            T: FromStr,
            T::Err: fmt::Display,
        {
            fn parse<E: de::Error>(s: &str) -> Result<Num<T>, E> {
                s.trim()
                    .parse()
                    .map(Num)
                    .map_err(|e| E::custom(format!("invalid number {s:?}: {e}")))
            }
        }
        impl<T> Visitor<'_> for V<T>
        where
            T: FromStr,
            T::Err: fmt::Display,
        {
            type Value = Num<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num<T>, E> {
                Self::parse(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num<T>, E> {
                Self::parse(&v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num<T>, E> {
                Self::parse(&v.to_string())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num<T>, E> {
                Self::parse(v)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<T: Serialize> Serialize for Num<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// An expiry time in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expiry(pub i64);

/// Written as RFC 3339 in UTC, which reads back to the same milliseconds.
impl Serialize for Expiry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339_ms(self.0))
    }
}

impl<'de> Deserialize<'de> for Expiry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Expiry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time or milliseconds since the epoch")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Expiry, E> {
                i64::try_from(v)
                    .map(Expiry)
                    .map_err(|_| E::custom("expires_at is too large"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Expiry, E> {
                Ok(Expiry(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Expiry, E> {
                let v = v.trim();
                if let Ok(ms) = v.parse::<i64>() {
                    return Ok(Expiry(ms));
                }
                parse_rfc3339_ms(v).map(Expiry).ok_or_else(|| {
                    E::custom(format!(
                        "invalid time {v:?} (expected e.g. 2026-01-31T00:00:00Z)"
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]` (or a bare date) to epoch ms.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let num = |t: &str| -> Option<i64> {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (date, time) = match s.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut d = date.splitn(3, '-');
    let (y, mo, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) {
        return None;
    }
    let mut ms = days_from_civil(y, mo, day) * 86_400_000;
    if let Some(t) = time {
        let (clock, offset_ms) = if let Some(c) = t.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else {
            let at = t.rfind(['+', '-'])?;
            let (c, off) = t.split_at(at);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let (oh, om) = off[1..].split_once(':')?;
            (c, sign * (num(oh)? * 60 + num(om)?) * 60_000)
        };
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let mut p = hms.splitn(3, ':');
        let (h, mi, sec) = (num(p.next()?)?, num(p.next()?)?, num(p.next()?)?);
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let frac_ms = if frac.is_empty() {
            0
        } else {
            let digits: String = frac.chars().chain("000".chars()).take(3).collect();
            num(&digits)?
        };
        ms += ((h * 60 + mi) * 60 + sec) * 1000 + frac_ms - offset_ms;
    }
    Some(ms)
}

/// Epoch ms as `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, f) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    if f == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{f:03}Z")
    }
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses and expands a whole file. `lookup` resolves variable names (the
/// process environment in production).
pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<ApplyFile> {
    if text.trim().is_empty() {
        return Err(Error::invalid("the file is empty"));
    }
    // Before the parser, whose time grows with the square of the nesting.
    crate::depth::check(text)?;
    let (marked, refs) = vars::Refs::mark(text);
    let mut value: Value = serde_yaml::from_str(&marked)?;
    value
        .apply_merge()
        .map_err(|e| Error::invalid(format!("YAML merge keys: {e}")))?;
    vars::expand_value(&mut value, "", &refs, lookup)?;
    let file: ApplyFile = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            Error::invalid(inner.to_string())
        } else {
            Error::invalid(format!("{path}: {inner}"))
        }
    })?;
    file.check_unique()?;
    Ok(file)
}

/// The first name that two items of `items` share: `list[j]` repeats
/// `list[i]`.
fn unique<'a, T>(list: &str, items: &'a [T], name: impl Fn(&'a T) -> &'a str) -> Result<()> {
    let mut seen = std::collections::HashMap::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        if let Some(i) = seen.insert(name(item), j) {
            return Err(Error::invalid(format!(
                "{list}[{j}]: {:?} is already {list}[{i}]; each may appear once",
                name(item)
            )));
        }
    }
    Ok(())
}

impl ApplyFile {
    /// Refuses a name (a model, for pricing and routes) given twice in one
    /// list: the second would silently replace the first, or be planned
    /// as a second object.
    fn check_unique(&self) -> Result<()> {
        unique("oauth_templates", &self.oauth_templates, |t| &t.name)?;
        unique("providers", &self.providers, |p| &p.name)?;
        for (i, p) in self.providers.iter().enumerate() {
            unique(&format!("providers[{i}].keys"), &p.keys, |k| &k.name)?;
        }
        unique("pricing", &self.pricing, |p| &p.model)?;
        unique("client_keys", &self.client_keys, |k| &k.name)?;
        unique("routes", &self.routes, |r| &r.model)?;
        unique("teams", &self.teams, |t| &t.name)?;
        for (i, t) in self.teams.iter().enumerate() {
            unique(&format!("teams[{i}].members"), &t.members, |m| m)?;
        }
        unique("users", &self.users, |u| &u.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "OPENAI_KEY_A" => Some("sk-a # not: a comment".into()),
            "RPM" => Some("600".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    const EXAMPLE: &str = r#"
providers:
  - name: openai-main
    kind: openai                # openai | anthropic | gemini | openai-compatible
    base_url: https://api.openai.com   # optional for the first three kinds
    models: ["gpt-4o*", "o3"]   # model names routed here (globs)
    strategy: weighted          # ${NOT_EXPANDED_IN_COMMENTS}
    keys:
      - name: team-a
        secret: ${OPENAI_KEY_A}
        weight: 3
pricing:                        # USD per million tokens
  - model: gpt-4o
    input: 2.5
    output: 10
    cached_input: 1.25
client_keys:
  - name: checkout-service
    key: sk-aigw-$${literal}-${EMPTY}x
    models: ["gpt-4o*"]         # optional allow-list
    limits: { rpm: "${RPM}", tokens_per_day: 2000000, cost_per_day: 25.0 }
    expires_at: 2026-01-31T00:00:00Z
"#;

    #[test]
    fn parses_the_product_example_with_expansion() {
        let f = parse(EXAMPLE, &env).unwrap();
        let p = &f.providers[0];
        assert_eq!(p.keys[0].secret, "sk-a # not: a comment");
        assert_eq!(p.keys[0].weight, Num(3));
        assert_eq!(p.strategy, "weighted");
        assert_eq!(f.pricing[0].output, Num(10.0));
        assert_eq!(f.pricing[0].cached_input, Some(Num(1.25)));
        let k = &f.client_keys[0];
        assert_eq!(k.key.as_deref(), Some("sk-aigw-${literal}-x"));
        let limits = k.limits.as_ref().unwrap();
        assert_eq!(limits.rpm, Some(Num(600)));
        assert_eq!(limits.cost_per_day, Some(Num(25.0)));
        assert_eq!(k.expires_at, Some(Expiry(1_769_817_600_000)));
    }

    #[test]
    fn missing_variable_is_named() {
        let err = parse("providers:\n  - name: x\n    kind: openai\n    keys:\n      - name: a\n        secret: ${NOPE}\n", &env)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("NOPE"), "{msg}");
        assert!(msg.contains("providers[0].keys[0].secret"), "{msg}");
    }

    #[test]
    fn a_secret_that_expands_to_nothing_is_an_error() {
        let err = parse("providers:\n  - name: x\n    kind: openai\n    keys:\n      - name: a\n        secret: ${EMPTY}\n", &env)
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("providers[0].keys[0].secret") && msg.contains("${EMPTY}"),
            "{msg}"
        );
        let err = parse("client_keys:\n  - name: k\n    key: \"${EMPTY}\"\n", &env).unwrap_err();
        assert!(err.to_string().contains("client_keys[0].key"), "{err}");
        // A secret left out keeps what is stored, as before.
        let f = parse(
            "providers:\n  - name: x\n    kind: openai\n    keys:\n      - name: a\n",
            &env,
        )
        .unwrap();
        assert_eq!(f.providers[0].keys[0].secret, "");
    }

    #[test]
    fn unknown_fields_are_errors_with_their_path() {
        let err = parse(
            "providers:\n  - name: x\n    kind: openai\n    modles: [a]\n",
            &env,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("modles") && msg.contains("providers[0]"),
            "{msg}"
        );
        assert!(parse("provider: []\n", &env).is_err());
        assert!(parse("client_keys:\n  - name: k\n    limits: { rpn: 5 }\n", &env).is_err());
        assert!(parse("", &env).is_err());
        assert!(
            parse(
                "pricing:\n  - model: m\n    input: cheap\n    output: 1\n",
                &env
            )
            .is_err()
        );
    }

    #[test]
    fn defaults() {
        let f = parse(
            "providers:\n  - name: x\n    kind: openai\n    keys: [{name: a, secret: s}]\n",
            &env,
        )
        .unwrap();
        assert_eq!(f.providers[0].keys[0].weight, Num(1));
        assert_eq!(f.providers[0].strategy, "");
        assert!(f.pricing.is_empty() && f.client_keys.is_empty() && f.routes.is_empty());
        assert!(f.providers[0].model_map.is_empty());
    }

    #[test]
    fn oauth_templates_and_oauth_keys() {
        let f = parse(
            "oauth_templates:\n  - name: acme\n    token_url: https://id.acme.test/token\n    client_id: cli\n    scopes: [a, b]\n    request_headers: { x-acct: \"{id_token:/acct}\" }\n\
             providers:\n  - name: x\n    kind: openai\n    keys: [{name: acct-1, oauth: acme}]\n",
            &env,
        )
        .unwrap();
        assert_eq!(f.oauth_templates[0].name, "acme");
        assert_eq!(
            f.oauth_templates[0].request_headers["x-acct"],
            "{id_token:/acct}"
        );
        assert!(f.oauth_templates[0].client_secret.is_none());
        assert_eq!(f.providers[0].keys[0].oauth, "acme");
        assert_eq!(f.providers[0].keys[0].secret, "");
        assert!(parse("oauth_templates:\n  - name: a\n    client_id: c\n", &env).is_err());
    }

    #[test]
    fn routes_and_model_maps() {
        let f = parse(
            "providers:\n  - name: x\n    kind: openai\n    model_map: { fast: gpt-4o-mini }\n\
             routes:\n  - model: gpt-*\n    providers: [x, y]\n",
            &env,
        )
        .unwrap();
        assert_eq!(f.providers[0].model_map["fast"], "gpt-4o-mini");
        assert_eq!(f.routes[0].model, "gpt-*");
        assert_eq!(f.routes[0].providers, ["x", "y"]);
        let alias = parse(
            "routes:\n  - model: claude-*\n    alias_of: gpt-4o-mini\n    strict: true\n",
            &env,
        )
        .unwrap();
        assert_eq!(alias.routes[0].alias_of.as_deref(), Some("gpt-4o-mini"));
        assert!(alias.routes[0].strict && alias.routes[0].providers.is_empty());
        assert!(
            parse(
                "routes:\n  - model: a\n    providers: [x]\n    weight: 1\n",
                &env
            )
            .is_err()
        );
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2000-03-01T00:00:00.5Z"),
            Some(951_868_800_500)
        );
        assert_eq!(parse_rfc3339_ms("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(parse_rfc3339_ms("2024-13-01"), None);
        assert_eq!(parse_rfc3339_ms("soon"), None);
        for ms in [
            0,
            951_868_800_500,
            1_769_817_600_000,
            -86_400_001,
            4_102_444_799_999,
        ] {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms), "{ms}");
        }
        assert_eq!(format_rfc3339_ms(1_769_817_600_000), "2026-01-31T00:00:00Z");
    }

    #[test]
    fn a_name_given_twice_in_a_list_is_refused() {
        for (text, want) in [
            (
                "providers:\n  - {name: p, kind: openai}\n  - {name: q, kind: openai}\n  - {name: p, kind: anthropic}\n",
                "providers[2]: \"p\" is already providers[0]",
            ),
            (
                "providers:\n  - {name: p, kind: openai, keys: [{name: a, secret: s}, {name: a, secret: t}]}\n",
                "providers[0].keys[1]: \"a\" is already providers[0].keys[0]",
            ),
            (
                "client_keys: [{name: k}, {name: k}]\n",
                "client_keys[1]: \"k\" is already client_keys[0]",
            ),
            (
                "pricing: [{model: m, input: 1, output: 1}, {model: m, input: 2, output: 2}]\n",
                "pricing[1]",
            ),
            (
                "routes: [{model: a, alias_of: b}, {model: a, alias_of: c}]\n",
                "routes[1]",
            ),
            (
                "teams: [{name: t, members: [ann, ann]}]\n",
                "teams[0].members[1]",
            ),
            ("teams: [{name: t}, {name: t}]\n", "teams[1]"),
            ("users: [{name: ann}, {name: ann}]\n", "users[1]"),
        ] {
            let e = parse(text, &env).unwrap_err().to_string();
            assert!(
                e.contains(want) && e.contains("each may appear once"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_key_without_a_secret_keeps_the_stored_one() {
        let f = parse(
            "providers:\n  - name: x\n    kind: openai\n    keys: [{name: a}]\n",
            &env,
        )
        .unwrap();
        assert_eq!(f.providers[0].keys[0].secret, "");
    }
}
