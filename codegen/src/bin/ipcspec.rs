//! `ipcspec`: check catalogues (and, as the toolchain grows, generate code from them).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ipcspec_codegen::{Format, check, stderr_wants_color};

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
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// rustc-like reports with source excerpts.
    Human,
    /// One `path:line:column: severity[code]: message` line per diagnostic.
    Short,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
