//! `ipcspec-bench bus-client`: one process of the message-bus benchmark, talking either
//! to `xstatenet-bus` (newline-delimited JSON over a Unix socket) or to `nats-server`
//! (through `async-nats`, one subject per machine: `machine.<id>`).
//!
//! Both systems carry the same event body, the bus's `MachineEvent`
//! (`{"SourceMachineId":…,"TargetMachineId":…,"EventName":…,"Payload":{"n":…},"Timestamp":…}`),
//! and every receiver parses it. A process plays one role:
//!
//! - `echo`: answers each `PING` with a `PONG` carrying the same `n` to its source;
//! - `ping`: sequential PING/PONG round trips to `--peer`, each timed;
//! - `request`: the same with NATS's request/reply (`Client::request`: a reply subject
//!   per request, the echo answering on it); on the bus, whose request/reply is an event
//!   and the event answering it, the same as `ping`;
//! - `sender`: streams `--count` events to `--peer` without waiting;
//! - `receiver`: counts `--count` events, whatever their source.
//!
//! Orchestration over stdio: once connected and registered (bus) or subscribed and
//! flushed (NATS), the process prints `ready` on stdout; `ping`, `sender` and `receiver`
//! then wait for a `go` line on stdin (the receiver's clock starts there). `ping` and
//! `receiver` print one line of JSON ([`BusReport`]) when done; `echo` and `sender` stay
//! connected until stdin closes (so no event is lost to an early close).

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::measure::percentile;

/// How long a receiver or pinger waits for the next message before giving up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A receiver that has had events and then hears nothing for this long counts the rest
/// as lost (async-nats drops silently when a subscription's buffer fills; the bus
/// disconnects a slow consumer) and reports what arrived.
const QUIET: Duration = Duration::from_secs(2);

/// The broker a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// `xstatenet-bus` on a Unix socket.
    Bus,
    /// `nats-server` through `async-nats`.
    Nats,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Bus => "bus",
            System::Nats => "nats",
        }
    }
}

/// What one client process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Echo,
    Ping,
    Request,
    Sender,
    Receiver,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Echo => "echo",
            Role::Ping => "ping",
            Role::Request => "request",
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        }
    }
}

/// Options of `ipcspec-bench bus-client`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The broker.
    #[arg(long, value_enum)]
    pub system: System,
    /// The bus's socket path, or the NATS server URL (`nats://127.0.0.1:PORT`).
    #[arg(long)]
    pub address: String,
    /// What this process does.
    #[arg(long, value_enum)]
    pub role: Role,
    /// This process's machine id.
    #[arg(long)]
    pub machine: String,
    /// The machine sent to (`ping`, `sender`).
    #[arg(long, default_value = "")]
    pub peer: String,
    /// Measured round trips (`ping`), events sent (`sender`) or expected (`receiver`).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Round trips before measuring (`ping`).
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
}

/// The one-line JSON result of a `ping` or `receiver` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusReport {
    pub system: String,
    pub role: String,
    /// Measured round trips or expected events.
    pub count: u64,
    /// Answers (`ping`) or events (`receiver`) received and checked.
    pub received: u64,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub mean_us: Option<f64>,
    /// `ping`: the sum of the measured round trips; `receiver`: from `go` to the last event.
    pub elapsed_s: f64,
    /// `count / elapsed_s`.
    pub msgs_per_s: f64,
}

/// The event both systems carry (the bus's `MachineEvent`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    pub source_machine_id: String,
    pub target_machine_id: String,
    pub event_name: String,
    pub payload: EventPayload,
    pub timestamp: String,
}

/// The event's payload.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct EventPayload {
    pub n: u64,
}

/// A line the bus sends that carries an event.
#[derive(Debug, Deserialize)]
struct BusEventLine {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Payload")]
    payload: Event,
}

/// A `SendEvent` line.
#[derive(Debug, Serialize)]
struct SendEvent<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "Payload")]
    payload: &'a Event,
}

/// The timestamp events carry: the process's start, RFC 3339.
fn timestamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// The event of an `EventReceived` line, or why the line is not one.
fn parse_bus_line(line: &str) -> anyhow::Result<Event> {
    match serde_json::from_str::<BusEventLine>(line) {
        Ok(event) if event.kind == "EventReceived" => Ok(event.payload),
        _ => bail!("unexpected line from the bus: {line}"),
    }
}

