//! Scenarios: what each request of a run does, and the preparation it needs (tokens, cookies).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, COOKIE, SET_COOKIE};
use http::{Method, Request};
use http_body_util::Full;
use serde::Deserialize;

use crate::client::{parallel, Client, Reply};
use crate::target::Target;

/// The user password `seed` registers by default: long, mixed case, digits and a symbol, so it
/// passes any reasonable password policy.
pub const DEFAULT_PASSWORD: &str = "Bench-Passw0rd!2024";
/// The default weights of `--scenario mixed`.
pub const DEFAULT_MIX: &str = "signin=1,refresh=4,userinfo=15";

/// The e-mail of seeded user `i`.
pub fn bench_email(i: usize) -> String {
    format!("bench-{i}@bench.hellojohn.test")
}

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `POST /v2/auth/login` with a seeded user (one Argon2 verification).
    Signin,
    /// `POST /v2/auth/register` with a new, unique e-mail (one Argon2 hash).
    Register,
    /// `POST /v2/auth/refresh`, each virtual user chaining its own rotated token.
    Refresh,
    /// `GET /userinfo` with a Bearer access token.
    Userinfo,
    /// `GET /userinfo` with the `sid` cookie of a session login.
    Session,
    /// `GET /v2/me` with a Bearer access token.
    Me,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::Signin,
        Op::Register,
        Op::Refresh,
        Op::Userinfo,
        Op::Session,
        Op::Me,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Signin => "signin",
            Op::Register => "register",
            Op::Refresh => "refresh",
            Op::Userinfo => "userinfo",
            Op::Session => "session",
            Op::Me => "me",
        }
    }

    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name.trim())
    }

    /// What one such request is called in a verdict (`143 sign-ins/s`).
    pub fn noun(self) -> &'static str {
        match self {
            Op::Signin => "sign-ins",
            Op::Register => "registrations",
            Op::Refresh => "refreshes",
            Op::Userinfo => "userinfo requests",
            Op::Session => "session userinfo requests",
            Op::Me => "/v2/me requests",
        }
    }

    /// Whether the request costs the server one Argon2 computation.
    pub fn uses_argon2(self) -> bool {
        matches!(self, Op::Signin | Op::Register)
    }
}

/// A named scenario: one operation, or a weighted mix.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    /// Operations and their weights (a single scenario is one operation of weight 1).
    pub mix: Vec<(Op, u32)>,
}

impl Scenario {
    /// `name` is `signin|register|refresh|userinfo|session|me|mixed`; `mix` (for `mixed`) is like
    /// `signin=1,refresh=4,userinfo=15`.
    pub fn parse(name: &str, mix: Option<&str>) -> Result<Scenario, String> {
        if name == "mixed" {
            let mix = parse_mix(mix.unwrap_or(DEFAULT_MIX))?;
            return Ok(Scenario {
                name: name.to_string(),
                mix,
            });
        }
        if mix.is_some() {
            return Err("--mix only applies to --scenario mixed".to_string());
        }
        let op = Op::parse(name).ok_or_else(|| {
            format!("unknown scenario {name:?} (signin|register|refresh|userinfo|session|me|mixed)")
        })?;
        Ok(Scenario::single(op))
    }

    pub fn single(op: Op) -> Scenario {
        Scenario {
            name: op.name().to_string(),
            mix: vec![(op, 1)],
        }
    }

    pub fn needs(&self, op: Op) -> bool {
        self.mix.iter().any(|(o, _)| *o == op)
    }

    /// The one operation of a single scenario.
    pub fn only_op(&self) -> Option<Op> {
        match self.mix.as_slice() {
            [(op, _)] => Some(*op),
            _ => None,
        }
    }

    /// Share of requests that cost one Argon2 computation.
    pub fn argon2_share(&self) -> f64 {
        let total: u32 = self.mix.iter().map(|(_, w)| w).sum();
        let hashing: u32 = self
            .mix
            .iter()
            .filter(|(op, _)| op.uses_argon2())
            .map(|(_, w)| w)
            .sum();
        if total == 0 {
            0.0
        } else {
            f64::from(hashing) / f64::from(total)
        }
    }

