//! Streams whose answer has begun, kept where a killed process leaves them.
//!
//! A streamed answer's trace is filed when the stream ends. A data plane
//! killed mid-stream (`SIGKILL`, the OOM killer, a crash) never files it,
//! though its app got part of an answer and the provider bills what it
//! generated. So when a stream begins, the record it would file if cut
//! there is copied into a slot of a file mapped into memory (in the
//! spool's directory, so the kernel keeps it as it keeps the spool), and
//! the slot keeps count of what has streamed since; the slot is freed once
//! the stream's own record is filed. At the next start every slot still
//! holding a record is filed: a stream the data plane stopped before its
//! end, charged as a cut stream is (`estimated_broken`: the prompt's
//! estimate unless the provider reported it, and the tokens counted
//! streamed). The control plane stores by request id, so a record filed
//! both ways (the process killed between the two) is stored once.
//!
//! Streams past [`SLOTS`] at once, or whose record does not fit a slot
//! (several failed attempts with long errors), are not kept: they are
//! traced when they end, as before, and lost with a killed process.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aigw_proto::model::Price;
use aigw_proto::pb::trace::TraceRecord;
use prost::Message;

use crate::usage::Usage;

use super::mapped::SlotFile;

/// Streams kept at once.
pub const SLOTS: usize = 4096;
/// One slot: a header and the record's encoding.
const SLOT: usize = 4096;
/// Little-endian: `len: u32 | crc32(record): u32 | chars streamed: u64 |
/// chunks streamed: u64 | usage reported so far: 6 × u64 (input, output,
/// cached, reasoning, cache writes, 1-hour cache writes) | price: 3 × f64
/// (input, output, cached input, per million) | priced: u64`.
const HEAD: usize = 104;
/// Where the usage words begin, and the price's.
const USAGE: usize = 24;
const PRICE: usize = 72;
/// The file, in the spool's directory (no `.seg`/`.open` suffix: the
/// spool's scan passes it by).
const FILE: &str = "inflight";
/// The error of a stream found in a slot at start.
pub const KILLED: &str = "data plane stopped before the stream ended";

pub struct InFlight {
    table: Mutex<Table>,
}

struct Table {
    file: SlotFile,
    /// Free slots; the last freed is taken first, so the pages in use stay few.
    free: Vec<u32>,
}

/// A stream's slot, freed when dropped.
pub struct Slot {
    owner: Arc<InFlight>,
    index: u32,
}

