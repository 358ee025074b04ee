//! A small HelloJohn look-alike for the bench tests: real HTTP/1.1 on 127.0.0.1:0, with a
//! controllable behaviour (fast, a stall, a rate limit) and request counters.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// How the server treats the API requests (not `/health` and `/metrics`).
#[derive(Debug, Clone, Copy)]
pub enum Behavior {
    /// Answer at once.
    Fast,
    /// Requests arriving from `after` past the first `/userinfo` request until `after + length`
    /// are held until the stall ends.
    Stall { after: Duration, length: Duration },
    /// Admit `rate` requests/s (GCRA with `burst` of slack), answer 503 + Retry-After above it.
    Limit { rate: f64, burst: Duration },
}

struct State {
    behavior: Behavior,
    hits: Mutex<HashMap<String, u64>>,
    first_userinfo: Mutex<Option<Instant>>,
    tat: Mutex<Option<Instant>>,
    /// Refresh tokens that may be used (each exactly once).
    valid_refresh: Mutex<HashSet<String>>,
    refresh_reuse: AtomicU64,
    next: AtomicU64,
    /// Registrations of `bench-<i>` with `i < existing_users` answer 409.
    existing_users: usize,
    /// Only this tenant may sign in.
    tenant: String,
}

pub struct TestServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(behavior: Behavior) -> TestServer {
        TestServer::start_with(behavior, 0, "local")
    }

    pub fn start_with(behavior: Behavior, existing_users: usize, tenant: &str) -> TestServer {
        let state = Arc::new(State {
            behavior,
            hits: Mutex::new(HashMap::new()),
            first_userinfo: Mutex::new(None),
            tat: Mutex::new(None),
            valid_refresh: Mutex::new(HashSet::new()),
            refresh_reuse: AtomicU64::new(0),
            next: AtomicU64::new(0),
            existing_users,
            tenant: tenant.to_string(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let _ = stream.set_nodelay(true);
                            let st = st.clone();
                            tokio::spawn(async move {
                                let svc = service_fn(move |req| handle(st.clone(), req));
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        TestServer {
            addr,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen on `path`.
    pub fn hits(&self, path: &str) -> u64 {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Refresh requests with a token that was not (or no longer) valid.
    pub fn refresh_reuse(&self) -> u64 {
        self.state.refresh_reuse.load(Ordering::Relaxed)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reply(status: u16, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.into())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    resp
}

fn tokens(st: &State) -> String {
    let n = st.next.fetch_add(1, Ordering::Relaxed);
    let refresh = format!("rt-{n}");
    st.valid_refresh.lock().unwrap().insert(refresh.clone());
    serde_json::json!({
        "access_token": format!("at-{n}"),
        "token_type": "Bearer",
        "expires_in": 900,
        "refresh_token": refresh,
    })
    .to_string()
}

async fn handle(
    st: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    *st.hits.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
    match path.as_str() {
        "/health" => return Ok(reply(200, r#"{"status":"ok","version":"test"}"#)),
        "/metrics" => {
            return Ok(reply(
                200,
                "# TYPE hellojohn_hash_pool_workers gauge\nhellojohn_hash_pool_workers 2\nhellojohn_hash_pool_hashes_total 0\n",
            ))
        }
        _ => {}
    }
    match st.behavior {
        Behavior::Fast => {}
        Behavior::Stall { after, length } => {
            let first = {
                let mut first = st.first_userinfo.lock().unwrap();
                if path == "/userinfo" && first.is_none() {
                    *first = Some(arrived);
                }
                *first
            };
            if let Some(first) = first {
                let (from, until) = (first + after, first + after + length);
                if arrived >= from && arrived < until {
                    tokio::time::sleep_until(until.into()).await;
                }
            }
        }
        Behavior::Limit { rate, burst } => {
            let admitted = {
                let mut tat = st.tat.lock().unwrap();
                let t = tat.map_or(arrived, |t| t.max(arrived));
                if t.duration_since(arrived) > burst {
                    false
                } else {
                    *tat = Some(t + Duration::from_secs_f64(1.0 / rate));
                    true
                }
            };
            if !admitted {
                let mut resp = reply(503, r#"{"code":"OVERLOADED","message":"busy"}"#);
                resp.headers_mut()
                    .insert("retry-after", "1".parse().unwrap());
                return Ok(resp);
            }
        }
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let resp = match path.as_str() {
        "/v2/auth/login" => {
            if json["tenant_id"] == st.tenant.as_str() {
                reply(200, tokens(&st))
            } else {
                reply(401, r#"{"code":"INVALID_CREDENTIALS"}"#)
            }
        }
        "/v2/auth/register" => {
            let email = json["email"].as_str().unwrap_or("");
            let index = email
                .strip_prefix("bench-")
                .and_then(|r| r.split('@').next())
                .and_then(|i| i.parse::<usize>().ok());
            match index {
                Some(i) if i < st.existing_users => reply(409, r#"{"code":"CONFLICT"}"#),
                _ => {
                    let mut t: serde_json::Value = serde_json::from_str(&tokens(&st)).unwrap();
                    t["user_id"] = "u".into();
                    reply(200, t.to_string())
                }
            }
        }
        "/v2/auth/refresh" => {
            let token = json["refresh_token"].as_str().unwrap_or("").to_string();
            if st.valid_refresh.lock().unwrap().remove(&token) {
                reply(200, tokens(&st))
            } else {
                st.refresh_reuse.fetch_add(1, Ordering::Relaxed);
                reply(401, r#"{"code":"REFRESH_TOKEN_REUSE"}"#)
            }
        }
        "/v2/session/login" => {
            let n = st.next.fetch_add(1, Ordering::Relaxed);
            let mut resp = reply(204, "");
            resp.headers_mut().insert(
                "set-cookie",
                format!("sid=s-{n}; Path=/; HttpOnly; SameSite=Lax")
                    .parse()
                    .unwrap(),
            );
            resp
        }
        "/userinfo" => {
            let bearer = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("Bearer at-"));
            let cookie = parts
                .headers
                .get("cookie")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("sid=s-"));
            if bearer || cookie {
                reply(200, r#"{"sub":"u","email":"bench@bench.hellojohn.test"}"#)
            } else {
                reply(401, r#"{"code":"TOKEN_INVALID"}"#)
            }
        }
        _ => reply(404, r#"{"code":"NOT_FOUND"}"#),
    };
    Ok(resp)
}
