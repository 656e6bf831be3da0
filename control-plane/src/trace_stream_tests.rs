//! The trace stream against a real control plane: acks after storing,
//! duplicates, and what a node's batches may hold (bounds, bytes that do
//! not decode).

use aigw_proto::pb::trace::trace_service_client::TraceServiceClient;
use aigw_proto::pb::trace::{TraceBatch, TraceRecord};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::grpc_tests::{NODE_TOKEN, WAIT, as_node, start};

#[tokio::test]
async fn traces_are_acked_after_storing_and_deduplicated() {
    let server = start().await;
    let ch = server.channel().await;
    let (tx, out) = mpsc::channel(4);
    let mut acks = TraceServiceClient::new(ch)
        .report(as_node(ReceiverStream::new(out), NODE_TOKEN, "n1"))
        .await
        .unwrap()
        .into_inner();
    let records = vec![
        crate::ingest::tests::record("a"),
        crate::ingest::tests::record("b"),
    ];
    for seq in [1, 2] {
        tx.send(TraceBatch {
            seq,
            records: records.clone(),
        })
        .await
        .unwrap();
        let ack = tokio::time::timeout(WAIT, acks.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ack.seq, seq);
        let expected = if seq == 1 { (2, 0) } else { (0, 2) };
        assert_eq!((ack.stored, ack.duplicates), expected);
    }
    server.stop().await;
}

/// A batch whose bytes do not decode as traces (a record with a string
/// that is not UTF-8) is refused as such, so the data plane sets it aside
/// instead of resending it forever behind a quietly closed stream.
#[tokio::test]
async fn a_batch_that_does_not_decode_is_refused_not_dropped_silently() {
    /// `TraceBatch` with its records left as bytes.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Bytes {
        #[prost(uint64, tag = "1")]
        seq: u64,
        #[prost(bytes = "vec", repeated, tag = "2")]
        records: Vec<Vec<u8>>,
    }
    let server = start().await;
    let ch = server.channel().await;
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.unwrap();
    let good = prost::Message::encode_to_vec(&crate::ingest::tests::record("good"));
    // request_id (field 1) holding 0xff 0xfe.
    let bad = vec![0x0a, 0x02, 0xff, 0xfe];
    let batch = Bytes {
        seq: 1,
        records: vec![good, bad],
    };
    let resp = grpc
        .streaming(
            as_node(tokio_stream::iter(vec![batch]), NODE_TOKEN, "n1"),
            http::uri::PathAndQuery::from_static("/aigw.trace.v1.TraceService/Report"),
            tonic_prost::ProstCodec::<Bytes, aigw_proto::pb::trace::TraceAck>::default(),
        )
        .await
        .unwrap();
    // The answer's headers say refusals are marked (a data plane trusts
    // only marked ones then).
    assert!(aigw_proto::trace_bounds::refusals_marked(resp.metadata()));
    let mut acks = resp.into_inner();
    let e = acks.message().await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("does not decode"), "{e}");
    // Marked as the control plane's own refusal, which alone makes a data
    // plane set the batch aside.
    assert!(
        aigw_proto::trace_bounds::is_refused_batch(&e, true),
        "{e:?}"
    );
    let stored = server.db().run(crate::db::traces::count).await.unwrap();
    assert_eq!(stored, 0, "nothing of the batch is stored");
    server.stop().await;
}

/// Two million empty records fit in 4 MiB and would take some 900 MiB
/// once decoded: the batch is refused on its count, before decoding, and
/// the stream's node can send again.
#[tokio::test]
async fn a_small_batch_of_empty_records_is_refused_before_it_is_decoded() {
    let server = start().await;
    let ch = server.channel().await;
    let mut client = TraceServiceClient::new(ch.clone());
    let records = vec![TraceRecord::default(); 2 << 20];
    let batch = TraceBatch { seq: 1, records };
    assert!(prost::Message::encoded_len(&batch) < 5 << 20);
    let e = client
        .report(as_node(tokio_stream::iter(vec![batch]), NODE_TOKEN, "n1"))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e}");
    assert!(
        aigw_proto::trace_bounds::is_refused_batch(&e, true),
        "{e:?}"
    );
    let mut again = TraceServiceClient::new(ch);
    let ack = again
        .report(as_node(
            tokio_stream::iter(vec![TraceBatch {
                seq: 2,
                records: vec![crate::ingest::tests::record("after")],
            }]),
            NODE_TOKEN,
            "n1",
        ))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ack.seq, ack.stored), (2, 1));
    server.stop().await;
}

#[tokio::test]
async fn what_a_node_says_of_its_traces_is_bounded() {
    let server = start().await;
    let ch = server.channel().await;
    let report = |batch: TraceBatch| {
        let mut client = TraceServiceClient::new(ch.clone());
        async move {
            let mut acks = client
                .report(as_node(tokio_stream::iter(vec![batch]), NODE_TOKEN, "n1"))
                .await?
                .into_inner();
            acks.message().await
        }
    };
    // More records than a data plane ever puts in a batch: refused whole,
    // counted before anything is decoded (what the control plane holds per
    // batch grows with the count).
    let many = (0..=aigw_proto::trace_bounds::MAX_BATCH_RECORDS)
        .map(|i| crate::ingest::tests::record(&format!("many-{i}")))
        .collect();
    let e = report(TraceBatch {
        seq: 1,
        records: many,
    })
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e}");
    assert!(e.message().contains("at most 512 records"), "{e}");
    assert!(
        aigw_proto::trace_bounds::is_refused_batch(&e, true),
        "{e:?}"
    );
    let db = server.db();
    let stored = db.run(crate::db::traces::count).await.unwrap();
    assert_eq!(stored, 0);

    // Numbers no request can have are stored within bounds: a NaN cost
    // would make a day's summed spend NaN, a start in the year 3000 would
    // escape retention.
    let mut odd = crate::ingest::tests::record("odd");
    odd.cost = f64::NAN;
    odd.started_at_ms = 32_503_680_000_000;
    odd.input_tokens = u64::MAX;
    odd.latency_us = u64::MAX;
    odd.refused_by = format!("{}/rpm", "b".repeat(1 << 20));
    let mut negative = crate::ingest::tests::record("negative");
    negative.cost = -5.0;
    let ack = report(TraceBatch {
        seq: 2,
        records: vec![odd, negative],
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(ack.stored, 2);
    let now = crate::db::now_ms();
    let row = db.run(|c| crate::db::traces::get(c, "odd")).await.unwrap();
    assert_eq!(row.cost, 0.0);
    assert!(
        row.started_at_ms <= now + 5 * 60 * 1000,
        "{}",
        row.started_at_ms
    );
    assert_eq!(row.input_tokens, 1_000_000_000_000);
    assert_eq!(row.latency_us, 86_400_000_000);
    let row = db
        .run(|c| crate::db::traces::get(c, "negative"))
        .await
        .unwrap();
    assert_eq!(row.cost, 0.0);
    server.stop().await;
}
