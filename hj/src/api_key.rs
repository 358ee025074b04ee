//! `hj api-key`: the admin API's keys, through the store trait. The token is made by
//! `auth::api_keys`, printed once, and only its SHA-256 is stored; each change is written with
//! its audit entry (actor `cli`, the OS user's name).

use anyhow::{bail, Context as _};
use auth::api_keys::{self, Scope};
use clap::{Arg, ArgMatches, Command};
use protocol::webhook::rfc3339;
use store::{ApiKey, AuditEntry, EventMeta, MetaValue, NewApiKey, Store};
use uuid::Uuid;

/// The longest key name: a label for people, shown in lists.
const MAX_NAME: usize = 100;

/// The longest lifetime `--expires-in` takes: 100 years, as the server's own durations.
const MAX_LIFETIME: i64 = 100 * 365 * 86_400;

pub fn command() -> Command {
    Command::new("api-key")
        .about("Manage the admin API's keys in the configured store")
        .subcommand_required(true)
        .subcommand(
            Command::new("create")
                .about("Create a key; prints its token once (api_key=hjk_...), then only its prefix is shown")
                .arg(Arg::new("name").long("name").required(true).help("What the key is for (1-100 characters)"))
                .arg(
                    Arg::new("scope")
                        .long("scope")
                        .required(true)
                        .help("admin (everything), readonly (every read) or tenant:SLUG (everything in one existing tenant)"),
                )
                .arg(
                    Arg::new("expires-in")
                        .long("expires-in")
                        .value_name("DURATION")
                        .help("Lifetime such as 24h, 7d or 30d (units s, m, h, d); default: no expiry"),
                ),
        )
        .subcommand(Command::new("list").about(
            "List keys, newest first, revoked and expired ones included (never their tokens)",
        ))
        .subcommand(
            Command::new("revoke")
                .about("Revoke a key: requests with its token are refused from now on")
                .arg(Arg::new("id").required(true).help("Key id (hj api-key list shows them)")),
        )
}

pub async fn run(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    match m.subcommand() {
        Some(("create", m)) => create(store, m).await,
        Some(("list", _)) => list(store).await,
        Some(("revoke", m)) => revoke(store, m).await,
        _ => bail!("unknown command"),
    }
}

fn arg<'a>(m: &'a ArgMatches, name: &str) -> &'a str {
    m.get_one::<String>(name)
        .map(String::as_str)
        .unwrap_or_default()
}

/// An audit entry of this command about key `id`: the actor is the CLI run by the OS user.
fn audit(action: &str, id: Uuid, metadata: EventMeta, now: i64) -> AuditEntry {
    let mut entry = crate::admin::cli_audit(action, now);
    entry.target_type = Some("api_key".to_string());
    entry.target_id = Some(id.to_string());
    entry.metadata = metadata;
    entry
}

/// A scope as `--scope` gives it; a tenant's must name an existing tenant by its slug.
async fn scope(store: &dyn Store, text: &str) -> anyhow::Result<Scope> {
    let Some(scope) = Scope::parse(text) else {
        bail!(
            "--scope must be admin, readonly or tenant:SLUG (a-z, 0-9 and '-', at most 64), \
             not {text:?}"
        )
    };
    if let Scope::Tenant(slug) = &scope {
        // By slug only: `find_tenant` also takes an id, and a slug may look like one.
        let found = store.find_tenant(slug).await?.filter(|t| &t.slug == slug);
        if found.is_none() {
            bail!("--scope {text}: no tenant with slug {slug:?} (hj tenant list shows them)");
        }
    }
    Ok(scope)
}

fn name(m: &ArgMatches) -> anyhow::Result<String> {
    let name = arg(m, "name").trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        bail!("--name must be 1-{MAX_NAME} characters without control characters");
    }
    Ok(name.to_string())
}