/// The `Register` line for `machine` (the bus answers `Registered`).
fn register_line(machine: &str) -> String {
    let line = serde_json::json!({
        "Type": "Register",
        "Id": "r1",
        "Payload": {
            "MachineId": machine,
            "ProcessName": "ipcspec-bench",
            "ProcessId": std::process::id(),
            "RegisteredAt": timestamp(),
        }
    });
    format!("{line}\n")
}

/// Blocks until stdin has a `go` line.
fn wait_go() -> anyhow::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            bail!("stdin closed before `go`");
        }
        if line.trim() == "go" {
            return Ok(());
        }
    }
}

/// Blocks until stdin closes.
fn wait_stdin_closed() {
    let mut sink = String::new();
    while matches!(std::io::stdin().lock().read_line(&mut sink), Ok(n) if n > 0) {
        sink.clear();
    }
}

/// Tells the orchestrator the process is connected and registered.
fn announce_ready() {
    println!("ready");
}

/// Runs one client process on a current-thread runtime.
pub fn run(args: &ClientArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = match args.system {
        System::Bus => runtime.block_on(bus_client(args))?,
        System::Nats => runtime.block_on(nats_client(args))?,
    };
    if let Some(report) = report {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

/// A connection to the bus with its machine registered.
struct BusConnection {
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    writer: BufWriter<OwnedWriteHalf>,
}

impl BusConnection {
    async fn open(socket: &str, machine: &str) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(PathBuf::from(socket))
            .await
            .with_context(|| format!("connecting to {socket}"))?;
        let (read, write) = stream.into_split();
        let mut connection = BusConnection {
            lines: BufReader::with_capacity(64 * 1024, read).lines(),
            writer: BufWriter::with_capacity(64 * 1024, write),
        };
        connection
            .writer
            .write_all(register_line(machine).as_bytes())
            .await?;
        connection.writer.flush().await?;
        let line = connection.next_line().await?;
        let reply: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("reading `{line}`"))?;
        if reply.get("Type").and_then(|t| t.as_str()) != Some("Registered")
            || reply.get("CorrelationId").and_then(|t| t.as_str()) != Some("r1")
        {
            bail!("registering {machine}: the bus answered {line}");
        }
        Ok(connection)
    }

    async fn next_line(&mut self) -> anyhow::Result<String> {
        match tokio::time::timeout(IDLE_TIMEOUT, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => bail!("the bus closed the connection"),
            Ok(Err(error)) => Err(error.into()),
            Err(_) => bail!("nothing from the bus for {IDLE_TIMEOUT:?}"),
        }
    }

    /// Queues a `SendEvent` line (written once the buffer fills or on `flush`).
    async fn send(&mut self, event: &Event) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(&SendEvent {
            kind: "SendEvent",
            payload: event,
        })?;
        line.push(b'\n');
        self.writer.write_all(&line).await?;
        Ok(())
    }
}

fn event(source: &str, target: &str, name: &str, n: u64, timestamp: &str) -> Event {
    Event {
        source_machine_id: source.to_owned(),
        target_machine_id: target.to_owned(),
        event_name: name.to_owned(),
        payload: EventPayload { n },
        timestamp: timestamp.to_owned(),
    }
}

/// Checks that `pong` answers round trip `n` of `role`.
fn expect_pong(pong: &Event, n: u64, role: Role) -> anyhow::Result<()> {
    if pong.event_name != "PONG" || pong.payload.n != n {
        bail!(
            "{} {n}: got {} {}",
            role.name(),
            pong.event_name,
            pong.payload.n
        );
    }
    Ok(())
}

/// The PONG `machine` answers `ping` with, or why `ping` is not a PING.
fn pong_for(ping: &Event, machine: &str, stamp: &str) -> anyhow::Result<Event> {
    if ping.event_name != "PING" {
        bail!("echo: unexpected event {}", ping.event_name);
    }
    Ok(event(
        machine,
        &ping.source_machine_id,
        "PONG",
        ping.payload.n,
        stamp,
    ))
}

/// Starts a thread that records when `go` arrives on stdin (the receiver's clock).
fn go_clock() -> Arc<OnceLock<Instant>> {
    let go = Arc::new(OnceLock::new());
    let clock = Arc::clone(&go);
    std::thread::spawn(move || {
        if wait_go().is_ok() {
            let _ = clock.set(Instant::now());
        }
    });
    go
}

