//! Property tests: for every named type of every catalogue in `specs/`, random values
//! generated from the IR (honouring every constraint) are accepted by the generated JSON
//! Schema and survive value -> JSON -> generated Rust type -> JSON unchanged; values of
//! C-layout types also survive the little-endian binary encoding.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::path::Path;

use ipcspec_codegen::emit::examples;
use ipcspec_codegen::ir::{Module, Ty, TypeId, TypeKind};
use proptest::prelude::*;

type Roundtrip =
    fn(&str, serde_json::Value) -> Option<Result<serde_json::Value, serde_json::Error>>;
type BinaryRoundtrip = fn(&str, serde_json::Value) -> Option<Result<serde_json::Value, String>>;

struct Catalogue {
    module: Module,
    schema: serde_json::Value,
    json: Roundtrip,
    binary: BinaryRoundtrip,
}

fn catalogue(name: &str, json: Roundtrip, binary: BinaryRoundtrip) -> Catalogue {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let loaded = ipcspec_schema::load_file(&root.join("specs").join(format!("{name}.json")));
    let module = ipcspec_codegen::ir::lower(loaded.valid().unwrap()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join(format!("generated/jsonschema/{name}.schema.json")))
            .unwrap(),
    )
    .unwrap();
    Catalogue {
        module,
        schema,
        json,
        binary,
    }
}

fn catalogues() -> Vec<Catalogue> {
    use ipcspec_generated::{direct_ipc, migration, vexfs, xstatenet};
    // JSON-only catalogues have no type with a binary form, hence no binary registry.
    let no_binary = |_: &str, _: serde_json::Value| None;
    vec![
        catalogue(
            "migration",
            migration::registries::json_roundtrip,
            no_binary,
        ),
        catalogue(
            "vexfs",
            vexfs::registries::json_roundtrip,
            vexfs::registries::binary_roundtrip,
        ),
        catalogue(
            "direct-ipc",
            direct_ipc::registries::json_roundtrip,
            no_binary,
        ),
        catalogue(
            "xstatenet",
            xstatenet::registries::json_roundtrip,
            no_binary,
        ),
    ]
}

/// A validator for one `$defs` entry of a module schema.
fn def_validator(schema: &serde_json::Value, name: &str) -> jsonschema::Validator {
    let mut root = schema.clone();
    let object = root.as_object_mut().unwrap();
    object.remove("oneOf");
    object.remove("allOf");
    object.remove("required");
    object.remove("properties");
    object.remove("type");
    object.remove("if");
    object.remove("then");
    object.insert("$ref".into(), serde_json::json!(format!("#/$defs/{name}")));
    jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema for {name}: {e}"))
}

fn is_c_layout(module: &Module, id: TypeId) -> bool {
    matches!(&module.ty(id).kind, TypeKind::Struct(s) if s.c_layout.is_some())
}

#[test]
fn every_type_round_trips_through_json_schema_and_binary() {
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let checked = std::cell::Cell::new(0usize);
    let mut types = 0usize;
    for cat in catalogues() {
        types += cat.module.types.len();
        for (index, td) in cat.module.types.iter().enumerate() {
            let id = TypeId(index);
            let validator = def_validator(&cat.schema, &td.name);
            let c_layout = is_c_layout(&cat.module, id);
            let mut runner = proptest::test_runner::TestRunner::new(config.clone());
            let result = runner.run(&any::<u64>(), |seed| {
                let value =
                    examples::ty_example(&cat.module, &Ty::Named(id), &format!("proptest:{seed}"))
                        .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
                let errors: Vec<String> = validator
                    .iter_errors(&value)
                    .map(|e| format!("{} at {}", e, e.instance_path()))
                    .collect();
                prop_assert!(
                    errors.is_empty(),
                    "{}::{} rejects {value}: {errors:?}",
                    cat.module.name,
                    td.name
                );
                let back = (cat.json)(&td.name, value.clone())
                    .expect("every type is in the registry")
                    .map_err(|e| {
                        TestCaseError::fail(format!(
                            "{}::{} cannot read {value}: {e}",
                            cat.module.name, td.name
                        ))
                    })?;
                prop_assert_eq!(
                    &back,
                    &value,
                    "{}::{} JSON round trip",
                    cat.module.name,
                    td.name
                );
                if c_layout {
                    let back = (cat.binary)(&td.name, value.clone())
                        .expect("every C-layout type has a binary codec")
                        .map_err(|e| {
                            TestCaseError::fail(format!(
                                "{}::{} binary: {e}",
                                cat.module.name, td.name
                            ))
                        })?;
                    prop_assert_eq!(
                        &back,
                        &value,
                        "{}::{} binary round trip",
                        cat.module.name,
                        td.name
                    );
                }
                checked.set(checked.get() + 1);
                Ok(())
            });
            if let Err(error) = result {
                panic!("{}::{}: {error}", cat.module.name, td.name);
            }
        }
    }
    // Every type of every catalogue ran its cases: the test cannot pass vacuously.
    assert!(types > 100, "only {types} types found");
    assert_eq!(checked.get(), types * config.cases as usize);
}
