//! `node-sim`: N simulated data planes against one control plane, to find
//! where it saturates (docs/scaling.md). Each simulated node does what a
//! data plane does on the wire and nothing else: it subscribes to snapshots
//! (Hello, Ack), and reports traces over one `TraceService.Report` stream in
//! batches, at most 16 unacknowledged, as the spool ships them.
//!
//! Each step offers a total rate (traces/s, spread over the nodes, one
//! batch per node every 100 ms like the spool's sealing) for a while and
//! reports what was acknowledged (= committed) per second and the ack
//! latency. A control plane keeping up acks what is offered; past its
//! ceiling the acked rate flattens, the windows fill and latency climbs.
//!
//! Output: one JSON object per step on stdout, then
//! `{"summary": ...}` with every request id count, so a test can check
//! the database holds exactly that many.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aigw_proto::pb::config::config_service_client::ConfigServiceClient;
use aigw_proto::pb::config::{Ack, Hello, NodeMessage, Snapshot, SnapshotDelta, node_message};
use aigw_proto::pb::trace::trace_service_client::TraceServiceClient;
use aigw_proto::pb::trace::{Attempt, TraceBatch, TraceRecord};
use anyhow::Context;
use clap::Parser;
use prost::Message as _;
use tokio::sync::{Mutex, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

#[derive(Debug, Parser)]
#[command(
    name = "node-sim",
    about = "Simulated data planes reporting to one control plane"
)]
struct Args {
    /// Control plane gRPC URL (plaintext; the simulation measures the
    /// control plane, not TLS).
    #[arg(
        long,
        env = "AIGW_CONTROL_PLANE",
        default_value = "http://127.0.0.1:50051"
    )]
    control_plane: String,
    /// Join token the control plane accepts.
    #[arg(long, env = "AIGW_NODE_TOKEN", hide_env_values = true)]
    node_token: String,
    /// Simulated data planes.
    #[arg(long, default_value_t = 20)]
    nodes: usize,
    /// Regions the nodes are spread over (round robin).
    #[arg(long, default_value = "sim-a,sim-b")]
    regions: String,
    /// Offered total rates (traces/s), one step each.
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    rates: Vec<u64>,
    /// Seconds per step.
    #[arg(long, default_value_t = 5.0)]
    step_secs: f64,
    /// Seconds to wait for the last acks after the last step.
    #[arg(long, default_value_t = 30.0)]
    drain_secs: f64,
}

/// Batches a node may have unacknowledged (the data plane's MAX_IN_FLIGHT).
const WINDOW: usize = 16;
const TICK: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    acked: AtomicU64,
    stored: AtomicU64,
    duplicates: AtomicU64,
    /// Batches not sent because the window was full (back-pressure).
    deferred: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    snapshots: AtomicU64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let channel = Channel::from_shared(args.control_plane.clone())
        .context("bad control plane URL")?
        .connect()
        .await
        .context("cannot reach the control plane")?;
    let token: MetadataValue<_> = format!("Bearer {}", args.node_token).parse()?;
    let regions: Vec<String> = args.regions.split(',').map(str::to_string).collect();
    let stats = Arc::new(Stats::default());
    let rate_per_node: Vec<Arc<AtomicU64>> = (0..args.nodes)
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let run_id = format!(
        "{:x}",
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos()
    );
    let mut tasks = Vec::new();
    for (i, rate) in rate_per_node.iter().enumerate() {
        let node = Node {
            id: format!("sim-{i:03}"),
            region: regions[i % regions.len()].clone(),
            channel: channel.clone(),
            token: token.clone(),
            stats: stats.clone(),
            rate: rate.clone(),
            run_id: run_id.clone(),
        };
        tasks.push(tokio::spawn(node.clone().snapshots()));
        tasks.push(tokio::spawn(node.traces()));
    }
    // Every node holds the snapshot before the first step.
    let t0 = Instant::now();
    while stats.snapshots.load(Ordering::Relaxed) < args.nodes as u64 {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(30),
            "nodes did not get a snapshot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fanout_ms = t0.elapsed().as_millis();
    for &rate in &args.rates {
        let per_node = rate / args.nodes as u64;
        for r in &rate_per_node {
            r.store(per_node, Ordering::Relaxed);
        }
        let (sent0, acked0, def0) = (
            stats.sent.load(Ordering::Relaxed),
            stats.acked.load(Ordering::Relaxed),
            stats.deferred.load(Ordering::Relaxed),
        );
        stats.latencies_us.lock().await.clear();
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(args.step_secs)).await;
        let secs = started.elapsed().as_secs_f64();
        let mut lat = std::mem::take(&mut *stats.latencies_us.lock().await);
        lat.sort_unstable();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        let line = serde_json::json!({
            "nodes": args.nodes,
            "offered_per_s": per_node * args.nodes as u64,
            "sent_per_s": ((stats.sent.load(Ordering::Relaxed) - sent0) as f64 / secs).round(),
            "acked_per_s": ((stats.acked.load(Ordering::Relaxed) - acked0) as f64 / secs).round(),
            "deferred_batches": stats.deferred.load(Ordering::Relaxed) - def0,
            "ack_p50_ms": pct(0.5) as f64 / 1000.0,
            "ack_p99_ms": pct(0.99) as f64 / 1000.0,
        });
        println!("{line}");
    }
    for r in &rate_per_node {
        r.store(0, Ordering::Relaxed);
    }
    let drain = Instant::now();
    while stats.acked.load(Ordering::Relaxed) < stats.sent.load(Ordering::Relaxed)
        && drain.elapsed().as_secs_f64() < args.drain_secs
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{}",
        serde_json::json!({"summary": {
            "nodes": args.nodes,
            "snapshot_fanout_ms": fanout_ms,
            "sent": stats.sent.load(Ordering::Relaxed),
            "acked": stats.acked.load(Ordering::Relaxed),
            "stored": stats.stored.load(Ordering::Relaxed),
            "duplicates": stats.duplicates.load(Ordering::Relaxed),
            "snapshots": stats.snapshots.load(Ordering::Relaxed),
            "run_id": run_id,
        }})
    );
    for t in tasks {
        t.abort();
    }
    Ok(())
}

