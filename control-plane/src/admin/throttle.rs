//! Slows password guessing at `Login`, the one RPC open without a token:
//! at most a few Argon2 verifications run at once (each takes ~19 MiB and a
//! core for a while), and a username with repeated failures is refused for a
//! minute. The lockout is short on purpose: it cuts guessing to a handful of
//! tries a minute without letting anyone lock an admin out for long.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

const MAX_FAILURES: u32 = 5;
const LOCKOUT: Duration = Duration::from_secs(60);
/// Concurrent password verifications, process-wide.
const VERIFICATIONS: usize = 4;

static GATE: Semaphore = Semaphore::const_new(VERIFICATIONS);
static FAILURES: LazyLock<Mutex<HashMap<String, (u32, Instant)>>> = LazyLock::new(Mutex::default);

/// Waits for a verification slot.
pub async fn verification_slot() -> Option<SemaphorePermit<'static>> {
    GATE.acquire().await.ok()
}

/// Seconds until `username` may try again, if it is locked out now.
pub fn locked_for(username: &str) -> Option<u64> {
    let mut f = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
    let (count, since) = *f.get(username)?;
    let elapsed = since.elapsed();
    if elapsed >= LOCKOUT {
        f.remove(username);
        return None;
    }
    (count >= MAX_FAILURES).then(|| (LOCKOUT - elapsed).as_secs().max(1))
}

pub fn failed(username: &str) {
    let mut f = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
    // Bounded: an attacker spraying usernames cannot grow this forever.
    if f.len() > 100_000 {
        f.retain(|_, (_, since)| since.elapsed() < LOCKOUT);
    }
    let e = f.entry(username.to_string()).or_insert((0, Instant::now()));
    if e.1.elapsed() >= LOCKOUT {
        *e = (0, Instant::now());
    }
    e.0 += 1;
}

pub fn succeeded(username: &str) {
    FAILURES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(username);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_a_name_and_success_clears_it() {
        let name = "throttle-test-user";
        for _ in 0..MAX_FAILURES - 1 {
            failed(name);
            assert_eq!(locked_for(name), None);
        }
        failed(name);
        let secs = locked_for(name).expect("locked after five failures");
        assert!((1..=60).contains(&secs));
        assert_eq!(locked_for("someone-else"), None);
        succeeded(name);
        assert_eq!(locked_for(name), None);
    }
}
