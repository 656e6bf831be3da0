//! Master key rotation without downtime. Start the control plane with the
//! new `AIGW_MASTER_KEY` and the old one in `AIGW_MASTER_KEY_PREVIOUS`: every
//! sealed secret that opens only under an old key is re-sealed under the new
//! one, in one transaction, before the server serves. Data planes keep
//! serving their snapshot throughout (they never see the master key); once
//! the control plane is up, `AIGW_MASTER_KEY_PREVIOUS` can be removed.

use diesel::prelude::*;

use crate::compile::secret_context;
use crate::crypto::MasterKey;
use crate::db::config::{ProviderKeyRow, ProviderRow};
use crate::db::oauth as q;
use crate::db::schema::{provider_keys, providers};
use crate::db::{AnyConnection, write_tx};
use crate::error::{Error, Result};

/// `sealed` under `current`: None when it already is (or is empty, no
/// secret), else re-sealed from whichever previous key opens it.
fn resealed(
    current: &MasterKey,
    previous: &[MasterKey],
    sealed: &str,
    context: &str,
) -> Result<Option<String>> {
    if sealed.is_empty() || current.decrypt(sealed, context).is_ok() {
        return Ok(None);
    }
    let plain = previous
        .iter()
        .find_map(|old| old.decrypt(sealed, context).ok())
        .ok_or_else(|| Error::Decrypt(context.to_string()))?;
    current.encrypt(&plain, context).map(Some)
}

/// Re-seals the OAuth secrets: templates' client secrets, accounts'
/// access and refresh tokens, the verifiers and device codes of
/// connections under way.
fn reseal_oauth(
    conn: &mut AnyConnection,
    current: &MasterKey,
    previous: &[MasterKey],
) -> Result<usize> {
    use crate::oauth::{account, flow, template};
    let mut moved = 0;
    for t in q::templates(conn)? {
        let ctx = template::secret_context(&t.name);
        if let Some(s) = resealed(current, previous, &t.client_secret_enc, &ctx)? {
            q::set_template_secret(conn, &t.name, &s)?;
            moved += 1;
        }
    }
    for a in q::accounts(conn)? {
        let (p, k) = (&a.provider, &a.key_name);
        let access = resealed(
            current,
            previous,
            &a.access_enc,
            &account::access_context(p, k),
        )?;
        let refresh = resealed(
            current,
            previous,
            &a.refresh_enc,
            &account::refresh_context(p, k),
        )?;
        if access.is_some() || refresh.is_some() {
            moved += usize::from(access.is_some()) + usize::from(refresh.is_some());
            q::set_account_tokens(
                conn,
                p,
                k,
                access.as_deref().unwrap_or(&a.access_enc),
                refresh.as_deref().unwrap_or(&a.refresh_enc),
            )?;
        }
    }
    for f in q::flows(conn)? {
        let ctx = flow::flow_context(&f.state_hash);
        if let Some(s) = resealed(current, previous, &f.secret_enc, &ctx)? {
            q::set_flow_secret(conn, &f.state_hash, &s)?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Re-seals what only a previous key opens; returns how many secrets moved.
/// A secret no key opens is an error: starting would serve without it.
pub fn reseal(
    conn: &mut AnyConnection,
    current: &MasterKey,
    previous: &[MasterKey],
) -> Result<usize> {
    if previous.is_empty() {
        return Ok(0);
    }
    write_tx(conn, |conn| {
        let names: Vec<ProviderRow> = providers::table
            .select(ProviderRow::as_select())
            .load(conn)?;
        let keys: Vec<ProviderKeyRow> = provider_keys::table
            .select(ProviderKeyRow::as_select())
            .load(conn)?;
        let mut moved = 0;
        for k in keys {
            let provider = names
                .iter()
                .find(|p| p.id == k.provider_id)
                .map(|p| p.name.as_str())
                .unwrap_or_default();
            let context = secret_context(provider, &k.name);
            // An OAuth key's secret_enc is empty: its tokens are below.
            if let Some(s) = resealed(current, previous, &k.secret_enc, &context)? {
                diesel::update(provider_keys::table.filter(provider_keys::id.eq(&k.id)))
                    .set(provider_keys::secret_enc.eq(s))
                    .execute(conn)?;
                moved += 1;
            }
        }
        Ok(moved + reseal_oauth(conn, current, previous)?)
    })
}

#[cfg(test)]
mod tests {
    use aigw_proto::pb::admin::admin_service_server::AdminService;
    use aigw_proto::pb::admin::{ProviderKeySpec, ProviderSpec};

    use super::*;
    use crate::admin::testkit::{req, svc};
    use crate::compile::compile;
    use crate::db::config::load_all;
    use crate::db::testing::temp_db;

    #[tokio::test]
    async fn secrets_move_to_the_new_key_and_only_then_compile_with_it() {
        let t = temp_db();
        let s = svc(&t);
        s.upsert_provider(req(ProviderSpec {
            name: "p".into(),
            kind: "openai".into(),
            keys: vec![ProviderKeySpec {
                name: "k".into(),
                secret: "sk-rotate-me-123456".into(),
                weight: 1,
                oauth_template: String::new(),
            }],
            ..Default::default()
        }))
        .await
        .unwrap();
        let old = s.master.clone();
        let new = MasterKey::from_hex(&"6b".repeat(32)).unwrap();
        let compiled = |key: MasterKey| {
            t.db.run(move |c| {
                compile(&load_all(c)?, &key).map(|s| s.providers[0].keys[0].secret.clone())
            })
        };
        assert!(
            compiled(new.clone()).await.is_err(),
            "sealed under the old key"
        );
        let (n, o) = (new.clone(), old.clone());
        let moved = t.db.run(move |c| reseal(c, &n, &[o])).await.unwrap();
        assert_eq!(moved, 1);
        assert_eq!(compiled(new.clone()).await.unwrap(), "sk-rotate-me-123456");
        assert!(
            compiled(old.clone()).await.is_err(),
            "the old key opens nothing now"
        );
        // Again: nothing left to move. A key nobody knows is refused.
        let (n, o) = (new.clone(), old.clone());
        assert_eq!(t.db.run(move |c| reseal(c, &n, &[o])).await.unwrap(), 0);
        let stranger = MasterKey::from_hex(&"7c".repeat(32)).unwrap();
        let e =
            t.db.run(move |c| reseal(c, &stranger, &[old]))
                .await
                .unwrap_err();
        assert!(matches!(e, Error::Decrypt(_)), "{e}");
    }
}
