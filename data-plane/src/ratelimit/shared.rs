//! Counters in Redis, shared by every data plane of a deployment. One Lua
//! script checks all of a key's limits and counts the request atomically, so
//! two data planes cannot both take the last slot.

use std::time::Duration;

use aigw_proto::model::ClientKey;
use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{DAY_MS, Exceeded, MINUTE_MS, overlap, secs_to_midnight, secs_to_next_minute};

/// A request waits at most this long for the limit store.
const TIMEOUT: Duration = Duration::from_millis(50);
/// After a failure, requests skip the store this long (no 50 ms wait each).
const BACKOFF_MS: u64 = 1_000;

const ADMIT: &str = r"
local tl = tonumber(ARGV[2])
if tl >= 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= tl then return 2 end
local cl = tonumber(ARGV[3])
if cl >= 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= cl then return 3 end
local rpm = tonumber(ARGV[1])
if rpm >= 0 then
  local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
  if prev * tonumber(ARGV[4]) + cur + 1 > rpm then return 1 end
  redis.call('INCR', KEYS[1])
  redis.call('PEXPIRE', KEYS[1], 120000)
end
return 0
";

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("not connected to Redis yet")]
    NotConnected,
    #[error("Redis failed recently; not asking again yet")]
    Backoff,
    #[error("Redis did not answer within {} ms", TIMEOUT.as_millis())]
    Timeout,
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
}

pub struct Shared {
    conn: Arc<ArcSwapOption<ConnectionManager>>,
    script: redis::Script,
    /// Until when (epoch ms) requests skip the store after a failure.
    skip_until_ms: AtomicU64,
}

impl Shared {
    /// Connects in the background (retrying), so a data plane starts and
    /// serves even while Redis is down.
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let conn: Arc<ArcSwapOption<ConnectionManager>> = Arc::default();
        let slot = conn.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            loop {
                match ConnectionManager::new(client.clone()).await {
                    Ok(m) => {
                        tracing::info!("connected to the rate-limit store");
                        slot.store(Some(Arc::new(m)));
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach the rate-limit store; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
        Ok(Self {
            conn,
            script: redis::Script::new(ADMIT),
            skip_until_ms: AtomicU64::new(0),
        })
    }

    fn manager(&self) -> Result<ConnectionManager, SharedError> {
        self.conn
            .load()
            .as_deref()
            .cloned()
            .ok_or(SharedError::NotConnected)
    }

    pub async fn admit(
        &self,
        key: &ClientKey,
        now_ms: u64,
    ) -> Result<Result<(), Exceeded>, SharedError> {
        if now_ms < self.skip_until_ms.load(Ordering::Relaxed) {
            return Err(SharedError::Backoff);
        }
        let result = self.ask(key, now_ms).await;
        if result.is_err() {
            self.skip_until_ms
                .store(now_ms + BACKOFF_MS, Ordering::Relaxed);
        }
        result
    }

    async fn ask(&self, key: &ClientKey, now_ms: u64) -> Result<Result<(), Exceeded>, SharedError> {
        let mut conn = self.manager()?;
        let l = key.limits;
        let minute = now_ms / MINUTE_MS;
        let day = now_ms / DAY_MS;
        let id = &key.id;
        let mut inv = self.script.prepare_invoke();
        inv.key(format!("aigw:rl:{{{id}}}:m:{minute}"))
            .key(format!("aigw:rl:{{{id}}}:m:{}", minute.saturating_sub(1)))
            .key(format!("aigw:rl:{{{id}}}:d:{day}:tokens"))
            .key(format!("aigw:rl:{{{id}}}:d:{day}:cost"))
            .arg(l.rpm.map_or(-1, |v| v as i64))
            .arg(l.tokens_per_day.map_or(-1, |v| v as i64))
            .arg(l.cost_per_day.unwrap_or(-1.0))
            .arg(overlap(now_ms));
        let code: i64 = tokio::time::timeout(TIMEOUT, inv.invoke_async(&mut conn))
            .await
            .map_err(|_| SharedError::Timeout)??;
        Ok(match code {
            1 => Err(Exceeded {
                limit: "rpm",
                retry_after_secs: secs_to_next_minute(now_ms),
            }),
            2 => Err(Exceeded {
                limit: "tokens_per_day",
                retry_after_secs: secs_to_midnight(now_ms),
            }),
            3 => Err(Exceeded {
                limit: "cost_per_day",
                retry_after_secs: secs_to_midnight(now_ms),
            }),
            _ => Ok(()),
        })
    }

    /// Adds a finished request's usage, in the background.
    pub fn record(&self, key_id: &str, tokens: u64, cost: f64, now_ms: u64) {
        if key_id.is_empty() || (tokens == 0 && cost <= 0.0) {
            return;
        }
        let Ok(mut conn) = self.manager() else { return };
        let day = now_ms / DAY_MS;
        let tokens_key = format!("aigw:rl:{{{key_id}}}:d:{day}:tokens");
        let cost_key = format!("aigw:rl:{{{key_id}}}:d:{day}:cost");
        tokio::spawn(async move {
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("INCRBY")
                .arg(&tokens_key)
                .arg(tokens)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&tokens_key)
                .arg(2 * DAY_MS)
                .ignore();
            if cost.is_finite() && cost > 0.0 {
                pipe.cmd("INCRBYFLOAT")
                    .arg(&cost_key)
                    .arg(cost)
                    .ignore()
                    .cmd("PEXPIRE")
                    .arg(&cost_key)
                    .arg(2 * DAY_MS)
                    .ignore();
            }
            let r: Result<(), redis::RedisError> = pipe.query_async(&mut conn).await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "could not count usage in the rate-limit store");
            }
        });
    }
}
