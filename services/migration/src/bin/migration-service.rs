//! `migration-service`: the Migration Service daemon, its status report and the operator's
//! `push` commands. See `--help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand, ValueEnum};
use ipcspec_generated::migration::{
    self as catalogue, AcknowledgmentPayload, AgentSettings, EscalationLevel, EscalationReason,
    MigrationPhase, ShutdownReason,
};
use ipcspec_migration::commands::Command;
use ipcspec_migration::identity::SystemDirectory;
use ipcspec_migration::{MigrationService, ServiceConfig, Store, wire};
use ipcspec_runtime::metrics_http;
use ipcspec_runtime::server::{Heartbeat, Server, ServerConfig};
use ipcspec_runtime::transport::unix::{Listener, ListenerOptions};

#[derive(Parser)]
#[command(
    name = "migration-service",
    version,
    about = "The Migration Service: asks every user's agent to back up before the migration, \
             and keeps each user's progress durably.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    serve: Serve,
    #[command(subcommand)]
    command: Option<Commands>,
}

#[derive(Args)]
struct Serve {
    /// The socket the agents connect to.
    #[arg(long, env = "MIGRATION_SOCKET", default_value = catalogue::SOCKET_PATH)]
    socket: PathBuf,
    #[command(flatten)]
    db: Db,
    /// Permission bits of the socket file, in octal. The catalogue's production setting
    /// is 0666: every local user may connect, and each connection is bound to its peer's
    /// uid.
    #[arg(long, default_value = "0666", value_parser = parse_mode)]
    socket_mode: u32,
    /// Give the socket file this group (name or number), e.g. with --socket-mode 0660 to
    /// admit only that group's members.
    #[arg(long)]
    socket_group: Option<String>,
    /// Agent connections served at once; more are refused with TOO_MANY_CONNECTIONS.
    #[arg(long, default_value_t = catalogue::MAX_CONNECTIONS as usize)]
    max_connections: usize,
    /// Refuse agents older than this version (UNSUPPORTED_AGENT_VERSION).
    #[arg(long)]
    min_agent_version: Option<String>,
    /// The migration phase STATUS_UPDATE reports.
    #[arg(long, value_enum, default_value_t = Phase::CollectingBackups)]
    phase: Phase,
    /// Seconds between the service's HEARTBEATs on each connection.
    #[arg(long, default_value_t = u64::from(catalogue::HEARTBEAT_INTERVAL_SECONDS))]
    heartbeat_seconds: u64,
    /// Seconds a partly received frame may take to complete before the connection is
    /// dropped.
    #[arg(long, default_value_t = u64::from(catalogue::FRAME_READ_TIMEOUT_SECONDS))]
    frame_read_timeout_seconds: u64,
    /// Serve Prometheus metrics at http://ADDRESS/metrics (a loopback address; port 0
    /// picks a free port, logged at start).
    #[arg(long)]
    metrics_address: Option<std::net::SocketAddr>,
    /// Seconds a running backup may go without BACKUP_PROGRESS or BACKUP_COMPLETED before
    /// it is abandoned (retried, escalated, or back to NOT_STARTED, as a failed backup).
    #[arg(long, default_value_t = u64::from(catalogue::BACKUP_PROGRESS_TIMEOUT_SECONDS))]
    backup_progress_timeout_seconds: u64,
    /// Seconds without any frame after which a connection is considered dead.
    #[arg(long, default_value_t = u64::from(catalogue::STALE_CONNECTION_SECONDS))]
    stale_seconds: u64,
}

#[derive(Args, Clone)]
struct Db {
    /// The state database (created if missing).
    #[arg(
        long,
        env = "MIGRATION_DB",
        default_value = "/var/lib/migration-service/state.db"
    )]
    db: PathBuf,
}

