//! `migration-agent`: the per-user Migration Agent as a scriptable command. It connects
//! to the service (announcing itself with AGENT_STARTED on every connection), prints
//! every message the service sends as one JSON line on stdout, acknowledges them, and
//! sends agent messages given on the command line (`send`) or as JSON lines on stdin
//! (`run`). See `--help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use ipcspec_generated::migration::{self as catalogue, AcknowledgmentPayload, AgentMessage};
use ipcspec_migration::agent::{Agent, AgentConfig, Event, check_agent_message, queueing};
use ipcspec_migration::identity::current_login_name;
use ipcspec_migration::wire;
use ipcspec_runtime::client::reconnect::Queueing;
use ipcspec_runtime::strict;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Semaphore, mpsc, oneshot};

#[derive(Parser)]
#[command(
    name = "migration-agent",
    version,
    about = "The Migration Agent: talks to the Migration Service for the current user."
)]
struct Cli {
    /// The service's socket.
    #[arg(long, env = "MIGRATION_SOCKET", default_value = catalogue::SOCKET_PATH, global = true)]
    socket: PathBuf,
    /// The user to announce (default: the login name of the process's user). The service
    /// refuses any other than the process's own.
    #[arg(long, global = true)]
    user: Option<String>,
    /// The login session (default: $XDG_SESSION_ID, else `agent-<pid>`).
    #[arg(long, env = "XDG_SESSION_ID", global = true)]
    session: Option<String>,
    /// Seconds between the agent's HEARTBEATs.
    #[arg(long, default_value_t = u64::from(catalogue::HEARTBEAT_INTERVAL_SECONDS), global = true)]
    heartbeat_seconds: u64,
    /// Seconds to wait for an acknowledgment before the connection is considered broken
    /// (then the agent reconnects and resends).
    #[arg(long, default_value_t = u64::from(catalogue::ACKNOWLEDGMENT_TIMEOUT_SECONDS), global = true)]
    ack_timeout_seconds: u64,
    /// Seconds without anything from the service before the connection is considered
    /// dead.
    #[arg(long, default_value_t = u64::from(catalogue::STALE_CONNECTION_SECONDS), global = true)]
    stale_seconds: u64,
    /// Connection attempts in a row before the agent gives up.
    #[arg(long, default_value_t = catalogue::MAX_RECONNECT_ATTEMPTS, global = true)]
    reconnect_attempts: u32,
    /// Milliseconds before the first reconnection attempt (doubling up to the catalogue's
    /// RECONNECT_MAX_DELAY_MS).
    #[arg(long, default_value_t = catalogue::RECONNECT_INITIAL_DELAY_MS, global = true)]
    reconnect_delay_ms: u32,
    /// The version to announce in AGENT_STARTED.
    #[arg(long, default_value = catalogue::PROTOCOL_VERSION, global = true)]
    agent_version: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stay connected: print what the service sends, one JSON line each, and send the
    /// agent messages read from stdin, one JSON object per line:
    /// `{"type": "USER_ACTION", "payload": {...}}`, optionally with an explicit `"id"`.
    /// `userId` is filled in when the payload has none. At the end of stdin the agent
    /// waits for every acknowledgment and exits (unless --stay).
    Run {
        /// Keep running after stdin ends, until SHUTDOWN_REQUEST or a signal.
        #[arg(long)]
        stay: bool,
    },
    /// Send one message, wait for its acknowledgment, print what the service sent
    /// meanwhile, and exit: 0 when accepted, 1 when refused.
    Send {
        /// The message.
        #[arg(value_enum)]
        message: Kind,
        /// Its payload as JSON (`userId` is filled in; `startedAt`/`completedAt` default
        /// to now).
        #[arg(default_value = "{}")]
        payload: String,
        /// Seconds to wait for the acknowledgment.
        #[arg(long, default_value_t = u64::from(catalogue::ACKNOWLEDGMENT_TIMEOUT_SECONDS))]
        timeout: u64,
    },
}

/// The messages an agent sends besides AGENT_STARTED, HEARTBEAT and ACKNOWLEDGMENT (which
/// it sends by itself).
#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    BackupStarted,
    BackupProgress,
    BackupCompleted,
    DelayRequest,
    UserAction,
    ErrorReport,
}

impl Kind {
    fn wire_name(self) -> &'static str {
        match self {
            Kind::BackupStarted => "BACKUP_STARTED",
            Kind::BackupProgress => "BACKUP_PROGRESS",
            Kind::BackupCompleted => "BACKUP_COMPLETED",
            Kind::DelayRequest => "DELAY_REQUEST",
            Kind::UserAction => "USER_ACTION",
            Kind::ErrorReport => "ERROR_REPORT",
        }
    }
}

