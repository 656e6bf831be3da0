//! The spool's writer, and how requests hand it their records. A request
//! copies its encoded record straight into the open segment, which is a
//! file mapped into memory (`mapped.rs`): once copied it is in the kernel's
//! hands, so a SIGKILL right after loses nothing, and the app sees the end
//! of its answer only after that. No system call and no other thread is on
//! a request's path. The writer thread does the file work around it: it
//! makes the next segment before it is needed, seals segments once full or
//! old (cut to size, renamed, handed to the shipper) and places records
//! that came when no segment had room (then the request waits for its
//! [`Written`] ticket). No file I/O runs on the runtime's workers beyond
//! the copy into page cache.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aigw_proto::pb::trace::TraceRecord;
use prost::Message;

use super::frame::HEADER;
use super::inflight::Slot;
use super::mapped::{MAX_FRAME, Mapped};
use super::spool::{MAX_AGE, Segments};

/// How often an idle writer looks at the open segment's age (segments are
/// sealed at 100 ms; this bounds how late).
const TICK: Duration = Duration::from_millis(25);

/// Records that found no room, waiting for the writer to place them.
#[derive(Default)]
struct Queue {
    /// Encoded records (copied off the request's buffer: this path is rare).
    records: Vec<Vec<u8>>,
    /// The ticket of the last record queued. Tickets only grow (a ticket is
    /// done once `Shared::written` reaches it), so this outlives each batch
    /// the writer takes.
    last: u64,
    /// The in-flight slots of queued streams' records: freed once those
    /// are placed (see `inflight.rs`).
    slots: Vec<Slot>,
}

impl Queue {
    /// The records queued so far (with the last one's ticket), leaving the
    /// queue empty and its ticket count where it was.
    fn take(&mut self) -> Queue {
        Queue {
            records: std::mem::take(&mut self.records),
            last: self.last,
            slots: std::mem::take(&mut self.slots),
        }
    }
}

/// The segments in use, shared by the requests and the writer.
#[derive(Default)]
struct State {
    /// Taking records.
    open: Option<Mapped>,
    /// Made ahead by the writer; takes over when `open` is full.
    spare: Option<Mapped>,
    /// Full or old, for the writer to seal.
    full: Vec<Mapped>,
    queue: Queue,
    /// The writer is (about to be) asleep on the condvar.
    idle: bool,
    closing: bool,
}

impl State {
    /// Copies the record into the open segment, retiring a full one for the
    /// spare. `false`: no segment has room (none made yet, or the spare is
    /// taken too).
    fn place(&mut self, payload: &[u8]) -> bool {
        loop {
            let Some(open) = self.open.as_mut() else {
                return false;
            };
            if open.push(payload) {
                if open.is_full() {
                    self.rotate();
                }
                return true;
            }
            if open.is_empty() {
                // Does not fit even an empty segment (records are clipped far
                // below this; see `MAX_FRAME`).
                return false;
            }
            self.rotate();
        }
    }

    /// Retires the open segment (if it holds anything) and opens the spare.
    fn rotate(&mut self) {
        if let Some(open) = self.open.take() {
            if open.is_empty() {
                self.open = Some(open);
                return;
            }
            self.full.push(open);
        }
        self.open = self.spare.take();
    }

    /// The writer has something to do. Missing segments count only when
    /// the last attempt to make one did not fail (then the next tick
    /// retries).
    fn has_work(&self, failing: bool) -> bool {
        self.closing
            || !self.full.is_empty()
            || !self.queue.records.is_empty()
            || (!failing && (self.open.is_none() || self.spare.is_none()))
    }
}

