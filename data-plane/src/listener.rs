//! Accepts app connections (HTTP/1.1 and h2c) and hands each request to the
//! [`Gateway`] service, which answers it.
//!
//! Every connection is bounded in time and number, so slow or idle clients
//! cannot hold the gateway's sockets (slowloris): a request head must arrive
//! whole within `header_timeout` (hyper's timer, which also closes an HTTP/1
//! keep-alive connection idle that long); a connection with no byte in either
//! direction for `idle_timeout` is shut down gracefully (an answer in flight
//! is finished first), and one whose app has not taken a byte of its answer
//! for `idle_timeout` (the socket stays full: the app stopped reading) is
//! closed, answer and all, so a paused stream cannot outlive its budget
//! reservation; at most `max_connections` are open at once (past it,
//! new ones wait in the kernel's backlog); the body deadline is the
//! pipeline's (`read_body`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::service::Gateway;
use crate::state::AppState;
use crate::unparsed;

/// Set once the shutdown's drain time is over and the connections still
/// open are closed: a stream dropped then was cut by the data plane, not
/// abandoned by its app, and its trace says so. Process-wide, and never
/// reset: the process exits next (tests run one per process).
pub static FORCED_CLOSE: AtomicBool = AtomicBool::new(false);

/// Bounds on app connections (`AIGW_HEADER_TIMEOUT_SECS`,
/// `AIGW_IDLE_TIMEOUT_SECS`, `AIGW_MAX_CONNECTIONS`,
/// `AIGW_SHUTDOWN_DRAIN_SECS`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// How long open connections get to finish after a shutdown signal.
    pub drain: Duration,
}

impl Limits {
    pub fn of(cfg: &crate::config::Config) -> Self {
        Self {
            header_timeout: Duration::from_secs(cfg.header_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(cfg.idle_timeout_secs.max(1)),
            max_connections: cfg.max_connections.max(1),
            drain: Duration::from_secs(cfg.shutdown_drain_secs),
        }
    }
}

/// What every accept loop of one server shares: the bound on connections
/// counts across all of them.
#[derive(Clone)]
struct Shared {
    limits: Limits,
    builder: Arc<auto::Builder<TokioExecutor>>,
    slots: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    state: Arc<AppState>,
}

impl Shared {
    fn new(state: Arc<AppState>, stop: watch::Receiver<bool>) -> Self {
        let limits = Limits::of(&state.cfg);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        // No keep-alive PINGs from the gateway: hyper sends them on idle
        // connections too, and the PING and its answer would count as
        // activity, so an h2 connection that never sent a request (the
        // preface only) would hold a connection slot for ever. Dead peers
        // are found by the idle timeout and the write-blocked check instead.
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(None)
            .max_concurrent_streams(256);
        Self {
            limits,
            builder: Arc::new(builder),
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            stop,
            state,
        }
    }
}

/// Serves apps on `listener`, on the calling runtime, until `shutdown`;
/// then drains open connections (up to 30 s).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let accepting = accept_loop(listener, Shared::new(state, stop_rx));
    tokio::pin!(accepting);
    tokio::select! {
        _ = &mut accepting => return Ok(()),
        _ = shutdown => {}
    }
    tracing::info!("stopped accepting; draining connections");
    let _ = stop_tx.send(true);
    accepting.await;
    Ok(())
}

/// Binds `count` listeners to `addr` with `SO_REUSEPORT`, for
/// [`serve_per_core`]: the kernel spreads new connections over them. With
/// port 0, the first picks the port and the others join it.
///
/// `SO_REUSEPORT` would also let a second data plane (a stale or duplicate
/// instance of the same user) join a port already serving, silently
/// splitting its connections, metrics and traces between two processes.
/// So the port is first claimed without it, which fails with "address in
/// use" while anything listens there, and released just before the
/// listeners bind (two instances started in the same instant can still
/// both pass; a supervisor runs one). Port 0 needs no claim: the kernel
/// gives a port no one holds.
pub fn bind_per_core(
    addr: SocketAddr,
    count: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    if addr.port() != 0 {
        exclusive_claim(addr)?;
    }
    let first = reuse_port_listener(addr)?;
    let at = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..count.max(1) {
        all.push(reuse_port_listener(at)?);
    }
    Ok(all)
}

