//! OAuth accounts (AdminService): a provider key whose `oauth_template` is
//! set is connected here. The control plane runs the flow (PKCE, state) and
//! keeps the refresh token; the UI opens the authorize URL and pastes back
//! the code or the redirect URL.

use super::answer;
use std::collections::BTreeMap;

use aigw_proto::pb::admin::{
    CredentialRef, ListRequest, OAuthAccount, OAuthAccountList, OAuthCompleteRequest,
    OAuthConnectRequest, OAuthConnectStart, OAuthTemplateList,
};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, Errors};
use crate::extract::{Body, Name};
use crate::session::Caller;

/// Every OAuth account: state, expiry, last refresh and last error.
#[utoipa::path(get, path = "/oauth/accounts", tag = "config",
    responses((status = 200, body = OAuthAccountList), Errors))]
pub async fn list_accounts(
    State(s): State<AppState>,
    c: Caller,
) -> ApiResult<Json<OAuthAccountList>> {
    answer(s.grpc.admin().list_o_auth_accounts(c.req(ListRequest {}))).await
}

/// The OAuth templates (built in, and any an admin added; no client secret).
#[utoipa::path(get, path = "/oauth/templates", tag = "config",
    responses((status = 200, body = OAuthTemplateList), Errors))]
pub async fn list_templates(
    State(s): State<AppState>,
    c: Caller,
) -> ApiResult<Json<OAuthTemplateList>> {
    answer(s.grpc.admin().list_o_auth_templates(c.req(ListRequest {}))).await
}

/// Values for the template's `{param:NAME}` placeholders.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct ConnectParams {
    pub params: BTreeMap<String, String>,
}

/// Starts connecting an OAuth account (authorization code with PKCE): the
/// URL to open and the state to complete with (one use, 10 minutes).
#[utoipa::path(post, path = "/providers/{provider}/keys/{key}/oauth/start", tag = "config",
    params(("provider" = String, Path), ("key" = String, Path)),
    request_body = ConnectParams,
    responses((status = 200, body = OAuthConnectStart), Errors))]
pub async fn start_connect(
    State(s): State<AppState>,
    c: Caller,
    Name((provider, key)): Name<(String, String)>,
    Body(p): Body<ConnectParams>,
) -> ApiResult<Json<OAuthConnectStart>> {
    answer(
        s.grpc
            .admin()
            .start_o_auth_connect(c.req(OAuthConnectRequest {
                provider,
                key,
                params: p.params,
            })),
    )
    .await
}

/// Completes a connect with the code, `code#state`, or the whole redirect
/// URL pasted back; the account's tokens are stored.
#[utoipa::path(post, path = "/oauth/complete", tag = "config",
    request_body = OAuthCompleteRequest,
    responses((status = 200, body = OAuthAccount), Errors))]
pub async fn complete_connect(
    State(s): State<AppState>,
    c: Caller,
    Body(req): Body<OAuthCompleteRequest>,
) -> ApiResult<Json<OAuthAccount>> {
    answer(s.grpc.admin().complete_o_auth_connect(c.req(req))).await
}

/// Refreshes one account's access token now.
#[utoipa::path(post, path = "/providers/{provider}/keys/{key}/oauth/refresh", tag = "config",
    params(("provider" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = OAuthAccount), Errors))]
pub async fn refresh_account(
    State(s): State<AppState>,
    c: Caller,
    Name((provider, key)): Name<(String, String)>,
) -> ApiResult<Json<OAuthAccount>> {
    answer(
        s.grpc
            .admin()
            .refresh_o_auth_account(c.req(CredentialRef { provider, key })),
    )
    .await
}