struct Shared {
    state: Mutex<State>,
    wake_writer: Condvar,
    /// Every queued ticket up to this one is written (or failed, loudly).
    written: AtomicU64,
    /// Requests waiting for their ticket, woken after each placement.
    waiters: Mutex<Vec<(u64, Waker)>>,
    /// Queued records dropped because no segment could be made.
    failed: AtomicU64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves a consistent state
        // (each change is whole); keep going rather than lose traces.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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

thread_local! {
    /// Each worker thread's buffer for encoding a record (reused, so a
    /// request does not allocate for it).
    static ENCODED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The handle requests use; cheap to clone.
#[derive(Clone)]
pub struct SpoolWriter {
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl SpoolWriter {
    /// Starts the writer thread, which owns `segments` from now on and
    /// makes the first segment at once.
    pub fn start(segments: Segments) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake_writer: Condvar::new(),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
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

    /// Copies the record into the open segment; the ticket is ready at once.
    /// When no segment has room the writer places it, and the ticket
    /// resolves once it has.
    pub fn submit(&self, rec: &TraceRecord) -> Written {
        self.submit_freeing(rec, None)
    }

    /// [`Self::submit`] for a stream's record, and frees the stream's
    /// in-flight slot once the record is placed (at once, or by the writer
    /// when it was queued): until then a killed process still has it.
    pub fn submit_freeing(&self, rec: &TraceRecord, slot: Option<Slot>) -> Written {
        ENCODED.with_borrow_mut(|buf| {
            buf.clear();
            // Encoding into a Vec cannot run out of room.
            let _ = rec.encode(buf);
            self.place(buf, slot)
        })
    }

    fn place(&self, payload: &[u8], mut slot: Option<Slot>) -> Written {
        if HEADER + payload.len() > MAX_FRAME {
            // Records are clipped far below this (`trace_bounds`).
            dropped("too_large", 1);
            tracing::error!(
                bytes = payload.len(),
                "a trace record too large for the spool; dropped"
            );
            return Written::ready();
        }
        let mut st = self.shared.state();
        // Behind queued records only when the writer is placing them anyway.
        let ticket = if st.queue.records.is_empty() && st.place(payload) {
            None
        } else if st.closing && st.open.is_none() {
            // After the writer's last round: nowhere to go. A stream's slot
            // stays, so the next start files it.
            drop(st);
            dropped("shutdown", 1);
            if let Some(s) = slot {
                s.keep();
            }
            return Written::ready();
        } else {
            st.queue.records.push(payload.to_vec());
            st.queue.slots.extend(slot.take());
            st.queue.last += 1;
            Some(st.queue.last)
        };
        // The writer is woken only if it sleeps and this left it something
        // to do: a segment filled (to seal, and a spare to make) or a record
        // queued.
        let wake = st.idle && (ticket.is_some() || !st.full.is_empty());
        if wake {
            st.idle = false;
        }
        drop(st);
        // Placed: its slot, if it still has one, is free now.
        drop(slot);
        // Woken after the lock is released: the writer often runs at once on
        // this same core, and woken under the lock it would block on it
        // straight away. Nothing is lost: the writer only sleeps after
        // setting `idle` under the lock, and looks for work under the lock.
        if wake {
            self.shared.wake_writer.notify_one();
        }
        match ticket {
            Some(ticket) => Written {
                shared: Some(self.shared.clone()),
                ticket,
            },
            None => Written::ready(),
        }
    }

    /// Whether queued records were ever dropped for want of a segment
    /// (their tickets resolve all the same).
    pub fn has_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Relaxed) > 0
    }

    /// Places what is queued, seals what is open and stops the thread.
    /// Blocking: call it off the runtime's workers.
    pub fn close(&self) {
        {
            let mut st = self.shared.state();
            st.closing = true;
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

fn dropped(reason: &'static str, n: u64) {
    metrics::counter!("aigw_traces_dropped_total", "reason" => reason).increment(n);
}

/// Resolves once the record it stands for is in the spool.
pub struct Written {
    shared: Option<Arc<Shared>>,
    ticket: u64,
}

impl Written {
    fn ready() -> Self {
        Self {
            shared: None,
            ticket: 0,
        }
    }

    /// Waits, blocking, until the record is placed; `false` when `within`
    /// passed first (the writer cannot make a segment).
    pub fn wait_blocking(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while !self.done() {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    fn done(&self) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|s| s.written.load(Ordering::Acquire) >= self.ticket)
    }
}

impl Future for Written {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(shared) = self.shared.as_ref().filter(|_| !self.done()) else {
            return Poll::Ready(());
        };
        shared.waiters().push((self.ticket, cx.waker().clone()));
        // The writer may have finished between the check and the push.
        if self.done() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// The thread: waits for work (or the next look at the open segment's
/// age), seals what is full, makes what is missing, places what queued.
/// Ends at `close`, or once every handle is gone (a node dropped without a
/// shutdown, as in tests).
fn run(shared: Arc<Shared>, mut segments: Segments) {
    let mut maker = Maker { failed_at: None };
    loop {
        let (full, queue, missing, closing) = {
            let mut st = shared.state();
            loop {
                if st.open.as_ref().is_some_and(|o| o.older_than(MAX_AGE)) {
                    st.rotate();
                }
                if st.has_work(!maker.may_try()) {
                    break;
                }
                st.idle = true;
                let (guard, timeout) = shared
                    .wake_writer
                    .wait_timeout(st, TICK)
                    .unwrap_or_else(|e| e.into_inner());
                st = guard;
                st.idle = false;
                if timeout.timed_out() && Arc::strong_count(&shared) == 1 {
                    st.closing = true;
                }
            }
            let missing = usize::from(st.open.is_none()) + usize::from(st.spare.is_none());
            (
                std::mem::take(&mut st.full),
                st.queue.take(),
                missing,
                st.closing,
            )
        };
        for m in full {
            segments.seal(m);
        }
        if !closing {
            for _ in 0..missing {
                let Some(m) = maker.make(&mut segments) else {
                    break;
                };
                install(&shared, &mut segments, m);
            }
        }
        if !queue.records.is_empty() {
            let placed = place_queued(&shared, &mut segments, &mut maker, &queue.records);
            if !placed {
                // Not in the spool: their streams' slots stay, for the
                // next start to file.
                shared.failed.fetch_add(1, Ordering::Relaxed);
                queue.slots.into_iter().for_each(Slot::keep);
            }
            shared.mark_written(queue.last);
        }
        if closing {
            let mut st = shared.state();
            let open = st.open.take();
            let spare = st.spare.take();
            let full = std::mem::take(&mut st.full);
            let queue = st.queue.take();
            drop(st);
            if !queue.records.is_empty() {
                dropped("shutdown", queue.records.len() as u64);
                shared.mark_written(queue.last);
            }
            // Their records are not in the spool: the next start files them.
            queue.slots.into_iter().for_each(Slot::keep);
            for m in full.into_iter().chain(open).chain(spare) {
                segments.seal(m);
            }
            return;
        }
    }
}

/// Makes segments, and paces the attempts while the file system refuses:
/// after a failure (said once, not per attempt) the next try waits a
/// [`TICK`], however often records wake the writer meanwhile.
struct Maker {
    /// When the last attempt failed, while failing.
    failed_at: Option<Instant>,
}

impl Maker {
    fn may_try(&self) -> bool {
        self.failed_at.is_none_or(|t| t.elapsed() >= TICK)
    }

    fn make(&mut self, segments: &mut Segments) -> Option<Mapped> {
        if !self.may_try() {
            return None;
        }
        match segments.create() {
            Ok(m) => {
                if self.failed_at.take().is_some() {
                    tracing::info!("trace spool segments can be made again");
                }
                Some(m)
            }
            Err(e) => {
                if self.failed_at.is_none() {
                    tracing::error!(error = %e, "cannot make a trace spool segment; traces are dropped (counted in aigw_traces_dropped_total) until one can be made");
                }
                self.failed_at = Some(Instant::now());
                None
            }
        }
    }
}

/// Puts a segment made outside the lock where it is missing.
fn install(shared: &Shared, segments: &mut Segments, m: Mapped) {
    let mut st = shared.state();
    if st.open.is_none() {
        st.open = Some(m);
    } else if st.spare.is_none() {
        st.spare = Some(m);
    } else {
        // Only the writer installs, so both cannot have been filled since
        // it looked; removed (it is empty) all the same.
        drop(st);
        segments.seal(m);
    }
}

/// Places records that found no room, making segments as needed (outside
/// the lock: requests never wait on the file system). Records that cannot
/// be placed are dropped, counted: their requests must not wait forever.
/// Places the queued records; `false` when some were dropped (no segment
/// could be made).
fn place_queued(
    shared: &Shared,
    segments: &mut Segments,
    maker: &mut Maker,
    records: &[Vec<u8>],
) -> bool {
    let mut rest = records;
    while !rest.is_empty() {
        {
            let mut st = shared.state();
            while let Some((first, others)) = rest.split_first()
                && st.place(first)
            {
                rest = others;
            }
        }
        if rest.is_empty() {
            return true;
        }
        // No segment has room (the record fits an empty one: `place`
        // refused none for its size).
        match maker.make(segments) {
            Some(m) => install(shared, segments, m),
            None => {
                dropped("spool_error", rest.len() as u64);
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::frame::read_segment;
    use super::super::spool::{MAX_RECORDS, recover, seg_path, tests::rec};
    use super::*;

    /// Awaits `f`, failing the test if it takes 5 s (a request left waiting).
    async fn soon<T>(f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), f)
            .await
            .expect("within 5 s")
    }

    fn writer(dir: &std::path::Path) -> (SpoolWriter, tokio::sync::mpsc::UnboundedReceiver<u64>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let seg = Segments::new(dir.to_path_buf(), 1, Arc::default(), u64::MAX, tx);
        (SpoolWriter::start(seg).unwrap(), rx)
    }

    /// What a process killed right after answering leaves: every record in
    /// the spool's files (their ids, sorted). Read again from the start if the writer sealed
    /// (renamed) a file during the look.
    fn on_disk(dir: &std::path::Path) -> Vec<String> {
        'again: loop {
            let mut ids = Vec::new();
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let data = match fs::read(&p) {
                    Ok(d) => d,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue 'again,
                    Err(e) => panic!("{e}"),
                };
                let copy = dir.with_extension("copy");
                fs::write(&copy, data).unwrap();
                let seg = read_segment(&copy).unwrap();
                fs::remove_file(copy).unwrap();
                ids.extend(seg.decoded().into_iter().map(|r| r.request_id));
            }
            // Sorted: the files are listed in no particular order.
            ids.sort();
            return ids;
        }
    }

    /// A stream's record is always somewhere a killed process leaves it:
    /// its in-flight slot is freed only once the record is in a spool file,
    /// also when the record had to queue (right after start, before the
    /// writer made a segment).
    #[tokio::test]
    async fn a_streams_slot_is_freed_only_once_its_record_is_in_the_spool() {
        use super::super::inflight::InFlight;
        let (dir, slots_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let table = InFlight::create(slots_dir.path()).unwrap();
        let (w, _rx) = writer(dir.path());
        let mut tickets = Vec::new();
        for i in 0..20 {
            let r = rec(&format!("s{i}"));
            tickets.push(w.submit_freeing(&r, table.begin(&[&r], None)));
            // Slots first: a slot freed after this look was placed before it.
            let kept: Vec<String> = InFlight::left_in(slots_dir.path())
                .unwrap()
                .into_iter()
                .map(|r| r.request_id)
                .collect();
            let spooled = on_disk(dir.path());
            for j in 0..=i {
                let id = format!("s{j}");
                assert!(
                    kept.contains(&id) || spooled.contains(&id),
                    "{id} is nowhere"
                );
            }
        }
        for t in tickets {
            soon(t).await;
        }
        assert!(InFlight::left_in(slots_dir.path()).unwrap().is_empty());
    }

    /// A record the writer cannot spool (no segment can be made) keeps its
    /// stream's slot: the next start files it.
    #[tokio::test]
    async fn a_streams_slot_stays_when_its_record_cannot_be_spooled() {
        use super::super::inflight::InFlight;
        let (dir, slots_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let table = InFlight::create(slots_dir.path()).unwrap();
        let gone = dir.path().join("gone");
        let (w, _rx) = writer(&gone);
        let r = rec("s0");
        soon(w.submit_freeing(&r, table.begin(&[&r], None))).await;
        assert!(w.has_failed());
        let kept = InFlight::left_in(slots_dir.path()).unwrap();
        assert_eq!(kept.len(), 1, "the record is nowhere else");
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
            read_segment(&seg_path(dir.path(), 1)).unwrap().decoded()[0].request_id,
            "last"
        );
        assert!(recover(dir.path()).unwrap().sealed.contains(&1));
    }

    /// More records at once than the open segment and the spare hold: the
    /// ones that found no room wait for the writer, and every record lands
    /// once, in order within each segment.
    #[tokio::test]
    async fn a_burst_past_the_spare_waits_for_the_writer_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (w, mut rx) = writer(dir.path());
        let n = 3 * MAX_RECORDS + 7;
        let tickets: Vec<_> = (0..n).map(|i| w.submit(&rec(&format!("r{i}")))).collect();
        for t in tickets {
            t.await;
        }
        let mut got = on_disk(dir.path());
        got.sort();
        let mut want: Vec<_> = (0..n).map(|i| format!("r{i}")).collect();
        want.sort();
        assert_eq!(got, want);
        // The full segments were sealed, cut to what they hold.
        let mut sealed = Vec::new();
        while sealed.len() < 3 {
            sealed.push(rx.recv().await.unwrap());
        }
        for seq in sealed {
            let path = seg_path(dir.path(), seq);
            let seg = read_segment(&path).unwrap();
            assert_eq!(seg.records.len(), MAX_RECORDS);
            assert!(!seg.damaged(), "no reserved zeros left at the end");
        }
    }

    /// Tickets only grow: a record queued after an earlier batch was
    /// placed waits for its own placement (a ticket handed out again would
    /// count as done at once, before its record was anywhere).
    #[tokio::test]
    async fn tickets_keep_growing_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        // No segment can be made here: every record queues for the writer.
        let (w, _rx) = writer(&dir.path().join("gone"));
        let first: Vec<_> = (0..3).map(|i| w.submit(&rec(&format!("r{i}")))).collect();
        let last = first.last().unwrap().ticket;
        assert!(last >= 3);
        for t in first {
            soon(t).await;
        }
        let later = w.submit(&rec("later"));
        assert!(later.ticket > last, "{} after {last}", later.ticket);
        soon(later).await;
    }

    /// After a failure to make a segment the writer tries again within a
    /// tick, even while records keep waking it: once the directory is back,
    /// records land again under steady traffic.
    #[tokio::test]
    async fn the_spool_comes_back_under_steady_traffic_after_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("later");
        let (w, _rx) = writer(&spool);
        soon(w.submit(&rec("lost"))).await;
        fs::create_dir(&spool).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        for i in 0.. {
            w.submit(&rec("back")).await;
            if i % 20 == 0 && on_disk(&spool).iter().any(|id| id == "back") {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "records never land again"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A segment with a record is sealed within its age bound, cut to size.
    #[tokio::test]
    async fn an_old_segment_is_sealed_cut_to_size() {
        let dir = tempfile::tempdir().unwrap();
        let (w, mut rx) = writer(dir.path());
        w.submit(&rec("lonely")).await;
        let seq = soon(rx.recv()).await.unwrap();
        let path = seg_path(dir.path(), seq);
        let seg = read_segment(&path).unwrap();
        assert_eq!(seg.decoded()[0].request_id, "lonely");
        assert!(!seg.damaged());
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            (HEADER + rec("lonely").encoded_len()) as u64
        );
    }

    /// Where no segment can be made, records are dropped (loudly) rather
    /// than left waiting: the request still ends.
    #[tokio::test]
    async fn without_a_spool_directory_a_request_still_ends() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let (w, _rx) = writer(&gone);
        soon(w.submit(&rec("a"))).await;
        assert!(!gone.exists());
    }
}
