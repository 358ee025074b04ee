//! A minimal HTTP/1.1 client: one hyper connection per [`Conn`], kept alive between requests.
//!
//! Load workers hold their own connections (one request in flight each, no pooling layer in the
//! way); [`Client`] is the slow path used to seed and prepare, with retries on 429/503.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::target::Target;

/// An answer, read to the end.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// `Retry-After` in seconds, when the server sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text, for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum Failure {
    /// The TCP connection could not be opened.
    Connect(std::io::Error),
    /// The connection broke while sending or reading.
    Io(hyper::Error),
    /// The request could not be built (a bug or a bad token value).
    Build(http::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "cannot connect: {e}"),
            Failure::Io(e) => write!(f, "connection error: {e}"),
            Failure::Build(e) => write!(f, "cannot build request: {e}"),
        }
    }
}

impl std::error::Error for Failure {}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    send: http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Opens a connection (TCP_NODELAY) and spawns its driver on the current runtime.
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (send, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            // The connection ends when the server closes it or the `SendRequest` is dropped;
            // either way the next request opens a fresh one.
            let _ = conn.await;
        });
        Ok(Conn { send })
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.send.is_closed()
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, hyper::Error> {
        self.send.ready().await?;
        let resp = self.send.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

/// Sends `req` on `conn`, opening it first when there is none (or the server closed it). A
/// broken connection is dropped so that the next call opens a new one.
pub async fn roundtrip(
    target: &Target,
    conn: &mut Option<Conn>,
    req: Request<Full<Bytes>>,
) -> Result<Reply, Failure> {
    if !matches!(conn, Some(c) if !c.is_closed()) {
        *conn = Some(Conn::connect(target.addr).await.map_err(Failure::Connect)?);
    }
    let Some(c) = conn.as_mut() else {
        return Err(Failure::Connect(std::io::Error::other("no connection")));
    };
    match c.send(req).await {
        Ok(reply) => Ok(reply),
        Err(e) => {
            *conn = None;
            Err(Failure::Io(e))
        }
    }
}

/// The slow-path client for seeding, preparing and scraping: one connection, retries.
pub struct Client {
    pub target: Arc<Target>,
    conn: Option<Conn>,
    /// How many 429/503 answers were waited out.
    pub backoffs: u64,
}

/// How long to wait at most for one `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How many times a request is retried after 429/503 or a broken connection.
const MAX_TRIES: usize = 60;

impl Client {
    pub fn new(target: Arc<Target>) -> Client {
        Client {
            target,
            conn: None,
            backoffs: 0,
        }
    }

    /// One attempt, no retry.
    pub async fn send_once(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, Failure> {
        roundtrip(&self.target, &mut self.conn, req).await
    }

    /// Sends the request built by `make`, waiting out 429 and 503 answers (their `Retry-After`,
    /// at most 5 s each) and retrying broken connections; other answers are returned as they are.
    pub async fn send<F>(&mut self, make: F) -> Result<Reply, Failure>
    where
        F: Fn(&Target) -> Result<Request<Full<Bytes>>, http::Error>,
    {
        let (mut busy, mut broken) = (0, 0);
        loop {
            let req = make(&self.target).map_err(Failure::Build)?;
            match roundtrip(&self.target, &mut self.conn, req).await {
                Ok(reply) if (reply.status == 429 || reply.status == 503) && busy < MAX_TRIES => {
                    busy += 1;
                    self.backoffs += 1;
                    let wait = reply
                        .retry_after()
                        .unwrap_or(Duration::from_millis(500))
                        .clamp(Duration::from_millis(50), MAX_BACKOFF);
                    tokio::time::sleep(wait).await;
                }
                Ok(reply) => return Ok(reply),
                Err(Failure::Build(e)) => return Err(Failure::Build(e)),
                Err(e) if broken >= 2 => return Err(e),
                Err(_) => {
                    broken += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Runs `f` for the items `0..items` on `concurrency` tasks of the current runtime, each with its
/// own [`Client`] (moved into `f` and handed back, so its connection is reused). Stops at the
/// first error. With `label`, prints `label: done/items` to stderr every second.
pub async fn parallel<T, F, Fut>(
    target: &Arc<Target>,
    items: usize,
    concurrency: usize,
    label: Option<&str>,
    f: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(Client, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Client, anyhow::Result<T>)> + Send + 'static,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let results: Arc<Mutex<Vec<Option<T>>>> =
        Arc::new(Mutex::new((0..items).map(|_| None).collect()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.clamp(1, items.max(1)) {
        let (f, next, done, failed, results) = (
            f.clone(),
            next.clone(),
            done.clone(),
            failed.clone(),
            results.clone(),
        );
        let mut client = Client::new(target.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items || failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let (back, result) = f(client, i).await;
                client = back;
                match result {
                    Ok(v) => {
                        if let Some(slot) =
                            results.lock().unwrap_or_else(|e| e.into_inner()).get_mut(i)
                        {
                            *slot = Some(v);
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        });
    }
    let mut first_error = None;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => { first_error.get_or_insert(e); }
                Some(Err(e)) => { first_error.get_or_insert(anyhow!("task failed: {e}")); }
            },
            _ = ticker.tick() => {
                if let Some(label) = label {
                    eprintln!("{label}: {}/{items}", done.load(Ordering::Relaxed));
                }
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
    results
        .drain(..)
        .map(|v| v.ok_or_else(|| anyhow!("an item was not done")))
        .collect()
}
