#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

//! The JSON Schema and documentation emitters against the catalogues in `specs/` and the
//! two fixtures: schemas are valid draft 2020-12, every example accepted, every wrong
//! value rejected, anchors unique and complete.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ipcspec_codegen::emit::{docs, examples, jsonschema as js};
use ipcspec_codegen::ir::{self, Module};
use ipcspec_codegen::output::Target;
use ipcspec_codegen::{check, generate};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn catalogue_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("specs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().is_some_and(|n| n != "catalogue.schema.json")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 4, "the four seed catalogues are in specs/");
    files.push(root().join("codegen/tests/fixtures/everything.json"));
    files.push(root().join("codegen/tests/fixtures/binwire.json"));
    files
}

/// One catalogue: its IR, its generated schema and doc page.
struct Case {
    module: Module,
    schema: Value,
    doc: String,
}

fn cases() -> Vec<Case> {
    let report = check(&catalogue_files());
    assert!(
        report.ok(),
        "{}",
        report.render(ipcspec_codegen::Format::Short, false)
    );
    let files = generate(&report.loaded, &[Target::JsonSchema, Target::Docs]).unwrap();
    let by_path: BTreeMap<(Target, String), String> = files
        .into_iter()
        .map(|f| ((f.target, f.path), f.contents))
        .collect();
    report
        .loaded
        .iter()
        .map(|l| {
            let mut module = ir::lower(l.valid().unwrap()).unwrap();
            module.source = l
                .source
                .path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let schema_text = &by_path[&(Target::JsonSchema, js::file_name(&module))];
            assert!(
                schema_text.ends_with("}\n"),
                "{}: trailing newline",
                module.name
            );
            let schema = serde_json::from_str(schema_text).unwrap();
            let doc = by_path[&(Target::Docs, docs::file_name(&module))].clone();
            Case {
                module,
                schema,
                doc,
            }
        })
        .collect()
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap()
}

/// A validator for `$defs/<name>` of the module's schema.
fn def_validator(schema: &Value, name: &str) -> jsonschema::Validator {
    let mut doc = schema.as_object().unwrap().clone();
    for key in [
        "allOf",
        "properties",
        "required",
        "type",
        "title",
        "description",
    ] {
        doc.shift_remove(key);
    }
    doc.insert("$ref".into(), json!(js::def_ref(name)));
    validator(&Value::Object(doc))
}

