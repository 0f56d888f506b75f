//! Lowering rules pinned by small catalogues: collisions that only appear once names are
//! converted for a target language are diagnostics, and derived names give way to
//! declared ones.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::path::Path;

use ipcspec_codegen::ir::{self, Module};

fn minimal() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/tests/fixtures/minimal.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn lower(doc: &serde_json::Value) -> Result<Module, Vec<ipcspec_schema::Diagnostic>> {
    let loaded = ipcspec_schema::load_str(Path::new("test.json"), doc.to_string());
    assert!(loaded.is_ok(), "{:?}", loaded.diagnostics);
    ir::lower(loaded.catalogue.as_ref().unwrap())
}

#[test]
fn names_that_collide_in_rust_are_reported_with_both_locations() {
    let mut doc = minimal();
    // `RED_LIGHT` and `RedLight` differ in the catalogue, in C and in TypeScript, but are
    // both the variant `RedLight` in Rust.
    doc["types"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "kind": "enum", "name": "Signal", "doc": "A signal.",
            "values": [
                {"name": "RED_LIGHT", "value": "red", "doc": "Stop."},
                {"name": "RedLight", "value": "red-light", "doc": "Also stop."}
            ]
        }));
    let diagnostics = lower(&doc).unwrap_err();
    let rust: Vec<_> = diagnostics
        .iter()
        .filter(|d| d.message.contains("in Rust"))
        .collect();
    assert_eq!(rust.len(), 1, "{diagnostics:#?}");
    let d = rust[0];
    assert_eq!(d.code, "ipcspec::name-collision");
    assert!(
        d.message
            .contains("`RED_LIGHT` and `RedLight` are both `RedLight`"),
        "{}",
        d.message
    );
    assert_eq!(d.labels.len(), 2);
    assert!(d.help.is_some());
}

#[test]
fn derived_names_give_way_to_declared_ones() {
    let mut doc = minimal();
    // A declared type takes the name the client's message enum would get.
    doc["types"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "kind": "struct", "name": "ClientMessage", "doc": "Declared first.",
            "fields": [{"name": "note", "type": "string", "doc": "A note."}]
        }));
    let module = lower(&doc).unwrap();
    let client = module
        .role_items
        .iter()
        .find(|r| r.role == "client")
        .unwrap();
    assert_eq!(client.message_enum.as_deref(), Some("ClientMessages"));
    let server = module
        .role_items
        .iter()
        .find(|r| r.role == "server")
        .unwrap();
    assert_eq!(server.message_enum.as_deref(), Some("ServerMessage"));
    assert_eq!(server.handler_trait.as_deref(), Some("ServerHandler"));
}

#[test]
fn types_embedded_by_value_are_declared_first() {
    let mut doc = minimal();
    doc["types"].as_array_mut().unwrap().insert(
        0,
        serde_json::json!({
            "kind": "struct", "name": "Outer", "doc": "Embeds Text.",
            "fields": [{"name": "inner", "type": "Text", "doc": "By value."}]
        }),
    );
    let module = lower(&doc).unwrap();
    let names: Vec<&str> = module.types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Text", "Outer"]);
}
