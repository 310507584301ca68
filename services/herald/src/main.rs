//! The `herald` command. `herald` runs every role in one process on embedded defaults (the
//! all-in-one); `herald run <role>...` runs the roles named, on the distributed defaults
//! (RabbitMQ, Redis); `herald token` mints a JWT; `herald janitor run-once [JOB]` runs the
//! janitor's jobs by hand.

use clap::{Parser, Subcommand, ValueEnum};
use herald::{Defaults, Role, Settings};
use runtime::{Claims, JwtIssuer};
use std::path::PathBuf;
use std::time::Duration;

/// Herald: notifications to web and mobile clients. With no command, every role runs in one
/// process on embedded defaults (no server needed).
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
    /// Run every role in one process on embedded defaults (the default command).
    Serve,
    /// Run the roles named (at least one; `all` for every role), on the distributed defaults:
    /// RabbitMQ and Redis on this machine, each setting overridable as usual.
    Run {
        /// The roles this process runs.
        #[arg(required = true, value_enum)]
        roles: Vec<RoleArg>,
    },
    /// The janitor's jobs, by hand.
    Janitor {
        #[command(subcommand)]
        action: JanitorCommand,
    },
    /// Print a token signed with the configured secret (HERALD_JWT_SECRET).
    Token {
        /// The user id (the `sub` claim).
        #[arg(long)]
        sub: i64,
        /// The role.
        #[arg(long, value_enum, default_value_t = UserRole::User)]
        role: UserRole,
        /// The display name; defaults to `user<sub>`.
        #[arg(long)]
        name: Option<String>,
        /// The tenant (the `tenant_id` claim): devices registered with the token belong to it,
        /// and get its alarms.
        #[arg(long)]
        tenant: Option<String>,
        /// Seconds until it expires.
        #[arg(long, default_value_t = 86_400)]
        ttl_secs: u64,
    },
}

#[derive(Subcommand)]
enum JanitorCommand {
    /// Run the job named (every job when none is), now, once, under its lease: a job another
    /// replica is running is not run twice (the command then fails).
    RunOnce {
        /// The job.
        #[arg(value_enum)]
        job: Option<JobArg>,
    },
}

/// A janitor job on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum JobArg {
    /// Failing devices marked inactive, long-inactive ones removed.
    DeviceRules,
    /// Old push records, receive records and notification logs deleted.
    Retention,
    /// Offline inboxes trimmed to their limits.
    InboxTrim,
}

impl JobArg {
    fn job(self) -> janitor::Job {
        match self {
            JobArg::DeviceRules => janitor::Job::DeviceRules,
            JobArg::Retention => janitor::Job::Retention,
            JobArg::InboxTrim => janitor::Job::InboxTrim,
        }
    }
}

/// A role on the command line: one of Herald's, or `all`.
#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    /// Every role.
    All,
    /// The REST API and the ingress dispatcher.
    IngestApi,
    /// The WebSocket endpoint.
    WsGateway,
    /// Mobile pushes.
    MobilePushWorker,
    /// Push records from the bus.
    RecordWriter,
    /// Retention passes.
    Janitor,
}

impl RoleArg {
    fn roles(self) -> &'static [Role] {
        match self {
            RoleArg::All => &Role::ALL,
            RoleArg::IngestApi => &[Role::IngestApi],
            RoleArg::WsGateway => &[Role::WsGateway],
            RoleArg::MobilePushWorker => &[Role::MobilePushWorker],
            RoleArg::RecordWriter => &[Role::RecordWriter],
            RoleArg::Janitor => &[Role::Janitor],
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum UserRole {
    Admin,
    User,
}

/// Parses the command and the settings, builds the telemetry (before the async runtime: the
/// span exporter's HTTP client is a blocking one, on a thread of its own), runs the command on
/// a multi-threaded runtime, then flushes the spans still batched.
fn main() -> anyhow::Result<()> {
    runtime::install_crypto_provider();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let (roles, embedded) = match &command {
        Command::Run { roles } => {
            let mut chosen: Vec<Role> = roles.iter().flat_map(|arg| arg.roles().iter().copied()).collect();
            chosen.sort();
            chosen.dedup();
            (chosen, false)
        }
        Command::Janitor { .. } => (vec![Role::Janitor], false),
        Command::Serve | Command::Token { .. } => (Role::ALL.to_vec(), true),
    };
    let defaults = if embedded { Defaults::Embedded } else { Defaults::Roles(&roles) };
    let settings = Settings::load(cli.config.as_deref(), defaults)?;
    if let Command::Token { sub, role, name, tenant, ttl_secs } = command {
        anyhow::ensure!(sub > 0, "--sub must be a positive user id");
        let role = match role {
            UserRole::Admin => runtime::Role::Admin,
            UserRole::User => runtime::Role::User,
        };
        let name = name.unwrap_or_else(|| format!("user{sub}"));
        if let Some(tenant) = &tenant {
            anyhow::ensure!((1..=64).contains(&tenant.chars().count()), "--tenant must be 1 to 64 characters");
        }
        let claims = Claims { tenant_id: tenant, ..Claims::new(sub, name, role, Duration::from_secs(ttl_secs)) };
        println!("{}", JwtIssuer::new(&settings.jwt).issue(&claims)?);
        return Ok(());
    }
    let service = match (embedded, roles.as_slice()) {
        (true, _) => "herald".to_owned(),
        (false, [role]) => role.name().to_owned(),
        (false, roles) => roles.iter().map(|role| role.name()).collect::<Vec<_>>().join("+"),
    };
    let (subscriber, telemetry) =
        runtime::telemetry::build_subscriber(&settings.log, &service).map_err(|err| anyhow::anyhow!(err))?;
    runtime::telemetry::install(subscriber);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(serve(command, settings, roles, embedded)));
    telemetry.shutdown();
    result
}

/// The command, on the async runtime.
async fn serve(command: Command, settings: Settings, roles: Vec<Role>, embedded: bool) -> anyhow::Result<()> {
    if let Command::Janitor { action: JanitorCommand::RunOnce { job } } = command {
        let jobs = match job {
            Some(job) => vec![job.job()],
            None => janitor::Job::ALL.to_vec(),
        };
        return herald::janitor_run_once(&settings, &jobs).await;
    }
    runtime::warn_if_development_secret(&settings.jwt);
    let listener = http_server::bind(&settings.http)
        .map_err(|err| anyhow::anyhow!("cannot listen on {} (HERALD_HTTP_ADDR): {err}", settings.http.addr))?;
    if embedded {
        // A ready link for a newcomer: the token rides in the fragment, which no server sees and
        // the console removes from the address bar. Printed to the terminal, not the log.
        let claims = Claims::new(1, "admin".to_owned(), runtime::Role::Admin, Duration::from_secs(86_400));
        let token = JwtIssuer::new(&settings.jwt).issue(&claims)?;
        eprintln!("Herald console: http://{}/console/#token={token}", listener.local_addr()?);
    }
    herald::run(settings, &roles, listener, runtime::shutdown_on_signals()).await
}
