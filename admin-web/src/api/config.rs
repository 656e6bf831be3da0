//! Providers, pricing, routes, client keys and connected data planes
//! (AdminService).

use super::answer;
use aigw_proto::pb::admin::{
    ClientKeyList, ClientKeySpec, CredentialHealth, CredentialHealthList, CredentialHealthQuery,
    CredentialRef, DeleteResult, ListRequest, NameRequest, NodeList, PriceList, PriceSpec,
    ProviderList, ProviderSpec, RevokeResult, RouteList, RouteSpec, UpsertResult,
};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::create_only::CreateOnly;
use crate::AppState;
use crate::error::{ApiError, ApiResult, Errors};
use crate::extract::{Body, Name, Params};
use crate::session::Caller;

fn name_req(name: String) -> NameRequest {
    NameRequest { name }
}

/// Lists providers with their keys (secret hints only).
#[utoipa::path(get, path = "/providers", tag = "config",
    responses((status = 200, body = ProviderList), Errors))]
pub async fn list_providers(State(s): State<AppState>, c: Caller) -> ApiResult<Json<ProviderList>> {
    answer(s.grpc.admin().list_providers(c.req(ListRequest {}))).await
}

/// Creates or updates a provider by name. Its keys are replaced by those
/// listed; a key sent with an empty secret keeps its stored secret.
#[utoipa::path(put, path = "/providers/{name}", tag = "config",
    params(("name" = String, Path, description = "Provider name"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only; refused with 412 when an object of this name already exists, instead of replacing it")),
    request_body = ProviderSpec,
    responses((status = 200, body = UpsertResult), (status = 412, description = "`If-None-Match: *` and an object of this name already exists (code `already_exists`)", body = crate::error::ErrorBody), Errors))]
pub async fn put_provider(
    State(s): State<AppState>,
    c: Caller,
    create_only: CreateOnly,
    Name(name): Name<String>,
    Body(mut spec): Body<ProviderSpec>,
) -> ApiResult<Json<UpsertResult>> {
    crate::extract::path_names(name, &mut spec.name, "name")?;
    create_only
        .check("a provider named", &spec.name, async {
            let list = s
                .grpc
                .admin()
                .list_providers(c.req(ListRequest {}))
                .await?
                .into_inner();
            Ok(list.providers.into_iter().map(|p| p.name))
        })
        .await?;
    answer(s.grpc.admin().upsert_provider(c.req(spec))).await
}

/// Deletes a provider (refused while a route names it).
#[utoipa::path(delete, path = "/providers/{name}", tag = "config",
    params(("name" = String, Path, description = "Provider name")),
    responses((status = 200, body = DeleteResult), Errors))]
pub async fn delete_provider(
    State(s): State<AppState>,
    c: Caller,
    Name(name): Name<String>,
) -> ApiResult<Json<DeleteResult>> {
    answer(s.grpc.admin().delete_provider(c.req(name_req(name)))).await
}

/// Lists prices (USD per million tokens).
#[utoipa::path(get, path = "/pricing", tag = "config",
    responses((status = 200, body = PriceList), Errors))]
pub async fn list_pricing(State(s): State<AppState>, c: Caller) -> ApiResult<Json<PriceList>> {
    answer(s.grpc.admin().list_pricing(c.req(ListRequest {}))).await
}

/// Creates or updates the price of a model (or model glob).
#[utoipa::path(put, path = "/pricing/{model}", tag = "config",
    params(("model" = String, Path, description = "Model name or glob"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only; refused with 412 when an object of this name already exists, instead of replacing it")),
    request_body = PriceSpec,
    responses((status = 200, body = UpsertResult), (status = 412, description = "`If-None-Match: *` and an object of this name already exists (code `already_exists`)", body = crate::error::ErrorBody), Errors))]
