//! InsightService: traces, usage and pool health. A member's scope (the
//! client keys they own) is applied in the query itself, on top of whatever
//! filters they ask for.

use std::collections::HashMap;

use aigw_proto::pb::admin::insight_service_server::InsightService;
use aigw_proto::pb::admin::{
    Bucket, GetTraceRequest, GroupBy, PoolHealth, PoolHealthQuery, TraceAttempt, TraceDetail,
    TraceInfo, TraceList, TraceQuery, UsageQuery, UsageReport,
};
use serde::Deserialize;
use tonic::{Request, Response, Status};

use super::rbac::{self, Access, Target};
use super::usage::{self, DAY_MS, HOUR_MS};
use super::{AdminSvc, page};
use crate::db::config::{client_key_ids_of, client_key_owners};
use crate::db::identity::find_user;
use crate::db::traces::{self, KeyMatch, StatusClass, TraceFilter, TraceRow, resolve_client_key};
use crate::db::{AnyConnection, now_ms};
use crate::error::{Error, Result};

/// Usage is computed over at most this many requests per call.
pub const MAX_USAGE_ROWS: i64 = 1_000_000;
/// Pool health looks at most this many recent traces.
pub const MAX_POOL_ROWS: i64 = 200_000;
const DEFAULT_POOL_WINDOW_MS: i64 = 15 * 60 * 1000;
const MAX_WINDOW_MS: i64 = 400 * DAY_MS;
const MAX_BUCKETS: i64 = 10_000;

/// The filters both traces and usage take.
struct Filters<'a> {
    since_ms: i64,
    until_ms: i64,
    client_key: &'a str,
    user: &'a str,
    model: &'a str,
    provider: &'a str,
    region: &'a str,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Builds the query filter, resolving the user filter to their keys and
/// confining an `Own` caller to theirs.
fn trace_filter(conn: &mut AnyConnection, access: &Access, f: &Filters<'_>) -> Result<TraceFilter> {
    let key_ids = match f.user {
        "" => None,
        name => Some(match find_user(conn, name)? {
            Some(u) => client_key_ids_of(conn, &u.id)?,
            None => Vec::new(),
        }),
    };
    let scope_key_ids = match access.owner() {
        Some(uid) => Some(client_key_ids_of(conn, uid)?),
        None => None,
    };
    let (client_key_id, client_key_name) = match f.client_key {
        "" => (None, None),
        v => match resolve_client_key(conn, v)? {
            KeyMatch::Id(id) => (Some(id), None),
            KeyMatch::Name(name) => (None, Some(name)),
        },
    };
    Ok(TraceFilter {
        since_ms: (f.since_ms != 0).then_some(f.since_ms),
        until_ms: (f.until_ms != 0).then_some(f.until_ms),
        client_key: None,
        client_key_id,
        client_key_name,
        key_ids,
        scope_key_ids,
        model: non_empty(f.model),
        provider: non_empty(f.provider),
        region: non_empty(f.region),
        status: None,
        status_class: None,
        node_id: None,
    })
}

fn status_class(s: &str) -> Result<Option<StatusClass>> {
    Ok(Some(match s {
        "" => return Ok(None),
        "2xx" => StatusClass::Success2xx,
        "4xx" => StatusClass::Client4xx,
        "5xx" => StatusClass::Server5xx,
        "ok" => StatusClass::Ok,
        "error" => StatusClass::Error,
        other => {
            return Err(Error::invalid(format!(
                "unknown status_class {other:?} (expected 2xx, 4xx, 5xx, ok or error)"
            )));
        }
    }))
}

/// Key id -> owner's username.
pub(super) fn key_owner_names(conn: &mut AnyConnection) -> Result<HashMap<String, String>> {
    Ok(key_people(conn)?.0)
}

/// Client key id → the name of the team its owner is in now (keys without
/// an owner, or whose owner is in no team, are left out).
pub(super) fn key_team_names(conn: &mut AnyConnection) -> Result<HashMap<String, String>> {
    Ok(key_people(conn)?.1)
}

