//! The generated Rust validation (serde decoding, then `Validate`) gives the same verdict
//! as the generated JSON Schema (checked with the `jsonschema` crate, the reference) on
//! every document: for every named type of every catalogue in `specs/`, its examples, its
//! wrong values, random valid values and random mutations of those (strings lengthened,
//! shortened or given foreign characters, numbers pushed past the catalogue's bounds and
//! the type's width, lists grown and shrunk, keys dropped and added, values nulled).

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::BTreeSet;
use std::path::Path;

use ipcspec_codegen::emit::examples;
use ipcspec_codegen::ir::{Constraints, Module, Ty, TypeId, TypeKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

type ValidateJson = fn(&str, Value) -> Option<Result<(), String>>;

struct Catalogue {
    module: Module,
    schema: Value,
    validate: ValidateJson,
}

fn catalogue(name: &str, validate: ValidateJson) -> Catalogue {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let loaded = ipcspec_schema::load_file(&root.join("specs").join(format!("{name}.json")));
    let module = ipcspec_codegen::ir::lower(loaded.valid().unwrap()).unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join(format!("generated/jsonschema/{name}.schema.json")))
            .unwrap(),
    )
    .unwrap();
    Catalogue {
        module,
        schema,
        validate,
    }
}

fn catalogues() -> Vec<Catalogue> {
    use ipcspec_generated::{direct_ipc, migration, vexfs, xstatenet};
    vec![
        catalogue("migration", migration::registries::validate_json),
        catalogue("vexfs", vexfs::registries::validate_json),
        catalogue("direct-ipc", direct_ipc::registries::validate_json),
        catalogue("xstatenet", xstatenet::registries::validate_json),
    ]
}

/// A validator for one `$defs` entry of a module schema (as in `roundtrip.rs`).
fn def_validator(schema: &Value, name: &str) -> jsonschema::Validator {
    let mut root = schema.clone();
    let object = root.as_object_mut().unwrap();
    for key in [
        "oneOf",
        "allOf",
        "required",
        "properties",
        "type",
        "if",
        "then",
    ] {
        object.remove(key);
    }
    object.insert("$ref".into(), json!(format!("#/$defs/{name}")));
    jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema for {name}: {e}"))
}

/// Every bound the catalogue declares, so mutations land on and just past them.
#[derive(Default)]
struct Bounds {
    numbers: BTreeSet<String>,
    lengths: BTreeSet<u64>,
}

impl Bounds {
    fn of(module: &Module) -> Bounds {
        let mut b = Bounds::default();
        let mut add = |k: &Constraints| {
            for v in [k.minimum, k.maximum].into_iter().flatten() {
                for d in [-1.0, -0.5, 0.0, 0.5, 1.0] {
                    b.numbers.insert((v + d).to_string());
                }
            }
            for v in [k.min_length, k.max_length, k.min_items, k.max_items]
                .into_iter()
                .flatten()
            {
                b.lengths.extend([v.saturating_sub(1), v, v + 1]);
            }
        };
        for td in &module.types {
            match &td.kind {
                TypeKind::Struct(s) => s.fields.iter().for_each(|f| add(&f.constraints)),
                TypeKind::Alias(a) => add(&a.constraints),
                _ => {}
            }
        }
        b.lengths.insert(0);
        b
    }

    fn number(&self, rng: &mut ChaCha8Rng) -> f64 {
        let all: Vec<&String> = self.numbers.iter().collect();
        if all.is_empty() {
            return 0.0;
        }
        all[rng.random_range(0..all.len())].parse().unwrap()
    }

    fn length(&self, rng: &mut ChaCha8Rng) -> usize {
        let all: Vec<u64> = self.lengths.iter().copied().collect();
        usize::try_from(all[rng.random_range(0..all.len())]).unwrap()
    }
}

/// JSON pointers of every node of `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                pointers(item, format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// A string of exactly `n` characters made from `s` (repeating its last character).
fn resized(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    let filler = s.chars().last().unwrap_or('a');
    while out.chars().count() < n {
        out.push(filler);
    }
    out
}

