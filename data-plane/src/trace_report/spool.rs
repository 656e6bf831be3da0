//! The on-disk spool: numbered segment files of checksummed `TraceRecord`
//! frames. `N.open` is being written (mapped into memory, its room reserved
//! up front, see `mapped.rs`); `N.seg` is sealed (cut to what was written)
//! and waits for an ack. Records are copied into the open segment (not
//! fsynced) before the app gets the end of its answer: a killed process
//! loses nothing the kernel has; a power loss may lose the tail, or leave
//! zeros or stale blocks where records were.
//!
//! Each record is one checksummed frame (`frame.rs`): a reader never takes
//! garbage for records, and resyncs past damage.
//! Files the spool cannot use are set aside as `NAME.bad` (a bounded number
//! of them, the oldest removed), never retried.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::frame::{Piece, parse_segment, pieces};
use super::mapped::{CAPACITY, Mapped};

/// A segment is sealed at this many records or this age, whichever first:
/// the age bounds how late a trace reaches the control plane.
pub const MAX_RECORDS: usize = aigw_proto::trace_bounds::MAX_BATCH_RECORDS;
/// ... or this many bytes, so a batch stays far below the control plane's
/// message limit (16 MiB) whatever the records hold.
pub const MAX_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
pub const MAX_AGE: Duration = Duration::from_millis(100);

/// The highest sequence number the spool uses. It counts up by one per
/// segment from 1, so a name above this was not written by it (and one at
/// `u64::MAX` would leave no next number).
const MAX_SEQ: u64 = u64::MAX / 2;

/// What is kept of set-aside files (`*.bad`): at most this many, this many
/// bytes in all; the oldest go first.
const MAX_BAD_FILES: usize = 16;
const MAX_BAD_BYTES: u64 = 64 * 1024 * 1024;
const BAD_SUFFIX: &str = ".bad";

pub struct Recovered {
    pub next_seq: u64,
    pub sealed: BTreeSet<u64>,
    pub bytes: u64,
}

pub fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

fn open_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.open"))
}

/// A segment's sequence number from its file stem, if the spool could
/// have written it (20 digits, at most [`MAX_SEQ`]).
fn parse_seq(stem: &str) -> Option<u64> {
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse::<u64>().ok().filter(|&s| s <= MAX_SEQ)
}

/// Seals what a previous run left open and lists what still needs shipping.
/// A segment file whose name the spool could not have written (out of
/// range, not 20 digits) is set aside rather than trusted.
pub fn recover(dir: &Path) -> io::Result<Recovered> {
    crate::state_dir::create(dir)?;
    let mut sealed = BTreeSet::new();
    let mut bytes = 0;
    let mut max_seq = 0u64;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        if ext != "open" && ext != "seg" {
            continue;
        }
        let Some(seq) = parse_seq(stem) else {
            if stem.bytes().all(|b| b.is_ascii_digit()) {
                tracing::warn!(
                    file = name,
                    "trace spool file with an unusable name; set aside"
                );
                metrics::counter!("aigw_trace_segments_set_aside_total", "reason" => "bad_name")
                    .increment(1);
                if let Err(e) = set_aside(dir, &entry.path()) {
                    tracing::warn!(file = name, error = %e, "cannot set a trace spool file aside; ignoring it");
                }
            }
            continue;
        };
        max_seq = max_seq.max(seq);
        match ext {
            "open" => {
                let len = match trim_reserved(&entry.path()) {
                    Ok(len) => len,
                    Err(e) => {
                        // Unreadable or uncuttable: set aside rather than
                        // stop the node from starting.
                        tracing::warn!(file = name, error = %e, "cannot read a trace spool segment left open; set aside");
                        if let Err(e) = set_aside(dir, &entry.path()) {
                            tracing::warn!(file = name, error = %e, "cannot set a trace spool file aside; ignoring it");
                        }
                        continue;
                    }
                };
                if len == 0 {
                    if let Err(e) = fs::remove_file(entry.path()) {
                        tracing::warn!(file = name, error = %e, "cannot remove an empty trace spool file; ignoring it");
                    }
                    continue;
                }
                if let Err(e) = fs::rename(entry.path(), seg_path(dir, seq)) {
                    tracing::warn!(file = name, error = %e, "cannot seal a trace spool segment left open; it waits for the next start");
                    continue;
                }
                bytes += len;
                sealed.insert(seq);
            }
            _ => {
                bytes += entry.metadata()?.len();
                sealed.insert(seq);
            }
        }
    }
    if !sealed.is_empty() {
        tracing::info!(
            segments = sealed.len(),
            bytes,
            "recovered undelivered traces from the spool"
        );
    }
    Ok(Recovered {
        // Cannot overflow (max_seq <= MAX_SEQ); checked all the same.
        next_seq: max_seq.checked_add(1).unwrap_or(MAX_SEQ),
        sealed,
        bytes,
    })
}

