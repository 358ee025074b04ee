//! `hj webhook`: endpoints and deliveries, through the store trait.

use anyhow::{bail, Context as _};
use clap::{Arg, ArgMatches, Command};
use engine::config::Config;
use engine::webhook::{parse_event_list, seal_secret, send, signature, ssrf};
use protocol::webhook::rfc3339;
use store::{DeliveryFilter, DeliveryStatus, NewWebhookEndpoint, Store};
use uuid::Uuid;

pub fn command() -> Command {
    Command::new("webhook")
        .about("Manage webhook endpoints and deliveries in the configured store")
        .subcommand_required(true)
        .subcommand(
            Command::new("create")
                .about("Create an endpoint; prints its id (and its secret when generated)")
                .arg(Arg::new("tenant").long("tenant").required(true).help("Tenant slug or id"))
                .arg(Arg::new("url").long("url").required(true).help("http:// or https:// URL that receives the POSTs"))
                .arg(
                    Arg::new("events")
                        .long("events")
                        .required(true)
                        .help("Comma-separated event types (user.register, user.login, user.login_failed, user.logout, user.logout_all, token.reuse_detected), or * for all"),
                )
                .arg(
                    Arg::new("secret")
                        .long("secret")
                        .help("Signing secret (16+ printable characters); default: a new whsec_... secret, printed once"),
                ),
        )
        .subcommand(
            Command::new("list")
                .about("List endpoints")
                .arg(Arg::new("tenant").long("tenant").help("Only this tenant (slug or id)")),
        )
        .subcommand(
            Command::new("delete")
                .about("Delete an endpoint and its deliveries")
                .arg(Arg::new("id").required(true).help("Endpoint id")),
        )
        .subcommand(
            Command::new("deliveries")
                .about("List deliveries, newest first: status, attempts, last error")
                .arg(
                    Arg::new("status")
                        .long("status")
                        .value_parser(["pending", "failed", "delivered", "exhausted"])
                        .help("Only deliveries in this state"),
                )
                .arg(
                    Arg::new("limit")
                        .long("limit")
                        .default_value("50")
                        .value_parser(clap::value_parser!(u32).range(1..=100_000))
                        .help("At most this many"),
                )
                .arg(Arg::new("tenant").long("tenant").help("Only this tenant (slug or id)")),
        )
        .subcommand(
            Command::new("redeliver")
                .about("Queue a delivery again (same delivery id, attempts from zero), whatever its state")
                .arg(Arg::new("id").required(true).help("Delivery id")),
        )
}

fn arg<'a>(m: &'a ArgMatches, name: &str) -> &'a str {
    m.get_one::<String>(name)
        .map(String::as_str)
        .unwrap_or_default()
}

async fn tenant(store: &dyn Store, key: &str) -> anyhow::Result<store::Tenant> {
    store
        .find_tenant(key)
        .await?
        .with_context(|| format!("no tenant {key:?} (hj tenant list shows them)"))
}

fn id(m: &ArgMatches, what: &str) -> anyhow::Result<Uuid> {
    let text = arg(m, "id");
    Uuid::parse_str(text).with_context(|| format!("{text:?} is not a {what} id"))
}

/// The CLI's audit entry about webhook endpoint `id`.
fn audit(action: &str, tenant: Option<Uuid>, id: Uuid) -> store::AuditEntry {
    let mut entry = crate::admin::cli_audit(action, engine::unix_now());
    entry.tenant_id = tenant;
    entry.target_type = Some("webhook".to_string());
    entry.target_id = Some(id.to_string());
    entry
}

fn millis(ms: i64) -> String {
    rfc3339(ms.div_euclid(1000))
}

pub async fn run(store: &dyn Store, config: &Config, m: &ArgMatches) -> anyhow::Result<()> {
    match m.subcommand() {
        Some(("create", m)) => create(store, config, m).await,
        Some(("list", m)) => list(store, m).await,
        Some(("delete", m)) => delete(store, m).await,
        Some(("deliveries", m)) => deliveries(store, m).await,
        Some(("redeliver", m)) => redeliver(store, m).await,
        _ => bail!("unknown command"),
    }
}

