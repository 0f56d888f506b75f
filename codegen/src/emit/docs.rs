//! docs emitter (being written).

use crate::ir::Module;
use crate::output::OutputFile;

/// Emits the docs files for every module.
pub fn emit(modules: &[Module]) -> anyhow::Result<Vec<OutputFile>> {
    let _ = modules;
    Ok(Vec::new())
}
