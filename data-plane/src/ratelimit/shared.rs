//! Budgets in Redis, shared by the data planes of a region. One Lua script
//! per budget checks every limit and reserves atomically (two data planes
//! cannot both take the last slot); another settles. A budget's keys share
//! one hash tag, so each script touches one slot (Redis Cluster works).
//! Connections come from a deadpool pool; connecting, waiting for a
//! connection and every command are bounded, so a slow or dead Redis never
//! holds a request for more than `TIMEOUT`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aigw_proto::model::budget::month_period;
use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};

use super::{
    DAY_MS, Demand, Enforced, Exceeded, Headroom, Kind, MINUTE_MS, RESERVATION_TTL_MS, SECOND_MS,
    Standing, overlap,
};

/// A request waits at most this long for the limit store by default
/// (`AIGW_REDIS_TIMEOUT_MS`): connection from the pool and the script.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failure, requests skip the store this long (no wait each).
const BACKOFF_MS: u64 = 1_000;

/// KEYS: 1 second, 2 this minute, 3 last minute, 4 day, 5 month,
/// 6 reservations (zset: id → expiry), 7 reservation amounts (hash).
/// ARGV: 1 now, 2 request id, 3 expiry, 4 tokens, 5 cost, 6 rps, 7 rpm,
/// 8 tpm, 9 tpd, 10 cpd, 11 cpm, 12 concurrent, 13 overlap (−1: no limit).
/// Returns {0, used…} when admitted, {code, limit, this minute's use,
/// last minute's use, what the request asks} when refused (the two uses
/// are 0 but for the per-minute limits).
const ADMIT: &str = r"
local now = tonumber(ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now)
for _, id in ipairs(gone) do
  local v = redis.call('HGET', KEYS[7], id)
  if v then
    local sp = string.find(v, ' ')
    redis.call('HINCRBY', KEYS[7], '~t', -tonumber(string.sub(v, 1, sp - 1)))
    redis.call('HINCRBYFLOAT', KEYS[7], '~c', -tonumber(string.sub(v, sp + 1)))
    redis.call('HDEL', KEYS[7], id)
  end
  redis.call('ZREM', KEYS[6], id)
end
local function num(k, f) return tonumber(redis.call('HGET', k, f) or '0') end
local rt, rc = num(KEYS[7], '~t'), num(KEYS[7], '~c')
local et, ec, ov = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[13])
local lim = {}
for i = 6, 12 do lim[i] = tonumber(ARGV[i]) end
local inflight = redis.call('ZCARD', KEYS[6])
local sec = tonumber(redis.call('GET', KEYS[1]) or '0')
local mreq = num(KEYS[3], 'r') * ov + num(KEYS[2], 'r')
local mtok = num(KEYS[3], 't') * ov + num(KEYS[2], 't') + rt
local dtok = num(KEYS[4], 't') + rt
local dcost = num(KEYS[4], 'c') + rc
local mcost = num(KEYS[5], 'c') + rc
local checks = {
  {1, lim[12], inflight, 1}, {2, lim[6], sec, 1}, {3, lim[7], mreq, 1},
  {4, lim[8], mtok, et}, {5, lim[9], dtok, et}, {6, lim[10], dcost, ec}, {7, lim[11], mcost, ec},
}
for _, c in ipairs(checks) do
  if c[2] >= 0 and c[3] + c[4] > c[2] + 1e-9 then
    local cur, prev = 0, 0
    if c[1] == 3 then cur, prev = num(KEYS[2], 'r'), num(KEYS[3], 'r') end
    if c[1] == 4 then cur, prev = num(KEYS[2], 't') + rt, num(KEYS[3], 't') end
    return {c[1], tostring(c[2]), tostring(cur), tostring(prev), tostring(c[4])}
  end
end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], 2000)
redis.call('HINCRBY', KEYS[2], 'r', 1)
redis.call('PEXPIRE', KEYS[2], 120000)
redis.call('ZADD', KEYS[6], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[7], ARGV[2], ARGV[4] .. ' ' .. ARGV[5])
redis.call('HINCRBY', KEYS[7], '~t', et)
redis.call('HINCRBYFLOAT', KEYS[7], '~c', ec)
return {0, tostring(sec + 1), tostring(mreq + 1), tostring(mtok + et), tostring(dtok + et),
  tostring(dcost + ec), tostring(mcost + ec)}