/// Builds the message `message_type` from `payload`, filling `userId` and the
/// timestamps a script rarely wants to write.
fn message(message_type: &str, mut payload: Value, user: &str) -> anyhow::Result<AgentMessage> {
    let Value::Object(fields) = &mut payload else {
        bail!("the payload must be a JSON object");
    };
    fields
        .entry("userId")
        .or_insert_with(|| Value::String(user.to_owned()));
    let now = Value::String(wire::rfc3339(wire::now()));
    match message_type {
        "BACKUP_STARTED" => {
            fields.entry("startedAt").or_insert(now);
        }
        "BACKUP_COMPLETED" => {
            fields.entry("completedAt").or_insert(now);
        }
        _ => {}
    }
    let context = || format!("invalid {message_type} payload");
    let message = match message_type {
        "BACKUP_STARTED" => {
            AgentMessage::BackupStarted(strict::from_value(payload).with_context(context)?)
        }
        "BACKUP_PROGRESS" => {
            AgentMessage::BackupProgress(strict::from_value(payload).with_context(context)?)
        }
        "BACKUP_COMPLETED" => {
            AgentMessage::BackupCompleted(strict::from_value(payload).with_context(context)?)
        }
        "DELAY_REQUEST" => {
            AgentMessage::DelayRequest(strict::from_value(payload).with_context(context)?)
        }
        "USER_ACTION" => {
            AgentMessage::UserAction(strict::from_value(payload).with_context(context)?)
        }
        "ERROR_REPORT" => {
            AgentMessage::ErrorReport(strict::from_value(payload).with_context(context)?)
        }
        other => bail!(
            "{other:?} is not a message the agent sends from a script (BACKUP_STARTED, \
             BACKUP_PROGRESS, BACKUP_COMPLETED, DELAY_REQUEST, USER_ACTION, ERROR_REPORT)"
        ),
    };
    check_agent_message(&message).map_err(|error| anyhow!("{message_type}: {error}"))?;
    Ok(message)
}

/// Exit codes: 0 accepted, 1 refused by the service, 2 could not be sent.
const REFUSED: u8 = 1;
const FAILED: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("migration-agent: cannot start the async runtime: {error}");
            return ExitCode::from(FAILED);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("migration-agent: {error:#}");
            ExitCode::from(FAILED)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let user = match cli.user {
        Some(user) => user,
        None => current_login_name().context("the process's uid has no login name; give --user")?,
    };
    let session = cli
        .session
        .unwrap_or_else(|| format!("agent-{}", std::process::id()));
    let mut config = AgentConfig {
        version: cli.agent_version,
        heartbeat_interval: Duration::from_secs(cli.heartbeat_seconds.max(1)),
        ack_timeout: Duration::from_secs(cli.ack_timeout_seconds.max(1)),
        stale_after: Duration::from_secs(cli.stale_seconds.max(1)),
        ..AgentConfig::new(&cli.socket, &user, &session)
    };
    config.policy.max_attempts = cli.reconnect_attempts;
    config.policy.initial_delay = Duration::from_millis(u64::from(cli.reconnect_delay_ms));
    // For `send`, validate before connecting: a typo should not need a service.
    let one = match &cli.command {
        Command::Send {
            message: kind,
            payload,
            timeout,
        } => {
            let payload: Value =
                serde_json::from_str(payload).context("the payload is not JSON")?;
            Some((
                message(kind.wire_name(), payload, &user)?,
                Duration::from_secs(*timeout),
            ))
        }
        Command::Run { .. } => None,
    };
    let (agent, events) = Agent::connect(config)
        .await
        .with_context(|| format!("cannot connect to the service at {}", cli.socket.display()))?;
    let printer = tokio::spawn(print_events(events));
    match (cli.command, one) {
        (Command::Send { .. }, Some((message, timeout))) => {
            send_one(&agent, &message, timeout, printer).await
        }
        (Command::Run { stay }, _) => run_lines(agent, &user, stay, printer).await,
        (Command::Send { .. }, None) => Ok(FAILED),
    }
}

/// How the event printer ended.
enum End {
    /// The service refused AGENT_STARTED for good.
    Rejected,
    /// The service asked the agent to exit.
    Shutdown,
    /// Reconnecting failed.
    GaveUp,
    /// The agent was dropped.
    Closed,
}

