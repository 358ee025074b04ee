//! `hj keys`: the token-signing keys in the configured store (list, rotate).

use anyhow::bail;
use auth::keys::{rotate_for, KeyState, SigningAlg};
use clap::{Arg, ArgMatches, Command};
use engine::config::Config;
use protocol::webhook::rfc3339;
use store::{IssuerMode, Store};
use uuid::Uuid;

fn tenant_arg() -> Arg {
    Arg::new("tenant")
        .long("tenant")
        .value_name("SLUG")
        .help("The own keys of this tenant (issuer mode path) instead of the global keys")
}

pub fn command() -> Command {
    Command::new("keys")
        .about("Manage the token-signing keys in the configured store")
        .subcommand_required(true)
        .subcommand(
            Command::new("list")
                .about(
                    "List the signing keys: kid, algorithm, created, activates, retired, state \
                     (pending, active, retiring, expired)",
                )
                .arg(tenant_arg()),
        )
        .subcommand(
            Command::new("rotate")
                .about(
                    "Add a new signing key per algorithm, published at once and signing after \
                     HELLOJOHN_KEY_PUBLISH_DELAY, when the current key retires",
                )
                .arg(
                    Arg::new("alg")
                        .long("alg")
                        .value_parser(["EdDSA", "RS256", "all"])
                        .default_value("all")
                        .help("Which keys: EdDSA (access tokens), RS256 (ID tokens) or all"),
                )
                .arg(tenant_arg()),
        )
}

pub async fn run(store: &dyn Store, config: &Config, m: &ArgMatches) -> anyhow::Result<()> {
    match m.subcommand() {
        Some(("list", m)) => list(store, config, m).await,
        Some(("rotate", m)) => rotate_keys(store, config, m).await,
        _ => bail!("unknown command"),
    }
}

/// The owner `--tenant` names: `None` for the global keys, else a tenant in issuer mode path
/// (`rotate`) or any tenant (`list`).
async fn owner(store: &dyn Store, m: &ArgMatches, rotating: bool) -> anyhow::Result<Option<Uuid>> {
    let Some(slug) = m.get_one::<String>("tenant") else {
        return Ok(None);
    };
    let Some(tenant) = store.find_tenant(slug).await?.filter(|t| t.slug == *slug) else {
        bail!("no tenant with slug {slug:?}")
    };
    if rotating && tenant.issuer_mode != IssuerMode::Path {
        bail!(
            "tenant {slug:?} is in issuer mode {}: the global keys sign its tokens \
             (hj keys rotate without --tenant)",
            tenant.issuer_mode
        );
    }
    Ok(Some(tenant.id))
}

async fn list(store: &dyn Store, config: &Config, m: &ArgMatches) -> anyhow::Result<()> {
    let owner = owner(store, m, false).await?;
    let now = engine::unix_now();
    let lifetime = i64::try_from(config.signed_token_lifetime().as_secs()).unwrap_or(i64::MAX);
    let keys = store.list_signing_keys().await?;
    for key in keys.into_iter().filter(|k| k.tenant_id == owner) {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            key.kid,
            key.alg,
            rfc3339(key.created_at),
            rfc3339(key.activates_at),
            key.retired_at
                .map(rfc3339)
                .unwrap_or_else(|| "-".to_string()),
            KeyState::of(&key, now, lifetime).as_str(),
        );
    }
    Ok(())
}

async fn rotate_keys(store: &dyn Store, config: &Config, m: &ArgMatches) -> anyhow::Result<()> {
    let algs: Vec<SigningAlg> = match m.get_one::<String>("alg").map(String::as_str) {
        Some("all") | None => SigningAlg::ALL.to_vec(),
        Some(name) => match SigningAlg::parse(name) {
            Some(alg) => vec![alg],
            None => bail!("unknown algorithm {name:?} (EdDSA, RS256 or all)"),
        },
    };
    let owner = owner(store, m, true).await?;
    let master = engine::master_key(config, store)?;
    let now = engine::unix_now();
    for alg in algs {
        let rotation = {
            let mut audit = crate::admin::cli_audit("signing_key.rotate", now);
            audit.tenant_id = owner;
            audit.target_type = Some("signing_key".to_string());
            audit.target_id = Some(alg.as_str().to_string());
            rotate_for(
                store,
                &master,
                owner,
                alg,
                now,
                config.key_publish_delay,
                Some(audit),
            )
            .await?
        };
        println!(
            "{}\t{}\tsigns from {}\t{} key(s) retire then",
            rotation.kid,
            rotation.alg,
            rfc3339(rotation.activates_at),
            rotation.retired
        );
    }
    Ok(())
}
