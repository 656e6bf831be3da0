//! OverviewService: the admin UI's overview, read from the usage rollups
//! (`crate::rollup`), and the same pushed again whenever traces are stored.
//!
//! The period ends with the bucket holding "now" and spans a whole number
//! of buckets (12 × 5 min, 24 × 1 h, 28 × 6 h, 30 × 1 day); the previous
//! period is the same number of buckets before it. Unfiltered, an admin's
//! overview reads the total and one-dimension rows; a filter or a member's
//! scope reads the full-combination rows that match.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::time::Duration;

use aigw_proto::pb::admin::overview_service_server::OverviewService;
use aigw_proto::pb::admin::{
    Overview, OverviewGroup, OverviewPoint, OverviewQuery, OverviewRange, OverviewStats,
};
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::insight::key_people;
use super::rbac::{self, Access};
use super::{AdminSvc, authn};
use crate::db::config::client_key_ids_of;
use crate::db::identity::find_user;
use crate::db::rollups::{RollupFilter, RollupRow, scan};
use crate::db::traces::{KeyMatch, resolve_client_key};
use crate::db::{AnyConnection, now_ms};
use crate::error::Result;
use crate::rollup::{DAY_MS, Decoded, HOUR_MS, Level, MINUTE_MS, Signal, Sums, bucket_start};

/// Groups listed per dimension.
pub const MAX_GROUPS: usize = 25;
/// Watchers get at most one update per this.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct OverviewSvc {
    pub admin: AdminSvc,
    pub stored: Signal,
}

/// (period, bucket) lengths of a range.
pub fn range_ms(r: OverviewRange) -> (i64, i64) {
    match r {
        OverviewRange::OverviewRange1h => (HOUR_MS, 5 * MINUTE_MS),
        OverviewRange::Unspecified | OverviewRange::OverviewRange24h => (DAY_MS, HOUR_MS),
        OverviewRange::OverviewRange7d => (7 * DAY_MS, 6 * HOUR_MS),
        OverviewRange::OverviewRange30d => (30 * DAY_MS, DAY_MS),
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn stats(s: &Sums, percentiles: bool) -> OverviewStats {
    let mut o = OverviewStats {
        requests: s.requests,
        errors: s.errors,
        input_tokens: s.input_tokens,
        output_tokens: s.output_tokens,
        cached_tokens: s.cached_tokens,
        reasoning_tokens: s.reasoning_tokens,
        cost: s.cost,
        ..Default::default()
    };
    if percentiles {
        o.latency_p50_ms = s.latency.percentile_ms(0.50);
        o.latency_p95_ms = s.latency.percentile_ms(0.95);
        o.latency_p99_ms = s.latency.percentile_ms(0.99);
        o.ttfb_p50_ms = s.ttfb.percentile_ms(0.50);
        o.ttfb_p95_ms = s.ttfb.percentile_ms(0.95);
        o.ttfb_p99_ms = s.ttfb.percentile_ms(0.99);
        o.overhead_p50_ms = s.overhead.percentile_ms(0.50);
        o.overhead_p95_ms = s.overhead.percentile_ms(0.95);
        o.overhead_p99_ms = s.overhead.percentile_ms(0.99);
    }
    o
}

/// One dimension's groups: totals of both periods and the current series.
#[derive(Default)]
struct Groups {
    current: HashMap<String, Sums>,
    previous: HashMap<String, Sums>,
    series: HashMap<String, BTreeMap<i64, Sums>>,
}

impl Groups {
    /// A row of the current period, its histograms parsed.
    fn add(&mut self, name: &str, d: &Decoded<'_>) {
        self.current
            .entry(name.to_string())
            .or_default()
            .add_decoded(d);
        self.series
            .entry(name.to_string())
            .or_default()
            .entry(d.row.bucket_start_ms)
            .or_default()
            .add_counts(d.row);
    }

    /// A row of the previous period: only groups of the current period are
    /// listed, and their previous totals need no percentiles.
    fn add_previous(&mut self, name: &str, row: &RollupRow) {
        self.previous
            .entry(name.to_string())
            .or_default()
            .add_counts(row);
    }

    fn list(mut self) -> Vec<OverviewGroup> {
        let mut names: Vec<(u64, String)> = self
            .current
            .iter()
            .map(|(n, s)| (s.requests, n.clone()))
            .collect();
        names.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        names.truncate(MAX_GROUPS);
        names
            .into_iter()
            .map(|(_, name)| {
                let cur = self.current.remove(&name).unwrap_or_default();
                let prev = self.previous.remove(&name).unwrap_or_default();
                let series = self.series.remove(&name).unwrap_or_default();
                OverviewGroup {
                    stats: Some(stats(&cur, true)),
                    previous: Some(stats(&prev, false)),
                    series: points(series, false),
                    name,
                }
            })
            .collect()
    }
}

fn points(series: BTreeMap<i64, Sums>, percentiles: bool) -> Vec<OverviewPoint> {
    series
        .into_iter()
        .map(|(start, s)| OverviewPoint {
            bucket_start_ms: start,
            stats: Some(stats(&s, percentiles)),
        })
        .collect()
}

/// The totals of both periods and the current period's series.
#[derive(Default)]
struct Totals {
    since: i64,
    current: Sums,
    previous: Sums,
    series: BTreeMap<i64, Sums>,
}

impl Totals {
    /// Adds a row; returns it parsed when it is of the current period (its
    /// histograms are parsed once, then added to every sum it belongs to).
    fn add<'a>(&mut self, row: &'a RollupRow) -> Option<Decoded<'a>> {
        if row.bucket_start_ms < self.since {
            self.previous.add_counts(row);
            return None;
        }
        let d = Decoded::of(row);
        self.current.add_decoded(&d);
        self.series
            .entry(row.bucket_start_ms)
            .or_default()
            .add_decoded(&d);
        Some(d)
    }
}

