//! Connecting an account: the authorization-code flow with PKCE (S256) and
//! the device authorization grant (RFC 8628). A flow is a row named by the
//! SHA-256 of its state; it is used once (deleted when claimed) and
//! expires. The PKCE verifier and the device code are sealed in it.

use std::collections::BTreeMap;

use aigw_proto::pb::admin::{OAuthConnectRequest, OAuthConnectStart, OAuthDeviceStart};
use serde_json::Value;

use super::account::{self, REVOKED};
use super::pkce::{self, Pasted};
use super::template::{self, Resolved};
use super::token::{self, Grant, Tokens};
use crate::crypto::{self, MasterKey};
use crate::db::oauth::{self as q, AccountRow, FlowRow};
use crate::db::{AnyConnection, config, now_ms};
use crate::error::{Error, Result};
use crate::outbound::Outbound;

/// An authorization code flow lasts this long.
pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Most flows under way at once (expired ones are swept first).
pub const MAX_FLOWS: usize = 256;
const MAX_PARAMS: usize = 16;

pub fn flow_context(state_hash: &str) -> String {
    format!("oauth_flow:{state_hash}")
}

/// The template of the OAuth key `provider`/`key`, which must exist.
pub fn key_template(
    conn: &mut AnyConnection,
    master: &MasterKey,
    provider: &str,
    key: &str,
) -> Result<Resolved> {
    let p = config::find_provider(conn, provider)?
        .ok_or_else(|| Error::NotFound(format!("provider {provider:?} does not exist")))?;
    let k = config::keys_of(conn, &p.id)?
        .into_iter()
        .find(|k| k.name == key)
        .ok_or_else(|| Error::NotFound(format!("provider {provider:?} has no key {key:?}")))?;
    if k.oauth_template.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "provider {provider:?} key {key:?} is an API key, not an OAuth account (set its oauth_template)"
        )));
    }
    template::find(&q::templates(conn)?, master, &k.oauth_template)?.ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "oauth template {:?} of key {key:?} does not exist",
            k.oauth_template
        ))
    })
}

fn check_params(params: &BTreeMap<String, String>) -> Result<String> {
    if params.len() > MAX_PARAMS {
        return Err(Error::invalid(format!("params: at most {MAX_PARAMS}")));
    }
    for (k, v) in params {
        let name_ok = !k.is_empty()
            && k.len() <= 64
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !name_ok || v.len() > 1024 || v.chars().any(char::is_control) {
            return Err(Error::invalid(format!(
                "params[{:?}]: names are 1 to 64 of A-Za-z0-9_-., values at most 1024 characters without control characters",
                pkce::clip(k)
            )));
        }
    }
    serde_json::to_string(params).map_err(|e| Error::internal(e.to_string()))
}

/// Sweeps expired flows and checks there is room for one more.
fn make_room(conn: &mut AnyConnection, now: i64) -> Result<()> {
    q::sweep_flows(conn, now)?;
    if q::flows(conn)?.len() >= MAX_FLOWS {
        return Err(Error::FailedPrecondition(format!(
            "{MAX_FLOWS} connections are under way; finish or let some expire (10 minutes) first"
        )));
    }
    Ok(())
}

