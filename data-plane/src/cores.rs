//! Which of the serving threads the caller runs on. The binary serves apps
//! from one single-threaded runtime per core, each with its own
//! `SO_REUSEPORT` listener (see `listener::serve_per_core`): a connection,
//! its request's upstream connection and its timers then stay on one
//! thread, with no work stealing and no cross-thread wake-ups between them.
//! Per-thread state (the upstream connection pool's shards) is keyed by the
//! index kept here; any other thread (tests, the multi-threaded runtime)
//! is core 0.

use std::cell::Cell;

thread_local! {
    static CORE: Cell<usize> = const { Cell::new(0) };
}

/// The serving thread's index (1-based), or 0 off the serving threads.
pub fn current() -> usize {
    CORE.with(Cell::get)
}

/// Marks this thread as serving thread `index` (1-based) for its lifetime.
pub(crate) fn enter(index: usize) {
    CORE.with(|c| c.set(index));
}

/// How many serving threads to run: `requested`, or with 0 one per core
/// the process may use.
pub fn count(requested: usize) -> usize {
    if requested > 0 {
        return requested;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_other_than_the_serving_ones_are_core_zero() {
        assert_eq!(current(), 0);
        let seen = std::thread::spawn(|| {
            enter(3);
            current()
        })
        .join()
        .unwrap();
        assert_eq!(seen, 3);
        // Marking another thread leaves this one alone.
        assert_eq!(current(), 0);
    }

    #[test]
    fn an_explicit_count_wins_and_zero_means_automatic() {
        assert_eq!(count(3), 3);
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(count(0), cores);
    }
}
