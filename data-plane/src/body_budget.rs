//! Request bytes the node holds at once, across every app and connection.
//! One body is bounded by `AIGW_MAX_BODY_BYTES`; without a bound on their
//! sum, apps sending many large bodies at once (h2 allows 256 streams per
//! connection) could take the node's memory. A request past the bound is
//! refused with 503 and `Retry-After` before more of its body is read.
//!
//! One app key may hold at most a quarter of the bound, so a single key
//! (a runaway client, a leaked key) cannot take it all and refuse every
//! other app. Keys are counted in [`KEY_SLOTS`] slots by their hash: two
//! keys sharing a slot share one quarter, which only ever makes them
//! stricter.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::GatewayError;

/// Slots counting what each app key holds.
const KEY_SLOTS: usize = 1024;

pub struct BodyBudget {
    max: usize,
    used: AtomicUsize,
    /// Most one key's slot may hold.
    per_key: usize,
    by_key: Box<[AtomicUsize]>,
}

/// Bytes one request holds until dropped (its body is dropped by then).
pub struct HeldBytes {
    budget: Arc<BodyBudget>,
    bytes: usize,
    /// The app key's slot.
    slot: usize,
}

impl BodyBudget {
    /// `max` bytes in all; one key a quarter of that, but never less than
    /// `one_body`, the most one request's body may be.
    pub fn new(max: usize, one_body: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            used: AtomicUsize::new(0),
            per_key: (max / 4).max(one_body),
            by_key: (0..KEY_SLOTS).map(|_| AtomicUsize::new(0)).collect(),
        })
    }

    /// Nothing held yet, for the app key whose SHA-256 is `key_hash`.
    pub fn hold(self: &Arc<Self>, key_hash: &[u8; 32]) -> HeldBytes {
        let slot = usize::from(u16::from_le_bytes([key_hash[0], key_hash[1]])) % KEY_SLOTS;
        HeldBytes {
            budget: Arc::clone(self),
            bytes: 0,
            slot,
        }
    }

    /// Bytes held now by every request (for tests and metrics).
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

impl HeldBytes {
    /// Raises what this request holds to `total` bytes, or refuses it when
    /// the node holds too much already.
    pub fn grow_to(&mut self, total: usize) -> Result<(), GatewayError> {
        let more = total.saturating_sub(self.bytes);
        if more == 0 {
            return Ok(());
        }
        let b = &self.budget;
        let key = &b.by_key[self.slot];
        if !take(key, more, b.per_key) {
            return Err(GatewayError::Busy {
                retry_after_secs: 1,
            });
        }
        if !take(&b.used, more, b.max) {
            key.fetch_sub(more, Ordering::AcqRel);
            return Err(GatewayError::Busy {
                retry_after_secs: 1,
            });
        }
        self.bytes = total;
        Ok(())
    }
}

/// Adds `more` to `counter` if that stays within `max`. Compare and swap,
/// not add then undo: two requests crossing the bound at once must not
/// both be refused when one fits.
fn take(counter: &AtomicUsize, more: usize, max: usize) -> bool {
    let mut used = counter.load(Ordering::Acquire);
    loop {
        let next = used.saturating_add(more);
        if next > max {
            return false;
        }
        match counter.compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(now) => used = now,
        }
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        self.budget.by_key[self.slot].fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key whose hash falls in slot `n`.
    fn key(n: u8) -> [u8; 32] {
        let mut h = [0u8; 32];
        h[0] = n;
        h
    }

    #[test]
    fn bytes_are_held_until_dropped_and_refused_past_the_bound() {
        let budget = BodyBudget::new(400, 10);
        let mut a = budget.hold(&key(1));
        a.grow_to(60).unwrap();
        a.grow_to(40).unwrap();
        let mut c = budget.hold(&key(3));
        c.grow_to(100).unwrap();
        let mut d = budget.hold(&key(4));
        d.grow_to(100).unwrap();
        let mut e = budget.hold(&key(5));
        e.grow_to(100).unwrap();
        // 360 of 400 held.
        let mut b = budget.hold(&key(2));
        assert!(matches!(b.grow_to(50), Err(GatewayError::Busy { .. })));
        assert_eq!(budget.used(), 360, "a refused request holds nothing");
        assert_eq!(
            budget.by_key[2].load(Ordering::Relaxed),
            0,
            "nor does its key, refused by the node's bound"
        );
        b.grow_to(40).unwrap();
        drop(a);
        assert_eq!(budget.used(), 340);
        drop((b, c, d, e));
        assert_eq!(budget.used(), 0);
    }

    /// One key holds at most a quarter of the node's bound; others are
    /// still served beside it.
    #[test]
    fn one_key_holds_at_most_a_quarter() {
        let budget = BodyBudget::new(400, 10);
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut r = budget.hold(&key(1));
            r.grow_to(25).unwrap();
            held.push(r);
        }
        let mut fifth = budget.hold(&key(1));
        assert!(matches!(fifth.grow_to(1), Err(GatewayError::Busy { .. })));
        assert_eq!(budget.used(), 100, "the refused request holds nothing");
        let mut other = budget.hold(&key(2));
        other.grow_to(100).unwrap();
        drop(held.pop());
        fifth.grow_to(25).unwrap();
    }
}
