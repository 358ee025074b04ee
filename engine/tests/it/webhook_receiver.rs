//! The webhook receiver of the webhook tests: a tiny hyper server on loopback that records every
//! request it gets (optionally answering slowly or with errors), and the check of a delivery's
//! signature as a subscriber would make it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::Sha256;

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    headers: http::HeaderMap,
    body: Bytes,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub(crate) fn delivery_id(&self) -> String {
        self.header("x-hellojohn-delivery-id").to_string()
    }

    pub(crate) fn event_id(&self) -> String {
        self.json()["id"].as_str().unwrap().to_string()
    }
}

#[derive(Default)]
pub(crate) struct ReceiverState {
    requests: Mutex<Vec<Received>>,
    /// Statuses to answer, in order; 200 once empty.
    statuses: Mutex<VecDeque<u16>>,
    /// Every `slow_every`-th request (0: none) is answered after `SLOW`.
    slow_every: AtomicUsize,
    seen: AtomicUsize,
}

pub(crate) const SLOW: Duration = Duration::from_millis(700);

/// A webhook endpoint on 127.0.0.1 that records every request.
pub(crate) struct Receiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ReceiverState::default());
        let task = Some(tokio::spawn(serve(listener, state.clone())));
        Receiver { addr, state, task }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hooks/hellojohn?src=test", self.addr)
    }

    /// Closes the port: connections are refused until [`Receiver::restart`].
    pub(crate) async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub(crate) async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.task = Some(tokio::spawn(serve(listener, self.state.clone())));
    }

    pub(crate) fn answer(&self, statuses: &[u16]) {
        self.state.statuses.lock().unwrap().extend(statuses);
    }

    pub(crate) fn slow_every(&self, n: usize) {
        self.state.slow_every.store(n, Ordering::Relaxed);
    }

    pub(crate) fn requests(&self) -> Vec<Received> {
        self.state.requests.lock().unwrap().clone()
    }

    pub(crate) fn count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// Waits until at least `n` requests arrived; panics after `limit`.
    pub(crate) async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            if self.count() >= n {
                return self.requests();
            }
            assert!(
                start.elapsed() < limit,
                "{} of {n} webhook requests after {limit:?}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub(crate) async fn serve(listener: tokio::net::TcpListener, state: Arc<ReceiverState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| record(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

pub(crate) async fn record(
    state: Arc<ReceiverState>,
    req: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    assert_eq!(parts.method, http::Method::POST);
    assert_eq!(parts.uri.path(), "/hooks/hellojohn");
    state.requests.lock().unwrap().push(Received {
        headers: parts.headers,
        body,
    });
    let n = state.seen.fetch_add(1, Ordering::Relaxed) + 1;
    let every = state.slow_every.load(Ordering::Relaxed);
    if n.checked_rem(every) == Some(0) {
        tokio::time::sleep(SLOW).await;
    }
    let status = state.statuses.lock().unwrap().pop_front().unwrap_or(200);
    Ok(http::Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(b"ok")))
        .unwrap())
}

// ----- signatures, checked independently of the engine ---------------------------------------

/// `whsec_` and the base64 of 32 fixed bytes.
pub(crate) fn test_secret() -> String {
    format!("whsec_{}", STANDARD.encode([0x5au8; 32]))
}

pub(crate) fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks both signatures of a request made with `secret`, and the timestamp's freshness.
pub(crate) fn verify(r: &Received, secret: &str) {
    // X-HelloJohn-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
    let sig = r.header("x-hellojohn-signature");
    let (t, v1) = sig
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("bad X-HelloJohn-Signature {sig:?}"));
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&r.body);
    assert_eq!(
        v1,
        hex(&hmac(secret.as_bytes(), &signed)),
        "X-HelloJohn-Signature"
    );
    let ts: i64 = t.parse().unwrap();
    assert!((ts - engine::unix_now()).abs() < 300, "fresh timestamp");

    // Standard Webhooks: key = base64-decoded secret after `whsec_`, over "<id>.<ts>.<body>".
    let id = r.header("webhook-id");
    let ts = r.header("webhook-timestamp");
    assert_eq!(ts, t);
    assert_eq!(id, r.delivery_id(), "webhook-id is the delivery id");
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut signed = format!("{id}.{ts}.").into_bytes();
    signed.extend_from_slice(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(hmac(&key, &signed)));
    let given = r.header("webhook-signature");
    assert!(
        given.split(' ').any(|s| s == expected),
        "webhook-signature {given:?}, expected {expected:?}"
    );
    assert_eq!(r.header("x-hellojohn-event"), r.json()["type"]);
    assert!(r.header("content-type").starts_with("application/json"));
}
