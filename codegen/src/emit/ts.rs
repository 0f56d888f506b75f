//! ts emitter (being written).

use crate::ir::Module;
use crate::output::OutputFile;

/// Emits the ts files for every module.
pub fn emit(modules: &[Module]) -> anyhow::Result<Vec<OutputFile>> {
    let _ = modules;
    Ok(Vec::new())
}
