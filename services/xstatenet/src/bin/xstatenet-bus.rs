//! `xstatenet-bus`: the XStateNet message bus (console mode: run it in a terminal and
//! stop it with Ctrl+C), and `send`, `listen` and `status` for scripts and operators.
//! See `--help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ipcspec_generated::xstatenet::{self as catalogue, ServiceLifecycle, ServiceLifecycleTrigger};
use ipcspec_runtime::server::{Server, ServerConfig};
use ipcspec_runtime::transport::unix::{Listener, ListenerOptions};
use ipcspec_xstatenet::Bus;
use ipcspec_xstatenet::bus::connection_limit_line;

#[derive(Parser)]
#[command(
    name = "xstatenet-bus",
    version,
    about = "The XStateNet message bus: routes events between state machines in different processes"
)]
struct Cli {
    /// The socket (default: `$XDG_RUNTIME_DIR/XStateNet.MessageBus`, else
    /// `/run/xstatenet/XStateNet.MessageBus`).
    #[arg(long, env = "XSTATENET_SOCKET", global = true)]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
    /// The directory with `appsettings.json` (and `appsettings.<Environment>.json` for
    /// the environment in `DOTNET_ENVIRONMENT` or `XSTATENET_ENVIRONMENT`); edits apply
    /// without a restart.
    #[arg(long, env = "XSTATENET_CONFIG", default_value = ".")]
    config: PathBuf,
    /// Connections served at once, over the configuration's `MaxConnections`.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Serve Prometheus metrics at http://ADDRESS/metrics (loopback only; port 0 picks
    /// one, logged at start).
    #[arg(long)]
    metrics_address: Option<std::net::SocketAddr>,
    /// Bytes queued for one connection before it counts as a slow consumer and is
    /// disconnected (the catalogue's MAX_PENDING_OUTBOUND_BYTES by default).
    #[arg(long, default_value_t = catalogue::MAX_PENDING_OUTBOUND_BYTES as usize)]
    max_pending_bytes: usize,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Send one event (registering the source machine for the moment).
    Send {
        /// The source machine (registered by this command, so it must be free).
        #[arg(long)]
        from: String,
        /// The target machine.
        #[arg(long)]
        to: String,
        /// The event name.
        #[arg(long)]
        event: String,
        /// The event's payload, as JSON.
        #[arg(long)]
        payload: Option<String>,
    },
    /// Register MACHINE_ID and print every event it receives as a JSON line.
    Listen {
        /// The machine to listen as.
        machine_id: String,
    },
    /// Print the bus's health and metrics as JSON.
    Status,
}

fn default_socket() -> PathBuf {
    socket_for(catalogue::DEFAULT_PIPE_NAME)
}

/// The socket of pipe `name`: in `$XDG_RUNTIME_DIR`, else `/run/xstatenet/`.
fn socket_for(name: &str) -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join(name),
        _ => PathBuf::from("/run/xstatenet").join(name),
    }
}

