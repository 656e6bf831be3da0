//! The Admin API's OAuth calls: templates, connecting accounts, refreshing
//! them and showing their state. Connecting talks to the OAuth server
//! outside any transaction; what it yields is stored through
//! `AdminSvc::mutate` (audited, recompiled, published).

use aigw_proto::pb::admin::{
    CredentialRef, DeleteResult, ListRequest, NameRequest, OAuthAccount, OAuthAccountList,
    OAuthCompleteRequest, OAuthConnectRequest, OAuthConnectStart, OAuthDeviceStart,
    OAuthPollRequest, OAuthPollResult, OAuthTemplateList, OAuthTemplateSpec, UpsertResult,
};
use tonic::{Request, Response, Status};

use super::{AdminSvc, Change, Object, rbac};
use crate::crypto::MasterKey;
use crate::db::oauth::{self as q, AccountRow, TemplateRow};
use crate::db::{AnyConnection, config, now_ms, write_tx};
use crate::error::{Error, Result};
use crate::oauth::template::{self, SecretChange, Template};
use crate::oauth::{account, flow, pkce};

type Reply<T> = Result<Response<T>, Status>;

fn key_object(provider: &str, key: &str) -> Object {
    Object::new("provider_key", format!("{provider}/{key}"))
}

/// The account's view with its headers resolved.
fn account_info(
    conn: &mut crate::db::AnyConnection,
    master: &crate::crypto::MasterKey,
    a: &AccountRow,
) -> Result<OAuthAccount> {
    Ok(account::info(
        a,
        account::headers(&q::templates(conn)?, master, a),
    ))
}

/// Stores the tokens a connection produced, audited as "connect".
async fn store(
    svc: &AdminSvc,
    who: &rbac::Principal,
    f: q::FlowRow,
    tokens: crate::oauth::token::Tokens,
) -> Result<OAuthAccount> {
    let what = key_object(&f.provider, &f.key_name);
    let detail = format!("template={}", f.template);
    svc.mutate(who, what, move |conn, master| {
        let row = flow::store(conn, master, &f, &tokens)?;
        let info = account_info(conn, master, &row)?;
        Ok((info, Some(Change::new("connect").with(detail))))
    })
    .await
}

/// The endpoints of a template that stored secrets are sent to: the token
/// endpoint gets the client secret and every account's refresh token, the
/// device endpoint the client secret, the API base URL the accounts' access
/// tokens (for providers that leave their base_url to it).
fn secret_endpoints(t: &Template) -> [(&'static str, &str); 3] {
    [
        ("token_url", &t.token_url),
        ("device_authorization_url", &t.device_authorization_url),
        ("api_base_url", &t.api_base_url),
    ]
}

/// Refuses an upsert that would send stored secrets to a new address: a
/// secret was entered (an account connected) for the endpoints in force
/// then, and following a changed endpoint would let whoever runs it read
/// the write-only secret. The client secret must then be entered again (or
/// removed), and no account may be connected with the template: their
/// tokens cannot be entered again, only connected again.
fn refuse_moving_secrets(
    conn: &mut AnyConnection,
    input: &template::TemplateInput,
    current: &Template,
    has_secret: bool,
) -> Result<()> {
    let moved: Vec<&str> = secret_endpoints(current)
        .into_iter()
        .zip(secret_endpoints(&input.spec))
        .filter(|((_, old), (_, new))| old != new)
        .map(|((field, _), _)| field)
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    let moved = moved.join(", ");
    if has_secret && input.secret == SecretChange::Keep {
        return Err(Error::FailedPrecondition(format!(
            "re-enter the client_secret of oauth template {:?} (or \"-\" for none): its {moved} changed, and a kept secret is never sent to a new address",
            input.name
        )));
    }
    let connected: Vec<String> = q::accounts(conn)?
        .into_iter()
        .filter(|a| a.template == input.name)
        .map(|a| format!("{}/{}", a.provider, a.key_name))
        .collect();
    if !connected.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "oauth template {:?}: its {moved} changed while accounts {} are connected with it, whose tokens are never sent to a new address; remove those keys from their providers first (this disconnects them), then add them back and connect them again",
            input.name,
            connected.join(", ")
        )));
    }
    Ok(())
}

