//! A sign-in in progress, kept by the browser instead of the control plane.
//! Beginning a sign-in needs no credential, so anything the control plane
//! kept per sign-in could be filled by strangers: a table of pending
//! sign-ins, however bounded, let a flood from many networks push real ones
//! out. The OAuth `state` itself now carries the nonce, the PKCE verifier
//! and the deadline, sealed with the master key (AES-256-GCM, bound to its
//! purpose): only the control plane can read or make one, and it holds
//! nothing until a sign-in completes. What it remembers is which states
//! were used, so each works once; that list holds only states someone
//! tried to complete, forgets them after their deadline, and is bounded.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::crypto::{self, MasterKey};
use crate::error::{Error, Result};

/// How long a started sign-in may take.
pub const TTL: Duration = Duration::from_secs(600);
/// What the sealed state is bound to: it opens nowhere else.
const CONTEXT: &str = "oidc:state";
/// Longer states were not made here (a sealed one is about 200 bytes).
const MAX_STATE: usize = 1024;
/// Used states remembered at once; past it, the oldest is forgotten (it
/// could then be tried again, but only with a code the identity provider
/// has not redeemed yet, for the nonce inside it).
const MAX_USED: usize = 100_000;

/// What a sign-in needs when it completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub nonce: String,
    pub verifier: String,
    /// Deadline, ms since the epoch.
    pub until_ms: i64,
}

/// The `state` parameter carrying `p` (URL-safe, opaque).
pub fn seal(master: &MasterKey, p: &Pending) -> Result<String> {
    let json = serde_json::to_string(p).map_err(|e| Error::internal(e.to_string()))?;
    let sealed = master.encrypt(&json, CONTEXT)?;
    let raw = STANDARD
        .decode(sealed)
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// The sign-in a `state` carries, if this control plane made it and its
/// deadline has not passed.
pub fn open(master: &MasterKey, state: &str, now_ms: i64) -> Result<Pending> {
    let expired = || Error::SignIn("this sign-in expired or was already used; start again".into());
    if state.is_empty() || state.len() > MAX_STATE {
        return Err(expired());
    }
    let raw = URL_SAFE_NO_PAD.decode(state).map_err(|_| expired())?;
    let json = master
        .decrypt(&STANDARD.encode(raw), CONTEXT)
        .map_err(|_| expired())?;
    let p: Pending = serde_json::from_str(&json).map_err(|_| expired())?;
    if p.until_ms <= now_ms {
        return Err(expired());
    }
    Ok(p)
}

/// The states already used (by digest), each until its deadline passes,
/// in the order they were used (so forgetting the oldest costs nothing).
#[derive(Default)]
pub struct Used {
    set: HashSet<[u8; 32]>,
    order: VecDeque<([u8; 32], Instant)>,
}

impl Used {
    /// Claims `state` for one completion: false if it was claimed before.
    pub fn claim(&mut self, state: &str) -> bool {
        let now = Instant::now();
        while let Some((digest, at)) = self.order.front()
            && (now.duration_since(*at) >= TTL || self.order.len() >= MAX_USED)
        {
            self.set.remove(digest);
            self.order.pop_front();
        }
        let digest = crypto::sha256(state);
        if !self.set.insert(digest) {
            return false;
        }
        self.order.push_back((digest, now));
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}
