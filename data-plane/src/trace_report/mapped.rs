//! A spool segment mapped into memory. Requests copy their record straight
//! into the mapping: once the copy is done the bytes are in the kernel's
//! page cache, which is the spool's whole guarantee (a killed process loses
//! nothing the kernel has), without a system call or a hand-off to another
//! thread per request. The writer thread (`writer.rs`) makes segments ahead
//! of need, and cuts, renames and ships them once full or old.
//!
//! A store into a mapping whose page the file system cannot back is a
//! `SIGBUS`, not an error, so what can fail is made to fail here, on the
//! writer thread, where it is one: the file's room is reserved on disk
//! (`fallocate`, so a full disk is met when a segment is made) and the
//! pages a segment usually fills are written with zeros and faulted in
//! before any request copies into them (`MADV_POPULATE_WRITE`, so a
//! request's copy does not wait for the file system either). What is left is what every memory-mapped store
//! (LMDB, Prometheus' TSDB) accepts: an I/O error of the device itself
//! while a segment is open, or another process truncating the file, stops
//! the data plane. The files live in its state directory, which one data
//! plane holds at a time (`state_dir::lock`).

// The one module that may use `unsafe`: mapping a file (memmap2's
// constructor is unsafe because another process could change the file).
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use memmap2::{Advice, MmapMut};

use super::frame::{HEADER, seal_frame};
use super::spool::{MAX_RECORDS, MAX_SEGMENT_BYTES};

/// A mapping's size: a segment is cut at [`MAX_SEGMENT_BYTES`], and the
/// record that crosses that bound still fits (records are clipped far below
/// this; see `aigw_proto::trace_bounds`).
pub const CAPACITY: usize = MAX_SEGMENT_BYTES as usize + MAX_FRAME;
/// The largest frame a segment takes.
pub const MAX_FRAME: usize = 1024 * 1024;
/// Faulted in when a segment is made: more than a segment of 512 typical
/// records fills, so requests' copies do not fault.
const PREFAULT: usize = 1024 * 1024;
/// Zeros written ahead of the fault-in, a slice at a time.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

pub struct Mapped {
    pub seq: u64,
    file: File,
    map: MmapMut,
    len: usize,
    records: usize,
    /// When the first record came: the segment's age bound counts from it.
    since: Option<Instant>,
}

