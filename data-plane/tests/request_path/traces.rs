//! Trace shipping: every answered request's record reaches the control
//! plane once it is there, from a spool that outlives its absence, resent
//! after a lost ack (the control plane stores by request id), and deleted
//! once acked.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::control_plane::lock;
use crate::harness::*;

/// Spool segments on disk holding records: sealed ones, and open ones
/// with anything written (an open segment is made ahead of need, its room
/// reserved as zeros).
fn spooled(gw: &Gw) -> usize {
    std::fs::read_dir(gw.dir.path().join("traces"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.ends_with(".seg")
                        || (name.ends_with(".open")
                            && std::fs::read(e.path())
                                .is_ok_and(|data| data.iter().any(|&b| b != 0)))
                })
                .count()
        })
        .unwrap_or(0)
}

async fn spool_empties(gw: &Gw) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while spooled(gw) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the spool never emptied"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn deliveries(gw: &Gw, request_id: &str) -> usize {
    gw.cp
        .records()
        .iter()
        .filter(|r| r.request_id == request_id)
        .count()
}

#[tokio::test]
async fn a_trace_is_shipped_once_and_its_segment_deleted_on_the_ack() {
    let gw = Gw::start(&[]).await;
    let a = gw.post("/v1/chat/completions", chat("one")).await;
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(
        (t.node_id.as_str(), t.region.as_str()),
        ("node-a", "test-region")
    );
    spool_empties(&gw).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(deliveries(&gw, &a.request_id()), 1);
}

#[tokio::test]
async fn traces_wait_on_disk_while_the_control_plane_is_away_then_go_once() {
    let gw = Gw::start(&[]).await;
    gw.cp.seen.away.store(true, Ordering::SeqCst);
    let mut ids = Vec::new();
    for i in 0..3 {
        let a = gw
            .post("/v1/chat/completions", chat(&format!("r{i}")))
            .await;
        assert_eq!(a.status, 200);
        ids.push(a.request_id());
    }
    // Refused at least once; the records wait in sealed segments.
    gw.cp
        .wait(|s| (s.refused.load(Ordering::SeqCst) > 0).then_some(()))
        .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !std::fs::read_dir(gw.dir.path().join("traces"))
        .map(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        })
        .unwrap_or(false)
    {
        assert!(tokio::time::Instant::now() < deadline, "no sealed segment");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gw.cp.records().is_empty());

    gw.cp.seen.away.store(false, Ordering::SeqCst);
    for id in &ids {
        gw.cp.trace(id).await;
    }
    spool_empties(&gw).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    for id in &ids {
        assert_eq!(deliveries(&gw, id), 1, "{id}");
    }
}

#[tokio::test]
async fn a_batch_whose_ack_was_lost_is_resent_then_deleted() {
    let gw = Gw::start(&[]).await;
    gw.cp.seen.drop_acks.store(1, Ordering::SeqCst);
    let a = gw.post("/v1/chat/completions", chat("lost ack")).await;
    let id = a.request_id();
    gw.cp
        .wait(|s| {
            let n = lock(&s.batches)
                .iter()
                .flat_map(|b| &b.records)
                .filter(|r| r.request_id == id)
                .count();
            (n >= 2).then_some(())
        })
        .await;
    let seqs: Vec<u64> = lock(&gw.cp.seen.batches).iter().map(|b| b.seq).collect();
    assert_eq!(seqs.len(), 2);
    assert_eq!(seqs[0], seqs[1], "the same segment, resent");
    spool_empties(&gw).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        deliveries(&gw, &id),
        2,
        "resent once, not again after the ack"
    );
}

#[tokio::test]
async fn traces_spooled_by_a_stopped_node_go_out_from_the_next_one() {
    let gw = Gw::start(&[]).await;
    gw.cp.seen.away.store(true, Ordering::SeqCst);
    let a = gw
        .post("/v1/chat/completions", chat("before restart"))
        .await;
    let id = a.request_id();
    let Gw {
        mock,
        cp,
        node,
        dir,
        ..
    } = gw;
    node.stop().await;
    cp.seen.away.store(false, Ordering::SeqCst);
    let _node = restart(dir.path(), &cp.url());
    let t = cp.trace(&id).await;
    assert_eq!(t.status, 200);
    drop(mock);
}