/// Creates or updates a stored template (a built-in's name overrides the
/// built-in); the client secret is sealed, kept when the spec leaves it
/// empty unless an endpoint it goes to changes ([`refuse_moving_secrets`]).
/// What UpsertOAuthTemplate and Apply do.
pub(super) fn upsert_template(
    conn: &mut AnyConnection,
    master: &MasterKey,
    input: &template::TemplateInput,
) -> Result<(UpsertResult, Option<Change>)> {
    let existing = q::find_template(conn, &input.name)?;
    let context = template::secret_context(&input.name);
    // The template in force now: the stored one, else the built-in.
    let current = template::find(existing.as_slice(), master, &input.name)?;
    let old_secret = current.as_ref().and_then(|t| t.client_secret.clone());
    if let Some(current) = &current {
        refuse_moving_secrets(conn, input, &current.spec, old_secret.is_some())?;
    }
    let secret = match &input.secret {
        SecretChange::Keep => old_secret.clone(),
        SecretChange::Remove => None,
        SecretChange::Set(s) => Some(s.clone()),
    };
    let spec = serde_json::to_string(&input.spec).map_err(|e| Error::internal(e.to_string()))?;
    if let Some(e) = &existing
        && e.spec == spec
        && secret == old_secret
    {
        return Ok((super::providers::unchanged(), None));
    }
    let now = now_ms();
    let row = TemplateRow {
        name: input.name.clone(),
        spec,
        client_secret_enc: match &secret {
            Some(s) => master.encrypt(s, &context)?,
            None => String::new(),
        },
        created_at_ms: existing.as_ref().map_or(now, |e| e.created_at_ms),
        updated_at_ms: now,
    };
    q::put_template(conn, &row, existing.is_some())?;
    let created = existing.is_none();
    let action = if created { "create" } else { "update" };
    Ok((
        UpsertResult {
            created,
            changed: true,
            generated_key: String::new(),
        },
        Some(Change::new(action).with(format!("token_url={}", input.spec.token_url))),
    ))
}

/// Deletes a stored template, unless keys use it and no built-in of that
/// name would take its place. What DeleteOAuthTemplate and Apply's prune do.
pub(super) fn delete_template(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<(DeleteResult, Option<Change>)> {
    let builtin = template::builtins().iter().any(|(n, _, _)| *n == name);
    // The provider keys; not every client key.
    let rows = config::load_core(conn)?;
    let used: Vec<&str> = rows
        .keys
        .iter()
        .filter(|k| k.oauth_template == name)
        .map(|k| k.name.as_str())
        .collect();
    if !builtin && !used.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "oauth template {name:?} is used by keys {}; remove them first",
            used.join(", ")
        )));
    }
    let deleted = q::delete_template(conn, name)?;
    Ok((
        DeleteResult { deleted },
        deleted.then(|| Change::new("delete")),
    ))
}

impl AdminSvc {
    pub(super) async fn upsert_oauth_template_impl(
        &self,
        request: Request<OAuthTemplateSpec>,
    ) -> Reply<UpsertResult> {
        let (p, _) = self.caller(&request, rbac::UPSERT_OAUTH_TEMPLATE).await?;
        let input = template::validate(request.into_inner())?;
        let what = Object::new("oauth_template", &input.name);
        let r = self
            .mutate(&p, what, move |conn, master| {
                upsert_template(conn, master, &input)
            })
            .await?;
        Ok(Response::new(r))
    }

    pub(super) async fn delete_oauth_template_impl(
        &self,
        request: Request<NameRequest>,
    ) -> Reply<DeleteResult> {
        let (p, _) = self.caller(&request, rbac::DELETE_OAUTH_TEMPLATE).await?;
        let name = request.into_inner().name;
        let what = Object::new("oauth_template", &name);
        let r = self
            .mutate(&p, what, move |conn, _| delete_template(conn, &name))
            .await?;
        Ok(Response::new(r))
    }

    pub(super) async fn list_oauth_templates_impl(
        &self,
        request: Request<ListRequest>,
    ) -> Reply<OAuthTemplateList> {
        self.caller(&request, rbac::LIST_OAUTH_TEMPLATES).await?;
        let master = self.master.clone();
        let templates = self
            .read(move |conn| {
                Ok(template::all(&q::templates(conn)?, &master)?
                    .iter()
                    .map(template::info)
                    .collect())
            })
            .await?;
        Ok(Response::new(OAuthTemplateList { templates }))
    }

