//! The request log, usage, pool health (InsightService) and the overview,
//! once or live (OverviewService).

use super::answer;
use std::convert::Infallible;
use std::time::Duration;

use aigw_proto::pb::admin::{
    Bucket, GetTraceRequest, GroupBy, Overview, OverviewQuery, OverviewRange, PoolHealth,
    PoolHealthQuery, TraceDetail, TraceList, TraceQuery, UsageQuery, UsageReport,
};
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt as _};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiResult, Errors};
use crate::extract::{Name, Params};
use crate::session::Caller;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceParams {
    /// started_at range [since_ms, until_ms), epoch milliseconds.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// A client key's name or id.
    pub client_key: Option<String>,
    /// The username owning the client key.
    pub user: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub status: Option<u32>,
    /// 2xx | 4xx | 5xx | ok | error
    pub status_class: Option<String>,
    pub region: Option<String>,
    pub node_id: Option<String>,
    /// Default 50, at most 500.
    pub page_size: Option<u32>,
    /// From the previous page's next_page_token.
    pub page_token: Option<String>,
}

/// The request log, newest first, a page at a time.
#[utoipa::path(get, path = "/traces", tag = "insight",
    params(TraceParams),
    responses((status = 200, body = TraceList), Errors))]
pub async fn list_traces(
    State(s): State<AppState>,
    c: Caller,
    Params(p): Params<TraceParams>,
) -> ApiResult<Json<TraceList>> {
    let q = TraceQuery {
        since_ms: p.since_ms.unwrap_or(0),
        until_ms: p.until_ms.unwrap_or(0),
        client_key: p.client_key.unwrap_or_default(),
        user: p.user.unwrap_or_default(),
        model: p.model.unwrap_or_default(),
        provider: p.provider.unwrap_or_default(),
        status: p.status,
        status_class: p.status_class.unwrap_or_default(),
        region: p.region.unwrap_or_default(),
        page_size: p.page_size.unwrap_or(0),
        page_token: p.page_token.unwrap_or_default(),
        node_id: p.node_id.unwrap_or_default(),
    };
    answer(s.grpc.insight().list_traces(c.req(q))).await
}

/// One request by its id (the `x-request-id` the app got), with every
/// upstream attempt.
#[utoipa::path(get, path = "/traces/{request_id}", tag = "insight",
    params(("request_id" = String, Path)),
    responses((status = 200, body = TraceDetail), Errors))]
pub async fn get_trace(
    State(s): State<AppState>,
    c: Caller,
    Name(request_id): Name<String>,
) -> ApiResult<Json<TraceDetail>> {
    answer(
        s.grpc
            .insight()
            .get_trace(c.req(GetTraceRequest { request_id })),
    )
    .await
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BucketParam {
    Hour,
    Day,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupParam {
    None,
    Key,
    User,
    Provider,
    Model,
    Region,
    Team,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub bucket: Option<BucketParam>,
    pub group_by: Option<GroupParam>,
    pub client_key: Option<String>,
    pub user: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub region: Option<String>,
}

/// Usage totals and an hourly or daily series from the traces themselves
/// (exact percentiles; for large ranges prefer /overview).
#[utoipa::path(get, path = "/usage", tag = "insight",
    params(UsageParams),
    responses((status = 200, body = UsageReport), Errors))]
