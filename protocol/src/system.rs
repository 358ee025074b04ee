//! The bodies of the system routes (`/ping`, `/health`).

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

/// `GET /health`: readiness for load balancers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `ok`, `draining` or `unavailable`.
    pub status: &'static str,
    pub components: HealthComponents,
    pub version: &'static str,
}
