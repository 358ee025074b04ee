//! `hj bench seed`: registers the bench users through the API and records them in a seed file.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http::Method;
use serde::{Deserialize, Serialize};

use crate::client::parallel;
use crate::scenario::{bench_email, Credentials};
use crate::target::Target;

/// Where `seed` writes and `run` / `capacity` look by default.
pub const DEFAULT_SEED_FILE: &str = "hj-bench-seed.json";

/// The seed file: what `run` needs to sign the seeded users in again.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct SeedFile {
    pub target: String,
    pub tenant_id: String,
    pub client_id: String,
    /// The password of every bench user (a throw-away bench credential).
    pub password: String,
    /// Users `bench-0` .. `bench-<users-1>` exist.
    pub users: usize,
    pub email_pattern: String,
    /// Registered by the last `seed`.
    pub created: usize,
    /// Already there (409) at the last `seed`.
    pub existing: usize,
    pub seeded_at_unix: u64,
}

impl std::fmt::Debug for SeedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedFile")
            .field("target", &self.target)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

impl SeedFile {
    pub fn credentials(&self) -> Credentials {
        Credentials {
            tenant_id: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            password: self.password.clone(),
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<SeedFile> {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read seed file {}", path.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a seed file", path.display()))
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("cannot write seed file {}", path.display()))
    }
}

/// How a seed went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedOutcome {
    pub created: usize,
    pub existing: usize,
}

#[derive(Clone, Copy)]
enum Registered {
    Created,
    Existing,
}

/// Registers users `0..users` with at most `concurrency` registrations in flight. A 409 means
/// the user is already there (an earlier, maybe interrupted, seed): it is counted and skipped.
/// 429 and 503 answers are waited out.
pub async fn seed_users(
    target: Arc<Target>,
    creds: &Credentials,
    users: usize,
    concurrency: usize,
    progress: bool,
) -> anyhow::Result<SeedOutcome> {
    let creds = Arc::new(creds.clone());
    let c = creds.clone();
    let results = parallel(
        &target,
        users,
        concurrency,
        progress.then_some("seeding"),
        move |mut client, i| {
            let body = Bytes::from(
                serde_json::json!({
                    "tenant_id": c.tenant_id,
                    "client_id": c.client_id,
                    "email": bench_email(i),
                    "password": c.password,
                })
                .to_string(),
            );
            async move {
                let reply = client
                    .send(|t| t.request(Method::POST, "/v2/auth/register", Some(body.clone()), &[]))
                    .await;
                let result = match reply {
                    Ok(r) if r.status == 200 || r.status == 201 => Ok(Registered::Created),
                    Ok(r) if r.status == 409 => Ok(Registered::Existing),
                    Ok(r) if r.status == 400 => Err(anyhow!(
                        "registration refused (400): {} (is the password policy-valid? pass --password)",
                        r.text()
                    )),
                    Ok(r) if r.status == 429 => Err(anyhow!(
                        "registration keeps being rate limited (429): start the server with \
                         HELLOJOHN_RATE_LIMIT_ENABLED=false for the bench"
                    )),
                    Ok(r) => Err(anyhow!(
                        "registration of {} answered {}: {}",
                        bench_email(i),
                        r.status,
                        r.text()
                    )),
                    Err(e) => Err(anyhow!("registration of {}: {e}", bench_email(i))),
                };
                (client, result)
            }
        },
    )
    .await?;
    let created = results
        .iter()
        .filter(|r| matches!(r, Registered::Created))
        .count();
    let outcome = SeedOutcome {
        created,
        existing: users - created,
    };
    if outcome.existing > 0 {
        // Users left by an earlier seed only help if they have this password.
        let mut client = crate::client::Client::new(target.clone());
        let body = Bytes::from(
            serde_json::json!({
                "tenant_id": creds.tenant_id,
                "client_id": creds.client_id,
                "email": bench_email(0),
                "password": creds.password,
            })
            .to_string(),
        );
        let reply = client
            .send(|t| t.request(Method::POST, "/v2/auth/login", Some(body.clone()), &[]))
            .await?;
        if reply.status == 401 {
            bail!(
                "{} already exists but does not sign in with this password: pass the --password \
                 of the earlier seed",
                bench_email(0)
            );
        }
    }
    Ok(outcome)
}
