//! `ipcspec-bench`: the Migration protocol benchmark.
//!
//! It compares, in one run, the request/acknowledgment round trip (p50, p99, mean) and
//! the pipelined one-way throughput of one Migration USER_ACTION frame over a Unix
//! socket, for five implementations:
//!
//! - (a) `raw`: blocking std `UnixStream`s, the server answering with a precomputed ack
//!   frame and no parsing: the limit ([`raw`]);
//! - (b) `tokio-codec`: tokio, `LengthDelimitedCodec` and `serde_json` with hand-written
//!   structs, as one writes it by hand ([`codec`]);
//! - (c) `tarpc`: an RPC over tarpc's JSON `serde_transport` ([`rpc`]);
//! - (d) `runtime`: the project's runtime server with the generated dispatcher and
//!   validation, and the runtime client ([`runtime`]);
//! - (e) `durable`: the real `migration-service`, acknowledging after a durable SQLite
//!   commit, driven by the runtime client.
//!
//! Every row runs its server and its client as separate processes:
//! `ipcspec-bench server --impl IMPL --socket PATH` and
//! `ipcspec-bench client --impl IMPL --socket PATH --mode rtt|throughput --count N`,
//! which prints one line of JSON ([`measure::ClientReport`]). `ipcspec-bench migration`
//! ([`suite`]) runs every row twice (unpinned, then both processes pinned to CPU 0 with
//! `taskset`), prints the table and writes it as JSON; `cargo xtask bench migration`
//! builds the release binaries and runs it.
//!
//! The request and ack bytes are described in [`wire`]. Tokio-based rows (servers and
//! clients) run on a current-thread runtime by default (`--flavor`), so the task
//! hand-offs inside a process do not add cross-CPU wake-ups; the table says which.

mod bus;
mod bus_suite;
mod codec;
mod measure;
mod raw;
mod rpc;
mod runtime;
mod suite;
mod validation;
mod wire;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "ipcspec-bench", about = "The Migration protocol benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one implementation on a Unix socket until killed.
    Server {
        /// The implementation.
        #[arg(long = "impl", value_enum)]
        implementation: ServerImpl,
        /// The socket path to bind.
        #[arg(long)]
        socket: PathBuf,
        /// The tokio runtime the server runs on.
        #[arg(long, value_enum, default_value_t = Flavor::CurrentThread)]
        flavor: Flavor,
    },
    /// Measure one implementation against a running server; prints one line of JSON.
    Client {
        /// The implementation.
        #[arg(long = "impl", value_enum)]
        implementation: ClientImpl,
        /// The server's socket path.
        #[arg(long)]
        socket: PathBuf,
        /// Sequential round trips, or pipelined throughput.
        #[arg(long, value_enum)]
        mode: Mode,
        /// Measured requests.
        #[arg(long)]
        count: u64,
        /// Round trips before measuring.
        #[arg(long, default_value_t = 0)]
        warmup: u64,
        /// The payload's `userId` (default: this process's login name).
        #[arg(long)]
        user: Option<String>,
        /// Calls in flight at once in tarpc's throughput mode.
        #[arg(long, default_value_t = 512)]
        window: usize,
        /// The tokio runtime the client runs on.
        #[arg(long, value_enum, default_value_t = Flavor::CurrentThread)]
        flavor: Flavor,
    },
    /// Run the whole Migration benchmark: every row, unpinned and pinned.
    Migration(suite::SuiteArgs),
    /// One process of the message-bus benchmark (xstatenet-bus or NATS).
    BusClient(bus::ClientArgs),
    /// The message-bus benchmark: xstatenet-bus against NATS, unpinned and pinned.
    Bus(bus_suite::BusArgs),
}

/// Implementations with a server in this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServerImpl {
    Raw,
    TokioCodec,
    Tarpc,
    Runtime,
}

/// Implementations with a client in this binary (`durable` talks to `migration-service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ClientImpl {
    Raw,
    TokioCodec,
    Tarpc,
    Runtime,
    Durable,
}

impl ClientImpl {
    /// The name used on the command line and in reports.
    fn name(self) -> &'static str {
        match self {
            ClientImpl::Raw => "raw",
            ClientImpl::TokioCodec => "tokio-codec",
            ClientImpl::Tarpc => "tarpc",
            ClientImpl::Runtime => "runtime",
            ClientImpl::Durable => "durable",
        }
    }
}

/// What a client measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Sequential request/ack round trips, each timed.
    Rtt,
    /// Requests written without waiting while acks are read; messages per second.
    Throughput,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Rtt => "rtt",
            Mode::Throughput => "throughput",
        }
    }
}

/// The tokio runtime a process runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Flavor {
    /// One thread (`new_current_thread`).
    CurrentThread,
    /// A worker per CPU (`new_multi_thread`, what `#[tokio::main]` builds).
    MultiThread,
}

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "current-thread",
            Flavor::MultiThread => "multi-thread",
        }
    }

    fn runtime(self) -> std::io::Result<tokio::runtime::Runtime> {
        match self {
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build(),
        }
    }
}

/// What a client run needs.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The server's socket.
    pub socket: PathBuf,
    /// Round trips or throughput.
    pub mode: Mode,
    /// Measured requests (numbered `warmup .. warmup + count`).
    pub count: u64,
    /// Warm-up round trips (requests `0 .. warmup`).
    pub warmup: u64,
    /// The payload's `userId`.
    pub user: String,
    /// tarpc's calls in flight in throughput mode.
    pub window: usize,
}

/// Tells the orchestrator the server accepts connections (it waits for this line).
pub fn announce(socket: &Path) {
    eprintln!("ipcspec-bench: listening on {}", socket.display());
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Server {
            implementation,
            socket,
            flavor,
        } => match implementation {
            ServerImpl::Raw => raw::serve(&socket),
            ServerImpl::TokioCodec => flavor.runtime()?.block_on(codec::serve(&socket)),
            ServerImpl::Tarpc => flavor.runtime()?.block_on(rpc::serve(&socket)),
            ServerImpl::Runtime => flavor.runtime()?.block_on(runtime::serve(&socket)),
        },
        Command::Client {
            implementation,
            socket,
            mode,
            count,
            warmup,
            user,
            window,
            flavor,
        } => {
            let user = match user {
                Some(user) => user,
                None => wire::login_name()?,
            };
            wire::check_user(&user)?;
            let options = ClientOptions {
                socket,
                mode,
                count,
                warmup,
                user,
                window,
            };
            let report = match implementation {
                ClientImpl::Raw => raw::client(&options)?,
                ClientImpl::TokioCodec => flavor.runtime()?.block_on(codec::client(&options))?,
                ClientImpl::Tarpc => flavor.runtime()?.block_on(rpc::client(&options))?,
                ClientImpl::Runtime => flavor
                    .runtime()?
                    .block_on(runtime::client(&options, false))?,
                ClientImpl::Durable => flavor
                    .runtime()?
                    .block_on(runtime::client(&options, true))?,
            };
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Migration(args) => suite::run(&args),
        Command::BusClient(args) => bus::run(&args),
        Command::Bus(args) => bus_suite::run(&args),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ipcspec-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
