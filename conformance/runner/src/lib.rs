//! `ipcspec-conformance`: checks an implementation of a catalogue, in any language,
//! against the language-independent scenarios in `conformance/scenarios/`.
//!
//! - [`scenario`]: the case format (steps, expectations, acceptable outcomes).
//! - [`protocol`]: what the runner reads from the catalogue, and the implementation's
//!   capabilities.
//! - [`engine`]: connections, frames, expectations, verdicts, transcripts.
//! - [`report`]: the summary, `report.json`, JUnit XML and the HTML page.
//! - [`run`]: selection (`--case`, `--group`, `--strict`), expected failures, the loop.

pub mod engine;
pub mod protocol;
pub mod report;
pub mod run;
pub mod scenario;