#[derive(Subcommand)]
enum Commands {
    /// Print every user's migration state from the database.
    Status {
        #[command(flatten)]
        db: Db,
        /// One JSON object per user instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Queue an operator command; the running service applies it (at once if it runs,
    /// else when it starts) and delivers the messages, keeping them for agents that are
    /// offline.
    Push {
        #[command(flatten)]
        db: Db,
        /// The user it is for.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        user: Option<String>,
        /// Every user (for configure and shutdown: every connected agent).
        #[arg(long)]
        all: bool,
        #[command(subcommand)]
        command: PushCommand,
    },
}

#[derive(Subcommand)]
enum PushCommand {
    /// BACKUP_REQUEST (MIGRATION_SCHEDULED) to users who have not started.
    RequestBackup {
        /// The deadline, RFC 3339 (2026-12-01T17:00:00Z).
        #[arg(long, value_parser = parse_time)]
        deadline: time::OffsetDateTime,
        /// Delays a user may ask for.
        #[arg(long, default_value_t = 1)]
        delays_allowed: u32,
        /// The longest delay one request may add, in seconds.
        #[arg(long)]
        max_delay_seconds: Option<u64>,
        /// Text shown to the user.
        #[arg(long)]
        message: Option<String>,
    },
    /// ESCALATION_NOTICE.
    Notify {
        #[arg(long, value_enum)]
        level: Level,
        #[arg(long, value_enum, default_value_t = Reason::DeadlineApproaching)]
        reason: Reason,
        #[arg(long)]
        message: Option<String>,
    },
    /// Answer a pending DELAY_REQUEST.
    DecideDelay {
        /// Grant the delay (otherwise it is denied).
        #[arg(long)]
        grant: bool,
        #[arg(long)]
        reason: Option<String>,
    },
    /// CONFIGURATION_UPDATE with these settings (JSON, the catalogue's AgentSettings).
    Configure {
        #[arg(long)]
        settings: String,
    },
    /// SHUTDOWN_REQUEST to running agents.
    Shutdown {
        #[arg(long, value_enum, default_value_t = Shutdown::AdministratorRequest)]
        reason: Shutdown,
        /// Seconds the agent has before the service closes the connection.
        #[arg(long, default_value_t = 30)]
        grace_seconds: u64,
        #[arg(long)]
        message: Option<String>,
    },
}

macro_rules! value_enum {
    ($name:ident => $target:ty { $($variant:ident),* $(,)? }) => {
        #[derive(Clone, Copy, ValueEnum)]
        enum $name { $($variant),* }
        impl From<$name> for $target {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => <$target>::$variant),* }
            }
        }
    };
}

value_enum!(Phase => MigrationPhase {
    Preparing, CollectingBackups, ReadyToMigrate, Migrating, Paused, Completed, Cancelled,
});
value_enum!(Level => EscalationLevel { Reminder, Warning, FinalWarning, ItEscalated });
value_enum!(Reason => EscalationReason {
    DeadlineApproaching, DeadlinePassed, BackupFailed, AgentUnresponsive,
});
value_enum!(Shutdown => ShutdownReason {
    MigrationCompleted, MigrationCancelled, AgentUpdate, Superseded, AdministratorRequest,
});

fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("{text:?} is not an octal mode between 0 and 0777"))
}

fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    wire::parse_rfc3339(text)
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 timestamp (2026-12-01T17:00:00Z)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Commands::Status { db, json }) => status(&db.db, json),
        Some(Commands::Push {
            db,
            user,
            all: _,
            command,
        }) => push(&db.db, user.as_deref(), command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("migration-service: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn group_id(name: &str) -> anyhow::Result<u32> {
    if let Ok(gid) = name.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => bail!("no group named {name:?}"),
        Err(error) => bail!("cannot look up group {name:?}: {error}"),
    }
}

fn serve(args: Serve) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_async(args))
}