async fn create(store: &dyn Store, config: &Config, m: &ArgMatches) -> anyhow::Result<()> {
    let tenant = tenant(store, arg(m, "tenant")).await?;
    let url = arg(m, "url").trim().to_string();
    let target = send::parse_url(&url).map_err(anyhow::Error::msg)?;
    // An address (in any form the resolver reads) or a localhost name can be refused now; any
    // other name is resolved and checked at each delivery.
    ssrf::check_host(&target.host, config.webhook_allow_private).map_err(anyhow::Error::msg)?;
    let events = parse_event_list(arg(m, "events")).map_err(anyhow::Error::msg)?;
    let (secret, generated) = match m.get_one::<String>("secret") {
        Some(s) => {
            signature::check_secret(s).map_err(anyhow::Error::msg)?;
            (s.clone(), false)
        }
        None => (signature::generate_secret(), true),
    };
    let master = engine::master_key(config, store)?;
    let id = Uuid::now_v7();
    let endpoint = store
        .create_webhook_endpoint(
            NewWebhookEndpoint {
                id,
                tenant_id: tenant.id,
                url,
                events,
                secret_encrypted: seal_secret(&master, id, &secret)
                    .context("cannot encrypt the secret")?,
            },
            engine::unix_now(),
            Some(audit("webhook.create", Some(tenant.id), id)),
        )
        .await?;
    println!(
        "{}\t{}\t{}\t{}",
        endpoint.id,
        tenant.slug,
        endpoint.url,
        endpoint.events.join(",")
    );
    if generated {
        println!("secret: {secret}");
        eprintln!(
            "hj: keep the secret: it is shown only now (receivers verify signatures with it)"
        );
    }
    Ok(())
}

async fn list(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let tenants = store.list_tenants().await?;
    let filter = match m.get_one::<String>("tenant") {
        Some(key) => Some(tenant(store, key).await?.id),
        None => None,
    };
    println!("ID\tTENANT\tURL\tEVENTS\tCREATED");
    for e in store.list_webhook_endpoints(filter).await? {
        let slug = tenants
            .iter()
            .find(|t| t.id == e.tenant_id)
            .map_or("?", |t| t.slug.as_str());
        println!(
            "{}\t{slug}\t{}\t{}\t{}",
            e.id,
            e.url,
            e.events.join(","),
            rfc3339(e.created_at)
        );
    }
    Ok(())
}

async fn delete(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let id = id(m, "webhook endpoint")?;
    if !store
        .delete_webhook_endpoint(id, Some(audit("webhook.delete", None, id)))
        .await?
    {
        bail!("no webhook endpoint {id} (hj webhook list shows them)");
    }
    println!("deleted {id}");
    Ok(())
}

async fn deliveries(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let status = m
        .get_one::<String>("status")
        .and_then(|s| DeliveryStatus::parse(s));
    let tenant_id = match m.get_one::<String>("tenant") {
        Some(key) => Some(tenant(store, key).await?.id),
        None => None,
    };
    let limit = m.get_one::<u32>("limit").copied().unwrap_or(50);
    let list = store
        .list_webhook_deliveries(DeliveryFilter {
            endpoint_id: None,
            status,
            tenant_id,
            limit,
        })
        .await?;
    println!("ID\tEVENT\tSTATUS\tATTEMPTS\tNEXT_ATTEMPT\tLAST_STATUS\tLAST_ERROR\tURL");
    for d in list {
        let next = match d.status {
            DeliveryStatus::Pending | DeliveryStatus::Failed => millis(d.next_attempt_at_ms),
            DeliveryStatus::Delivered | DeliveryStatus::Exhausted => "-".to_string(),
        };
        let last_status = d
            .last_status_code
            .map_or_else(|| "-".to_string(), |c| c.to_string());
        // One line per delivery: errors lose their line breaks and tabs.
        let error: String = d
            .last_error
            .as_deref()
            .unwrap_or("-")
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        println!(
            "{}\t{}\t{}\t{}\t{next}\t{last_status}\t{error}\t{}",
            d.id, d.event_type, d.status, d.attempts, d.url
        );
    }
    Ok(())
}

async fn redeliver(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let id = id(m, "delivery")?;
    let now_ms = engine::unix_now().saturating_mul(1000);
    if !store.redeliver_webhook(id, now_ms).await? {
        bail!("no delivery {id} (hj webhook deliveries shows them)");
    }
    println!("queued {id} again");
    Ok(())
}
