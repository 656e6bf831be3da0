//! Ships sealed segments to the control plane and deletes each one when its
//! acks arrive. On any stream error it reconnects and resends everything not
//! yet acked, oldest first.
//!
//! A segment goes as one batch or, if it holds more than a batch may
//! (`MAX_BATCH_RECORDS`, or too many bytes), as several, each acked on its
//! own (in order, with the segment's seq). A batch the control plane refuses
//! for what it holds (`InvalidArgument`, `OutOfRange`, marked as its own
//! refusal) would be refused on every resend: its segment is set aside (`NAME.bad`, counted, logged) so
//! the rest ships. The control plane ends the stream on a refusal without
//! saying which batch it was, so when several were in flight they are
//! resent one at a time until the refused one is known. Any other error
//! (unavailable, unauthenticated, internal) is retried with backoff.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_stream::wrappers::ReceiverStream;

use super::frame::{Segment, read_segment};
use super::raw_batch::{RawBatch, report};
use super::spool::{MAX_SEGMENT_BYTES, seg_path, set_aside};
use crate::control::{AuthedChannel, Backoff};

/// Batches sent but not yet acked, per connection.
const MAX_IN_FLIGHT: usize = 16;
/// The most records the control plane takes in one batch.
const MAX_BATCH_RECORDS: usize = aigw_proto::trace_bounds::MAX_BATCH_RECORDS;
/// A batch's encoded records stay below this (the control plane's message
/// limit is 16 MiB).
const MAX_BATCH_BYTES: usize = MAX_SEGMENT_BYTES as usize;