pub async fn usage(
    State(s): State<AppState>,
    c: Caller,
    Params(p): Params<UsageParams>,
) -> ApiResult<Json<UsageReport>> {
    let bucket = match p.bucket {
        None | Some(BucketParam::Hour) => Bucket::Hour,
        Some(BucketParam::Day) => Bucket::Day,
    };
    let group_by = match p.group_by.unwrap_or(GroupParam::None) {
        GroupParam::None => GroupBy::None,
        GroupParam::Key => GroupBy::Key,
        GroupParam::User => GroupBy::User,
        GroupParam::Provider => GroupBy::Provider,
        GroupParam::Model => GroupBy::Model,
        GroupParam::Region => GroupBy::Region,
        GroupParam::Team => GroupBy::Team,
    };
    let q = UsageQuery {
        since_ms: p.since_ms.unwrap_or(0),
        until_ms: p.until_ms.unwrap_or(0),
        bucket: bucket.into(),
        group_by: group_by.into(),
        client_key: p.client_key.unwrap_or_default(),
        user: p.user.unwrap_or_default(),
        model: p.model.unwrap_or_default(),
        provider: p.provider.unwrap_or_default(),
        region: p.region.unwrap_or_default(),
    };
    answer(s.grpc.insight().get_usage(c.req(q))).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PoolParams {
    /// How far back to look, in ms; default 15 minutes.
    pub window_ms: Option<i64>,
}

/// Each provider credential's traffic, errors, latency and cool-down.
#[utoipa::path(get, path = "/pool-health", tag = "insight",
    params(PoolParams),
    responses((status = 200, body = PoolHealth), Errors))]
pub async fn pool_health(
    State(s): State<AppState>,
    c: Caller,
    Params(p): Params<PoolParams>,
) -> ApiResult<Json<PoolHealth>> {
    let q = PoolHealthQuery {
        window_ms: p.window_ms.unwrap_or(0),
    };
    answer(s.grpc.insight().get_pool_health(c.req(q))).await
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum RangeParam {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OverviewParams {
    /// 1h | 24h (default) | 7d | 30d
    pub range: Option<RangeParam>,
    pub client_key: Option<String>,
    pub user: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub region: Option<String>,
    /// The team of the keys' owners (the team they are in now).
    pub team: Option<String>,
}

fn overview_query(p: OverviewParams) -> OverviewQuery {
    let range = match p.range.unwrap_or(RangeParam::Day) {
        RangeParam::Hour => OverviewRange::OverviewRange1h,
        RangeParam::Day => OverviewRange::OverviewRange24h,
        RangeParam::Week => OverviewRange::OverviewRange7d,
        RangeParam::Month => OverviewRange::OverviewRange30d,
    };
    OverviewQuery {
        range: range.into(),
        client_key: p.client_key.unwrap_or_default(),
        user: p.user.unwrap_or_default(),
        model: p.model.unwrap_or_default(),
        provider: p.provider.unwrap_or_default(),
        region: p.region.unwrap_or_default(),
        team: p.team.unwrap_or_default(),
    }
}

/// The overview: the period against the previous one, a series, and
/// breakdowns by region, provider, model, client key, user and team.
#[utoipa::path(get, path = "/overview", tag = "insight",
    params(OverviewParams),
    responses((status = 200, body = Overview), Errors))]
pub async fn overview(
    State(s): State<AppState>,
    c: Caller,
    Params(p): Params<OverviewParams>,
) -> ApiResult<Json<Overview>> {
    answer(s.grpc.overview().get_overview(c.req(overview_query(p)))).await
}

/// The overview as server-sent events: an `overview` event (an Overview
/// as JSON) now and each time new requests are stored (at most once a
/// second). The stream ends with an `error` event (its `data` an error
/// body) when the session ends.
#[utoipa::path(get, path = "/overview/live", tag = "insight",
    params(OverviewParams),
    responses((status = 200, content_type = "text/event-stream", body = String), Errors))]
pub async fn overview_live(
    State(s): State<AppState>,
    c: Caller,
    Params(p): Params<OverviewParams>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let updates = s
        .grpc
        .overview()
        .watch_overview(c.req(overview_query(p)))
        .await?
        .into_inner();
    let events = updates.scan(false, |ended, r| {
        if *ended {
            return futures_util::future::ready(None);
        }
        let ev = match r {
            Ok(o) => Event::default().event("overview").json_data(o),
            Err(status) => {
                *ended = true;
                let (_, code, message) = ApiError::from(status).parts();
                Event::default()
                    .event("error")
                    .json_data(serde_json::json!({"error": {"code": code, "message": message}}))
            }
        };
        futures_util::future::ready(Some(Ok(ev.unwrap_or_else(|_| Event::default()))))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
