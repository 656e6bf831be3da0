//! AdminService: providers, pricing, client keys, routes and the connected
//! data planes. `apply` is a client of exactly this service.

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::{
    ApplyProgress, ApplyRequest, BudgetInfo, BudgetList, BudgetSpec, ClientKeyList, ClientKeySpec,
    CredentialHealth, CredentialHealthList, CredentialHealthQuery, CredentialRef, DeleteResult,
    ListRequest, NameRequest, NodeCredentialCreated, NodeCredentialList, NodeCredentialSpec,
    NodeList, OAuthAccount, OAuthAccountList, OAuthCompleteRequest, OAuthConnectRequest,
    OAuthConnectStart, OAuthDeviceStart, OAuthPollRequest, OAuthPollResult, OAuthTemplateList,
    OAuthTemplateSpec, PriceList, PriceSpec, ProviderList, ProviderSpec, RevokeResult, RouteList,
    RouteSpec, TeamInfo, TeamList, TeamSpec, UpsertResult, WebhookInfo, WebhookList, WebhookSpec,
};
use std::collections::HashMap;

use tonic::{Request, Response, Status};

use super::rbac::{self, Target};
use super::{AdminSvc, Change, Object, budgets, client_keys, nodes, pricing, providers, routes};
use crate::db::config;
use crate::db::identity::find_user;
use crate::db::now_ms;
use crate::error::{Error, Result};

fn deleted(deleted: bool) -> (DeleteResult, Option<Change>) {
    (
        DeleteResult { deleted },
        deleted.then(|| Change::new("delete")),
    )
}

fn upserted((r, _): (UpsertResult, bool), detail: String) -> (UpsertResult, Option<Change>) {
    let change = Change::of_upsert(&r).map(|c| c.with(detail));
    (r, change)
}

#[tonic::async_trait]
impl AdminService for AdminSvc {
    type ApplyStream = tokio_stream::Iter<std::vec::IntoIter<Result<ApplyProgress, Status>>>;

    async fn apply(
        &self,
        request: Request<tonic::Streaming<ApplyRequest>>,
    ) -> Result<Response<Self::ApplyStream>, Status> {
        let chunks = self.apply_rpc(request).await?;
        Ok(Response::new(tokio_stream::iter(
            chunks.into_iter().map(Ok).collect::<Vec<_>>(),
        )))
    }

