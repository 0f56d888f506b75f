//! `cargo xtask`: the project's own automation (the rust-analyzer pattern).
//!
//! - `cargo xtask codegen [--check]`: validate `specs/*.json`, then regenerate every
//!   derived file (today the meta-schema `specs/catalogue.schema.json`). With `--check`
//!   nothing is written and the command fails listing every stale file.
//! - `cargo xtask test`: the full test suite, exactly what CI runs.
//! - `cargo xtask bench migration [--quick]`: the Migration protocol benchmark (release
//!   builds, separate processes, unpinned and pinned); see `bench.rs`.

mod bench;
mod codegen;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the catalogues in specs/ and regenerate everything derived from them.
    Codegen {
        /// Change nothing; fail and list the files that are stale.
        #[arg(long)]
        check: bool,
    },
    /// Run every check CI runs: format, lints, freshness of generated files, all tests.
    Test,
    /// Build in release mode and run a benchmark.
    Bench {
        #[command(subcommand)]
        target: bench::Target,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Codegen { check } => codegen::run(check),
        Command::Test => test::run(),
        Command::Bench { target } => bench::run(target),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
