//! `hj admin`: admin accounts, on the store directly (the break-glass path, and how the first
//! admin is made). `create` prints the account, and a generated password once when none was
//! given on stdin.

use std::io::BufRead as _;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Arg, ArgAction, ArgMatches, Command};
use engine::config::Config;
use protocol::webhook::rfc3339;
use store::{AdminAccount, AuditEntry, NewAdmin, Store};
use uuid::Uuid;

pub fn command() -> Command {
    Command::new("admin")
        .about("Manage admin accounts (the admin API's and console's operators) in the configured store")
        .subcommand_required(true)
        .subcommand(
            Command::new("create")
                .about("Create an admin account; prints it (and a generated password, once)")
                .arg(Arg::new("email").long("email").required(true).help("The admin's email (their sign-in name)"))
                .arg(
                    Arg::new("scope")
                        .long("scope")
                        .default_value("admin")
                        .help("admin, readonly or tenant:{slug}"),
                )
                .arg(Arg::new("name").long("name").help("Display name"))
                .arg(
                    Arg::new("password-stdin")
                        .long("password-stdin")
                        .action(ArgAction::SetTrue)
                        .help("Read the password from the first line of stdin; default: a generated one, printed once"),
                ),
        )
        .subcommand(Command::new("list").about("List admin accounts"))
}

pub async fn run(store: &Arc<dyn Store>, config: &Config, m: &ArgMatches) -> anyhow::Result<()> {
    match m.subcommand() {
        Some(("create", m)) => create(store, config, m).await,
        Some(("list", _)) => list(store.as_ref()).await,
        _ => bail!("unknown admin command"),
    }
}

/// The audit entry of an act of the command line about admin `id`.
fn audit(action: &str, id: Uuid) -> AuditEntry {
    let mut entry = crate::admin::cli_audit(action, engine::unix_now());
    entry.target_type = Some("admin".to_string());
    entry.target_id = Some(id.to_string());
    entry
}

fn row(a: &AdminAccount) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        a.id,
        a.email,
        a.scope,
        if a.disabled_at.is_some() {
            "disabled"
        } else {
            "active"
        },
        rfc3339(a.created_at)
    )
}

/// A password that meets the policy: 32 random bytes as base64url (43 characters).
fn generated_password() -> String {
    loop {
        let (p, _) = auth::tokens::new_opaque_token();
        if auth::password::check_policy(&p).is_ok() {
            return p;
        }
    }
}

async fn create(store: &Arc<dyn Store>, config: &Config, m: &ArgMatches) -> anyhow::Result<()> {
    let email_arg = m
        .get_one::<String>("email")
        .map(String::as_str)
        .unwrap_or("");
    let Some(email) = auth::flows::normalize_email(email_arg) else {
        bail!("{email_arg:?} is not an email address");
    };
    let scope = m
        .get_one::<String>("scope")
        .map(String::as_str)
        .unwrap_or("admin");
    let Some(parsed) = auth::api_keys::Scope::parse(scope) else {
        bail!("scope {scope:?} must be admin, readonly or tenant:{{slug}}");
    };
    if let auth::api_keys::Scope::Tenant(slug) = &parsed {
        if store
            .find_tenant(slug)
            .await?
            .is_none_or(|t| &t.slug != slug)
        {
            bail!("no tenant has the slug {slug:?}");
        }
    }
    let name = m.get_one::<String>("name").cloned();
    let (password, generated) = if m.get_flag("password-stdin") {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        (line.trim_end_matches(['\r', '\n']).to_string(), false)
    } else {
        (generated_password(), true)
    };
    if let Err(v) = auth::password::check_policy(&password) {
        bail!("the password is refused: {v}");
    }
    // The server's Argon2 parameters, hashed off any event loop.
    let params = config.argon2_params();
    let pool = tokio::task::spawn_blocking(move || {
        auth::HashPool::new(
            1,
            params,
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(30),
            Arc::default(),
        )
    })
    .await
    .context("hash pool")?
    .map_err(|e| anyhow::anyhow!("hash pool: {e}"))?;
    let phc = pool
        .hash(auth::password::Password::new(password.clone()))
        .await
        .map_err(|_| anyhow::anyhow!("the hash pool refused the job"))?;
    let id = Uuid::now_v7();
    let admin = NewAdmin {
        id,
        email,
        name,
        scope: parsed.as_string(),
        password_hash: phc,
        created_at: engine::unix_now(),
    };
    let created = match store.create_admin(admin, audit("admin.create", id)).await {
        Err(store::StoreError::Conflict(_)) => bail!("an admin already has this email"),
        other => other?,
    };
    println!("{}", row(&created));
    if generated {
        println!("password={password}");
    }
    Ok(())
}

async fn list(store: &dyn Store) -> anyhow::Result<()> {
    for a in store.list_admins().await? {
        println!("{}", row(&a));
    }
    Ok(())
}
