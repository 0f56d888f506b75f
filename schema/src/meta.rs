//! The meta-schema: a JSON Schema of the catalogue language, generated from the model so
//! the two cannot drift. Catalogues reference it with `$schema` and editors use it for
//! completion and checks; `cargo xtask codegen` keeps `specs/catalogue.schema.json` fresh.

use crate::model::Catalogue;

/// The meta-schema as pretty-printed JSON with a trailing newline.
pub fn meta_schema_json() -> String {
    let schema = schemars::schema_for!(Catalogue);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
