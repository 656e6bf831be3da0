//! The spool's writer thread. Requests hand it their encoded record and get
//! a [`Written`] ticket; the thread writes whatever has queued up in one
//! `write` per segment (group write: under load one system call carries many
//! records) and then wakes the tickets it covered. No file I/O runs on the
//! runtime's workers, and the guarantee stays what it was when each request
//! wrote its own record: the app sees the end of its answer only once the
//! record is in the kernel's hands, so a SIGKILL right after loses nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use aigw_proto::pb::trace::TraceRecord;
use prost::Message;

use super::spool::{HEADER, Segments};

/// How often an idle writer looks at the open segment's age (segments are
/// sealed at 100 ms; this bounds how late).
const TICK: Duration = Duration::from_millis(25);

/// Records waiting for the writer, already encoded (each after room for its
/// frame header, see `spool.rs`), with each one's length so a batch can be
/// cut at a segment's bound.
#[derive(Default)]
struct Queue {
    bytes: Vec<u8>,
    lens: Vec<u32>,
    /// The ticket of the last record queued.
    last: u64,
    /// The writer is (about to be) asleep on the condvar.
    idle: bool,
    closing: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake_writer: Condvar,
    /// Every ticket up to this one is written (or failed, loudly).
    written: AtomicU64,
    /// Requests waiting for their ticket, woken after each write.
    waiters: Mutex<Vec<(u64, Waker)>>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic elsewhere while holding the lock leaves a consistent
        // queue (appends are whole); keep going rather than lose traces.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn waiters(&self) -> MutexGuard<'_, Vec<(u64, Waker)>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mark_written(&self, upto: u64) {
        self.written.fetch_max(upto, Ordering::Release);
        let ready: Vec<Waker> = {
            let mut w = self.waiters();
            if w.is_empty() {
                return;
            }
            let mut ready = Vec::new();
            w.retain(|(t, waker)| {
                if *t <= upto {
                    ready.push(waker.clone());
                    false
                } else {
                    true
                }
            });
            ready
        };
        for w in ready {
            w.wake();
        }
    }
}

