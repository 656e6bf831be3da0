//! `TraceService` served with a decoder that counts before it decodes.
//!
//! prost turns an empty `TraceRecord` (two bytes on the wire) into a
//! struct of some 430 bytes, and an empty `Attempt` likewise: a 16 MiB
//! message of nothing but empty records would cost gigabytes once decoded,
//! and the 512-record bound of a batch could only be checked afterwards.
//! So the message's bytes are walked first (no allocation) and a batch
//! holding more records, or a record more attempts or dropped fields, than
//! any data plane sends (they clip records with the same bounds before
//! spooling them) is refused as too large before prost allocates anything.
//! The rest is what tonic's generated server does, with this codec.

use std::sync::Arc;
use std::task::{Context, Poll};

use aigw_proto::pb::trace::trace_service_server::TraceService;
use aigw_proto::pb::trace::{TraceAck, TraceBatch};
use aigw_proto::trace_bounds::{MAX_ATTEMPTS, MAX_BATCH_RECORDS, MAX_DROPPED};
use bytes::Buf;
use prost::Message;
use prost::encoding::{WireType, decode_key, decode_varint};
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::codegen::{Body, BoxFuture, Service, StdError};
use tonic::{Status, Streaming};
use tonic_prost::ProstEncoder;

const REPORT: &str = "/aigw.trace.v1.TraceService/Report";

/// The trace service behind [`BoundedDecoder`]; otherwise as tonic's
/// generated `TraceServiceServer`.
pub struct TraceServer<T> {
    inner: Arc<T>,
    max_decoding: usize,
}

impl<T> Clone for TraceServer<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            max_decoding: self.max_decoding,
        }
    }
}

impl<T: TraceService> TraceServer<T> {
    pub fn new(inner: T, max_decoding: usize) -> Self {
        Self {
            inner: Arc::new(inner),
            max_decoding,
        }
    }
}

impl<T> tonic::server::NamedService for TraceServer<T> {
    const NAME: &'static str = aigw_proto::pb::trace::trace_service_server::SERVICE_NAME;
}

struct Report<T>(Arc<T>);

impl<T: TraceService> tonic::server::StreamingService<TraceBatch> for Report<T> {
    type Response = TraceAck;
    type ResponseStream = T::ReportStream;
    type Future = BoxFuture<tonic::Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: tonic::Request<Streaming<TraceBatch>>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { inner.report(request).await })
    }
}

impl<T, B> Service<http::Request<B>> for TraceServer<T>
where
    T: TraceService,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != REPORT {
            return Box::pin(async { Ok(Status::unimplemented("").into_http()) });
        }
        let method = Report(self.inner.clone());
        let max = self.max_decoding;
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(BoundedCodec)
                .apply_max_message_size_config(Some(max), None);
            Ok(grpc.streaming(method, req).await)
        })
    }
}

/// Encodes acks as prost does; decodes batches through [`BoundedDecoder`].
#[derive(Clone, Copy, Default)]
struct BoundedCodec;

impl Codec for BoundedCodec {
    type Encode = TraceAck;
    type Decode = TraceBatch;
    type Encoder = ProstEncoder<TraceAck>;
    type Decoder = BoundedDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        BoundedDecoder
    }
}

/// prost's decoder, after [`check_counts`].
struct BoundedDecoder;

impl Decoder for BoundedDecoder {
    type Item = TraceBatch;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<TraceBatch>, Status> {
        // tonic hands a whole message in one contiguous buffer.
        if buf.chunk().len() == buf.remaining() {
            check_counts(buf.chunk()).map_err(Status::out_of_range)?;
        }
        TraceBatch::decode(buf)
            .map(Some)
            .map_err(|e| Status::internal(format!("failed to decode Protobuf message: {e}")))
    }
}

/// Refuses a `TraceBatch` encoding that holds more records than
/// [`MAX_BATCH_RECORDS`], or a record with more attempts or dropped fields
/// than a data plane keeps. Bytes that do not parse are left to prost,
/// which refuses them.
pub fn check_counts(mut msg: &[u8]) -> Result<(), String> {
    let mut records = 0;
    while msg.has_remaining() {
        let Ok((tag, wire)) = decode_key(&mut msg) else {
            return Ok(());
        };
        if tag == 2 && wire == WireType::LengthDelimited {
            let Some(rec) = take_len(&mut msg) else {
                return Ok(());
            };
            records += 1;
            if records > MAX_BATCH_RECORDS {
                return Err(format!(
                    "a trace batch holds at most {MAX_BATCH_RECORDS} records"
                ));
            }
            check_record(rec)?;
        } else if skip(&mut msg, wire)? {
            return Ok(());
        }
    }
    Ok(())
}

