//! Budgets of users and teams, and teams (AdminService). A client key's
//! requests count toward its own limits, its owner's budget and the
//! owner's team's.

use super::answer;
use aigw_proto::pb::admin::{
    BudgetLimits, BudgetList, BudgetSpec, DeleteResult, ListRequest, NameRequest, TeamList,
    TeamSpec, UpsertResult,
};
use axum::Json;
use axum::extract::State;

use super::create_only::CreateOnly;
use crate::AppState;
use crate::error::{ApiResult, Errors};
use crate::extract::{Body, Name};
use crate::session::Caller;

/// Lists the budgets of users and teams.
#[utoipa::path(get, path = "/budgets", tag = "people",
    responses((status = 200, body = BudgetList), Errors))]
pub async fn list_budgets(State(s): State<AppState>, c: Caller) -> ApiResult<Json<BudgetList>> {
    answer(s.grpc.admin().list_budgets(c.req(ListRequest {}))).await
}

/// Sets the budget of `user:NAME` or `team:NAME`; limits with none set
/// remove it.
#[utoipa::path(put, path = "/budgets/{subject}", tag = "people",
    params(("subject" = String, Path, description = "user:NAME or team:NAME"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only; refused with 412 when an object of this name already exists, instead of replacing it")),
    request_body = BudgetLimits,
    responses((status = 200, body = UpsertResult), (status = 412, description = "`If-None-Match: *` and an object of this name already exists (code `already_exists`)", body = crate::error::ErrorBody), Errors))]
pub async fn set_budget(
    State(s): State<AppState>,
    c: Caller,
    create_only: CreateOnly,
    Name(subject): Name<String>,
    Body(limits): Body<BudgetLimits>,
) -> ApiResult<Json<UpsertResult>> {
    create_only
        .check("a budget for", &subject, async {
            let list = s
                .grpc
                .admin()
                .list_budgets(c.req(ListRequest {}))
                .await?
                .into_inner();
            Ok(list.budgets.into_iter().map(|b| b.subject))
        })
        .await?;
    answer(s.grpc.admin().set_budget(c.req(BudgetSpec {
        subject,
        limits: Some(limits),
    })))
    .await
}

/// Lists teams and their members.
#[utoipa::path(get, path = "/teams", tag = "people",
    responses((status = 200, body = TeamList), Errors))]
pub async fn list_teams(State(s): State<AppState>, c: Caller) -> ApiResult<Json<TeamList>> {
    answer(s.grpc.admin().list_teams(c.req(ListRequest {}))).await
}

/// Creates or updates a team; the users listed leave any other team, the
/// users not listed leave this one.
#[utoipa::path(put, path = "/teams/{name}", tag = "people",
    params(("name" = String, Path, description = "Team name"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only; refused with 412 when an object of this name already exists, instead of replacing it")),
    request_body = TeamSpec,
    responses((status = 200, body = UpsertResult), (status = 412, description = "`If-None-Match: *` and an object of this name already exists (code `already_exists`)", body = crate::error::ErrorBody), Errors))]
pub async fn put_team(
    State(s): State<AppState>,
    c: Caller,
    create_only: CreateOnly,
    Name(name): Name<String>,
    Body(mut spec): Body<TeamSpec>,
) -> ApiResult<Json<UpsertResult>> {
    crate::extract::path_names(name, &mut spec.name, "name")?;
    create_only
        .check("a team named", &spec.name, async {
            let list = s
                .grpc
                .admin()
                .list_teams(c.req(ListRequest {}))
                .await?
                .into_inner();
            Ok(list.teams.into_iter().map(|t| t.name))
        })
        .await?;
    answer(s.grpc.admin().upsert_team(c.req(spec))).await
}

#[utoipa::path(delete, path = "/teams/{name}", tag = "people",
    params(("name" = String, Path, description = "Team name")),
    responses((status = 200, body = DeleteResult), Errors))]
pub async fn delete_team(
    State(s): State<AppState>,
    c: Caller,
    Name(name): Name<String>,
) -> ApiResult<Json<DeleteResult>> {
    answer(s.grpc.admin().delete_team(c.req(NameRequest { name }))).await
}
