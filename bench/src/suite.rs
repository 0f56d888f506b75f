//! `ipcspec-bench migration`: runs every row as separate server and client processes,
//! unpinned and then with both processes pinned to CPU 0, prints the table and writes
//! the results as JSON.
//!
//! Each row is measured `--rounds` times (5 by default), the rounds interleaved across
//! rows, and reported by its median round: unpinned latencies on a small shared VM are
//! bimodal (whether the scheduler keeps both processes on one CPU or wakes an idle one,
//! which depends on whatever else runs), and one round alone can land on either mode.
//!
//! Each measurement (row × round trip or throughput × pinning) gets a fresh server in a
//! fresh temporary directory (socket, and the durable row's database), so ids never
//! repeat within a server's life and no measurement inherits another's state. The server
//! is ready once it logs `listening on` on stderr or its socket accepts a connection; it
//! is killed once its client has printed its result.
//!
//! The targets for the runtime row (p50 within 1.5× of raw, p50 no slower than
//! tokio-codec, faster than tarpc, throughput at least tokio-codec's) are reported, never
//! asserted: the command fails only when a measurement itself fails.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::measure::ClientReport;
use crate::{ClientImpl, Flavor, Mode};

/// How long a server may take to start listening.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long one client run may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// Server stderr lines kept for error messages.
const STDERR_TAIL: usize = 20;

/// Options of `ipcspec-bench migration`; every count can also come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// Small counts for a smoke run (the explicit counts below still win).
    #[arg(long, env = "IPCSPEC_BENCH_QUICK")]
    pub quick: bool,
    /// Warm-up round trips before each measurement [default: 1000, quick: 100].
    #[arg(long, env = "IPCSPEC_BENCH_WARMUP")]
    pub warmup: Option<u64>,
    /// Measured round trips per row [default: 10000, quick: 1000].
    #[arg(long, env = "IPCSPEC_BENCH_RTT_COUNT")]
    pub rtt_count: Option<u64>,
    /// Pipelined messages per row [default: 50000, quick: 5000].
    #[arg(long, env = "IPCSPEC_BENCH_THROUGHPUT_COUNT")]
    pub throughput_count: Option<u64>,
    /// Warm-up round trips of the durable row [default: 100, quick: 20].
    #[arg(long, env = "IPCSPEC_BENCH_DURABLE_WARMUP")]
    pub durable_warmup: Option<u64>,
    /// Measured round trips of the durable row (each waits for a commit)
    /// [default: 2000, quick: 200].
    #[arg(long, env = "IPCSPEC_BENCH_DURABLE_RTT_COUNT")]
    pub durable_rtt_count: Option<u64>,
    /// Pipelined messages of the durable row [default: 10000, quick: 1000].
    #[arg(long, env = "IPCSPEC_BENCH_DURABLE_THROUGHPUT_COUNT")]
    pub durable_throughput_count: Option<u64>,
    /// The `migration-service` binary for the durable row.
    #[arg(long, env = "IPCSPEC_BENCH_SERVICE_BIN")]
    pub service_bin: Option<PathBuf>,
    /// Why the durable row is skipped, when there is no `--service-bin`.
    #[arg(long)]
    pub service_missing: Option<String>,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "target/bench/migration.json")]
    pub out: PathBuf,
    /// The tokio runtime of every tokio-based server and client.
    #[arg(long, value_enum, default_value_t = Flavor::CurrentThread)]
    pub flavor: Flavor,
    /// tarpc's calls in flight in throughput mode.
    #[arg(long, default_value_t = 512)]
    pub window: usize,
    /// The payload's `userId` (default: the login name, which the durable service
    /// checks against the connection's credentials).
    #[arg(long)]
    pub user: Option<String>,
    /// Times each row is measured, each time with fresh processes; the table shows the
    /// median round [default: 5, quick: 1].
    #[arg(long, env = "IPCSPEC_BENCH_ROUNDS")]
    pub rounds: Option<u32>,
    /// Skip the pinned run.
    #[arg(long)]
    pub unpinned_only: bool,
}

/// The counts in force.
#[derive(Debug, Clone, Copy, Serialize)]
struct Counts {
    warmup: u64,
    rtt: u64,
    throughput: u64,
    durable_warmup: u64,
    durable_rtt: u64,
    durable_throughput: u64,
}