impl InFlight {
    /// The records a previous run left in the slot file of `dir`, each
    /// charged for what had streamed. Read before [`Self::create`] starts
    /// the file anew, once they are handed to the spool.
    pub fn left_in(dir: &Path) -> io::Result<Vec<TraceRecord>> {
        match std::fs::read(dir.join(FILE)) {
            Ok(bytes) => Ok(recover(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Makes the slot file of `dir` anew, every slot free.
    pub fn create(dir: &Path) -> io::Result<Arc<Self>> {
        let file = SlotFile::create(&dir.join(FILE), SLOTS * SLOT)?;
        let free = (0..SLOTS as u32).rev().collect();
        let table = Mutex::new(Table { file, free });
        Ok(Arc::new(Self { table }))
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps what the stream files if cut now until the slot is dropped:
    /// `parts`, encoded one after the other, which a decoder merges (a
    /// later field's value wins: the draft record, then what a cut changes
    /// in it, with no copy of the record), and the price its usage is
    /// charged at.
    pub fn begin(self: &Arc<Self>, parts: &[&TraceRecord], price: Option<Price>) -> Option<Slot> {
        let len: usize = parts.iter().map(|r| r.encoded_len()).sum();
        if HEAD + len > SLOT {
            return None;
        }
        let mut t = self.lock();
        let index = t.free.pop()?;
        let s = t.slot(index);
        let mut body = &mut s[HEAD..HEAD + len];
        for r in parts {
            // `body` has exactly the room the parts' lengths add up to.
            r.encode_raw(&mut body);
        }
        let crc = crc32fast::hash(&s[HEAD..HEAD + len]);
        s[8..PRICE].fill(0);
        let p = price.map_or([0.0; 3], |p| [p.input, p.output, p.cached_input]);
        for (i, v) in p.into_iter().enumerate() {
            s[PRICE + 8 * i..PRICE + 8 * i + 8].copy_from_slice(&v.to_le_bytes());
        }
        s[PRICE + 24..HEAD].copy_from_slice(&u64::from(price.is_some()).to_le_bytes());
        s[4..8].copy_from_slice(&crc.to_le_bytes());
        // The length last: a slot is read only with its record whole.
        s[0..4].copy_from_slice(&(len as u32).to_le_bytes());
        Some(Slot {
            owner: self.clone(),
            index,
        })
    }
}

impl Table {
    fn slot(&mut self, index: u32) -> &mut [u8] {
        let at = index as usize * SLOT;
        &mut self.file.bytes()[at..at + SLOT]
    }
}

impl Slot {
    /// What has streamed so far (characters of text, chunks) and what the
    /// provider has reported of its usage, as the stream's own end would
    /// charge them.
    pub fn progress(&self, chars: u64, chunks: u64, usage: &Usage) {
        let mut t = self.owner.lock();
        let s = t.slot(self.index);
        let u = usage;
        let words = [
            chars,
            chunks,
            u.input,
            u.output,
            u.cached,
            u.reasoning,
            u.cache_write,
            u.cache_write_1h,
        ];
        for (i, w) in words.into_iter().enumerate() {
            s[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
    }
}

impl Slot {
    /// Leaves the slot in use in the file (its record could not be
    /// spooled as the process stops): the next start files it.
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.owner.lock();
        t.slot(self.index)[0..4].fill(0);
        t.free.push(self.index);
    }
}

/// The records of the slots still in use in a slot file's bytes, charged
/// for what had streamed, as a cut stream is.
fn recover(bytes: &[u8]) -> Vec<TraceRecord> {
    bytes.chunks_exact(SLOT).filter_map(kept_in).collect()
}

fn kept_in(s: &[u8]) -> Option<TraceRecord> {
    let word = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or_default());
    let len = u32::from_le_bytes(s[0..4].try_into().ok()?) as usize;
    let payload = s.get(HEAD..HEAD.checked_add(len)?)?;
    if len == 0 || crc32fast::hash(payload).to_le_bytes() != s[4..8] {
        return None;
    }
    let mut rec = TraceRecord::decode(payload).ok()?;
    let u = |i: usize| word(USAGE + 8 * i);
    let mut usage = Usage {
        input: u(0),
        output: u(1),
        cached: u(2),
        reasoning: u(3),
        cache_write: u(4),
        cache_write_1h: u(5),
    };
    // As a cut stream is charged: the prompt's estimate unless reported,
    // and at least what was seen streamed.
    if usage.input == 0 {
        usage.input = rec.input_tokens;
    }
    usage.output = usage
        .output
        .max(rec.output_tokens)
        .max(word(8).div_ceil(4).max(word(16)));
    let f = |i: usize| f64::from_bits(word(PRICE + 8 * i));
    let price = (word(PRICE + 24) == 1).then(|| Price {
        input: f(0),
        output: f(1),
        cached_input: f(2),
    });
    rec.input_tokens = usage.input;
    rec.output_tokens = usage.output;
    rec.cached_tokens = usage.cached;
    rec.reasoning_tokens = usage.reasoning;
    let cost = usage.cost(price);
    if cost.is_finite() {
        rec.cost = cost;
    }
    Some(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> TraceRecord {
        TraceRecord {
            request_id: id.into(),
            status: 200,
            input_tokens: 40,
            cost: 0.001,
            error: KILLED.into(),
            usage_source: "estimated_broken".into(),
            ..Default::default()
        }
    }

    /// A slot not freed (its process was killed) is filed at the next
    /// start, charged for what streamed; a freed one is not; and the file
    /// starts afresh, so nothing is filed twice.
    #[test]
    fn a_stream_cut_by_a_kill_is_filed_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        assert!(InFlight::left_in(dir.path()).unwrap().is_empty());
        let table = InFlight::create(dir.path()).unwrap();
        let price = Some(Price {
            input: 25.0,
            output: 10.0,
            cached_input: 2.5,
        });
        let done = table.begin(&[&rec("ended")], price).unwrap();
        let cut = table.begin(&[&rec("cut")], price).unwrap();
        cut.progress(401, 12, &Usage::default());
        drop(done);
        // The process dies: the slot is never freed.
        std::mem::forget(cut);
        drop(table);

        let left = InFlight::left_in(dir.path()).unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        let r = &left[0];
        assert_eq!(r.request_id, "cut");
        assert_eq!((r.status, r.error.as_str()), (200, KILLED));
        // 401 characters are 101 tokens, more than the 12 chunks.
        assert_eq!((r.input_tokens, r.output_tokens), (40, 101));
        assert!(
            (r.cost - (0.001 + 101.0 * 0.00001)).abs() < 1e-12,
            "{}",
            r.cost
        );
        let _table = InFlight::create(dir.path()).unwrap();
        let again = InFlight::left_in(dir.path()).unwrap();
        assert!(again.is_empty(), "filed once: {again:?}");
    }

    /// The draft record is kept as it is, with what a cut changes encoded
    /// after it: read back, the later values win and the rest is the
    /// draft's.
    #[test]
    fn what_a_cut_changes_is_merged_over_the_draft_record() {
        let dir = tempfile::tempdir().unwrap();
        let table = InFlight::create(dir.path()).unwrap();
        let draft = TraceRecord {
            request_id: "m".into(),
            model: "gpt-4o-mini".into(),
            attempts: vec![aigw_proto::pb::trace::Attempt {
                provider: "p".into(),
                status: 200,
                ..Default::default()
            }],
            ..Default::default()
        };
        let over = TraceRecord {
            status: 200,
            input_tokens: 7,
            ..rec("")
        };
        std::mem::forget(table.begin(&[&draft, &over], None).unwrap());
        drop(table);
        let [r] = InFlight::left_in(dir.path()).unwrap().try_into().unwrap();
        assert_eq!(
            (r.request_id.as_str(), r.model.as_str()),
            ("m", "gpt-4o-mini")
        );
        assert_eq!(r.attempts.len(), 1);
        assert_eq!(
            (r.status, r.input_tokens, r.error.as_str()),
            (200, 7, KILLED)
        );
        assert_eq!(r.usage_source, "estimated_broken");
    }

    /// Usage the provider reports after the stream began (Anthropic's
    /// `message_start`: the prompt, mostly read from its cache) is what a
    /// cut stream is charged, not the estimate.
    #[test]
    fn usage_reported_after_the_stream_began_is_what_is_charged() {
        let dir = tempfile::tempdir().unwrap();
        let table = InFlight::create(dir.path()).unwrap();
        let price = Price {
            input: 3.0,
            output: 15.0,
            cached_input: 0.3,
        };
        let slot = table.begin(&[&rec("cached")], Some(price)).unwrap();
        let reported = Usage {
            input: 5000,
            cached: 4000,
            output: 1,
            ..Default::default()
        };
        slot.progress(40, 3, &reported);
        std::mem::forget(slot);
        drop(table);
        let [r] = InFlight::left_in(dir.path()).unwrap().try_into().unwrap();
        assert_eq!(
            (r.input_tokens, r.cached_tokens, r.output_tokens),
            (5000, 4000, 10)
        );
        let want = (1000.0 * 3.0 + 4000.0 * 0.3 + 10.0 * 15.0) / 1e6;
        assert!((r.cost - want).abs() < 1e-12, "{}", r.cost);
    }

    #[test]
    fn slots_are_reused_and_a_full_table_keeps_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let table = InFlight::create(dir.path()).unwrap();
        let held: Vec<Slot> = (0..SLOTS)
            .map(|i| table.begin(&[&rec(&format!("r{i}"))], None).unwrap())
            .collect();
        assert!(table.begin(&[&rec("one-more")], None).is_none());
        drop(held);
        assert!(table.begin(&[&rec("again")], None).is_some());
        let huge = TraceRecord {
            error: "x".repeat(SLOT),
            ..rec("huge")
        };
        assert!(table.begin(&[&huge], None).is_none(), "does not fit a slot");
    }

    /// Damage (a torn write, a foreign file) is passed over, not filed.
    #[test]
    fn a_slot_whose_record_does_not_check_is_passed_over() {
        let mut bytes = vec![0u8; 2 * SLOT];
        let payload = rec("x").encode_to_vec();
        for (i, s) in bytes.chunks_exact_mut(SLOT).enumerate() {
            s[HEAD..HEAD + payload.len()].copy_from_slice(&payload);
            s[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
            let crc = crc32fast::hash(&payload) ^ i as u32;
            s[4..8].copy_from_slice(&crc.to_le_bytes());
        }
        let left = recover(&bytes);
        assert_eq!(left.len(), 1, "only the slot whose checksum holds");
        bytes[SLOT - 1] = 0;
        bytes[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(recover(&bytes[..SLOT]).is_empty());
    }
}
