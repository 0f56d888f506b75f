//! ipcspec code generation: catalogue model -> IR -> emitters.
//!
//! [`check`] loads catalogues and reports every diagnostic; [`generate`] lowers valid
//! catalogues to the [`ir`] and runs the [`emit`]ters, returning files for
//! [`output::write_all`]. This crate also hosts the `ipcspec` command.

pub mod emit;
pub mod ir;
pub mod output;

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

/// Loads and validates every file of `files`, which are relative to `root`; diagnostics
/// name them as given (short and identical on every machine), without changing the
/// process's working directory.
pub fn check_in<P: AsRef<Path>>(root: &Path, files: &[P]) -> CheckReport {
    CheckReport {
        loaded: files
            .iter()
            .map(|f| {
                let mut loaded = load_file(&root.join(f.as_ref()));
                loaded.source.path = f.as_ref().to_path_buf();
                loaded
            })
            .collect(),
    }
}

/// True when stderr is a terminal and colour is not disabled (`NO_COLOR`).
pub fn stderr_wants_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Lowers every loaded catalogue and emits `targets`. Catalogues must have loaded without
/// errors; name collisions found while lowering are returned with their file.
pub fn generate(
    loaded: &[Loaded],
    targets: &[output::Target],
) -> Result<Vec<output::OutputFile>, GenerateError> {
    emit::emit(&lower(loaded)?, targets).map_err(GenerateError::Emit)
}

/// Lowers every loaded catalogue to its [`ir::Module`], sorted by name, each named after
/// its file. Done once per run: every emitter reads the same modules.
pub fn lower(loaded: &[Loaded]) -> Result<Vec<ir::Module>, GenerateError> {
    let mut modules = Vec::new();
    let mut failed = Vec::new();
    for l in loaded {
        let Some(catalogue) = l.valid() else {
            failed.push(l.source.path.display().to_string());
            continue;
        };
        match ir::lower(catalogue) {
            Ok(mut module) => {
                if let Some(name) = l.source.path.file_name() {
                    module.source = name.to_string_lossy().into_owned();
                }
                modules.push(module);
            }
            Err(diagnostics) => {
                return Err(GenerateError::Collisions(render::render(
                    &l.source,
                    &diagnostics,
                    if stderr_wants_color() {
                        Style::Color
                    } else {
                        Style::Plain
                    },
                )));
            }
        }
    }
    if !failed.is_empty() {
        return Err(GenerateError::Invalid(failed));
    }
    modules.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(modules)
}

/// Why generation failed.
#[derive(Debug)]
pub enum GenerateError {
    /// These catalogues have errors (report them with [`check`]).
    Invalid(Vec<String>),
    /// Names collide in a target language; the rendered diagnostics.
    Collisions(String),
    /// An emitter failed.
    Emit(anyhow::Error),
}

impl std::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GenerateError::Invalid(files) => {
                write!(f, "invalid catalogue(s): {}", files.join(", "))
            }
            GenerateError::Collisions(rendered) => write!(f, "name collisions:\n{rendered}"),
            GenerateError::Emit(error) => write!(f, "emitter failed: {error:#}"),
        }
    }
}

impl std::error::Error for GenerateError {}