/// One random mutation of `value` (which may or may not stay valid).
fn mutate(value: &Value, bounds: &Bounds, rng: &mut ChaCha8Rng) -> Value {
    let mut out = value.clone();
    let mut all = Vec::new();
    pointers(&out, String::new(), &mut all);
    let at = all[rng.random_range(0..all.len())].clone();
    let node = out.pointer_mut(&at).unwrap();
    let choice = rng.random_range(0..100u32);
    match node {
        Value::String(s) => {
            *node = match choice % 8 {
                0 | 1 => json!(resized(s, bounds.length(rng))),
                2 => json!(format!("{s}{}", s.chars().last().unwrap_or('a'))),
                3 => json!(s.chars().skip(1).collect::<String>()),
                // Multi-byte characters: lengths count characters, not bytes.
                4 => json!(resized("\u{e9}\u{2603}", bounds.length(rng))),
                5 => {
                    let foreign = [' ', '!', '~', '\u{7f}', '\u{e9}', '\n'][rng.random_range(0..6)];
                    let mut chars: Vec<char> = s.chars().collect();
                    if chars.is_empty() {
                        chars.push(foreign);
                    } else {
                        let i = rng.random_range(0..chars.len());
                        chars[i] = foreign;
                    }
                    json!(chars.into_iter().collect::<String>())
                }
                6 => json!(format!("{s}\n")),
                _ => Value::Null,
            };
        }
        Value::Number(n) => {
            let integer = n.is_i64() || n.is_u64();
            *node = match choice % 8 {
                0..=2 => {
                    let v = bounds.number(rng);
                    if integer && v.fract() == 0.0 {
                        json!(v as i64)
                    } else {
                        json!(v)
                    }
                }
                3 if integer => json!(n.as_i64().map_or(i128::MAX, i128::from) + 1),
                3 => json!(n.as_f64().unwrap() + 1.0),
                4 if integer => json!(n.as_i64().map_or(-1, |v| v.saturating_sub(1))),
                4 => json!(n.as_f64().unwrap() - 0.25),
                5 => [
                    json!(u64::MAX),
                    json!(i64::MIN),
                    json!(-1),
                    json!(256),
                    json!(65536),
                ][rng.random_range(0..5)]
                .clone(),
                6 => json!(n.as_f64().unwrap() * 10.0 + 0.5),
                _ => json!(n.to_string()),
            };
        }
        Value::Array(items) => match choice % 5 {
            0 | 1 => {
                let n = bounds.length(rng).min(300);
                if let Some(first) = items.first().cloned() {
                    items.resize(n, first);
                } else {
                    items.clear();
                }
            }
            2 => {
                items.pop();
            }
            3 => {
                if let Some(first) = items.first().cloned() {
                    items.push(first);
                }
            }
            _ => *node = json!({}),
        },
        Value::Object(map) => match choice % 4 {
            0 | 1 if !map.is_empty() => {
                let keys: Vec<String> = map.keys().cloned().collect();
                map.shift_remove(&keys[rng.random_range(0..keys.len())]);
            }
            2 => {
                map.insert("undeclaredKey".into(), json!(1));
            }
            _ => *node = json!([]),
        },
        Value::Null => *node = json!(0),
        Value::Bool(b) => *node = json!(b.to_string()),
    }
    out
}

