//! The on-disk spool: numbered segment files of length-delimited
//! `TraceRecord`s. `N.open` is being written; `N.seg` is sealed and waits for
//! an ack. A record is written (not fsynced) by the request that produced it,
//! before the app gets its answer: a killed process loses nothing the kernel
//! has; a power loss may lose the tail.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aigw_proto::pb::trace::TraceRecord;
use prost::Message;

/// A segment is sealed at this many records or this age, whichever first:
/// the age bounds how late a trace reaches the control plane.
const MAX_RECORDS: usize = 512;
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

struct State {
    next_seq: u64,
    open: Option<OpenSegment>,
}

pub struct Spool {
    dir: PathBuf,
    state: Mutex<State>,
    spooled: Arc<AtomicU64>,
    max_bytes: u64,
    sealed_tx: tokio::sync::mpsc::UnboundedSender<u64>,
}

impl Spool {
    pub fn new(
        dir: PathBuf,
        next_seq: u64,
        spooled: Arc<AtomicU64>,
        max_bytes: u64,
        sealed_tx: tokio::sync::mpsc::UnboundedSender<u64>,
    ) -> Self {
        Self {
            dir,
            state: Mutex::new(State {
                next_seq,
                open: None,
            }),
            spooled,
            max_bytes,
            sealed_tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves at worst a torn record, which
        // the reader skips: keep going rather than lose every later trace.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one record to the open segment (opening one if needed).
    pub fn append(&self, rec: &TraceRecord) -> io::Result<()> {
        let mut buf = Vec::with_capacity(rec.encoded_len() + 10);
        rec.encode_length_delimited(&mut buf)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut st = self.lock();
        if st.open.is_none() {
            let seq = st.next_seq;
            st.next_seq += 1;
            let file = crate::state_dir::private_file(&open_path(&self.dir, seq))?;
            st.open = Some(OpenSegment {
                seq,
                file,
                records: 0,
                bytes: 0,
                since: Instant::now(),
            });
        }
        let full = match &mut st.open {
            Some(o) => {
                o.file.write_all(&buf)?;
                o.records += 1;
                o.bytes += buf.len() as u64;
                o.records >= MAX_RECORDS || o.bytes >= MAX_SEGMENT_BYTES
            }
            None => false,
        };
        if full {
            self.seal(&mut st);
        }
        Ok(())
    }

    /// Seals the open segment once it is old enough; called on a timer.
    pub fn tick(&self) {
        let mut st = self.lock();
        if st
            .open
            .as_ref()
            .is_some_and(|o| o.since.elapsed() >= MAX_AGE)
        {
            self.seal(&mut st);
        }
    }

    /// Seals whatever is open (at shutdown).
    pub fn close(&self) {
        let mut st = self.lock();
        self.seal(&mut st);
    }

    fn seal(&self, st: &mut State) {
        let Some(o) = st.open.take() else { return };
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
mod tests {
    use super::*;

    fn rec(id: &str) -> TraceRecord {
        TraceRecord {
            request_id: id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn appended_records_survive_without_a_seal() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let spool = Spool::new(dir.path().to_path_buf(), 1, Arc::default(), u64::MAX, tx);
        spool.append(&rec("a")).unwrap();
        spool.append(&rec("b")).unwrap();
        // As if the process were killed now: nothing sealed, nothing lost.
        drop(spool);
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
    fn full_segments_seal_and_torn_tails_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let spool = Spool::new(dir.path().to_path_buf(), 7, Arc::default(), u64::MAX, tx);
        for i in 0..MAX_RECORDS {
            spool.append(&rec(&format!("r{i}"))).unwrap();
        }
        assert_eq!(rx.try_recv().unwrap(), 7);
        let path = seg_path(dir.path(), 7);
        let mut data = fs::read(&path).unwrap();
        data.extend_from_slice(&[0x20, 0x0a, 0x05]);
        fs::write(&path, data).unwrap();
        assert_eq!(read_segment(&path).unwrap().len(), MAX_RECORDS);
    }

    #[test]
    fn over_the_bound_the_oldest_segments_go() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let spooled = Arc::new(AtomicU64::new(0));
        let spool = Spool::new(dir.path().to_path_buf(), 1, spooled.clone(), 1, tx);
        spool.append(&rec("old")).unwrap();
        spool.close();
        spool.append(&rec("new")).unwrap();
        spool.close();
        assert!(!seg_path(dir.path(), 1).exists());
        assert!(!seg_path(dir.path(), 2).exists() || spooled.load(Ordering::Relaxed) <= 1);
    }
}
