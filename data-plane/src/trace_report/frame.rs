//! The spool's frame format and its reader.
//!
//! Each record is one frame (format 2):
//!
//! ```text
//! magic "\xA7\x1C" | len: u32 LE | index: u32 LE | crc32(len, index, payload): u32 LE | payload (len bytes)
//! ```
//!
//! `payload` is the encoded record, `index` its place in the segment (0, 1,
//! …). A reader keeps only frames whose checksum holds, so garbage is never
//! taken for records: past a damaged stretch it resyncs on the next valid
//! frame, and the gap in the indices says how many records were lost.
//! Segments written before frames (format 1: bare length-delimited records)
//! are still read, strictly: the first record that does not decode ends it.
//!
//! A record is read back as its frame's payload, not decoded: the shipper
//! sends those bytes as they are (`raw_batch::RawBatch`), so shipping costs no
//! decode and no encode per record. The writer encoded the payload from a
//! clipped `TraceRecord` and the checksum holds, so it is that encoding;
//! a payload the control plane could not decode (`record_check`) is
//! counted lost rather than sent.

use std::fs;
use std::io;
use std::ops::Range;
use std::path::Path;

use aigw_proto::pb::trace::TraceRecord;
use bytes::Bytes;
use prost::Message;
use prost::encoding::decode_varint;

use super::spool::MAX_SEGMENT_BYTES;

/// The first bytes of every frame.
const MAGIC: [u8; 2] = [0xA7, 0x1C];
/// Magic, length, index, checksum.
pub const HEADER: usize = 14;
/// No record comes near this (records are clipped): a longer length is
/// damage, not a record.
const MAX_PAYLOAD: usize = MAX_SEGMENT_BYTES as usize;

/// Fills in the header of a frame: `frame` is [`HEADER`] bytes (any value)
/// followed by the encoded record.
pub fn seal_frame(frame: &mut [u8], index: u32) {
    let Some((head, payload)) = frame.split_at_mut_checked(HEADER) else {
        return;
    };
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    head[0..2].copy_from_slice(&MAGIC);
    head[2..6].copy_from_slice(&len.to_le_bytes());
    head[6..10].copy_from_slice(&index.to_le_bytes());
    let crc = checksum(&head[2..10], payload);
    head[10..14].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(len_index: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_index);
    h.update(payload);
    h.finalize()
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&data[at..at + 4]);
    u32::from_le_bytes(b)
}

/// The valid frame starting at `at`, if any: (index, payload range).
fn frame_at(data: &[u8], at: usize) -> Option<(u32, Range<usize>)> {
    let head = data.get(at..at.checked_add(HEADER)?)?;
    if head[0..2] != MAGIC {
        return None;
    }
    let len = u32_at(head, 2) as usize;
    if len == 0 || len > MAX_PAYLOAD {
        return None;
    }
    let start = at + HEADER;
    let payload = data.get(start..start + len)?;
    (checksum(&head[2..10], payload) == u32_at(head, 10))
        .then(|| (u32_at(head, 6), start..start + len))
}

/// Where the next valid frame after `from` starts (or the end).
fn resync(data: &[u8], from: usize) -> usize {
    let mut at = from;
    while let Some(off) = data.get(at..).and_then(|d| memchr::memmem::find(d, &MAGIC)) {
        if frame_at(data, at + off).is_some() {
            return at + off;
        }
        at += off + 1;
    }
    data.len()
}

/// One stretch of a segment, in order: a frame whose checksum holds, or
/// the damaged bytes up to the next one (or to the end).
pub(super) enum Piece {
    Frame { index: u32, payload: Range<usize> },
    Damage(Range<usize>),
}

/// The segment `data` as frames and damaged stretches, front to back: what
/// the reader reads and what the start-up trim measures.
pub(super) fn pieces(data: &[u8]) -> impl Iterator<Item = Piece> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= data.len() {
            return None;
        }
        if let Some((index, payload)) = frame_at(data, at) {
            at = payload.end;
            return Some(Piece::Frame { index, payload });
        }
        let next = resync(data, at + 1);
        let stretch = at..next;
        at = next;
        Some(Piece::Damage(stretch))
    })
}

/// A damaged stretch at the end that is the start of a frame cut short:
/// what a write cut by a crash or a full disk leaves.
fn looks_torn(rest: &[u8]) -> bool {
    let magic = rest.len().min(2);
    if rest[..magic] != MAGIC[..magic] {
        return false;
    }
    if rest.len() < HEADER {
        return true;
    }
    let len = u32_at(rest, 2) as usize;
    len > 0 && len <= MAX_PAYLOAD && HEADER + len > rest.len()
}