fn rtt_report(system: System, samples: &[Duration]) -> BusReport {
    let mut nanos: Vec<u64> = samples
        .iter()
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .collect();
    nanos.sort_unstable();
    let total: Duration = samples.iter().sum();
    let count = samples.len() as u64;
    let us = |ns: u64| ns as f64 / 1000.0;
    let elapsed = total.as_secs_f64();
    BusReport {
        system: system.name().to_owned(),
        role: Role::Ping.name().to_owned(),
        count,
        received: count,
        p50_us: percentile(&nanos, 50.0).map(us),
        p99_us: percentile(&nanos, 99.0).map(us),
        mean_us: (count > 0).then(|| elapsed * 1e6 / count as f64),
        elapsed_s: elapsed,
        msgs_per_s: if elapsed > 0.0 {
            count as f64 / elapsed
        } else {
            0.0
        },
    }
}

fn receiver_report(system: System, count: u64, received: u64, elapsed: Duration) -> BusReport {
    let elapsed = elapsed.as_secs_f64();
    BusReport {
        system: system.name().to_owned(),
        role: Role::Receiver.name().to_owned(),
        count,
        received,
        p50_us: None,
        p99_us: None,
        mean_us: None,
        elapsed_s: elapsed,
        // What arrived, over the time it took to arrive.
        msgs_per_s: if elapsed > 0.0 {
            received as f64 / elapsed
        } else {
            0.0
        },
    }
}

async fn bus_client(args: &ClientArgs) -> anyhow::Result<Option<BusReport>> {
    let stamp = timestamp();
    let mut bus = BusConnection::open(&args.address, &args.machine).await?;
    match args.role {
        Role::Echo => {
            announce_ready();
            // Until the bus closes the connection (the orchestrator kills the bus or us).
            while let Ok(Some(line)) = bus.lines.next_line().await {
                let ping = parse_bus_line(&line)?;
                let pong = pong_for(&ping, &args.machine, &stamp)?;
                bus.send(&pong).await?;
                bus.writer.flush().await?;
            }
            Ok(None)
        }
        Role::Ping | Role::Request => {
            announce_ready();
            tokio::task::spawn_blocking(wait_go).await??;
            let mut samples = Vec::with_capacity(usize::try_from(args.count).unwrap_or(0));
            for n in 0..args.warmup + args.count {
                let ping = event(&args.machine, &args.peer, "PING", n, &stamp);
                let start = Instant::now();
                bus.send(&ping).await?;
                bus.writer.flush().await?;
                let line = bus.next_line().await?;
                let elapsed = start.elapsed();
                expect_pong(&parse_bus_line(&line)?, n, args.role)?;
                if n >= args.warmup {
                    samples.push(elapsed);
                }
            }
            Ok(Some(rtt_report(System::Bus, &samples)))
        }
        Role::Sender => {
            announce_ready();
            tokio::task::spawn_blocking(wait_go).await??;
            let BusConnection { lines, mut writer } = bus;
            // Errors (e.g. SLOW_CONSUMER) would arrive here; report them.
            let errors = tokio::spawn(async move {
                let mut lines = lines;
                let mut first = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if first.is_none() {
                        first = Some(line);
                    }
                }
                first
            });
            let mut line = Vec::with_capacity(256);
            for n in 0..args.count {
                let e = event(&args.machine, &args.peer, "DATA", n, &stamp);
                line.clear();
                serde_json::to_writer(
                    &mut line,
                    &SendEvent {
                        kind: "SendEvent",
                        payload: &e,
                    },
                )?;
                line.push(b'\n');
                writer.write_all(&line).await?;
            }
            writer.flush().await?;
            tokio::task::spawn_blocking(wait_stdin_closed).await?;
            errors.abort();
            if let Ok(Some(first)) = errors.await {
                bail!("the bus answered the sender: {first}");
            }
            Ok(None)
        }
        Role::Receiver => {
            let go = go_clock();
            announce_ready();
            let mut received = 0;
            let mut end = Instant::now();
            while received < args.count {
                let wait = if received == 0 { IDLE_TIMEOUT } else { QUIET };
                match tokio::time::timeout(wait, bus.lines.next_line()).await {
                    Ok(Ok(Some(line))) => {
                        parse_bus_line(&line)?;
                        received += 1;
                        end = Instant::now();
                    }
                    // Closed (a slow consumer) or quiet: the rest is lost.
                    Ok(Ok(None)) | Err(_) if received > 0 => break,
                    Ok(Ok(None)) => bail!("the bus closed the connection before any event"),
                    Ok(Err(error)) => return Err(error.into()),
                    Err(_) => bail!("no event from the bus for {IDLE_TIMEOUT:?}"),
                }
            }
            let start = go
                .get()
                .copied()
                .context("the last event arrived before `go`")?;
            Ok(Some(receiver_report(
                System::Bus,
                args.count,
                received,
                end.saturating_duration_since(start),
            )))
        }
    }
}

