//! `ipcspec-bench bus`: the XStateNet message bus (`xstatenet-bus`) against NATS
//! (`nats-server`), side by side, unpinned and then with every process pinned to CPU 0.
//!
//! Each measurement starts a fresh broker (the bus on a Unix socket in a fresh temporary
//! directory with an empty configuration directory; `nats-server` on 127.0.0.1 with a
//! free port, since it has no Unix-socket listener for clients) and its client processes
//! (`ipcspec-bench bus-client`, see [`crate::bus`]):
//!
//! - round trip: `echo` as m2 and `ping` as m1, sequential PING/PONG;
//! - one-to-one: `receiver` as m2 and one `sender` as m1;
//! - fan-in: `receiver` as `sink` and `--fan-in` senders.
//!
//! Every client prints `ready` once connected; then all get `go` on stdin at once and the
//! receiver's clock starts. Figures and ratios (bus / NATS) are printed, never asserted:
//! the command fails only when a measurement fails.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::bus::{BusReport, Role, System};

/// How long a broker or client may take to get ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long one measurement may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Stderr lines kept for error messages.
const STDERR_TAIL: usize = 20;

/// Options of `ipcspec-bench bus`.
#[derive(Debug, Clone, clap::Args)]
pub struct BusArgs {
    /// Small counts for a smoke run (explicit counts still win).
    #[arg(long, env = "IPCSPEC_BENCH_QUICK")]
    pub quick: bool,
    /// Round trips before measuring [default: 500, quick: 100].
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Measured round trips [default: 5000, quick: 1000].
    #[arg(long)]
    pub rtt_count: Option<u64>,
    /// Events of the one-to-one stream [default: 100000, quick: 10000].
    #[arg(long)]
    pub stream_count: Option<u64>,
    /// Events each fan-in sender streams [default: 25000, quick: 2500].
    #[arg(long)]
    pub fan_in_count: Option<u64>,
    /// Fan-in senders (the brief's 4 publishers -> 1 subscriber).
    #[arg(long, default_value_t = 4)]
    pub fan_in: u32,
    /// Times each row is measured; the table shows the median round [default: 3, quick: 1].
    #[arg(long)]
    pub rounds: Option<u32>,
    /// The `xstatenet-bus` binary.
    #[arg(long, env = "IPCSPEC_BENCH_BUS_BIN")]
    pub bus_bin: PathBuf,
    /// The `nats-server` binary (default: `nats-server` on PATH).
    #[arg(long, env = "IPCSPEC_BENCH_NATS_SERVER")]
    pub nats_server: Option<PathBuf>,
    /// Why NATS is not measured, when there is no nats-server.
    #[arg(long)]
    pub nats_missing: Option<String>,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "target/bench/bus.json")]
    pub out: PathBuf,
    /// The bus's `--max-pending-bytes`: bytes queued for one connection before the bus
    /// disconnects it as a slow consumer. 64 MiB by default, NATS's default
    /// `max_pending`, so both brokers give a receiver the same room; the catalogue's
    /// 8 MiB (the bus's default) would disconnect a receiver that falls behind a
    /// streaming row by more than about 38,000 events, by design (the slow-consumer
    /// policy, tested in services/xstatenet).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub bus_max_pending_bytes: usize,
    /// Skip the pinned run.
    #[arg(long)]
    pub unpinned_only: bool,
}

/// The counts in force.
#[derive(Debug, Clone, Copy, Serialize)]
struct Counts {
    warmup: u64,
    rtt: u64,
    stream: u64,
    fan_in_each: u64,
    fan_in_senders: u32,
}

/// A row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    RoundTrip,
    RequestReply,
    OneToOne,
    FanIn,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::RoundTrip => "round trip",
            Kind::RequestReply => "request/reply",
            Kind::OneToOne => "one-to-one",
            Kind::FanIn => "fan-in",
        }
    }

    /// Whether the row times sequential round trips (rather than a stream).
    fn is_round_trip(self) -> bool {
        matches!(self, Kind::RoundTrip | Kind::RequestReply)
    }
}

const KINDS: [Kind; 4] = [
    Kind::RoundTrip,
    Kind::RequestReply,
    Kind::OneToOne,
    Kind::FanIn,
];

