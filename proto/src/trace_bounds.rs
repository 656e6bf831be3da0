//! Bounds on a trace record, applied by the data plane when a trace is
//! finished and again when it is read back from its spool, and by the
//! control plane when it receives one: a record can never outgrow a batch,
//! a column or a log line, whoever sent it.

use crate::pb::trace::TraceRecord;

/// The most records one trace batch may carry: a data plane seals its
/// spool segments (one batch each) at this many; the control plane refuses
/// a batch with more (what it keeps in memory per batch grows with it).
pub const MAX_BATCH_RECORDS: usize = 512;

/// Set (to `1`) in the metadata of a trace stream's error when the control
/// plane refuses a batch for what it holds, so it would refuse it on every
/// resend (`InvalidArgument`, `OutOfRange`): only then does a data plane set
/// the batch's segment aside. The same codes from anything else on the
/// way (a gRPC-aware proxy, a load balancer) carry no marker and are
/// retried, so a valid batch is never dropped for another's word.
pub const BATCH_REFUSED: &str = "aigw-trace-batch-refused";

/// `status` marked as the control plane's refusal of a batch.
pub fn refused_batch(mut status: tonic::Status) -> tonic::Status {
    status.metadata_mut().insert(
        BATCH_REFUSED,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    status
}

/// Sent (as `marked`) in the headers of the control plane's answer to a
/// trace stream: this control plane marks its refusals ([`BATCH_REFUSED`]).
/// A data plane talking to one that does not say so (an older version)
/// goes by the code alone, as it always did, rather than resending a batch
/// that will never be taken, with every later trace behind it.
pub const REFUSALS_MARKED: &str = "aigw-trace-refusals";

/// `meta` (a trace stream answer's headers) says refusals are marked.
pub fn refusals_marked(meta: &tonic::metadata::MetadataMap) -> bool {
    meta.get(REFUSALS_MARKED).is_some_and(|v| v == "marked")
}

/// Says, in a trace stream answer's headers, that refusals are marked.
pub fn mark_refusals(meta: &mut tonic::metadata::MetadataMap) {
    meta.insert(
        REFUSALS_MARKED,
        tonic::metadata::MetadataValue::from_static("marked"),
    );
}

/// Whether `status` is the control plane's refusal of a batch: a refusing
/// code, marked by [`refused_batch`] when the control plane said it marks
/// them (`marked`, from [`refusals_marked`]).
pub fn is_refused_batch(status: &tonic::Status, marked: bool) -> bool {
    let refusing = matches!(
        status.code(),
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange
    );
    refusing
        && (!marked
            || status
                .metadata()
                .get(BATCH_REFUSED)
                .is_some_and(|v| v == "1"))
}

/// The most tokens one request counts (10^12): a data plane settles budgets
/// with at most this, and the control plane stores at most this, whatever
/// a usage report or a node says.
pub const MAX_TOKENS: u64 = 1_000_000_000_000;

/// Longest strings a trace carries: names and ids, error texts, and how
/// many attempts.
const MAX_NAME: usize = 256;
const MAX_ERROR: usize = 1024;
pub const MAX_ATTEMPTS: usize = 32;
/// Dropped request fields kept, and the longest path (the data plane keeps
/// at most 64, of 120 characters, already).
pub const MAX_DROPPED: usize = 64;
const MAX_DROPPED_FIELD: usize = 128;

/// Cuts every string of the record to its bound (at a character boundary)
/// and drops NULs, which Postgres text refuses.
pub fn clip(rec: &mut TraceRecord) {
    for s in [
        &mut rec.request_id,
        &mut rec.client_key_id,
        &mut rec.client_key_name,
        &mut rec.model,
        &mut rec.provider,
        &mut rec.provider_key,
        &mut rec.region,
        &mut rec.node_id,
        &mut rec.endpoint,
        &mut rec.api_format,
        &mut rec.refused_by,
        &mut rec.usage_source,
    ] {
        clip_str(s, MAX_NAME);
    }
    clip_str(&mut rec.error, MAX_ERROR);
    rec.attempts.truncate(MAX_ATTEMPTS);
    for a in &mut rec.attempts {
        clip_str(&mut a.provider, MAX_NAME);
        clip_str(&mut a.provider_key, MAX_NAME);
        clip_str(&mut a.error, MAX_ERROR);
    }
    rec.dropped_fields.truncate(MAX_DROPPED);
    for f in &mut rec.dropped_fields {
        clip_str(f, MAX_DROPPED_FIELD);
    }
}

/// Drops NULs and cuts `s` to at most `max` bytes, at a character boundary.
pub fn clip_str(s: &mut String, max: usize) {
    if s.contains('\0') {
        *s = s.replace('\0', "");
    }
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::trace::Attempt;

    #[test]
    fn oversized_records_are_clipped() {
        let mut rec = TraceRecord {
            model: "é".repeat(1_000_000),
            error: "x\0y".into(),
            usage_source: "u".repeat(1_000_000),
            attempts: vec![Attempt::default(); 100],
            dropped_fields: vec!["x".repeat(1000); 1000],
            ..Default::default()
        };
        clip(&mut rec);
        assert_eq!(rec.dropped_fields.len(), MAX_DROPPED);
        assert!(
            rec.dropped_fields
                .iter()
                .all(|f| f.len() == MAX_DROPPED_FIELD)
        );
        assert!(rec.model.len() <= MAX_NAME && rec.model.starts_with('é'));
        assert_eq!(rec.error, "xy");
        assert_eq!(rec.usage_source.len(), MAX_NAME);
        assert_eq!(rec.attempts.len(), MAX_ATTEMPTS);
        assert!(prost::Message::encoded_len(&rec) < 16 * 1024);
    }
}
