//! Request bytes the node holds at once, across every app and connection.
//! One body is bounded by `AIGW_MAX_BODY_BYTES`; without a bound on their
//! sum, apps sending many large bodies at once (h2 allows 256 streams per
//! connection) could take the node's memory. A request past the bound is
//! refused with 503 and `Retry-After` before more of its body is read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::GatewayError;

pub struct BodyBudget {
    max: usize,
    used: AtomicUsize,
}

/// Bytes one request holds until dropped (its body is dropped by then).
pub struct HeldBytes {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl BodyBudget {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            used: AtomicUsize::new(0),
        })
    }

    /// Nothing held yet.
    pub fn hold(self: &Arc<Self>) -> HeldBytes {
        HeldBytes {
            budget: Arc::clone(self),
            bytes: 0,
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
        // Compare and swap, not add then undo: two requests crossing the
        // bound at once must not both be refused when one fits.
        let b = &self.budget;
        let mut used = b.used.load(Ordering::Acquire);
        loop {
            let next = used.saturating_add(more);
            if next > b.max {
                return Err(GatewayError::Busy {
                    retry_after_secs: 1,
                });
            }
            match b
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => used = now,
            }
        }
        self.bytes = total;
        Ok(())
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_held_until_dropped_and_refused_past_the_bound() {
        let budget = BodyBudget::new(100);
        let mut a = budget.hold();
        a.grow_to(60).unwrap();
        a.grow_to(40).unwrap();
        let mut b = budget.hold();
        assert!(matches!(b.grow_to(50), Err(GatewayError::Busy { .. })));
        assert_eq!(budget.used(), 60, "a refused request holds nothing");
        b.grow_to(40).unwrap();
        drop(a);
        assert_eq!(budget.used(), 40);
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
