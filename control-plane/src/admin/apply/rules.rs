//! The rules of this server that the apply client (`aigw-apply`) needs:
//! the same validation each object's own RPC applies, and the hints the
//! listings show for secrets. `control-plane apply` and the admin UI's
//! ConfigFileService both hand these to the client, so a file is refused,
//! planned and applied by one set of rules.

use aigw_apply::{BoxError, Objects, Rules};

use super::MAX_BATCH;
use crate::admin::client_keys::KEY_PREFIX;
use crate::admin::providers::DEFAULT_HEALTH_INTERVAL_SECS;
use crate::admin::{client_keys, pricing, providers, routes};
use crate::crypto;

/// This control plane's rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerRules;

impl Rules for ServerRules {
    fn check(&self, o: Objects<'_>) -> Result<(), BoxError> {
        for t in o.oauth_templates {
            crate::oauth::template::validate(t.clone())?;
        }
        for p in o.providers {
            providers::validate(p.clone())?;
        }
        for p in o.pricing {
            pricing::validate(p)?;
        }
        for k in o.client_keys {
            client_keys::validate(k.clone())?;
        }
        for r in o.routes {
            routes::validate(r)?;
        }
        Ok(())
    }

    fn secret_hint(&self, secret: &str) -> String {
        crypto::mask(secret, 3)
    }

    fn client_key_hint(&self, key: &str) -> String {
        crypto::mask(key, KEY_PREFIX.len())
    }

    fn default_health_interval_secs(&self) -> u32 {
        DEFAULT_HEALTH_INTERVAL_SECS
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }
}
