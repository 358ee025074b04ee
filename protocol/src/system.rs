//! The bodies of the system routes (`/ping`, `/health`, `/readyz`).

use serde::Serialize;

/// `GET /ping`: `{"status":"ok"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ping {
    pub status: &'static str,
}

impl Ping {
    pub const OK: Ping = Ping { status: "ok" };
}

/// The state of each dependency in `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HealthComponents {
    /// `ok` or `down`.
    pub database: &'static str,
    /// `ok`, `degraded` (unreachable: the instance serves locally) or `disabled`.
    pub redis: &'static str,
    pub keystore: &'static str,
}

/// `GET /health` and `GET /readyz`: readiness for load balancers (the HTTP status says it: 200
/// or 503; the body says why).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `/health`: `ok`, `draining` or `unavailable`. `/readyz` names them as HelloJohn does:
    /// `ready`, `degraded` (Redis unreachable: serving with local limits), `draining` or
    /// `unavailable`.
    pub status: &'static str,
    pub components: HealthComponents,
    pub version: &'static str,
    /// `/readyz` only: HelloJohn's cluster block, which its admin console reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Cluster>,
}

/// What HelloJohn's `/readyz` reports of its Raft cluster. Instances of this server share
/// the database and Redis and elect no leader: `mode` is `off` and `role` `standalone`, the
/// same on every instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cluster {
    pub mode: &'static str,
    pub role: &'static str,
    pub leader_id: &'static str,
    pub peers_configured: u32,
    pub peers_connected: u32,
}

impl Cluster {
    pub const NONE: Cluster = Cluster {
        mode: "off",
        role: "standalone",
        leader_id: "",
        peers_configured: 0,
        peers_connected: 0,
    };
}