/// One system's result in one row.
#[derive(Debug, Clone, Serialize)]
struct Cell {
    system: &'static str,
    /// `ok`, `skipped: …` or `failed: …`.
    status: String,
    /// The median round.
    report: Option<BusReport>,
    rounds: Vec<BusReport>,
}

#[derive(Debug, Clone, Serialize)]
struct Row {
    row: &'static str,
    bus: Cell,
    nats: Cell,
    /// Bus p50 / NATS p50 (round trip; lower is faster).
    p50_ratio: Option<f64>,
    /// Bus p99 / NATS p99 (round trip).
    p99_ratio: Option<f64>,
    /// Bus msgs/s / NATS msgs/s (streams; higher is faster).
    rate_ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct Run {
    pinning: String,
    skipped: Option<String>,
    rows: Vec<Row>,
    /// The raw socket limit on the same machine and pinning: a blocking std socket
    /// ping-pong and stream of a ~170-byte length-prefixed frame (the Migration bench's
    /// row (a)), for orientation.
    raw: Option<RawLimit>,
}

/// The raw socket limit.
#[derive(Debug, Clone, Serialize)]
struct RawLimit {
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    msgs_per_s: f64,
}

/// Runs the raw ping-pong server and client of this binary (`--impl raw`).
fn raw_limit(plan: &Plan<'_>, cpu: Option<u32>) -> anyhow::Result<RawLimit> {
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("raw.sock");
    let path = socket.display().to_string();
    let strings = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let mut server = crate::suite::command(
        cpu,
        &plan.exe,
        &strings(&["server", "--impl", "raw", "--socket", &path]),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        if Instant::now() > deadline {
            let _ = server.kill();
            bail!("the raw server did not listen");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let run = |mode: &str, count: u64| -> anyhow::Result<crate::measure::ClientReport> {
        let warmup = plan.counts.warmup.to_string();
        let count = count.to_string();
        let args = strings(&[
            "client", "--impl", "raw", "--mode", mode, "--socket", &path, "--count", &count,
            "--warmup", &warmup,
        ]);
        let output = crate::suite::command(cpu, &plan.exe, &args)
            .stdin(Stdio::null())
            .output()?;
        if !output.status.success() {
            bail!("raw client: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(serde_json::from_slice(&output.stdout)?)
    };
    let rtt = run("rtt", plan.counts.rtt);
    let stream = run("throughput", plan.counts.stream);
    let _ = server.kill();
    let _ = server.wait();
    let (rtt, stream) = (rtt?, stream?);
    Ok(RawLimit {
        p50_us: rtt.p50_us,
        p99_us: rtt.p99_us,
        msgs_per_s: stream.msgs_per_s,
    })
}

#[derive(Debug, Serialize)]
struct Results {
    benchmark: &'static str,
    unix_time: u64,
    counts: Counts,
    rounds: u32,
    bus_transport: &'static str,
    nats_transport: &'static str,
    cpus: usize,
    runs: Vec<Run>,
    /// Resident memory added per idle connection at 1,000 connections, bytes.
    idle_connection_bytes: IdleMemory,
}

/// Memory per idle connection, per system (`None` when not measured).
#[derive(Debug, Default, Serialize)]
struct IdleMemory {
    bus: Option<f64>,
    nats: Option<f64>,
}

/// Idle connections opened for the memory measurement.
const IDLE_CONNECTIONS: usize = 1_000;

/// Resident memory of process `pid` (`VmRSS`), in bytes.
fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .context("no VmRSS in /proc/<pid>/status")?;
    Ok(kib * 1024)
}

/// Opens [`IDLE_CONNECTIONS`] connections to a fresh broker, each proven accepted (the
/// bus answers a GetHealth, NATS a PING after CONNECT), and returns the broker's
/// resident memory growth per connection.
fn idle_memory(plan: &Plan<'_>, system: System) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    // The bus must admit all of them (its default limit is 100).
    let bus_args = [
        "--max-connections".to_owned(),
        (IDLE_CONNECTIONS + 10).to_string(),
    ];
    let (broker, address) = start_broker(plan, system, None, dir.path(), &bus_args)?;
    let pid = broker.child.id();
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_bytes(pid)?;
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::with_capacity(IDLE_CONNECTIONS);
    for _ in 0..IDLE_CONNECTIONS {
        match system {
            System::Bus => {
                let mut stream = std::os::unix::net::UnixStream::connect(&address)?;
                stream.write_all(b"{\"Type\":\"GetHealth\",\"Id\":\"h\",\"Payload\":{}}\n")?;
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut line = String::new();
                reader.read_line(&mut line)?;
                if !line.contains("HealthStatus") {
                    bail!("the bus refused an idle connection: {line}");
                }
                keep.push(Box::new(stream));
            }
            System::Nats => {
                let port = address.rsplit(':').next().unwrap_or_default();
                let mut stream = TcpStream::connect(("127.0.0.1", port.parse::<u16>()?))?;
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut line = String::new();
                reader.read_line(&mut line)?; // INFO
                stream.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n")?;
                line.clear();
                reader.read_line(&mut line)?;
                if !line.starts_with("PONG") {
                    bail!("nats-server did not answer PING: {line}");
                }
                keep.push(Box::new(stream));
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_bytes(pid)?;
    drop(keep);
    #[allow(clippy::cast_precision_loss)]
    let per = after.saturating_sub(before) as f64 / IDLE_CONNECTIONS as f64;
    Ok(per)
}

struct Plan<'a> {
    exe: PathBuf,
    args: &'a BusArgs,
    counts: Counts,
    rounds: u32,
}

pub fn run(args: &BusArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let exe = std::env::current_exe().context("locating ipcspec-bench")?;
    if !args.bus_bin.exists() {
        bail!("{} does not exist", args.bus_bin.display());
    }
    let (warmup, rtt, stream, fan_in_each) = if args.quick {
        (100, 1_000, 10_000, 2_500)
    } else {
        (500, 5_000, 100_000, 25_000)
    };
    let plan = Plan {
        exe,
        args,
        counts: Counts {
            warmup: args.warmup.unwrap_or(warmup),
            rtt: args.rtt_count.unwrap_or(rtt),
            stream: args.stream_count.unwrap_or(stream),
            fan_in_each: args.fan_in_count.unwrap_or(fan_in_each),
            fan_in_senders: args.fan_in.max(1),
        },
        rounds: args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1),
    };
    let mut runs = vec![run_all(&plan, None)];
    if !args.unpinned_only {
        match taskset_works() {
            Ok(()) => runs.push(run_all(&plan, Some(0))),
            Err(reason) => runs.push(Run {
                pinning: "pinned to CPU 0".to_owned(),
                skipped: Some(reason),
                raw: None,
                rows: Vec::new(),
            }),
        }
    }
    println!();
    for run in &runs {
        print_run(run);
        println!();
    }
    let mut idle = IdleMemory::default();
    for (system, slot) in [(System::Bus, &mut idle.bus), (System::Nats, &mut idle.nats)] {
        if matches!(system, System::Nats) && args.nats_missing.is_some() {
            continue;
        }
        match idle_memory(&plan, system) {
            Ok(bytes) => *slot = Some(bytes),
            Err(error) => {
                eprintln!("ipcspec-bench: idle-connection memory not measured: {error:#}")
            }
        }
    }
    let kib =
        |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |b| format!("{:.1} KiB", b / 1024.0));
    let ratio = match (idle.bus, idle.nats) {
        (Some(bus), Some(nats)) if nats > 0.0 => format!("{:.2}x", bus / nats),
        _ => "-".to_owned(),
    };
    println!(
        "memory per idle connection at {IDLE_CONNECTIONS} connections (resident growth): bus {}, NATS {}, bus/NATS {ratio}",
        kib(idle.bus),
        kib(idle.nats)
    );
    println!();
    print_footnotes(&plan);
    println!("total time: {:.1} s", started.elapsed().as_secs_f64());

    let results = Results {
        benchmark: "bus",
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        counts: plan.counts,
        rounds: plan.rounds,
        bus_transport: "unix socket",
        nats_transport: "tcp 127.0.0.1",
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        runs,
        idle_connection_bytes: idle,
    };
    if let Some(dir) = args.out.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&results)? + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("results written to {}", args.out.display());

    let failed: Vec<String> = results
        .runs
        .iter()
        .flat_map(|run| {
            run.rows.iter().flat_map(move |row| {
                [&row.bus, &row.nats]
                    .into_iter()
                    .filter(|cell| cell.status.starts_with("failed"))
                    .map(move |cell| format!("{} {} {}", run.pinning, row.row, cell.system))
            })
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} measurement(s) failed: {}",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

fn taskset_works() -> Result<(), String> {
    match Command::new("taskset")
        .args(["-c", "0", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("skipped: `taskset -c 0 true` failed ({status})")),
        Err(error) => Err(format!(
            "skipped: taskset not found ({error}); it is in util-linux"
        )),
    }
}

fn run_all(plan: &Plan<'_>, cpu: Option<u32>) -> Run {
    let pinning = match cpu {
        None => "unpinned".to_owned(),
        Some(cpu) => format!("pinned to CPU {cpu}"),
    };
    let mut rows = Vec::new();
    for kind in KINDS {
        let mut cells = Vec::new();
        for system in [System::Bus, System::Nats] {
            if system == System::Nats
                && let Some(reason) = &plan.args.nats_missing
            {
                cells.push(Cell {
                    system: system.name(),
                    status: format!("skipped: {reason}"),
                    report: None,
                    rounds: Vec::new(),
                });
                continue;
            }
            let mut rounds = Vec::new();
            let mut failure = None;
            for round in 0..plan.rounds {
                eprintln!(
                    "ipcspec-bench: {pinning}: {} {} (round {}/{})",
                    kind.label(),
                    system.name(),
                    round + 1,
                    plan.rounds
                );
                match measure(plan, system, kind, cpu) {
                    Ok(report) => rounds.push(report),
                    Err(error) => {
                        eprintln!("ipcspec-bench: failed: {error:#}");
                        failure = Some(format!("failed: {error:#}"));
                        break;
                    }
                }
            }
            let report = median(&rounds, kind);
            cells.push(Cell {
                system: system.name(),
                status: failure.unwrap_or_else(|| "ok".to_owned()),
                report,
                rounds,
            });
        }
        let nats = cells.pop().unwrap_or_else(|| missing("nats"));
        let bus = cells.pop().unwrap_or_else(|| missing("bus"));
        let ratio = |f: fn(&BusReport) -> Option<f64>| match (&bus.report, &nats.report) {
            (Some(b), Some(n)) => match (f(b), f(n)) {
                (Some(b), Some(n)) if n > 0.0 => Some(b / n),
                _ => None,
            },
            _ => None,
        };
        let (p50_ratio, p99_ratio, rate_ratio) = match kind {
            Kind::RoundTrip | Kind::RequestReply => {
                (ratio(|r| r.p50_us), ratio(|r| r.p99_us), None)
            }
            _ => (None, None, ratio(|r| Some(r.msgs_per_s))),
        };
        rows.push(Row {
            row: kind.label(),
            bus,
            nats,
            p50_ratio,
            p99_ratio,
            rate_ratio,
        });
    }
    let raw = match raw_limit(plan, cpu) {
        Ok(raw) => Some(raw),
        Err(error) => {
            eprintln!("ipcspec-bench: raw socket limit not measured: {error:#}");
            None
        }
    };
    Run {
        pinning,
        skipped: None,
        rows,
        raw,
    }
}

fn missing(system: &'static str) -> Cell {
    Cell {
        system,
        status: "failed: not measured".to_owned(),
        report: None,
        rounds: Vec::new(),
    }
}

/// The round with the median p50 (round trip) or msgs/s (streams).
fn median(rounds: &[BusReport], kind: Kind) -> Option<BusReport> {
    let key = |r: &BusReport| match kind {
        Kind::RoundTrip | Kind::RequestReply => r.p50_us.unwrap_or(f64::MAX),
        _ => r.msgs_per_s,
    };
    let mut sorted: Vec<&BusReport> = rounds.iter().collect();
    sorted.sort_by(|a, b| key(a).total_cmp(&key(b)));
    sorted.get(sorted.len() / 2).map(|r| (*r).clone())
}

fn print_run(run: &Run) {
    println!("== {} ==", run.pinning);
    if let Some(reason) = &run.skipped {
        println!("{reason}");
        return;
    }
    println!(
        "{:<14} {:>12} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "row",
        "bus p50 µs",
        "nats p50 µs",
        "bus p99 µs",
        "nats p99 µs",
        "p50 bus/nats",
        "p99 bus/nats"
    );
    let us = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    let ratio = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}x"));
    let timed = |row: &&Row| {
        KINDS
            .iter()
            .any(|k| k.is_round_trip() && k.label() == row.row)
    };
    for row in run.rows.iter().filter(timed) {
        let b = row.bus.report.as_ref();
        let n = row.nats.report.as_ref();
        println!(
            "{:<14} {:>12} {:>12} {:>12} {:>12} {:>14} {:>14}",
            row.row,
            us(b.and_then(|r| r.p50_us)),
            us(n.and_then(|r| r.p50_us)),
            us(b.and_then(|r| r.p99_us)),
            us(n.and_then(|r| r.p99_us)),
            ratio(row.p50_ratio),
            ratio(row.p99_ratio),
        );
    }
    println!(
        "{:<14} {:>14} {:>14} {:>14} {:>10} {:>10}",
        "row", "bus msgs/s", "nats msgs/s", "rate bus/nats", "bus lost", "nats lost"
    );
    for row in run.rows.iter().filter(|row| !timed(row)) {
        let rate = |c: &Cell| {
            c.report
                .as_ref()
                .map_or("-".to_owned(), |r| grouped(r.msgs_per_s))
        };
        let lost = |c: &Cell| {
            c.report.as_ref().map_or("-".to_owned(), |r| {
                grouped(r.count.saturating_sub(r.received) as f64)
            })
        };
        println!(
            "{:<14} {:>14} {:>14} {:>14} {:>10} {:>10}",
            row.row,
            rate(&row.bus),
            rate(&row.nats),
            ratio(row.rate_ratio),
            lost(&row.bus),
            lost(&row.nats)
        );
    }
    if let Some(raw) = &run.raw {
        println!(
            "raw socket limit (blocking std sockets, ~170-byte frames): round trip p50 {} µs, p99 {} µs; stream {} msgs/s",
            us(raw.p50_us),
            us(raw.p99_us),
            grouped(raw.msgs_per_s)
        );
    }
    for row in &run.rows {
        for cell in [&row.bus, &row.nats] {
            if cell.status != "ok" {
                println!("  {} {}: {}", row.row, cell.system, cell.status);
            }
        }
    }
}

fn print_footnotes(plan: &Plan<'_>) {
    let c = plan.counts;
    println!(
        "- round trip: m1 sends PING to m2, m2's process answers PONG; {} warm-up then {} measured, sequential. \
         request/reply: the same through NATS's request/reply (async-nats `request`, answered on the reply subject); \
         the bus's request/reply is an event and the event answering it, so its cell repeats the round trip.",
        c.warmup, c.rtt
    );
    println!(
        "- one-to-one: one sender streams {} events to one receiver; fan-in: {} senders stream {} each to one receiver; \
         rate = events / (go .. last event received).",
        c.stream, c.fan_in_senders, c.fan_in_each
    );
    println!(
        "- bus: xstatenet-bus on a Unix socket (--max-pending-bytes {}, NATS's default max_pending; a receiver \
         that many bytes behind is disconnected as a slow consumer); NATS: nats-server on TCP 127.0.0.1 \
         (it has no Unix-socket client listener; TCP loopback is how it is deployed), async-nats clients, \
         subject machine.<id>, the same JSON event body, parsed by every receiver.",
        plan.args.bus_max_pending_bytes
    );
    println!(
        "- every broker and client is its own process: clients on current-thread tokio runtimes, the bus on its multi-thread runtime (a worker per CPU), nats-server with GOMAXPROCS = CPUs; pinned = all under `taskset -c 0`. \
         {} round(s) per cell, median shown. Ratios are bus / NATS, reported, not asserted.",
        plan.rounds
    );
}

fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A child process, killed on drop, with its stdout lines on a channel and the tail of
/// its stderr kept.
struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
    tail: Arc<Mutex<VecDeque<String>>>,
    ready_line: mpsc::Receiver<()>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Starts `program args` (under `taskset -c CPU` when pinned); `marker` on stderr
    /// signals readiness through `ready_line`.
    fn spawn(
        name: String,
        cpu: Option<u32>,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        marker: &'static str,
    ) -> anyhow::Result<Self> {
        let mut command = match cpu {
            None => Command::new(program),
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(program);
                command
            }
        };
        command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stdin = child.stdin.take();
        let out = child.stdout.take().context("no stdout")?;
        let err = child.stderr.take().context("no stderr")?;
        let (out_tx, out_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if out_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        {
            let tail = Arc::clone(&tail);
            std::thread::spawn(move || {
                let mut ready = Some(ready_tx);
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    if line.contains(marker)
                        && let Some(tx) = ready.take()
                    {
                        let _ = tx.send(());
                    }
                    let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        Ok(Proc {
            name,
            child,
            stdin,
            stdout: out_rx,
            tail,
            ready_line: ready_rx,
        })
    }

    fn stderr_tail(&self) -> String {
        let lines = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "{} exited ({status}):\n{}",
                self.name,
                self.stderr_tail()
            )),
            _ => None,
        }
    }

    /// Waits until `ready` returns true, the process exits, or the timeout.
    fn wait_until(&mut self, mut ready: impl FnMut(&mut Self) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ready(self) {
                return Ok(());
            }
            if let Some(exit) = self.exited() {
                bail!("{exit}");
            }
            if Instant::now() > deadline {
                bail!(
                    "{} was not ready within {READY_TIMEOUT:?}:\n{}",
                    self.name,
                    self.stderr_tail()
                );
            }
        }
    }

    /// Waits for the `ready` line on stdout.
    fn wait_client_ready(&mut self) -> anyhow::Result<()> {
        self.wait_until(|p| {
            matches!(
                p.stdout.recv_timeout(Duration::from_millis(20)),
                Ok(line) if line == "ready"
            )
        })
    }

    fn go(&mut self) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        stdin.write_all(b"go\n")?;
        stdin.flush()?;
        Ok(())
    }

    /// Waits for the JSON report line on stdout.
    fn report(&mut self) -> anyhow::Result<BusReport> {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            match self.stdout.recv_timeout(Duration::from_millis(50)) {
                Ok(line) if line.starts_with('{') => {
                    return serde_json::from_str(&line)
                        .with_context(|| format!("reading {}'s result `{line}`", self.name));
                }
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    bail!(
                        "{} ended ({status}) without a result:\n{}",
                        self.name,
                        self.stderr_tail()
                    );
                }
            }
            if Instant::now() > deadline {
                bail!("{} did not finish within {RUN_TIMEOUT:?}", self.name);
            }
        }
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; nats-server binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Starts the broker; returns it and the address clients use.
fn start_broker(
    plan: &Plan<'_>,
    system: System,
    cpu: Option<u32>,
    dir: &Path,
    bus_args: &[String],
) -> anyhow::Result<(Proc, String)> {
    match system {
        System::Bus => {
            let socket = dir.join("bus.sock");
            let config = dir.join("config");
            std::fs::create_dir_all(&config)?;
            let mut args = vec![
                "--socket".to_owned(),
                socket.display().to_string(),
                "--config".to_owned(),
                config.display().to_string(),
                "--max-pending-bytes".to_owned(),
                plan.args.bus_max_pending_bytes.to_string(),
            ];
            args.extend_from_slice(bus_args);
            let mut bus = Proc::spawn(
                "xstatenet-bus".to_owned(),
                cpu,
                &plan.args.bus_bin,
                &args,
                &[("RUST_LOG", "info")],
                "listening on",
            )?;
            bus.wait_until(|p| p.ready_line.recv_timeout(Duration::from_millis(20)).is_ok())?;
            Ok((bus, socket.display().to_string()))
        }
        System::Nats => {
            let program = plan
                .args
                .nats_server
                .clone()
                .unwrap_or_else(|| PathBuf::from("nats-server"));
            let port = free_port()?;
            let args = vec![
                "-a".to_owned(),
                "127.0.0.1".to_owned(),
                "-p".to_owned(),
                port.to_string(),
            ];
            let mut nats = Proc::spawn(
                "nats-server".to_owned(),
                cpu,
                &program,
                &args,
                &[],
                "Server is ready",
            )?;
            nats.wait_until(|p| {
                p.ready_line.recv_timeout(Duration::from_millis(20)).is_ok()
                    || TcpStream::connect(("127.0.0.1", port)).is_ok()
            })?;
            Ok((nats, format!("nats://127.0.0.1:{port}")))
        }
    }
}

/// One measurement: a fresh broker and fresh clients.
fn measure(
    plan: &Plan<'_>,
    system: System,
    kind: Kind,
    cpu: Option<u32>,
) -> anyhow::Result<BusReport> {
    let dir = tempfile::Builder::new()
        .prefix("ipcspec-busbench-")
        .tempdir()
        .context("creating a temporary directory")?;
    let (mut broker, address) = start_broker(plan, system, cpu, dir.path(), &[])?;
    let c = plan.counts;
    let client = |name: &str, role: Role, machine: &str, peer: &str, count: u64, warmup: u64| {
        let args = vec![
            "bus-client".to_owned(),
            "--system".to_owned(),
            system.name().to_owned(),
            "--address".to_owned(),
            address.clone(),
            "--role".to_owned(),
            role.name().to_owned(),
            "--machine".to_owned(),
            machine.to_owned(),
            "--peer".to_owned(),
            peer.to_owned(),
            "--count".to_owned(),
            count.to_string(),
            "--warmup".to_owned(),
            warmup.to_string(),
        ];
        Proc::spawn(name.to_owned(), cpu, &plan.exe, &args, &[], "\u{0}")
    };
    // The measuring process first, then the others.
    let mut procs = match kind {
        Kind::RoundTrip => vec![
            client("ping", Role::Ping, "m1", "m2", c.rtt, c.warmup)?,
            client("echo", Role::Echo, "m2", "", 0, 0)?,
        ],
        Kind::RequestReply => vec![
            client("ping", Role::Request, "m1", "m2", c.rtt, c.warmup)?,
            client("echo", Role::Echo, "m2", "", 0, 0)?,
        ],
        Kind::OneToOne => vec![
            client("receiver", Role::Receiver, "m2", "", c.stream, 0)?,
            client("sender", Role::Sender, "m1", "m2", c.stream, 0)?,
        ],
        Kind::FanIn => {
            let total = c.fan_in_each * u64::from(c.fan_in_senders);
            let mut procs = vec![client("receiver", Role::Receiver, "sink", "", total, 0)?];
            for i in 1..=c.fan_in_senders {
                procs.push(client(
                    &format!("sender {i}"),
                    Role::Sender,
                    &format!("s{i}"),
                    "sink",
                    c.fan_in_each,
                    0,
                )?);
            }
            procs
        }
    };
    for proc in &mut procs {
        proc.wait_client_ready()?;
    }
    for proc in &mut procs {
        if kind.is_round_trip() && proc.name == "echo" {
            continue;
        }
        proc.go()?;
    }
    let Some(measurer) = procs.first_mut() else {
        bail!("no client");
    };
    let result = measurer.report();
    let broker_exit = broker.exited();
    let report = result.map_err(|error| match broker_exit {
        Some(exit) => error.context(exit),
        None => error,
    })?;
    // Senders stay connected until stdin closes; a failed sender reports on exit.
    for mut proc in procs.drain(1..) {
        drop(proc.stdin.take());
        if !kind.is_round_trip() {
            let deadline = Instant::now() + READY_TIMEOUT;
            loop {
                match proc.child.try_wait()? {
                    Some(status) if status.success() => break,
                    Some(status) => {
                        bail!("{} failed ({status}):\n{}", proc.name, proc.stderr_tail())
                    }
                    None if Instant::now() > deadline => break,
                    None => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
    }
    // A round trip must be complete; a stream reports what arrived, and the rest is
    // counted as lost in the table.
    if kind.is_round_trip() && report.received != report.count {
        bail!("{} of {} round trips", report.received, report.count);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_grouped_by_thousands() {
        assert_eq!(grouped(0.4), "0");
        assert_eq!(grouped(1000.0), "1,000");
        assert_eq!(grouped(6_740_743.2), "6,740,743");
    }
}
