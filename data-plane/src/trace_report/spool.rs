//! The on-disk spool: numbered segment files of length-delimited
//! `TraceRecord`s. `N.open` is being written; `N.seg` is sealed and waits for
//! an ack. Records are written (not fsynced) by the writer thread
//! (`writer.rs`) before the app gets the end of its answer: a killed process
//! loses nothing the kernel has; a power loss may lose the tail.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aigw_proto::pb::trace::TraceRecord;
use prost::Message;

/// A segment is sealed at this many records or this age, whichever first:
/// the age bounds how late a trace reaches the control plane.
const MAX_RECORDS: usize = aigw_proto::trace_bounds::MAX_BATCH_RECORDS;
/// ... or this many bytes, so a batch stays far below the control plane's
/// message limit (16 MiB) whatever the records hold.
const MAX_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
const MAX_AGE: Duration = Duration::from_millis(100);

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

/// Seals what a previous run left open and lists what still needs shipping.
pub fn recover(dir: &Path) -> io::Result<Recovered> {
    crate::state_dir::create(dir)?;
    let mut sealed = BTreeSet::new();
    let mut bytes = 0;
    let mut max_seq = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let Ok(seq) = stem.parse::<u64>() else {
            continue;
        };
        max_seq = max_seq.max(seq);
        match ext {
            "open" => {
                let len = entry.metadata()?.len();
                if len == 0 {
                    fs::remove_file(entry.path())?;
                    continue;
                }
                fs::rename(entry.path(), seg_path(dir, seq))?;
                bytes += len;
                sealed.insert(seq);
            }
            "seg" => {
                bytes += entry.metadata()?.len();
                sealed.insert(seq);
            }
            _ => {}
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
        next_seq: max_seq + 1,
        sealed,
        bytes,
    })
}

/// Reads a sealed segment. A torn last record (the process died mid-write)
/// is skipped; everything before it is kept.
pub fn read_segment(path: &Path) -> io::Result<Vec<TraceRecord>> {
    let data = fs::read(path)?;
    let mut buf = &data[..];
    let mut out = Vec::new();
    while !buf.is_empty() {
        match TraceRecord::decode_length_delimited(&mut buf) {
            Ok(mut r) => {
                // A record from an older version may be any size: clipped
                // here, it can never make a batch the control plane refuses.
                aigw_proto::trace_bounds::clip(&mut r);
                out.push(r);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "torn record at the end of a trace segment");
                break;
            }
        }
    }
    Ok(out)
}

struct OpenSegment {
    seq: u64,
    file: File,
    records: usize,
    bytes: u64,
    since: Instant,
}

