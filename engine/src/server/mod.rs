//! Serving: listeners, the per-shard accept loop, connections and graceful shutdown.

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::conn::{ConnClock, TimedIo};

use crate::app::{Phase, Shard};
use crate::http::Resp;

/// Binds `count` listeners on one address with `SO_REUSEPORT`, so the kernel spreads incoming
/// connections across shards. With port 0, the first bind picks the port and the rest join it.
pub fn bind_listeners(
    addr: SocketAddr,
    count: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut out = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nodelay(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        addr = listener.local_addr()?;
        out.push(listener);
    }
    Ok(out)
}

/// Counts a shard's open connections, to wait for them to drain.
#[derive(Default)]
struct Tracker {
    open: Cell<usize>,
    zero: Notify,
}

struct Guard(Rc<Tracker>);

impl Guard {
    fn new(t: &Rc<Tracker>) -> Guard {
        t.open.set(t.open.get() + 1);
        Guard(t.clone())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let n = self.0.open.get() - 1;
        self.0.open.set(n);
        if n == 0 {
            self.0.zero.notify_waiters();
        }
    }
}

/// Serves an accepted connection on its own local task, counted by `tracker` until it ends.
fn spawn_connection(
    shard: &Rc<Shard>,
    tracker: &Rc<Tracker>,
    close: &watch::Receiver<bool>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    shard.metrics.connection_accepted();
    let _ = stream.set_nodelay(true);
    let guard = Guard::new(tracker);
    let (shard, close) = (shard.clone(), close.clone());
    tokio::task::spawn_local(async move {
        serve_connection(shard, stream, peer, close).await;
        drop(guard);
    });
}

/// Runs one shard until shutdown: accepts, serves, then drains. Must run inside a `LocalSet`.
pub async fn run_shard(shard: Rc<Shard>, listener: std::net::TcpListener) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(shard = shard.index, error = %e, "cannot register listener");
            return;
        }
    };
    let config = &shard.app.config;
    let mut phase = shard.app.lifecycle.subscribe();
    // Connections watch `close` to start their graceful shutdown.
    let (close_tx, close_rx) = watch::channel(false);
    let tracker = Rc::new(Tracker::default());

    loop {
        tokio::select! {
            biased;
            _ = wait_draining(&mut phase) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => spawn_connection(&shard, &tracker, &close_rx, stream, peer),
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(shard = shard.index, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }

    // Draining: /health already answers 503. Keep serving through the delay so the load
    // balancer can notice, then stop accepting and let in-flight requests finish.
    let delay = config.shutdown_delay;
    if !delay.is_zero() {
        let accept_during_delay = async {
            loop {
                if let Ok((stream, peer)) = listener.accept().await {
                    spawn_connection(&shard, &tracker, &close_rx, stream, peer);
                }
            }
        };
        let _ = tokio::time::timeout(delay, accept_during_delay).await;
    }
    // From now on the listener drops every new SYN (a socket filter that keeps nothing): a proxy
    // connecting now sees its connect time out or, once the listener is closed, refused, and
    // sends the request to another instance. Without it a handshake the kernel completed just
    // before the close would be reset with the proxy's request already sent, which the proxy
    // cannot retry for a POST. (Best effort: without the filter, only that instant is at risk.)
    let _ = socket2::SockRef::from(&listener).attach_filter(&[libc::sock_filter {
        code: 0x06, // BPF_RET | BPF_K: keep 0 bytes, i.e. drop
        jt: 0,
        jf: 0,
        k: 0,
    }]);
    // Connections the kernel completed before the filter but nobody accepted yet would be reset
    // when the listener closes, with their first request possibly sent already: take them in.
    // (With the listener's own `accept`, not tokio's: tokio answers from its cached readiness,
    // which may not know of a connection the kernel queued a moment ago.)
    if let Ok(listener) = listener.into_std() {
        while let Ok((stream, peer)) = listener.accept() {
            let stream = stream
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpStream::from_std(stream));
            if let Ok(stream) = stream {
                spawn_connection(&shard, &tracker, &close_rx, stream, peer);
            }
        }
    }
    let _ = close_tx.send(true);
    let drained = async {
        while tracker.open.get() > 0 {
            let notified = tracker.zero.notified();
            if tracker.open.get() == 0 {
                break;
            }
            notified.await;
        }
    };
    if tokio::time::timeout(config.drain_timeout, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            shard = shard.index,
            open = tracker.open.get(),
            "drain timeout reached; closing remaining connections"
        );
    }
}

async fn wait_draining(phase: &mut watch::Receiver<Phase>) {
    loop {
        if *phase.borrow_and_update() == Phase::Draining {
            return;
        }
        if phase.changed().await.is_err() {
            // The lifecycle is gone: the server is being torn down.
            return;
        }
    }
}

/// How long an open connection is still served after the listener closed (see
/// `serve_connection`).
const LINGER: Duration = Duration::from_millis(500);

async fn serve_connection(
    shard: Rc<Shard>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    mut close: watch::Receiver<bool>,
) {
    let config = &shard.app.config;
    let clock = ConnClock::new(config.read_timeout, config.idle_timeout);
    let io = TokioIo::new(TimedIo::new(stream, clock.clone(), config.write_timeout));
    let svc_shard = shard.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let shard = svc_shard.clone();
        let clock = clock.clone();
        async move { Ok::<Resp, Infallible>(crate::handlers::handle(shard, req, peer, clock).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .max_buf_size(64 * 1024)
        // Request timeouts are enforced by `TimedIo`, which also covers bodies and idle time.
        .header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // A connection taken in after the listener closed (see `run_shard`) finds `close` already
    // set; it lingers all the same, for its first request may be on the way.
    if !*close.borrow() {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(shard = shard.index, %peer, error = %e, "connection ended with error");
                }
                return;
            }
            _ = close.changed() => {}
        }
    }
    // The listener has just closed. A proxy may have picked this connection (or opened it) a
    // moment before and its request be on the way: closing now would lose that request, and a
    // proxy cannot retry a POST it already sent. So the connection is served for LINGER more
    // (every answer while draining carries `Connection: close`, so it ends after one request),
    // then shut down gracefully.
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(shard = shard.index, %peer, error = %e, "connection ended with error");
            }
            return;
        }
        _ = tokio::time::sleep(LINGER) => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.as_mut().await {
        tracing::debug!(shard = shard.index, %peer, error = %e, "connection ended with error");
    }
}

/// Starts `shards` threads, each with a pinned current-thread runtime serving one listener.
/// Returns their join handles.
pub fn spawn_shards(
    app: Arc<crate::app::App>,
    listeners: Vec<std::net::TcpListener>,
    collectors: Vec<
        tokio::sync::mpsc::UnboundedReceiver<
            tokio::sync::oneshot::Sender<crate::metrics::ShardData>,
        >,
    >,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let id_prefix: u32 = rand::random();
    let mut handles = Vec::with_capacity(listeners.len());
    for (index, (listener, collector)) in listeners.into_iter().zip(collectors).enumerate() {
        let app = app.clone();
        let core = if cores.is_empty() {
            None
        } else {
            Some(cores[index % cores.len()])
        };
        let handle = std::thread::Builder::new()
            .name(format!("hj-shard-{index}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(shard = index, error = %e, "cannot build runtime");
                        return;
                    }
                };
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    let metrics = crate::metrics::Hub::shard_metrics();
                    metrics.spawn_collector(collector);
                    let shard = Rc::new(Shard::new(index, app, metrics, id_prefix));
                    run_shard(shard, listener).await;
                });
            })?;
        handles.push(handle);
    }
    Ok(handles)
}
