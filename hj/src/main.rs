//! `hj`: the HelloJohn command line. Thin: it parses arguments and calls into the crates.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Arg, ArgMatches, Command};
use engine::config::{Config, Overlay, ProcessEnv, SETTINGS};

mod admin;
mod admins;
mod api_key;
mod client;
mod keys;
mod user;
mod webhook;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps the general heap on 4 KiB pages.
///
/// mimalloc reserves one large region for its heap and advises it for transparent huge pages,
/// so every thread's heap segments are faulted in 2 MiB at a time: about 2 MiB per thread even
/// when the thread holds kilobytes (a 16-shard, 16-worker server held 92 MiB of huge pages in
/// its heap under load). The Argon2 arenas, where huge pages measurably help, are separate
/// mappings with their own advice and keep it. mimalloc's own switch (`MIMALLOC_ALLOW_THP=0`)
/// is not used because it turns THP off for the whole process, arenas included.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn heap_without_huge_pages() {
    let probe = Box::new(0u8);
    let addr = std::ptr::addr_of!(*probe) as usize;
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let region = maps.lines().find_map(|line| {
        let (start, end) = line.split_whitespace().next()?.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        (start..end).contains(&addr).then_some((start, end))
    });
    if let Some((start, end)) = region {
        // SAFETY: the range is a whole mapping of this process (the heap region holding a live
        // allocation), page-aligned by the kernel. MADV_NOHUGEPAGE changes only how the kernel
        // backs future faults there, never contents or mappings, so no Rust value observes it.
        unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_NOHUGEPAGE,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn heap_without_huge_pages() {}

/// sysexits.h EX_USAGE: bad configuration or command line.
const EXIT_CONFIG: u8 = 64;

fn setting_args() -> Vec<Arg> {
    SETTINGS
        .iter()
        .map(|s| {
            let default = if s.default.is_empty() {
                String::new()
            } else {
                format!(" [default: {}]", s.default)
            };
            Arg::new(s.env)
                .long(s.flag)
                .value_name("VALUE")
                .help(format!("{} [env: {}]{}", s.help, s.env, default))
        })
        .collect()
}

fn issuer_mode_arg() -> Arg {
    Arg::new("issuer-mode")
        .long("issuer-mode")
        .value_parser(["global", "path"])
        .help(
            "global (default): tokens carry the server's issuer and keys; path: the tenant's own \
             issuer {base}/t/{slug} and signing keys",
        )
}

/// `hj --version`: the release and the commit it was built from (`build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HJ_BUILD_COMMIT"),
    ")"
);

fn cli() -> Command {
    Command::new("hj")
        .about("HelloJohn identity server")
        .version(VERSION)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("serve")
                .about("Run the server (settings from HELLOJOHN_* variables; a flag overrides its variable)")
                .args(setting_args()),
        )
        .subcommand(
            Command::new("migrate")
                .about("Apply pending schema migrations to the configured store (run before a rolling update)")
                .subcommand(Command::new("up").about("Apply pending migrations (the default)"))
                .subcommand(Command::new("status").about("Show applied and pending migrations")),
        )
        .subcommand(
            Command::new("tenant")
                .about("Manage tenants in the configured store")
                .subcommand_required(true)
                .subcommand(
                    Command::new("create")
                        .about("Create a tenant")
                        .arg(Arg::new("slug").long("slug").required(true).help("URL-safe name: a-z, 0-9, '-'"))
                        .arg(Arg::new("name").long("name").help("Display name (default: the slug)"))
                        .arg(issuer_mode_arg()),
                )
                .subcommand(
                    Command::new("update")
                        .about("Change a tenant (running servers see it within 30 s)")
                        .arg(Arg::new("slug").long("slug").required(true).help("The tenant's slug"))
                        .arg(issuer_mode_arg()),
                )
                .subcommand(Command::new("list").about("List tenants")),
        )
        .subcommand(admins::command())
        .subcommand(client::command())
        .subcommand(user::command())
        .subcommand(webhook::command())
        .subcommand(api_key::command())
        .subcommand(keys::command())
        .subcommand(bench::command())
        .subcommand(
            Command::new("config")
                .about("Check or document the configuration")
                .subcommand_required(true)
                .subcommand(Command::new("check").about("Validate the HELLOJOHN_* settings and print the result (secrets redacted)"))
                .subcommand(Command::new("docs").about("Print the settings table of docs/configuration.md")),
        )
}

