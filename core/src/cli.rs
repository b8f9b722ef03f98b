//! The `thub` command line. Every failure is one line on stderr and exit code 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use thub_plugin_sdk::Role;

use crate::accounts::{AccountsError, NewUser};
use crate::app::Hub;
use crate::config::{Config, ConfigSources, Overrides};
use crate::{server, storage, telemetry, tls};

/// thub: a self-hosted hub for AI/ML endpoints and PyScript apps.
#[derive(Debug, Parser)]
#[command(name = "thub", version, about)]
pub struct Cli {
    /// Configuration file (default: ./thub.toml if present).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the hub in the current folder.
    Serve {
        /// Address to listen on.
        #[arg(long)]
        host: Option<String>,
        /// Port to listen on (default 8000).
        #[arg(long)]
        port: Option<u16>,
        /// Tell open pages to reload when files in the folder change.
        #[arg(long)]
        reload: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Print the OpenAPI document of the default configuration (the committed openapi.json).
    Openapi,
    /// Add a user. Without PASSWORD, it is prompted for (or read from stdin when piped), so it
    /// never shows in `ps` or shell history.
    Adduser {
        /// Username.
        username: String,
        /// Password (prefer the prompt).
        password: Option<String>,
        /// Email address (default: none; a placeholder that receives no mail).
        #[arg(long)]
        email: Option<String>,
        /// Display name (default: the username).
        #[arg(long)]
        full_name: Option<String>,
        /// Make the user a site administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Delete a user and everything they own.
    Deluser {
        /// Username.
        username: String,
    },
    /// Set a user's password (prompted, or read from stdin) and end their sessions.
    Passwd {
        /// Username.
        username: String,
    },
    /// Create a PyScript project skeleton in a new folder NAME.
    New {
        /// The folder to create.
        name: String,
        /// PyScript version (CalVer, e.g. 2025.11.2); default: the latest.
        #[arg(long)]
        version: Option<String>,
        /// Copy PyScript's assets into the project so it works without internet.
        #[arg(long)]
        offline: bool,
        /// Where PyScript releases are downloaded from.
        #[arg(long, default_value = crate::project::PYSCRIPT_URL, hide = true)]
        pyscript_url: String,
    },
    /// Import users and proxies from a Tufts Hub config.json.
    Import {
        /// The Tufts Hub configuration.
        #[arg(default_value = "config.json")]
        path: PathBuf,
    },
    /// Manage WebAssembly plugins.
    Plugin {
        /// What to do.
        #[command(subcommand)]
        action: PluginAction,
    },
    /// Copy the SQLite database to PATH while the hub may be serving (PostgreSQL: use pg_dump).
    Backup {
        /// Where the copy goes (the folder must exist; the file must not).
        path: PathBuf,
    },
    /// Replace the SQLite database with a backup, after checking it is one. Stop thub first.
    Restore {
        /// The backup made by `thub backup`.
        path: PathBuf,
    },
    /// Check the configuration and what it points at (database, Redis, keys, plugins folder,
    /// TLS files, public_url); exits non-zero on problems.
    Doctor,
    /// Manage the identity provider's signing keys.
    Keys {
        /// What to do.
        #[command(subcommand)]
        action: KeysAction,
    },
}

/// `thub keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a new signing key; the previous one stays in the JWKS for `idp.key_overlap_hours`.
    Rotate,
}

/// `thub plugin …`.
#[derive(Debug, Subcommand)]
pub enum PluginAction {
    /// List the plugins in the plugins folder: state, routes, problems.
    List,
    /// Switch a plugin on (also clears a failure trip); running servers follow within seconds.
    Enable {
        /// Plugin id.
        id: String,
    },
    /// Switch a plugin off on every server sharing the database.
    Disable {
        /// Plugin id.
        id: String,
    },
    /// Check that a plugin loads, then have running servers load it again.
    Reload {
        /// Plugin id.
        id: String,
    },
    /// Create a plugin NAME in the plugins folder (or in --dir), where a running server loads
    /// every build of it: a Rust crate (`cargo build`), or a Python or JavaScript plugin
    /// (`./build`).
    New {
        /// The plugin id and folder name (lowercase letters, digits, hyphens).
        name: String,
        /// Create it in this folder instead of the plugins folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The language: rust, python or js.
        #[arg(long, value_enum, default_value = "rust")]
        lang: crate::wasm::scaffold::Language,
        /// Path to thub-plugin-sdk (default: the one this thub was built from, if present).
        #[arg(long, value_name = "PATH")]
        sdk: Option<PathBuf>,
    },
}

/// Parses arguments, runs the command, and maps failure to exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    telemetry::flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut sources = ConfigSources { file: cli.config, environment: true, overrides: Overrides::default() };
    match cli.command {
        Command::Serve { host, port, reload } => {
            // `--reload` is the site plugin's setting.
            let plugin_settings =
                if reload { vec![("site", "reload", serde_json::Value::Bool(true))] } else { Vec::new() };
            sources.overrides = Overrides { host, port, plugin_settings };
            serve(Config::load(&sources)?, sources).await
        }
        Command::Migrate => {
            let config = Config::load(&sources)?;
            telemetry::init(&config.log.filter);
            let db = storage::connect(&config).await?;
            storage::migrate(&db).await?;
            println!("database {} is up to date", storage::redact_url(&config.database_url()?));
            Ok(())
        }
        Command::Config => {
            let config = Config::load(&sources)?;
            print!("{}", config.to_redacted_toml()?);
            Ok(())
        }
        Command::Adduser { username, password, email, full_name, admin } => {
            let hub = quiet_hub(&sources).await?;
            let password = match password {
                Some(password) => password,
                None => read_password(&format!("Password for {username}: "))?,
            };
            let new = NewUser {
                full_name: full_name.unwrap_or_else(|| username.clone()),
                username: username.clone(),
                email,
                password,
                role: if admin { Role::Admin } else { Role::User },
            };
            let user = hub.accounts.create_user(new).await.map_err(describe)?;
            hub.settle().await;
            println!("User '{}' added{}.", user.username, if admin { " as an administrator" } else { "" });
            Ok(())
        }
        Command::Deluser { username } => {
            let hub = quiet_hub(&sources).await?;
            match hub.accounts.user_by_name(&username).await? {
                Some(user) => {
                    let user_id = user.id;
                    hub.accounts.remove_user(user).await.map_err(describe)?;
                    crate::audit::user_deleted(None, user_id, &username);
                    hub.settle().await;
                    println!("User '{username}' removed.");
                }
                None => println!("User '{username}' does not exist; nothing to do."),
            }
            Ok(())
        }
        Command::Passwd { username } => {
            let hub = quiet_hub(&sources).await?;
            let password = read_password(&format!("New password for {username}: "))?;
            hub.accounts.reset_password(&username, &password).await.map_err(describe)?;
            println!("Password of '{username}' changed; their sessions were ended.");
            Ok(())
        }
        Command::Plugin { action } => plugin(&sources, action).await,
        Command::Backup { path } => {
            let config = Config::load(&sources)?;
            println!("{}", crate::operations::backup(&config, &path).await?);
            Ok(())
        }
        Command::Restore { path } => {
            let config = Config::load(&sources)?;
            for line in crate::operations::restore(&config, &path).await? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Doctor => {
            let config = Config::load(&sources)?;
            telemetry::init("error");
            anyhow::ensure!(crate::operations::doctor(&config).await?, "thub doctor found problems (see above)");
            Ok(())
        }
        Command::Keys { action: KeysAction::Rotate } => {
            let hub = quiet_hub(&sources).await?;
            let kid = hub.accounts.idp.rotate().await?;
            crate::audit::keys_rotated(&kid);
            println!(
                "New signing key {kid}; the previous key stays in the JWKS for {} hours.",
                hub.config.idp.key_overlap_hours
            );
            Ok(())
        }
        Command::New { name, version, offline, pyscript_url } => {
            let request = crate::project::NewProject {
                name,
                version,
                offline,
                pyscript_url,
                cache: crate::config::pyscript_cache(),
            };
            for message in crate::project::create(request).await? {
                println!("{message}");
            }
            Ok(())
        }
        Command::Import { path } => {
            let hub = quiet_hub(&sources).await?;
            let config_file = sources.file.clone().unwrap_or_else(|| PathBuf::from(crate::config::CONFIG_FILE));
            let lines = crate::import::import(&hub, &path, &config_file).await?;
            hub.settle().await;
            for line in lines {
                println!("{line}");
            }
            Ok(())
        }
        Command::Openapi => {
            let mut config = Config::default();
            config.database.url = crate::config::Secret::new("sqlite::memory:");
            config.database.max_connections = 1;
            let hub = Hub::build(config).await?;
            println!("{}", hub.openapi_json());
            Ok(())
        }
    }
}

async fn plugin(sources: &ConfigSources, action: PluginAction) -> anyhow::Result<()> {
    match action {
        PluginAction::New { name, dir, lang, sdk } => {
            let parent = match dir {
                Some(dir) => dir,
                None => Config::load(sources)?.wasm_dir()?,
            };
            for line in crate::wasm::scaffold::create(&parent.join(name), lang, sdk)? {
                println!("{line}");
            }
        }
        PluginAction::List => {
            let (_hub, host) = plugin_host(sources).await?;
            let plugins = host.list();
            if plugins.is_empty() {
                println!("No plugins in {}.", host.dir().display());
            }
            for plugin in plugins {
                let state = plugin.problem.unwrap_or_else(|| "serving".to_owned());
                println!("{} {} (API {}, {}): {state}", plugin.id, plugin.version, plugin.api_version, plugin.world);
                for route in &plugin.routes {
                    println!("    {route}");
                }
                if !plugin.events.is_empty() {
                    println!("    events: {}", plugin.events.join(", "));
                }
            }
        }
        PluginAction::Enable { id } => switch_plugin(sources, &id, true).await?,
        PluginAction::Disable { id } => switch_plugin(sources, &id, false).await?,
        PluginAction::Reload { id } => {
            let (_hub, host) = plugin_host(sources).await?;
            host.reload(&id).await.map_err(|error| anyhow::anyhow!("plugin '{id}' does not load: {error}"))?;
            // Running servers watch the folder: touching the manifest makes them load it again.
            let manifest = host.dir().join(&id).join("plugin.toml");
            std::fs::File::options()
                .append(true)
                .open(&manifest)
                .and_then(|file| file.set_modified(std::time::SystemTime::now()))
                .map_err(|error| anyhow::anyhow!("cannot touch {}: {error}", manifest.display()))?;
            println!("Plugin '{id}' loads; running servers load it again within a second.");
        }
    }
    Ok(())
}

async fn switch_plugin(sources: &ConfigSources, id: &str, enable: bool) -> anyhow::Result<()> {
    let (_hub, host) = plugin_host(sources).await?;
    anyhow::ensure!(host.list().iter().any(|plugin| plugin.id == id), "no plugin '{id}' in {}", host.dir().display());
    host.set_enabled(id, enable).await?;
    crate::audit::plugin_switched(id, enable);
    let done = if enable { "enabled" } else { "disabled" };
    println!("Plugin '{id}' {done}; running servers follow within seconds.");
    Ok(())
}

/// A quiet hub and its WebAssembly host, for `thub plugin …`.
async fn plugin_host(sources: &ConfigSources) -> anyhow::Result<(Hub, std::sync::Arc<crate::wasm::WasmHost>)> {
    let hub = quiet_hub(sources).await?;
    let host = hub
        .wasm
        .clone()
        .ok_or_else(|| anyhow::anyhow!("WebAssembly plugins are switched off ([wasm] enabled = false)"))?;
    wait_for_plugins(&host).await;
    Ok((hub, host))
}

/// Waits until the plugins have loaded, saying on stderr every few seconds what still compiles
/// (a big component takes seconds on a cold cache).
async fn wait_for_plugins(host: &crate::wasm::WasmHost) {
    let loaded = host.loaded();
    tokio::pin!(loaded);
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    ticker.tick().await;
    loop {
        tokio::select! {
            () = &mut loaded => return,
            _ = ticker.tick() => {
                for plugin in host.list() {
                    if let Some(progress) = plugin.progress {
                        eprintln!("{}: {progress}", plugin.id);
                    }
                }
            }
        }
    }
}

/// A hub for one-shot commands: same database and services, logs only warnings.
async fn quiet_hub(sources: &ConfigSources) -> anyhow::Result<Hub> {
    let mut config = Config::load(sources)?;
    config.log.filter = "warn".to_owned();
    telemetry::init(&config.log.filter);
    Hub::build(config).await
}

/// Reads a password from the terminal without echo, or a line from stdin when piped.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    anyhow::ensure!(!password.is_empty(), "no password given");
    Ok(password)
}

