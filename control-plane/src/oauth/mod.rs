//! OAuth accounts as upstream credentials (docs/oauth.md). The control
//! plane alone holds an account's refresh token: it connects accounts
//! (authorization code with PKCE, or the device grant), refreshes their
//! access tokens before they expire and at once after an upstream 401, and
//! puts only the access token, with the template's headers, in the
//! snapshots the data planes receive.
//!
//! - `template`: the OAuth client settings, as data (built-in and stored).
//! - `pkce`: verifier, challenge, state, and reading a pasted redirect.
//! - `token`: token endpoint requests and answers (pure).
//! - `account`: an account's stored state and what is shown of it.
//! - `flow`: connecting (start, complete, device start and poll).
//! - `refresher`: the task that keeps access tokens fresh.

pub mod account;
pub mod flow;
pub mod pkce;
pub mod refresher;
pub mod template;
pub mod token;

use std::sync::{Arc, Mutex, PoisonError};

pub use refresher::Refresher;

use crate::compile::recompile_core;
use crate::crypto::MasterKey;
use crate::db::config::load_core;
use crate::db::{AnyConnection, Db, write_tx};
use crate::error::Result;
use crate::outbound::Outbound;
use crate::push::Publisher;

/// What the OAuth parts need: the database and master key, the publisher
/// and the admin write lock (so versions follow commits), the HTTP client.
#[derive(Clone)]
pub struct Ctx {
    pub db: Db,
    pub master: MasterKey,
    pub publisher: Publisher,
    pub write_lock: Arc<Mutex<()>>,
    pub http: Outbound,
}

impl Ctx {
    /// Runs `f` in a write transaction under the write lock; when it
    /// returns `true`, the snapshot is recompiled in the same transaction
    /// and published after the commit. What `f` changes (accounts, their
    /// tokens) cannot touch the client keys: the current ones are kept, not
    /// read and compiled again.
    pub async fn commit<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection, &MasterKey) -> Result<(T, bool)> + Send + 'static,
    {
        let (master, publisher, lock) = (
            self.master.clone(),
            self.publisher.clone(),
            self.write_lock.clone(),
        );
        self.db
            .run(move |conn| {
                let _serial = lock.lock().unwrap_or_else(PoisonError::into_inner);
                let (out, snapshot) = write_tx(conn, |conn| {
                    let (out, recompile) = f(conn, &master)?;
                    let snapshot = if recompile {
                        Some(recompile_core(
                            &load_core(conn)?,
                            &master,
                            &publisher.current(),
                        )?)
                    } else {
                        None
                    };
                    Ok((out, snapshot))
                })?;
                if let Some(s) = snapshot {
                    publisher.publish(s);
                }
                Ok(out)
            })
            .await
    }
}

/// The Admin API's handle on OAuth: the HTTP client for token endpoints and
/// the refresher.
#[derive(Clone)]
pub struct Handle {
    pub http: Outbound,
    pub refresher: Refresher,
}

impl Handle {
    /// A handle whose refreshes never run (tests of other parts).
    pub fn detached() -> Result<Self> {
        Ok(Self {
            http: Outbound::new(None)?,
            refresher: Refresher::detached(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