    /// The mix as a repeating sequence (smooth weighted round-robin, so the operations are
    /// interleaved evenly rather than in blocks).
    pub fn schedule(&self) -> Vec<Op> {
        let total: i64 = self.mix.iter().map(|(_, w)| i64::from(*w)).sum();
        let mut current = vec![0i64; self.mix.len()];
        let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            for (c, (_, w)) in current.iter_mut().zip(&self.mix) {
                *c += i64::from(*w);
            }
            let mut best = 0;
            for (i, c) in current.iter().enumerate() {
                if *c > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            out.push(self.mix[best].0);
        }
        out
    }
}

/// Parses `signin=1,refresh=4,userinfo=15`.
pub fn parse_mix(text: &str) -> Result<Vec<(Op, u32)>, String> {
    let mut mix: Vec<(Op, u32)> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("mix entry {part:?} is not op=weight"))?;
        let op = Op::parse(name).ok_or_else(|| format!("unknown operation {name:?} in mix"))?;
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("weight {weight:?} in mix is not a whole number"))?;
        if mix.iter().any(|(o, _)| *o == op) {
            return Err(format!("{name} appears twice in the mix"));
        }
        if weight > 0 {
            mix.push((op, weight));
        }
    }
    if mix.is_empty() {
        return Err("the mix has no operation with a positive weight".to_string());
    }
    if mix.iter().map(|(_, w)| u64::from(*w)).sum::<u64>() > 100_000 {
        return Err("mix weights are too large (keep their sum under 100000)".to_string());
    }
    Ok(mix)
}