/// Starts an authorization-code flow: stores it and returns the URL to open.
pub fn start_code(
    conn: &mut AnyConnection,
    master: &MasterKey,
    req: &OAuthConnectRequest,
) -> Result<OAuthConnectStart> {
    let params = check_params(&req.params)?;
    let t = key_template(conn, master, &req.provider, &req.key)?;
    if t.spec.authorize_url.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "oauth template {:?} has no authorize_url: use StartOAuthDevice",
            t.name
        )));
    }
    let now = now_ms();
    make_room(conn, now)?;
    let (state, verifier) = (pkce::state()?, pkce::verifier()?);
    let state_hash = crypto::sha256_hex(&state);
    let mut url = url::Url::parse(&t.spec.authorize_url).map_err(|e| {
        Error::FailedPrecondition(format!("oauth template {:?}: authorize_url: {e}", t.name))
    })?;
    {
        let mut qp = url.query_pairs_mut();
        for (k, v) in &t.spec.authorize_params {
            qp.append_pair(k, v);
        }
        qp.append_pair("response_type", "code")
            .append_pair("client_id", &t.spec.client_id)
            .append_pair("redirect_uri", &t.spec.redirect_uri);
        if !t.spec.scopes.is_empty() {
            qp.append_pair("scope", &t.spec.scopes.join(" "));
        }
        qp.append_pair("code_challenge", &pkce::challenge(&verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state);
    }
    let expires = now + CODE_TTL_MS;
    q::insert_flow(
        conn,
        &FlowRow {
            secret_enc: master.encrypt(&verifier, &flow_context(&state_hash))?,
            state_hash,
            provider: req.provider.clone(),
            key_name: req.key.clone(),
            template: t.name.clone(),
            kind: "code".into(),
            redirect_uri: t.spec.redirect_uri.clone(),
            params,
            interval_secs: 0,
            next_poll_at_ms: 0,
            expires_at_ms: expires,
            created_at_ms: now,
        },
    )?;
    Ok(OAuthConnectStart {
        authorize_url: url.to_string(),
        state,
        redirect_uri: t.spec.redirect_uri,
        expires_at_ms: expires,
    })
}

/// A claimed code flow: what the exchange needs. No `Debug`: secrets.
pub struct Claimed {
    pub flow: FlowRow,
    pub template: Resolved,
    pub code: String,
    pub state: String,
    pub verifier: String,
}

/// Claims the code flow a pasted answer belongs to: the state (given, or
/// carried by the paste; both must agree) must name a live code flow, which
/// is deleted here, so it serves once.
pub fn claim_code(
    conn: &mut AnyConnection,
    master: &MasterKey,
    given_state: &str,
    pasted: Pasted,
) -> Result<Claimed> {
    let state = match (given_state.trim(), pasted.state.as_deref()) {
        ("", None) => {
            return Err(Error::invalid(
                "state: give the state StartOAuthConnect returned, or paste the whole redirect URL",
            ));
        }
        ("", Some(s)) => s.to_string(),
        (g, Some(s)) if g != s => {
            return Err(Error::FailedPrecondition(
                "the pasted redirect belongs to another connection (its state differs)".into(),
            ));
        }
        (g, _) => g.to_string(),
    };
    let hash = crypto::sha256_hex(&state);
    let flow = q::find_flow(conn, &hash)?
        .filter(|f| f.kind == "code")
        .ok_or_else(|| {
            Error::FailedPrecondition(
                "unknown or already used state: start the connection again".into(),
            )
        })?;
    q::take_flow(conn, &hash)?;
    if flow.expires_at_ms <= now_ms() {
        return Err(Error::FailedPrecondition(
            "the connection expired (10 minutes): start it again".into(),
        ));
    }
    let template = key_template(conn, master, &flow.provider, &flow.key_name)?;
    if template.name != flow.template {
        return Err(Error::FailedPrecondition(
            "the key's oauth template changed since the connection started: start it again".into(),
        ));
    }
    let verifier = master.decrypt(&flow.secret_enc, &flow_context(&hash))?;
    Ok(Claimed {
        flow,
        template,
        code: pasted.code,
        state,
        verifier,
    })
}

/// Exchanges a claimed code at the token endpoint.
pub async fn exchange(http: &Outbound, c: &Claimed) -> Result<Tokens> {
    let req = token::request(
        &c.template,
        &Grant::Code {
            code: &c.code,
            verifier: &c.verifier,
            redirect_uri: &c.flow.redirect_uri,
            state: &c.state,
        },
    )
    .ok_or_else(|| Error::FailedPrecondition("the template's token_url is unusable".into()))?;
    let answer = http.call(req, token::TIMEOUT).await;
    token::parse(&answer, &c.template, &[&c.code, &c.verifier])
        .map_err(|e| Error::FailedPrecondition(format!("the token endpoint gave no tokens: {e}")))
}

