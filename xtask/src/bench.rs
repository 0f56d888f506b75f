//! `cargo xtask bench migration [--quick] [ARGS...]`: builds the release binaries of
//! `ipcspec-bench` and `migration-service`, then runs `ipcspec-bench migration`, which
//! starts every server and client as separate processes, prints the table (unpinned and
//! pinned to one CPU) and writes `<target dir>/bench/migration.json`.
//!
//! When `migration-service` does not build, the durable row is reported as skipped with
//! the reason; the other rows still run. `ARGS` go to `ipcspec-bench migration` as they
//! are (`--rtt-count`, `--throughput-count`, `--flavor`, ...; see its `--help`).
//!
//! `cargo xtask bench bus [--quick] [ARGS...]`: the XStateNet message bus against NATS
//! (see [`run_bus`]); `ARGS` go to `ipcspec-bench bus`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::project_root;

/// What to benchmark.
#[derive(Subcommand)]
pub enum Target {
    /// The Migration protocol: raw socket, tokio-codec, tarpc, the runtime and the
    /// durable migration-service, side by side.
    Migration {
        /// Small counts, for a smoke run.
        #[arg(long)]
        quick: bool,
        /// Passed to `ipcspec-bench migration`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The XStateNet message bus (`xstatenet-bus`) against NATS (`nats-server`, installed
    /// by `tools/nats/ensure-nats-server.sh`): round trip, one-to-one and fan-in streams.
    Bus {
        /// Small counts, for a smoke run.
        #[arg(long)]
        quick: bool,
        /// Passed to `ipcspec-bench bus`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

pub fn run(target: Target) -> anyhow::Result<()> {
    let (quick, args) = match target {
        Target::Migration { quick, args } => (quick, args),
        Target::Bus { quick, args } => return run_bus(quick, &args),
    };
    build(&["-p", "ipcspec-bench", "--bin", "ipcspec-bench"])
        .map_err(|reason| anyhow::anyhow!("building ipcspec-bench: {reason}"))?;
    let service = build(&["-p", "ipcspec-migration", "--bin", "migration-service"]);

    let release = target_dir().join("release");
    let bench = release.join("ipcspec-bench");
    if !bench.exists() {
        bail!("{} is missing after the build", bench.display());
    }
    let out = target_dir().join("bench").join("migration.json");
    let mut command = Command::new(&bench);
    command.arg("migration").arg("--out").arg(&out);
    if quick {
        command.arg("--quick");
    }
    let binary = release.join("migration-service");
    match service {
        Ok(()) if binary.exists() => {
            command.arg("--service-bin").arg(&binary);
        }
        Ok(()) => {
            command
                .arg("--service-missing")
                .arg(format!("{} was not produced", binary.display()));
        }
        Err(reason) => {
            command
                .arg("--service-missing")
                .arg(format!("migration-service did not build: {reason}"));
        }
    }
    command.args(&args).current_dir(project_root());
    eprintln!("xtask: {} migration ...", bench.display());
    let status = command
        .status()
        .with_context(|| format!("running {}", bench.display()))?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}

/// `cargo xtask bench bus`: release builds of `ipcspec-bench` and `xstatenet-bus`,
/// `nats-server` from `tools/nats/ensure-nats-server.sh` (NATS reported as skipped, with
/// the script's reason, when it cannot be had), then `ipcspec-bench bus`, which writes
/// `<target dir>/bench/bus.json`.
fn run_bus(quick: bool, args: &[String]) -> anyhow::Result<()> {
    build(&["-p", "ipcspec-bench", "--bin", "ipcspec-bench"])
        .map_err(|reason| anyhow::anyhow!("building ipcspec-bench: {reason}"))?;
    build(&["-p", "ipcspec-xstatenet", "--bin", "xstatenet-bus"])
        .map_err(|reason| anyhow::anyhow!("building xstatenet-bus: {reason}"))?;
    let release = target_dir().join("release");
    let bench = release.join("ipcspec-bench");
    let bus = release.join("xstatenet-bus");
    for binary in [&bench, &bus] {
        if !binary.exists() {
            bail!("{} is missing after the build", binary.display());
        }
    }
    let out = target_dir().join("bench").join("bus.json");
    let mut command = Command::new(&bench);
    command
        .arg("bus")
        .arg("--out")
        .arg(&out)
        .arg("--bus-bin")
        .arg(&bus);
    if quick {
        command.arg("--quick");
    }
    match ensure_nats_server() {
        Ok(path) => {
            command.arg("--nats-server").arg(path);
        }
        Err(reason) => {
            eprintln!("xtask: NATS is skipped: {reason}");
            command.arg("--nats-missing").arg(reason);
        }
    }
    command.args(args).current_dir(project_root());
    eprintln!("xtask: {} bus ...", bench.display());
    let status = command
        .status()
        .with_context(|| format!("running {}", bench.display()))?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}

/// Runs `tools/nats/ensure-nats-server.sh`; the path it prints, or why it failed.
fn ensure_nats_server() -> Result<PathBuf, String> {
    let script = project_root().join("tools/nats/ensure-nats-server.sh");
    eprintln!("xtask: {}", script.display());
    let output = Command::new("bash")
        .arg(&script)
        .current_dir(project_root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = stdout.lines().rev().find(|l| !l.trim().is_empty());
    match path {
        Some(path) if output.status.success() => Ok(PathBuf::from(path.trim())),
        _ => Err(format!(
            "{} failed ({}); see its message above",
            script.display(),
            output.status
        )),
    }
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (or `$CARGO_BUILD_TARGET_DIR`),
/// relative paths taken from the workspace root, else `target/` there.
fn target_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .or_else(|| std::env::var_os("CARGO_BUILD_TARGET_DIR"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    if dir.is_absolute() {
        dir
    } else {
        project_root().join(dir)
    }
}

/// `cargo build --release ARGS`, streaming cargo's output; on failure, the first error
/// line cargo printed.
fn build(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo build --release {}", args.join(" "));
    let mut child = Command::new(&cargo)
        .arg("build")
        .arg("--release")
        .args(args)
        .current_dir(project_root())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {cargo}: {e}"))?;
    let mut first_error = None;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("{line}");
            if first_error.is_none() && line.starts_with("error") {
                first_error = Some(line);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(first_error.unwrap_or_else(|| format!("cargo exited with {status}")))
    }
}