    pub(super) async fn start_oauth_connect_impl(
        &self,
        request: Request<OAuthConnectRequest>,
    ) -> Reply<OAuthConnectStart> {
        self.caller(&request, rbac::START_OAUTH_CONNECT).await?;
        let req = request.into_inner();
        let master = self.master.clone();
        let started = self
            .db
            .run(move |conn| write_tx(conn, |conn| flow::start_code(conn, &master, &req)))
            .await?;
        Ok(Response::new(started))
    }

    pub(super) async fn complete_oauth_connect_impl(
        &self,
        request: Request<OAuthCompleteRequest>,
    ) -> Reply<OAuthAccount> {
        let (p, _) = self.caller(&request, rbac::COMPLETE_OAUTH_CONNECT).await?;
        let req = request.into_inner();
        let pasted = pkce::parse_pasted(&req.code)?;
        let master = self.master.clone();
        let claimed = self
            .db
            .run(move |conn| {
                write_tx(conn, |conn| {
                    flow::claim_code(conn, &master, &req.state, pasted)
                })
            })
            .await?;
        let tokens = flow::exchange(&self.oauth.http, &claimed).await?;
        let info = store(self, &p, claimed.flow, tokens).await?;
        Ok(Response::new(info))
    }

    pub(super) async fn start_oauth_device_impl(
        &self,
        request: Request<OAuthConnectRequest>,
    ) -> Reply<OAuthDeviceStart> {
        self.caller(&request, rbac::START_OAUTH_DEVICE).await?;
        let started = flow::start_device(
            &self.db,
            &self.master,
            &self.oauth.http,
            request.into_inner(),
        )
        .await?;
        Ok(Response::new(started))
    }

    pub(super) async fn poll_oauth_device_impl(
        &self,
        request: Request<OAuthPollRequest>,
    ) -> Reply<OAuthPollResult> {
        let (p, _) = self.caller(&request, rbac::POLL_OAUTH_DEVICE).await?;
        let state = request.into_inner().state;
        let polled = flow::poll_device(&self.db, &self.master, &self.oauth.http, &state).await?;
        let result = match polled {
            flow::Poll::Pending {
                interval_secs,
                slow_down,
                detail,
            } => OAuthPollResult {
                status: if slow_down { "slow_down" } else { "pending" }.into(),
                interval_secs,
                account: None,
                detail,
            },
            flow::Poll::Expired => OAuthPollResult {
                status: "expired".into(),
                detail: "the user code expired: start again".into(),
                ..Default::default()
            },
            flow::Poll::Denied(detail) => OAuthPollResult {
                status: "denied".into(),
                detail,
                ..Default::default()
            },
            flow::Poll::Done(done) => {
                let (f, tokens) = *done;
                OAuthPollResult {
                    status: "done".into(),
                    account: Some(store(self, &p, f, tokens).await?),
                    ..Default::default()
                }
            }
        };
        Ok(Response::new(result))
    }

    pub(super) async fn refresh_oauth_account_impl(
        &self,
        request: Request<CredentialRef>,
    ) -> Reply<OAuthAccount> {
        self.caller(&request, rbac::REFRESH_OAUTH_ACCOUNT).await?;
        let r = request.into_inner();
        let row = self
            .oauth
            .refresher
            .refresh_now(&r.provider, &r.key)
            .await?;
        let master = self.master.clone();
        let info = self
            .read(move |conn| account_info(conn, &master, &row))
            .await?;
        Ok(Response::new(info))
    }

    pub(super) async fn list_oauth_accounts_impl(
        &self,
        request: Request<ListRequest>,
    ) -> Reply<OAuthAccountList> {
        self.caller(&request, rbac::LIST_OAUTH_ACCOUNTS).await?;
        let master = self.master.clone();
        let accounts = self
            .read(move |conn| {
                let templates = q::templates(conn)?;
                let accounts = q::accounts(conn)?;
                Ok(config::list_providers(conn)?
                    .into_iter()
                    .flat_map(|(p, keys)| {
                        keys.into_iter()
                            .filter(|k| !k.oauth_template.is_empty())
                            .map(|k| (p.name.clone(), k))
                            .collect::<Vec<_>>()
                    })
                    .map(|(p, k)| {
                        account::info_of(
                            &templates,
                            &master,
                            &accounts,
                            &p,
                            &k.name,
                            &k.oauth_template,
                        )
                    })
                    .collect())
            })
            .await?;
        Ok(Response::new(OAuthAccountList { accounts }))
    }
}