    async fn upsert_provider(
        &self,
        request: Request<ProviderSpec>,
    ) -> Result<Response<UpsertResult>, Status> {
        let (p, _) = self.caller(&request, rbac::UPSERT_PROVIDER).await?;
        let input = providers::validate(request.into_inner())?;
        let what = Object::new("provider", input.name());
        let r = self
            .mutate(&p, what, move |conn, master| {
                Ok(upserted(
                    providers::upsert(conn, master, &input)?,
                    input.summary(),
                ))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn delete_provider(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteResult>, Status> {
        let (p, _) = self.caller(&request, rbac::DELETE_PROVIDER).await?;
        let name = request.into_inner().name;
        let what = Object::new("provider", &name);
        let r = self
            .mutate(&p, what, move |conn, _| {
                routes::check_unused(conn, &name)?;
                let gone = config::delete_provider(conn, &name)?;
                crate::oauth::account::forget_stale(conn)?;
                Ok(deleted(gone))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn list_providers(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<ProviderList>, Status> {
        self.caller(&request, rbac::LIST_PROVIDERS).await?;
        let master = self.master.clone();
        let providers = self
            .read(move |conn| providers::list(conn, &master))
            .await?;
        Ok(Response::new(ProviderList { providers }))
    }

    async fn upsert_price(
        &self,
        request: Request<PriceSpec>,
    ) -> Result<Response<UpsertResult>, Status> {
        let (p, _) = self.caller(&request, rbac::UPSERT_PRICE).await?;
        let spec = request.into_inner();
        pricing::validate(&spec)?;
        let what = Object::new("price", &spec.model);
        let r = self
            .mutate(&p, what, move |conn, _| {
                let mut detail = format!("input={} output={}", spec.input, spec.output);
                if let Some(c) = spec.cached_input {
                    detail.push_str(&format!(" cached_input={c}"));
                }
                Ok(upserted(pricing::upsert(conn, &spec)?, detail))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn delete_price(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteResult>, Status> {
        let (p, _) = self.caller(&request, rbac::DELETE_PRICE).await?;
        let model = request.into_inner().name;
        let what = Object::new("price", &model);
        let r = self
            .mutate(&p, what, move |conn, _| {
                Ok(deleted(config::delete_price(conn, &model)?))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn list_pricing(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<PriceList>, Status> {
        self.caller(&request, rbac::LIST_PRICING).await?;
        let pricing = self.read(pricing::list).await?;
        Ok(Response::new(PriceList { pricing }))
    }

    async fn upsert_client_key(
        &self,
        request: Request<ClientKeySpec>,
    ) -> Result<Response<UpsertResult>, Status> {
        let (p, access) = self.caller(&request, rbac::UPSERT_CLIENT_KEY).await?;
        let input = client_keys::validate(request.into_inner())?;
        // Members change only their own keys, and may only tighten them.
        let only_tighten = matches!(access, rbac::Access::Own(_));
        let what = Object::new("client_key", &input.spec.name);
        let who = p.clone();
        let r = self
            .mutate(&p, what, move |conn, _| {
                let existing = config::find_client_key(conn, &input.spec.name)?;
                let owner =
                    client_keys::owner(&who, &input.spec.owner, existing.as_ref(), |name| {
                        Ok(find_user(conn, name)?.map(|u| u.id))
                    })?;
                let detail = client_keys::summary(&input.spec);
                Ok(upserted(
                    client_keys::upsert(conn, &input, existing, owner, only_tighten)?,
                    detail,
                ))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn delete_client_key(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteResult>, Status> {
        let (p, access) = self.caller(&request, rbac::DELETE_CLIENT_KEY).await?;
        let name = request.into_inner().name;
        let what = Object::new("client_key", &name);
        let who = p.clone();
        let r = self
            .mutate(&p, what, move |conn, _| {
                let Some(k) = config::find_client_key(conn, &name)? else {
                    return Ok(deleted(false));
                };
                rbac::authorize(
                    &who,
                    rbac::DELETE_CLIENT_KEY,
                    Target::Owned(k.owner_user_id.as_deref()),
                )?;
                // A member's keys bound the keys they may create: deleting
                // one must not lift that.
                if let rbac::Access::Own(uid) = &access {
                    let owned = config::list_client_keys(conn, Some(uid))?;
                    client_keys::member_may_delete(&k, &owned)?;
                }
                Ok(deleted(config::delete_client_key(conn, &name)?))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn list_client_keys(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<ClientKeyList>, Status> {
        let (_, access) = self.caller(&request, rbac::LIST_CLIENT_KEYS).await?;
        let mut client_keys = self
            .read(move |conn| client_keys::list(conn, access.owner()))
            .await?;
        let usage = self
            .budgets
            .usage_now(client_keys.iter().map(|k| k.id.as_str()));
        for k in &mut client_keys {
            k.used = usage.scoped([k.id.as_str()], k.global);
        }
        Ok(Response::new(ClientKeyList { client_keys }))
    }

    async fn revoke_client_key(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<RevokeResult>, Status> {
        let (p, _) = self.caller(&request, rbac::REVOKE_CLIENT_KEY).await?;
        let name = request.into_inner().name;
        let what = Object::new("client_key", &name);
        let who = p.clone();
        let r = self
            .mutate(&p, what, move |conn, _| {
                let k = config::find_client_key(conn, &name)?.ok_or_else(|| {
                    Error::NotFound(format!("client_key {name:?} does not exist"))
                })?;
                rbac::authorize(
                    &who,
                    rbac::REVOKE_CLIENT_KEY,
                    Target::Owned(k.owner_user_id.as_deref()),
                )?;
                let revoked = config::revoke_client_key(conn, &k.id, now_ms())?;
                Ok((
                    RevokeResult { revoked },
                    revoked.then(|| Change::new("revoke")),
                ))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn upsert_route(
        &self,
        request: Request<RouteSpec>,
    ) -> Result<Response<UpsertResult>, Status> {
        let (p, _) = self.caller(&request, rbac::UPSERT_ROUTE).await?;
        let spec = request.into_inner();
        routes::validate(&spec)?;
        let what = Object::new("route", &spec.model);
        let r = self
            .mutate(&p, what, move |conn, _| {
                let detail = format!("providers=[{}]", spec.providers.join(","));
                Ok(upserted(routes::upsert(conn, &spec)?, detail))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn delete_route(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteResult>, Status> {
        let (p, _) = self.caller(&request, rbac::DELETE_ROUTE).await?;
        let model = request.into_inner().name;
        let what = Object::new("route", &model);
        let r = self
            .mutate(&p, what, move |conn, _| {
                Ok(deleted(config::delete_route(conn, &model)?))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn list_routes(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<RouteList>, Status> {
        self.caller(&request, rbac::LIST_ROUTES).await?;
        let routes = self.read(routes::list).await?;
        Ok(Response::new(RouteList { routes }))
    }

    async fn list_nodes(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<NodeList>, Status> {
        self.caller(&request, rbac::LIST_NODES).await?;
        Ok(Response::new(NodeList {
            nodes: self.registry.list(),
            current_version: self.publisher.current().version().to_string(),
        }))
    }

    async fn create_node_credential(
        &self,
        request: Request<NodeCredentialSpec>,
    ) -> Result<Response<NodeCredentialCreated>, Status> {
        let (p, _) = self.caller(&request, rbac::CREATE_NODE_CREDENTIAL).await?;
        let spec = request.into_inner();
        nodes::validate(&spec)?;
        let what = Object::new("node_credential", &spec.node_id);
        let (token, row) = self
            .mutate(&p, what, move |conn, _| {
                let made = nodes::create(conn, &spec)?;
                let detail = format!("region={}", spec.region);
                Ok((made, Some(Change::account("create").with(detail))))
            })
            .await?;
        Ok(Response::new(NodeCredentialCreated {
            token,
            info: Some(nodes::info(&row)),
        }))
    }

    async fn list_node_credentials(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<NodeCredentialList>, Status> {
        self.caller(&request, rbac::LIST_NODE_CREDENTIALS).await?;
        let credentials = self
            .read(|conn| {
                Ok(crate::db::nodes::list(conn)?
                    .iter()
                    .map(nodes::info)
                    .collect())
            })
            .await?;
        Ok(Response::new(NodeCredentialList { credentials }))
    }

    async fn revoke_node_credential(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<RevokeResult>, Status> {
        let (p, _) = self.caller(&request, rbac::REVOKE_NODE_CREDENTIAL).await?;
        let node_id = request.into_inner().name;
        let what = Object::new("node_credential", &node_id);
        let (revoked, id) = self
            .mutate(&p, what, move |conn, _| {
                let row = nodes::of_node(conn, &node_id)?;
                let revoked = crate::db::nodes::revoke(conn, &row.id, now_ms())?;
                Ok((
                    (revoked, row.id),
                    revoked.then(|| Change::account("revoke")),
                ))
            })
            .await?;
        // After the commit: the node's open streams end now.
        self.registry.revoke_credential(&id);
        Ok(Response::new(RevokeResult { revoked }))
    }

    async fn delete_node_credential(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteResult>, Status> {
        let (p, _) = self.caller(&request, rbac::DELETE_NODE_CREDENTIAL).await?;
        let node_id = request.into_inner().name;
        let what = Object::new("node_credential", &node_id);
        let (deleted, id) = self
            .mutate(&p, what, move |conn, _| {
                let Some(row) = crate::db::nodes::find_by_node(conn, &node_id)? else {
                    return Ok(((false, String::new()), None));
                };
                let deleted = crate::db::nodes::delete(conn, &row.id)?;
                Ok((
                    (deleted, row.id),
                    deleted.then(|| Change::account("delete")),
                ))
            })
            .await?;
        if deleted {
            self.registry.revoke_credential(&id);
        }
        Ok(Response::new(DeleteResult { deleted }))
    }

    async fn check_credential(
        &self,
        request: Request<CredentialRef>,
    ) -> Result<Response<CredentialHealth>, Status> {
        self.caller(&request, rbac::CHECK_CREDENTIAL).await?;
        let r = request.into_inner();
        let row = self.checker.check_now(&r.provider, &r.key).await?;
        Ok(Response::new(crate::health::info(&row)))
    }

    async fn list_credential_health(
        &self,
        request: Request<CredentialHealthQuery>,
    ) -> Result<Response<CredentialHealthList>, Status> {
        self.caller(&request, rbac::LIST_CREDENTIAL_HEALTH).await?;
        let q = request.into_inner();
        let limit = match q.history {
            0 => 20,
            n => i64::from(n.min(100)),
        };
        let list = self
            .read(move |conn| {
                use crate::db::health;
                let provider = (!q.provider.is_empty()).then_some(q.provider.as_str());
                let current = health::current(conn, provider)?
                    .iter()
                    .map(crate::health::info)
                    .collect();
                let history = match (provider, q.key.is_empty()) {
                    (Some(p), false) => health::history(conn, p, &q.key, limit)?
                        .into_iter()
                        .map(|c| CredentialHealth {
                            provider: c.provider,
                            key: c.key_name,
                            status: c.status,
                            http_status: u32::try_from(c.http_status).unwrap_or(0),
                            latency_us: u64::try_from(c.latency_us).unwrap_or(0),
                            detail: c.detail,
                            checked_at_ms: c.checked_at_ms,
                            retry_at_ms: 0,
                            trigger: c.trigger_kind,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                Ok(CredentialHealthList { current, history })
            })
            .await?;
        Ok(Response::new(list))
    }

    async fn upsert_o_auth_template(
        &self,
        request: Request<OAuthTemplateSpec>,
    ) -> Result<Response<UpsertResult>, Status> {
        self.upsert_oauth_template_impl(request).await
    }

    async fn delete_o_auth_template(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteResult>, Status> {
        self.delete_oauth_template_impl(request).await
    }

    async fn list_o_auth_templates(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<OAuthTemplateList>, Status> {
        self.list_oauth_templates_impl(request).await
    }

    async fn start_o_auth_connect(
        &self,
        request: Request<OAuthConnectRequest>,
    ) -> Result<Response<OAuthConnectStart>, Status> {
        self.start_oauth_connect_impl(request).await
    }

    async fn complete_o_auth_connect(
        &self,
        request: Request<OAuthCompleteRequest>,
    ) -> Result<Response<OAuthAccount>, Status> {
        self.complete_oauth_connect_impl(request).await
    }

    async fn start_o_auth_device(
        &self,
        request: Request<OAuthConnectRequest>,
    ) -> Result<Response<OAuthDeviceStart>, Status> {
        self.start_oauth_device_impl(request).await
    }

    async fn poll_o_auth_device(
        &self,
        request: Request<OAuthPollRequest>,
    ) -> Result<Response<OAuthPollResult>, Status> {
        self.poll_oauth_device_impl(request).await
    }

    async fn refresh_o_auth_account(
        &self,
        request: Request<CredentialRef>,
    ) -> Result<Response<OAuthAccount>, Status> {
        self.refresh_oauth_account_impl(request).await
    }

    async fn list_o_auth_accounts(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<OAuthAccountList>, Status> {
        self.list_oauth_accounts_impl(request).await
    }

    async fn set_budget(
        &self,
        request: Request<BudgetSpec>,
    ) -> Result<Response<UpsertResult>, Status> {
        let (p, _) = self.caller(&request, rbac::SET_BUDGET).await?;
        let spec = request.into_inner();
        let limits = budgets::check_budget(&spec)?;
        let what = Object::new("budget", &spec.subject);
        let r = self
            .mutate(&p, what, move |conn, _| {
                budgets::set(conn, &spec.subject, &limits)
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn list_budgets(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<BudgetList>, Status> {
        self.caller(&request, rbac::LIST_BUDGETS).await?;
        let rows = self
            .read(|conn| {
                let names = client_keys::usernames(conn)?;
                let teams = super::users::team_names(conn)?;
                let keys_of = budget_keys(conn)?;
                Ok(crate::db::budgets::list_budgets(conn)?
                    .into_iter()
                    .map(|b| {
                        let subject = match b.subject.split_once(':') {
                            Some(("user", id)) => {
                                format!("user:{}", names.get(id).cloned().unwrap_or_default())
                            }
                            Some(("team", id)) => {
                                format!("team:{}", teams.get(id).cloned().unwrap_or_default())
                            }
                            _ => b.subject.clone(),
                        };
                        let limits = budgets::Stored::from(&b);
                        let info = BudgetInfo {
                            subject,
                            updated_at_ms: b.updated_at_ms,
                            used: Vec::new(),
                            limits: Some(limits.to_admin()),
                        };
                        let keys = keys_of.get(&b.subject).cloned().unwrap_or_default();
                        (keys, limits.global, info)
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        let usage = self.budgets.usage_now(
            rows.iter()
                .flat_map(|(keys, ..)| keys.iter().map(String::as_str)),
        );
        let budgets = rows
            .into_iter()
            .map(|(keys, global, mut info)| {
                info.used = usage.scoped(keys.iter().map(String::as_str), global);
                info
            })
            .collect();
        Ok(Response::new(BudgetList { budgets }))
    }

    async fn upsert_team(
        &self,
        request: Request<TeamSpec>,
    ) -> Result<Response<UpsertResult>, Status> {
        let (p, _) = self.caller(&request, rbac::UPSERT_TEAM).await?;
        let spec = request.into_inner();
        budgets::check_team(&spec)?;
        let what = Object::new("team", &spec.name);
        let r = self
            .mutate(&p, what, move |conn, _| budgets::upsert_team(conn, &spec))
            .await?;
        Ok(Response::new(r))
    }

    async fn delete_team(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteResult>, Status> {
        let (p, _) = self.caller(&request, rbac::DELETE_TEAM).await?;
        let name = request.into_inner().name;
        let what = Object::new("team", &name);
        let r = self
            .mutate(&p, what, move |conn, _| {
                let Some(t) = crate::db::budgets::find_team(conn, &name)? else {
                    return Ok(deleted(false));
                };
                Ok(deleted(crate::db::budgets::delete_team(conn, &t.id)?))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn list_teams(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<TeamList>, Status> {
        self.caller(&request, rbac::LIST_TEAMS).await?;
        let teams = self
            .read(|conn| {
                crate::db::budgets::list_teams(conn)?
                    .into_iter()
                    .map(|t| {
                        Ok(TeamInfo {
                            members: crate::db::budgets::members(conn, &t.id)?,
                            name: t.name,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok(Response::new(TeamList { teams }))
    }

    async fn upsert_webhook(
        &self,
        request: Request<WebhookSpec>,
    ) -> Result<Response<UpsertResult>, Status> {
        let (p, _) = self.caller(&request, rbac::UPSERT_WEBHOOK).await?;
        let spec = request.into_inner();
        budgets::check_webhook(&spec)?;
        let what = Object::new("webhook", &spec.name);
        let r = self
            .mutate(&p, what, move |conn, master| {
                let context = crate::budgets::webhook_context(&spec.name);
                let old = crate::db::budgets::list_webhooks(conn)?
                    .into_iter()
                    .find(|w| w.name == spec.name);
                // The URL as a non-admin is shown it: keep the stored one.
                let mut spec = spec;
                if let Some(w) = &old
                    && spec.url != w.url
                    && spec.url == budgets::webhook_url_masked(&w.url)
                {
                    spec.url = w.url.clone();
                }
                budgets::check_webhook_url_whole(&spec)?;
                let detail = budgets::webhook_summary(&spec);
                let secret = match (&old, spec.secret.is_empty()) {
                    // Alerts are signed with the secret: kept for a new URL
                    // (even on the same host: Slack's and Teams' hooks share
                    // theirs), it would sign alerts for whoever runs that
                    // URL, to replay to the real one.
                    (Some(w), true) if w.url != spec.url => {
                        return Err(Error::FailedPrecondition(format!(
                            "webhook {:?}: re-enter the secret: the URL changed, and a kept secret never signs for a new URL",
                            spec.name
                        )));
                    }
                    (Some(w), true) => master.decrypt(&w.secret_enc, &context)?,
                    (None, true) => {
                        return Err(Error::invalid(format!(
                            "webhook {:?}: a secret is required",
                            spec.name
                        )));
                    }
                    (_, false) => spec.secret.clone(),
                };
                if let Some(w) = &old
                    && w.url == spec.url
                    && master.decrypt(&w.secret_enc, &context)? == secret
                {
                    return Ok((providers::unchanged(), None));
                }
                let now = now_ms();
                crate::db::budgets::put_webhook(
                    conn,
                    &crate::db::budgets::WebhookRow {
                        name: spec.name.clone(),
                        url: spec.url.clone(),
                        secret_enc: master.encrypt(&secret, &context)?,
                        created_at_ms: old.as_ref().map_or(now, |w| w.created_at_ms),
                        updated_at_ms: now,
                    },
                )?;
                let r = UpsertResult {
                    created: old.is_none(),
                    changed: true,
                    generated_key: String::new(),
                };
                let action = if old.is_none() { "create" } else { "update" };
                Ok((r, Some(Change::account(action).with(detail))))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn delete_webhook(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteResult>, Status> {
        let (p, _) = self.caller(&request, rbac::DELETE_WEBHOOK).await?;
        let name = request.into_inner().name;
        let what = Object::new("webhook", &name);
        let r = self
            .mutate(&p, what, move |conn, _| {
                let gone = crate::db::budgets::delete_webhook(conn, &name)?;
                Ok((
                    DeleteResult { deleted: gone },
                    gone.then(|| Change::account("delete")),
                ))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn list_webhooks(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<WebhookList>, Status> {
        let (p, _) = self.caller(&request, rbac::LIST_WEBHOOKS).await?;
        // Whole URLs for admins only: chat services' webhook URLs carry
        // their secret in the path.
        let whole = p.role == rbac::Role::Admin;
        let master = self.master.clone();
        let webhooks = self
            .read(move |conn| {
                crate::db::budgets::list_webhooks(conn)?
                    .into_iter()
                    .map(|w| {
                        let secret = master
                            .decrypt(&w.secret_enc, &crate::budgets::webhook_context(&w.name))?;
                        Ok(WebhookInfo {
                            secret_hint: crate::crypto::mask(&secret, 4),
                            name: w.name,
                            url: if whole {
                                w.url
                            } else {
                                budgets::webhook_url_masked(&w.url)
                            },
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok(Response::new(WebhookList { webhooks }))
    }
}

/// The keys counting toward each user's and team's budget ("user:ID",
/// "team:ID"), revoked ones included: what a key spent before it was
/// revoked still counts in the data planes' budget counters. By the team
/// users are in now (a user who changed teams brings their keys' use).
fn budget_keys(conn: &mut crate::db::AnyConnection) -> Result<HashMap<String, Vec<String>>> {
    let team_of: HashMap<String, String> = crate::db::identity::list_users(conn)?
        .into_iter()
        .filter_map(|u| Some((u.id, u.team_id?)))
        .collect();
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (key, owner) in config::client_key_owners(conn)? {
        let Some(owner) = owner else {
            continue;
        };
        if let Some(team) = team_of.get(&owner) {
            out.entry(format!("team:{team}"))
                .or_default()
                .push(key.clone());
        }
        out.entry(format!("user:{owner}")).or_default().push(key);
    }
    Ok(out)
}
