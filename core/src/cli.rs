//! The `thub` command line. Every failure is one line on stderr and exit code 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::app::Hub;
use crate::config::{Config, ConfigSources, Overrides};
use crate::{server, storage, telemetry};

/// thub: a self-hosted hub for AI/ML endpoints and PyScript apps.
#[derive(Debug, Parser)]
#[command(name = "thub", version, about, propagate_version = true)]
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
    match runtime.block_on(run(cli)) {
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
            sources.overrides = Overrides { host, port, reload };
            serve(Config::load(&sources)?).await
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

async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init(&config.log.filter);
    let started = Instant::now();
    // Bind first: a port in use is the most common start-up failure and should not wait for
    // the database.
    let listener = server::bind(&config.server.host, config.server.port).await?;
    let address = listener.local_addr()?;
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let database = storage::redact_url(&config.database_url()?);
    let hub = Hub::build(config).await?;
    tracing::info!(
        address = %address,
        database = %database,
        plugins = %hub.plugins.join(","),
        startup_ms = started.elapsed().as_millis() as u64,
        "thub {} listening on http://{address}",
        env!("CARGO_PKG_VERSION"),
    );
    server::serve(hub.endpoint(), listener, server::shutdown_signal(), grace).await?;
    tracing::info!("thub stopped");
    Ok(())
}
