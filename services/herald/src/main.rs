//! The `herald` command: `herald` runs everything in one process; `herald token` mints a JWT.

use clap::{Parser, Subcommand, ValueEnum};
use runtime::{Claims, JwtIssuer, Role};
use std::path::PathBuf;
use std::time::Duration;

/// Herald: notifications to web clients over WebSocket, in one process.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML configuration file (also HERALD_CONFIG).
    #[arg(long, global = true, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process (the default).
    Serve,
    /// Print a token signed with the configured secret (HERALD_JWT_SECRET).
    Token {
        /// The user id (the `sub` claim).
        #[arg(long)]
        sub: i64,
        /// The role.
        #[arg(long, value_enum, default_value_t = RoleArg::User)]
        role: RoleArg,
        /// The display name; defaults to `user<sub>`.
        #[arg(long)]
        name: Option<String>,
        /// Seconds until it expires.
        #[arg(long, default_value_t = 86_400)]
        ttl_secs: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    User,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::install_crypto_provider();
    let cli = Cli::parse();
    let settings = herald::Settings::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            runtime::telemetry::install(runtime::telemetry::build_subscriber(&settings.ingest.log));
            runtime::warn_if_development_secret(&settings.ingest.jwt);
            let listener = http_server::bind(&settings.ingest.http).map_err(|err| {
                anyhow::anyhow!("cannot listen on {} (HERALD_HTTP_ADDR): {err}", settings.ingest.http.addr)
            })?;
            herald::run(settings, listener, runtime::shutdown_on_signals()).await
        }
        Command::Token { sub, role, name, ttl_secs } => {
            anyhow::ensure!(sub > 0, "--sub must be a positive user id");
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::User => Role::User,
            };
            let name = name.unwrap_or_else(|| format!("user{sub}"));
            let claims = Claims::new(sub, name, role, Duration::from_secs(ttl_secs));
            println!("{}", JwtIssuer::new(&settings.ingest.jwt).issue(&claims)?);
            Ok(())
        }
    }
}
