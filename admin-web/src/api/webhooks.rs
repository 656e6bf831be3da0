//! The webhooks budget alerts are posted to (AdminService): 50, 80 and
//! 100 % of a budget's limit, once per threshold and period, signed with
//! the webhook's secret (HMAC-SHA256 of the body in `x-aigw-signature`).
//! The secret is write-only: lists show its hint; an upsert without one
//! keeps the stored secret.

use super::answer;
use aigw_proto::pb::admin::{
    DeleteResult, ListRequest, NameRequest, UpsertResult, WebhookList, WebhookSpec,
};
use axum::Json;
use axum::extract::State;

use super::create_only::CreateOnly;
use crate::AppState;
use crate::error::{ApiResult, Errors};
use crate::extract::{Body, Name};
use crate::session::Caller;

/// Lists the webhooks, secret hints only. Admins see each URL whole;
/// others see its origin and `/…` for a path (chat services put their
/// secret in it).
#[utoipa::path(get, path = "/webhooks", tag = "people",
    responses((status = 200, body = WebhookList), Errors))]
pub async fn list_webhooks(State(s): State<AppState>, c: Caller) -> ApiResult<Json<WebhookList>> {
    answer(s.grpc.admin().list_webhooks(c.req(ListRequest {}))).await
}

/// Creates or updates a webhook by name. A new one needs a secret; an
/// empty secret keeps the stored one, and the URL as a non-admin is shown
/// it (`https://host/…`) keeps the stored URL.
#[utoipa::path(put, path = "/webhooks/{name}", tag = "people",
    params(("name" = String, Path, description = "Webhook name"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only; refused with 412 when an object of this name already exists, instead of replacing it")),
    request_body = WebhookSpec,
    responses((status = 200, body = UpsertResult), (status = 412, description = "`If-None-Match: *` and an object of this name already exists (code `already_exists`)", body = crate::error::ErrorBody), Errors))]
pub async fn put_webhook(
    State(s): State<AppState>,
    c: Caller,
    create_only: CreateOnly,
    Name(name): Name<String>,
    Body(mut spec): Body<WebhookSpec>,
) -> ApiResult<Json<UpsertResult>> {
    crate::extract::path_names(name, &mut spec.name, "name")?;
    create_only
        .check("a webhook named", &spec.name, async {
            let list = s
                .grpc
                .admin()
                .list_webhooks(c.req(ListRequest {}))
                .await?
                .into_inner();
            Ok(list.webhooks.into_iter().map(|w| w.name))
        })
        .await?;
    answer(s.grpc.admin().upsert_webhook(c.req(spec))).await
}

/// Deletes a webhook: alerts are no longer posted to it.
#[utoipa::path(delete, path = "/webhooks/{name}", tag = "people",
    params(("name" = String, Path, description = "Webhook name")),
    responses((status = 200, body = DeleteResult), Errors))]
pub async fn delete_webhook(
    State(s): State<AppState>,
    c: Caller,
    Name(name): Name<String>,
) -> ApiResult<Json<DeleteResult>> {
    answer(s.grpc.admin().delete_webhook(c.req(NameRequest { name }))).await
}
