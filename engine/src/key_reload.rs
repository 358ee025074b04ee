//! The signing-key reloader: every instance reads the signing keys again every
//! [`crate::config::KEY_RELOAD_INTERVAL`], so a rotation made anywhere (`hj keys rotate`) reaches
//! its JWKS long before the new key signs, and expired keys leave it.
//!
//! It runs on a thread of its own with a small runtime, like the webhook worker, and lives
//! until the server's [`crate::app::App`] is gone (the lifecycle channel closes): store
//! connections it opened may be in a pool the shards share, so it outlives them.

use std::sync::Arc;
use std::time::Duration;

use auth::KeyRing;
use storage::Store;
use tokio::sync::watch;

use crate::app::Phase;

/// Starts the reloader of `keys` from `store`, every `interval`.
pub fn spawn(
    keys: Arc<KeyRing>,
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
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(interval) => {
                            if let Err(e) = keys.reload(store.as_ref(), crate::unix_now()).await {
                                tracing::warn!(
                                    error = %e,
                                    "cannot reload the signing keys; keeping the current ones"
                                );
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
