//! The on-disk spool: numbered segment files of length-delimited
//! `TraceRecord`s. `N.open` is being written; `N.seg` is sealed and waits for
//! an ack. Records are written (not fsynced) as they arrive, so a killed
//! process loses nothing the kernel has; a power loss may lose the tail.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use aigw_proto::pb::trace::TraceRecord;
use prost::Message;

/// A segment is sealed at this many records or this age, whichever first:
/// the age bounds how late a trace reaches the control plane.
const MAX_RECORDS: usize = 512;
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
    fs::create_dir_all(dir)?;
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
            Ok(r) => out.push(r),
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

pub struct Writer {
    dir: PathBuf,
    next_seq: u64,
    spooled: Arc<AtomicU64>,
    max_bytes: u64,
    sealed_tx: tokio::sync::mpsc::UnboundedSender<u64>,
    open: Option<OpenSegment>,
    buf: Vec<u8>,
    buf_records: usize,
}

impl Writer {
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
            open: None,
            buf: Vec::with_capacity(64 * 1024),
            buf_records: 0,
        }
    }

    /// Runs until every sender is gone, then seals what is open.
    pub fn run(mut self, rx: Receiver<TraceRecord>) {
        loop {
            let wait = match &self.open {
                Some(o) => MAX_AGE.saturating_sub(o.since.elapsed()),
                None => Duration::from_secs(3600),
            };
            match rx.recv_timeout(wait) {
                Ok(rec) => {
                    self.encode(&rec);
                    while self.buf.len() < 256 * 1024 {
                        match rx.try_recv() {
                            Ok(r) => self.encode(&r),
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = self.flush() {
                        tracing::error!(error = %e, "cannot write the trace spool");
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.seal();
                    return;
                }
            }
            if self
                .open
                .as_ref()
                .is_some_and(|o| o.records >= MAX_RECORDS || o.since.elapsed() >= MAX_AGE)
            {
                self.seal();
            }
        }
    }

    fn encode(&mut self, rec: &TraceRecord) {
        if rec.encode_length_delimited(&mut self.buf).is_ok() {
            self.buf_records += 1;
        }
    }

    /// Appends the encoded records to the open segment, opening one if needed.
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.open.is_none() {
            let seq = self.next_seq;
            self.next_seq += 1;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(open_path(&self.dir, seq))?;
            self.open = Some(OpenSegment {
                seq,
                file,
                records: 0,
                bytes: 0,
                since: Instant::now(),
            });
        }
        if let Some(o) = &mut self.open {
            o.file.write_all(&self.buf)?;
            o.records += self.buf_records;
            o.bytes += self.buf.len() as u64;
        }
        self.buf.clear();
        self.buf_records = 0;
        Ok(())
    }

    fn seal(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!(error = %e, "cannot write the trace spool");
        }
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
    fn evict_oldest(&mut self, mut total: u64) {
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