/// The overview of `q` for a caller with `access`, at `now`.
pub fn compute(
    conn: &mut AnyConnection,
    access: &Access,
    q: &OverviewQuery,
    now: i64,
) -> Result<Overview> {
    let (period, span) = range_ms(q.range());
    let until = bucket_start(now, span) + span;
    let since = until - period;
    let prev_since = since - period;
    let mut key_ids = Vec::new();
    if let Some(uid) = access.owner() {
        key_ids.push(client_key_ids_of(conn, uid)?);
    }
    if !q.user.is_empty() {
        key_ids.push(match find_user(conn, &q.user)? {
            Some(u) => client_key_ids_of(conn, &u.id)?,
            None => Vec::new(),
        });
    }
    let (owner_of, team_of) = key_people(conn)?;
    if !q.team.is_empty() {
        key_ids.push(
            team_of
                .iter()
                .filter(|(_, team)| **team == q.team)
                .map(|(key, _)| key.clone())
                .collect(),
        );
    }
    let filtered = !key_ids.is_empty()
        || [&q.client_key, &q.model, &q.provider, &q.region]
            .iter()
            .any(|f| !f.is_empty());
    let (client_key_id, client_key_name) = match q.client_key.as_str() {
        "" => (None, None),
        v => match resolve_client_key(conn, v)? {
            KeyMatch::Id(id) => (Some(id), None),
            KeyMatch::Name(name) => (None, Some(name)),
        },
    };
    let base = RollupFilter {
        level: Level::Full as i32,
        span_ms: span,
        since_ms: prev_since,
        until_ms: until,
        key_ids,
        client_key_id,
        client_key_name,
        provider: non_empty(&q.provider),
        model: non_empty(&q.model),
        region: non_empty(&q.region),
    };
    let read = |conn: &mut AnyConnection, level: Level| {
        scan(
            conn,
            &RollupFilter {
                level: level as i32,
                ..base.clone()
            },
        )
    };

    let mut totals = Totals {
        since,
        ..Default::default()
    };
    let mut dims: [Groups; 6] = Default::default();
    let [by_region, by_provider, by_model, by_key, by_user, by_team] = &mut dims;
    // Each row's histograms are parsed once (only current rows need them),
    // then added to every sum the row belongs to.
    let owner = |row: &RollupRow| {
        owner_of
            .get(&row.client_key_id)
            .map_or(String::new(), String::clone)
    };
    let team = |row: &RollupRow| team_of.get(&row.client_key_id).map_or("", String::as_str);
    if filtered {
        for row in read(conn, Level::Full)? {
            let who = owner(&row);
            match totals.add(&row) {
                Some(d) => {
                    by_region.add(&row.region, &d);
                    by_provider.add(&row.provider, &d);
                    by_model.add(&row.model, &d);
                    by_key.add(&row.client_key_name, &d);
                    by_user.add(&who, &d);
                    by_team.add(team(&row), &d);
                }
                None => {
                    by_region.add_previous(&row.region, &row);
                    by_provider.add_previous(&row.provider, &row);
                    by_model.add_previous(&row.model, &row);
                    by_key.add_previous(&row.client_key_name, &row);
                    by_user.add_previous(&who, &row);
                    by_team.add_previous(team(&row), &row);
                }
            }
        }
    } else {
        for row in read(conn, Level::Total)? {
            totals.add(&row);
        }
        let dims: [(Level, &mut Groups, DimName); 3] = [
            (Level::Region, by_region, |r| &r.region),
            (Level::Provider, by_provider, |r| &r.provider),
            (Level::Model, by_model, |r| &r.model),
        ];
        for (level, groups, name) in dims {
            for row in read(conn, level)? {
                if row.bucket_start_ms >= since {
                    groups.add(name(&row), &Decoded::of(&row));
                } else {
                    groups.add_previous(name(&row), &row);
                }
            }
        }
        for row in read(conn, Level::Key)? {
            let who = owner(&row);
            if row.bucket_start_ms >= since {
                let d = Decoded::of(&row);
                by_key.add(&row.client_key_name, &d);
                by_user.add(&who, &d);
                by_team.add(team(&row), &d);
            } else {
                by_key.add_previous(&row.client_key_name, &row);
                by_user.add_previous(&who, &row);
                by_team.add_previous(team(&row), &row);
            }
        }
    }
    let [by_region, by_provider, by_model, by_key, by_user, by_team] = dims.map(Groups::list);
    Ok(Overview {
        since_ms: since,
        until_ms: until,
        bucket_ms: span,
        current: Some(stats(&totals.current, true)),
        previous: Some(stats(&totals.previous, false)),
        series: points(totals.series, true),
        by_region,
        by_provider,
        by_model,
        by_client_key: by_key,
        by_user,
        by_team,
        generated_at_ms: now,
    })
}