fn errors(v: &jsonschema::Validator, value: &Value) -> String {
    v.iter_errors(value)
        .map(|e| format!("  at {}: {e}", e.instance_path()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn json_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line == "```json" => current = Some(String::new()),
            None => {}
            Some(_) if line == "```" => blocks.push(current.take().unwrap()),
            Some(text) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    assert!(current.is_none(), "unterminated code block");
    blocks
}

fn anchors(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = markdown;
    while let Some(i) = rest.find("<a id=\"") {
        rest = &rest[i + 7..];
        let end = rest.find('"').unwrap();
        out.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    out
}

fn links(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = markdown;
    while let Some(i) = rest.find("](#") {
        rest = &rest[i + 3..];
        let end = rest.find(')').unwrap();
        out.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    out
}

#[test]
fn schemas_are_valid_draft_2020_12() {
    for case in cases() {
        let s = &case.schema;
        if let Err(error) = jsonschema::meta::validate(s) {
            panic!("{}: not a valid schema: {error}", case.module.name);
        }
        assert_eq!(s["$schema"], json!(js::DIALECT));
        assert_eq!(s["$id"], json!(js::schema_id(&case.module)));
        assert_eq!(
            s["$comment"],
            json!(ipcspec_codegen::emit::banner(&case.module))
        );
        let defs = s["$defs"].as_object().unwrap();
        for td in &case.module.types {
            assert!(
                defs.contains_key(&td.name),
                "{}: no $defs/{}",
                case.module.name,
                td.name
            );
        }
        for msg in &case.module.messages {
            assert!(defs.contains_key(&js::payload_def(msg)));
            assert!(defs.contains_key(&js::envelope_def(msg)));
        }
        validator(s);
    }
}

#[test]
fn every_doc_example_validates() {
    for case in cases() {
        let v = validator(&case.schema);
        let blocks = json_blocks(&case.doc);
        assert_eq!(
            blocks.len(),
            case.module.messages.len(),
            "{}: one example per message",
            case.module.name
        );
        for block in blocks {
            let value: Value = serde_json::from_str(&block).unwrap();
            assert!(
                v.is_valid(&value),
                "{}: example rejected:\n{block}\n{}",
                case.module.name,
                errors(&v, &value)
            );
        }
    }
}

#[test]
fn every_type_example_validates() {
    for case in cases() {
        let m = &case.module;
        for (i, td) in m.types.iter().enumerate() {
            let v = def_validator(&case.schema, &td.name);
            for example in examples::type_examples(m, ir::TypeId(i)).unwrap() {
                assert!(
                    v.is_valid(&example),
                    "{}: example of `{}` rejected: {example}\n{}",
                    m.name,
                    td.name,
                    errors(&v, &example)
                );
            }
        }
        for msg in &m.messages {
            let payload = examples::payload(m, msg).unwrap();
            let v = def_validator(&case.schema, &js::payload_def(msg));
            assert!(
                v.is_valid(&payload),
                "{}: payload of {} rejected: {payload}\n{}",
                m.name,
                msg.name,
                errors(&v, &payload)
            );
            let envelope = examples::envelope(m, msg).unwrap();
            let v = def_validator(&case.schema, &js::envelope_def(msg));
            assert!(
                v.is_valid(&envelope),
                "{}: envelope of {} rejected\n{}",
                m.name,
                msg.name,
                errors(&v, &envelope)
            );
        }
    }
}

#[test]
fn every_wrong_value_is_rejected() {
    let mut total = 0;
    for case in cases() {
        let m = &case.module;
        for (i, td) in m.types.iter().enumerate() {
            let v = def_validator(&case.schema, &td.name);
            let wrongs = examples::wrong_values(m, ir::TypeId(i)).unwrap();
            assert!(
                !wrongs.is_empty()
                    || matches!(&td.kind, ir::TypeKind::Alias(a) if a.ty == ir::Ty::Prim(ir::PrimitiveType::Json)),
                "{}: no wrong values for `{}`",
                m.name,
                td.name
            );
            for wrong in wrongs {
                total += 1;
                assert!(
                    !v.is_valid(&wrong.value),
                    "{}: `{}` accepted a wrong value ({}): {}",
                    m.name,
                    td.name,
                    wrong.what,
                    wrong.value
                );
            }
        }
    }
    assert!(total > 300, "only {total} wrong values");
}

#[test]
fn envelopes_are_checked_by_message_type() {
    for case in cases() {
        let m = &case.module;
        let v = validator(&case.schema);
        let binary = examples::is_binary(m);
        let env = &m.wire.envelope;
        for msg in &m.messages {
            let good = examples::envelope(m, msg).unwrap();
            assert!(v.is_valid(&good));
            let mut wrongs: Vec<(String, Value)> = Vec::new();
            let mut with = |what: &str, f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
                let mut value = good.clone();
                f(value.as_object_mut().unwrap());
                wrongs.push((what.to_owned(), value));
            };
            if binary {
                with("unknown code", &|o| {
                    o["header"][env.type_key.as_str()] = json!(999_999);
                });
                if let Some((field, _)) = &env.magic {
                    with("wrong magic", &|o| o["header"][field.as_str()] = json!(0));
                }
                with("no header", &|o| {
                    o.shift_remove("header");
                });
                with("no payload", &|o| {
                    o.shift_remove("payload");
                });
            } else {
                with("unknown type", &|o| {
                    o.insert(env.type_key.clone(), json!("NO_SUCH_MESSAGE"));
                });
                with("no type", &|o| {
                    o.shift_remove(&env.type_key);
                });
                let payload_key = env.payload.clone().unwrap();
                with("no payload", &|o| {
                    o.shift_remove(&payload_key);
                });
                if let Some(ty) = &msg.payload {
                    if *ty != ir::Ty::Prim(ir::PrimitiveType::Json) {
                        with("null payload", &|o| {
                            o.insert(payload_key.clone(), Value::Null);
                        });
                    }
                } else if m.wire.unknown_keys == ir::UnknownKeys::Reject {
                    with("a payload for a message without", &|o| {
                        o.insert(payload_key.clone(), json!({ "x": 1 }));
                    });
                }
                if let Some((id, _)) = env.id.as_ref().filter(|_| !env.id_optional) {
                    with("no id", &|o| {
                        o.shift_remove(id);
                    });
                }
                if let Some(ts) = env.timestamp.as_ref() {
                    with("bad timestamp", &|o| {
                        o.insert(ts.clone(), json!("yesterday"));
                    });
                    if !env.timestamp_optional {
                        with("no timestamp", &|o| {
                            o.shift_remove(ts);
                        });
                    }
                }
                if let Some(corr) = &env.correlation_id {
                    if msg.is_reply && !env.correlation_optional {
                        with("reply without correlation id", &|o| {
                            o.shift_remove(corr);
                        });
                    }
                    if !msg.is_reply && m.wire.unknown_keys == ir::UnknownKeys::Reject {
                        with("correlation id on a non-reply", &|o| {
                            o.insert(corr.clone(), json!("x"));
                        });
                    }
                }
                if m.wire.unknown_keys == ir::UnknownKeys::Reject {
                    with("undeclared envelope key", &|o| {
                        o.insert("undeclared".into(), json!(1));
                    });
                }
            }
            for (what, value) in wrongs {
                assert!(
                    !v.is_valid(&value),
                    "{}: {} accepted with {what}: {value}",
                    m.name,
                    msg.name
                );
            }
        }
    }
}

#[test]
fn wire_mapping_details() {
    let case = cases()
        .into_iter()
        .find(|c| c.module.name == "everything")
        .unwrap();
    let s = &case.schema;
    let ping = def_validator(s, "Ping");
    assert!(ping.is_valid(&json!({ "seq": "18446744073709551615" })));
    assert!(!ping.is_valid(&json!({ "seq": 5 })), "int64Encoding string");
    assert!(!ping.is_valid(&json!({ "seq": "-5" })), "u64 has no sign");
    let containers = def_validator(s, "Containers");
    let mut value =
        examples::type_example(&case.module, type_id(&case.module, "Containers")).unwrap();
    value["nested"] = json!([{ "a": ["1", "-2"] }]);
    assert!(
        containers.is_valid(&value),
        "{}",
        errors(&containers, &value)
    );
    value["nested"] = json!([{ "a": [1] }]);
    assert!(
        !containers.is_valid(&value),
        "i64 strings inside list/map/list"
    );
    let shape = def_validator(s, "Shape");
    assert!(shape.is_valid(&json!({ "kind": "circle", "radius": 1.5 })));
    assert!(shape.is_valid(&json!({ "kind": "point" })));
    assert!(
        !shape.is_valid(&json!({ "kind": "circle", "radius": 1.5, "side": 2 })),
        "internal variants are closed"
    );
    assert!(!shape.is_valid(&json!({ "kind": "point", "radius": 1.5 })));
    let value = def_validator(s, "Value");
    assert!(
        value
            .is_valid(&json!({ "t": "Many", "c": [{ "t": "Int", "c": "7" }, { "t": "Nothing" }] }))
    );
    assert!(
        !value.is_valid(&json!({ "t": "Int", "c": 7 })),
        "int64 string inside adjacent content"
    );
    assert!(!value.is_valid(&json!({ "t": "Nothing", "c": null })));
    let scalars = def_validator(s, "Scalars");
    let mut good = examples::type_example(&case.module, type_id(&case.module, "Scalars")).unwrap();
    assert!(scalars.is_valid(&good));
    for (key, bad) in [
        ("when", json!("2025-01-15T10:00:00.1234567890Z")),
        ("ident", json!("0000")),
        ("blob", json!("abc")),
        ("wait", json!(-1)),
        ("handle", json!(4_294_967_296_u64)),
        ("tiny", json!(128)),
    ] {
        let keep = good[key].clone();
        good[key] = bad.clone();
        assert!(!scalars.is_valid(&good), "{key} = {bad}");
        good[key] = keep;
    }
    for when in [
        "2025-01-15t10:00:00z",
        "2025-01-15T10:00:00.5-11:30",
        "2016-12-31T23:59:60Z",
    ] {
        good["when"] = json!(when);
        assert!(
            scalars.is_valid(&good),
            "{when}: {}",
            errors(&scalars, &good)
        );
    }
    good["when"] = json!("2025-01-15T10:00:00.123456789+02:00");
    good["ident"] = json!("6BA7B810-9DAD-11D1-80B4-00C04FD430C8");
    good["anything"] = json!([null, { "x": 1 }]);
    assert!(scalars.is_valid(&good), "{}", errors(&scalars, &good));
}

fn type_id(m: &Module, name: &str) -> ir::TypeId {
    ir::TypeId(m.types.iter().position(|t| t.name == name).unwrap())
}

#[test]
fn anchors_are_unique_and_complete() {
    for case in cases() {
        let m = &case.module;
        let found = anchors(&case.doc);
        let unique: BTreeSet<&String> = found.iter().collect();
        assert_eq!(unique.len(), found.len(), "{}: duplicate anchors", m.name);
        let expected = m
            .types
            .iter()
            .map(|t| &t.anchor)
            .chain(m.messages.iter().map(|x| &x.anchor))
            .chain(m.machines.iter().map(|x| &x.anchor));
        for a in expected {
            assert!(unique.contains(a), "{}: anchor {a} missing", m.name);
        }
        for a in docs::WIRE_ANCHORS {
            assert!(
                unique.contains(&a.to_owned()),
                "{}: anchor {a} missing",
                m.name
            );
        }
        for msg in m
            .messages
            .iter()
            .filter(|x| x.reply.is_some() || x.acknowledged)
        {
            assert!(
                unique.contains(&docs::sequence_anchor(msg)),
                "{}: no sequence for {}",
                m.name,
                msg.name
            );
        }
        for link in links(&case.doc) {
            assert!(
                unique.contains(&link),
                "{}: link to missing anchor #{link}",
                m.name
            );
        }
        assert!(case.doc.contains("```mermaid\nstateDiagram-v2") || m.machines.is_empty());
    }
}

#[test]
fn output_is_deterministic() {
    let report = check(&catalogue_files());
    let first = generate(&report.loaded, &[Target::JsonSchema, Target::Docs]).unwrap();
    let second = generate(&report.loaded, &[Target::JsonSchema, Target::Docs]).unwrap();
    assert_eq!(first, second);
}

#[test]
fn cli_writes_schema_and_docs() {
    let dir = std::env::temp_dir().join(format!("ipcspec-jsonschema-{}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ipcspec"))
        .args(["generate", "--jsonschema"])
        .arg(dir.join("js"))
        .arg("--docs")
        .arg(dir.join("docs"))
        .arg(root().join("codegen/tests/fixtures/everything.json"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("js/everything.schema.json")).unwrap(),
    )
    .unwrap();
    assert!(jsonschema::meta::is_valid(&schema));
    let doc = std::fs::read_to_string(dir.join("docs/everything.md")).unwrap();
    assert!(doc.contains("<a id=\"msg-put-scalars\"></a>"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn binary_examples_have_consistent_counts_and_length() {
    let case = cases()
        .into_iter()
        .find(|c| c.module.name == "binwire")
        .unwrap();
    let query = case.module.message("QUERY").unwrap();
    let example = examples::envelope(&case.module, query).unwrap();
    let p = &example["payload"];
    assert_eq!(
        p["name_len"].as_u64().unwrap(),
        p["name"].as_str().unwrap().len() as u64
    );
    assert_eq!(
        p["pairs_count"].as_u64().unwrap(),
        p["pairs"].as_array().unwrap().len() as u64
    );
    let blob = p["blob"].as_str().unwrap();
    let blob_len =
        blob.len() as u64 / 4 * 3 - blob.bytes().rev().take_while(|b| *b == b'=').count() as u64;
    assert_eq!(p["blob_len"].as_u64().unwrap(), blob_len);
    // lengthCounts headerAndPayload: 40-byte header, 48-byte fixed part, 8-byte pairs.
    let expected = 40
        + 48
        + p["name_len"].as_u64().unwrap()
        + 8 * p["pairs_count"].as_u64().unwrap()
        + blob_len;
    assert_eq!(example["header"]["length"].as_u64().unwrap(), expected);
    assert_eq!(example["header"]["kind"], json!(1));
    assert_eq!(example["header"]["magic"], json!(0x4257_0001));
}
