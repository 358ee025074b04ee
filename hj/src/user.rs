//! `hj user`: show a user, set their app metadata, disable or enable them, remove their second
//! factor, through the store trait.

use anyhow::{bail, Context as _};
use auth::flows::normalize_email;
use clap::{Arg, ArgMatches, Command};
use protocol::webhook::rfc3339;
use store::{Store, Tenant, User};

fn who(about: &'static str, name: &'static str) -> Command {
    Command::new(name)
        .about(about)
        .arg(
            Arg::new("tenant")
                .long("tenant")
                .required(true)
                .help("Tenant slug or id"),
        )
        .arg(
            Arg::new("email")
                .long("email")
                .required(true)
                .help("The user's email address (normalised as at sign-in)"),
        )
}

pub fn command() -> Command {
    Command::new("user")
        .about("Show and manage users in the configured store")
        .subcommand_required(true)
        .subcommand(who(
            "Show a user: id, status, user metadata and app metadata",
            "show",
        ))
        .subcommand(
            who(
                "Replace a user's app metadata (a JSON object, at most 4096 bytes and 8 levels): \
                 the `custom` claim of the user's next access tokens",
                "set-app-metadata",
            )
            .arg(
                Arg::new("json")
                    .long("json")
                    .required(true)
                    .help("The new app metadata, e.g. '{\"role\":\"admin\"}' ('{}' clears it)"),
            ),
        )
        .subcommand(who(
            "Disable a user: sign-in and refresh are refused, every session and refresh token \
             is revoked, and access tokens stop working on /v2/me and /userinfo within 5 s",
            "disable",
        ))
        .subcommand(who("Enable a disabled user again", "enable"))
        .subcommand(who(
            "Remove a user's second factor (a lost authenticator and lost recovery codes): the \
             TOTP secret, recovery codes and remembered devices are deleted, and the password \
             alone signs in again until the user enrols anew (event mfa.disabled)",
            "reset-mfa",
        ))
}

pub async fn run(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<()> {
    let Some((cmd, m)) = m.subcommand() else {
        bail!("unknown command")
    };
    let (tenant, user) = find(store, m).await?;
    match cmd {
        "show" => print_user(&tenant, &user),
        "set-app-metadata" => {
            let text = m
                .get_one::<String>("json")
                .map(String::as_str)
                .unwrap_or_default();
            let meta = protocol::metadata::parse(text).map_err(anyhow::Error::msg)?;
            let updated = store
                .set_user_app_metadata(user.id, store::Metadata::from_json(meta))
                .await?
                .context("the user no longer exists")?;
            print_user(&tenant, &updated);
        }
        "disable" | "enable" => {
            let disable = cmd == "disable";
            let revoked = store
                .set_user_disabled(user.id, disable, engine::unix_now())
                .await?
                .context("the user no longer exists")?;
            if disable {
                println!(
                    "disabled {} ({}); revoked {revoked} sessions and refresh token families",
                    user.id,
                    user.email.escape_debug()
                );
            } else {
                println!("enabled {} ({})", user.id, user.email.escape_debug());
            }
        }
        "reset-mfa" => {
            let now = engine::unix_now();
            let mut event = auth::events::Origin::new(None, None).event(
                auth::events::EventType::MfaDisabled,
                Some(tenant.id),
                None,
                now,
            );
            event.target_id = Some(user.id);
            event.target_type = Some("user".to_string());
            event.actor_type = Some("operator".to_string());
            let event = auth::events::with_meta(event, "factor", "totp");
            if store.delete_totp(user.id, Some(event), now).await? {
                println!(
                    "removed the second factor of {} ({})",
                    user.id,
                    user.email.escape_debug()
                );
            } else {
                println!("{} has no second factor", user.email.escape_debug());
            }
        }
        _ => bail!("unknown command"),
    }
    Ok(())
}

/// The tenant and the user named by `--tenant` and `--email`.
async fn find(store: &dyn Store, m: &ArgMatches) -> anyhow::Result<(Tenant, User)> {
    let arg = |name: &str| {
        m.get_one::<String>(name)
            .map(String::as_str)
            .unwrap_or_default()
    };
    let key = arg("tenant");
    let tenant = store
        .find_tenant(key)
        .await?
        .with_context(|| format!("no tenant {key:?} (hj tenant list shows them)"))?;
    let given = arg("email");
    let email = normalize_email(given)
        .with_context(|| format!("{given:?} is not a valid email address"))?;
    let user = store
        .find_user_by_email(tenant.id, &email)
        .await?
        .with_context(|| format!("no user {email:?} in tenant {:?}", tenant.slug))?;
    Ok((tenant, user))
}

/// One `key<TAB>value` line per field. Text a user chose is escaped, so it cannot move the
/// cursor or change the terminal; metadata is printed as JSON (which escapes control
/// characters itself).
fn print_user(tenant: &Tenant, u: &User) {
    println!("id\t{}", u.id);
    println!("tenant\t{}", tenant.slug);
    println!("email\t{}", u.email.escape_debug());
    println!("email_verified\t{}", u.email_verified);
    println!(
        "name\t{}",
        u.name.as_deref().unwrap_or_default().escape_debug()
    );
    println!("disabled\t{}", u.disabled);
    println!("mfa_enabled\t{}", u.mfa_enabled);
    println!("created_at\t{}", rfc3339(u.created_at));
    println!("user_metadata\t{}", u.custom_fields);
    println!("app_metadata\t{}", u.app_metadata);
}
