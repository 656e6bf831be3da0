//! Users, API tokens, the role table, the audit log (IdentityService) and
//! the sign-in settings (SignInService).

use super::answer;
use aigw_proto::pb::admin::{
    ApiTokenList, AuditList, AuditQuery, CreateApiTokenRequest, CreateApiTokenResult,
    CreateUserRequest, CreateUserResult, ListApiTokensRequest, ListRolesRequest, ListUsersRequest,
    NameRequest, OidcSettings, OidcSettingsRequest, ResetPasswordRequest, ResetPasswordResult,
    RevokeResult, RoleList, UpdateUserRequest, UserInfo, UserList,
};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::client_ip::ClientIp;
use crate::error::{ApiResult, Errors};
use crate::extract::{Body, Name, Params};
use crate::session::Caller;

/// Lists users (members: themselves).
#[utoipa::path(get, path = "/users", tag = "people",
    responses((status = 200, body = UserList), Errors))]
pub async fn list_users(State(s): State<AppState>, c: Caller) -> ApiResult<Json<UserList>> {
    answer(s.grpc.identity().list_users(c.req(ListUsersRequest {}))).await
}

/// Creates a user (admins). Without a password one is generated and
/// returned once.
#[utoipa::path(post, path = "/users", tag = "people",
    request_body = CreateUserRequest,
    responses((status = 200, body = CreateUserResult), Errors))]
pub async fn create_user(
    State(s): State<AppState>,
    c: Caller,
    Body(req): Body<CreateUserRequest>,
) -> ApiResult<Json<CreateUserResult>> {
    answer(s.grpc.identity().create_user(c.req(req))).await
}

/// A change to a user: role, or disabled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// admin | operator | viewer | member
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// Changes a user's role or disables / enables them (admins).
#[utoipa::path(patch, path = "/users/{username}", tag = "people",
    params(("username" = String, Path)),
    request_body = UserChange,
    responses((status = 200, body = UserInfo), Errors))]
pub async fn update_user(
    State(s): State<AppState>,
    c: Caller,
    Name(username): Name<String>,
    Body(change): Body<UserChange>,
) -> ApiResult<Json<UserInfo>> {
    let req = UpdateUserRequest {
        username,
        role: change.role,
        disabled: change.disabled,
    };
    answer(s.grpc.identity().update_user(c.req(req))).await
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// Empty: one is generated and returned once.
    #[serde(default)]
    pub new_password: String,
    /// Required when changing your own password.
    #[serde(default)]
    pub current_password: String,
}

/// Sets a user's password (admins: anyone's; others: their own, with the
/// current one). Ends the user's sessions.
#[utoipa::path(post, path = "/users/{username}/password", tag = "people",
    params(("username" = String, Path)),
    request_body = PasswordChange,
    responses((status = 200, body = ResetPasswordResult), Errors))]
pub async fn reset_password(
    State(s): State<AppState>,
    c: Caller,
    client: ClientIp,
    Name(username): Name<String>,
    Body(change): Body<PasswordChange>,
) -> ApiResult<Json<ResetPasswordResult>> {
    let req = ResetPasswordRequest {
        username,
        new_password: change.new_password,
        current_password: change.current_password,
    };
    // A guess at one's current password is throttled per source, like a
    // login: the browser's address goes with it.
    answer(s.grpc.identity().reset_password(client.tag(c.req(req)))).await
}

/// Lists API tokens, hints only (members: their own).
#[utoipa::path(get, path = "/api-tokens", tag = "people",
    responses((status = 200, body = ApiTokenList), Errors))]
pub async fn list_api_tokens(
    State(s): State<AppState>,
    c: Caller,
) -> ApiResult<Json<ApiTokenList>> {
    answer(
        s.grpc
            .identity()
            .list_api_tokens(c.req(ListApiTokensRequest {})),
    )
    .await
}

/// Creates an API token owned by the caller; the token is returned once.
#[utoipa::path(post, path = "/api-tokens", tag = "people",
    request_body = CreateApiTokenRequest,
    responses((status = 200, body = CreateApiTokenResult), Errors))]
pub async fn create_api_token(
    State(s): State<AppState>,
    c: Caller,
    Body(req): Body<CreateApiTokenRequest>,
) -> ApiResult<Json<CreateApiTokenResult>> {
    answer(s.grpc.identity().create_api_token(c.req(req))).await
}

#[utoipa::path(post, path = "/api-tokens/{name}/revoke", tag = "people",
    params(("name" = String, Path)),
    responses((status = 200, body = RevokeResult), Errors))]
pub async fn revoke_api_token(
    State(s): State<AppState>,
    c: Caller,
    Name(name): Name<String>,
) -> ApiResult<Json<RevokeResult>> {
    answer(
        s.grpc
            .identity()
            .revoke_api_token(c.req(NameRequest { name })),
    )
    .await
}

/// The roles and what each may do (the table every call is checked against).
#[utoipa::path(get, path = "/roles", tag = "people",
    responses((status = 200, body = RoleList), Errors))]
pub async fn list_roles(State(s): State<AppState>, c: Caller) -> ApiResult<Json<RoleList>> {
    answer(s.grpc.identity().list_roles(c.req(ListRolesRequest {}))).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries at or after this time, in milliseconds since the epoch.
    pub since_ms: Option<i64>,
    /// Entries before this time (not at it), in milliseconds since the epoch.
    pub until_ms: Option<i64>,
    /// Exactly this actor: `user:NAME`, `token:NAME`, `bootstrap`,
    /// `system` (budget alerts) or `anonymous` (a failed sign-in).
    pub actor: Option<String>,
    /// Exactly this kind of object: provider | provider_key | price |
    /// route | client_key | node_credential | oauth_template | budget |
    /// team | webhook | user | api_token | session | oidc_settings
    pub object_kind: Option<String>,
    /// Default 50, at most 500.
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

/// Every change: who, what, when; newest first.
#[utoipa::path(get, path = "/audit", tag = "people",
    params(AuditParams),
    responses((status = 200, body = AuditList), Errors))]
pub async fn audit_log(
    State(s): State<AppState>,
    c: Caller,
    Params(p): Params<AuditParams>,
) -> ApiResult<Json<AuditList>> {
    let q = AuditQuery {
        since_ms: p.since_ms.unwrap_or(0),
        until_ms: p.until_ms.unwrap_or(0),
        actor: p.actor.unwrap_or_default(),
        object_kind: p.object_kind.unwrap_or_default(),
        page_size: p.page_size.unwrap_or(0),
        page_token: p.page_token.unwrap_or_default(),
    };
    answer(s.grpc.identity().list_audit_log(c.req(q))).await
}

/// The OpenID Connect sign-in settings (admins); the secret is never shown.
#[utoipa::path(get, path = "/settings/oidc", tag = "people",
    responses((status = 200, body = OidcSettings), Errors))]
pub async fn get_oidc_settings(
    State(s): State<AppState>,
    c: Caller,
) -> ApiResult<Json<OidcSettings>> {
    answer(
        s.grpc
            .sign_in()
            .get_oidc_settings(c.req(OidcSettingsRequest {})),
    )
    .await
}

/// Sets them (admins). An empty client_secret keeps the stored one.
#[utoipa::path(put, path = "/settings/oidc", tag = "people",
    request_body = OidcSettings,
    responses((status = 200, body = OidcSettings), Errors))]
pub async fn set_oidc_settings(
    State(s): State<AppState>,
    c: Caller,
    Body(settings): Body<OidcSettings>,
) -> ApiResult<Json<OidcSettings>> {
    answer(s.grpc.sign_in().set_oidc_settings(c.req(settings))).await
}