/// Settings from the environment, with the command's flags on top.
fn load_config(m: &ArgMatches) -> Result<Config, ExitCode> {
    let mut top = BTreeMap::new();
    for s in SETTINGS {
        if let Ok(Some(v)) = m.try_get_one::<String>(s.env) {
            top.insert(s.env.to_string(), v.clone());
        }
    }
    let source = Overlay {
        top,
        base: &ProcessEnv,
    };
    Config::from_source(&source).map_err(|e| {
        eprint!("hj: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn main() -> ExitCode {
    let matches = cli().get_matches();
    match matches.subcommand() {
        Some(("serve", m)) => match load_config(m) {
            Ok(config) => serve(config),
            Err(code) => code,
        },
        Some((
            cmd @ ("migrate" | "tenant" | "client" | "user" | "webhook" | "api-key" | "keys"
            | "admin"),
            m,
        )) => admin(cmd, m),
        // The bench builds its own runtimes: called outside any.
        Some(("bench", m)) => bench::main(m),
        Some(("config", m)) => match m.subcommand() {
            Some(("check", m)) => match load_config(m) {
                Ok(config) => {
                    println!("{config:#?}");
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            },
            Some(("docs", _)) => {
                print!("{}", engine::config::markdown_table());
                ExitCode::SUCCESS
            }
            _ => ExitCode::from(EXIT_CONFIG),
        },
        _ => ExitCode::from(EXIT_CONFIG),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("hj: cannot start runtime: {e}");
            ExitCode::FAILURE
        })
}

fn serve(config: Config) -> ExitCode {
    heap_without_huge_pages();
    engine::logging::init(&config);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let store = match engine::open_store(&config).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e:#}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = engine::prepare_store(store.as_ref()).await {
            tracing::error!("{e:#}");
            return ExitCode::FAILURE;
        }
        match engine::bootstrap_embedded(store.as_ref(), &config.cors_origins).await {
            Ok(Some((tenant, client))) => {
                println!(
                    "Created tenant {:?} (id {}) and client {:?} on the new embedded store.",
                    tenant.slug, tenant.id, client.client_id
                );
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!("{e:#}");
                return ExitCode::FAILURE;
            }
        }
        let handle = match engine::start(config, store).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!("{e:#}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(addr = %handle.addr(), shards = handle.app().config.shards, "listening");
        wait_for_signal().await;
        tracing::info!("shutdown signal received; draining");
        handle.shutdown();
        handle.wait().await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            // Without signal handlers the process can still be stopped; just wait forever.
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Administration commands: they read the same settings as `hj serve` (environment only).
fn admin(cmd: &str, m: &ArgMatches) -> ExitCode {
    let config = match Config::from_source(&ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprint!("hj: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    engine::logging::init(&config);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async {
        let store = engine::open_store(&config).await?;
        if cmd != "migrate" {
            engine::prepare_store(store.as_ref()).await?;
        }
        match (cmd, m.subcommand()) {
            ("migrate", None | Some(("up", _))) => admin::migrate(store.as_ref()).await,
            ("migrate", Some(("status", _))) => admin::migrate_status(store.as_ref()).await,
            ("tenant", Some(("create", m))) => {
                admin::tenant_create(store.as_ref(), &config, m).await
            }
            ("tenant", Some(("update", m))) => {
                admin::tenant_update(store.as_ref(), &config, m).await
            }
            ("tenant", Some(("list", _))) => admin::tenant_list(store.as_ref()).await,
            ("client", Some(_)) => client::run(store.as_ref(), m).await,
            ("user", Some(_)) => user::run(store.as_ref(), m).await,
            ("webhook", Some(_)) => webhook::run(store.as_ref(), &config, m).await,
            ("api-key", Some(_)) => api_key::run(store.as_ref(), m).await,
            ("keys", Some(_)) => keys::run(store.as_ref(), &config, m).await,
            ("admin", Some(_)) => admins::run(&store, &config, m).await,
            _ => Err(anyhow::anyhow!("unknown command")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hj: {e:#}");
            ExitCode::FAILURE
        }
    }
}
