//! `hj client`: create, update, list and delete clients (applications), and rotate the secret
//! of a confidential one, through the store trait. Input is checked before anything is
//! written (`client_rules`); a secret is printed once, as `client_secret=SECRET` on its own
//! line, and only its SHA-256 is stored.

use anyhow::{bail, Context as _};
use clap::{Arg, ArgAction, ArgMatches, Command};
use store::{Client, ClientChanges, ClientType, NewClient, SecretHash, SigningAlg, Store, Tenant};

use crate::admin::cli_audit;
use auth::client_rules as rules;

fn who(name: &'static str, about: &'static str) -> Command {
    Command::new(name)
        .about(about)
        .arg(
            Arg::new("tenant")
                .long("tenant")
                .required(true)
                .help("Tenant slug or id"),
        )
        .arg(
            Arg::new("client-id")
                .long("client-id")
                .required(true)
                .help("The client_id apps send"),
        )
}

fn ttl_arg(name: &'static str, what: &str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("SECS")
        .value_parser(rules::ttl)
        .help(format!(
            "{what} lifetime in seconds, overriding the server's; 'default' uses the server's"
        ))
}

/// A signature algorithm option: `EdDSA`, `RS256`, or `default` (the server's).
fn alg_arg(name: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("ALG")
        .value_parser(|v: &str| -> Result<Option<SigningAlg>, String> {
            if v == "default" {
                return Ok(None);
            }
            SigningAlg::parse(v)
                .map(Some)
                .ok_or_else(|| format!("{v:?} is not EdDSA, RS256 or default"))
        })
        .help(help)
}

/// The settings `create` and `update` share. `update` changes only what is given; a list
/// option given replaces the whole list.
fn settings(cmd: Command, update: bool) -> Command {
    let scopes = Arg::new("scopes")
        .long("scopes")
        .value_name("A,B")
        .help("Comma-separated scopes granted to tokens");
    let grants = Arg::new("grant-types")
        .long("grant-types")
        .value_name("LIST")
        .help(
            "Comma-separated grant types: authorization_code, refresh_token, client_credentials \
         (the last needs --confidential)",
        );
    let mut cmd = cmd
        .arg(Arg::new("name").long("name").help(if update {
            "Display name"
        } else {
            "Display name (default: the client id)"
        }))
        .arg(if update {
            scopes
        } else {
            scopes.default_value("openid,email,profile")
        })
        .arg(
            Arg::new("redirect-uri")
                .long("redirect-uri")
                .value_name("URI")
                .action(ArgAction::Append)
                .help(
                    "Allowed redirect_uri (repeatable): https://..., http:// only to localhost, \
                     127.0.0.1 or [::1], or a native app's scheme such as com.example.app:/cb; \
                     no fragment",
                ),
        )
        .arg(
            Arg::new("post-logout-redirect-uri")
                .long("post-logout-redirect-uri")
                .value_name("URI")
                .action(ArgAction::Append)
                .help("Allowed post_logout_redirect_uri (repeatable), same rules"),
        )
        .arg(
            Arg::new("allowed-origin")
                .long("allowed-origin")
                .value_name("ORIGIN")
                .action(ArgAction::Append)
                .help("Browser origin allowed to call the API, scheme://host[:port] (repeatable)"),
        )
        .arg(if update {
            grants
        } else {
            grants.default_value("authorization_code,refresh_token")
        })
        .arg(
            Arg::new("confidential")
                .long("confidential")
                .action(ArgAction::SetTrue)
                .help(if update {
                    "Make a public client confidential: a new secret is printed once"
                } else {
                    "A confidential client (a server): its secret is printed once"
                }),
        )
        .arg(
            Arg::new("third-party")
                .long("third-party")
                .action(ArgAction::SetTrue)
                .help("A third party's application: its tokens cannot manage the account, it cannot use the password API, and users consent to it on the hosted page"),
        )
        .arg(
            Arg::new("require-email-verification")
                .long("require-email-verification")
                .value_name("BOOL")
                .value_parser(clap::value_parser!(bool))
                .help("Sign-in through this client needs a verified email (true or false)"),
        )
        .arg(ttl_arg("access-token-ttl", "Access token"))
        .arg(ttl_arg("refresh-token-ttl", "Refresh token"))
        .arg(ttl_arg("id-token-ttl", "ID token"))
        .arg(alg_arg(
            "id-token-alg",
            "Signature of this client's ID tokens: RS256 (the default) or EdDSA; 'default' uses the server's",
        ))
        .arg(alg_arg(
            "access-token-alg",
            "Signature of this client's access tokens: EdDSA (the default) or RS256; 'default' uses the server's",
        ));
    if update {
        cmd = cmd
            .arg(
                Arg::new("public")
                    .long("public")
                    .action(ArgAction::SetTrue)
                    .conflicts_with("confidential")
                    .help("Make a confidential client public: its secret stops working"),
            )
            .arg(
                Arg::new("first-party")
                    .long("first-party")
                    .action(ArgAction::SetTrue)
                    .conflicts_with("third-party")
                    .help("Make a third-party client first-party again"),
            )
            .arg(clear(
                "redirect-uri",
                "clear-redirect-uris",
                "redirect URIs",
            ))
            .arg(clear(
                "post-logout-redirect-uri",
                "clear-post-logout-redirect-uris",
                "post-logout redirect URIs",
            ))
            .arg(clear(
                "allowed-origin",
                "clear-allowed-origins",
                "allowed origins",
            ));
    }
    cmd
}

