//! ipcspec code generation: catalogue model -> IR -> emitters.
//!
//! This crate also hosts the `ipcspec` command. Its first job is [`check`]: load
//! catalogues and report every diagnostic.

use std::io::IsTerminal;
use std::path::Path;

use ipcspec_schema::render::{self, Style};
use ipcspec_schema::{Loaded, load_file};

/// How `check` prints diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// rustc-like reports with source excerpts.
    Human,
    /// One `path:line:column: severity[code]: message` line per diagnostic.
    Short,
}

/// The outcome of checking several catalogues.
#[derive(Debug)]
pub struct CheckReport {
    /// Each file as loaded.
    pub loaded: Vec<Loaded>,
}

impl CheckReport {
    /// True when no file has an error.
    pub fn ok(&self) -> bool {
        self.loaded.iter().all(Loaded::is_ok)
    }

    /// Number of errors over all files.
    pub fn error_count(&self) -> usize {
        self.loaded
            .iter()
            .flat_map(|l| &l.diagnostics)
            .filter(|d| d.is_error())
            .count()
    }

    /// Renders every diagnostic of every file.
    pub fn render(&self, format: Format, color: bool) -> String {
        let style = if color { Style::Color } else { Style::Plain };
        self.loaded
            .iter()
            .map(|l| match format {
                Format::Human => render::render(&l.source, &l.diagnostics, style),
                Format::Short => render::render_short(&l.source, &l.diagnostics),
            })
            .collect()
    }
}

/// Loads and validates every file.
pub fn check<P: AsRef<Path>>(files: &[P]) -> CheckReport {
    CheckReport {
        loaded: files.iter().map(|f| load_file(f.as_ref())).collect(),
    }
}

/// True when stderr is a terminal and colour is not disabled (`NO_COLOR`).
pub fn stderr_wants_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}