/// The handle requests use; cheap to clone.
#[derive(Clone)]
pub struct SpoolWriter {
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl SpoolWriter {
    /// Starts the writer thread, which owns `segments` from now on.
    pub fn start(segments: Segments) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake_writer: Condvar::new(),
            written: AtomicU64::new(0),
            waiters: Mutex::new(Vec::new()),
        });
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("trace-spool".into())
            .spawn(move || run(for_thread, segments))?;
        Ok(Self {
            shared,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Queues the record for the writer; the ticket resolves once it is
    /// written.
    pub fn submit(&self, rec: &TraceRecord) -> Written {
        // Room for the frame's header, which the writer fills in (the
        // record's index is known only there); then the record.
        let mut buf = Vec::with_capacity(HEADER + rec.encoded_len());
        buf.resize(HEADER, 0);
        // Encoding into a Vec cannot run out of room.
        let _ = rec.encode(&mut buf);
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let mut q = self.shared.queue();
        q.bytes.extend_from_slice(&buf);
        q.lens.push(len);
        q.last += 1;
        let ticket = q.last;
        let wake = std::mem::take(&mut q.idle);
        drop(q);
        // Woken after the lock is released: the writer often runs at once
        // on this same core, and woken under the lock it would block on it
        // straight away and hand the core back, two more task switches
        // (and a contended unlock) per request. Nothing is lost: the writer
        // only sleeps after setting `idle` under the lock, and checks the
        // queue under the lock when it wakes.
        if wake {
            self.shared.wake_writer.notify_one();
        }
        Written {
            shared: self.shared.clone(),
            ticket,
        }
    }

    /// Writes what is queued, seals the open segment and stops the thread.
    /// Blocking: call it off the runtime's workers.
    pub fn close(&self) {
        {
            let mut q = self.shared.queue();
            q.closing = true;
            self.shared.wake_writer.notify_one();
        }
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle
            && h.join().is_err()
        {
            tracing::error!("the trace spool writer panicked");
        }
    }
}

/// Resolves once the record it stands for is written to the spool.
pub struct Written {
    shared: Arc<Shared>,
    ticket: u64,
}

impl Written {
    fn done(&self) -> bool {
        self.shared.written.load(Ordering::Acquire) >= self.ticket
    }
}

impl Future for Written {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done() {
            return Poll::Ready(());
        }
        self.shared
            .waiters()
            .push((self.ticket, cx.waker().clone()));
        // The writer may have finished between the check and the push.
        if self.done() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// The thread: waits for records (or the next look at the segment's age),
/// writes them, wakes their requests. Ends at `close`, or once every handle
/// is gone (a node dropped without a shutdown, as in tests).
fn run(shared: Arc<Shared>, mut segments: Segments) {
    let mut bytes = Vec::new();
    let mut lens = Vec::new();
    loop {
        let (upto, closing) = {
            let mut q = shared.queue();
            while q.lens.is_empty() && !q.closing {
                q.idle = true;
                let (guard, timeout) = shared
                    .wake_writer
                    .wait_timeout(q, TICK)
                    .unwrap_or_else(|e| e.into_inner());
                q = guard;
                if timeout.timed_out() {
                    q.idle = false;
                    segments.seal_if_old();
                    if Arc::strong_count(&shared) == 1 {
                        q.closing = true;
                    }
                }
            }
            q.idle = false;
            std::mem::swap(&mut q.bytes, &mut bytes);
            std::mem::swap(&mut q.lens, &mut lens);
            (q.last, q.closing)
        };
        if !lens.is_empty() {
            segments.append(&mut bytes, &lens);
            bytes.clear();
            lens.clear();
            shared.mark_written(upto);
            segments.seal_if_old();
        }
        if closing {
            segments.seal();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::spool::{read_segment, recover, seg_path, tests::rec};
    use super::*;

    fn writer(dir: &std::path::Path) -> (SpoolWriter, tokio::sync::mpsc::UnboundedReceiver<u64>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let seg = Segments::new(dir.to_path_buf(), 1, Arc::default(), u64::MAX, tx);
        (SpoolWriter::start(seg).unwrap(), rx)
    }

    /// What a process killed right after answering leaves: the open segment.
    fn on_disk(dir: &std::path::Path) -> Vec<String> {
        let mut ids = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let copy = p.with_extension("copy");
            fs::copy(&p, &copy).unwrap();
            ids.extend(
                read_segment(&copy)
                    .unwrap()
                    .records
                    .into_iter()
                    .map(|r| r.request_id),
            );
            fs::remove_file(copy).unwrap();
        }
        ids
    }

    #[tokio::test]
    async fn a_ticket_resolves_once_its_record_is_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _rx) = writer(dir.path());
        w.submit(&rec("a")).await;
        assert_eq!(on_disk(dir.path()), ["a"]);
        w.submit(&rec("b")).await;
        assert_eq!(on_disk(dir.path()), ["a", "b"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_are_written_together_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _rx) = writer(dir.path());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move { w.submit(&rec(&format!("r{i}"))).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let mut got = on_disk(dir.path());
        got.sort();
        let mut want: Vec<_> = (0..200).map(|i| format!("r{i}")).collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn close_writes_what_is_queued_and_seals_it() {
        let dir = tempfile::tempdir().unwrap();
        let (w, mut rx) = writer(dir.path());
        let pending = w.submit(&rec("last"));
        tokio::task::spawn_blocking({
            let w = w.clone();
            move || w.close()
        })
        .await
        .unwrap();
        pending.await;
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(
            read_segment(&seg_path(dir.path(), 1)).unwrap().records[0].request_id,
            "last"
        );
        assert!(recover(dir.path()).unwrap().sealed.contains(&1));
    }
}