pub async fn put_price(
    State(s): State<AppState>,
    c: Caller,
    create_only: CreateOnly,
    Name(model): Name<String>,
    Body(mut spec): Body<PriceSpec>,
) -> ApiResult<Json<UpsertResult>> {
    crate::extract::path_names(model, &mut spec.model, "model")?;
    refuse_negative_zero(&[("input", spec.input), ("output", spec.output)])?;
    create_only
        .check("a price for", &spec.model, async {
            let list = s
                .grpc
                .admin()
                .list_pricing(c.req(ListRequest {}))
                .await?
                .into_inner();
            Ok(list.pricing.into_iter().map(|p| p.model))
        })
        .await?;
    answer(s.grpc.admin().upsert_price(c.req(spec))).await
}

#[utoipa::path(delete, path = "/pricing/{model}", tag = "config",
    params(("model" = String, Path, description = "Model name or glob")),
    responses((status = 200, body = DeleteResult), Errors))]
pub async fn delete_price(
    State(s): State<AppState>,
    c: Caller,
    Name(model): Name<String>,
) -> ApiResult<Json<DeleteResult>> {
    answer(s.grpc.admin().delete_price(c.req(name_req(model)))).await
}

/// Lists routes: model globs with their providers in fallback order.
#[utoipa::path(get, path = "/routes", tag = "config",
    responses((status = 200, body = RouteList), Errors))]
pub async fn list_routes(State(s): State<AppState>, c: Caller) -> ApiResult<Json<RouteList>> {
    answer(s.grpc.admin().list_routes(c.req(ListRequest {}))).await
}

#[utoipa::path(put, path = "/routes/{model}", tag = "config",
    params(("model" = String, Path, description = "Model glob"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only; refused with 412 when an object of this name already exists, instead of replacing it")),
    request_body = RouteSpec,
    responses((status = 200, body = UpsertResult), (status = 412, description = "`If-None-Match: *` and an object of this name already exists (code `already_exists`)", body = crate::error::ErrorBody), Errors))]
pub async fn put_route(
    State(s): State<AppState>,
    c: Caller,
    create_only: CreateOnly,
    Name(model): Name<String>,
    Body(mut spec): Body<RouteSpec>,
) -> ApiResult<Json<UpsertResult>> {
    crate::extract::path_names(model, &mut spec.model, "model")?;
    create_only
        .check("a route for", &spec.model, async {
            let list = s
                .grpc
                .admin()
                .list_routes(c.req(ListRequest {}))
                .await?
                .into_inner();
            Ok(list.routes.into_iter().map(|r| r.model))
        })
        .await?;
    answer(s.grpc.admin().upsert_route(c.req(spec))).await
}

#[utoipa::path(delete, path = "/routes/{model}", tag = "config",
    params(("model" = String, Path, description = "Model glob")),
    responses((status = 200, body = DeleteResult), Errors))]
pub async fn delete_route(
    State(s): State<AppState>,
    c: Caller,
    Name(model): Name<String>,
) -> ApiResult<Json<DeleteResult>> {
    answer(s.grpc.admin().delete_route(c.req(name_req(model)))).await
}

/// Lists client keys (members: their own).
#[utoipa::path(get, path = "/client-keys", tag = "config",
    responses((status = 200, body = ClientKeyList), Errors))]
pub async fn list_client_keys(
    State(s): State<AppState>,
    c: Caller,
) -> ApiResult<Json<ClientKeyList>> {
    answer(s.grpc.admin().list_client_keys(c.req(ListRequest {}))).await
}

/// Creates or updates a client key. A new key without `key` gets a
/// generated one, returned once in `generated_key`.
#[utoipa::path(put, path = "/client-keys/{name}", tag = "config",
    params(("name" = String, Path, description = "Client key name"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only; refused with 412 when an object of this name already exists, instead of replacing it")),
    request_body = ClientKeySpec,
    responses((status = 200, body = UpsertResult), (status = 412, description = "`If-None-Match: *` and an object of this name already exists (code `already_exists`)", body = crate::error::ErrorBody), Errors))]