";

/// KEYS: 1 the admission minute, 2 day, 3 month, 4 reservations, 5 amounts.
/// ARGV: 1 request id, 2 tokens used, 3 cost.
const SETTLE: &str = r"
local v = redis.call('HGET', KEYS[5], ARGV[1])
if v then
  local sp = string.find(v, ' ')
  redis.call('HINCRBY', KEYS[5], '~t', -tonumber(string.sub(v, 1, sp - 1)))
  redis.call('HINCRBYFLOAT', KEYS[5], '~c', -tonumber(string.sub(v, sp + 1)))
  redis.call('HDEL', KEYS[5], ARGV[1])
end
redis.call('ZREM', KEYS[4], ARGV[1])
local t, c = tonumber(ARGV[2]), tonumber(ARGV[3])
if t > 0 then
  redis.call('HINCRBY', KEYS[1], 't', t)
  redis.call('PEXPIRE', KEYS[1], 120000)
  redis.call('HINCRBY', KEYS[2], 't', t)
end
if c > 0 then
  redis.call('HINCRBYFLOAT', KEYS[2], 'c', c)
  redis.call('HINCRBYFLOAT', KEYS[3], 'c', c)
end
redis.call('PEXPIRE', KEYS[2], 172800000)
redis.call('PEXPIRE', KEYS[3], 2764800000)
return 0
";

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("Redis failed recently; not asking again yet")]
    Backoff,
    #[error("Redis did not answer in time")]
    Timeout,
    #[error("no Redis connection: {0}")]
    Pool(String),
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    #[error("REDIS_URL: {0}")]
    Config(String),
    #[error("unexpected answer from the limit script")]
    Answer,
}

pub struct Shared {
    pool: Pool,
    timeout: Duration,
    admit: redis::Script,
    settle: redis::Script,
    reach: Arc<Reach>,
}

/// What the last call to Redis said, shared with the [`watch`] task.
struct Reach {
    /// Until when (epoch ms) requests skip the store after a failure.
    skip_until_ms: AtomicU64,
    /// Whether the last call reached Redis (for the degraded gauge and the
    /// recovery log line).
    up: std::sync::atomic::AtomicBool,
    /// When (epoch ms) a request last asked the store.
    asked_ms: AtomicU64,
}

/// How often the store is pinged when no request asked it meanwhile: the
/// degraded gauge must follow Redis on a node whose traffic has no limits
/// (no request asks Redis there), and come back to 0 once Redis answers
/// again without waiting for a limited request.
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// Pings the store every [`WATCH_EVERY`] while the limiter lives, unless a
/// request asked it since the last tick: what the limit script itself met
/// (a Redis that answers `PING` may still refuse scripts: a read-only
/// replica, an ACL, out of memory) outranks a ping. A ping sets only the
/// gauge, never the back-off that makes requests skip the store: one slow
/// ping must not change who is admitted.
async fn watch(pool: Pool, reach: std::sync::Weak<Reach>, timeout: Duration) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match reach.upgrade() {
            Some(r) if r.asked_lately() => continue,
            Some(_) => {}
            None => return,
        }
        let ping = async {
            let mut conn = pool.get().await.ok()?;
            redis::cmd("PING")
                .query_async::<String>(&mut *conn)
                .await
                .ok()
        };
        let ok = tokio::time::timeout(timeout, ping)
            .await
            .ok()
            .flatten()
            .is_some();
        let Some(reach) = reach.upgrade() else { return };
        // A request that asked during the ping has the last word.
        if !reach.asked_lately() {
            reach.seen(ok);
        }
    }
}