/// Stores the tokens of a completed connection as the key's account (the
/// key must still be an OAuth key of the flow's template). A health result
/// about an earlier token no longer says anything: it is dropped.
pub fn store(
    conn: &mut AnyConnection,
    master: &MasterKey,
    flow: &FlowRow,
    tokens: &Tokens,
) -> Result<AccountRow> {
    let t = key_template(conn, master, &flow.provider, &flow.key_name)?;
    if t.name != flow.template {
        return Err(Error::FailedPrecondition(
            "the key's oauth template changed while connecting: start again".into(),
        ));
    }
    let refresh = tokens.refresh_token.as_deref().ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "oauth template {:?}: the server issued no refresh token, so the account could not be kept alive (ask for offline access: a scope such as offline_access, or access_type=offline)",
            t.name
        ))
    })?;
    let params: Value = serde_json::from_str(&flow.params).unwrap_or(Value::Null);
    let claims = account::claims(tokens, &params, None);
    account::check_headers(&t, &claims)?;
    let now = now_ms();
    let row = account::row(
        master,
        &flow.provider,
        &flow.key_name,
        &t.name,
        tokens,
        refresh,
        claims,
        now,
        now,
    )?;
    q::put_account(conn, &row)?;
    crate::db::health::forget(conn, &flow.provider, &flow.key_name)?;
    Ok(row)
}

/// Starts a device authorization: asks the provider for a user code and
/// stores the flow.
pub async fn start_device(
    db: &crate::db::Db,
    master: &MasterKey,
    http: &Outbound,
    req: OAuthConnectRequest,
) -> Result<OAuthDeviceStart> {
    let params = check_params(&req.params)?;
    let (m, p, k) = (master.clone(), req.provider.clone(), req.key.clone());
    let t = db.run(move |conn| key_template(conn, &m, &p, &k)).await?;
    if t.spec.device_authorization_url.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "oauth template {:?} offers no device authorization (no device_authorization_url): use StartOAuthConnect",
            t.name
        )));
    }
    let call = token::device_request(&t)
        .ok_or_else(|| Error::FailedPrecondition("device_authorization_url is unusable".into()))?;
    let d = token::parse_device(&http.call(call, token::TIMEOUT).await, &t).map_err(|e| {
        Error::FailedPrecondition(format!("the device authorization endpoint refused: {e}"))
    })?;
    let state = pkce::state()?;
    let hash = crypto::sha256_hex(&state);
    let now = now_ms();
    let row = FlowRow {
        secret_enc: master.encrypt(&d.device_code, &flow_context(&hash))?,
        state_hash: hash,
        provider: req.provider,
        key_name: req.key,
        template: t.name.clone(),
        kind: "device".into(),
        redirect_uri: String::new(),
        params,
        interval_secs: i32::try_from(d.interval_secs).unwrap_or(5),
        next_poll_at_ms: now + d.interval_secs * 1000,
        expires_at_ms: now + d.expires_in_secs * 1000,
        created_at_ms: now,
    };
    let expires = row.expires_at_ms;
    db.run(move |conn| {
        crate::db::write_tx(conn, |conn| {
            make_room(conn, now)?;
            q::insert_flow(conn, &row)
        })
    })
    .await?;
    Ok(OAuthDeviceStart {
        state,
        user_code: d.user_code,
        verification_uri: d.verification_uri,
        verification_uri_complete: d.verification_uri_complete,
        expires_at_ms: expires,
        interval_secs: u32::try_from(d.interval_secs).unwrap_or(5),
    })
}

/// What one poll found.
pub enum Poll {
    /// Too early, or the user has not finished: ask again after `interval`.
    Pending {
        interval_secs: u32,
        slow_down: bool,
        detail: String,
    },
    Expired,
    Denied(String),
    /// Tokens issued: the flow is claimed (deleted); store them.
    Done(Box<(FlowRow, Tokens)>),
}