/// A sealed segment, read back.
#[derive(Debug, Default)]
pub struct Segment {
    /// Each record's encoding (a `TraceRecord`), sliced from the file.
    pub records: Vec<Bytes>,
    /// Records the segment held but that could not be read back: exact for
    /// damage before the last good record (the indices tell), at least one
    /// for a damaged or torn end.
    pub lost: u64,
    /// Bytes that were not part of any good record.
    pub damaged_bytes: u64,
    /// The damage is only a record cut short at the end.
    pub torn: bool,
    /// Written by a version before checksummed frames.
    pub legacy: bool,
}

impl Segment {
    pub fn damaged(&self) -> bool {
        self.lost > 0 || self.damaged_bytes > 0
    }

    /// The records, decoded (for tests and tools; shipping sends the bytes).
    #[cfg(test)]
    pub fn decoded(&self) -> Vec<TraceRecord> {
        self.records
            .iter()
            .map(|b| TraceRecord::decode(b.clone()).expect("a record read back decodes"))
            .collect()
    }
}

/// Reads a sealed segment: every record whose checksum holds, skipping
/// (and counting) damaged stretches.
pub fn read_segment(path: &Path) -> io::Result<Segment> {
    let data = fs::read(path)?;
    Ok(parse_segment(&Bytes::from(data)))
}

pub(super) fn parse_segment(data: &Bytes) -> Segment {
    let mut seg = Segment::default();
    let mut next_index = 0u64;
    let mut found = false;
    for piece in pieces(data) {
        match piece {
            Piece::Frame { index, payload } => {
                found = true;
                let index = u64::from(index);
                seg.lost += index.saturating_sub(next_index);
                next_index = next_index.max(index + 1);
                if super::record_check::is_record(&data[payload.clone()]) {
                    seg.records.push(data.slice(payload));
                } else {
                    // The checksum holds, so it was written so: lost all the same.
                    seg.lost += 1;
                }
            }
            Piece::Damage(stretch) => {
                if stretch.end == data.len() {
                    // A damaged end: at least one record was there.
                    seg.torn = seg.damaged_bytes == 0 && looks_torn(&data[stretch.start..]);
                    seg.lost += 1;
                } else {
                    seg.torn = false;
                }
                seg.damaged_bytes += stretch.len() as u64;
            }
        }
    }
    if !found
        && !data.is_empty()
        && let Some(legacy) = parse_legacy(data)
    {
        return legacy;
    }
    seg
}

