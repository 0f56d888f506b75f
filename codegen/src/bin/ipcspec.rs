//! `ipcspec`: check catalogues (and, as the toolchain grows, generate code from them).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ipcspec_codegen::output::Target;
use ipcspec_codegen::{Format, check, generate as generate_files, stderr_wants_color};

#[derive(Parser)]
#[command(
    name = "ipcspec",
    version,
    about = "Protocol catalogues for inter-process messaging"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate catalogues; exit 1 and print every diagnostic if any has an error.
    Check {
        /// Catalogue files (JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Diagnostic format.
        #[arg(long, value_enum, default_value_t = FormatArg::Human)]
        format: FormatArg,
    },
    /// Generate code and docs from catalogues into the given directories.
    Generate(GenerateArgs),
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Write the Rust crate sources here.
    #[arg(long, value_name = "DIR")]
    rust: Option<PathBuf>,
    /// Write C headers here.
    #[arg(long, value_name = "DIR")]
    c: Option<PathBuf>,
    /// Write TypeScript definitions here.
    #[arg(long, value_name = "DIR")]
    ts: Option<PathBuf>,
    /// Write JSON Schemas here.
    #[arg(long, value_name = "DIR")]
    jsonschema: Option<PathBuf>,
    /// Write Markdown documentation here.
    #[arg(long, value_name = "DIR")]
    docs: Option<PathBuf>,
    /// Catalogue files (JSON).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// rustc-like reports with source excerpts.
    Human,
    /// One `path:line:column: severity[code]: message` line per diagnostic.
    Short,
}

fn generate(args: GenerateArgs) -> ExitCode {
    let mut dirs: Vec<(Target, PathBuf)> = Vec::new();
    for (target, dir) in [
        (Target::Rust, args.rust),
        (Target::C, args.c),
        (Target::Ts, args.ts),
        (Target::JsonSchema, args.jsonschema),
        (Target::Docs, args.docs),
    ] {
        if let Some(dir) = dir {
            dirs.push((target, dir));
        }
    }
    if dirs.is_empty() {
        eprintln!(
            "ipcspec: name at least one output: --rust, --c, --ts, --jsonschema or --docs DIR"
        );
        return ExitCode::from(2);
    }
    let report = check(&args.files);
    eprint!("{}", report.render(Format::Human, stderr_wants_color()));
    if !report.ok() {
        eprintln!(
            "ipcspec: {} error(s); nothing generated",
            report.error_count()
        );
        return ExitCode::FAILURE;
    }
    let targets: Vec<Target> = dirs.iter().map(|(t, _)| *t).collect();
    let files = match generate_files(&report.loaded, &targets) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("ipcspec: {error}");
            return ExitCode::FAILURE;
        }
    };
    let dir_of = |target: Target| {
        dirs.iter()
            .find(|(t, _)| *t == target)
            .map(|(_, d)| d.clone())
            .unwrap_or_default()
    };
    // Only write: never delete in someone else's directories.
    for file in &files {
        let path = dir_of(file.target).join(&file.path);
        if let Some(parent) = path.parent() {
            if let Err(error) = std::fs::create_dir_all(parent) {
                eprintln!("ipcspec: cannot create {}: {error}", parent.display());
                return ExitCode::FAILURE;
            }
        }
        if let Err(error) = std::fs::write(&path, &file.contents) {
            eprintln!("ipcspec: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    eprintln!("ipcspec: wrote {} file(s)", files.len());
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Generate(args) => generate(args),
        Command::Check { files, format } => {
            let format = match format {
                FormatArg::Human => Format::Human,
                FormatArg::Short => Format::Short,
            };
            let report = check(&files);
            eprint!("{}", report.render(format, stderr_wants_color()));
            if report.ok() {
                eprintln!("ipcspec: {} catalogue(s) OK", files.len());
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "ipcspec: {} error(s) in {} file(s)",
                    report.error_count(),
                    report.loaded.iter().filter(|l| !l.is_ok()).count()
                );
                ExitCode::FAILURE
            }
        }
    }
}