impl OverviewSvc {
    async fn overview(&self, access: Access, q: OverviewQuery) -> Result<Overview, Status> {
        self.admin
            .read(move |conn| compute(conn, &access, &q, now_ms()))
            .await
    }
}

/// Which column of a rollup row names its group at one level.
type DimName = fn(&RollupRow) -> &str;

type OverviewStream = Pin<Box<dyn Stream<Item = Result<Overview, Status>> + Send>>;

#[tonic::async_trait]
impl OverviewService for OverviewSvc {
    async fn get_overview(
        &self,
        request: Request<OverviewQuery>,
    ) -> Result<Response<Overview>, Status> {
        let (_, access) = self.admin.caller(&request, rbac::GET_OVERVIEW).await?;
        let o = self.overview(access, request.into_inner()).await?;
        Ok(Response::new(o))
    }

    type WatchOverviewStream = OverviewStream;

    async fn watch_overview(
        &self,
        request: Request<OverviewQuery>,
    ) -> Result<Response<OverviewStream>, Status> {
        let (p, access) = self.admin.caller(&request, rbac::WATCH_OVERVIEW).await?;
        let admin = matches!(p.role, rbac::Role::Admin);
        let watcher = Watcher::admit(p.user_id.unwrap_or_default(), admin)?;
        let meta = request.metadata().clone();
        let q = request.into_inner();
        let first = self.overview(access, q.clone()).await?;
        let (tx, rx) = mpsc::channel(2);
        let svc = self.clone();
        let mut stored = self.stored.subscribe();
        tokio::spawn(async move {
            let _watcher = watcher;
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    changed = stored.changed() => if changed.is_err() { return },
                    () = tx.closed() => return,
                }
                // Coalesce: one update per interval, whatever came in it.
                tokio::time::sleep(WATCH_INTERVAL).await;
                stored.borrow_and_update();
                // The caller is checked again each time, so a logout or a
                // revocation ends the stream.
                let next =
                    match authn::authenticate(&svc.admin.db, &svc.admin.bootstrap_tokens, &meta)
                        .await
                        .and_then(|p| rbac::authorize(&p, rbac::WATCH_OVERVIEW, rbac::Target::None))
                    {
                        Ok(access) => svc.overview(access, q.clone()).await,
                        Err(e) => Err(e.into()),
                    };
                let end = next.is_err();
                if tx.send(next).await.is_err() || end {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Live overviews one user may watch at once, and all users together: each
/// recomputes the overview every second while traces arrive, on the
/// database pool the trace ingest and every Admin call share.
const MAX_WATCHES_PER_USER: usize = 8;
const MAX_WATCHES: usize = 64;

static WATCHES: std::sync::LazyLock<std::sync::Mutex<HashMap<String, usize>>> =
    std::sync::LazyLock::new(Default::default);

/// One live overview counted against [`MAX_WATCHES_PER_USER`] and
/// [`MAX_WATCHES`] until dropped. The bootstrap token and its tokens count
/// as one user; admins are not held to the total (others filling it
/// cannot lock them out).
struct Watcher(String);

impl Watcher {
    fn admit(user: String, admin: bool) -> Result<Self, Status> {
        let mut w = WATCHES.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = w.values().sum();
        let mine = w.get(&user).copied().unwrap_or(0);
        if mine >= MAX_WATCHES_PER_USER || (total >= MAX_WATCHES && !admin) {
            return Err(Status::resource_exhausted(format!(
                "too many live overviews open (at most {MAX_WATCHES_PER_USER} per user); close one"
            )));
        }
        *w.entry(user.clone()).or_default() += 1;
        Ok(Self(user))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let mut w = WATCHES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = w.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                w.remove(&self.0);
            }
        }
    }
}

#[cfg(test)]
mod tests;
