//! `ipcspec-conformance run --spec specs/migration.json --connect unix:PATH` (or `--spawn
//! 'COMMAND'`): runs the catalogue's scenarios against an implementation and reports.
//! Exit status: 0 when every case passed, 1 on conformance failures, 2 on harness errors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use ipcspec_conformance::engine::{Context, Target};
use ipcspec_conformance::run::{Selection, load_expected_failures, load_scenarios, run};

#[derive(Parser)]
#[command(
    name = "ipcspec-conformance",
    version,
    about = "Checks an implementation against a catalogue's conformance scenarios"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run the scenarios against an implementation acting as server.
    Run(Box<RunArgs>),
    /// Print the JSON Schema of the scenario format.
    Schema,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The catalogue.
    #[arg(long)]
    spec: PathBuf,
    /// The scenario file (default: conformance/scenarios/<catalogue name>.json).
    #[arg(long)]
    scenarios: Option<PathBuf>,
    /// Connect to a running implementation: `unix:PATH`.
    #[arg(long, conflicts_with = "spawn")]
    connect: Option<String>,
    /// Start the implementation with this shell command; it must listen on the address
    /// in `IPCSPEC_ADDRESS` (`unix:PATH`). It is restarted after a crash.
    #[arg(long)]
    spawn: Option<String>,
    /// Start the implementation as a client with this shell command, once per client
    /// case: it must connect to `IPCSPEC_ADDRESS` (`unix:PATH`), may read the case id in
    /// `IPCSPEC_CASE` and the case's client input on stdin, and prints what it saw on
    /// stdout. Without it, client cases are skipped.
    #[arg(long)]
    client_command: Option<String>,
    /// The implementation's capabilities (limits and features), over the catalogue's.
    #[arg(long)]
    capabilities: Option<PathBuf>,
    /// Run only this case (repeatable).
    #[arg(long = "case")]
    cases: Vec<String>,
    /// Run only this group (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Also run should-level cases.
    #[arg(long)]
    strict: bool,
    /// Cases expected to fail: `ID # reason` per line. An unexpected pass fails the run.
    #[arg(long)]
    expected_failures: Option<PathBuf>,
    /// Where to write report.json, junit.xml and report.html.
    #[arg(long, default_value = "target/conformance")]
    out: PathBuf,
    /// The login name `${otherUser}` stands for (someone the runner is not) [default:
    /// nobody, or root when the runner is nobody].
    #[arg(long)]
    other_user: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Commands::Schema => {
            let schema = schemars::schema_for!(ipcspec_conformance::scenario::ScenarioFile);
            match serde_json::to_string_pretty(&schema) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("ipcspec-conformance: {error}");
                    ExitCode::from(2)
                }
            }
        }
        Commands::Run(args) => match run_command(args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(error) => {
                eprintln!("ipcspec-conformance: {error:#}");
                ExitCode::from(2)
            }
        },
    }
}

/// Ok(true) when everything passed, Ok(false) on conformance failures, Err on harness
/// errors.
fn run_command(args: Box<RunArgs>) -> anyhow::Result<bool> {
    let other_user = args
        .other_user
        .clone()
        .unwrap_or_else(|| ipcspec_conformance::engine::default_other_user().to_owned());
    let ctx = Context::new(&args.spec, args.capabilities.as_deref(), &other_user)?;
    let scenarios = args.scenarios.clone().unwrap_or_else(|| {
        PathBuf::from("conformance/scenarios").join(format!("{}.json", ctx.protocol.catalogue))
    });
    let file = load_scenarios(&scenarios)?;
    if file.catalogue != ctx.protocol.catalogue {
        bail!(
            "{} is for catalogue `{}`, but {} is `{}`",
            scenarios.display(),
            file.catalogue,
            args.spec.display(),
            ctx.protocol.catalogue
        );
    }
    let expected_failures = match &args.expected_failures {
        Some(path) => load_expected_failures(path)?,
        None => Default::default(),
    };
    let (mut target, name) = match (&args.connect, &args.spawn) {
        (Some(address), _) => {
            let Some(path) = address.strip_prefix("unix:") else {
                bail!("--connect takes `unix:PATH`, not `{address}`");
            };
            (Target::Connect(PathBuf::from(path)), address.clone())
        }
        (None, Some(command)) => {
            std::fs::create_dir_all(&args.out)
                .with_context(|| format!("creating {}", args.out.display()))?;
            let dir =
                std::env::temp_dir().join(format!("ipcspec-conformance-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            (
                Target::Spawn {
                    command: command.clone(),
                    socket: dir.join("impl.sock"),
                    log: args.out.join("implementation.log"),
                    child: None,
                },
                command.clone(),
            )
        }
        (None, None) if args.client_command.is_some() => (
            Target::Absent,
            args.client_command.clone().unwrap_or_default(),
        ),
        (None, None) => bail!("give --connect, --spawn or --client-command"),
    };
    let selection = Selection {
        cases: args.cases,
        groups: args.groups,
        strict: args.strict,
        client_command: args.client_command.clone(),
    };
    let report = run(
        &ctx,
        &file,
        &mut target,
        &name,
        &selection,
        &expected_failures,
    );
    target.stop();
    let report = report?;
    report.write(&args.out)?;
    println!("{}", report.human());
    if report.summary.errors > 0 {
        bail!(
            "{} case(s) could not be run; see {}",
            report.summary.errors,
            args.out.join("report.json").display()
        );
    }
    Ok(report.summary.failed == 0)
}