/// Client key id → its owner's username, and → the owner's team's name,
/// from one read of the keys and users.
pub(super) fn key_people(
    conn: &mut AnyConnection,
) -> Result<(HashMap<String, String>, HashMap<String, String>)> {
    let teams = super::users::team_names(conn)?;
    let mut user_of = HashMap::new();
    let mut team_of = HashMap::new();
    for u in crate::db::identity::list_users(conn)? {
        if let Some(team) = u.team_id.as_ref().and_then(|t| teams.get(t)) {
            team_of.insert(u.id.clone(), team.clone());
        }
        user_of.insert(u.id, u.username);
    }
    let (mut users, mut teams) = (HashMap::new(), HashMap::new());
    for (key, uid) in client_key_owners(conn)? {
        let Some(uid) = uid else {
            continue;
        };
        if let Some(team) = team_of.get(&uid) {
            teams.insert(key.clone(), team.clone());
        }
        if let Some(name) = user_of.get(&uid) {
            users.insert(key, name.clone());
        }
    }
    Ok((users, teams))
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Provider name -> the wire format it is sent (openai, anthropic, gemini).
pub fn upstream_formats(snapshot: &aigw_proto::pb::config::Snapshot) -> HashMap<String, String> {
    snapshot
        .providers
        .iter()
        .map(|p| {
            let format = match p.kind.as_str() {
                "openai-compatible" => "openai",
                k => k,
            };
            (p.name.clone(), format.to_string())
        })
        .collect()
}

fn info(
    t: TraceRow,
    owners: &HashMap<String, String>,
    formats: &HashMap<String, String>,
) -> TraceInfo {
    TraceInfo {
        overhead_us: crate::rollup::overhead_us(&t),
        upstream_format: formats.get(&t.provider).cloned().unwrap_or_default(),
        owner: owners.get(&t.client_key_id).cloned().unwrap_or_default(),
        request_id: t.request_id,
        started_at_ms: t.started_at_ms,
        client_key_id: t.client_key_id,
        client_key_name: t.client_key_name,
        model: t.model,
        provider: t.provider,
        provider_key: t.provider_key,
        status: u32::try_from(t.status).unwrap_or(0),
        latency_us: unsigned(t.latency_us),
        ttfb_us: unsigned(t.ttfb_us),
        input_tokens: unsigned(t.input_tokens),
        output_tokens: unsigned(t.output_tokens),
        cached_tokens: unsigned(t.cached_tokens),
        reasoning_tokens: unsigned(t.reasoning_tokens),
        cost: t.cost,
        region: t.region,
        node_id: t.node_id,
        stream: t.stream,
        endpoint: t.endpoint,
        api_format: t.api_format,
        error: t.error.unwrap_or_default(),
        dropped_fields: serde_json::from_str(&t.dropped_fields).unwrap_or_default(),
        usage_source: t.usage_source,
        refused_by: t.refused_by,
    }
}

#[derive(Deserialize)]
struct AttemptJson {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    provider_key: String,
    #[serde(default)]
    status: u32,
    #[serde(default)]
    latency_us: u64,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cooldown_ms: u64,
}

fn attempts(json: &str, request_id: &str) -> Vec<TraceAttempt> {
    match serde_json::from_str::<Vec<AttemptJson>>(json) {
        Ok(list) => list
            .into_iter()
            .map(|a| TraceAttempt {
                provider: a.provider,
                provider_key: a.provider_key,
                status: a.status,
                latency_us: a.latency_us,
                error: a.error.unwrap_or_default(),
                cooldown_ms: a.cooldown_ms,
            })
            .collect(),
        Err(e) => {
            tracing::warn!(request_id, error = %e, "stored attempts are not valid JSON");
            Vec::new()
        }
    }
}

/// (since, until, bucket length) with defaults filled in and bounds checked.
fn usage_range(q: &UsageQuery, now: i64) -> Result<(i64, i64, Bucket, i64)> {
    let bucket = match q.bucket() {
        Bucket::Unspecified | Bucket::Hour => Bucket::Hour,
        Bucket::Day => Bucket::Day,
    };
    let (bucket_ms, default_span) = match bucket {
        Bucket::Day => (DAY_MS, 30 * DAY_MS),
        _ => (HOUR_MS, DAY_MS),
    };
    if q.since_ms < 0 || q.until_ms < 0 {
        return Err(Error::invalid(
            "since_ms and until_ms are epoch milliseconds and cannot be negative",
        ));
    }
    let until = if q.until_ms == 0 { now } else { q.until_ms };
    let since = if q.since_ms == 0 {
        until.saturating_sub(default_span)
    } else {
        q.since_ms
    };
    if since >= until {
        return Err(Error::invalid("since_ms must be before until_ms"));
    }
    if until - since > MAX_WINDOW_MS {
        return Err(Error::invalid("the time range may span at most 400 days"));
    }
    if (until - since) / bucket_ms > MAX_BUCKETS {
        return Err(Error::invalid(
            "too many buckets: narrow the range or use daily buckets",
        ));
    }
    Ok((since, until, bucket, bucket_ms))
}

#[tonic::async_trait]
impl InsightService for AdminSvc {
    async fn list_traces(
        &self,
        request: Request<TraceQuery>,
    ) -> Result<Response<TraceList>, Status> {
        let (_, access) = self.caller(&request, rbac::LIST_TRACES).await?;
        let q = request.into_inner();
        let formats = upstream_formats(&self.publisher.current().core);
        let class = status_class(&q.status_class)?;
        let before = page::decode(&q.page_token)?;
        let limit = page::size(q.page_size);
        let list = self
            .read(move |conn| {
                let mut f = trace_filter(
                    conn,
                    &access,
                    &Filters {
                        since_ms: q.since_ms,
                        until_ms: q.until_ms,
                        client_key: &q.client_key,
                        user: &q.user,
                        model: &q.model,
                        provider: &q.provider,
                        region: &q.region,
                    },
                )?;
                f.status = q.status.map(|s| i32::try_from(s).unwrap_or(i32::MAX));
                f.status_class = class;
                f.node_id = non_empty(&q.node_id);
                let rows = traces::list(conn, &f, before, limit)?;
                let next_page_token =
                    page::next(&rows, limit, |r| (r.started_at_ms, r.request_id.as_str()));
                let owners = key_owner_names(conn)?;
                Ok(TraceList {
                    traces: rows
                        .into_iter()
                        .map(|t| info(t, &owners, &formats))
                        .collect(),
                    next_page_token,
                })
            })
            .await?;
        Ok(Response::new(list))
    }

    async fn get_trace(
        &self,
        request: Request<GetTraceRequest>,
    ) -> Result<Response<TraceDetail>, Status> {
        let (p, _) = self.caller(&request, rbac::GET_TRACE).await?;
        let id = request.into_inner().request_id;
        let formats = upstream_formats(&self.publisher.current().core);
        let detail = self
            .read(move |conn| {
                let t = traces::find(conn, &id)?
                    .ok_or_else(|| Error::NotFound(format!("no trace with request_id {id:?}")))?;
                let owner = client_key_owners(conn)?
                    .into_iter()
                    .find(|(k, _)| *k == t.client_key_id)
                    .and_then(|(_, o)| o);
                rbac::authorize(&p, rbac::GET_TRACE, Target::Owned(owner.as_deref()))?;
                let attempts = attempts(&t.attempts, &t.request_id);
                let owners = key_owner_names(conn)?;
                Ok(TraceDetail {
                    trace: Some(info(t, &owners, &formats)),
                    attempts,
                })
            })
            .await?;
        Ok(Response::new(detail))
    }

    async fn get_usage(
        &self,
        request: Request<UsageQuery>,
    ) -> Result<Response<UsageReport>, Status> {
        let (_, access) = self.caller(&request, rbac::GET_USAGE).await?;
        let q = request.into_inner();
        let (since, until, bucket, bucket_ms) = usage_range(&q, now_ms())?;
        let report = self
            .read(move |conn| {
                let f = trace_filter(
                    conn,
                    &access,
                    &Filters {
                        since_ms: since,
                        until_ms: until,
                        client_key: &q.client_key,
                        user: &q.user,
                        model: &q.model,
                        provider: &q.provider,
                        region: &q.region,
                    },
                )?;
                let rows = traces::usage_rows(conn, &f, MAX_USAGE_ROWS)?;
                if i64::try_from(rows.len()).unwrap_or(i64::MAX) > MAX_USAGE_ROWS {
                    return Err(Error::FailedPrecondition(format!(
                        "more than {MAX_USAGE_ROWS} requests in the range: narrow it or add filters"
                    )));
                }
                let owners = match q.group_by() {
                    GroupBy::User => key_owner_names(conn)?,
                    GroupBy::Team => key_team_names(conn)?,
                    _ => HashMap::new(),
                };
                let (totals, series) = usage::aggregate(&rows, bucket_ms, |r| match q.group_by() {
                    GroupBy::None => String::new(),
                    GroupBy::Key => r.client_key_name.clone(),
                    GroupBy::User | GroupBy::Team => {
                        owners.get(&r.client_key_id).cloned().unwrap_or_default()
                    }
                    GroupBy::Provider => r.provider.clone(),
                    GroupBy::Model => r.model.clone(),
                    GroupBy::Region => r.region.clone(),
                });
                Ok(UsageReport {
                    since_ms: since,
                    until_ms: until,
                    bucket: bucket.into(),
                    totals: Some(totals),
                    series,
                })
            })
            .await?;
        Ok(Response::new(report))
    }

    async fn get_pool_health(
        &self,
        request: Request<PoolHealthQuery>,
    ) -> Result<Response<PoolHealth>, Status> {
        self.caller(&request, rbac::GET_POOL_HEALTH).await?;
        let window = match request.get_ref().window_ms {
            0 => DEFAULT_POOL_WINDOW_MS,
            w if (1..=MAX_WINDOW_MS).contains(&w) => w,
            _ => {
                return Err(
                    Error::invalid("window_ms must be positive and at most 400 days").into(),
                );
            }
        };
        let now = now_ms();
        let since = now - window;
        let configured: Vec<(String, String)> = self
            .publisher
            .current()
            .core
            .providers
            .iter()
            .flat_map(|p| p.keys.iter().map(|k| (p.name.clone(), k.name.clone())))
            .collect();
        let rows = self
            .read(move |conn| {
                let f = TraceFilter {
                    since_ms: Some(since),
                    ..Default::default()
                };
                traces::attempt_rows(conn, &f, MAX_POOL_ROWS)
            })
            .await?;
        Ok(Response::new(PoolHealth {
            since_ms: since,
            keys: usage::pool_health(&rows, &configured, now),
        }))
    }
}