/// Who the bench signs in as.
#[derive(Clone, serde::Serialize, Deserialize)]
pub struct Credentials {
    pub tenant_id: String,
    pub client_id: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    fn body(&self, email: &str) -> Bytes {
        Bytes::from(
            serde_json::json!({
                "tenant_id": self.tenant_id,
                "client_id": self.client_id,
                "email": email,
                "password": self.password,
            })
            .to_string(),
        )
    }
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Reaches the server (its `/health` answer, when it gave one) and prepares the workload.
pub async fn prepare(
    target: &Arc<Target>,
    scenario: Scenario,
    creds: Credentials,
    users: usize,
    concurrency: usize,
    progress: bool,
) -> anyhow::Result<(Workload, Option<serde_json::Value>)> {
    let health = match crate::metrics::health(target).await {
        Ok(h) => Some(h),
        Err(e) if e.contains("answered") => {
            eprintln!("hj bench: warning: {e}");
            None
        }
        Err(e) => bail!("cannot reach the server: {e}"),
    };
    let users = if scenario.mix.iter().all(|(op, _)| *op == Op::Register) {
        0
    } else {
        users
    };
    let wl = Workload::prepare(
        target.clone(),
        scenario,
        creds,
        users,
        concurrency,
        progress,
    )
    .await?;
    Ok((wl, health))
}

/// Everything the requests of a run are made from; built once by [`Workload::prepare`] and
/// shared, read-only except for the refresh chains, by all workers (and all capacity steps).
pub struct Workload {
    pub target: Arc<Target>,
    pub scenario: Scenario,
    pub creds: Credentials,
    /// Seeded users taking part (`bench-0` .. `bench-<users-1>`).
    pub users: usize,
    schedule: Vec<Op>,
    login_bodies: Vec<Bytes>,
    bearers: Vec<HeaderValue>,
    cookies: Vec<HeaderValue>,
    /// The head of each user's refresh chain; `None` once a refresh failed (the chain is then
    /// restarted with a sign-in).
    refresh: Mutex<Vec<Option<String>>>,
    run_id: String,
    registered: AtomicU64,
}

/// A refresh chain checked out by a worker.
#[derive(Debug, Clone)]
pub struct Chain {
    pub user: usize,
    pub token: Option<String>,
}

impl Workload {
    /// Builds the workload and prepares what the scenario needs: one sign-in per user for
    /// `userinfo` (access tokens) and `refresh` (refresh-chain heads), one session login per user
    /// for `session`. `concurrency` bounds the preparation requests in flight.
    pub async fn prepare(
        target: Arc<Target>,
        scenario: Scenario,
        creds: Credentials,
        users: usize,
        concurrency: usize,
        progress: bool,
    ) -> anyhow::Result<Workload> {
        let needs_users = scenario.mix.iter().any(|(op, _)| *op != Op::Register);
        if needs_users && users == 0 {
            bail!("scenario {} needs seeded users (--users N)", scenario.name);
        }
        let login_bodies: Vec<Bytes> = (0..users).map(|i| creds.body(&bench_email(i))).collect();
        let run_id = format!("{:x}{:x}", crate::util::unix_now(), std::process::id());
        let mut wl = Workload {
            target: target.clone(),
            schedule: scenario.schedule(),
            scenario,
            creds,
            users,
            login_bodies,
            bearers: Vec::new(),
            cookies: Vec::new(),
            refresh: Mutex::new(Vec::new()),
            run_id,
            registered: AtomicU64::new(0),
        };
        if wl.scenario.needs(Op::Signin) {
            // One sign-in up front, so an unseeded target fails here with a clear message
            // instead of as a run full of 401s.
            let mut client = Client::new(target.clone());
            let body = wl.login_bodies.first().cloned().unwrap_or_default();
            let reply = client
                .send(|t| t.request(Method::POST, "/v2/auth/login", Some(body.clone()), &[]))
                .await?;
            check_login(&reply, 0)?;
        }
        let label = |what: &str| progress.then(|| format!("preparing {what}"));
        if wl.scenario.needs(Op::Userinfo)
            || wl.scenario.needs(Op::Me)
            || wl.scenario.needs(Op::Refresh)
        {
            let bodies = Arc::new(wl.login_bodies.clone());
            let tokens = parallel(
                &target,
                users,
                concurrency,
                label("sign-ins").as_deref(),
                move |mut client, i| {
                    let body = bodies[i].clone();
                    async move {
                        let reply = client
                            .send(|t| {
                                t.request(Method::POST, "/v2/auth/login", Some(body.clone()), &[])
                            })
                            .await;
                        let result = match reply {
                            Ok(r) => check_login(&r, i),
                            Err(e) => Err(e.into()),
                        };
                        (client, result)
                    }
                },
            )
            .await?;
            let mut bearers = Vec::with_capacity(users);
            let mut chains = Vec::with_capacity(users);
            for t in tokens {
                bearers.push(
                    HeaderValue::from_str(&format!("Bearer {}", t.access_token))
                        .context("access token is not a valid header value")?,
                );
                chains.push(t.refresh_token);
            }
            if wl.scenario.needs(Op::Refresh) && chains.iter().any(Option::is_none) {
                bail!("the server's login answer has no refresh_token");
            }
            wl.bearers = bearers;
            wl.refresh = Mutex::new(chains);
        }
        if wl.scenario.needs(Op::Session) {
            let bodies = Arc::new(wl.login_bodies.clone());
            wl.cookies = parallel(
                &target,
                users,
                concurrency,
                label("session logins").as_deref(),
                move |mut client, i| {
                    let body = bodies[i].clone();
                    async move {
                        let reply = client
                            .send(|t| {
                                t.request(
                                    Method::POST,
                                    "/v2/session/login",
                                    Some(body.clone()),
                                    &[],
                                )
                            })
                            .await;
                        let result = match reply {
                            Ok(r) => session_cookie(&r, i),
                            Err(e) => Err(e.into()),
                        };
                        (client, result)
                    }
                },
            )
            .await?;
        }
        Ok(wl)
    }

    /// The operation of request number `seq`.
    pub fn op_for(&self, seq: u64) -> Op {
        let len = self.schedule.len().max(1) as u64;
        usize::try_from(seq % len)
            .ok()
            .and_then(|i| self.schedule.get(i).copied())
            .unwrap_or(Op::Signin)
    }

    /// The user request number `seq` acts as.
    pub fn user_for(&self, seq: u64) -> usize {
        usize::try_from(seq % self.users.max(1) as u64).unwrap_or(0)
    }

    pub fn signin_request(&self, user: usize) -> Result<Request<Full<Bytes>>, http::Error> {
        let body = self.login_bodies.get(user).cloned().unwrap_or_default();
        self.target
            .request(Method::POST, "/v2/auth/login", Some(body), &[])
    }

    /// A registration with an e-mail no other request of any run used.
    pub fn register_request(&self) -> Result<Request<Full<Bytes>>, http::Error> {
        let n = self.registered.fetch_add(1, Ordering::Relaxed);
        let email = format!("bench-r{}-{n}@bench.hellojohn.test", self.run_id);
        self.target.request(
            Method::POST,
            "/v2/auth/register",
            Some(self.creds.body(&email)),
            &[],
        )
    }