fn clear(list: &'static str, name: &'static str, what: &str) -> Arg {
    Arg::new(name)
        .long(name)
        .action(ArgAction::SetTrue)
        .conflicts_with(list)
        .help(format!("Remove every {what}"))
}

pub fn command() -> Command {
    Command::new("client")
        .about(
            "Manage clients (applications) in the configured store; running servers see a \
             change within 30 s",
        )
        .subcommand_required(true)
        .subcommand(settings(
            who(
                "create",
                "Create a client in a tenant; prints it (and its secret when confidential)",
            ),
            false,
        ))
        .subcommand(settings(
            who(
                "update",
                "Change a client: only the options given; a list option replaces the list",
            ),
            true,
        ))
        .subcommand(who(
            "rotate-secret",
            "Give a confidential client a new secret, printed once; the old one stops working",
        ))
        .subcommand(who(
            "delete",
            "Delete a client; its refresh tokens and sessions stop working",
        ))
        .subcommand(
            Command::new("list")
                .about("List clients, one tab-separated line each")
                .arg(
                    Arg::new("tenant")
                        .long("tenant")
                        .help("Only this tenant (slug or id)"),
                ),
        )
}

pub async fn run(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    match m.subcommand() {
        Some(("create", m)) => create(store, m).await,
        Some(("update", m)) => update(store, m).await,
        Some(("rotate-secret", m)) => rotate_secret(store, m).await,
        Some(("delete", m)) => delete(store, m).await,
        Some(("list", m)) => list(store, m).await,
        _ => bail!("unknown command"),
    }
}

fn arg<'a>(m: &'a ArgMatches, name: &str) -> Option<&'a str> {
    m.get_one::<String>(name).map(String::as_str)
}

fn many(m: &ArgMatches, name: &str) -> Option<Vec<String>> {
    m.get_many::<String>(name).map(|v| v.cloned().collect())
}

async fn find_tenant(store: &dyn Store, key: &str) -> anyhow::Result<Tenant> {
    store
        .find_tenant(key)
        .await?
        .with_context(|| format!("no tenant {key:?} (hj tenant list shows them)"))
}

