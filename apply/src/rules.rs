//! The Admin API's rules that the client needs, provided by the server's
//! code. They live in `control-plane` (next to the RPCs that enforce them,
//! with the database types they build), and this crate must not depend on
//! the server; so the caller passes them in, and the client and the server
//! can never disagree about them.

use aigw_proto::pb::admin::{ClientKeySpec, OAuthTemplateSpec, PriceSpec, ProviderSpec, RouteSpec};

use crate::error::BoxError;

/// Every object of a file, built as the Apply call will send them.
#[derive(Debug, Clone, Copy)]
pub struct Objects<'a> {
    pub oauth_templates: &'a [OAuthTemplateSpec],
    pub providers: &'a [ProviderSpec],
    pub pricing: &'a [PriceSpec],
    pub client_keys: &'a [ClientKeySpec],
    pub routes: &'a [RouteSpec],
}

/// What the client takes from the server's rules.
pub trait Rules {
    /// Checks every object with the rules of its own RPC, so a mistake
    /// anywhere in a file is reported before anything is sent (the server
    /// checks again, and also that routes name providers that exist).
    fn check(&self, objects: Objects<'_>) -> Result<(), BoxError>;
    /// The hint the listings show for a provider key's secret.
    fn secret_hint(&self, secret: &str) -> String;
    /// The hint the listings show for a client key.
    fn client_key_hint(&self, key: &str) -> String;
    /// The health-check interval of a provider that names none.
    fn default_health_interval_secs(&self) -> u32;
    /// Most client keys the server accepts in one batch message.
    fn max_batch(&self) -> usize;
}

/// Stand-in rules for this crate's tests: accept everything, hint by the
/// last four characters.
#[cfg(test)]
pub(crate) struct TestRules;

#[cfg(test)]
impl Rules for TestRules {
    fn check(&self, _: Objects<'_>) -> Result<(), BoxError> {
        Ok(())
    }
    fn secret_hint(&self, secret: &str) -> String {
        let chars: Vec<char> = secret.chars().collect();
        let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        format!("…{tail}")
    }
    fn client_key_hint(&self, key: &str) -> String {
        self.secret_hint(key)
    }
    fn default_health_interval_secs(&self) -> u32 {
        60
    }
    fn max_batch(&self) -> usize {
        2
    }
}