async fn create(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let name = name(m)?;
    let scope = scope(store, arg(m, "scope")).await?.as_string();
    let lifetime = match m.get_one::<String>("expires-in") {
        Some(text) => {
            Some(parse_lifetime(text).map_err(|e| anyhow::anyhow!("--expires-in {text:?}: {e}"))?)
        }
        None => None,
    };
    let now = engine::unix_now();
    let (token, key_prefix, key_hash) = api_keys::generate();
    let key = NewApiKey {
        id: Uuid::now_v7(),
        name,
        key_prefix,
        key_hash,
        scope,
        created_by: "cli".to_string(),
        created_at: now,
        expires_at: lifetime.map(|secs| now + secs),
    };
    let mut metadata = EventMeta::new();
    metadata.insert("name", key.name.as_str());
    metadata.insert("scope", key.scope.as_str());
    metadata.insert("key_prefix", key.key_prefix.as_str());
    if let Some(at) = key.expires_at {
        metadata.insert("expires_at", MetaValue::Int(at));
    }
    let created = store
        .create_api_key(key.clone(), audit("api_key.create", key.id, metadata, now))
        .await
        .context("creating the API key")?;
    println!("id={}", created.id);
    println!("name={}", created.name);
    println!("key_prefix={}", created.key_prefix);
    println!("scope={}", created.scope);
    println!("expires_at={}", time_or_dash(created.expires_at));
    println!("api_key={token}");
    eprintln!("hj: store the API key now: it is not shown again (only its hash is kept)");
    Ok(())
}

fn time_or_dash(at: Option<i64>) -> String {
    at.map_or_else(|| "-".to_string(), rfc3339)
}

async fn list(store: &dyn Store) -> anyhow::Result<()> {
    let now = engine::unix_now();
    println!("ID\tNAME\tKEY_PREFIX\tSCOPE\tCREATED_BY\tCREATED\tLAST_USED\tEXPIRES\tACTIVE");
    for k in store.list_api_keys().await? {
        println!("{}", row(&k, now));
    }
    Ok(())
}

fn row(k: &ApiKey, now: i64) -> String {
    // Names are checked at creation; one written otherwise still keeps to one line and column.
    let name: String = k
        .name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "{}\t{name}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        k.id,
        k.key_prefix,
        k.scope,
        k.created_by,
        rfc3339(k.created_at),
        time_or_dash(k.last_used_at),
        time_or_dash(k.expires_at),
        if k.is_active(now) { "yes" } else { "no" },
    )
}

async fn revoke(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let text = arg(m, "id");
    let id = Uuid::parse_str(text).with_context(|| format!("{text:?} is not an API key id"))?;
    let Some(key) = store.get_api_key(id).await? else {
        bail!("no API key {id} (hj api-key list shows them)")
    };
    if let Some(at) = key.revoked_at {
        println!("{id} was already revoked at {}", rfc3339(at));
        return Ok(());
    }
    // The store revokes (and audits) only a key not revoked in between.
    let now = engine::unix_now();
    store
        .revoke_api_key(id, now, audit("api_key.revoke", id, EventMeta::new(), now))
        .await?
        .with_context(|| format!("API key {id} was deleted meanwhile"))?;
    println!("revoked {id}");
    Ok(())
}

/// A lifetime such as `24h`, `7d`, `30d` or `1d12h`: numbers with units `s`, `m`, `h`, `d`, in
/// seconds; more than zero, at most 100 years.
fn parse_lifetime(text: &str) -> Result<i64, String> {
    let bad = || "not a duration like 24h, 7d or 30d (units s, m, h, d)".to_string();
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: i64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let scale = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        total = number
            .checked_mul(scale)
            .and_then(|secs| total.checked_add(secs))
            .filter(|&t| t <= MAX_LIFETIME)
            .ok_or_else(|| "at most 100 years".to_string())?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    if total == 0 {
        return Err("must be more than zero".to_string());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_lifetime;

    #[test]
    fn lifetimes_in_seconds() {
        for (text, secs) in [
            ("24h", 86_400),
            ("7d", 7 * 86_400),
            ("30d", 30 * 86_400),
            ("1d12h", 36 * 3600),
            ("90m", 5400),
            ("45s", 45),
            (" 2d ", 2 * 86_400),
            ("36500d", 36_500 * 86_400),
        ] {
            assert_eq!(parse_lifetime(text), Ok(secs), "{text}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "d",
            "7",
            "7 d",
            "7D",
            "1.5d",
            "-1d",
            "+1d",
            "1w",
            "1y",
            "0d",
            "0s",
            "1d-",
            "7dd",
            "d7",
            "36501d",
            "99999999999999999999d",
            "9223372036854775807s",
        ] {
            assert!(parse_lifetime(text).is_err(), "{text:?}");
        }
    }
}