pub async fn put_client_key(
    State(s): State<AppState>,
    c: Caller,
    create_only: CreateOnly,
    Name(name): Name<String>,
    Body(mut spec): Body<ClientKeySpec>,
) -> ApiResult<Json<UpsertResult>> {
    crate::extract::path_names(name, &mut spec.name, "name")?;
    create_only
        .check("a client key named", &spec.name, async {
            let list = s
                .grpc
                .admin()
                .list_client_keys(c.req(ListRequest {}))
                .await?
                .into_inner();
            Ok(list.client_keys.into_iter().map(|k| k.name))
        })
        .await?;
    answer(s.grpc.admin().upsert_client_key(c.req(spec))).await
}

#[utoipa::path(delete, path = "/client-keys/{name}", tag = "config",
    params(("name" = String, Path, description = "Client key name")),
    responses((status = 200, body = DeleteResult), Errors))]
pub async fn delete_client_key(
    State(s): State<AppState>,
    c: Caller,
    Name(name): Name<String>,
) -> ApiResult<Json<DeleteResult>> {
    answer(s.grpc.admin().delete_client_key(c.req(name_req(name)))).await
}

/// Revokes a client key for good: the data planes refuse it within a second.
#[utoipa::path(post, path = "/client-keys/{name}/revoke", tag = "config",
    params(("name" = String, Path, description = "Client key name")),
    responses((status = 200, body = RevokeResult), Errors))]
pub async fn revoke_client_key(
    State(s): State<AppState>,
    c: Caller,
    Name(name): Name<String>,
) -> ApiResult<Json<RevokeResult>> {
    answer(s.grpc.admin().revoke_client_key(c.req(name_req(name)))).await
}

/// The data planes known to the control plane, with the snapshot version
/// each applied and the current one.
#[utoipa::path(get, path = "/nodes", tag = "config",
    responses((status = 200, body = NodeList), Errors))]
pub async fn list_nodes(State(s): State<AppState>, c: Caller) -> ApiResult<Json<NodeList>> {
    answer(s.grpc.admin().list_nodes(c.req(ListRequest {}))).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HealthParams {
    /// One provider's credentials only.
    pub provider: Option<String>,
    /// With `provider`: this credential's recent checks too.
    pub key: Option<String>,
    /// How many recent checks (at most 100; default 20).
    pub history: Option<u32>,
}

/// What the control plane's health checks last found for each credential.
#[utoipa::path(get, path = "/credential-health", tag = "config",
    params(HealthParams),
    responses((status = 200, body = CredentialHealthList), Errors))]
pub async fn credential_health(
    State(s): State<AppState>,
    c: Caller,
    Params(p): Params<HealthParams>,
) -> ApiResult<Json<CredentialHealthList>> {
    let q = CredentialHealthQuery {
        provider: p.provider.unwrap_or_default(),
        key: p.key.unwrap_or_default(),
        history: p.history.unwrap_or(0),
    };
    answer(s.grpc.admin().list_credential_health(c.req(q))).await
}

/// Checks one credential now (an unbilled model listing) and returns what
/// was found.
#[utoipa::path(post, path = "/providers/{provider}/keys/{key}/check", tag = "config",
    params(("provider" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = CredentialHealth), Errors))]
pub async fn check_credential(
    State(s): State<AppState>,
    c: Caller,
    Name((provider, key)): Name<(String, String)>,
) -> ApiResult<Json<CredentialHealth>> {
    answer(
        s.grpc
            .admin()
            .check_credential(c.req(CredentialRef { provider, key })),
    )
    .await
}

/// `-0` is refused like any negative amount, as the control plane does;
/// but a proto3 `double` of `-0.0` is not sent at all (it equals the
/// default), so the control plane would see `0` and take it.
fn refuse_negative_zero(fields: &[(&str, f64)]) -> Result<(), ApiError> {
    match fields
        .iter()
        .find(|(_, v)| *v == 0.0 && v.is_sign_negative())
    {
        Some((name, _)) => Err(ApiError::BadRequest(format!(
            "{name} must not be negative (-0 included)"
        ))),
        None => Ok(()),
    }
}
