//! The ipcspec catalogue language.
//!
//! A catalogue describes one IPC system's messages once; everything else (code in every
//! language, schemas, docs, conformance vectors) is derived from it. This crate owns the
//! language: the [`model`] types, [`load`]ing a file with every diagnostic located by
//! file, line and column, semantic [`validate`]ion, C [`layout`], and the meta-schema.
//!
//! Invariant: this crate does no IO beyond reading the catalogue file it is asked to load,
//! and knows nothing of code generation or transports.

pub mod diagnostic;
pub mod intlit;
pub mod layout;
pub mod load;
pub mod meta;
pub mod model;
pub mod render;
pub mod source;
pub mod validate;

pub use diagnostic::{Diagnostic, Severity};
pub use load::{Loaded, SourceFile, load_file, load_str};
pub use model::Catalogue;
pub use source::SourceMap;