/// Cuts an open segment left by a stopped process to what was written.
/// Returns the length kept.
fn trim_reserved(path: &Path) -> io::Result<u64> {
    let data = fs::read(path)?;
    let end = written_end(&data);
    if end < data.len() {
        File::options()
            .write(true)
            .open(path)?
            .set_len(end as u64)?;
    }
    Ok(end as u64)
}

/// Where what was written to a mapped segment ends. A mapped segment is a
/// file of exactly [`CAPACITY`] bytes (its reservation): after its last
/// good frame come zeros, or a record whose copy the process's end cut
/// short (no app got its answer: the answer waits for the copy) and then
/// zeros; both are cut. Files of any other length were written with
/// `write` (earlier versions) and are kept whole for the reader, which
/// counts what is damaged.
fn written_end(data: &[u8]) -> usize {
    if data.len() != CAPACITY {
        return data.len();
    }
    let end = pieces(data)
        .filter_map(|p| match p {
            Piece::Frame { payload, .. } => Some(payload.end),
            Piece::Damage(_) => None,
        })
        .last()
        .unwrap_or(0);
    let last_nonzero = data[end..].iter().rposition(|&b| b != 0);
    match last_nonzero {
        None => end,
        Some(i) if i < super::mapped::MAX_FRAME => end,
        Some(_) => data.len(),
    }
}

/// Renames `path` to `NAME.bad` (kept for a look, never shipped), then
/// trims the set-aside files to their bound, oldest first.
pub fn set_aside(dir: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(BAD_SUFFIX);
    let to = dir.join(name);
    fs::rename(path, &to)?;
    prune_set_aside(dir);
    Ok(to)
}

fn prune_set_aside(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut bad: Vec<(SystemTime, String, u64)> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !name.ends_with(BAD_SUFFIX) {
                return None;
            }
            let meta = e.metadata().ok()?;
            Some((
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                name,
                meta.len(),
            ))
        })
        .collect();
    // Newest first: keep from the front while within the bounds.
    bad.sort_by(|a, b| b.cmp(a));
    let mut total = 0u64;
    for (i, (_, name, len)) in bad.into_iter().enumerate() {
        total = total.saturating_add(len);
        if i < MAX_BAD_FILES && total <= MAX_BAD_BYTES {
            continue;
        }
        if fs::remove_file(dir.join(&name)).is_ok() {
            tracing::warn!(
                file = name,
                "too many set-aside trace spool files; the oldest removed"
            );
        }
    }
}

/// How many good records the file at `path` holds (0 if it cannot be read).
fn count_records(path: &Path) -> u64 {
    fs::read(path).map_or(0, |d| parse_segment(&d.into()).records.len() as u64)
}

/// The spool's files, owned by the writer thread (`writer.rs`): making
/// segments, sealing them, and the size bound.
pub struct Segments {
    dir: PathBuf,
    next_seq: u64,
    spooled: Arc<AtomicU64>,
    max_bytes: u64,
    sealed_tx: tokio::sync::mpsc::UnboundedSender<u64>,
    /// The directory's lock (`state_dir::lock`), held while segments are
    /// made and mapped.
    _lock: Option<Arc<File>>,
}