/// Binds `addr` (a fixed port) without `SO_REUSEPORT`: refused while
/// another socket listens there, shared or not.
fn exclusive_claim(addr: SocketAddr) -> std::io::Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())
}

fn reuse_port_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As tokio's `TcpListener::bind` does: a restart may bind while the
    // last run's connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Serves apps with one single-threaded runtime per listener, each on its
/// own thread (the way the fastest proxies run: a connection, the upstream
/// connection its request uses and its timers stay on one thread, so
/// serving a request needs no work stealing and no wake-ups across
/// threads). Until `shutdown`; then every thread stops accepting and drains
/// its connections (up to 30 s). Background work (the control plane's
/// stream, trace shipping) stays on the caller's runtime. A serving thread
/// that ends before `shutdown` (it panicked) stops the others too, and the
/// error says so: half a server that looks whole to its supervisor would
/// refuse or stall the connections the kernel still hands that port.
pub async fn serve_per_core(
    listeners: Vec<std::net::TcpListener>,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Shared::new(state, stop_rx);
    let (ended_tx, mut ended) = tokio::sync::mpsc::unbounded_channel::<usize>();
    for (i, listener) in listeners.into_iter().enumerate() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = shared.clone();
        let ended = Ended(i + 1, ended_tx.clone());
        std::thread::Builder::new()
            .name(format!("serve-{}", i + 1))
            .spawn(move || {
                let _ended = ended;
                crate::cores::enter(i + 1);
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(l) => accept_loop(l, shared).await,
                        Err(e) => tracing::error!(error = %e, "cannot serve on this thread"),
                    }
                });
                // The connections still open drop with the runtime, and
                // their streams file their traces: before `_ended` says
                // this thread is done and the spool is sealed. (Bounded: a
                // blocking task such as a hung DNS lookup is not waited for.)
                runtime.shutdown_timeout(Duration::from_secs(2));
            })?;
    }
    drop((shared, ended_tx));
    let early = tokio::select! {
        _ = shutdown => None,
        thread = ended.recv() => thread,
    };
    tracing::info!("stopped accepting; draining connections");
    let _ = stop_tx.send(true);
    // Every thread's `Ended` is dropped once it has drained.
    while ended.recv().await.is_some() {}
    match early {
        None => Ok(()),
        Some(thread) => Err(std::io::Error::other(format!(
            "serving thread {thread} stopped before shutdown"
        ))),
    }
}

/// Reports that serving thread `.0` ended, when dropped: at the end of the
/// thread, or while it unwinds from a panic.
struct Ended(usize, tokio::sync::mpsc::UnboundedSender<usize>);

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.1.send(self.0);
    }
}

/// Accepts connections until the server stops, each served by a task on
/// the calling runtime; then waits (up to the drain time) for those
/// connections to end.
async fn accept_loop(listener: TcpListener, shared: Shared) {
    let Shared {
        limits,
        builder,
        slots,
        stop,
        state,
    } = shared;
    let max = limits.max_connections;
    // This loop's own connections, to know when they have drained; the
    // global `slots` bounds them all.
    let mine = Arc::new(Semaphore::new(max));
    let mut stopping = stop.clone();
    loop {
        // A free slot first: past the cap, connections wait in the backlog.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopping.wait_for(|s| *s) => break,
        };
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = stopping.wait_for(|s| *s) => break,
        };
        // Cannot fail: `mine` has as many permits as the global bound.
        let Ok(own) = mine.clone().try_acquire_owned() else {
            continue;
        };
        let open = move |slots: &Semaphore| {
            metrics::gauge!("aigw_open_connections")
                .set(max.saturating_sub(slots.available_permits()) as f64);
        };
        open(&slots);
        let _ = stream.set_nodelay(true);
        let st = state.clone();
        let builder = builder.clone();
        let stop = stop.clone();
        let slots_left = slots.clone();
        tokio::spawn(async move {
            connection(&builder, stream, st, limits, stop).await;
            drop((permit, own));
            open(&slots_left);
        });
    }
    drop(listener);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain, mine.acquire_many(all))
        .await
        .is_err()
    {
        FORCED_CLOSE.store(true, Ordering::Relaxed);
        let secs = limits.drain.as_secs();
        tracing::warn!(
            open = max.saturating_sub(mine.available_permits()),
            "connections still open after {secs} s (AIGW_SHUTDOWN_DRAIN_SECS); closing them"
        );
    }
}