/// Format 1: bare length-delimited records. Strict, since nothing checks
/// them: an empty or undecodable record (zeros, junk) ends the segment as
/// damage. `None` when not even the first record is one. Each record is
/// decoded to check it, clipped (it may be from before records were
/// clipped when made, and over the control plane's message limit) and
/// encoded again: a rare path, so the simple one.
fn parse_legacy(data: &Bytes) -> Option<Segment> {
    let mut seg = Segment {
        legacy: true,
        ..Default::default()
    };
    let mut buf = &data[..];
    while !buf.is_empty() {
        let before = buf;
        let ok = match decode_varint(&mut buf) {
            Ok(len) if len > 0 && (len as usize) <= buf.len() => {
                let (body, rest) = buf.split_at(len as usize);
                buf = rest;
                TraceRecord::decode(body)
                    .ok()
                    .filter(|r| !r.request_id.is_empty())
                    .map(|mut r| {
                        // Written before records were clipped when made: the
                        // control plane's message limit may be below it.
                        aigw_proto::trace_bounds::clip(&mut r);
                        Bytes::from(r.encode_to_vec())
                    })
            }
            _ => None,
        };
        match ok {
            Some(r) => seg.records.push(r),
            None => {
                seg.lost += 1;
                seg.damaged_bytes = before.len() as u64;
                break;
            }
        }
    }
    (!seg.records.is_empty()).then_some(seg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace_report::spool::seg_path;
    use crate::trace_report::spool::tests::{rec, write_segment};

    fn ids(seg: &Segment) -> Vec<String> {
        seg.decoded().into_iter().map(|r| r.request_id).collect()
    }

    /// What a power loss can leave: the segment's blocks zeroed. Not one
    /// record comes out of it (format 1 read each zero byte as an empty
    /// record: 597 of them, a batch the control plane refuses).
    #[test]
    fn a_zeroed_segment_yields_no_records() {
        let dir = tempfile::tempdir().unwrap();
        let recs: Vec<_> = (0..20).map(|i| rec(&format!("r{i}"))).collect();
        write_segment(dir.path(), 1, &recs);
        let path = seg_path(dir.path(), 1);
        let len = fs::metadata(&path).unwrap().len() as usize;
        fs::write(&path, vec![0u8; len]).unwrap();
        let got = read_segment(&path).unwrap();
        assert!(got.records.is_empty(), "{} records", got.records.len());
        assert!(got.damaged() && !got.torn);
        assert_eq!(got.damaged_bytes, len as u64);
        // Zeros in the middle: the records after them still come out, and
        // the gap is counted exactly.
        write_segment(dir.path(), 2, &recs);
        let path = seg_path(dir.path(), 2);
        let mut data = fs::read(&path).unwrap();
        let frame = data.len() / 20;
        data[5 * frame + 3..8 * frame + 1].fill(0);
        fs::write(&path, data).unwrap();
        let got = read_segment(&path).unwrap();
        let want: Vec<String> = (0..20)
            .filter(|i| !(5..=8).contains(i))
            .map(|i| format!("r{i}"))
            .collect();
        assert_eq!(ids(&got), want);
        assert_eq!(got.lost, 4);
        assert!(!got.torn);
    }

    #[test]
    fn a_flipped_byte_loses_one_record_counted_and_the_rest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let recs: Vec<_> = (0..10).map(|i| rec(&format!("rec-{i}"))).collect();
        write_segment(dir.path(), 1, &recs);
        let path = seg_path(dir.path(), 1);
        let mut data = fs::read(&path).unwrap();
        let frame = data.len() / 10;
        data[3 * frame + HEADER + 2] ^= 0x40;
        fs::write(&path, data).unwrap();
        let got = read_segment(&path).unwrap();
        assert_eq!(got.records.len(), 9);
        assert!(!ids(&got).iter().any(|id| id == "rec-3"));
        assert_eq!(ids(&got)[3], "rec-4");
        assert_eq!((got.lost, got.torn), (1, false));
        // Junk at the end is damage, not a torn record.
        let mut data = fs::read(&path).unwrap();
        data.extend_from_slice(b"not a frame at all");
        fs::write(&path, data).unwrap();
        let got = read_segment(&path).unwrap();
        assert_eq!((got.records.len(), got.lost, got.torn), (9, 2, false));
    }

    /// A frame whose checksum holds but whose payload the control plane
    /// could not decode is counted lost, not shipped for the control plane
    /// to fail its batch on; the frames around it are read.
    #[test]
    fn a_sealed_payload_that_is_not_a_record_is_lost_not_shipped() {
        let mut data = Vec::new();
        let payloads: [Vec<u8>; 3] = [
            rec("before").encode_to_vec(),
            // request_id (field 1) holding bytes that are not UTF-8: the
            // control plane's decode would fail the whole batch.
            vec![0x0a, 0x02, 0xff, 0xfe],
            rec("after").encode_to_vec(),
        ];
        for (i, p) in payloads.iter().enumerate() {
            let mut frame = vec![0u8; HEADER];
            frame.extend_from_slice(p);
            seal_frame(&mut frame, i as u32);
            data.extend_from_slice(&frame);
        }
        let got = parse_segment(&Bytes::from(data));
        assert_eq!(ids(&got), ["before", "after"]);
        assert_eq!((got.lost, got.damaged_bytes), (1, 0));
    }

    #[test]
    fn a_segment_of_the_previous_format_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000001.seg");
        let mut data = Vec::new();
        for i in 0..3 {
            rec(&format!("old{i}"))
                .encode_length_delimited(&mut data)
                .unwrap();
        }
        fs::write(&path, &data).unwrap();
        let got = read_segment(&path).unwrap();
        assert_eq!(ids(&got), ["old0", "old1", "old2"]);
        assert!(got.legacy && !got.damaged());
        // A record from before records were clipped when made goes out
        // clipped (the control plane's message limit is 16 MiB).
        let mut big = rec("old-big");
        big.error = "e".repeat(20 << 20);
        let mut with_big = data.clone();
        big.encode_length_delimited(&mut with_big).unwrap();
        fs::write(&path, &with_big).unwrap();
        let got = read_segment(&path).unwrap();
        assert_eq!(ids(&got), ["old0", "old1", "old2", "old-big"]);
        assert!(
            got.records[3].len() < 64 << 10,
            "{} bytes",
            got.records[3].len()
        );
        assert!(got.decoded()[3].error.starts_with("eee"));
        // Zeros after its records end it, counted.
        data.extend_from_slice(&[0; 64]);
        fs::write(&path, &data).unwrap();
        let got = read_segment(&path).unwrap();
        assert_eq!(got.records.len(), 3);
        assert_eq!(got.lost, 1);
    }
}