impl Mapped {
    /// Creates `path` (owner only), reserves `capacity` bytes for it on
    /// disk and maps it.
    pub fn create(path: &Path, seq: u64, capacity: usize) -> io::Result<Self> {
        let mut o = OpenOptions::new();
        o.read(true).write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let file = o.open(path)?;
        if let Err(e) = reserve(&file, capacity) {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        if let Err(e) = write_zeros(&file, PREFAULT.min(capacity)) {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        // SAFETY: mapping a file is unsound only if the file changes size
        // or content behind the mapping. This one is new (`create_new`),
        // owner-only, in a state directory one data plane holds at a time,
        // and only this type changes it (through `&mut self`), cutting it
        // only after unmapping (`finish`). Its room is reserved above.
        let map = match unsafe { MmapMut::map_mut(&file) } {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(path);
                return Err(e);
            }
        };
        // Kernels before 5.14 do not know the advice (EINVAL): then the
        // first copy into each page faults it, as any mapping does.
        if let Err(e) = map.advise_range(Advice::PopulateWrite, 0, PREFAULT.min(map.len()))
            && e.raw_os_error() != Some(rustix::io::Errno::INVAL.raw_os_error())
        {
            drop(map);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(Self {
            seq,
            file,
            map,
            len: 0,
            records: 0,
            since: None,
        })
    }

    /// Appends one frame holding `payload` (an encoded record). `false`
    /// when it does not fit: the segment is full.
    pub fn push(&mut self, payload: &[u8]) -> bool {
        if self.records >= MAX_RECORDS || HEADER + payload.len() > MAX_FRAME {
            return false;
        }
        let end = self.len + HEADER + payload.len();
        let Some(frame) = self.map.get_mut(self.len..end) else {
            return false;
        };
        frame[HEADER..].copy_from_slice(payload);
        // The index is the frame's place in the segment (below MAX_RECORDS).
        seal_frame(frame, u32::try_from(self.records).unwrap_or(u32::MAX));
        self.len = end;
        self.records += 1;
        if self.since.is_none() {
            self.since = Some(Instant::now());
        }
        true
    }

    /// At its record or byte bound: to be sealed.
    pub fn is_full(&self) -> bool {
        self.records >= MAX_RECORDS || self.len >= MAX_SEGMENT_BYTES as usize
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Holds a record that came at least `age` ago.
    pub fn older_than(&self, age: Duration) -> bool {
        self.since.is_some_and(|s| s.elapsed() >= age)
    }

    /// Unmaps the segment and cuts the file to what was written (the rest
    /// of the reservation goes back to the file system). Returns its size.
    pub fn finish(self) -> io::Result<u64> {
        let Self { file, map, len, .. } = self;
        drop(map);
        let len = len as u64;
        file.set_len(len)?;
        Ok(len)
    }
}

/// A file of fixed slots mapped into memory: the streams in flight
/// (`inflight.rs`). Made as a segment is (room reserved, the first pages
/// written and faulted in), so a store into it never meets a full disk.
pub struct SlotFile {
    map: MmapMut,
}

impl SlotFile {
    /// Creates `path` anew (owner only), `len` bytes, and maps it. Made
    /// beside it and renamed over it: until the new file is whole, the old
    /// one (and whatever its slots hold) stays.
    pub fn create(path: &Path, len: usize) -> io::Result<Self> {
        let new = path.with_extension("new");
        match std::fs::remove_file(&new) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut o = OpenOptions::new();
        o.read(true).write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let file = o.open(&new)?;
        let made = reserve(&file, len)
            .and_then(|()| write_zeros(&file, PREFAULT.min(len)))
            .and_then(|()| std::fs::rename(&new, path));
        if let Err(e) = made {
            let _ = std::fs::remove_file(&new);
            return Err(e);
        }
        // SAFETY: as for a segment (`Mapped::create`): the file is new,
        // owner-only, in the state directory one data plane holds, its
        // room reserved, and only this mapping changes it.
        let map = unsafe { MmapMut::map_mut(&file) }?;
        if let Err(e) = map.advise_range(Advice::PopulateWrite, 0, PREFAULT.min(map.len()))
            && e.raw_os_error() != Some(rustix::io::Errno::INVAL.raw_os_error())
        {
            return Err(e);
        }
        Ok(Self { map })
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        &mut self.map
    }
}

/// Writes zeros over the first `len` bytes with `write`, before they are
/// mapped and faulted in. On ext4, faulting in reserved (`fallocate`d,
/// unwritten) blocks through a mapping costs the file system's journal per
/// page: 2.4 ms of CPU for a MiB here, and sealing the segment cost 0.7 ms
/// more; written first, the same MiB is in the page cache in 0.2 ms and
/// the seal takes 0.1 ms (`docs/benchmarks.md`). The writer thread's longest
/// stretch of work competed with requests for the cores.
fn write_zeros(file: &File, len: usize) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut at = 0;
    while at < len {
        let n = ZEROS.len().min(len - at);
        file.write_all_at(&ZEROS[..n], at as u64)?;
        at += n;
    }
    Ok(())
}

/// Reserves `len` bytes for the file. A file system without `fallocate`
/// gets a sparse file instead (then a full disk would stop the process at
/// its first store, so say so once).
fn reserve(file: &File, len: usize) -> io::Result<()> {
    use rustix::fs::{FallocateFlags, fallocate};
    match fallocate(file, FallocateFlags::empty(), 0, len as u64) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "the trace spool's file system cannot reserve space (fallocate); \
                     a full disk would stop the data plane instead of dropping traces"
                );
            });
            file.set_len(len as u64)
        }
        Err(e) => Err(e.into()),
    }
}