async fn serve_async(args: Serve) -> anyhow::Result<()> {
    create_missing_directory(
        &args.db.db,
        STATE_DIRECTORY_MODE,
        "--db PATH (MIGRATION_DB)",
    )?;
    let store = Store::open(&args.db.db).with_context(|| {
        format!(
            "choose a database the service can write with --db PATH (MIGRATION_DB), \
             or make {} writable",
            parent_or_current(&args.db.db).display()
        )
    })?;
    create_missing_directory(
        &args.socket,
        SOCKET_DIRECTORY_MODE,
        "--socket PATH (MIGRATION_SOCKET)",
    )?;
    let options = ListenerOptions {
        mode: args.socket_mode,
        group: args.socket_group.as_deref().map(group_id).transpose()?,
        ..ListenerOptions::default()
    };
    let listener = Listener::bind(&args.socket, options)
        .await
        .with_context(|| format!("cannot listen on {}", args.socket.display()))?;
    let config = ServerConfig {
        max_connections: args.max_connections,
        frame_read_timeout: Some(Duration::from_secs(args.frame_read_timeout_seconds)),
        stale_after: Some(Duration::from_secs(args.stale_seconds)),
        heartbeat: Some(Heartbeat {
            interval: Duration::from_secs(args.heartbeat_seconds.max(1)),
            frame: Arc::new(|_| {
                wire::encode(&wire::new_id(), "HEARTBEAT", serde_json::json!({}), None)
                    .unwrap_or_default()
            }),
            message_type: Some("HEARTBEAT"),
        }),
        refusal: Some(Arc::new(|info| refusal(info.max_connections))),
        ..ServerConfig::from_profile(&catalogue::WIRE)
    };
    let service = MigrationService::new(
        store,
        SystemDirectory,
        ServiceConfig {
            min_agent_version: args.min_agent_version,
            phase: args.phase.into(),
            backup_progress_timeout: Duration::from_secs(args.backup_progress_timeout_seconds),
            ..ServiceConfig::default()
        },
    );
    let server = Server::new(config, service);
    let handle = server.handle();
    let background = tokio::spawn(Arc::clone(server.service()).run_background(handle.clone()));
    stop_on_signal(handle.clone())?;
    tokio::spawn(watchdog());
    if let Some(address) = args.metrics_address {
        let render: metrics_http::Render = {
            let handle = handle.clone();
            let store = server.service().store().clone();
            Arc::new(move || {
                let stats = store.stats();
                format!(
                    "{}# HELP migration_store_transactions_total Transactions the store committed.\n\
                     # TYPE migration_store_transactions_total counter\n\
                     migration_store_transactions_total {}\n\
                     # HELP migration_store_commits_total Commit requests by outcome.\n\
                     # TYPE migration_store_commits_total counter\n\
                     migration_store_commits_total{{outcome=\"applied\"}} {}\n\
                     migration_store_commits_total{{outcome=\"duplicate\"}} {}\n\
                     migration_store_commits_total{{outcome=\"failed\"}} {}\n",
                    handle.prometheus(),
                    stats.transactions,
                    stats.applied,
                    stats.duplicates,
                    stats.failed
                )
            })
        };
        let (bound, serve) = metrics_http::bind(address, render)
            .await
            .with_context(|| format!("cannot serve metrics on {address}"))?;
        tracing::info!("metrics on http://{bound}/metrics");
        tokio::spawn(serve);
    }
    tracing::info!("listening on {}", args.socket.display());
    if let Err(error) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::debug!(%error, "no readiness notification sent");
    }
    let report = server.serve(listener).await;
    background.abort();
    tracing::info!(
        drained = report.drained,
        aborted = report.aborted,
        "stopped"
    );
    Ok(())
}

/// The state directory's mode when the service creates it: only the service reads its
/// database, as systemd's `StateDirectoryMode=0700` in the unit makes it.
const STATE_DIRECTORY_MODE: u32 = 0o700;

/// The socket directory's mode when the service creates it: the catalogue's Unix
/// transport decision (the directory is root's and 0755, so no user can create or
/// replace the socket in it), as `RuntimeDirectoryMode=0755` in the unit makes it.
const SOCKET_DIRECTORY_MODE: u32 = 0o755;

