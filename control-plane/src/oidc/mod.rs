//! Signing in with OpenID Connect (SignInService). The control plane is the
//! relying party: it keeps the client secret, starts the authorization-code
//! flow with PKCE (S256), a state and a nonce, exchanges the code, verifies
//! the ID token itself (`token.rs`) and matches the person to a user:
//! by the (issuer, subject) pair linked before; else a not yet linked user
//! whose username is the token's verified email; else a new user with the
//! admin-chosen default role (and no usable password). admin-web only
//! carries the browser's redirects, so it never sees a secret but the
//! resulting session.

pub mod http;
pub mod state;
pub mod token;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aigw_proto::pb::admin::sign_in_service_server::SignInService;
use aigw_proto::pb::admin::{
    BeginOidcLoginRequest, BeginOidcLoginResult, CompleteOidcLoginRequest, LoginResult,
    OidcSettings, OidcSettingsRequest, SignInOptions, SignInOptionsRequest,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use self::http::{HttpClient, check_url};
use crate::admin::rbac::{self, Principal, PrincipalKind, Role};
use crate::admin::{AdminSvc, Change, Object, users, validate};
use crate::crypto;
use crate::db::identity::{UserRow, find_user, find_user_by_id};
use crate::db::oidc::{self, OidcIdentityRow, OidcSettingsRow, SETTINGS_ID};
use crate::db::{AnyConnection, now_ms};
use crate::error::{Error, Result};

/// Discovery documents and key sets are fetched again after this.
const CACHE_TTL: Duration = Duration::from_secs(600);
/// Code exchanges with the identity provider at once.
const MAX_EXCHANGES: usize = 8;
const SECRET_CONTEXT: &str = "oidc:client_secret";
/// Stored as the password hash of users created at sign-in: no password
/// verifies against it, until an admin sets one.
const NO_PASSWORD: &str = "!oidc-no-password";

/// The parts of the provider's discovery document we use.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

struct Cached<T> {
    key: String,
    value: T,
    at: Instant,
}

/// What the sign-in flows keep in memory: caches, the used states, and the
/// bound on code exchanges (sign-ins in progress are kept by the browsers,
/// see `state.rs`, so a restart ends none).
pub struct OidcState {
    http: HttpClient,
    /// States already used: each works once.
    used: Mutex<state::Used>,
    discovery: Mutex<Option<Cached<Discovery>>>,
    jwks: Mutex<Option<Cached<JwkSet>>>,
    exchanges: Semaphore,
}

impl OidcState {
    pub fn new(outbound: crate::outbound::Outbound) -> Result<Self> {
        Ok(Self {
            http: HttpClient::new(outbound),
            used: Mutex::default(),
            discovery: Mutex::default(),
            jwks: Mutex::default(),
            exchanges: Semaphore::new(MAX_EXCHANGES),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn cached<T: Clone>(slot: &Mutex<Option<Cached<T>>>, key: &str) -> Option<T> {
    lock(slot)
        .as_ref()
        .filter(|c| c.key == key && c.at.elapsed() < CACHE_TTL)
        .map(|c| c.value.clone())
}

fn store<T>(slot: &Mutex<Option<Cached<T>>>, key: &str, value: T) {
    *lock(slot) = Some(Cached {
        key: key.to_string(),
        value,
        at: Instant::now(),
    });
}

#[derive(Clone)]
pub struct SignInSvc {
    pub admin: AdminSvc,
    pub state: Arc<OidcState>,
}

/// The settings as stored, decoded.
struct Settings {
    row: OidcSettingsRow,
    scopes: Vec<String>,
}

fn settings_of(row: OidcSettingsRow) -> Settings {
    let scopes = serde_json::from_str(&row.scopes).unwrap_or_default();
    Settings { row, scopes }
}

fn public_view(s: &Settings) -> OidcSettings {
    OidcSettings {
        enabled: s.row.enabled,
        issuer: s.row.issuer.clone(),
        client_id: s.row.client_id.clone(),
        client_secret: String::new(),
        client_secret_set: !s.row.client_secret_enc.is_empty(),
        default_role: s.row.default_role.clone(),
        redirect_url: s.row.redirect_url.clone(),
        display_name: s.row.display_name.clone(),
        scopes: s.scopes.clone(),
    }
}

/// Checks settings an admin sends.
fn validate_settings(s: &OidcSettings) -> Result<Role> {
    let role = Role::parse(&s.default_role)?;
    if role == Role::Admin {
        return Err(Error::invalid(
            "default_role: new users may not become admins on their own; choose operator, viewer or member",
        ));
    }
    let limit = |what: &str, v: &str, max: usize| {
        if v.chars().count() > max || v.chars().any(char::is_control) {
            Err(Error::invalid(format!(
                "{what} must be at most {max} characters, without control characters"
            )))
        } else {
            Ok(())
        }
    };
    limit("client_id", &s.client_id, 256)?;
    limit("client_secret", &s.client_secret, 1024)?;
    limit("display_name", &s.display_name, 64)?;
    if s.scopes.len() > 20 {
        return Err(Error::invalid("at most 20 scopes"));
    }
    for sc in &s.scopes {
        if sc.is_empty() || sc.len() > 64 || !sc.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Error::invalid(format!("scope {sc:?} is not a valid scope")));
        }
    }
    for (what, v) in [("issuer", &s.issuer), ("redirect_url", &s.redirect_url)] {
        limit(what, v, 2048)?;
        if !v.is_empty() {
            check_url(what, v)?;
        }
    }
    if s.enabled && (s.issuer.is_empty() || s.client_id.is_empty() || s.redirect_url.is_empty()) {
        return Err(Error::invalid(
            "enabling sign-in needs issuer, client_id and redirect_url",
        ));
    }
    Ok(role)
}

/// A username for a new user from the token's claims: the preferred
/// username, else the email, else "sso-" and the subject; made valid and
/// unique.
fn new_username(conn: &mut AnyConnection, c: &token::Claims) -> Result<String> {
    let base: String = c
        .preferred_username
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .or(c.email.as_deref().filter(|s| !s.trim().is_empty()))
        .map_or_else(|| format!("sso-{}", c.sub), str::to_string)
        .chars()
        .map(|ch| {
            if ch.is_whitespace() || ch.is_control() {
                '-'
            } else {
                ch
            }
        })
        .take(100)
        .collect();
    for n in 1..100 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        if find_user(conn, &name)?.is_none() {
            validate::name("user", &name)?;
            return Ok(name);
        }
    }
    Err(Error::AlreadyExists(format!(
        "no free username for {base:?}"
    )))
}

impl SignInSvc {
    async fn settings(&self) -> Result<Option<Settings>> {
        Ok(self.admin.db.run(oidc::settings).await?.map(settings_of))
    }

    async fn enabled_settings(&self) -> Result<Settings> {
        match self.settings().await? {
            Some(s) if s.row.enabled => Ok(s),
            _ => Err(Error::FailedPrecondition(
                "sign-in with OpenID Connect is not enabled".into(),
            )),
        }
    }

    async fn discovery(&self, issuer: &str) -> Result<Discovery> {
        if let Some(d) = cached(&self.state.discovery, issuer) {
            return Ok(d);
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let d: Discovery = self.state.http.get_json(&url).await?;
        if d.issuer != issuer {
            return Err(Error::SignIn(format!(
                "the discovery document names issuer {:?}, not {issuer:?}",
                d.issuer
            )));
        }
        for (what, u) in [
            ("authorization_endpoint", &d.authorization_endpoint),
            ("token_endpoint", &d.token_endpoint),
            ("jwks_uri", &d.jwks_uri),
        ] {
            check_url(what, u)?;
        }
        store(&self.state.discovery, issuer, d.clone());
        Ok(d)
    }

    /// The issuer's keys; fetched again when the token names a key we do
    /// not have (the issuer rotated them).
    async fn jwks(&self, uri: &str, kid: Option<&str>) -> Result<JwkSet> {
        if let Some(set) = cached(&self.state.jwks, uri)
            && kid.is_none_or(|k| set.find(k).is_some())
        {
            return Ok(set);
        }
        let set: JwkSet = self.state.http.get_json(uri).await?;
        store(&self.state.jwks, uri, set.clone());
        Ok(set)
    }

    /// Finds or creates the user `claims` sign in as; returns them.
    async fn user_for(&self, issuer: &str, c: token::Claims, role: Role) -> Result<UserRow> {
        let subject = format!("{issuer} {}", c.sub);
        // The person signing in creates (or links) their own account.
        let shown = c
            .email
            .clone()
            .or_else(|| c.preferred_username.clone())
            .unwrap_or_else(|| c.sub.clone());
        let actor = Principal {
            role,
            user_id: None,
            username: Some(shown.clone()),
            kind: PrincipalKind::Session {
                session_id: String::new(),
                expires_at_ms: 0,
            },
        };
        let what = Object::new("user", shown);
        self.admin
            .mutate(&actor, what, move |conn, _| {
                let now = now_ms();
                if let Some(link) = oidc::find_identity(conn, &subject)? {
                    let user = find_user_by_id(conn, &link.user_id)?
                        .ok_or(Error::Unauthenticated("user no longer exists"))?;
                    oidc::touch_identity(conn, &subject, now)?;
                    return Ok((user, None));
                }
                let email = c.email.clone().unwrap_or_default();
                let verified = c.email_verified == Some(true) && !email.is_empty();
                let existing = match verified {
                    true => find_user(conn, &email)?,
                    false => None,
                };
                let (user, change) = match existing {
                    Some(u) if !oidc::user_is_linked(conn, &u.id)? => {
                        (u, Change::account("link_oidc").with("by verified email"))
                    }
                    _ => {
                        let name = new_username(conn, &c)?;
                        let u = users::insert(conn, &name, NO_PASSWORD.into(), role)?;
                        (
                            u,
                            Change::account("create_oidc").with(format!("role={role}")),
                        )
                    }
                };
                oidc::insert_identity(
                    conn,
                    &OidcIdentityRow {
                        subject,
                        user_id: user.id.clone(),
                        email,
                        created_at_ms: now,
                        last_login_ms: now,
                    },
                )?;
                Ok((user, Some(change)))
            })
            .await
    }
}

#[tonic::async_trait]
impl SignInService for SignInSvc {
    async fn get_sign_in_options(
        &self,
        _request: Request<SignInOptionsRequest>,
    ) -> Result<Response<SignInOptions>, Status> {
        let s = self.settings().await?;
        let on = s.as_ref().is_some_and(|s| s.row.enabled);
        Ok(Response::new(SignInOptions {
            password: true,
            oidc: on,
            oidc_display_name: match s {
                Some(s) if on => match s.row.display_name.as_str() {
                    "" => "Sign in with single sign-on".into(),
                    n => n.to_string(),
                },
                _ => String::new(),
            },
        }))
    }

    async fn get_oidc_settings(
        &self,
        request: Request<OidcSettingsRequest>,
    ) -> Result<Response<OidcSettings>, Status> {
        self.admin.caller(&request, rbac::GET_OIDC_SETTINGS).await?;
        let view = match self.settings().await? {
            Some(s) => public_view(&s),
            None => OidcSettings {
                default_role: Role::Viewer.as_str().into(),
                scopes: vec!["email".into(), "profile".into()],
                ..Default::default()
            },
        };
        Ok(Response::new(view))
    }

    async fn set_oidc_settings(
        &self,
        request: Request<OidcSettings>,
    ) -> Result<Response<OidcSettings>, Status> {
        let (p, _) = self.admin.caller(&request, rbac::SET_OIDC_SETTINGS).await?;
        let mut s = request.into_inner();
        s.issuer = s.issuer.trim().to_string();
        s.redirect_url = s.redirect_url.trim().to_string();
        validate_settings(&s)?;
        let detail = format!(
            "enabled={} issuer={} default_role={}",
            s.enabled, s.issuer, s.default_role
        );
        let row = self
            .admin
            .mutate(
                &p,
                Object::new("oidc_settings", SETTINGS_ID),
                move |conn, master| {
                    let old = oidc::settings(conn)?;
                    let secret = match (s.client_secret.is_empty(), &old) {
                        (false, _) => master.encrypt(&s.client_secret, SECRET_CONTEXT)?,
                        // A kept secret goes only to the issuer it was
                        // entered for (as providers' secrets do).
                        (true, Some(o))
                            if o.issuer != s.issuer && !o.client_secret_enc.is_empty() =>
                        {
                            return Err(Error::FailedPrecondition(
                                "re-enter client_secret: the issuer changed, and a kept secret \
                                 is never sent to a new one"
                                    .into(),
                            ));
                        }
                        (true, Some(o)) => o.client_secret_enc.clone(),
                        (true, None) => String::new(),
                    };
                    let row = OidcSettingsRow {
                        id: SETTINGS_ID.into(),
                        enabled: s.enabled,
                        issuer: s.issuer,
                        client_id: s.client_id,
                        client_secret_enc: secret,
                        default_role: s.default_role,
                        redirect_url: s.redirect_url,
                        display_name: s.display_name,
                        scopes: serde_json::to_string(&s.scopes)
                            .map_err(|e| Error::internal(e.to_string()))?,
                        updated_at_ms: now_ms(),
                    };
                    oidc::put_settings(conn, &row)?;
                    Ok((row, Some(Change::account("update").with(detail))))
                },
            )
            .await?;
        *lock(&self.state.discovery) = None;
        Ok(Response::new(public_view(&settings_of(row))))
    }

    async fn begin_oidc_login(
        &self,
        _request: Request<BeginOidcLoginRequest>,
    ) -> Result<Response<BeginOidcLoginResult>, Status> {
        let s = self.enabled_settings().await?;
        let d = self.discovery(&s.row.issuer).await?;
        let nonce = crypto::new_secret("")?;
        let verifier = format!("{}{}", crypto::new_secret("")?, crypto::new_secret("")?);
        let challenge = URL_SAFE_NO_PAD.encode(crypto::sha256(&verifier));
        // Kept by the browser, sealed (see `state.rs`): nothing is held here.
        let until_ms = now_ms().saturating_add(state::TTL.as_millis() as i64);
        let state = state::seal(
            &self.admin.master,
            &state::Pending {
                nonce: nonce.clone(),
                verifier,
                until_ms,
            },
        )?;
        let mut scope = vec!["openid".to_string()];
        scope.extend(s.scopes.iter().filter(|x| *x != "openid").cloned());
        let mut url = check_url("authorization_endpoint", &d.authorization_endpoint)?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &s.row.client_id)
            .append_pair("redirect_uri", &s.row.redirect_url)
            .append_pair("scope", &scope.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(Response::new(BeginOidcLoginResult {
            authorization_url: url.into(),
            state,
        }))
    }

    async fn complete_oidc_login(
        &self,
        request: Request<CompleteOidcLoginRequest>,
    ) -> Result<Response<LoginResult>, Status> {
        let CompleteOidcLoginRequest { state, code } = request.into_inner();
        let pending = state::open(&self.admin.master, &state, now_ms())?;
        if code.is_empty() || code.len() > 4096 {
            return Err(Error::SignIn("the identity provider sent no usable code".into()).into());
        }
        // Each state works once, whatever happens next.
        if !lock(&self.state.used).claim(&state) {
            return Err(Error::SignIn(
                "this sign-in expired or was already used; start again".into(),
            )
            .into());
        }
        let s = self.enabled_settings().await?;
        let role = Role::parse(&s.row.default_role)?;
        let d = self.discovery(&s.row.issuer).await?;
        let secret = match s.row.client_secret_enc.as_str() {
            "" => String::new(),
            sealed => self.admin.master.decrypt(sealed, SECRET_CONTEXT)?,
        };
        let claims = {
            let _slot = self
                .state
                .exchanges
                .acquire()
                .await
                .map_err(|_| Status::unavailable("shutting down"))?;
            let form = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", s.row.redirect_url.as_str()),
                ("code_verifier", pending.verifier.as_str()),
                ("client_id", s.row.client_id.as_str()),
            ];
            let basic = if secret.is_empty() {
                None
            } else {
                let enc = |v: &str| {
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                };
                Some(STANDARD.encode(format!("{}:{}", enc(&s.row.client_id), enc(&secret))))
            };
            let tokens: TokenResponse = self
                .state
                .http
                .post_form(
                    &d.token_endpoint,
                    &form,
                    basic,
                    &[secret.as_str(), code.as_str(), pending.verifier.as_str()],
                )
                .await?;
            let id_token = tokens.id_token.ok_or_else(|| {
                Error::SignIn("the identity provider returned no ID token".into())
            })?;
            let kid = token::key_id(&id_token)?;
            let jwks = self.jwks(&d.jwks_uri, kid.as_deref()).await?;
            token::verify(
                &id_token,
                &jwks,
                &d.issuer,
                &s.row.client_id,
                &pending.nonce,
            )?
        };
        let user = self.user_for(&d.issuer, claims, role).await?;
        if user.disabled {
            return Err(Error::Unauthenticated("user disabled").into());
        }
        let who = Principal {
            role: Role::parse(&user.role)?,
            user_id: Some(user.id.clone()),
            username: Some(user.username.clone()),
            kind: PrincipalKind::Session {
                session_id: String::new(),
                expires_at_ms: 0,
            },
        };
        let uid = user.id.clone();
        let teams = self.admin.read(users::team_names).await?;
        let (session_token, expires_at_ms) = self
            .admin
            .mutate(
                &who,
                Object::new("session", &user.username),
                move |conn, _| {
                    Ok((
                        users::open_session(conn, &uid)?,
                        Some(Change::account("login").with("oidc")),
                    ))
                },
            )
            .await?;
        Ok(Response::new(LoginResult {
            session_token,
            expires_at_ms,
            user: Some(users::info(&user, &teams)),
        }))
    }
}

#[cfg(test)]
mod tests;