/// Serves one connection until it ends; shuts it down gracefully when it
/// has been silent for `idle` or the server stops.
async fn connection(
    builder: &auto::Builder<TokioExecutor>,
    stream: TcpStream,
    state: Arc<AppState>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let idle = limits.idle_timeout;
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
        state: state.clone(),
        rewritten: None,
        linger: None,
        format: crate::translate::Format::OpenAiChat,
    });
    let svc = hyper_util::service::TowerToHyperService::new(Gateway::new(state));
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let mut check = tokio::time::interval(check_period(limits));
    check.tick().await;
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = check.tick() => {
                if activity.write_blocked_for() >= idle {
                    // The app stopped reading its answer: dropping the
                    // connection drops the answer, whose logging phase
                    // files it as abandoned.
                    tracing::debug!("the app stopped reading its answer; closing");
                    return;
                }
                if !closing && activity.idle_for() >= idle {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            r = stop.changed(), if !closing => {
                if r.is_err() || *stop.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// How often a connection looks at its idle time: a quarter of the idle
/// timeout, and always sooner than hyper's header-read timer. That timer is
/// armed again after every answer, and tokio wakes its own driver (an
/// `eventfd` write and one more `epoll_wait`) whenever a new timer is due
/// before the earliest one it parked on; with this tick always earlier, it
/// never is.
fn check_period(limits: Limits) -> Duration {
    (limits.idle_timeout / 4)
        .min(limits.header_timeout / 2)
        .max(Duration::from_millis(250))
}

/// When a connection last moved a byte, in ms since it opened, and since
/// when (plus one; 0 = not) a write has waited for room in the socket.
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
    blocked_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            blocked_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.opened.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }

    /// A write found the socket full: notes since when (once, until a
    /// write goes through).
    fn write_blocked(&self) {
        if self.blocked_ms.load(Ordering::Relaxed) == 0 {
            let now = self.opened.elapsed().as_millis() as u64;
            self.blocked_ms.store(now + 1, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.touch();
        self.blocked_ms.store(0, Ordering::Relaxed);
    }

    /// How long bytes for the app have waited for room in its socket.
    fn write_blocked_for(&self) -> Duration {
        match self.blocked_ms.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => {
                let now = self.opened.elapsed().as_millis() as u64 + 1;
                Duration::from_millis(now.saturating_sub(since))
            }
        }
    }
}

/// The socket, noting every read or write that moved bytes, and writing
/// a whole answer in place of hyper's bare head for a request it could not
/// parse ([`unparsed`]).
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    state: Arc<AppState>,
    rewritten: Option<Rewritten>,
    linger: Option<Linger>,
    /// The format the last request line read claims (for [`unparsed`]).
    format: crate::translate::Format,
}

/// After answering a request it could not parse, hyper closes the
/// connection with the app's request partly unread (headers too large: the
/// app is still sending them). Closing a socket with unread bytes resets
/// it, and the app would lose the answer to the reset, so the closing
/// reads and drops what the app still sends, up to a bound (nginx's
/// lingering close).
struct Linger {
    until: Pin<Box<tokio::time::Sleep>>,
    left: usize,
    shut: bool,
}

const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 << 20;

/// An answer written in place of hyper's bare error head: its bytes, how
/// many are sent, and how long hyper's head was (what hyper is told was
/// written once all of them are).
struct Rewritten {
    bytes: Vec<u8>,
    sent: usize,
    replaces: usize,
}

impl Watched {
    /// Writes `buf`, or the answer that replaces it.
    fn write_one(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.rewritten.is_none()
            && let Some(bytes) = unparsed::rewrite(buf, self.format, || self.state.ids.next())
        {
            self.rewritten = Some(Rewritten {
                bytes,
                sent: 0,
                replaces: buf.len(),
            });
        }
        let Some(r) = self.rewritten.as_mut() else {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        };
        // hyper offers the same head again until told it is written.
        while r.sent < r.bytes.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &r.bytes[r.sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => r.sent += n,
                other => return other,
            }
        }
        let replaces = r.replaces;
        self.rewritten = None;
        self.linger = Some(Linger {
            until: Box::pin(tokio::time::sleep(LINGER)),
            left: LINGER_BYTES,
            shut: false,
        });
        Poll::Ready(Ok(replaces))
    }

    /// Drops what the app still sends until it closes, or the bound.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let Some(l) = self.linger.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if !l.shut {
            std::task::ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            l.shut = true;
        }
        let mut scratch = [0u8; 8192];
        while l.left > 0 && l.until.as_mut().poll(cx).is_pending() {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    l.left = l.left.saturating_sub(buf.filled().len());
                }
                Poll::Pending => return Poll::Pending,
                Poll::Ready(_) => break,
            }
        }
        self.linger = None;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
            if let Some(f) = unparsed::format_of(&buf.filled()[before..]) {
                self.format = f;
            }
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = self.write_one(cx, buf);
        match r {
            Poll::Ready(Ok(n)) if n > 0 => self.activity.wrote(),
            Poll::Pending => self.activity.write_blocked(),
            _ => {}
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        // A head is the first of the slices hyper queues for an answer; a
        // bare error head is alone (nothing follows it on the connection).
        let r = match bufs.iter().find(|b| !b.is_empty()) {
            Some(first) if self.rewritten.is_some() || unparsed::might_be(first) => {
                let first: &[u8] = first;
                self.write_one(cx, first)
            }
            _ => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        };
        match r {
            Poll::Ready(Ok(n)) if n > 0 => self.activity.wrote(),
            Poll::Pending => self.activity.write_blocked(),
            _ => {}
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.linger.is_some() {
            return self.poll_linger(cx);
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The idle check stays due before any header-read timer hyper arms
    /// (so re-arming that timer never wakes the driver), and is not a busy
    /// loop when both timeouts are tiny.
    #[test]
    fn a_port_another_data_plane_serves_is_refused() {
        let ours = bind_per_core("127.0.0.1:0".parse().expect("address"), 2).expect("bind");
        let at = ours[0].local_addr().expect("address");
        let again = bind_per_core(at, 2).expect_err("a second instance joined the port");
        assert_eq!(again.kind(), std::io::ErrorKind::AddrInUse);
        drop(ours);
        // Free again: a restart binds at once.
        bind_per_core(at, 2).expect("rebinding a released port");
    }

    #[test]
    fn the_idle_check_is_due_before_the_header_timer() {
        let limits = |header, idle| Limits {
            header_timeout: Duration::from_secs(header),
            idle_timeout: Duration::from_secs(idle),
            max_connections: 1,
            drain: Duration::from_secs(30),
        };
        for (header, idle) in [(20, 120), (20, 40), (5, 600), (60, 8), (1, 1)] {
            let p = check_period(limits(header, idle));
            assert!(p < Duration::from_secs(header), "{header} {idle}: {p:?}");
            assert!(p <= Duration::from_secs(idle) / 4 || p == Duration::from_millis(250));
            assert!(p >= Duration::from_millis(250));
        }
    }
}