/// One line for an accounts error, with the failing fields of a validation error.
fn describe(error: AccountsError) -> anyhow::Error {
    match error {
        AccountsError::Validation(fields) => {
            let reasons: Vec<String> = fields.into_iter().map(|field| field.msg).collect();
            anyhow::anyhow!("{}", reasons.join("; "))
        }
        AccountsError::UsernameTaken => anyhow::anyhow!("that username already exists"),
        AccountsError::EmailTaken => anyhow::anyhow!("that email already exists"),
        AccountsError::UserNotFound => anyhow::anyhow!("no such user"),
        other => anyhow::anyhow!("{other}"),
    }
}

async fn serve(config: Config, sources: ConfigSources) -> anyhow::Result<()> {
    telemetry::init(&config.log.filter);
    let started = Instant::now();
    // A configuration mistake is reported before anything else happens.
    crate::client::TrustedProxies::parse(&config.server.trusted_proxies)?;
    // Bind first: a port in use is the most common start-up failure and should not wait for
    // the database.
    let listener = server::bind(&config.server.host, config.server.port).await?;
    let address = listener.local_addr()?;
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let database = storage::redact_url(&config.database_url()?);
    let tls = match tls::tls_files(&config)? {
        Some(files) => Some((tls::rustls_config(&files)?, files)),
        None => None,
    };
    let hub = Hub::build(config).await?;
    if let Some(wasm) = &hub.wasm {
        // `thub plugin reload` (or a changed plugin) re-reads the grants: no restart needed.
        wasm.read_grants_from(Box::new(move || Ok(Config::load(&sources)?.wasm.grants)));
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        address = %address,
        database = %database,
        plugins = %hub.plugins.join(","),
        tls_cert = tls.as_ref().map(|(_, files)| files.cert.display().to_string()),
        startup_ms = started.elapsed().as_millis() as u64,
        "thub {} listening on {scheme}://{address}",
        env!("CARGO_PKG_VERSION"),
    );
    let limits = server::ConnectionLimits::from_config(&hub.config.server);
    let open_files = server::raise_open_file_limit();
    if (open_files as usize) < limits.max_connections + 64 {
        tracing::warn!(
            open_files,
            max_connections = limits.max_connections,
            "the open-file limit is below server.max_connections; raise it (ulimit -n) or lower the cap"
        );
    }
    server::serve(hub.endpoint(), listener, tls.map(|(config, _)| config), limits, server::shutdown_signal(), grace)
        .await?;
    storage::close(hub.db.clone()).await;
    tracing::info!("thub stopped");
    Ok(())
}
