//! The JSON API under `/api`: one handler per Admin API call, made as the
//! caller (`session::Caller`), plus sign-in and the live overview stream.
//! The OpenAPI document at `/api/openapi.json` is generated from these
//! handlers and from the Admin API's own messages (their doc comments
//! included), so it cannot drift from what is served.

pub mod auth;
pub mod budgets;
pub mod config;
pub mod config_file;
pub mod create_only;
pub mod insight;
pub mod oauth;
pub mod people;
pub mod webhooks;
#[cfg(test)]
mod webhooks_tests;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;

/// An Admin API answer as the JSON body: what every pass-through handler
/// returns (the gRPC status, on error, becomes the HTTP error).
pub(crate) async fn answer<T>(
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> ApiResult<Json<T>> {
    Ok(Json(call.await?.into_inner()))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "aigw admin API",
        description = "The admin UI's JSON API: a gateway to the control plane's gRPC Admin API, \
                       called as the signed-in user (session cookie, with the `x-aigw-csrf: 1` \
                       header on changes) or with `Authorization: Bearer` and an API token. \
                       Errors are `{\"error\": {\"code\", \"message\"}}`. The `PUT` upserts \
                       (providers, pricing, routes, client keys, teams, budgets, webhooks) replace an object \
                       of the same name; send `If-None-Match: *` to create only: an existing \
                       object is then left as it is and the answer is 412 (`already_exists`)."
    ),
    modifiers(&Security),
    components(schemas(
        crate::error::ErrorBody,
        insight::RangeParam,
        insight::BucketParam,
        insight::GroupParam,
    )),
    security(("session" = []), ("bearer" = [])),
    tags(
        (name = "auth", description = "Sign-in, sign-out, who am I"),
        (name = "config", description = "Providers, credential health, OAuth accounts, pricing, routes, client keys, data planes"),
        (name = "people", description = "Users, teams, budgets, budget alert webhooks, API tokens, roles, audit log, sign-in settings"),
        (name = "insight", description = "Request log, usage, overview, pool health"),
        (name = "config-file", description = "Configuration as code"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::session::SESSION_COOKIE,
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API router and its OpenAPI document.
pub fn router() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::new()
        .routes(routes!(auth::options))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::oidc_start))
        .routes(routes!(auth::oidc_callback))
        .routes(routes!(config::list_providers))
        .routes(routes!(config::put_provider, config::delete_provider))
        .routes(routes!(config::list_pricing))
        .routes(routes!(config::put_price, config::delete_price))
        .routes(routes!(config::list_routes))
        .routes(routes!(config::put_route, config::delete_route))
        .routes(routes!(config::list_client_keys))
        .routes(routes!(config::put_client_key, config::delete_client_key))
        .routes(routes!(config::revoke_client_key))
        .routes(routes!(config::list_nodes))
        .routes(routes!(config::credential_health))
        .routes(routes!(config::check_credential))
        .routes(routes!(oauth::list_accounts))
        .routes(routes!(oauth::list_templates))
        .routes(routes!(oauth::start_connect))
        .routes(routes!(oauth::complete_connect))
        .routes(routes!(oauth::refresh_account))
        .routes(routes!(people::list_users, people::create_user))
        .routes(routes!(people::update_user))
        .routes(routes!(people::reset_password))
        .routes(routes!(people::list_api_tokens, people::create_api_token))
        .routes(routes!(people::revoke_api_token))
        .routes(routes!(people::list_roles))
        .routes(routes!(budgets::list_budgets))
        .routes(routes!(budgets::set_budget))
        .routes(routes!(budgets::list_teams))
        .routes(routes!(budgets::put_team, budgets::delete_team))
        .routes(routes!(webhooks::list_webhooks))
        .routes(routes!(webhooks::put_webhook, webhooks::delete_webhook))
        .routes(routes!(people::audit_log))
        .routes(routes!(
            people::get_oidc_settings,
            people::set_oidc_settings
        ))
        .routes(routes!(insight::list_traces))
        .routes(routes!(insight::get_trace))
        .routes(routes!(insight::usage))
        .routes(routes!(insight::pool_health))
        .routes(routes!(insight::overview))
        .routes(routes!(insight::overview_live))
        .routes(routes!(config_file::export))
        .merge(
            // A whole configuration file: the one body allowed past 2 MiB.
            OpenApiRouter::new()
                .routes(routes!(config_file::plan))
                .routes(routes!(config_file::apply))
                .layer(DefaultBodyLimit::max(crate::MAX_CONFIG_BODY)),
        );
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api", api)
        .split_for_parts();
    (router, doc)
}

/// `GET /api/openapi.json`.
pub async fn openapi(State(s): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json((*s.openapi).clone())
}