impl Segments {
    pub fn new(
        dir: PathBuf,
        next_seq: u64,
        spooled: Arc<AtomicU64>,
        max_bytes: u64,
        sealed_tx: tokio::sync::mpsc::UnboundedSender<u64>,
    ) -> Self {
        Self {
            dir,
            next_seq,
            spooled,
            max_bytes,
            sealed_tx,
            _lock: None,
        }
    }

    /// Keeps the directory's lock for as long as these segments live.
    pub fn holding(mut self, lock: Arc<File>) -> Self {
        self._lock = Some(lock);
        self
    }

    /// A new open segment, its room reserved and mapped.
    pub fn create(&mut self) -> io::Result<Mapped> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        Mapped::create(&open_path(&self.dir, seq), seq, CAPACITY)
    }

    /// Cuts the segment to what was written and renames it sealed, for the
    /// shipper to send; an empty one is removed.
    pub fn seal(&mut self, seg: Mapped) {
        let (seq, empty) = (seg.seq, seg.is_empty());
        let path = open_path(&self.dir, seq);
        if empty {
            drop(seg);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(error = %e, "cannot remove an unused trace segment");
            }
            return;
        }
        let bytes = match seg.finish() {
            Ok(bytes) => bytes,
            Err(e) => {
                // Shipped at its reserved size all the same: the reader
                // counts the zeros as damage, the records go.
                tracing::error!(error = %e, "cannot cut a trace segment to size");
                fs::metadata(&path).map_or(0, |m| m.len())
            }
        };
        if let Err(e) = fs::rename(&path, seg_path(&self.dir, seq)) {
            tracing::error!(error = %e, "cannot seal a trace segment");
            return;
        }
        let total = self.spooled.fetch_add(bytes, Ordering::Relaxed) + bytes;
        metrics::gauge!("aigw_trace_spool_bytes").set(total as f64);
        // The shipper may be gone at shutdown; the segment stays for next start.
        let _ = self.sealed_tx.send(seq);
        if total > self.max_bytes {
            self.evict_oldest(total);
        }
    }

    /// Over the bound: drop the oldest segments, loudly, counting the
    /// traces they held. Losing traces is bad; filling the disk and failing
    /// requests is worse.
    fn evict_oldest(&self, mut total: u64) {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut segs: Vec<(u64, PathBuf, u64)> = rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let seq = parse_seq(name.strip_suffix(".seg")?)?;
                Some((seq, e.path(), e.metadata().ok()?.len()))
            })
            .collect();
        segs.sort();
        for (_, path, len) in segs {
            if total <= self.max_bytes {
                break;
            }
            // Counted before it goes (a read of at most a few MiB, rare).
            let records = count_records(&path);
            if fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
                self.spooled.fetch_sub(len, Ordering::Relaxed);
                metrics::counter!("aigw_traces_dropped_total", "reason" => "spool_full")
                    .increment(records);
                tracing::error!(path = %path.display(), records, "trace spool over its size bound; oldest segment dropped");
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::trace_report::frame::{HEADER, Segment, read_segment, seal_frame};
    use aigw_proto::pb::trace::TraceRecord;
    use prost::Message;

    pub fn rec(id: &str) -> TraceRecord {
        TraceRecord {
            request_id: id.into(),
            ..Default::default()
        }
    }

    /// Records with room for a frame header before each, and each one's
    /// length (header included).
    pub fn frames(recs: &[TraceRecord]) -> (Vec<u8>, Vec<u32>) {
        let (mut bytes, mut lens) = (Vec::new(), Vec::new());
        for r in recs {
            let before = bytes.len();
            bytes.resize(before + HEADER, 0);
            r.encode(&mut bytes).unwrap();
            lens.push((bytes.len() - before) as u32);
        }
        (bytes, lens)
    }

    /// Appends records the way requests do, into `open` (made when
    /// missing), sealing each segment that fills up.
    pub fn append(seg: &mut Segments, open: &mut Option<Mapped>, recs: &[TraceRecord]) {
        for r in recs {
            let payload = r.encode_to_vec();
            loop {
                let m = match open {
                    Some(m) => m,
                    None => open.insert(seg.create().unwrap()),
                };
                if m.push(&payload) {
                    if m.is_full() {
                        seg.seal(open.take().unwrap());
                    }
                    break;
                }
                seg.seal(open.take().unwrap());
            }
        }
    }

    /// A sealed segment `seq` in `dir` holding `recs`.
    pub fn write_segment(dir: &Path, seq: u64, recs: &[TraceRecord]) {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut seg = Segments::new(dir.to_path_buf(), seq, Arc::default(), u64::MAX, tx);
        let mut open = None;
        append(&mut seg, &mut open, recs);
        seg.seal(open.unwrap());
    }

    fn ids(seg: &Segment) -> Vec<String> {
        seg.decoded().into_iter().map(|r| r.request_id).collect()
    }

    /// The value of one counter series in the Prometheus text `rendered`.
    pub fn counter(rendered: &str, series: &str) -> u64 {
        rendered
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn appended_records_survive_without_a_seal() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut seg = Segments::new(dir.path().to_path_buf(), 1, Arc::default(), u64::MAX, tx);
        let mut open = None;
        append(&mut seg, &mut open, &[rec("a"), rec("b")]);
        // A spare made ahead, unused.
        let spare = seg.create().unwrap();
        assert_eq!(
            fs::metadata(open_path(dir.path(), 1)).unwrap().len(),
            CAPACITY as u64
        );
        // As if the process were killed now: nothing sealed, nothing lost,
        // the unused reservation cut and the empty spare gone.
        std::mem::forget((seg, open, spare));
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.sealed.iter().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(r.next_seq, 3, "the spare's number is not used again");
        let got = read_segment(&seg_path(dir.path(), 1)).unwrap();
        assert_eq!(ids(&got), ["a", "b"]);
        assert!(!got.damaged());
        assert!(!open_path(dir.path(), 2).exists());
        assert_eq!(
            r.bytes,
            fs::metadata(seg_path(dir.path(), 1)).unwrap().len()
        );
        assert!(rx.try_recv().is_err());
    }

    /// A record whose copy the process's end cut short (its payload, not
    /// yet its header) is cut off with the reserved zeros at the next start;
    /// a file not of a mapped segment's size is kept whole for the reader.
    #[test]
    fn a_copy_cut_by_the_process_end_is_cut_off_and_other_files_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut seg = Segments::new(dir.path().to_path_buf(), 1, Arc::default(), u64::MAX, tx);
        let mut open = None;
        append(&mut seg, &mut open, &[rec("a"), rec("b")]);
        std::mem::forget(open);
        let (_, lens) = frames(&[rec("a"), rec("b")]);
        let end: u32 = lens.iter().sum();
        let cut = rec("c").encode_to_vec();
        let mut data = fs::read(open_path(dir.path(), 1)).unwrap();
        let at = end as usize + HEADER;
        data[at..at + cut.len()].copy_from_slice(&cut);
        fs::write(open_path(dir.path(), 1), &data).unwrap();

        let (written, lens) = frames(&[rec("x")]);
        let mut old = written.clone();
        seal_frame(&mut old[..lens[0] as usize], 0);
        old.extend_from_slice(&[0; 100]);
        fs::write(open_path(dir.path(), 5), &old).unwrap();

        recover(dir.path()).unwrap();
        let got = read_segment(&seg_path(dir.path(), 1)).unwrap();
        assert_eq!(ids(&got), ["a", "b"]);
        assert!(!got.damaged());
        assert_eq!(
            fs::metadata(seg_path(dir.path(), 1)).unwrap().len(),
            u64::from(end)
        );
        assert_eq!(fs::read(seg_path(dir.path(), 5)).unwrap(), old);
    }

    #[test]
    fn a_batch_is_cut_at_the_segment_bound_and_torn_tails_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut seg = Segments::new(dir.path().to_path_buf(), 7, Arc::default(), u64::MAX, tx);
        let recs: Vec<_> = (0..MAX_RECORDS + 3)
            .map(|i| rec(&format!("r{i}")))
            .collect();
        let mut open = None;
        append(&mut seg, &mut open, &recs);
        assert_eq!(rx.try_recv().unwrap(), 7);
        assert!(rx.try_recv().is_err(), "the rest stays open");
        let path = seg_path(dir.path(), 7);
        let mut data = fs::read(&path).unwrap();
        // The start of one more frame, cut short.
        data.extend_from_slice(&[0xA7, 0x1C, 0x20, 0, 0, 0, 0x05]);
        fs::write(&path, data).unwrap();
        let first = read_segment(&path).unwrap();
        assert_eq!(first.records.len(), MAX_RECORDS);
        assert_eq!(
            first.decoded()[MAX_RECORDS - 1].request_id,
            format!("r{}", MAX_RECORDS - 1)
        );
        assert!(first.torn);
        assert_eq!(first.lost, 1);
        seg.seal(open.take().unwrap());
        assert_eq!(rx.try_recv().unwrap(), 8);
        let second = read_segment(&seg_path(dir.path(), 8)).unwrap();
        assert_eq!(second.records.len(), 3);
        assert_eq!(second.decoded()[0].request_id, format!("r{MAX_RECORDS}"));
    }

    #[test]
    fn over_the_bound_the_oldest_segments_go_counted_in_traces() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let spooled = Arc::new(AtomicU64::new(0));
        let mut seg = Segments::new(dir.path().to_path_buf(), 1, spooled.clone(), 1, tx);
        metrics::with_local_recorder(&recorder, || {
            let mut open = None;
            append(
                &mut seg,
                &mut open,
                &[rec("old1"), rec("old2"), rec("old3")],
            );
            seg.seal(open.take().unwrap());
            append(&mut seg, &mut open, &[rec("new1"), rec("new2")]);
            seg.seal(open.take().unwrap());
        });
        assert!(!seg_path(dir.path(), 1).exists());
        assert!(!seg_path(dir.path(), 2).exists());
        assert_eq!(spooled.load(Ordering::Relaxed), 0);
        let dropped = counter(
            &handle.render(),
            "aigw_traces_dropped_total{reason=\"spool_full\"}",
        );
        assert_eq!(dropped, 5, "one per trace, not per segment");
    }

    #[test]
    fn names_out_of_range_are_set_aside_not_overflowed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("18446744073709551615.seg"), b"").unwrap();
        fs::write(dir.path().join("99999999999999999999.open"), b"x").unwrap();
        write_segment(dir.path(), 4, &[rec("a")]);
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.sealed.iter().copied().collect::<Vec<_>>(), vec![4]);
        assert_eq!(r.next_seq, 5);
        assert!(dir.path().join("18446744073709551615.seg.bad").exists());
        assert!(dir.path().join("99999999999999999999.open.bad").exists());
        assert!(!dir.path().join("18446744073709551615.seg").exists());
        // Only those: the next start finds the same.
        let again = recover(dir.path()).unwrap();
        assert_eq!(again.next_seq, 5);
    }

    #[test]
    fn set_aside_files_are_bounded_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        for seq in 1..=(MAX_BAD_FILES as u64 + 3) {
            write_segment(dir.path(), seq, &[rec("x")]);
            let path = seg_path(dir.path(), seq);
            let f = File::options().write(true).open(&path).unwrap();
            f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + seq))
                .unwrap();
            set_aside(dir.path(), &path).unwrap();
        }
        let mut bad: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        bad.sort();
        assert_eq!(bad.len(), MAX_BAD_FILES);
        assert_eq!(bad[0], "00000000000000000004.seg.bad");
    }
}
