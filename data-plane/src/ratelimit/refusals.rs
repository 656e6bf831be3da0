//! Refusals the shared store (Redis) gave, remembered for a short while: a
//! key past its limits is then refused in process, before its body is
//! read and parsed (asking Redis before every body would cost every request
//! a round trip). Only what the store said, and only request-rate refusals
//! (see [`Refusals::remember`]): remembered for the `Retry-After` it carried
//! (at most [`MAX_MEMO_MS`], telling apps the store's time meanwhile),
//! forgotten at once when the budget's limits change.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use aigw_proto::model::Limits;

use super::{Enforced, Exceeded};

/// The longest a refusal is repeated without asking the store again.
const MAX_MEMO_MS: u64 = 10_000;
/// Budgets remembered at once (expired ones make room first).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct Refusals {
    by_budget: Mutex<HashMap<String, Memo>>,
}

struct Memo {
    refusal: Exceeded,
    until_ms: u64,
    /// When the store said to try again (past `until_ms` when it said
    /// more than the memo keeps): what repeated refusals tell the app.
    retry_at_ms: u64,
    /// The budget's limits when refused: a changed limit asks again.
    limits: Limits,
}

impl Refusals {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Memo>> {
        self.by_budget.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers that the store refused a request for `b`, when that
    /// refusal holds for any request: only request-rate limits (every
    /// request counts one). A token or cost refusal depends on the
    /// request's own size (a huge `max_tokens` is refused where a small
    /// request fits: remembering it would refuse every key sharing the
    /// budget), a concurrency slot frees when any request ends, and an
    /// unanswering store is no refusal at all.
    pub fn remember(&self, b: &Enforced, refusal: &Exceeded, now_ms: u64) {
        if !matches!(refusal.limit, "rps" | "rpm") {
            return;
        }
        let until_ms = now_ms + (refusal.retry_after_secs * 1000).min(MAX_MEMO_MS);
        let mut m = self.lock();
        if m.len() >= MAX_ENTRIES {
            m.retain(|_, memo| memo.until_ms > now_ms);
            if m.len() >= MAX_ENTRIES {
                return;
            }
        }
        m.insert(
            b.id.clone(),
            Memo {
                refusal: refusal.clone(),
                until_ms,
                retry_at_ms: now_ms + refusal.retry_after_secs * 1000,
                limits: b.limits,
            },
        );
    }

    /// The store's recent refusal of `b`, if it still stands.
    pub fn check(&self, b: &Enforced, now_ms: u64) -> Result<(), Exceeded> {
        let mut m = self.lock();
        let Some(memo) = m.get(&b.id) else {
            return Ok(());
        };
        if memo.until_ms <= now_ms || memo.limits != b.limits {
            m.remove(&b.id);
            return Ok(());
        }
        Err(Exceeded {
            retry_after_secs: memo
                .retry_at_ms
                .saturating_sub(now_ms)
                .div_ceil(1000)
                .max(1),
            ..memo.refusal.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(rpm: u64) -> Enforced {
        Enforced {
            id: "key:k1".into(),
            name: "key app".into(),
            limits: Limits {
                rpm: Some(rpm),
                ..Default::default()
            },
            max_reserve: None,
        }
    }

    fn refused(limit: &'static str, retry_after_secs: u64) -> Exceeded {
        Exceeded {
            limit,
            budget: "key app".into(),
            budget_id: "key:k1".into(),
            retry_after_secs,
            value: 2.0,
            requested: None,
        }
    }

    #[test]
    fn a_refusal_stands_for_its_retry_after_and_no_longer() {
        let r = Refusals::default();
        r.remember(&budget(2), &refused("rpm", 3), 1_000);
        let e = r.check(&budget(2), 1_500).unwrap_err();
        assert_eq!((e.limit, e.retry_after_secs), ("rpm", 3));
        assert_eq!(r.check(&budget(2), 3_200).unwrap_err().retry_after_secs, 1);
        assert!(r.check(&budget(2), 4_000).is_ok());
        // Kept at most ten seconds, whatever the store said; meanwhile the
        // app is told the store's time.
        r.remember(&budget(2), &refused("rpm", 40), 0);
        assert_eq!(r.check(&budget(2), 1).unwrap_err().retry_after_secs, 40);
        assert_eq!(r.check(&budget(2), 9_000).unwrap_err().retry_after_secs, 31);
        assert!(r.check(&budget(2), 10_000).is_ok());
    }

    #[test]
    fn a_changed_limit_or_a_refusal_that_depends_on_the_request_is_asked_again() {
        let r = Refusals::default();
        r.remember(&budget(2), &refused("rpm", 30), 0);
        assert!(r.check(&budget(100), 1).is_ok(), "the operator raised it");
        // A team's tokens refused one huge request: a small one from
        // another key of the team may fit.
        for limit in [
            "concurrent",
            "tokens_per_minute",
            "cost_per_day",
            "limit store",
        ] {
            r.remember(&budget(2), &refused(limit, 30), 0);
            assert!(r.check(&budget(2), 1).is_ok(), "{limit}");
        }
    }
}