/// `TraceRecord.attempts` (22) and `dropped_fields` (23), counted.
fn check_record(mut rec: &[u8]) -> Result<(), String> {
    let (mut attempts, mut dropped) = (0, 0);
    while rec.has_remaining() {
        let Ok((tag, wire)) = decode_key(&mut rec) else {
            return Ok(());
        };
        match (tag, wire) {
            (22, WireType::LengthDelimited) => attempts += 1,
            (23, WireType::LengthDelimited) => dropped += 1,
            _ => {}
        }
        if attempts > MAX_ATTEMPTS || dropped > MAX_DROPPED {
            return Err(format!(
                "a trace record holds at most {MAX_ATTEMPTS} attempts and {MAX_DROPPED} dropped fields"
            ));
        }
        if skip(&mut rec, wire)? {
            return Ok(());
        }
    }
    Ok(())
}

/// A length-delimited field's bytes, taken off `buf`.
fn take_len<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(decode_varint(buf).ok()?).ok()?;
    let (field, rest) = (buf.get(..len)?, buf.get(len..)?);
    *buf = rest;
    Some(field)
}

/// Skips one field's value; `true` when it does not parse (prost refuses
/// it then). A group is refused here: trace.proto has none, and prost
/// would skip an unknown one with anything inside it, records uncounted.
fn skip(buf: &mut &[u8], wire: WireType) -> Result<bool, String> {
    let n = match wire {
        WireType::Varint => return Ok(decode_varint(buf).is_err()),
        WireType::LengthDelimited => return Ok(take_len(buf).is_none()),
        WireType::SixtyFourBit => 8,
        WireType::ThirtyTwoBit => 4,
        WireType::StartGroup | WireType::EndGroup => {
            return Err("a trace batch holds a group field, which trace.proto has none of".into());
        }
    };
    match buf.get(n..) {
        Some(rest) => {
            *buf = rest;
            Ok(false)
        }
        None => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use aigw_proto::pb::trace::{Attempt, TraceRecord};

    use super::*;

    fn batch(records: Vec<TraceRecord>) -> Vec<u8> {
        TraceBatch { seq: 3, records }.encode_to_vec()
    }

    #[test]
    fn a_batch_a_data_plane_sends_passes() {
        let rec = TraceRecord {
            request_id: "r".into(),
            attempts: vec![Attempt::default(); MAX_ATTEMPTS],
            dropped_fields: vec!["a.b".into(); MAX_DROPPED],
            cost: 0.5,
            ..Default::default()
        };
        assert_eq!(check_counts(&batch(vec![rec; MAX_BATCH_RECORDS])), Ok(()));
    }

    /// Two bytes a record on the wire, hundreds once decoded: refused on
    /// the count, before anything is decoded.
    #[test]
    fn empty_records_past_the_bound_are_refused_before_decoding() {
        let bytes = [0x12u8, 0x00].repeat(MAX_BATCH_RECORDS + 1);
        let err = check_counts(&bytes).unwrap_err();
        assert!(err.contains("at most 512 records"), "{err}");
        assert_eq!(check_counts(&bytes[2..]), Ok(()));
    }

    #[test]
    fn a_record_with_more_attempts_or_dropped_fields_than_kept_is_refused() {
        let many_attempts = TraceRecord {
            attempts: vec![Attempt::default(); MAX_ATTEMPTS + 1],
            ..Default::default()
        };
        assert!(check_counts(&batch(vec![many_attempts])).is_err());
        let many_dropped = TraceRecord {
            dropped_fields: vec![String::new(); MAX_DROPPED + 1],
            ..Default::default()
        };
        assert!(check_counts(&batch(vec![many_dropped])).is_err());
    }

    /// What does not parse is prost's to refuse, with its own error.
    #[test]
    fn bytes_that_do_not_parse_are_left_to_prost() {
        assert_eq!(check_counts(&[0x12, 0x05, 0x01]), Ok(()));
        assert_eq!(check_counts(&[0xff]), Ok(()));
    }

    /// prost skips an unknown group and decodes on: a group before the
    /// records (or inside one, before its attempts) must not end the count.
    #[test]
    fn a_group_cannot_hide_records_from_the_count() {
        let mut bytes = vec![0x2b, 0x2c];
        bytes.extend([0x12u8, 0x00].repeat(MAX_BATCH_RECORDS + 1));
        assert!(
            TraceBatch::decode(bytes.as_slice()).is_ok(),
            "prost takes it"
        );
        assert!(check_counts(&bytes).unwrap_err().contains("group"));
        let mut rec = vec![0x2b, 0x2c];
        rec.extend([0xb2u8, 0x01, 0x00].repeat(MAX_ATTEMPTS + 1));
        let mut batch = vec![0x12, rec.len() as u8];
        batch.extend(rec);
        assert!(check_counts(&batch).is_err());
    }
}