impl Counts {
    fn from_args(args: &SuiteArgs) -> Self {
        let (warmup, rtt, throughput, durable_warmup, durable_rtt, durable_throughput) =
            if args.quick {
                (100, 1_000, 5_000, 20, 200, 1_000)
            } else {
                (1_000, 10_000, 50_000, 100, 2_000, 10_000)
            };
        Counts {
            warmup: args.warmup.unwrap_or(warmup),
            rtt: args.rtt_count.unwrap_or(rtt),
            throughput: args.throughput_count.unwrap_or(throughput),
            durable_warmup: args.durable_warmup.unwrap_or(durable_warmup),
            durable_rtt: args.durable_rtt_count.unwrap_or(durable_rtt),
            durable_throughput: args.durable_throughput_count.unwrap_or(durable_throughput),
        }
    }

    /// Warm-up and measured count of `row` in `mode`.
    fn of(&self, row: ClientImpl, mode: Mode) -> (u64, u64) {
        match (row, mode) {
            (ClientImpl::Durable, Mode::Rtt) => (self.durable_warmup, self.durable_rtt),
            (ClientImpl::Durable, Mode::Throughput) => {
                (self.durable_warmup, self.durable_throughput)
            }
            (_, Mode::Rtt) => (self.warmup, self.rtt),
            (_, Mode::Throughput) => (self.warmup, self.throughput),
        }
    }
}

/// The rows, in table order.
const ROWS: [(ClientImpl, &str); 5] = [
    (ClientImpl::Raw, "(a) raw"),
    (ClientImpl::TokioCodec, "(b) tokio-codec"),
    (ClientImpl::Tarpc, "(c) tarpc"),
    (ClientImpl::Runtime, "(d) runtime"),
    (ClientImpl::Durable, "(e) durable"),
];

/// One row of one run.
#[derive(Debug, Clone, Serialize)]
struct Row {
    #[serde(rename = "impl")]
    implementation: &'static str,
    label: &'static str,
    /// `ok`, `skipped: …` or `failed: …`.
    status: String,
    /// The round with the median p50.
    rtt: Option<ClientReport>,
    /// The round with the median throughput.
    throughput: Option<ClientReport>,
    /// Every round trip measurement, in round order.
    rtt_rounds: Vec<ClientReport>,
    /// Every throughput measurement, in round order.
    throughput_rounds: Vec<ClientReport>,
    p50_vs_raw: Option<f64>,
    p50_vs_tokio_codec: Option<f64>,
    throughput_vs_tokio_codec: Option<f64>,
}

impl Row {
    fn p50(&self) -> Option<f64> {
        self.rtt.as_ref().and_then(|r| r.p50_us)
    }

    fn rate(&self) -> Option<f64> {
        self.throughput.as_ref().map(|r| r.msgs_per_s)
    }
}

/// One verdict on the runtime row.
#[derive(Debug, Clone, Serialize)]
struct Target {
    target: &'static str,
    /// `None` when a row it needs is missing.
    holds: Option<bool>,
    detail: String,
}

/// All rows with one pinning.
#[derive(Debug, Clone, Serialize)]
struct Run {
    pinning: String,
    /// Why the run did not happen, if it did not.
    skipped: Option<String>,
    rows: Vec<Row>,
    targets: Vec<Target>,
}

/// The JSON file.
#[derive(Debug, Serialize)]
struct Results {
    benchmark: &'static str,
    unix_time: u64,
    counts: Counts,
    flavor: &'static str,
    tarpc_window: usize,
    rounds: u32,
    user: String,
    cpus: usize,
    runs: Vec<Run>,
    /// Decoding with and without constraint checks, in this process.
    validation: Option<crate::validation::ValidationCost>,
}

/// How to run each process.
struct Plan<'a> {
    exe: PathBuf,
    rounds: u32,
    args: &'a SuiteArgs,
    counts: Counts,
    user: String,
}

/// Prints what validation adds per message, against the runtime row's round trips.
fn print_validation(cost: &crate::validation::ValidationCost, runs: &[Run]) {
    println!(
        "validation cost (in process, per USER_ACTION): decode {:.0} ns, decode + validate {:.0} ns: validation adds {:.0} ns",
        cost.decode_ns,
        cost.decode_and_validate_ns,
        cost.validate_ns()
    );
    for run in runs {
        if let Some(p50) = run
            .rows
            .iter()
            .find(|row| row.implementation == "runtime")
            .and_then(Row::p50)
        {
            println!(
                "  = {:.1}% of the runtime row's p50 round trip ({:.1} µs, {})",
                cost.validate_ns() / (p50 * 1000.0) * 100.0,
                p50,
                run.pinning
            );
        }
    }
}