/// Polls a device flow once, never more often than its interval: the
/// poll slot is taken in the database before the token endpoint is asked,
/// so concurrent polls cannot make the provider answer `slow_down`.
pub async fn poll_device(
    db: &crate::db::Db,
    master: &MasterKey,
    http: &Outbound,
    state: &str,
) -> Result<Poll> {
    let hash = crypto::sha256_hex(state.trim());
    let (m, h) = (master.clone(), hash.clone());
    // (flow, template, device code) when it is time to ask, else a result.
    let claimed = db
        .run(move |conn| {
            crate::db::write_tx(conn, |conn| {
                let Some(flow) = q::find_flow(conn, &h)?.filter(|f| f.kind == "device") else {
                    return Err(Error::FailedPrecondition(
                        "unknown or finished device connection: start it again".into(),
                    ));
                };
                let now = now_ms();
                if flow.expires_at_ms <= now {
                    q::take_flow(conn, &h)?;
                    return Ok(Err(Poll::Expired));
                }
                let interval = u32::try_from(flow.interval_secs).unwrap_or(5);
                if now < flow.next_poll_at_ms {
                    return Ok(Err(Poll::Pending {
                        interval_secs: interval,
                        slow_down: false,
                        detail: String::new(),
                    }));
                }
                q::set_next_poll(
                    conn,
                    &h,
                    flow.interval_secs,
                    now + i64::from(interval) * 1000,
                )?;
                let t = key_template(conn, &m, &flow.provider, &flow.key_name)?;
                let code = m.decrypt(&flow.secret_enc, &flow_context(&h))?;
                Ok(Ok((flow, t, code)))
            })
        })
        .await?;
    let (flow, t, device_code) = match claimed {
        Ok(c) => c,
        Err(poll) => return Ok(poll),
    };
    let req = token::request(
        &t,
        &Grant::Device {
            device_code: &device_code,
        },
    )
    .ok_or_else(|| Error::FailedPrecondition("the template's token_url is unusable".into()))?;
    let answer = http.call(req, token::TIMEOUT).await;
    let interval = u32::try_from(flow.interval_secs).unwrap_or(5);
    let finish =
        |h: String| db.run(move |conn| crate::db::write_tx(conn, |conn| q::take_flow(conn, &h)));
    match token::parse(&answer, &t, &[&device_code]) {
        Ok(tokens) => {
            if !finish(hash).await? {
                return Err(Error::FailedPrecondition(
                    "this device connection was finished by another call".into(),
                ));
            }
            Ok(Poll::Done(Box::new((flow, tokens))))
        }
        Err(e) => match e.code() {
            "authorization_pending" => Ok(Poll::Pending {
                interval_secs: interval,
                slow_down: false,
                detail: String::new(),
            }),
            "slow_down" => {
                // RFC 8628 §3.5: add 5 seconds to the interval from now on.
                let slower = flow.interval_secs.saturating_add(5).min(120);
                let h = hash.clone();
                db.run(move |conn| {
                    q::set_next_poll(conn, &h, slower, now_ms() + i64::from(slower) * 1000)
                })
                .await?;
                Ok(Poll::Pending {
                    interval_secs: u32::try_from(slower).unwrap_or(10),
                    slow_down: true,
                    detail: String::new(),
                })
            }
            "expired_token" => {
                finish(hash).await?;
                Ok(Poll::Expired)
            }
            "access_denied" => {
                finish(hash).await?;
                Ok(Poll::Denied(e.to_string()))
            }
            "" => Ok(Poll::Pending {
                interval_secs: interval,
                slow_down: false,
                detail: format!(
                    "the token endpoint did not answer usefully, asking again later: {e}"
                ),
            }),
            _ => {
                finish(hash).await?;
                Err(Error::FailedPrecondition(format!(
                    "the token endpoint refused the device code: {e}"
                )))
            }
        },
    }
}

/// Whether an account can be refreshed (a revoked one needs reconnecting).
pub fn refreshable(a: &AccountRow) -> bool {
    a.status != REVOKED
}