pub async fn run(
    channel: AuthedChannel,
    dir: PathBuf,
    backlog: BTreeSet<u64>,
    mut sealed_rx: UnboundedReceiver<u64>,
    spooled: Arc<AtomicU64>,
) {
    let mut backoff = Backoff::default();
    let mut state = State {
        dir,
        spooled,
        backlog,
        suspects: BTreeSet::new(),
    };
    loop {
        while let Ok(seq) = sealed_rx.try_recv() {
            state.backlog.insert(seq);
        }
        if state.backlog.is_empty() {
            match sealed_rx.recv().await {
                Some(seq) => {
                    state.backlog.insert(seq);
                }
                None => return,
            }
        }
        let mut acked = false;
        match session(&channel, &mut state, &mut sealed_rx, &mut acked).await {
            Ok(()) => backoff.reset(),
            Err(e) => {
                if acked {
                    // It worked for a while: this is a new failure.
                    backoff.reset();
                }
                metrics::counter!("aigw_trace_ship_errors_total").increment(1);
                tracing::warn!(error = %e, pending = state.backlog.len(), "trace stream to the control plane failed; will resend");
                let delay = backoff.next_delay();
                // Keep collecting sealed segments while waiting.
                let sleep = tokio::time::sleep(delay);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        seq = sealed_rx.recv() => match seq {
                            Some(seq) => { state.backlog.insert(seq); }
                            None => return,
                        },
                    }
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ShipError {
    #[error("{0}")]
    Grpc(#[from] tonic::Status),
    #[error("the control plane closed the trace stream")]
    Closed,
}

/// What outlives a connection.
struct State {
    dir: PathBuf,
    spooled: Arc<AtomicU64>,
    /// Sealed segments not yet acked, oldest first.
    backlog: BTreeSet<u64>,
    /// Segments in flight when the control plane refused a batch: sent one
    /// batch at a time until each is acked or set aside.
    suspects: BTreeSet<u64>,
}

/// A segment being shipped in this connection.
struct Loaded {
    /// Its batches not yet acked (queued or in flight).
    batches_left: usize,
    /// Records in those batches.
    records_left: u64,
    /// How it read back (damage, for the log and the count once it is done).
    damage: Segment,
}

/// Whether the control plane refused a batch for what it holds (so it
/// would refuse it again), rather than failing for a while. From a control
/// plane that marks its refusals (`marked`), only a marked one counts: the
/// same codes from a proxy on the way are retried like any failure
/// (`trace_bounds::BATCH_REFUSED`).
fn refused(status: &tonic::Status, marked: bool) -> bool {
    aigw_proto::trace_bounds::is_refused_batch(status, marked)
}

/// Cuts a segment's records (each one's encoding) into batches the
/// control plane takes.
fn batches(records: Vec<Bytes>) -> Vec<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut cur: Vec<Bytes> = Vec::new();
    let mut bytes = 0usize;
    for r in records {
        let len = r.len() + 8;
        if !cur.is_empty() && (cur.len() >= MAX_BATCH_RECORDS || bytes + len > MAX_BATCH_BYTES) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += len;
        cur.push(r);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl State {
    fn forget_bytes(&self, len: u64) {
        let left = self
            .spooled
            .fetch_sub(len, Ordering::Relaxed)
            .saturating_sub(len);
        metrics::gauge!("aigw_trace_spool_bytes").set(left as f64);
    }

    fn done(&mut self, seq: u64) {
        self.backlog.remove(&seq);
        self.suspects.remove(&seq);
    }

    /// Deletes a segment whose records were all acked (or that held none).
    fn delete(&mut self, seq: u64, damage: &Segment) {
        self.done(seq);
        let path = seg_path(&self.dir, seq);
        if let Ok(meta) = std::fs::metadata(&path)
            && std::fs::remove_file(&path).is_ok()
        {
            self.forget_bytes(meta.len());
        }
        count_damage(&path, damage);
    }

    /// Takes a segment out of the spool for good, keeping it for a look.
    fn set_aside(&mut self, seq: u64, reason: &'static str, lost: u64) {
        self.done(seq);
        let path = seg_path(&self.dir, seq);
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        match set_aside(&self.dir, &path) {
            Ok(to) => {
                self.forget_bytes(len);
                tracing::error!(path = %to.display(), reason, records = lost, "trace segment set aside, its traces dropped");
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot set a trace segment aside; deleting it");
                if std::fs::remove_file(&path).is_ok() {
                    self.forget_bytes(len);
                }
            }
        }
        metrics::counter!("aigw_trace_segments_set_aside_total", "reason" => reason).increment(1);
        metrics::counter!("aigw_traces_dropped_total", "reason" => reason).increment(lost);
    }
}

/// Logs and counts what a damaged segment lost, once, when it is done.
fn count_damage(path: &Path, seg: &Segment) {
    if !seg.damaged() {
        return;
    }
    metrics::counter!("aigw_traces_dropped_total", "reason" => "spool_corrupt").increment(seg.lost);
    if seg.torn {
        tracing::warn!(path = %path.display(), lost = seg.lost, "torn record at the end of a trace segment; dropped");
    } else {
        tracing::error!(
            path = %path.display(),
            lost = seg.lost,
            damaged_bytes = seg.damaged_bytes,
            kept = seg.records.len(),
            "corrupt trace segment: the damaged records are dropped, the others shipped"
        );
    }
}

/// One connection's life: returns Ok when everything was acked and the
/// stream went idle, Err on any failure. `acked` tells whether any batch
/// was acked.
async fn session(
    channel: &AuthedChannel,
    state: &mut State,
    sealed_rx: &mut UnboundedReceiver<u64>,
    acked: &mut bool,
) -> Result<(), ShipError> {
    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<RawBatch>(MAX_IN_FLIGHT);
    let (mut acks, marked) = report(channel.clone(), ReceiverStream::new(out_rx)).await?;
    // Segments read in this connection (always the oldest of the backlog).
    let mut loaded: BTreeMap<u64, Loaded> = BTreeMap::new();
    let mut last_loaded: Option<u64> = None;
    // Batches read but not yet sent, and sent but not yet acked (seq, records).
    let mut queued: VecDeque<(u64, Vec<Bytes>)> = VecDeque::new();
    let mut in_flight: VecDeque<(u64, u64)> = VecDeque::new();
    let mut writer_gone = false;
    loop {
        // One at a time while a refused batch is being looked for.
        let window = if state.suspects.is_empty() {
            MAX_IN_FLIGHT
        } else {
            1
        };
        // Top up the window, oldest first.
        while in_flight.len() < window {
            if queued.is_empty() {
                let from = last_loaded.map_or(Bound::Unbounded, Bound::Excluded);
                let Some(seq) = state
                    .backlog
                    .range((from, Bound::Unbounded))
                    .next()
                    .copied()
                else {
                    break;
                };
                last_loaded = Some(seq);
                let path = seg_path(&state.dir, seq);
                let mut seg = match read_segment(&path) {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        state.done(seq);
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, path = %path.display(), "cannot read a trace segment; skipping it");
                        state.done(seq);
                        continue;
                    }
                };
                if seg.legacy {
                    tracing::info!(path = %path.display(), "shipping a trace segment of the previous spool format");
                }
                if seg.records.is_empty() {
                    if seg.damaged() {
                        // Nothing in it is a record (zeroed by a power loss…).
                        count_damage(&path, &seg);
                        state.set_aside(seq, "spool_corrupt", 0);
                    } else {
                        state.delete(seq, &seg);
                    }
                    continue;
                }
                let parts = batches(std::mem::take(&mut seg.records));
                loaded.insert(
                    seq,
                    Loaded {
                        batches_left: parts.len(),
                        records_left: parts.iter().map(|p| p.len() as u64).sum(),
                        damage: seg,
                    },
                );
                queued.extend(parts.into_iter().map(|p| (seq, p)));
            }
            let Some((seq, records)) = queued.pop_front() else {
                break;
            };
            let n = records.len() as u64;
            if out_tx.send(RawBatch { seq, records }).await.is_err() {
                return Err(ShipError::Closed);
            }
            in_flight.push_back((seq, n));
        }
        tokio::select! {
            seq = sealed_rx.recv(), if !writer_gone => match seq {
                Some(seq) => { state.backlog.insert(seq); }
                None => writer_gone = true,
            },
            ack = acks.message() => match ack {
                Ok(Some(ack)) => {
                    *acked = true;
                    metrics::counter!("aigw_traces_delivered_total").increment(u64::from(ack.stored + ack.duplicates));
                    // Acks come in order; a segment's batches share its seq.
                    let Some(i) = in_flight.iter().position(|(s, _)| *s == ack.seq) else {
                        continue;
                    };
                    let (seq, n) = in_flight.remove(i).unwrap_or_default();
                    if let Some(l) = loaded.get_mut(&seq) {
                        l.batches_left = l.batches_left.saturating_sub(1);
                        l.records_left = l.records_left.saturating_sub(n);
                        if l.batches_left == 0 {
                            let damage = std::mem::take(&mut l.damage);
                            loaded.remove(&seq);
                            state.delete(seq, &damage);
                        }
                    }
                }
                Ok(None) => return Err(ShipError::Closed),
                Err(status) if refused(&status, marked) && in_flight.len() == 1 => {
                    // The one batch in flight is the refused one.
                    let seq = in_flight.front().map_or(0, |(s, _)| *s);
                    tracing::error!(seq, %status, "the control plane refused a trace batch");
                    if let Some(l) = loaded.remove(&seq) {
                        count_damage(&seg_path(&state.dir, seq), &l.damage);
                        state.set_aside(seq, "refused", l.records_left);
                    }
                    return Err(status.into());
                }
                Err(status) if refused(&status, marked) && !in_flight.is_empty() => {
                    state.suspects.extend(in_flight.iter().map(|(s, _)| *s));
                    tracing::warn!(%status, suspects = state.suspects.len(), "the control plane refused one of the trace batches in flight; resending them one at a time");
                    return Err(status.into());
                }
                Err(status) => return Err(status.into()),
            },
        }
        if writer_gone && in_flight.is_empty() && queued.is_empty() && state.backlog.is_empty() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    use aigw_proto::pb::trace::trace_service_server::{TraceService, TraceServiceServer};
    use aigw_proto::pb::trace::{TraceAck, TraceBatch, TraceRecord};
    use aigw_proto::trace_bounds::refused_batch;
    use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic::{Request, Response, Status, Streaming};

    use super::super::frame::{HEADER, seal_frame};
    use super::super::spool::recover;
    use super::super::spool::tests::{counter, frames, rec, write_segment};
    use super::*;

    /// A control plane with the real one's rules: more than
    /// `MAX_BATCH_RECORDS` records is refused (`InvalidArgument`, the stream
    /// ends), and so is a record whose id starts with "poison"; records are
    /// stored once by request id; acks come in order after a short "commit",
    /// so several batches are in flight.
    #[derive(Default)]
    struct Cp {
        /// Request id -> times received.
        received: Mutex<BTreeMap<String, u32>>,
        /// Records in each batch received.
        batches: Mutex<Vec<usize>>,
        /// Streams to refuse as unavailable first.
        unavailable: AtomicU32,
        /// Streams to end first with `InvalidArgument` but no marker, as a
        /// proxy between the planes might.
        proxy_refusals: AtomicU32,
        /// A control plane from before refusals were marked: it neither
        /// says it marks them nor marks them.
        unmarked: bool,
    }

    #[derive(Clone)]
    struct Svc(Arc<Cp>);

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[tonic::async_trait]
    impl TraceService for Svc {
        type ReportStream = ReceiverStream<Result<TraceAck, Status>>;

        async fn report(
            &self,
            request: Request<Streaming<TraceBatch>>,
        ) -> Result<Response<Self::ReportStream>, Status> {
            let down = self
                .0
                .unavailable
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if down.is_ok() {
                return Err(Status::unavailable("control plane away"));
            }
            let mut inbound = request.into_inner();
            let (tx, rx) = mpsc::channel(64);
            let (pending_tx, mut pending_rx) = mpsc::channel::<TraceAck>(64);
            let acker = tx.clone();
            tokio::spawn(async move {
                while let Some(ack) = pending_rx.recv().await {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    if acker.send(Ok(ack)).await.is_err() {
                        return;
                    }
                }
            });
            let unmarked = self.0.unmarked;
            let refuse = move |st: Status| if unmarked { st } else { refused_batch(st) };
            let cp = self.0.clone();
            tokio::spawn(async move {
                while let Ok(Some(batch)) = inbound.message().await {
                    let proxy =
                        cp.proxy_refusals
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                    if proxy.is_ok() {
                        // What a proxy might end the stream with mid-way.
                        let _ = tx
                            .send(Err(Status::invalid_argument("upstream reset")))
                            .await;
                        return;
                    }
                    lock(&cp.batches).push(batch.records.len());
                    let n = batch.records.len();
                    if n > MAX_BATCH_RECORDS {
                        let msg = format!(
                            "a trace batch holds at most {MAX_BATCH_RECORDS} records (got {n})"
                        );
                        let _ = tx.send(Err(refuse(Status::invalid_argument(msg)))).await;
                        return;
                    }
                    if batch
                        .records
                        .iter()
                        .any(|r| r.request_id.starts_with("poison"))
                    {
                        let _ = tx
                            .send(Err(refuse(Status::invalid_argument("poison"))))
                            .await;
                        return;
                    }
                    let (stored, duplicates) = {
                        let (mut stored, mut duplicates) = (0, 0);
                        let mut received = lock(&cp.received);
                        for r in batch.records {
                            let times = received.entry(r.request_id).or_default();
                            *times += 1;
                            if *times == 1 {
                                stored += 1
                            } else {
                                duplicates += 1
                            }
                        }
                        (stored, duplicates)
                    };
                    let ack = TraceAck {
                        seq: batch.seq,
                        stored,
                        duplicates,
                    };
                    if pending_tx.send(ack).await.is_err() {
                        return;
                    }
                }
            });
            let mut resp = Response::new(ReceiverStream::new(rx));
            if !self.0.unmarked {
                aigw_proto::trace_bounds::mark_refusals(resp.metadata_mut());
            }
            Ok(resp)
        }
    }

    struct Shipping {
        cp: Arc<Cp>,
        metrics: PrometheusHandle,
        _recorder: metrics::LocalRecorderGuard<'static>,
        _sealed_tx: tokio::sync::mpsc::UnboundedSender<u64>,
    }

    impl Shipping {
        /// Starts a control plane and a shipper for the spool in `dir`, as
        /// a data plane's start does (tests run on one thread, so the
        /// thread's recorder sees every metric).
        async fn start(dir: &Path, cp: Cp) -> Self {
            let recorder: &'static _ =
                Box::leak(Box::new(PrometheusBuilder::new().build_recorder()));
            let metrics = recorder.handle();
            let guard = metrics::set_default_local_recorder(recorder);
            let cp = Arc::new(cp);
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(Svc(cp.clone())))
                    .serve_with_incoming(TcpListenerStream::new(listener)),
            );
            let channel = tonic::transport::Endpoint::from_shared(url)
                .unwrap()
                .connect_lazy();
            let auth = crate::control::NodeAuth::new("token", "node", "region").unwrap();
            let channel = tonic::service::interceptor::InterceptedService::new(channel, auth);
            let recovered = recover(dir).unwrap();
            let spooled = Arc::new(AtomicU64::new(recovered.bytes));
            let (sealed_tx, sealed_rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(run(
                channel,
                dir.to_path_buf(),
                recovered.sealed,
                sealed_rx,
                spooled,
            ));
            Self {
                cp,
                metrics,
                _recorder: guard,
                _sealed_tx: sealed_tx,
            }
        }

        fn counter(&self, series: &str) -> u64 {
            counter(&self.metrics.render(), series)
        }

        fn received(&self) -> BTreeMap<String, u32> {
            lock(&self.cp.received).clone()
        }
    }

    /// The spool's files, sorted.
    fn files(dir: &Path) -> Vec<String> {
        let mut f: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        f.sort();
        f
    }

    /// Waits (at most 10 s) until only `want` is left in the spool.
    async fn spool_becomes(dir: &Path, want: &[&str]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while files(dir) != want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "spool holds {:?}",
                files(dir)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn ids(prefix: &str, n: usize) -> Vec<TraceRecord> {
        (0..n).map(|i| rec(&format!("{prefix}-{i}"))).collect()
    }

    /// What was stored, each id once, and nothing else.
    fn assert_stored_once(s: &Shipping, want: &[Vec<TraceRecord>]) {
        let mut want: Vec<String> = want
            .iter()
            .flatten()
            .map(|r| r.request_id.clone())
            .collect();
        want.sort();
        let got: Vec<String> = s.received().into_keys().collect();
        assert_eq!(got, want);
    }

    /// The probe's repro: a sealed segment zeroed by a power loss (format 1
    /// read 597 empty records from it, a batch the control plane refuses,
    /// resent forever with every later segment behind it).
    #[tokio::test]
    async fn a_zeroed_segment_is_set_aside_and_the_rest_ships() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 1, &ids("lost", 100));
        let path = seg_path(dir.path(), 1);
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        assert!(len > MAX_BATCH_RECORDS);
        std::fs::write(&path, vec![0u8; len]).unwrap();
        let (two, three) = (ids("two", 10), ids("three", 10));
        write_segment(dir.path(), 2, &two);
        write_segment(dir.path(), 3, &three);
        let s = Shipping::start(dir.path(), Cp::default()).await;
        spool_becomes(dir.path(), &["00000000000000000001.seg.bad"]).await;
        assert_stored_once(&s, &[two, three]);
        assert!(lock(&s.cp.batches).iter().all(|&n| n <= MAX_BATCH_RECORDS));
        assert_eq!(
            s.counter("aigw_trace_segments_set_aside_total{reason=\"spool_corrupt\"}"),
            1
        );
        assert!(s.counter("aigw_traces_dropped_total{reason=\"spool_corrupt\"}") >= 1);
        assert_eq!(s.counter("aigw_traces_delivered_total"), 20);
    }

    /// A batch the control plane refuses for its content is not resent
    /// forever: found among the batches in flight, its segment is set aside
    /// and counted, and every other segment ships, each record stored once.
    #[tokio::test]
    async fn a_refused_segment_is_set_aside_and_the_rest_ships() {
        // A control plane that marks its refusals, and one from before
        // (its refusals go by their code, as they always did).
        for unmarked in [false, true] {
            refused_segment_set_aside(Cp {
                unmarked,
                ..Default::default()
            })
            .await;
        }
    }

    async fn refused_segment_set_aside(cp: Cp) {
        let dir = tempfile::tempdir().unwrap();
        let one = ids("one", 5);
        let mut bad = ids("bad", 3);
        bad.insert(1, rec("poison"));
        let (three, four) = (ids("three", 5), ids("four", 5));
        write_segment(dir.path(), 1, &one);
        write_segment(dir.path(), 2, &bad);
        write_segment(dir.path(), 3, &three);
        write_segment(dir.path(), 4, &four);
        let s = Shipping::start(dir.path(), cp).await;
        spool_becomes(dir.path(), &["00000000000000000002.seg.bad"]).await;
        assert_stored_once(&s, &[one, three, four]);
        assert_eq!(
            s.counter("aigw_trace_segments_set_aside_total{reason=\"refused\"}"),
            1
        );
        assert_eq!(
            s.counter("aigw_traces_dropped_total{reason=\"refused\"}"),
            4
        );
        // Not sent again.
        let sent = lock(&s.cp.batches).len();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(lock(&s.cp.batches).len(), sent);
        // The set-aside file still holds the records, for a look.
        let kept = read_segment(&dir.path().join("00000000000000000002.seg.bad")).unwrap();
        assert_eq!(kept.records.len(), 4);
    }

    /// A segment with more records than a batch may hold (from an older
    /// version, or a bound changed) goes as several batches, all taken.
    #[tokio::test]
    async fn a_segment_over_the_batch_limit_goes_as_several_batches() {
        let dir = tempfile::tempdir().unwrap();
        let big = ids("big", 2 * MAX_BATCH_RECORDS + 10);
        let (mut bytes, lens) = frames(&big);
        let mut at = 0;
        for (i, l) in lens.iter().enumerate() {
            seal_frame(&mut bytes[at..at + *l as usize], i as u32);
            at += *l as usize;
        }
        assert!(lens.iter().all(|&l| l as usize > HEADER));
        std::fs::write(seg_path(dir.path(), 1), &bytes).unwrap();
        let s = Shipping::start(dir.path(), Cp::default()).await;
        spool_becomes(dir.path(), &[]).await;
        assert_eq!(
            *lock(&s.cp.batches),
            [MAX_BATCH_RECORDS, MAX_BATCH_RECORDS, 10]
        );
        assert_stored_once(&s, &[big]);
        assert_eq!(
            s.counter("aigw_traces_dropped_total{reason=\"refused\"}"),
            0
        );
    }

    /// A damaged record is dropped and counted once; the others ship.
    #[tokio::test]
    async fn a_damaged_record_is_counted_and_the_others_ship() {
        let dir = tempfile::tempdir().unwrap();
        let recs = ids("rec", 10);
        write_segment(dir.path(), 1, &recs);
        let path = seg_path(dir.path(), 1);
        let mut data = std::fs::read(&path).unwrap();
        let frame = data.len() / 10;
        data[2 * frame + HEADER + 1] ^= 0xff;
        std::fs::write(&path, data).unwrap();
        let s = Shipping::start(dir.path(), Cp::default()).await;
        spool_becomes(dir.path(), &[]).await;
        let mut want = recs;
        want.remove(2);
        assert_stored_once(&s, &[want]);
        assert_eq!(
            s.counter("aigw_traces_dropped_total{reason=\"spool_corrupt\"}"),
            1
        );
    }

    /// An unavailable control plane is waited for, and `InvalidArgument`
    /// without the control plane's marker (a proxy on the way said it) is
    /// retried like any failure: nothing is set aside, every record is
    /// stored once.
    #[tokio::test]
    async fn transient_errors_are_retried_not_set_aside() {
        let unavailable = Cp {
            unavailable: AtomicU32::new(2),
            ..Default::default()
        };
        let proxied = Cp {
            proxy_refusals: AtomicU32::new(2),
            ..Default::default()
        };
        for (name, cp) in [("later", unavailable), ("proxied", proxied)] {
            let dir = tempfile::tempdir().unwrap();
            let recs = ids(name, 3);
            write_segment(dir.path(), 1, &recs);
            let s = Shipping::start(dir.path(), cp).await;
            spool_becomes(dir.path(), &[]).await;
            assert_stored_once(&s, &[recs]);
            assert_eq!(s.counter("aigw_trace_ship_errors_total"), 2, "{name}");
            assert!(
                !s.metrics
                    .render()
                    .contains("aigw_trace_segments_set_aside_total"),
                "{name}"
            );
        }
    }
}
