//! `hj migrate`, `hj tenant`: thin wrappers over the store trait (`hj client` is `client`).

use anyhow::{bail, Context as _};
use clap::ArgMatches;
use storage::Store;

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
    Ok(())
}

fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 63
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

pub async fn tenant_create(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
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
    let t = match store.create_tenant(slug, &name, engine::unix_now()).await {
        Err(storage::StoreError::Conflict(_)) => {
            bail!("a tenant with slug {slug:?} already exists")
        }
        other => other?,
    };
    println!("{}\t{}\t{}", t.id, t.slug, t.name);
    Ok(())
}

pub async fn tenant_list(store: &dyn Store) -> anyhow::Result<()> {
    println!("ID\tSLUG\tNAME");
    for t in store.list_tenants().await? {
        println!("{}\t{}\t{}", t.id, t.slug, t.name);
    }
    Ok(())
}