    pub fn userinfo_request(&self, user: usize) -> Result<Request<Full<Bytes>>, http::Error> {
        let auth = self
            .bearers
            .get(user)
            .cloned()
            .unwrap_or(HeaderValue::from_static(""));
        self.target
            .request(Method::GET, "/userinfo", None, &[(AUTHORIZATION, auth)])
    }

    /// `GET /v2/me` with the user's access token.
    pub fn me_request(&self, user: usize) -> Result<Request<Full<Bytes>>, http::Error> {
        let auth = self
            .bearers
            .get(user)
            .cloned()
            .unwrap_or(HeaderValue::from_static(""));
        self.target
            .request(Method::GET, "/v2/me", None, &[(AUTHORIZATION, auth)])
    }

    pub fn session_request(&self, user: usize) -> Result<Request<Full<Bytes>>, http::Error> {
        let cookie = self
            .cookies
            .get(user)
            .cloned()
            .unwrap_or(HeaderValue::from_static(""));
        let headers: [(HeaderName, HeaderValue); 1] = [(COOKIE, cookie)];
        self.target
            .request(Method::GET, "/userinfo", None, &headers)
    }

    pub fn refresh_request(&self, token: &str) -> Result<Request<Full<Bytes>>, http::Error> {
        let body = serde_json::json!({
            "client_id": self.creds.client_id,
            "refresh_token": token,
        })
        .to_string();
        self.target.request(
            Method::POST,
            "/v2/auth/refresh",
            Some(Bytes::from(body)),
            &[],
        )
    }

    /// The refresh chains of worker `worker` of `workers` (users `i` with `i % workers ==
    /// worker`). Hand them back with [`Workload::return_chains`].
    pub fn take_chains(&self, worker: usize, workers: usize) -> Vec<Chain> {
        let chains = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        chains
            .iter()
            .enumerate()
            .filter(|(i, _)| i % workers.max(1) == worker)
            .map(|(user, token)| Chain {
                user,
                token: token.clone(),
            })
            .collect()
    }

    /// Stores the chain heads a worker ends with, so the next run continues them.
    pub fn return_chains(&self, chains: impl IntoIterator<Item = Chain>) {
        let mut heads = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        for c in chains {
            if let Some(slot) = heads.get_mut(c.user) {
                *slot = c.token;
            }
        }
    }

    /// How many refresh chains there are.
    pub fn chains(&self) -> usize {
        self.refresh.lock().map(|c| c.len()).unwrap_or(0)
    }
}

/// The refresh token of a 200 answer of login or refresh.
pub fn refresh_token_of(reply: &Reply) -> Option<String> {
    serde_json::from_slice::<TokenReply>(&reply.body)
        .ok()
        .and_then(|t| t.refresh_token)
}

fn check_login(reply: &Reply, user: usize) -> anyhow::Result<TokenReply> {
    match reply.status {
        200 => serde_json::from_slice(&reply.body)
            .with_context(|| format!("unexpected login answer: {}", reply.text())),
        401 => Err(anyhow!(
            "{} cannot sign in (401): seed the users first with `hj bench seed --users N` \
             (same --tenant, --client-id and --password)",
            bench_email(user)
        )),
        429 => Err(anyhow!(
            "sign-in is rate limited (429): start the server with HELLOJOHN_RATE_LIMIT_ENABLED=false"
        )),
        s => Err(anyhow!("sign-in of {} answered {s}: {}", bench_email(user), reply.text())),
    }
}

/// The `sid` cookie (`name=value`) of a session login answer.
fn session_cookie(reply: &Reply, user: usize) -> anyhow::Result<HeaderValue> {
    if !reply.is_success() {
        return Err(anyhow!(
            "session login of {} answered {}: {}",
            bench_email(user),
            reply.status,
            reply.text()
        ));
    }
    for value in reply.headers.get_all(SET_COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        let pair = text.split(';').next().unwrap_or("").trim();
        let name = pair.split('=').next().unwrap_or("");
        if name == "sid" || name == "__Host-sid" {
            return HeaderValue::from_str(pair).context("invalid sid cookie");
        }
    }
    Err(anyhow!(
        "session login answered {} without a sid cookie",
        reply.status
    ))
}