fn parent_or_current(file: &Path) -> &Path {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Creates the directory `file` lives in when it does not exist, as systemd's
/// `StateDirectory=`/`RuntimeDirectory=` would for the unit: missing ancestors with the
/// default permissions, the directory itself with exactly `mode` (whatever the umask).
/// A directory that exists is left as it is. When it cannot be created, the error says
/// which option (`option`) or directory fixes it.
fn create_missing_directory(file: &Path, mode: u32, option: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let directory = parent_or_current(file);
    if directory.is_dir() {
        return Ok(());
    }
    let created = (|| {
        if let Some(ancestors) = directory.parent().filter(|a| !a.as_os_str().is_empty()) {
            std::fs::create_dir_all(ancestors)?;
        }
        std::fs::DirBuilder::new().mode(mode).create(directory)?;
        std::fs::set_permissions(directory, std::fs::Permissions::from_mode(mode))
    })();
    match created {
        Ok(()) => {
            tracing::info!(directory = %directory.display(), mode = format!("{mode:04o}"), "created the directory");
            Ok(())
        }
        // Another process created it meanwhile: fine.
        Err(_) if directory.is_dir() => Ok(()),
        Err(error) => bail!(
            "cannot create the directory {} for {}: {error}; create it (mode {mode:04o}, \
             writable by the service) or choose another path with {option}",
            directory.display(),
            file.display()
        ),
    }
}

/// What a connection beyond the limit gets before it is closed: an ACKNOWLEDGMENT with
/// TOO_MANY_CONNECTIONS and no `correlationId` (nothing was read from it); `None` (the
/// connection is closed without it, and the failure logged) if it cannot be encoded.
fn refusal(max: usize) -> Option<Bytes> {
    let payload = AcknowledgmentPayload {
        success: false,
        error_code: Some("TOO_MANY_CONNECTIONS".into()),
        error_message: Some(format!(
            "the service already serves {max} connections; retry later"
        )),
    };
    wire::encode(&wire::new_id(), "ACKNOWLEDGMENT", payload, None)
        .inspect_err(|error| tracing::error!(%error, "cannot encode the connection-limit refusal"))
        .ok()
}

/// Starts graceful shutdown on SIGTERM or SIGINT. The handlers are installed before this
/// returns, so a signal sent as soon as the service reports ready is not missed.
fn stop_on_signal(handle: ipcspec_runtime::server::ServerHandle) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down on signal");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        handle.shutdown();
    });
    Ok(())
}

/// Pings systemd's watchdog at half its interval when the unit sets `WatchdogSec`.
async fn watchdog() {
    let Some(timeout) = sd_notify::watchdog_enabled().filter(|t| !t.is_zero()) else {
        return;
    };
    let mut tick = tokio::time::interval(timeout / 2);
    loop {
        tick.tick().await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
    }
}

fn status(db: &Path, json: bool) -> anyhow::Result<()> {
    if !db.exists() {
        bail!("no database at {} (is --db right?)", db.display());
    }
    let store = Store::open(db)?;
    let users = store.users()?;
    let outbox = store.outbox()?;
    let pending = |user: &str| outbox.iter().filter(|e| e.user_id == user).count();
    if json {
        for user in &users {
            let r = &user.record;
            let line = serde_json::json!({
                "userId": user.user_id,
                "state": r.state.as_str(),
                "backupId": r.backup_id,
                "deadline": r.deadline,
                "delaysRemaining": r.delays_remaining,
                "delayRequestedUntil": r.delay_requested_until,
                "percentComplete": r.percent_complete,
                "bytesTransferred": r.bytes_transferred,
                "totalBytes": r.total_bytes,
                "escalated": r.escalated,
                "pendingMessages": pending(&user.user_id),
                "updatedAtMs": user.updated_at_ms,
            });
            println!("{line}");
        }
        return Ok(());
    }
    println!(
        "{:<20} {:<19} {:>8} {:<21} {:>7} {:>9}",
        "USER", "STATE", "PROGRESS", "DEADLINE", "QUEUED", "ESCALATED"
    );
    for user in &users {
        let r = &user.record;
        let progress = r
            .percent_complete
            .map_or_else(|| "-".to_owned(), |p| format!("{p:.1}%"));
        println!(
            "{:<20} {:<19} {:>8} {:<21} {:>7} {:>9}",
            user.user_id,
            r.state.as_str(),
            progress,
            r.deadline.as_deref().unwrap_or("-"),
            pending(&user.user_id),
            if r.escalated { "yes" } else { "no" }
        );
    }
    println!("{} users", users.len());
    Ok(())
}

