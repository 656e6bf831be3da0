//! A control plane in process, on port 0, speaking the real gRPC services:
//! it pushes the snapshots a test gives it, records the node's ACKs and
//! NACKs, and stores the trace batches it receives (acking each, unless the
//! test has it refuse streams or drop acks).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aigw_proto::pb::config::config_service_server::{ConfigService, ConfigServiceServer};
use aigw_proto::pb::config::{NodeMessage, Snapshot, SnapshotMessage, node_message};
use aigw_proto::pb::trace::trace_service_server::{TraceService, TraceServiceServer};
use aigw_proto::pb::trace::{TraceAck, TraceBatch, TraceRecord};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

#[derive(Default)]
pub struct Seen {
    /// Every batch received, in order (a resent batch appears again).
    pub batches: Mutex<Vec<TraceBatch>>,
    /// What the node answered to each snapshot.
    pub replies: Mutex<Vec<node_message::Kind>>,
    /// Refuse every trace stream while set (the control plane is "away").
    pub away: AtomicBool,
    /// Trace streams refused while away.
    pub refused: AtomicU32,
    /// Receive this many batches without acking them, then break the stream
    /// (an ack lost on the way).
    pub drop_acks: AtomicU32,
    pub changed: Notify,
    snapshots: Mutex<Option<mpsc::Receiver<SnapshotMessage>>>,
}

pub struct ControlPlane {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    push: mpsc::Sender<SnapshotMessage>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ControlPlane {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (push, snapshots) = mpsc::channel(8);
        let seen = Arc::new(Seen {
            snapshots: Mutex::new(Some(snapshots)),
            ..Default::default()
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let svc = Svc(seen.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ConfigServiceServer::new(svc.clone()))
                .add_service(TraceServiceServer::new(svc))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                }),
        );
        Self {
            addr,
            seen,
            push,
            stop: Some(stop),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Offers a snapshot to the subscribed node.
    pub async fn push(&self, snapshot: Snapshot, nonce: &str) {
        self.push
            .send(SnapshotMessage {
                nonce: nonce.into(),
                snapshot: prost::Message::encode_to_vec(&snapshot).into(),
                delta: Default::default(),
            })
            .await
            .expect("push");
    }

    /// Waits (at most 5 s) until `done` holds for what was seen.
    pub async fn wait<T>(&self, mut done: impl FnMut(&Seen) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let notified = self.seen.changed.notified();
            if let Some(v) = done(&self.seen) {
                return v;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("the control plane did not see what the test waits for within 5 s");
            }
        }
    }

    /// The trace records received so far (each once per delivery).
    pub fn records(&self) -> Vec<TraceRecord> {
        lock(&self.seen.batches)
            .iter()
            .flat_map(|b| b.records.clone())
            .collect()
    }

    /// Waits until a trace of `request_id` arrived, and returns it.
    pub async fn trace(&self, request_id: &str) -> TraceRecord {
        self.wait(|s| {
            lock(&s.batches)
                .iter()
                .flat_map(|b| &b.records)
                .find(|r| r.request_id == request_id)
                .cloned()
        })
        .await
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Clone)]
struct Svc(Arc<Seen>);

#[tonic::async_trait]
impl ConfigService for Svc {
    type SubscribeStream = ReceiverStream<Result<SnapshotMessage, Status>>;

    async fn subscribe(
        &self,
        request: Request<Streaming<NodeMessage>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let Some(mut snapshots) = lock(&self.0.snapshots).take() else {
            return Err(Status::unavailable("one subscriber at a time"));
        };
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(8);
        let seen = self.0.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    s = snapshots.recv() => match s {
                        Some(s) => if tx.send(Ok(s)).await.is_err() { break },
                        None => break,
                    },
                    m = inbound.message() => match m {
                        Ok(Some(NodeMessage { kind: Some(kind) })) => {
                            lock(&seen.replies).push(kind);
                            seen.changed.notify_waiters();
                        }
                        Ok(Some(_)) => {}
                        _ => break,
                    },
                }
            }
            *lock(&seen.snapshots) = Some(snapshots);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[tonic::async_trait]
impl TraceService for Svc {
    type ReportStream = ReceiverStream<Result<TraceAck, Status>>;

    async fn report(
        &self,
        request: Request<Streaming<TraceBatch>>,
    ) -> Result<Response<Self::ReportStream>, Status> {
        if self.0.away.load(Ordering::SeqCst) {
            self.0.refused.fetch_add(1, Ordering::SeqCst);
            self.0.changed.notify_waiters();
            return Err(Status::unavailable("control plane away"));
        }
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let seen = self.0.clone();
        tokio::spawn(async move {
            while let Ok(Some(batch)) = inbound.message().await {
                let (seq, n) = (batch.seq, batch.records.len() as u32);
                lock(&seen.batches).push(batch);
                seen.changed.notify_waiters();
                let dropped = seen
                    .drop_acks
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if dropped {
                    let _ = tx.send(Err(Status::unavailable("ack lost"))).await;
                    return;
                }
                let ack = TraceAck {
                    seq,
                    stored: n,
                    duplicates: 0,
                };
                if tx.send(Ok(ack)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
