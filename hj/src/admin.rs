//! `hj migrate`, `hj tenant`, `hj client`: thin wrappers over the store trait.

use anyhow::{bail, Context as _};
use clap::ArgMatches;
use storage::{NewClient, Store};

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

async fn find_tenant(store: &dyn Store, key: &str) -> anyhow::Result<storage::Tenant> {
    store
        .find_tenant(key)
        .await?
        .with_context(|| format!("no tenant {key:?} (hj tenant list shows them)"))
}

pub async fn client_create(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let tenant = find_tenant(
        store,
        m.get_one::<String>("tenant")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .await?;
    let client_id = m
        .get_one::<String>("client-id")
        .cloned()
        .unwrap_or_default();
    if client_id.is_empty()
        || client_id.len() > 128
        || client_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        bail!("client id must be 1-128 characters without spaces");
    }
    let scopes = m
        .get_one::<String>("scopes")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let uris: Vec<String> = m
        .get_many::<String>("post-logout-redirect-uri")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let created = store
        .create_client(
            NewClient {
                tenant_id: tenant.id,
                name: m
                    .get_one::<String>("name")
                    .cloned()
                    .unwrap_or_else(|| client_id.clone()),
                client_id,
                scopes,
                post_logout_redirect_uris: uris,
                access_token_ttl: None,
                refresh_token_ttl: None,
            },
            engine::unix_now(),
        )
        .await;
    let c = match created {
        Err(storage::StoreError::Conflict(_)) => {
            bail!("tenant {:?} already has that client id", tenant.slug)
        }
        other => other?,
    };
    println!(
        "{}\t{}\t{}\t{}",
        tenant.slug,
        c.client_id,
        c.name,
        c.scopes.join(" ")
    );
    Ok(())
}

pub async fn client_list(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let tenants = store.list_tenants().await?;
    let filter = match m.get_one::<String>("tenant") {
        Some(key) => Some(find_tenant(store, key).await?.id),
        None => None,
    };
    println!("TENANT\tCLIENT_ID\tNAME\tSCOPES");
    for c in store.list_clients(filter).await? {
        let slug = tenants
            .iter()
            .find(|t| t.id == c.tenant_id)
            .map_or("?", |t| t.slug.as_str());
        println!(
            "{slug}\t{}\t{}\t{}",
            c.client_id,
            c.name,
            c.scopes.join(" ")
        );
    }
    Ok(())
}