/// Runs the benchmark; see the [module documentation](self).
pub fn run(args: &SuiteArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let exe = std::env::current_exe().context("locating ipcspec-bench")?;
    let user = match &args.user {
        Some(user) => user.clone(),
        None => crate::wire::login_name()?,
    };
    crate::wire::check_user(&user)?;
    let plan = Plan {
        exe,
        rounds: args.rounds.unwrap_or(if args.quick { 1 } else { 5 }).max(1),
        args,
        counts: Counts::from_args(args),
        user,
    };
    let mut runs = vec![run_all(&plan, None)];
    if !args.unpinned_only {
        match taskset_works() {
            Ok(()) => runs.push(run_all(&plan, Some(0))),
            Err(reason) => runs.push(Run {
                pinning: "pinned to CPU 0".to_owned(),
                skipped: Some(reason),
                rows: Vec::new(),
                targets: Vec::new(),
            }),
        }
    }

    println!();
    for run in &runs {
        print_run(run, plan.rounds);
        println!();
    }
    let validation = match crate::validation::measure(
        &crate::wire::request_body(1, &plan.user),
        if args.quick { 2_000 } else { 50_000 },
    ) {
        Ok(cost) => {
            print_validation(&cost, &runs);
            Some(cost)
        }
        Err(error) => {
            println!("validation cost: not measured: {error:#}");
            None
        }
    };
    println!();
    print_footnotes(&plan);
    println!("total time: {:.1} s", started.elapsed().as_secs_f64());

    let results = Results {
        benchmark: "migration",
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        counts: plan.counts,
        flavor: args.flavor.name(),
        tarpc_window: args.window,
        rounds: plan.rounds,
        user: plan.user.clone(),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        runs,
        validation,
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
            run.rows
                .iter()
                .filter(|row| row.status.starts_with("failed"))
                .map(move |row| format!("{} {}", run.pinning, row.label))
        })
        .collect();
    if !failed.is_empty() {
        bail!("{} row(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

/// Whether `taskset -c 0` can run a program here.
fn taskset_works() -> Result<(), String> {
    match Command::new("taskset")
        .args(["-c", "0", "true"])
        .stdin(Stdio::null())
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

/// Runs every row, unpinned (`cpu == None`) or with both processes on `cpu`.
fn run_all(plan: &Plan<'_>, cpu: Option<u32>) -> Run {
    let pinning = match cpu {
        None => "unpinned".to_owned(),
        Some(cpu) => format!("pinned to CPU {cpu}"),
    };
    let mut rows: Vec<Row> = ROWS
        .iter()
        .map(|&(implementation, label)| Row {
            implementation: implementation.name(),
            label,
            status: "ok".to_owned(),
            rtt: None,
            throughput: None,
            rtt_rounds: Vec::new(),
            throughput_rounds: Vec::new(),
            p50_vs_raw: None,
            p50_vs_tokio_codec: None,
            throughput_vs_tokio_codec: None,
        })
        .collect();
    let rounds = plan.rounds;
    // Rounds are interleaved (every row once, then again) so a slow phase of the machine
    // does not fall on one row only.
    for round in 1..=rounds {
        for (&(implementation, label), row) in ROWS.iter().zip(rows.iter_mut()) {
            if row.status != "ok" {
                continue;
            }
            if implementation == ClientImpl::Durable && plan.args.service_bin.is_none() {
                let reason = plan
                    .args
                    .service_missing
                    .clone()
                    .unwrap_or_else(|| "no --service-bin given".to_owned());
                row.status = format!("skipped: {reason}");
                eprintln!("bench: {pinning}: {label}: {}", row.status);
                continue;
            }
            for mode in [Mode::Rtt, Mode::Throughput] {
                eprint!(
                    "bench: {pinning}, round {round}/{rounds}: {label}: {} ... ",
                    mode.name()
                );
                match measure(plan, implementation, mode, cpu) {
                    Ok(report) => {
                        eprintln!("{}", summary(&report));
                        match mode {
                            Mode::Rtt => row.rtt_rounds.push(report),
                            Mode::Throughput => row.throughput_rounds.push(report),
                        }
                    }
                    Err(error) => {
                        eprintln!("failed");
                        eprintln!("bench: {error:#}");
                        row.status = format!("failed: {error:#}");
                        break;
                    }
                }
            }
        }
    }
    for row in &mut rows {
        row.rtt = median(&row.rtt_rounds, |r| r.p50_us.unwrap_or(f64::INFINITY));
        row.throughput = median(&row.throughput_rounds, |r| r.msgs_per_s);
    }
    let raw = rows[0].p50();
    let codec_p50 = rows[1].p50();
    let codec_rate = rows[1].rate();
    for row in &mut rows {
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        row.p50_vs_raw = ratio(row.p50(), raw);
        row.p50_vs_tokio_codec = ratio(row.p50(), codec_p50);
        row.throughput_vs_tokio_codec = ratio(row.rate(), codec_rate);
    }
    let targets = targets(&rows);
    Run {
        pinning,
        skipped: None,
        rows,
        targets,
    }
}

/// The report with the median `key` (the lower middle one for an even count).
fn median(reports: &[ClientReport], key: impl Fn(&ClientReport) -> f64) -> Option<ClientReport> {
    let mut sorted: Vec<&ClientReport> = reports.iter().collect();
    sorted.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let middle = sorted.len().checked_sub(1)? / 2;
    sorted.get(middle).map(|report| (*report).clone())
}

fn summary(report: &ClientReport) -> String {
    match report.p50_us {
        Some(p50) => format!("p50 {p50:.1} µs"),
        None => format!("{:.0} msgs/s", report.msgs_per_s),
    }
}

/// The runtime row's targets.
fn targets(rows: &[Row]) -> Vec<Target> {
    let find = |name: &str| rows.iter().find(|row| row.implementation == name);
    let (raw, codec, tarpc, runtime) = (
        find("raw"),
        find("tokio-codec"),
        find("tarpc"),
        find("runtime"),
    );
    let p50 = |row: Option<&Row>| row.and_then(Row::p50);
    let rate = |row: Option<&Row>| row.and_then(Row::rate);
    let mut targets = Vec::new();
    let mut check = |target: &'static str, holds: Option<bool>, detail: String| {
        targets.push(Target {
            target,
            holds,
            detail,
        });
    };
    match (p50(runtime), p50(raw)) {
        (Some(ours), Some(limit)) => check(
            "p50 within 1.5x of raw",
            Some(ours <= 1.5 * limit),
            format!("{:.2}x", ours / limit),
        ),
        _ => check("p50 within 1.5x of raw", None, "not measured".to_owned()),
    }
    match (p50(runtime), p50(codec)) {
        (Some(ours), Some(theirs)) => check(
            "p50 no slower than tokio-codec",
            Some(ours <= theirs),
            format!("{:.2}x", ours / theirs),
        ),
        _ => check(
            "p50 no slower than tokio-codec",
            None,
            "not measured".to_owned(),
        ),
    }
    match (p50(runtime), p50(tarpc), rate(runtime), rate(tarpc)) {
        (Some(ours), Some(theirs), Some(our_rate), Some(their_rate)) => check(
            "faster than tarpc (p50 and throughput)",
            Some(ours < theirs && our_rate > their_rate),
            format!(
                "p50 {:.2}x, throughput {:.2}x",
                ours / theirs,
                our_rate / their_rate
            ),
        ),
        _ => check(
            "faster than tarpc (p50 and throughput)",
            None,
            "not measured".to_owned(),
        ),
    }
    match (rate(runtime), rate(codec)) {
        (Some(ours), Some(theirs)) => check(
            "throughput at least tokio-codec's",
            Some(ours >= theirs),
            format!("{:.2}x", ours / theirs),
        ),
        _ => check(
            "throughput at least tokio-codec's",
            None,
            "not measured".to_owned(),
        ),
    }
    targets
}

fn print_run(run: &Run, rounds: u32) {
    if rounds > 1 {
        println!(
            "Migration protocol, {} (each row: the median of {rounds} rounds)",
            run.pinning
        );
    } else {
        println!("Migration protocol, {}", run.pinning);
    }
    if let Some(reason) = &run.skipped {
        println!("  {reason}");
        return;
    }
    let header = format!(
        "{:<17} {:>9} {:>9} {:>9} {:>11} {:>8} {:>10} {:>11}  {}",
        "row",
        "p50 µs",
        "p99 µs",
        "mean µs",
        "msgs/s",
        "p50/(a)",
        "p50/(b)",
        "msgs/s/(b)",
        if rounds > 1 {
            "p50 µs of each round"
        } else {
            ""
        }
    );
    println!("{}", header.trim_end());
    let number = |value: Option<f64>, digits: usize| match value {
        Some(value) => format!("{value:.digits$}"),
        None => "-".to_owned(),
    };
    let ratio = |value: Option<f64>| match value {
        Some(value) => format!("{value:.2}x"),
        None => "-".to_owned(),
    };
    for row in &run.rows {
        if row.status != "ok" && row.rtt.is_none() {
            println!("{:<17} {}", row.label, row.status);
            continue;
        }
        let rtt = row.rtt.as_ref();
        let line = format!(
            "{:<17} {:>9} {:>9} {:>9} {:>11} {:>8} {:>10} {:>11}  {}",
            row.label,
            number(rtt.and_then(|r| r.p50_us), 1),
            number(rtt.and_then(|r| r.p99_us), 1),
            number(rtt.and_then(|r| r.mean_us), 1),
            row.rate().map_or_else(|| "-".to_owned(), grouped),
            ratio(row.p50_vs_raw),
            ratio(row.p50_vs_tokio_codec),
            ratio(row.throughput_vs_tokio_codec),
            if rounds > 1 {
                row.rtt_rounds
                    .iter()
                    .map(|r| number(r.p50_us, 1))
                    .collect::<Vec<_>>()
                    .join(" / ")
            } else {
                String::new()
            },
        );
        println!("{}", line.trim_end());
        if row.status != "ok" {
            println!("{:<17} {}", "", row.status);
        }
    }
    let verdicts: Vec<String> = run
        .targets
        .iter()
        .map(|target| {
            let verdict = match target.holds {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "n/a",
            };
            format!("{}: {verdict} ({})", target.target, target.detail)
        })
        .collect();
    println!("runtime targets ({}): {}", run.pinning, verdicts.join("; "));
}

/// `value` rounded, with thousands separated by commas.
fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn print_footnotes(plan: &Plan<'_>) {
    let c = plan.counts;
    println!("Notes:");
    println!(
        "- Every row runs client and server as separate processes over a path-bound Unix socket; \
         once connected it is the same kernel object as a socketpair (a connected AF_UNIX stream pair)."
    );
    println!(
        "- Same request bytes in every row: one USER_ACTION envelope (u32 LE length + JSON body), \
         acked with an ACKNOWLEDGMENT carrying correlationId; tarpc wraps them in its own \
         ClientMessage/Response JSON inside length-delimited frames. The raw server sends a \
         precomputed ack with the request id copied in at fixed offsets (no parsing)."
    );
    println!(
        "- Round trip: {} warm-up then {} sequential timed round trips (durable: {} then {}); \
         throughput: {} pipelined messages, time until the last ack (durable: {}); tarpc keeps \
         {} calls in flight. Each row is measured in {} round(s), each with fresh processes; \
         the table shows the round with the median p50 (and median msgs/s).",
        c.warmup,
        c.rtt,
        c.durable_warmup,
        c.durable_rtt,
        c.throughput,
        c.durable_throughput,
        plan.args.window,
        plan.rounds
    );
    println!(
        "- tokio-based servers and clients run on a {} runtime; raw uses blocking threads; \
         durable is migration-service (ack after a durable SQLite commit) driven by the runtime client.",
        plan.args.flavor.name()
    );
    println!(
        "- Ratios: p50 divided by (a)'s and (b)'s p50 (lower is faster); msgs/s divided by (b)'s (higher is faster). \
         Targets are reported, not asserted."
    );
}

/// Kills the child process on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `program args…`, under `taskset -c CPU` when pinned.
pub(crate) fn command(cpu: Option<u32>, program: &Path, args: &[String]) -> Command {
    match cpu {
        None => {
            let mut command = Command::new(program);
            command.args(args);
            command
        }
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command
                .arg("-c")
                .arg(cpu.to_string())
                .arg(program)
                .args(args);
            command
        }
    }
}

/// One measurement: a fresh server, one client run.
fn measure(
    plan: &Plan<'_>,
    row: ClientImpl,
    mode: Mode,
    cpu: Option<u32>,
) -> anyhow::Result<ClientReport> {
    let dir = tempfile::Builder::new()
        .prefix("ipcspec-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    let socket = dir.path().join("ipc.sock");
    let path = |p: &Path| p.display().to_string();
    let (program, server_args) = match row {
        ClientImpl::Durable => {
            let Some(bin) = &plan.args.service_bin else {
                bail!("no migration-service binary");
            };
            let db = dir.path().join("migration.db");
            (
                bin.clone(),
                vec![
                    "--socket".to_owned(),
                    path(&socket),
                    "--db".to_owned(),
                    path(&db),
                ],
            )
        }
        _ => (
            plan.exe.clone(),
            vec![
                "server".to_owned(),
                "--impl".to_owned(),
                row.name().to_owned(),
                "--socket".to_owned(),
                path(&socket),
                "--flavor".to_owned(),
                plan.args.flavor.name().to_owned(),
            ],
        ),
    };
    let child = command(cpu, &program, &server_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let mut server = Guard(child);
    let tail = wait_ready(&mut server.0, &socket)?;

    let (warmup, count) = plan.counts.of(row, mode);
    let client_args = vec![
        "client".to_owned(),
        "--impl".to_owned(),
        row.name().to_owned(),
        "--socket".to_owned(),
        path(&socket),
        "--mode".to_owned(),
        mode.name().to_owned(),
        "--count".to_owned(),
        count.to_string(),
        "--warmup".to_owned(),
        warmup.to_string(),
        "--user".to_owned(),
        plan.user.clone(),
        "--window".to_owned(),
        plan.args.window.to_string(),
        "--flavor".to_owned(),
        plan.args.flavor.name().to_owned(),
    ];
    let result = run_client(command(cpu, &plan.exe, &client_args));
    let server_exit = server.0.try_wait().ok().flatten();
    drop(server);
    let report = result.with_context(|| {
        let lines = tail.lock().unwrap_or_else(PoisonError::into_inner);
        let exit = server_exit.map_or(String::new(), |s| format!(" (server exited: {s})"));
        if lines.is_empty() {
            format!("the client failed{exit}")
        } else {
            format!(
                "the client failed{exit}; server stderr ends with:\n{}",
                lines.iter().cloned().collect::<Vec<_>>().join("\n")
            )
        }
    })?;
    if report.acks != count || report.correlated != count {
        bail!(
            "{} of {count} acks received, {} correlated and successful",
            report.acks,
            report.correlated
        );
    }
    Ok(report)
}

/// Waits until the server logs `listening on` or its socket accepts; returns the tail of
/// its stderr, which a thread keeps draining (so the server never blocks on it).
fn wait_ready(child: &mut Child, socket: &Path) -> anyhow::Result<Arc<Mutex<VecDeque<String>>>> {
    let stderr = child.stderr.take().context("no server stderr")?;
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let (ready_tx, ready_rx) = mpsc::channel();
    {
        let tail = Arc::clone(&tail);
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening on")
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
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match ready_rx.recv_timeout(Duration::from_millis(20)) {
            Ok(()) => return Ok(tail),
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if socket.exists() && UnixStream::connect(socket).is_ok() {
            return Ok(tail);
        }
        if let Some(status) = child.try_wait()? {
            let lines = tail.lock().unwrap_or_else(PoisonError::into_inner);
            bail!(
                "the server exited ({status}) before listening:\n{}",
                lines.iter().cloned().collect::<Vec<_>>().join("\n")
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the server did not listen on {} within {READY_TIMEOUT:?}",
                socket.display()
            );
        }
    }
}

/// Runs a client to completion (killing it after [`CLIENT_TIMEOUT`]) and parses its
/// report.
fn run_client(mut command: Command) -> anyhow::Result<ClientReport> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the client")?;
    let mut client = Guard(child);
    let stdout = client.0.stdout.take().context("no client stdout")?;
    let stderr = client.0.stderr.take().context("no client stderr")?;
    // Blocking reads, no polling: the client's stdout closes when it exits.
    let (stdout_tx, stdout_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut stdout = stdout;
        let _ = stdout.read_to_string(&mut text);
        let _ = stdout_tx.send(text);
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let mut stderr = stderr;
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let Ok(stdout) = stdout_rx.recv_timeout(CLIENT_TIMEOUT) else {
        bail!("the client did not finish within {CLIENT_TIMEOUT:?}");
    };
    let status = client.0.wait()?;
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        bail!("the client failed ({status}): {}", stderr.trim());
    }
    let line = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .with_context(|| format!("the client printed no result; stderr: {}", stderr.trim()))?;
    serde_json::from_str(line).with_context(|| format!("reading the client's result `{line}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_grouped_by_thousands() {
        assert_eq!(grouped(0.4), "0");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(1000.0), "1,000");
        assert_eq!(grouped(6_740_743.2), "6,740,743");
    }
}
