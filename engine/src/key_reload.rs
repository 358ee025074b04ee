//! The signing-key reloader: every instance reads the signing keys again every
//! [`crate::config::KEY_RELOAD_INTERVAL`], so a rotation made anywhere (`hj keys rotate`) reaches
//! its JWKS long before the new key signs, and expired keys leave it. The tenants' issuer modes
//! come with them (`hj tenant update --issuer-mode`): a tenant entering path mode signs with its
//! own keys from the next reload on (made here if it has none), one leaving it with the global.
//!
//! It runs on a thread of its own with a small runtime, like the webhook worker, and lives
//! until the server's [`crate::app::App`] is gone (the lifecycle channel closes): store
//! connections it opened may be in a pool the shards share, so it outlives them.

use std::sync::Arc;
use std::time::Duration;

use auth::revocations::Revocations;
use auth::KeyRing;
use store::Store;
use tokio::sync::watch;

use crate::app::Phase;

/// How often the revoked access tokens are read again: how long a revocation made on another
/// instance may take to be refused here.
pub const REVOCATION_POLL: Duration = Duration::from_secs(5);

/// Starts the reloader of `keys` and of the clients' allowed `origins` from `store`, every
/// `interval`, and of `revocations` every [`REVOCATION_POLL`].
pub fn spawn(
    keys: Arc<KeyRing>,
    revocations: Arc<Revocations>,
    origins: Arc<crate::origins::ClientOrigins>,
    store: Arc<dyn Store>,
    interval: Duration,
    mut phase: watch::Receiver<Phase>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("hj-keys".to_string())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the signing-key reloader");
                    return;
                }
            };
            rt.block_on(async move {
                let tick = interval.min(REVOCATION_POLL);
                let mut next_keys = tokio::time::Instant::now() + interval;
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(tick) => {
                            let now = crate::unix_now();
                            if let Err(e) = revocations.refresh(store.as_ref(), now).await {
                                tracing::warn!(error = %e, "cannot read the revoked access tokens");
                            }
                            if tokio::time::Instant::now() < next_keys {
                                continue;
                            }
                            next_keys = tokio::time::Instant::now() + interval;
                            if let Err(e) = keys.reload(store.as_ref(), now).await {
                                tracing::warn!(
                                    error = %e,
                                    "cannot reload the signing keys; keeping the current ones"
                                );
                            }
                            if let Err(e) = origins.refresh(store.as_ref()).await {
                                tracing::warn!(error = %e, "cannot read the clients' origins");
                            }
                        }
                        // Draining changes nothing here; the closed channel (the server is
                        // gone) ends the thread.
                        changed = phase.changed() => if changed.is_err() { break },
                    }
                }
            });
        })
}