/// The keys of one budget, all under one hash tag.
fn keys(id: &str, now: u64, minute: u64) -> [String; 7] {
    let day = now / DAY_MS;
    let month = month_period(now);
    [
        format!("aigw:b:{{{id}}}:s:{}", now / SECOND_MS),
        format!("aigw:b:{{{id}}}:m:{minute}"),
        format!("aigw:b:{{{id}}}:m:{}", minute.saturating_sub(1)),
        format!("aigw:b:{{{id}}}:d:{day}"),
        format!("aigw:b:{{{id}}}:{month}"),
        format!("aigw:b:{{{id}}}:res"),
        format!("aigw:b:{{{id}}}:resv"),
    ]
}

fn arg_u(v: Option<u64>) -> f64 {
    v.map_or(-1.0, |v| v as f64)
}

impl Shared {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, SharedError> {
        let mut cfg = Config::from_url(url);
        cfg.pool = Some(PoolConfig {
            max_size: 64,
            timeouts: Timeouts {
                wait: Some(timeout),
                create: Some(Duration::from_millis(500)),
                recycle: Some(timeout),
            },
            ..PoolConfig::default()
        });
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| SharedError::Config(e.to_string()))?;
        // A few connections up front, so the first burst does not wait for
        // them (in the background: Redis may be down at start).
        let warm = pool.clone();
        tokio::spawn(async move {
            let held: Vec<_> = futures_util::future::join_all((0..8).map(|_| warm.get())).await;
            if held.iter().any(Result::is_ok) {
                tracing::info!("connected to the limit store");
            }
        });
        metrics::gauge!(crate::telemetry::metrics::REDIS_DEGRADED).set(0.0);
        let reach = Arc::new(Reach {
            skip_until_ms: AtomicU64::new(0),
            up: std::sync::atomic::AtomicBool::new(true),
            asked_ms: AtomicU64::new(0),
        });
        tokio::spawn(watch(pool.clone(), Arc::downgrade(&reach), timeout));
        Ok(Self {
            pool,
            timeout,
            admit: redis::Script::new(ADMIT),
            settle: redis::Script::new(SETTLE),
            reach,
        })
    }

    fn noted(&self, ok: bool, now: u64) {
        self.reach.asked_ms.store(now, Ordering::Relaxed);
        self.reach.noted(ok, now);
    }
}

impl Reach {
    /// Whether a request asked the store within the last [`WATCH_EVERY`].
    fn asked_lately(&self) -> bool {
        crate::schedule::now_ms().saturating_sub(self.asked_ms.load(Ordering::Relaxed))
            < WATCH_EVERY.as_millis() as u64
    }

    /// A request's call: a failure also makes requests skip the store for
    /// [`BACKOFF_MS`].
    fn noted(&self, ok: bool, now: u64) {
        if !ok {
            self.skip_until_ms
                .store(now + BACKOFF_MS, Ordering::Relaxed);
        }
        self.seen(ok);
    }

    /// Whether the store answered: the gauge and the recovery log line.
    fn seen(&self, ok: bool) {
        let was = self.up.swap(ok, Ordering::Relaxed);
        if was != ok {
            metrics::gauge!(crate::telemetry::metrics::REDIS_DEGRADED).set(if ok {
                0.0
            } else {
                1.0
            });
            if ok {
                tracing::info!("limit store answering again; budgets are shared once more");
            } else {
                tracing::warn!("limit store not answering; budgets follow their degraded policy");
            }
        }
    }
}

impl Shared {
    pub async fn admit(
        &self,
        b: &Enforced,
        request_id: &str,
        demand: Demand,
        now: u64,
    ) -> Result<Result<Headroom, Exceeded>, SharedError> {
        if now < self.reach.skip_until_ms.load(Ordering::Relaxed) {
            return Err(SharedError::Backoff);
        }
        let result = tokio::time::timeout(self.timeout, self.ask(b, request_id, demand, now))
            .await
            .unwrap_or(Err(SharedError::Timeout));
        self.noted(result.is_ok(), now);
        result
    }

