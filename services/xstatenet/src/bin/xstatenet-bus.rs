//! `xstatenet-bus`: the XStateNet message bus. Console mode: run it in a terminal and
//! stop it with Ctrl+C. See `--help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ipcspec_generated::xstatenet as catalogue;
use ipcspec_runtime::codec::Framing;
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
    #[arg(long, env = "XSTATENET_SOCKET")]
    socket: Option<PathBuf>,
    /// Connections served at once; more get CONNECTION_LIMIT and are closed.
    #[arg(long, default_value_t = catalogue::MAX_CONNECTIONS as usize)]
    max_connections: usize,
    /// Frames queued per connection before it counts as a slow consumer.
    #[arg(long, default_value_t = 4096)]
    queue: usize,
}

fn default_socket() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join(catalogue::DEFAULT_PIPE_NAME),
        _ => PathBuf::from(catalogue::SYSTEM_SOCKET_PATH),
    }
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
    match runtime.block_on(serve(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xstatenet-bus: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let socket = cli.socket.unwrap_or_else(default_socket);
    // 0666: any local process may use the bus, as the seed's pipe allows everyone.
    let options = ListenerOptions {
        mode: 0o666,
        ..ListenerOptions::default()
    };
    let listener = Listener::bind(&socket, options).await.with_context(|| {
        format!(
            "cannot listen on {} (is another bus running?)",
            socket.display()
        )
    })?;
    let max = cli.max_connections;
    let config = ServerConfig {
        framing: Framing::Newline,
        max_frame_bytes: catalogue::MAX_LINE_BYTES as usize,
        max_connections: max,
        outbound_queue_capacity: cli.queue.max(1),
        frame_read_timeout: Duration::from_millis(u64::from(catalogue::LINE_READ_TIMEOUT_MS)),
        // The bus has no heartbeat: a client may stay idle for ever.
        stale_after: None,
        refusal: Some(Arc::new(move |_| Some(connection_limit_line(max)))),
        ..ServerConfig::default()
    };
    let server = Server::new(config, Bus::new());
    let handle = server.handle();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping");
        handle.shutdown();
    });
    tracing::info!("listening on {}", socket.display());
    let report = server.serve(listener).await;
    tracing::info!(drained = report.drained, "stopped");
    Ok(())
}