fn push(db: &Path, user: Option<&str>, command: PushCommand) -> anyhow::Result<()> {
    let command = match command {
        PushCommand::RequestBackup {
            deadline,
            delays_allowed,
            max_delay_seconds,
            message,
        } => Command::RequestBackup {
            deadline,
            delays_allowed,
            max_delay_ms: max_delay_seconds.map(|s| s.saturating_mul(1000)),
            message,
        },
        PushCommand::Notify {
            level,
            reason,
            message,
        } => Command::Notify {
            level: level.into(),
            reason: reason.into(),
            message,
        },
        PushCommand::DecideDelay { grant, reason } => {
            if user.is_none() {
                bail!("decide-delay answers one user's request: give --user");
            }
            Command::DecideDelay {
                granted: grant,
                reason,
            }
        }
        PushCommand::Configure { settings } => {
            let settings: AgentSettings = ipcspec_runtime::strict::from_str(&settings)
                .context("--settings is not the catalogue's AgentSettings")?;
            Command::Configure { settings }
        }
        PushCommand::Shutdown {
            reason,
            grace_seconds,
            message,
        } => Command::Shutdown {
            reason: reason.into(),
            grace_period_ms: grace_seconds.saturating_mul(1000),
            message,
        },
    };
    check_command(&command)?;
    let directory = parent_or_current(db);
    if !directory.is_dir() {
        bail!(
            "no directory {} for the database {}: give the service's database with --db PATH \
             (MIGRATION_DB), or start the service once, which creates it",
            directory.display(),
            db.display()
        );
    }
    let json = serde_json::to_string(&command)?;
    let seq = Store::enqueue_command(db, command.kind(), user, &json)?;
    println!(
        "queued command {seq} ({}) for {}",
        command.kind(),
        user.unwrap_or("every user")
    );
    Ok(())
}

/// Refuses a command whose messages would break the catalogue's constraints, before it
/// is queued.
fn check_command(command: &Command) -> anyhow::Result<()> {
    use ipcspec_generated::migration::{
        BackupRequestPayload, ConfigurationUpdatePayload, EscalationNoticePayload,
        ShutdownRequestPayload, StatusUpdatePayload,
    };
    use ipcspec_runtime::validate::Validate;
    let now = wire::now();
    let result = match command {
        Command::RequestBackup {
            deadline,
            delays_allowed,
            max_delay_ms,
            message,
        } => BackupRequestPayload {
            backup_id: uuid::Uuid::nil(),
            deadline: *deadline,
            reason: ipcspec_generated::migration::BackupRequestReason::MigrationScheduled,
            message: message.clone(),
            delays_remaining: *delays_allowed,
            max_delay: max_delay_ms.map(Duration::from_millis),
        }
        .validate(),
        Command::Notify {
            level,
            reason,
            message,
        } => EscalationNoticePayload {
            level: *level,
            reason: *reason,
            deadline: now,
            backup_id: None,
            message: message.clone(),
            ticket_id: None,
            contact: None,
        }
        .validate(),
        Command::DecideDelay { reason, .. } => StatusUpdatePayload {
            phase: MigrationPhase::CollectingBackups,
            user_state: ipcspec_generated::migration::UserMigrationState::BackupRequested,
            deadline: None,
            migration_scheduled_at: None,
            users_total: None,
            users_completed: None,
            delay_decision: Some(ipcspec_generated::migration::DelayDecision {
                request_id: "x".into(),
                granted: false,
                new_deadline: None,
                reason: reason.clone(),
            }),
            message: None,
        }
        .validate(),
        Command::Configure { settings } => ConfigurationUpdatePayload {
            config_version: 1,
            settings: settings.clone(),
        }
        .validate(),
        Command::Shutdown {
            reason,
            grace_period_ms,
            message,
        } => ShutdownRequestPayload {
            reason: *reason,
            grace_period: Duration::from_millis(*grace_period_ms),
            message: message.clone(),
        }
        .validate(),
    };
    result.map_err(|errors| anyhow::anyhow!("the command's message would be invalid: {errors}"))
}