/// JSON Schema has no arithmetic: a computed sum (`sumOf`) travels in the generated
/// schema as the annotation `x-ipcspec-sumOf`, and this applies it, so the schema side's
/// verdict is the schema's and the sums'. Values the schema rejects for their shape
/// count as holding (the schema's verdict decides them).
fn sums_hold(m: &Module, ty: &Ty, value: &Value) -> bool {
    match ty {
        Ty::Prim(_) => true,
        Ty::List(item) | Ty::Array(item, _) => value
            .as_array()
            .is_none_or(|items| items.iter().all(|v| sums_hold(m, item, v))),
        Ty::Map(item) => value
            .as_object()
            .is_none_or(|map| map.values().all(|v| sums_hold(m, item, v))),
        Ty::Named(id) => match &m.ty(*id).kind {
            TypeKind::Alias(a) => sums_hold(m, &a.ty, value),
            TypeKind::Struct(s) => {
                let Some(object) = value.as_object() else {
                    return true;
                };
                let sums = s.sums.iter().all(|sum| {
                    let found = object.get(&sum.field).and_then(Value::as_i64);
                    let total = object
                        .get(&sum.list)
                        .and_then(Value::as_array)
                        .map(|items| {
                            items
                                .iter()
                                .map(|item| item.get(&sum.item_field).and_then(Value::as_i64))
                                .sum::<Option<i64>>()
                        });
                    match (found, total) {
                        (Some(found), Some(Some(total))) => found == total,
                        _ => true,
                    }
                });
                sums && s
                    .fields
                    .iter()
                    .all(|f| object.get(&f.wire).is_none_or(|v| sums_hold(m, &f.ty, v)))
            }
            TypeKind::Union(u) => {
                let tag = value.get(&u.tag).and_then(Value::as_str);
                u.variants
                    .iter()
                    .filter(|v| Some(v.wire.as_str()) == tag)
                    .all(|v| {
                        let content = match &u.content {
                            Some(key) => value.get(key),
                            None => Some(value),
                        };
                        match (&v.ty, content) {
                            (Some(ty), Some(content)) => sums_hold(m, ty, content),
                            _ => true,
                        }
                    })
            }
            TypeKind::Enum(_) | TypeKind::IntEnum(_) => true,
        },
    }
}

#[derive(Default)]
struct Counts {
    documents: usize,
    accepted: usize,
    rejected: usize,
    /// Decoded, then rejected by `Validate` (not by serde).
    by_constraint: usize,
    disagreements: Vec<String>,
}

fn compare(
    counts: &mut Counts,
    cat: &Catalogue,
    validator: &jsonschema::Validator,
    name: &str,
    what: &str,
    doc: &Value,
) {
    let id = cat
        .module
        .types
        .iter()
        .position(|t| t.name == name)
        .expect("a type of the module");
    let schema_ok = validator.is_valid(doc) && sums_hold(&cat.module, &Ty::Named(TypeId(id)), doc);
    let rust = (cat.validate)(name, doc.clone()).expect("every type is in the registry");
    counts.documents += 1;
    if schema_ok {
        counts.accepted += 1;
    } else {
        counts.rejected += 1;
    }
    if rust
        .as_ref()
        .is_err_and(|e| !e.starts_with("cannot decode"))
    {
        counts.by_constraint += 1;
    }
    // Any disagreement fails, the array form of a struct included: the generated code
    // decodes strictly (`ipcspec_runtime::strict`), structs only from JSON objects.
    if schema_ok != rust.is_ok() {
        let schema_errors: Vec<String> = validator
            .iter_errors(doc)
            .map(|e| format!("{e} at `{}`", e.instance_path()))
            .collect();
        counts.disagreements.push(format!(
            "{}::{name} ({what}): schema {}, Rust {}\n  document: {doc}\n  schema errors: {schema_errors:?}\n  Rust: {rust:?}",
            cat.module.name,
            if schema_ok { "accepts" } else { "rejects" },
            if rust.is_ok() { "accepts" } else { "rejects" },
        ));
    }
}

