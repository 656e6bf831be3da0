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
use crate::db::oauth::{self as q, AccountRow, TemplateRow};
use crate::db::{config, now_ms, write_tx};
use crate::error::{Error, Result};
use crate::oauth::template::{self, SecretChange};
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
                let existing = q::find_template(conn, &input.name)?;
                let context = template::secret_context(&input.name);
                let builtin_secret = template::builtins()
                    .into_iter()
                    .find(|(n, _, _)| *n == input.name)
                    .and_then(|(_, _, s)| s.map(str::to_string));
                let old_secret = match &existing {
                    Some(e) if !e.client_secret_enc.is_empty() => {
                        Some(master.decrypt(&e.client_secret_enc, &context)?)
                    }
                    Some(_) => None,
                    None => builtin_secret,
                };
                let secret = match &input.secret {
                    SecretChange::Keep => old_secret.clone(),
                    SecretChange::Remove => None,
                    SecretChange::Set(s) => Some(s.clone()),
                };
                let spec = serde_json::to_string(&input.spec)
                    .map_err(|e| Error::internal(e.to_string()))?;
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
            .mutate(&p, what, move |conn, _| {
                let builtin = template::builtins().iter().any(|(n, _, _)| *n == name);
                let rows = config::load_all(conn)?;
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
                let deleted = q::delete_template(conn, &name)?;
                Ok((
                    DeleteResult { deleted },
                    deleted.then(|| Change::new("delete")),
                ))
            })
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
