//! `hj migrate`, `hj tenant`: thin wrappers over the store trait (`hj client` is `client`).
//! A tenant's issuer mode (`--issuer-mode global|path`) is documented in docs/security.md.

use anyhow::{bail, Context as _};
use clap::ArgMatches;
use engine::config::Config;
use store::{IssuerMode, Store, Tenant};

pub async fn migrate(store: &dyn Store) -> anyhow::Result<()> {
    let before = store.migration_status().await?;
    let after = store.migrate().await.context("migrating")?;
    let applied: Vec<i64> = after
        .applied
        .iter()
        .copied()
        .filter(|v| !before.applied.contains(v))
        .collect();
    if applied.is_empty() {
        println!(
            "{}: schema is up to date (version {:?})",
            store.backend(),
            after.applied.last()
        );
    } else {
        println!("{}: applied migrations {applied:?}", store.backend());
    }
    Ok(())
}

pub async fn migrate_status(store: &dyn Store) -> anyhow::Result<()> {
    let s = store.migration_status().await?;
    println!("backend: {}", store.backend());
    println!("applied: {:?}", s.applied);
    println!("pending: {:?}", s.pending());
    if !s.unknown().is_empty() {
        println!("unknown (applied by a newer hj): {:?}", s.unknown());
    }
    // Which releases serve on this schema: the one question before a rollback.
    let (can, cannot) = storage::releases::compatible(&s.applied);
    println!("releases that can run on this schema: {}", can.join(", "));
    for (version, why) in cannot {
        println!("cannot run on it: {version} ({why})");
    }
    if !s.unknown().is_empty() {
        println!(
            "this hj ({}) runs on it if no migration above is a contract one: ask the newer hj",
            engine::VERSION
        );
    }
    Ok(())
}

/// The audit entry of a change made with the CLI (`actor_type` `cli`): the operating-system
/// user who ran it (`$USER`) is the actor's name; the store names the target.
pub fn cli_audit(action: &str, now: i64) -> store::AuditEntry {
    let mut entry = store::AuditEntry::new(action, "cli", now);
    entry.actor_name = std::env::var("USER").ok().filter(|user| !user.is_empty());
    entry
}

use auth::client_rules::valid_slug;

pub async fn tenant_create(
    store: &dyn Store,
    config: &Config,
    m: &ArgMatches,
) -> anyhow::Result<()> {
    let slug = m
        .get_one::<String>("slug")
        .map(String::as_str)
        .unwrap_or_default();
    if !valid_slug(slug) {
        bail!("slug {slug:?} must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'");
    }
    let name = m
        .get_one::<String>("name")
        .cloned()
        .unwrap_or_else(|| slug.to_string());
    let mode = issuer_mode(m)?;
    let now = engine::unix_now();
    let audit = cli_audit("tenant.create", now);
    let mut t = match store
        .create_tenant(slug, &name, Default::default(), now, Some(audit))
        .await
    {
        Err(store::StoreError::Conflict(_)) => {
            bail!("a tenant with slug {slug:?} already exists")
        }
        other => other?,
    };
    if let Some(mode) = mode {
        set_issuer_mode(store, config, &mut t, mode).await?;
    }
    print_tenant(&t);
    Ok(())
}

/// `hj tenant update --slug S [--issuer-mode global|path]`.
pub async fn tenant_update(
    store: &dyn Store,
    config: &Config,
    m: &ArgMatches,
) -> anyhow::Result<()> {
    let slug = m
        .get_one::<String>("slug")
        .map(String::as_str)
        .unwrap_or_default();
    let Some(mut t) = store.find_tenant(slug).await?.filter(|t| t.slug == slug) else {
        bail!("no tenant with slug {slug:?}")
    };
    let Some(mode) = issuer_mode(m)? else {
        bail!("nothing to change: give --issuer-mode global|path")
    };
    set_issuer_mode(store, config, &mut t, mode).await?;
    print_tenant(&t);
    Ok(())
}

pub async fn tenant_list(store: &dyn Store) -> anyhow::Result<()> {
    println!("ID\tSLUG\tNAME\tISSUER_MODE");
    for t in store.list_tenants().await? {
        print_tenant(&t);
    }
    Ok(())
}

fn print_tenant(t: &Tenant) {
    println!("{}\t{}\t{}\t{}", t.id, t.slug, t.name, t.issuer_mode);
}

fn issuer_mode(m: &ArgMatches) -> anyhow::Result<Option<IssuerMode>> {
    match m.get_one::<String>("issuer-mode") {
        None => Ok(None),
        Some(name) => match IssuerMode::parse(name) {
            Some(mode) => Ok(Some(mode)),
            None => bail!("--issuer-mode must be global or path, not {name:?}"),
        },
    }
}

/// Switches a tenant's issuer mode. A tenant entering path mode first gets its own signing
/// keys (sealed under the master key like the global ones), so that no instance sees it in
/// path mode without them; running instances switch at their next key reload (30 s).
async fn set_issuer_mode(
    store: &dyn Store,
    config: &Config,
    t: &mut Tenant,
    mode: IssuerMode,
) -> anyhow::Result<()> {
    if mode == IssuerMode::Path {
        let master = engine::master_key(config, store)?;
        auth::keys::create_tenant_keys(store, &master, t.id, engine::unix_now())
            .await
            .context("creating the tenant's signing keys")?;
    }
    if !store.set_tenant_issuer_mode(t.id, mode).await? {
        bail!("no tenant with slug {:?}", t.slug);
    }
    t.issuer_mode = mode;
    Ok(())
}
