//! What the bench learns from the server itself: `/metrics` (Prometheus text) and `/health`.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::target::Target;

/// The gauge with the server's password-hashing threads.
pub const HASH_WORKERS: &str = "hellojohn_hash_pool_workers";
const HASHES: &str = "hellojohn_hash_pool_hashes_total";
const REJECTED: &str = "hellojohn_hash_pool_rejected_total";
const WORK: &str = "hellojohn_hash_pool_work_seconds_total";
const WAIT: &str = "hellojohn_hash_pool_wait_seconds_total";
/// Argon2 parameters, used when a server exposes them.
const ARGON2_MEMORY: &str = "hellojohn_argon2_memory_kib";
const ARGON2_ITERATIONS: &str = "hellojohn_argon2_iterations";
const ARGON2_PARALLELISM: &str = "hellojohn_argon2_parallelism";

/// Samples of a Prometheus text exposition: `name{labels}` (as written) to value.
pub fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The series name runs to the closing brace of its labels (label values may hold
        // spaces), then comes the value and an optional timestamp.
        let split = match line.find('{') {
            Some(open) => line[open..].find('}').map(|close| open + close + 1),
            None => line.find(char::is_whitespace),
        };
        let Some(split) = split else { continue };
        let (name, rest) = line.split_at(split);
        let Some(value) = rest.split_whitespace().next() else {
            continue;
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => match v.parse::<f64>() {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        out.insert(name.trim().to_string(), value);
    }
    out
}

/// One scrape of `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub samples: BTreeMap<String, f64>,
}

impl Snapshot {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.samples.get(name).copied()
    }

    /// The server's hash worker count, when exposed.
    pub fn hash_workers(&self) -> Option<usize> {
        self.get(HASH_WORKERS)
            .filter(|v| v.is_finite() && *v >= 1.0)
            .map(|v| v as usize)
    }

    /// Argon2 `(memory KiB, iterations, parallelism)`, when exposed.
    pub fn argon2(&self) -> Option<(u32, u32, u32)> {
        let g = |n| {
            self.get(n)
                .filter(|v| v.is_finite() && *v >= 1.0)
                .map(|v| v as u32)
        };
        Some((
            g(ARGON2_MEMORY)?,
            g(ARGON2_ITERATIONS)?,
            g(ARGON2_PARALLELISM)?,
        ))
    }
}

/// `GET /metrics`; `None` when the server has none or does not answer.
pub async fn scrape(target: &Arc<Target>) -> Option<Snapshot> {
    let mut client = Client::new(target.clone());
    let reply = client
        .send_once(target.request(Method::GET, "/metrics", None, &[]).ok()?)
        .await
        .ok()?;
    reply.is_success().then(|| Snapshot {
        samples: parse_prometheus(&String::from_utf8_lossy(&reply.body)),
    })
}

/// `GET /health` (or an error message when it does not answer 200).
pub async fn health(target: &Arc<Target>) -> Result<serde_json::Value, String> {
    let mut client = Client::new(target.clone());
    let req = target
        .request(Method::GET, "/health", None, &[])
        .map_err(|e| e.to_string())?;
    match client.send_once(req).await {
        Ok(reply) if reply.is_success() => {
            Ok(serde_json::from_slice(&reply.body).unwrap_or(serde_json::Value::Null))
        }
        Ok(reply) => Err(format!(
            "{}/health answered {}: {}",
            target.url,
            reply.status,
            reply.text()
        )),
        Err(e) => Err(format!("{}: {e}", target.url)),
    }
}

/// What the server told about itself around a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerInfo {
    /// `version` of `/health`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `hellojohn_hash_pool_workers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_workers: Option<usize>,
    /// Argon2id computations during the run, warm-up included (hashes_total delta).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hashes: Option<f64>,
    /// Hash jobs refused with 503 OVERLOADED during the run, warm-up included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_rejected: Option<f64>,
    /// Mean time the server spent computing one hash, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_work_ms_mean: Option<f64>,
    /// Mean time a hash job waited for a hashing thread, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_wait_ms_mean: Option<f64>,
    /// The `hellojohn_hash_pool_*` samples of the scrape before the run.
    pub hash_pool: BTreeMap<String, f64>,
}

impl ServerInfo {
    /// Built from the scrapes before and after a run.
    pub fn from_scrapes(
        before: Option<&Snapshot>,
        after: Option<&Snapshot>,
        health: Option<&serde_json::Value>,
    ) -> Option<ServerInfo> {
        let version = health
            .and_then(|h| h.get("version"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        if before.is_none() && version.is_none() {
            return None;
        }
        let mut info = ServerInfo {
            version,
            ..ServerInfo::default()
        };
        if let Some(b) = before {
            info.hash_workers = b.hash_workers();
            info.hash_pool = b
                .samples
                .iter()
                .filter(|(k, _)| k.starts_with("hellojohn_hash_pool_"))
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            if let Some(a) = after {
                let delta = |n: &str| Some(a.get(n)? - b.get(n)?).filter(|d| *d >= 0.0);
                info.hashes = delta(HASHES);
                info.hash_rejected = delta(REJECTED);
                if let Some(h) = info.hashes.filter(|h| *h > 0.0) {
                    info.hash_work_ms_mean = delta(WORK).map(|w| w / h * 1e3);
                    info.hash_wait_ms_mean = delta(WAIT).map(|w| w / h * 1e3);
                }
            }
        }
        Some(info)
    }
}