async fn print_events(mut events: mpsc::Receiver<Event>) -> End {
    use std::io::Write;
    while let Some(event) = events.recv().await {
        match event {
            Event::Received { json, .. } => {
                let line =
                    serde_json::from_str::<Value>(&json).map_or(json, |value| value.to_string());
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Event::Rejected { code, message } => {
                eprintln!("migration-agent: the service refused this agent: {code}: {message}");
                return End::Rejected;
            }
            Event::Shutdown(request) => {
                eprintln!(
                    "migration-agent: the service asked the agent to exit ({})",
                    request.reason.as_str()
                );
                return End::Shutdown;
            }
            Event::GaveUp(error) => {
                eprintln!("migration-agent: {error}");
                return End::GaveUp;
            }
        }
    }
    End::Closed
}

fn verdict(ack: &AcknowledgmentPayload) -> u8 {
    // DUPLICATE_MESSAGE means an earlier copy was processed: delivered.
    if ack.success || ack.error_code.as_deref() == Some("DUPLICATE_MESSAGE") {
        0
    } else {
        eprintln!(
            "migration-agent: refused: {}: {}",
            ack.error_code.as_deref().unwrap_or("?"),
            ack.error_message.as_deref().unwrap_or("")
        );
        REFUSED
    }
}

async fn send_one(
    agent: &Agent,
    message: &AgentMessage,
    timeout: Duration,
    mut printer: tokio::task::JoinHandle<End>,
) -> anyhow::Result<u8> {
    let (_, ack) = agent.send(message).await?;
    tokio::select! {
        ack = tokio::time::timeout(timeout, ack) => {
            // Let the printer write the acknowledgment line (and anything before it).
            tokio::time::sleep(Duration::from_millis(50)).await;
            match ack {
                Ok(Ok(ack)) => Ok(verdict(&ack)),
                Ok(Err(_)) => bail!("the agent stopped before the acknowledgment"),
                Err(_) => bail!("no acknowledgment within {} s", timeout.as_secs()),
            }
        }
        end = &mut printer => match end {
            Ok(End::Rejected | End::GaveUp) => Ok(FAILED),
            _ => bail!("the connection ended before the acknowledgment"),
        },
    }
}

async fn run_lines(
    agent: Agent,
    user: &str,
    stay: bool,
    mut printer: tokio::task::JoinHandle<End>,
) -> anyhow::Result<u8> {
    let agent = Arc::new(agent);
    let limit = catalogue::MAX_QUEUED_MESSAGES as usize;
    let in_flight = Arc::new(Semaphore::new(limit));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut refused = 0_u32;
    let (verdicts, mut results) = mpsc::unbounded_channel::<u8>();
    let mut line_number = 0_u64;
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line.context("cannot read stdin")?,
            end = &mut printer => return Ok(ended(end)),
        };
        let Some(line) = line else { break };
        line_number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let (id, frame, queueing) = match parse_line(&line, user) {
            Ok(parsed) => parsed,
            Err(error) => {
                eprintln!("migration-agent: stdin line {line_number}: {error:#}");
                refused += 1;
                continue;
            }
        };
        let permit = Arc::clone(&in_flight)
            .acquire_owned()
            .await
            .context("the in-flight limit closed")?;
        let ack: oneshot::Receiver<AcknowledgmentPayload> =
            agent.send_frame_with(&id, frame, queueing).await?;
        let verdicts = verdicts.clone();
        tokio::spawn(async move {
            let code = match ack.await {
                Ok(ack) => verdict(&ack),
                Err(_) => FAILED,
            };
            let _ = verdicts.send(code);
            drop(permit);
        });
    }
    drop(verdicts);
    // Every message acknowledged (or the connection given up).
    loop {
        tokio::select! {
            code = results.recv() => match code {
                Some(0) => {}
                Some(_) => refused += 1,
                None => break,
            },
            end = &mut printer => return Ok(ended(end)),
        }
    }
    if stay {
        return Ok(ended(printer.await));
    }
    Ok(if refused > 0 { REFUSED } else { 0 })
}

fn ended(end: Result<End, tokio::task::JoinError>) -> u8 {
    match end {
        Ok(End::Shutdown | End::Closed) => 0,
        Ok(End::Rejected | End::GaveUp) | Err(_) => FAILED,
    }
}

fn parse_line(line: &str, user: &str) -> anyhow::Result<(String, bytes::Bytes, Queueing)> {
    let Value::Object(mut object) = serde_json::from_str(line).context("not JSON")? else {
        bail!("not a JSON object");
    };
    let message_type = match object.remove("type") {
        Some(Value::String(t)) => t,
        _ => bail!("no \"type\""),
    };
    let payload = object
        .remove("payload")
        .unwrap_or_else(|| Value::Object(Map::new()));
    let id = match object.remove("id") {
        Some(Value::String(id)) => id,
        None => wire::new_id(),
        Some(_) => bail!("\"id\" must be a string"),
    };
    if let Some(key) = object.keys().next() {
        bail!("unknown key {key:?} (expected type, payload, id)");
    }
    let message = message(&message_type, payload, user)?;
    let frame = wire::encode_agent(&id, &message)?;
    Ok((id, frame, queueing(&message)))
}
