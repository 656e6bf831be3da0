//! Ships sealed segments to the control plane and deletes each one when its
//! ack arrives. On any stream error it reconnects and resends everything not
//! yet acked, oldest first.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aigw_proto::pb::trace::TraceBatch;
use aigw_proto::pb::trace::trace_service_client::TraceServiceClient;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_stream::wrappers::ReceiverStream;

use super::spool::{read_segment, seg_path};
use crate::control::{AuthedChannel, Backoff};

/// Batches sent but not yet acked, per connection.
const MAX_IN_FLIGHT: usize = 16;

pub async fn run(
    channel: AuthedChannel,
    dir: PathBuf,
    mut backlog: BTreeSet<u64>,
    mut sealed_rx: UnboundedReceiver<u64>,
    spooled: Arc<AtomicU64>,
) {
    let mut backoff = Backoff::default();
    loop {
        while let Ok(seq) = sealed_rx.try_recv() {
            backlog.insert(seq);
        }
        if backlog.is_empty() {
            match sealed_rx.recv().await {
                Some(seq) => {
                    backlog.insert(seq);
                }
                None => return,
            }
        }
        match session(&channel, &dir, &mut backlog, &mut sealed_rx, &spooled).await {
            Ok(()) => backoff.reset(),
            Err(e) => {
                metrics::counter!("aigw_trace_ship_errors_total").increment(1);
                tracing::warn!(error = %e, pending = backlog.len(), "trace stream to the control plane failed; will resend");
                let delay = backoff.next_delay();
                // Keep collecting sealed segments while waiting.
                let sleep = tokio::time::sleep(delay);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        seq = sealed_rx.recv() => match seq {
                            Some(seq) => { backlog.insert(seq); }
                            None => return,
                        },
                    }
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ShipError {
    #[error("{0}")]
    Grpc(#[from] tonic::Status),
    #[error("the control plane closed the trace stream")]
    Closed,
}

/// One connection's life: returns Ok when everything was acked and the
/// stream went idle, Err on any failure.
async fn session(
    channel: &AuthedChannel,
    dir: &std::path::Path,
    backlog: &mut BTreeSet<u64>,
    sealed_rx: &mut UnboundedReceiver<u64>,
    spooled: &AtomicU64,
) -> Result<(), ShipError> {
    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<TraceBatch>(MAX_IN_FLIGHT);
    let mut client = TraceServiceClient::new(channel.clone());
    let mut acks = client
        .report(ReceiverStream::new(out_rx))
        .await?
        .into_inner();
    let mut in_flight: BTreeSet<u64> = BTreeSet::new();
    let mut writer_gone = false;
    loop {
        // Top up the window, oldest first.
        let next: Vec<u64> = backlog
            .iter()
            .filter(|s| !in_flight.contains(s))
            .take(MAX_IN_FLIGHT.saturating_sub(in_flight.len()))
            .copied()
            .collect();
        for seq in next {
            let path = seg_path(dir, seq);
            let records = match read_segment(&path) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    backlog.remove(&seq);
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, path = %path.display(), "cannot read a trace segment; skipping it");
                    backlog.remove(&seq);
                    continue;
                }
            };
            if out_tx.send(TraceBatch { seq, records }).await.is_err() {
                return Err(ShipError::Closed);
            }
            in_flight.insert(seq);
        }
        tokio::select! {
            seq = sealed_rx.recv(), if !writer_gone => match seq {
                Some(seq) => { backlog.insert(seq); }
                None => writer_gone = true,
            },
            ack = acks.message() => match ack? {
                Some(ack) => {
                    in_flight.remove(&ack.seq);
                    backlog.remove(&ack.seq);
                    let path = seg_path(dir, ack.seq);
                    if let Ok(meta) = std::fs::metadata(&path)
                        && std::fs::remove_file(&path).is_ok() {
                            let left = spooled.fetch_sub(meta.len(), Ordering::Relaxed).saturating_sub(meta.len());
                            metrics::gauge!("aigw_trace_spool_bytes").set(left as f64);
                        }
                    metrics::counter!("aigw_traces_delivered_total").increment(u64::from(ack.stored + ack.duplicates));
                }
                None => return Err(ShipError::Closed),
            },
        }
        if writer_gone && in_flight.is_empty() && backlog.is_empty() {
            return Ok(());
        }
    }
}