/// The next event on `inbox`, parsed.
async fn next_event(inbox: &mut async_nats::Subscriber) -> anyhow::Result<Event> {
    match tokio::time::timeout(IDLE_TIMEOUT, inbox.next()).await {
        Ok(Some(message)) => {
            serde_json::from_slice(&message.payload).context("reading an event from NATS")
        }
        Ok(None) => bail!("the NATS subscription ended"),
        Err(_) => bail!("nothing from NATS for {IDLE_TIMEOUT:?}"),
    }
}

fn subject(machine: &str) -> String {
    format!("machine.{machine}")
}

async fn nats_client(args: &ClientArgs) -> anyhow::Result<Option<BusReport>> {
    let stamp = timestamp();
    let client = async_nats::ConnectOptions::new()
        .subscription_capacity(1 << 20)
        .connect(args.address.as_str())
        .await
        .with_context(|| format!("connecting to {}", args.address))?;
    let mut inbox = client.subscribe(subject(&args.machine)).await?;
    client.flush().await?;
    match args.role {
        Role::Echo => {
            announce_ready();
            while let Some(message) = inbox.next().await {
                let ping: Event = serde_json::from_slice(&message.payload)?;
                let pong = pong_for(&ping, &args.machine, &stamp)?;
                // A request is answered on its reply subject, an event on the source's.
                let to = match message.reply {
                    Some(reply) => reply,
                    None => subject(&ping.source_machine_id).into(),
                };
                client
                    .publish(to, serde_json::to_vec(&pong)?.into())
                    .await?;
            }
            Ok(None)
        }
        Role::Ping | Role::Request => {
            announce_ready();
            tokio::task::spawn_blocking(wait_go).await??;
            let target = subject(&args.peer);
            let mut samples = Vec::with_capacity(usize::try_from(args.count).unwrap_or(0));
            for n in 0..args.warmup + args.count {
                let ping = event(&args.machine, &args.peer, "PING", n, &stamp);
                let start = Instant::now();
                let body = serde_json::to_vec(&ping)?.into();
                let pong = if args.role == Role::Request {
                    // Request/reply: a reply subject per request, answered there.
                    let reply =
                        tokio::time::timeout(IDLE_TIMEOUT, client.request(target.clone(), body))
                            .await
                            .with_context(|| format!("no reply from NATS for {IDLE_TIMEOUT:?}"))?
                            .context("a NATS request")?;
                    serde_json::from_slice(&reply.payload).context("reading a reply from NATS")?
                } else {
                    client.publish(target.clone(), body).await?;
                    next_event(&mut inbox).await?
                };
                let elapsed = start.elapsed();
                expect_pong(&pong, n, args.role)?;
                if n >= args.warmup {
                    samples.push(elapsed);
                }
            }
            Ok(Some(rtt_report(System::Nats, &samples)))
        }
        Role::Sender => {
            announce_ready();
            tokio::task::spawn_blocking(wait_go).await??;
            let target = subject(&args.peer);
            for n in 0..args.count {
                let e = event(&args.machine, &args.peer, "DATA", n, &stamp);
                client
                    .publish(target.clone(), serde_json::to_vec(&e)?.into())
                    .await?;
            }
            client.flush().await?;
            tokio::task::spawn_blocking(wait_stdin_closed).await?;
            Ok(None)
        }
        Role::Receiver => {
            let go = go_clock();
            announce_ready();
            let mut received = 0;
            let mut end = Instant::now();
            while received < args.count {
                let wait = if received == 0 { IDLE_TIMEOUT } else { QUIET };
                match tokio::time::timeout(wait, inbox.next()).await {
                    Ok(Some(message)) => {
                        serde_json::from_slice::<Event>(&message.payload)
                            .context("reading an event from NATS")?;
                        received += 1;
                        end = Instant::now();
                    }
                    Ok(None) | Err(_) if received > 0 => break,
                    Ok(None) => bail!("the NATS subscription ended before any event"),
                    Err(_) => bail!("no event from NATS for {IDLE_TIMEOUT:?}"),
                }
            }
            let start = go
                .get()
                .copied()
                .context("the last event arrived before `go`")?;
            Ok(Some(receiver_report(
                System::Nats,
                args.count,
                received,
                end.saturating_duration_since(start),
            )))
        }
    }
}
