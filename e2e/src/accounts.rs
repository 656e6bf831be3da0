//! The state of each upstream credential, as a provider's account system
//! sees it: a test can revoke a key, run it out of quota or take the
//! provider down for it, and every request made with that key — model
//! listings (what health checks call) included — is answered the way the
//! real API answers it, until the test sets it valid again.
//!
//! `POST /_mock/keys {"key": K, "state": "revoked"|"out_of_quota"|"down"|"valid"}`,
//! `GET /_mock/keys`, `DELETE /_mock/keys` (all valid again).

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::app::Wire;
use crate::error::MockError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Valid,
    Revoked,
    OutOfQuota,
    Down,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetState {
    pub key: String,
    pub state: KeyState,
}

#[derive(Debug, Default)]
pub struct Accounts {
    states: Mutex<BTreeMap<String, KeyState>>,
}

impl Accounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, KeyState>> {
        self.states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn set(&self, s: SetState) {
        let mut m = self.lock();
        match s.state {
            KeyState::Valid => {
                m.remove(&s.key);
            }
            other => {
                m.insert(s.key, other);
            }
        }
    }

    pub fn all(&self) -> BTreeMap<String, KeyState> {
        self.lock().clone()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How the provider refuses a request made with `key`, if it does.
    pub fn refusal(&self, wire: Wire, key: &str) -> Option<MockError> {
        let state = *self.lock().get(key)?;
        let (status, message) = match (state, wire) {
            (KeyState::Valid, _) => return None,
            // Gemini refuses a bad key with 400 API_KEY_INVALID.
            (KeyState::Revoked, Wire::Gemini) => {
                (StatusCode::BAD_REQUEST, crate::gemini::API_KEY_NOT_VALID)
            }
            (KeyState::Revoked, Wire::Anthropic) => (StatusCode::UNAUTHORIZED, "invalid x-api-key"),
            (KeyState::Revoked, Wire::OpenAi) => (
                StatusCode::UNAUTHORIZED,
                "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            ),
            (KeyState::OutOfQuota, Wire::Anthropic) => (
                StatusCode::BAD_REQUEST,
                "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
            ),
            (KeyState::OutOfQuota, _) => (
                StatusCode::TOO_MANY_REQUESTS,
                "You exceeded your current quota, please check your plan and billing details.",
            ),
            (KeyState::Down, _) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable.",
            ),
        };
        Some(MockError::Injected {
            status,
            message: message.into(),
        })
    }
}