    async fn ask(
        &self,
        b: &Enforced,
        request_id: &str,
        demand: Demand,
        now: u64,
    ) -> Result<Result<Headroom, Exceeded>, SharedError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| SharedError::Pool(e.to_string()))?;
        let l = &b.limits;
        let mut inv = self.admit.prepare_invoke();
        for k in keys(&b.id, now, now / MINUTE_MS) {
            inv.key(k);
        }
        inv.arg(now)
            .arg(request_id)
            .arg(now + RESERVATION_TTL_MS)
            .arg(demand.tokens)
            .arg(demand.cost)
            .arg(arg_u(l.rps))
            .arg(arg_u(l.rpm))
            .arg(arg_u(l.tokens_per_minute))
            .arg(arg_u(l.tokens_per_day))
            .arg(l.cost_per_day.unwrap_or(-1.0))
            .arg(l.cost_per_month.unwrap_or(-1.0))
            .arg(arg_u(l.concurrent))
            .arg(overlap(now));
        let answer: Vec<String> = inv.invoke_async(&mut *conn).await?;
        let code: i64 = answer
            .first()
            .and_then(|c| c.parse().ok())
            .ok_or(SharedError::Answer)?;
        let n = |i: usize| answer.get(i).and_then(|v| v.parse::<f64>().ok());
        if code != 0 {
            let kind = Kind::from_code(code).ok_or(SharedError::Answer)?;
            let limit = n(1).unwrap_or(0.0);
            let window = super::Window {
                cur: n(2).unwrap_or(0.0),
                prev: n(3).unwrap_or(0.0),
            };
            let want = n(4).unwrap_or(1.0);
            return Ok(Err(Exceeded {
                limit: kind.name(),
                budget: b.name.clone(),
                budget_id: b.id.clone(),
                retry_after_secs: super::retry_after_secs(kind, limit, window, want, now),
                value: limit,
                requested: None,
            }));
        }
        let mut h = Headroom::default();
        let used = [n(1), n(2), n(3), n(4), n(5), n(6)];
        let families: [(usize, Kind, Option<f64>); 6] = [
            (0, Kind::Rps, l.rps.map(|v| v as f64)),
            (1, Kind::Rpm, l.rpm.map(|v| v as f64)),
            (
                2,
                Kind::TokensPerMinute,
                l.tokens_per_minute.map(|v| v as f64),
            ),
            (3, Kind::TokensPerDay, l.tokens_per_day.map(|v| v as f64)),
            (4, Kind::CostPerDay, l.cost_per_day),
            (5, Kind::CostPerMonth, l.cost_per_month),
        ];
        for (i, kind, limit) in families {
            let (Some(limit), Some(used)) = (limit, used[i]) else {
                continue;
            };
            let s = Standing {
                limit,
                remaining: (limit - used).max(0.0),
                reset_ms: kind.reset_ms(now),
            };
            let slot = match kind {
                Kind::Rps | Kind::Rpm => &mut h.requests,
                Kind::TokensPerMinute | Kind::TokensPerDay => &mut h.tokens,
                _ => &mut h.cost,
            };
            if slot.is_none_or(|o| s.remaining < o.remaining) {
                *slot = Some(s);
            }
        }
        Ok(Ok(h))
    }

    /// Settles in the background: the answer has gone to the app already.
    pub fn settle(
        &self,
        budget: &str,
        request_id: &str,
        at_ms: u64,
        tokens: u64,
        cost: f64,
        now: u64,
    ) {
        let pool = self.pool.clone();
        let script = self.settle.clone();
        let k = keys(budget, now, super::settle_minute(at_ms, now));
        let request_id = request_id.to_string();
        tokio::spawn(async move {
            let work = async {
                let mut conn = pool
                    .get()
                    .await
                    .map_err(|e| SharedError::Pool(e.to_string()))?;
                let mut inv = script.prepare_invoke();
                // The admission minute, today, this month, the reservations.
                inv.key(&k[1]).key(&k[3]).key(&k[4]).key(&k[5]).key(&k[6]);
                inv.arg(&request_id).arg(tokens).arg(cost);
                let _: i64 = inv.invoke_async(&mut *conn).await?;
                Ok::<(), SharedError>(())
            };
            match tokio::time::timeout(Duration::from_secs(5), work).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not settle usage in the limit store");
                }
                Err(_) => tracing::warn!("settling usage in the limit store timed out"),
            }
        });
    }
}
