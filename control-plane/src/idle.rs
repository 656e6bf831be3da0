//! Background work that gives way. Storing traces is the control plane's
//! busiest work, and where it shares a machine with data planes (the
//! default single-box install, the test topology) each group it stores is
//! a few milliseconds of CPU that the kernel lets finish before it runs a
//! request's next step: that was most of the data plane's one-connection
//! p99 (docs/benchmarks.md). Under Linux's `SCHED_IDLE` a waking request
//! preempts such work at once, and a core running only it counts as idle
//! when the kernel places a woken task.
//!
//! The work runs on a thread of its own that is `SCHED_IDLE` for its whole
//! life: an unprivileged thread cannot leave `SCHED_IDLE` again, so a
//! shared thread (tokio's blocking pool) must never be lowered. Callers
//! choose per piece of work whether it may wait (`trace_writer.rs` stores
//! at normal priority when it falls behind, so a busy machine slows trace
//! storing but cannot stop it).

// The one module that may use `unsafe`: one libc call on the calling
// thread, with no pointer kept.
#![allow(unsafe_code)]

use std::sync::mpsc;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A thread under `SCHED_IDLE` running the closures handed to it, in
/// order. It ends when the handle is dropped.
pub struct IdleThread {
    tx: mpsc::Sender<Job>,
}

impl IdleThread {
    /// Starts the thread. Where `SCHED_IDLE` is refused (not Linux) it runs
    /// at the process's priority.
    pub fn spawn(name: &str) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                if !lower() {
                    tracing::debug!("SCHED_IDLE refused; background work runs at normal priority");
                }
                for job in rx {
                    job();
                }
            })?;
        Ok(Self { tx })
    }

    /// Whether the thread has ended (a job panicked).
    pub fn is_gone(&self) -> bool {
        self.tx.send(Box::new(|| {})).is_err()
    }

    /// Runs `f` on the thread; `None` if the thread is gone (a panic in an
    /// earlier job).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        self.tx.send(job).ok()?;
        result.await.ok()
    }
}

/// Puts the calling thread under `SCHED_IDLE`; whether that worked.
#[cfg(target_os = "linux")]
fn lower() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid `sched_param` for the duration of the call,
    // which the kernel only reads; pid 0 is the calling thread.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn lower() -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn policy() -> libc::c_int {
        // SAFETY: reads the calling thread's policy.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[tokio::test]
    async fn work_runs_in_order_under_sched_idle_and_the_caller_is_untouched() {
        let idle = IdleThread::spawn("test-idle").unwrap();
        assert_eq!(idle.run(policy).await, Some(libc::SCHED_IDLE));
        assert_eq!(policy(), libc::SCHED_OTHER);
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let runs = (0..5).map(|i| {
            let order = order.clone();
            idle.run(move || order.lock().unwrap().push(i))
        });
        for r in runs {
            r.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        // A job that panics ends the thread; later work says so.
        assert_eq!(idle.run(|| panic!("boom")).await, None::<()>);
        assert_eq!(idle.run(|| 1).await, None);
        assert!(idle.is_gone());
    }
}