fn environment() -> Option<String> {
    std::env::var("XSTATENET_ENVIRONMENT")
        .or_else(|_| std::env::var("DOTNET_ENVIRONMENT"))
        .ok()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.is_some() {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("xstatenet-bus: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        None => runtime.block_on(serve(cli)),
        Some(command) => {
            let socket = cli.socket.clone().unwrap_or_else(default_socket);
            runtime.block_on(client_command(&socket, command))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xstatenet-bus: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn client_command(socket: &std::path::Path, command: Command) -> anyhow::Result<()> {
    use ipcspec_xstatenet::{BusClient, Incoming};
    let (client, mut events) = BusClient::connect(socket)
        .await
        .with_context(|| format!("cannot reach the bus at {}", socket.display()))?;
    match command {
        Command::Send {
            from,
            to,
            event,
            payload,
        } => {
            let payload = payload
                .map(|p| serde_json::from_str(&p))
                .transpose()
                .context("--payload is not JSON")?;
            client.register(&from).await?;
            client.send_event(&from, &to, &event, payload).await?;
            // A refusal (unknown target, ...) comes back as an Error; silence means
            // delivered. Asking for health after the event orders the answer after it.
            client.health().await?;
            while let Ok(Some(incoming)) =
                tokio::time::timeout(Duration::from_millis(50), events.recv()).await
            {
                if let Incoming::Error(error) = incoming {
                    anyhow::bail!(
                        "the bus refused the event: {}: {}",
                        error.error_code,
                        error.message
                    );
                }
            }
            Ok(())
        }
        Command::Listen { machine_id } => {
            client.register(&machine_id).await?;
            while let Some(incoming) = events.recv().await {
                let line = match incoming {
                    Incoming::Event(event) => serde_json::to_string(&event)?,
                    Incoming::Error(error) => serde_json::to_string(&error)?,
                };
                println!("{line}");
            }
            Ok(())
        }
        Command::Status => {
            let health = client.health().await?;
            let metrics = client.metrics().await?;
            println!(
                "{}",
                serde_json::json!({"health": health, "metrics": metrics})
            );
            Ok(())
        }
    }
}

/// Installs the logger with a filter the configuration can change later; `RUST_LOG`, when
/// set, wins over the configuration.
fn init_logging(filter: &str) -> Option<ReloadHandle> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let from_env = std::env::var("RUST_LOG").ok();
    let initial = tracing_subscriber::EnvFilter::try_new(from_env.as_deref().unwrap_or(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (layer, handle) = tracing_subscriber::reload::Layer::new(initial);
    tracing_subscriber::registry()
        .with(layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    from_env.is_none().then_some(handle)
}

type ReloadHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// Every `interval`, closes connections whose peer process is gone (the socket can
/// outlive its process when a child inherited it).
async fn health_checks(
    handle: ipcspec_runtime::server::ServerHandle,
    mut interval: tokio::sync::watch::Receiver<Duration>,
) {
    loop {
        let period = *interval.borrow_and_update();
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            changed = interval.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        for connection in handle.connections() {
            let pid = connection.peer().and_then(|p| p.pid);
            if let Some(pid) = pid
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                tracing::warn!(connection = %connection.id(), pid, "health check: the peer process is gone; closing");
                handle
                    .recorder()
                    .record_message(ipcspec_runtime::server::Direction::In, "dead_peer");
                connection.close();
            }
        }
    }
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

/// The Prometheus page: the server's counters (messages in and out by type, errors,
/// connections, the latency histogram), the bus's routing counters and each
/// connection's queue depth.
fn prometheus(handle: &ipcspec_runtime::server::ServerHandle, bus: &Bus) -> String {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering;
    let mut out = handle.prometheus();
    let counters = [
        (
            "routed",
            "Events delivered to the target's queue.",
            &bus.counters.routed,
        ),
        (
            "refused",
            "Events refused (unknown target, source not registered, invalid).",
            &bus.counters.refused,
        ),
        (
            "dropped",
            "Events dropped because the target was too slow or closing.",
            &bus.counters.dropped,
        ),
        (
            "slow_consumers",
            "Connections closed as slow consumers.",
            &bus.counters.slow_consumers,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP xstatenet_bus_events_{name}_total {help}");
        let _ = writeln!(out, "# TYPE xstatenet_bus_events_{name}_total counter");
        let _ = writeln!(
            out,
            "xstatenet_bus_events_{name}_total {}",
            value.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP xstatenet_bus_connection_queue_depth Frames waiting to be written, per connection."
    );
    let _ = writeln!(out, "# TYPE xstatenet_bus_connection_queue_depth gauge");
    let connections = handle.connections();
    for connection in &connections {
        let _ = writeln!(
            out,
            "xstatenet_bus_connection_queue_depth{{connection=\"{}\"}} {}",
            connection.id(),
            connection.queued()
        );
    }
    let _ = writeln!(
        out,
        "# HELP xstatenet_bus_connection_queue_bytes Bytes waiting to be written, per connection \
         (a connection reaching --max-pending-bytes is disconnected as a slow consumer)."
    );
    let _ = writeln!(out, "# TYPE xstatenet_bus_connection_queue_bytes gauge");
    for connection in &connections {
        let _ = writeln!(
            out,
            "xstatenet_bus_connection_queue_bytes{{connection=\"{}\"}} {}",
            connection.id(),
            connection.queued_bytes()
        );
    }
    let _ = writeln!(
        out,
        "# HELP xstatenet_bus_registered_machines Machines registered now."
    );
    let _ = writeln!(out, "# TYPE xstatenet_bus_registered_machines gauge");
    let _ = writeln!(
        out,
        "xstatenet_bus_registered_machines {}",
        bus.machines().len()
    );
    out
}

/// The bus process's `ServiceLifecycle`; every change goes through the generated machine.
#[derive(Debug, Clone)]
struct Lifecycle(Arc<std::sync::Mutex<ServiceLifecycle>>);

impl Lifecycle {
    fn new() -> Lifecycle {
        Lifecycle(Arc::new(std::sync::Mutex::new(ServiceLifecycle::INITIAL)))
    }

    fn take(&self, trigger: ServiceLifecycleTrigger) {
        let mut state = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match state.next(trigger) {
            Ok(next) => *state = next,
            Err(refused) => tracing::warn!(%refused, "ServiceLifecycle transition refused"),
        }
    }
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let lifecycle = Lifecycle::new();
    let failed = |error: anyhow::Error| {
        lifecycle.take(ServiceLifecycleTrigger::Error);
        error
    };
    let files =
        ipcspec_xstatenet::config::ConfigFiles::in_dir(&cli.config, environment().as_deref());
    let settings = ipcspec_xstatenet::config::load(&files).map_err(failed)?;
    let reload = init_logging(&settings.filter());
    let socket = cli
        .socket
        .clone()
        .unwrap_or_else(|| socket_for(&settings.pipe_name));
    let max = cli
        .max_connections
        .unwrap_or(settings.max_connections as usize);
    // 0666: any local process may use the bus, as the seed's pipe allows everyone.
    let options = ListenerOptions {
        mode: 0o666,
        // Events stream to a consumer in large writes; with the kernel's default send
        // buffer (208 KiB) the writer waits for the reader after every batch. Measured
        // with `cargo xtask bench bus`: one-to-one 0.9 -> 1.1 M events/s, 4-to-1
        // 0.8 -> 1.1 M. Kernel memory is used only while events wait.
        send_buffer_bytes: Some(1024 * 1024),
        ..ListenerOptions::default()
    };
    let listener = Listener::bind(&socket, options)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another bus running?)",
                socket.display()
            )
        })
        .map_err(failed)?;
    lifecycle.take(ServiceLifecycleTrigger::Listening);
    let config = ServerConfig {
        max_connections: max,
        // Bounded in bytes, as the catalogue says; the frame count is no extra limit.
        outbound_queue_capacity: usize::MAX,
        outbound_queue_bytes: cli.max_pending_bytes.max(1),
        frame_read_timeout: Some(Duration::from_millis(u64::from(
            catalogue::LINE_READ_TIMEOUT_MS,
        ))),
        // The bus has no heartbeat: a client may stay idle for ever.
        stale_after: None,
        refusal: Some(Arc::new(|info| connection_limit_line(info.max_connections))),
        ..ServerConfig::from_profile(&catalogue::WIRE)
    };
    let server = Server::new(config, Bus::new());
    let handle = server.handle();
    if let Some(address) = cli.metrics_address {
        let render: ipcspec_runtime::metrics_http::Render = {
            let handle = handle.clone();
            let bus = Arc::clone(server.service());
            Arc::new(move || prometheus(&handle, &bus))
        };
        let (bound, serve) = ipcspec_runtime::metrics_http::bind(address, render)
            .await
            .with_context(|| format!("cannot serve metrics on {address}"))?;
        tracing::info!("metrics on http://{bound}/metrics");
        tokio::spawn(serve);
    }
    let (interval_tx, interval_rx) = tokio::sync::watch::channel(settings.health_check_interval);
    tokio::spawn(health_checks(handle.clone(), interval_rx));
    {
        let handle = handle.clone();
        let fixed_max = cli.max_connections.is_some();
        tokio::spawn(ipcspec_xstatenet::config::watch(
            files,
            settings,
            Duration::from_millis(500),
            move |old, new| {
                if !fixed_max && old.max_connections != new.max_connections {
                    handle.set_max_connections(new.max_connections as usize);
                    tracing::info!(max = new.max_connections, "MaxConnections changed");
                }
                if old.health_check_interval != new.health_check_interval {
                    interval_tx.send_replace(new.health_check_interval);
                }
                if let Some(reload) = &reload
                    && let Ok(filter) = tracing_subscriber::EnvFilter::try_new(new.filter())
                    && reload.reload(filter).is_ok()
                {
                    tracing::info!(filter = new.filter(), "log levels changed");
                }
                if old.pipe_name != new.pipe_name {
                    tracing::warn!("PipeName changes apply at the next start");
                }
            },
        ));
    }
    // Installed before the socket is announced, so an early signal is not missed.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    {
        let handle = handle.clone();
        let lifecycle = lifecycle.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = term.recv() => {}
            }
            lifecycle.take(ServiceLifecycleTrigger::Stop);
            tracing::info!("stopping: telling every client, then draining");
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            if let Some(line) = ipcspec_xstatenet::bus::shutting_down_line() {
                handle.broadcast(line);
            }
            handle.shutdown();
        });
    }
    tokio::spawn(watchdog());
    tracing::info!("listening on {}", socket.display());
    if let Err(error) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::debug!(%error, "no readiness notification sent");
    }
    let report = server.serve(listener).await;
    lifecycle.take(ServiceLifecycleTrigger::Closed);
    tracing::info!(drained = report.drained, "stopped");
    Ok(())
}