#[test]
fn rust_validation_agrees_with_the_json_schema() {
    const SEEDS: u64 = 48;
    const MUTANTS: usize = 6;
    let mut counts = Counts::default();
    let mut types = 0;
    for cat in catalogues() {
        let bounds = Bounds::of(&cat.module);
        for (index, td) in cat.module.types.iter().enumerate() {
            types += 1;
            let id = TypeId(index);
            let name = td.name.as_str();
            let validator = def_validator(&cat.schema, name);
            let mut rng = ChaCha8Rng::seed_from_u64(index as u64);
            let mut valid = examples::type_examples(&cat.module, id).unwrap();
            for seed in 0..SEEDS {
                valid.push(
                    examples::ty_example(&cat.module, &Ty::Named(id), &format!("validate:{seed}"))
                        .unwrap(),
                );
            }
            for doc in &valid {
                compare(&mut counts, &cat, &validator, name, "valid example", doc);
                for _ in 0..MUTANTS {
                    let mutant = mutate(doc, &bounds, &mut rng);
                    compare(&mut counts, &cat, &validator, name, "mutant", &mutant);
                }
            }
            for wrong in examples::wrong_values(&cat.module, id).unwrap() {
                compare(
                    &mut counts,
                    &cat,
                    &validator,
                    name,
                    &wrong.what,
                    &wrong.value,
                );
            }
        }
    }
    eprintln!(
        "{types} types, {} documents: {} accepted and {} rejected by the schema ({} by a constraint after decoding), {} disagreements",
        counts.documents,
        counts.accepted,
        counts.rejected,
        counts.by_constraint,
        counts.disagreements.len(),
    );
    assert!(
        counts.disagreements.is_empty(),
        "{} of {} documents get different verdicts:\n{}",
        counts.disagreements.len(),
        counts.documents,
        counts
            .disagreements
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Not vacuous: many documents, and plenty on both sides of the verdict.
    assert!(types > 100, "only {types} types");
    assert!(
        counts.documents > 20_000,
        "only {} documents",
        counts.documents
    );
    assert!(counts.accepted > 5_000, "only {} accepted", counts.accepted);
    assert!(counts.rejected > 5_000, "only {} rejected", counts.rejected);
    assert!(
        counts.by_constraint > 1_000,
        "only {} rejected by a constraint",
        counts.by_constraint
    );
}

/// Errors name the field (with its path) and the rule, with the bound and the value.
#[test]
fn errors_name_the_field_and_the_rule() {
    use ipcspec_generated::migration;
    let cat = catalogue("migration", migration::registries::validate_json);
    let msg = cat.module.message("BACKUP_PROGRESS").unwrap();
    let mut payload = examples::payload(&cat.module, msg).unwrap();
    payload["percentComplete"] = json!(120);
    payload["userId"] = json!("no spaces");
    let error = migration::registries::validate_json("BackupProgressPayload", payload)
        .unwrap()
        .unwrap_err();
    assert!(
        error.contains("`percentComplete`: 120 is greater than the maximum 100"),
        "{error}"
    );
    assert!(
        error.contains("`userId`: does not match the pattern `^[A-Za-z0-9_][A-Za-z0-9._-]*$`"),
        "{error}"
    );

    // Through an alias, inside a nested struct, inside a list.
    let settings = json!({ "excludePatterns": vec!["x"; 257], "progressReportInterval": 999 });
    let error = migration::registries::validate_json("AgentSettings", settings)
        .unwrap()
        .unwrap_err();
    assert!(
        error.contains("`progressReportInterval`: 999 is less than the minimum 1000"),
        "{error}"
    );
    assert!(
        error.contains("`excludePatterns`: 257 items are more than the maximum 256"),
        "{error}"
    );

    // An alias's constraints apply to each element of a list of it.
    use ipcspec_generated::direct_ipc;
    let cat = catalogue("direct-ipc", direct_ipc::registries::validate_json);
    let id = cat
        .module
        .types
        .iter()
        .position(|t| t.name == "UtilityProcessRegistration")
        .unwrap();
    let mut registration = examples::type_example(&cat.module, TypeId(id)).unwrap();
    registration["ports"] = json!(["a", "", "b"]);
    let error = direct_ipc::registries::validate_json("UtilityProcessRegistration", registration)
        .unwrap()
        .unwrap_err();
    assert_eq!(
        error,
        "`ports[1]`: 0 characters is shorter than the minimum length 1"
    );

    // A value that does not decode is rejected too, with serde's reason.
    let error = migration::registries::validate_json(
        "AgentSettings",
        json!({ "progressReportInterval": "x" }),
    )
    .unwrap()
    .unwrap_err();
    assert!(error.starts_with("cannot decode"), "{error}");
}

/// The rules across fields (`exactlyOneOf`, `sumOf`): the generated example obeys them,
/// and a document breaking one is refused by the Rust validation, and by the JSON Schema
/// where JSON Schema can say it (a sum travels as the annotation `x-ipcspec-sumOf`).
#[test]
fn rules_across_fields_are_kept_and_enforced() {
    use ipcspec_generated::{direct_ipc, vexfs};
    let direct = catalogue("direct-ipc", direct_ipc::registries::validate_json);
    let id = TypeId(
        direct
            .module
            .types
            .iter()
            .position(|t| t.name == "InvokeResponse")
            .unwrap(),
    );
    let validator = def_validator(&direct.schema, "InvokeResponse");
    let examples = examples::type_examples(&direct.module, id).unwrap();
    let present = |doc: &Value| {
        ["result", "error"]
            .iter()
            .filter(|k| doc.get(**k).is_some())
            .count()
    };
    assert!(
        examples.iter().any(|d| d.get("result").is_some())
            && examples.iter().any(|d| d.get("error").is_some()),
        "an example of each alternative: {examples:?}"
    );
    for doc in &examples {
        assert_eq!(present(doc), 1, "{doc}");
        assert!(validator.is_valid(doc), "{doc}");
        assert_eq!(
            direct_ipc::registries::validate_json("InvokeResponse", doc.clone()),
            Some(Ok(()))
        );
    }
    let mut both = examples[0].clone();
    both["error"] = json!({ "code": "NO_HANDLER", "message": "no handler" });
    both["result"] = json!(1);
    let mut neither = examples[0].clone();
    neither.as_object_mut().unwrap().shift_remove("result");
    neither.as_object_mut().unwrap().shift_remove("error");
    for doc in [both, neither] {
        assert!(!validator.is_valid(&doc), "the schema refuses {doc}");
        let rust = direct_ipc::registries::validate_json("InvokeResponse", doc.clone()).unwrap();
        assert!(
            rust.as_ref()
                .is_err_and(|e| e.contains("exactly one must be")),
            "Rust refuses {doc}: {rust:?}"
        );
    }

    let vexfs_cat = catalogue("vexfs", vexfs::registries::validate_json);
    let id = TypeId(
        vexfs_cat
            .module
            .types
            .iter()
            .position(|t| t.name == "BatchEmbeddingRequest")
            .unwrap(),
    );
    let schema = &vexfs_cat.schema["$defs"]["BatchEmbeddingRequest"]["properties"]["data_size"];
    assert_eq!(
        schema["x-ipcspec-sumOf"],
        json!({ "list": "items", "field": "input_size" })
    );
    for doc in examples::type_examples(&vexfs_cat.module, id).unwrap() {
        let sum: u64 = doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["input_size"].as_u64().unwrap())
            .sum();
        assert_eq!(doc["data_size"].as_u64(), Some(sum), "{doc}");
        assert!(sums_hold(&vexfs_cat.module, &Ty::Named(id), &doc));
        assert_eq!(
            vexfs::registries::validate_json("BatchEmbeddingRequest", doc.clone()),
            Some(Ok(()))
        );
        let mut broken = doc.clone();
        broken["items"][0]["input_size"] =
            json!(doc["items"][0]["input_size"].as_u64().unwrap() + 1);
        assert!(!sums_hold(&vexfs_cat.module, &Ty::Named(id), &broken));
        let rust =
            vexfs::registries::validate_json("BatchEmbeddingRequest", broken.clone()).unwrap();
        assert!(
            rust.as_ref()
                .is_err_and(|e| e.contains("is not the sum of `input_size` over `items`")),
            "Rust refuses {broken}: {rust:?}"
        );
    }
}