/// The tenant and client named by `--tenant` and `--client-id`.
async fn find(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<(Tenant, Client)> {
    let tenant = find_tenant(store, arg(m, "tenant").unwrap_or_default()).await?;
    let client_id = arg(m, "client-id").unwrap_or_default();
    let client = store
        .find_client(tenant.id, client_id)
        .await?
        .with_context(|| format!("no client {client_id:?} in tenant {:?}", tenant.slug))?;
    Ok((tenant, client))
}

/// A list option: the checked list when given, `Some(empty)` when its `--clear-...` is.
fn list_option(
    m: &ArgMatches,
    name: &str,
    clear: Option<&str>,
    check: fn(Vec<String>) -> Result<Vec<String>, String>,
) -> anyhow::Result<Option<Vec<String>>> {
    if clear.is_some_and(|c| m.get_flag(c)) {
        return Ok(Some(Vec::new()));
    }
    many(m, name)
        .map(check)
        .transpose()
        .map_err(anyhow::Error::msg)
}

/// The settings given on the command line, checked, as changes. `update` adds `--public`
/// and the `--clear-...` flags.
fn changes_from(m: &ArgMatches, update: bool) -> anyhow::Result<ClientChanges> {
    let clear = |name| update.then_some(name);
    let ttl = |name| m.get_one::<Option<i64>>(name).copied();
    let client_type = if m.get_flag("confidential") {
        Some(ClientType::Confidential)
    } else if update && m.get_flag("public") {
        Some(ClientType::Public)
    } else {
        None
    };
    Ok(ClientChanges {
        name: arg(m, "name")
            .map(rules::name)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        scopes: arg(m, "scopes")
            .map(rules::scopes)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        redirect_uris: list_option(
            m,
            "redirect-uri",
            clear("clear-redirect-uris"),
            rules::redirect_uris,
        )?,
        post_logout_redirect_uris: list_option(
            m,
            "post-logout-redirect-uri",
            clear("clear-post-logout-redirect-uris"),
            rules::redirect_uris,
        )?,
        allowed_origins: list_option(
            m,
            "allowed-origin",
            clear("clear-allowed-origins"),
            rules::origins,
        )?,
        grant_types: arg(m, "grant-types")
            .map(rules::grant_types)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        client_type,
        secret_hash: None,
        require_email_verification: m.get_one::<bool>("require-email-verification").copied(),
        access_token_ttl: ttl("access-token-ttl"),
        refresh_token_ttl: ttl("refresh-token-ttl"),
        id_token_ttl: ttl("id-token-ttl"),
        id_token_alg: m.get_one::<Option<SigningAlg>>("id-token-alg").copied(),
        access_token_alg: m.get_one::<Option<SigningAlg>>("access-token-alg").copied(),
        third_party: if m.get_flag("third-party") {
            Some(true)
        } else if update && m.get_flag("first-party") {
            Some(false)
        } else {
            None
        },
    })
}

/// A new secret and what the store keeps of it.
fn new_secret() -> (String, SecretHash) {
    let secret = auth::client_secret::generate();
    let hash = SecretHash::new(auth::client_secret::hash(&secret));
    (secret, hash)
}

async fn create(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let client_id =
        rules::client_id(arg(m, "client-id").unwrap_or_default()).map_err(anyhow::Error::msg)?;
    let c = changes_from(m, false)?;
    let mut new = NewClient::new(
        Default::default(),
        client_id.clone(),
        c.name.unwrap_or_else(|| client_id.clone()),
    );
    new.scopes = c.scopes.unwrap_or_default();
    new.redirect_uris = c.redirect_uris.unwrap_or_default();
    new.post_logout_redirect_uris = c.post_logout_redirect_uris.unwrap_or_default();
    new.allowed_origins = c.allowed_origins.unwrap_or_default();
    if let Some(grants) = c.grant_types {
        new.grant_types = grants;
    }
    new.client_type = c.client_type.unwrap_or_default();
    new.require_email_verification = c.require_email_verification.unwrap_or_default();
    new.third_party = c.third_party.unwrap_or_default();
    new.access_token_ttl = c.access_token_ttl.flatten();
    new.refresh_token_ttl = c.refresh_token_ttl.flatten();
    new.id_token_ttl = c.id_token_ttl.flatten();
    new.id_token_alg = c.id_token_alg.flatten();
    new.access_token_alg = c.access_token_alg.flatten();
    rules::consistent(new.client_type, &new.grant_types).map_err(anyhow::Error::msg)?;

    let tenant = find_tenant(store, arg(m, "tenant").unwrap_or_default()).await?;
    new.tenant_id = tenant.id;
    let secret = (new.client_type == ClientType::Confidential).then(|| {
        let (secret, hash) = new_secret();
        new.secret_hash = Some(hash);
        secret
    });
    let now = engine::unix_now();
    let audit = cli_audit("client.create", now);
    let created = match store.create_client(new, now, Some(audit)).await {
        Err(store::StoreError::Conflict(_)) => {
            bail!("tenant {:?} already has that client id", tenant.slug)
        }
        other => other?,
    };
    println!("{}", row(&tenant.slug, &created));
    if let Some(secret) = secret {
        print_secret(&secret);
    }
    Ok(())
}

async fn update(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let mut changes = changes_from(m, true)?;
    if changes.is_empty() {
        bail!("nothing to change: give at least one option (hj client update --help)");
    }
    let (tenant, current) = find(store, m).await?;
    let client_type = changes.client_type.unwrap_or(current.client_type);
    let grants = changes.grant_types.as_ref().unwrap_or(&current.grant_types);
    rules::consistent(client_type, grants).map_err(anyhow::Error::msg)?;
    let mut secret = None;
    match (current.client_type, client_type) {
        (ClientType::Public, ClientType::Confidential) => {
            let (new, hash) = new_secret();
            changes.secret_hash = Some(Some(hash));
            secret = Some(new);
        }
        (_, ClientType::Public) if current.secret_hash.is_some() => {
            changes.secret_hash = Some(None);
        }
        _ => {}
    }
    let audit = cli_audit("client.update", engine::unix_now());
    let updated = store
        .update_client(tenant.id, &current.client_id, changes, Some(audit))
        .await?
        .context("the client no longer exists")?;
    println!("{}", row(&tenant.slug, &updated));
    if let Some(secret) = secret {
        print_secret(&secret);
    }
    Ok(())
}

async fn rotate_secret(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let (tenant, current) = find(store, m).await?;
    if current.client_type != ClientType::Confidential {
        bail!(
            "client {:?} is public and has no secret (hj client update --confidential gives it one)",
            current.client_id
        );
    }
    let (secret, hash) = new_secret();
    let changes = ClientChanges {
        secret_hash: Some(Some(hash)),
        ..ClientChanges::default()
    };
    let audit = cli_audit("client.rotate_secret", engine::unix_now());
    store
        .update_client(tenant.id, &current.client_id, changes, Some(audit))
        .await?
        .context("the client no longer exists")?;
    print_secret(&secret);
    Ok(())
}

async fn delete(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let (tenant, current) = find(store, m).await?;
    let audit = cli_audit("client.delete", engine::unix_now());
    if !store
        .delete_client(tenant.id, &current.client_id, Some(audit))
        .await?
    {
        bail!("the client no longer exists");
    }
    println!(
        "deleted client {:?} of tenant {:?} with its refresh tokens and sessions",
        current.client_id, tenant.slug
    );
    Ok(())
}

/// The columns of `hj client list`. The first four were the whole line before OAuth clients:
/// scripts that read them keep working.
const HEADER: &str = "TENANT\tCLIENT_ID\tNAME\tSCOPES\tTYPE\tGRANT_TYPES\tREDIRECT_URIS\t\
                      POST_LOGOUT_REDIRECT_URIS\tALLOWED_ORIGINS\tREQUIRE_EMAIL_VERIFICATION\t\
                      ACCESS_TOKEN_TTL\tREFRESH_TOKEN_TTL\tID_TOKEN_TTL\tID_TOKEN_ALG\t\
                      ACCESS_TOKEN_ALG\tTHIRD_PARTY";

async fn list(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let tenants = store.list_tenants().await?;
    let filter = match arg(m, "tenant") {
        Some(key) => Some(find_tenant(store, key).await?.id),
        None => None,
    };
    println!("{HEADER}");
    for c in store.list_clients(filter).await? {
        let slug = tenants
            .iter()
            .find(|t| t.id == c.tenant_id)
            .map_or("?", |t| t.slug.as_str());
        println!("{}", row(slug, &c));
    }
    Ok(())
}

/// One client as a tab-separated line (see [`HEADER`]). Lists are space-separated (none of
/// their items holds a space); an empty new list and a server-default lifetime are `-`.
fn row(slug: &str, c: &Client) -> String {
    let list = |l: &[String]| {
        if l.is_empty() {
            "-".to_string()
        } else {
            l.join(" ")
        }
    };
    let ttl = |t: Option<i64>| t.map_or("-".to_string(), |s| s.to_string());
    format!(
        "{slug}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        c.client_id,
        c.name,
        c.scopes.join(" "),
        c.client_type.as_str(),
        list(&c.grant_types),
        list(&c.redirect_uris),
        list(&c.post_logout_redirect_uris),
        list(&c.allowed_origins),
        c.require_email_verification,
        ttl(c.access_token_ttl),
        ttl(c.refresh_token_ttl),
        ttl(c.id_token_ttl),
        c.id_token_alg.map_or("-", SigningAlg::as_str),
        c.access_token_alg.map_or("-", SigningAlg::as_str),
        c.third_party,
    )
}

/// The one time a secret is shown.
fn print_secret(secret: &str) {
    println!("client_secret={secret}");
    eprintln!("hj: store the client secret now: it is not shown again (only its hash is kept)");
}
