//! `hj keys`: the token-signing keys in the configured store (list, rotate).

use anyhow::bail;
use auth::keys::{rotate, KeyState, SigningAlg};
use clap::{Arg, ArgMatches, Command};
use engine::config::Config;
use protocol::webhook::rfc3339;
use storage::Store;

pub fn command() -> Command {
    Command::new("keys")
        .about("Manage the token-signing keys in the configured store")
        .subcommand_required(true)
        .subcommand(Command::new("list").about(
            "List the signing keys: kid, algorithm, created, activates, retired, state \
             (pending, active, retiring, expired)",
        ))
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
                ),
        )
}

pub async fn run(store: &dyn Store, config: &Config, m: &ArgMatches) -> anyhow::Result<()> {
    match m.subcommand() {
        Some(("list", _)) => list(store, config).await,
        Some(("rotate", m)) => rotate_keys(store, config, m).await,
        _ => bail!("unknown command"),
    }
}

async fn list(store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    let now = engine::unix_now();
    let lifetime = i64::try_from(config.signed_token_lifetime().as_secs()).unwrap_or(i64::MAX);
    for key in store.list_signing_keys().await? {
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
    let master = engine::master_key(config, store)?;
    let now = engine::unix_now();
    for alg in algs {
        let rotation = rotate(store, &master, alg, now, config.key_publish_delay).await?;
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
