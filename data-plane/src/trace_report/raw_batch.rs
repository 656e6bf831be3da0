//! The trace stream's batch with its records as they lie in the spool.
//!
//! `TraceBatch` (trace.proto) holds `repeated TraceRecord records = 2`; an
//! embedded message is on the wire exactly a length-delimited field, so a
//! batch of the records' encodings as `repeated bytes` with the same tags
//! is the same message, byte for byte. Sending it spares the shipper a
//! decode and an encode of every record (see `frame.rs`).

use aigw_proto::pb::trace::TraceAck;
use bytes::Bytes;
use http::uri::PathAndQuery;
use tokio_stream::Stream;
use tonic::codec::Streaming;

use crate::control::AuthedChannel;

/// `aigw.trace.v1.TraceBatch`, its records left encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RawBatch {
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    /// Each a `TraceRecord`'s encoding.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub records: Vec<Bytes>,
}

const REPORT: &str = "/aigw.trace.v1.TraceService/Report";

/// Opens `TraceService.Report` with raw batches: what the generated
/// client's `report` does, with this message type.
/// Opens the trace stream: the acks, and whether the control plane marks
/// its refusals (`trace_bounds::refusals_marked`).
pub async fn report(
    channel: AuthedChannel,
    batches: impl Stream<Item = RawBatch> + Send + 'static,
) -> Result<(Streaming<TraceAck>, bool), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("control plane not ready: {e}")))?;
    let codec = tonic_prost::ProstCodec::<RawBatch, TraceAck>::default();
    let mut req = tonic::Request::new(batches);
    req.extensions_mut().insert(tonic::GrpcMethod::new(
        "aigw.trace.v1.TraceService",
        "Report",
    ));
    let resp = grpc
        .streaming(req, PathAndQuery::from_static(REPORT), codec)
        .await?;
    let marked = aigw_proto::trace_bounds::refusals_marked(resp.metadata());
    Ok((resp.into_inner(), marked))
}

#[cfg(test)]
mod tests {
    use aigw_proto::pb::trace::{Attempt, TraceBatch, TraceRecord};
    use prost::Message;

    use super::*;

    /// The raw batch is the same message as `TraceBatch`: same bytes out,
    /// and the control plane's type reads it back whole.
    #[test]
    fn a_raw_batch_is_a_trace_batch_on_the_wire() {
        let recs: Vec<TraceRecord> = (0..3)
            .map(|i| TraceRecord {
                request_id: format!("r{i}"),
                model: "gpt-4o-mini".into(),
                status: 200,
                input_tokens: 12 + i,
                cost: 0.25,
                attempts: vec![Attempt {
                    provider: "p".into(),
                    status: 200,
                    ..Default::default()
                }],
                dropped_fields: vec!["a.b".into()],
                ..Default::default()
            })
            .collect();
        let typed = TraceBatch {
            seq: 7,
            records: recs.clone(),
        };
        let raw = RawBatch {
            seq: 7,
            records: recs
                .iter()
                .map(|r| Bytes::from(r.encode_to_vec()))
                .collect(),
        };
        assert_eq!(raw.encode_to_vec(), typed.encode_to_vec());
        let back = TraceBatch::decode(raw.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, typed);
    }
}