/// The spool's files, owned by the writer thread (`writer.rs`): the open
/// segment, sealing, and the size bound.
pub struct Segments {
    dir: PathBuf,
    next_seq: u64,
    open: Option<OpenSegment>,
    spooled: Arc<AtomicU64>,
    max_bytes: u64,
    sealed_tx: tokio::sync::mpsc::UnboundedSender<u64>,
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
            open: None,
            spooled,
            max_bytes,
            sealed_tx,
        }
    }

    /// Appends encoded records (`lens` gives each one's length in `bytes`),
    /// in as few writes as the segment bounds allow. A write that fails
    /// drops its records, loudly: the requests must not wait forever.
    pub fn append(&mut self, bytes: &[u8], lens: &[u32]) {
        let mut at = 0usize;
        let mut i = 0usize;
        while i < lens.len() {
            let (records, room) = match &self.open {
                Some(o) => (
                    MAX_RECORDS.saturating_sub(o.records),
                    MAX_SEGMENT_BYTES.saturating_sub(o.bytes),
                ),
                None => (MAX_RECORDS, MAX_SEGMENT_BYTES),
            };
            // As many whole records as fit (at least one, whatever its size).
            let (mut n, mut len) = (0usize, 0u64);
            while i + n < lens.len() && n < records.max(1) {
                let next = u64::from(lens[i + n]);
                if n > 0 && len + next > room {
                    break;
                }
                len += next;
                n += 1;
            }
            let chunk = &bytes[at..at + len as usize];
            if let Err(e) = self.write(chunk, n) {
                metrics::counter!("aigw_traces_dropped_total", "reason" => "spool_error")
                    .increment(n as u64);
                tracing::error!(error = %e, records = n, "cannot write traces to the spool; traces dropped");
            }
            at += len as usize;
            i += n;
        }
    }

    fn write(&mut self, chunk: &[u8], records: usize) -> io::Result<()> {
        if self.open.is_none() {
            let seq = self.next_seq;
            self.next_seq += 1;
            let file = crate::state_dir::private_file(&open_path(&self.dir, seq))?;
            self.open = Some(OpenSegment {
                seq,
                file,
                records: 0,
                bytes: 0,
                since: Instant::now(),
            });
        }
        let full = match &mut self.open {
            Some(o) => {
                o.file.write_all(chunk)?;
                o.records += records;
                o.bytes += chunk.len() as u64;
                o.records >= MAX_RECORDS || o.bytes >= MAX_SEGMENT_BYTES
            }
            None => false,
        };
        if full {
            self.seal();
        }
        Ok(())
    }

    /// Seals the open segment once it is old enough.
    pub fn seal_if_old(&mut self) {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.since.elapsed() >= MAX_AGE)
        {
            self.seal();
        }
    }

    /// Seals whatever is open, for the shipper to send.
    pub fn seal(&mut self) {
        let Some(o) = self.open.take() else { return };
        drop(o.file);
        if let Err(e) = fs::rename(open_path(&self.dir, o.seq), seg_path(&self.dir, o.seq)) {
            tracing::error!(error = %e, "cannot seal a trace segment");
            return;
        }
        let total = self.spooled.fetch_add(o.bytes, Ordering::Relaxed) + o.bytes;
        metrics::gauge!("aigw_trace_spool_bytes").set(total as f64);
        // The shipper may be gone at shutdown; the segment stays for next start.
        let _ = self.sealed_tx.send(o.seq);
        if total > self.max_bytes {
            self.evict_oldest(total);
        }
    }

    /// Over the bound: drop the oldest segments, loudly. Losing traces is
    /// bad; filling the disk and failing requests is worse.
    fn evict_oldest(&self, mut total: u64) {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut segs: Vec<(u64, PathBuf, u64)> = rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let seq = name.strip_suffix(".seg")?.parse().ok()?;
                Some((seq, e.path(), e.metadata().ok()?.len()))
            })
            .collect();
        segs.sort();
        for (_, path, len) in segs {
            if total <= self.max_bytes {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
                self.spooled.fetch_sub(len, Ordering::Relaxed);
                metrics::counter!("aigw_traces_dropped_total", "reason" => "spool_full")
                    .increment(1);
                tracing::error!(path = %path.display(), "trace spool over its size bound; oldest segment dropped");
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn rec(id: &str) -> TraceRecord {
        TraceRecord {
            request_id: id.into(),
            ..Default::default()
        }
    }

    /// Appends records the way the writer thread does (encoded, with lengths).
    fn append(seg: &mut Segments, recs: &[TraceRecord]) {
        let (mut bytes, mut lens) = (Vec::new(), Vec::new());
        for r in recs {
            let before = bytes.len();
            r.encode_length_delimited(&mut bytes).unwrap();
            lens.push((bytes.len() - before) as u32);
        }
        seg.append(&bytes, &lens);
    }

    #[test]
    fn appended_records_survive_without_a_seal() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut seg = Segments::new(dir.path().to_path_buf(), 1, Arc::default(), u64::MAX, tx);
        append(&mut seg, &[rec("a"), rec("b")]);
        // As if the process were killed now: nothing sealed, nothing lost.
        std::mem::forget(seg);
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.sealed.iter().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(r.next_seq, 2);
        let got = read_segment(&seg_path(dir.path(), 1)).unwrap();
        assert_eq!(
            got.iter()
                .map(|r| r.request_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_batch_is_cut_at_the_segment_bound_and_torn_tails_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut seg = Segments::new(dir.path().to_path_buf(), 7, Arc::default(), u64::MAX, tx);
        let recs: Vec<_> = (0..MAX_RECORDS + 3)
            .map(|i| rec(&format!("r{i}")))
            .collect();
        append(&mut seg, &recs);
        assert_eq!(rx.try_recv().unwrap(), 7);
        assert!(rx.try_recv().is_err(), "the rest stays open");
        let path = seg_path(dir.path(), 7);
        let mut data = fs::read(&path).unwrap();
        data.extend_from_slice(&[0x20, 0x0a, 0x05]);
        fs::write(&path, data).unwrap();
        let first = read_segment(&path).unwrap();
        assert_eq!(first.len(), MAX_RECORDS);
        assert_eq!(
            first[MAX_RECORDS - 1].request_id,
            format!("r{}", MAX_RECORDS - 1)
        );
        seg.seal();
        assert_eq!(rx.try_recv().unwrap(), 8);
        let second = read_segment(&seg_path(dir.path(), 8)).unwrap();
        assert_eq!(second.len(), 3);
        assert_eq!(second[0].request_id, format!("r{MAX_RECORDS}"));
    }

    #[test]
    fn over_the_bound_the_oldest_segments_go() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let spooled = Arc::new(AtomicU64::new(0));
        let mut seg = Segments::new(dir.path().to_path_buf(), 1, spooled.clone(), 1, tx);
        append(&mut seg, &[rec("old")]);
        seg.seal();
        append(&mut seg, &[rec("new")]);
        seg.seal();
        assert!(!seg_path(dir.path(), 1).exists());
        assert!(!seg_path(dir.path(), 2).exists() || spooled.load(Ordering::Relaxed) <= 1);
    }
}