#[derive(Clone)]
struct Node {
    id: String,
    region: String,
    channel: Channel,
    token: MetadataValue<tonic::metadata::Ascii>,
    stats: Arc<Stats>,
    rate: Arc<AtomicU64>,
    run_id: String,
}

impl Node {
    fn request<T>(&self, msg: T) -> anyhow::Result<tonic::Request<T>> {
        let mut req = tonic::Request::new(msg);
        let m = req.metadata_mut();
        m.insert("authorization", self.token.clone());
        m.insert(aigw_proto::NODE_ID_HEADER, self.id.parse()?);
        m.insert(aigw_proto::REGION_HEADER, self.region.parse()?);
        Ok(req)
    }

    /// Subscribes and acks every snapshot, as a data plane does.
    async fn snapshots(self) -> anyhow::Result<()> {
        let (tx, rx) = mpsc::channel(4);
        tx.send(NodeMessage {
            kind: Some(node_message::Kind::Hello(Hello {
                node_id: self.id.clone(),
                region: self.region.clone(),
                applied_version: String::new(),
                build: "node-sim".into(),
                accepts_deltas: true,
            })),
        })
        .await?;
        let mut client = ConfigServiceClient::new(self.channel.clone())
            .max_decoding_message_size(aigw_proto::model::MAX_SNAPSHOT_MESSAGE);
        let mut inbound = client
            .subscribe(self.request(ReceiverStream::new(rx))?)
            .await?
            .into_inner();
        while let Some(msg) = inbound.message().await? {
            // The version the message brings, as a data plane would decode it.
            let version = if msg.delta.is_empty() {
                Snapshot::decode(msg.snapshot)?.version
            } else {
                SnapshotDelta::decode(msg.delta)?.version
            };
            self.stats.snapshots.fetch_add(1, Ordering::Relaxed);
            tx.send(NodeMessage {
                kind: Some(node_message::Kind::Ack(Ack {
                    version,
                    nonce: msg.nonce,
                })),
            })
            .await?;
        }
        Ok(())
    }

    /// One trace stream: a batch every tick at the offered rate, at most
    /// WINDOW unacknowledged; acks timed from send.
    async fn traces(self) -> anyhow::Result<()> {
        let (tx, rx) = mpsc::channel::<TraceBatch>(WINDOW);
        let mut client = TraceServiceClient::new(self.channel.clone())
            .max_encoding_message_size(16 * 1024 * 1024);
        let mut acks = client
            .report(self.request(ReceiverStream::new(rx))?)
            .await?
            .into_inner();
        let in_flight: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let reader = {
            let in_flight = in_flight.clone();
            let stats = self.stats.clone();
            tokio::spawn(async move {
                while let Ok(Some(ack)) = acks.message().await {
                    if let Some(sent) = in_flight.lock().await.remove(&ack.seq) {
                        stats
                            .latencies_us
                            .lock()
                            .await
                            .push(sent.elapsed().as_micros() as u64);
                    }
                    let n = u64::from(ack.stored + ack.duplicates);
                    stats.acked.fetch_add(n, Ordering::Relaxed);
                    stats
                        .stored
                        .fetch_add(u64::from(ack.stored), Ordering::Relaxed);
                    stats
                        .duplicates
                        .fetch_add(u64::from(ack.duplicates), Ordering::Relaxed);
                }
            })
        };
        let mut tick = tokio::time::interval(TICK);
        let mut seq = 0u64;
        let mut next_id = 0u64;
        // Records owed when the window was full: sent later, like a spool backlog.
        let mut owed = 0u64;
        loop {
            tick.tick().await;
            owed += self.rate.load(Ordering::Relaxed) / 10;
            while owed > 0 {
                if in_flight.lock().await.len() >= WINDOW {
                    self.stats.deferred.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                let n = owed.min(512);
                owed -= n;
                seq += 1;
                let records = (0..n)
                    .map(|_| {
                        next_id += 1;
                        record(&format!("sim_{}_{}_{next_id}", self.run_id, self.id))
                    })
                    .collect();
                in_flight.lock().await.insert(seq, Instant::now());
                self.stats.sent.fetch_add(n, Ordering::Relaxed);
                if tx.send(TraceBatch { seq, records }).await.is_err() {
                    reader.abort();
                    anyhow::bail!("trace stream closed");
                }
            }
        }
    }
}

/// A trace as a data plane files it for a small chat call.
fn record(request_id: &str) -> TraceRecord {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    TraceRecord {
        request_id: request_id.to_string(),
        started_at_ms: now,
        client_key_id: "sim-key".into(),
        client_key_name: "sim".into(),
        model: "gpt-4o-mini".into(),
        provider: "sim-provider".into(),
        provider_key: "pool-a".into(),
        status: 200,
        latency_us: 1500,
        ttfb_us: 900,
        input_tokens: 12,
        output_tokens: 40,
        cost: 0.000_43,
        stream: true,
        endpoint: "chat.completions".into(),
        api_format: "openai".into(),
        attempts: vec![Attempt {
            provider: "sim-provider".into(),
            provider_key: "pool-a".into(),
            status: 200,
            latency_us: 1400,
            error: String::new(),
            cooldown_ms: 0,
        }],
        ..Default::default()
    }
}
