//! The static conformance vectors (`conformance/vectors/*.json`) against everything that
//! must agree with them:
//!
//! - their format: the JSON Schema `conformance/schema/vectors.schema.json`; ids unique,
//!   well-formed and never retired; every cited anchor present in the generated docs;
//! - freshness: the files are what the generator produces from `specs/` now;
//! - coverage: every message has valid and invalid vectors, every catalogue the cases of
//!   its wire profile;
//! - the real receive path: every frame goes through the runtime codec of its catalogue
//!   (`LengthPrefixedCodec`, `NewlineCodec`, `BinaryHeaderCodec` with the catalogue's
//!   limits), the body through the generated envelope, message table, binary decoders and
//!   `validate_json` registry; the verdict and the error class must be the vector's, and a
//!   valid frame must decode to the vector's `body`;
//! - the generated JSON Schemas, with the Rust `jsonschema` crate: valid bodies accepted,
//!   `unknownType` and `schema` bodies rejected;
//! - a second validator from another ecosystem: Python's `jsonschema` (pinned in
//!   `tools/python/requirements.txt`, run in `tools/python/.venv`) must reach the same
//!   verdict as the Rust crate on every body.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::BytesMut;
use ipcspec_codegen::emit::vectors::{self, ErrorClass};
use ipcspec_codegen::ir::{self, Framing, Module, Ty, TypeKind, UnknownKeys};
use ipcspec_generated::{direct_ipc, migration, vexfs, xstatenet};
use ipcspec_runtime::binary::{Binary, DecodeError, DecodeErrorKind};
use ipcspec_runtime::codec::{
    BinaryHeaderCodec, BinaryHeaderError, LengthPrefixedCodec, LengthPrefixedError, NewlineCodec,
    NewlineError,
};
use ipcspec_runtime::profile::WireProfile;
use ipcspec_runtime::{MessageInfo, dispatch};
use serde_json::{Value, json};
use tokio_util::codec::{Decoder, Encoder};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

type ValidateJson = fn(&str, Value) -> Option<Result<(), String>>;
type EnvelopeCheck = fn(Value) -> Result<(), String>;

/// One catalogue: its IR, its vectors file, and the generated code that receives it.
struct Catalogue {
    module: Module,
    file: Value,
    schema: Value,
    doc: String,
    messages: &'static [MessageInfo],
    validate: ValidateJson,
    envelope: Option<EnvelopeCheck>,
}

/// Strict decoding of a generated envelope, as a receiver does it first.
fn envelope_of<E: serde::de::DeserializeOwned>(value: Value) -> Result<(), String> {
    ipcspec_runtime::strict::from_value::<E>(value)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn spec_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("specs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().is_some_and(|n| n != "catalogue.schema.json")
        })
        .collect();
    files.sort();
    files
}

fn modules() -> Vec<Module> {
    let mut modules: Vec<Module> = spec_files()
        .iter()
        .map(|path| {
            let loaded = ipcspec_schema::load_file(path);
            let mut module = ir::lower(loaded.valid().unwrap()).unwrap();
            module.source = path.file_name().unwrap().to_string_lossy().into_owned();
            module
        })
        .collect();
    modules.sort_by(|a, b| a.name.cmp(&b.name));
    modules
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The generated wire profile of a catalogue: the runtime's codecs are built from it.
fn wire_of(m: &Module) -> &'static WireProfile {
    match m.name.as_str() {
        "migration" => &migration::WIRE,
        "direct-ipc" => &direct_ipc::WIRE,
        "xstatenet" => &xstatenet::WIRE,
        "vexfs" => &vexfs::WIRE,
        other => {
            panic!("catalogue `{other}` has no generated WIRE wired into codegen/tests/vectors.rs")
        }
    }
}

fn catalogues() -> Vec<Catalogue> {
    let out: Vec<Catalogue> = modules()
        .into_iter()
        .map(|module| {
            let (messages, validate, envelope): (_, ValidateJson, Option<EnvelopeCheck>) =
                match module.name.as_str() {
                    "migration" => (
                        migration::MESSAGES,
                        migration::registries::validate_json,
                        Some(envelope_of::<migration::Envelope<Value>>),
                    ),
                    "direct-ipc" => (
                        direct_ipc::MESSAGES,
                        direct_ipc::registries::validate_json,
                        Some(envelope_of::<direct_ipc::Envelope<Value>>),
                    ),
                    "xstatenet" => (
                        xstatenet::MESSAGES,
                        xstatenet::registries::validate_json,
                        Some(envelope_of::<xstatenet::Envelope<Value>>),
                    ),
                    "vexfs" => (vexfs::MESSAGES, vexfs::registries::validate_json, None),
                    other => panic!(
                        "catalogue `{other}` has no generated module wired into codegen/tests/vectors.rs"
                    ),
                };
            let r = root();
            Catalogue {
                file: read_json(&r.join(vectors::VECTORS_DIR).join(vectors::file_name(&module))),
                schema: read_json(
                    &r.join("generated/jsonschema")
                        .join(format!("{}.schema.json", module.name)),
                ),
                doc: std::fs::read_to_string(
                    r.join("generated/docs").join(format!("{}.md", module.name)),
                )
                .unwrap(),
                module,
                messages,
                validate,
                envelope,
            }
        })
        .collect();
    assert_eq!(out.len(), 4, "the four seed catalogues");
    out
}

fn list(file: &Value) -> &Vec<Value> {
    file["vectors"].as_array().unwrap()
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex `{text}`");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The frame's bytes, from `frame` or `frameSegments`.
fn frame_bytes(v: &Value) -> Vec<u8> {
    if let Some(text) = v["frame"].as_str() {
        return unhex(text);
    }
    let mut out = Vec::new();
    for segment in v["frameSegments"].as_array().unwrap() {
        if let Some(text) = segment["hex"].as_str() {
            out.extend(unhex(text));
        } else {
            let byte = unhex(segment["fill"].as_str().unwrap())[0];
            let count = usize::try_from(segment["count"].as_u64().unwrap()).unwrap();
            out.extend(std::iter::repeat_n(byte, count));
        }
    }
    out
}

fn expected(v: &Value) -> Option<ErrorClass> {
    if v["valid"].as_bool().unwrap() {
        None
    } else {
        Some(ErrorClass::from_name(v["error"].as_str().unwrap()).unwrap())
    }
}

// ---------------------------------------------------------------------------------------
// Format, ids, anchors, freshness

#[test]
fn vectors_files_follow_their_schema() {
    let schema = read_json(&root().join(vectors::SCHEMA_PATH));
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    for cat in catalogues() {
        let errors: Vec<String> = validator
            .iter_errors(&cat.file)
            .take(20)
            .map(|e| format!("  at {}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not follow {}:\n{}",
            cat.module.name,
            vectors::SCHEMA_PATH,
            errors.join("\n")
        );
        // The header says what the catalogue says.
        let m = &cat.module;
        assert_eq!(cat.file["catalogue"], json!(m.name));
        assert_eq!(cat.file["catalogueVersion"], json!(m.version));
        assert_eq!(cat.file["maxMessageBytes"], json!(m.wire.max_message_bytes));
        let framing = match m.wire.framing {
            Framing::LengthPrefixed { .. } => "lengthPrefixed",
            Framing::NewlineDelimited => "newlineDelimited",
            Framing::BinaryHeader { .. } => "binaryHeader",
        };
        assert_eq!(cat.file["framing"], json!(framing));
        // The relative paths resolve.
        let dir = root().join(vectors::VECTORS_DIR);
        for key in ["jsonSchema", "docs"] {
            let path = dir.join(cat.file[key].as_str().unwrap());
            assert!(path.is_file(), "{}: {key} {}", m.name, path.display());
        }
    }
}

#[test]
fn checked_in_vectors_and_schema_are_fresh() {
    let r = root();
    let retired =
        vectors::parse_retired(&std::fs::read_to_string(r.join(vectors::RETIRED_PATH)).unwrap());
    let modules = modules();
    let mut files = vectors::emit(&modules).unwrap();
    vectors::refuse_retired(&files, &retired).unwrap();
    assert_eq!(
        files,
        vectors::emit(&modules).unwrap(),
        "generation is deterministic"
    );
    files.push(vectors::schema_file());
    let stale: Vec<String> = files
        .iter()
        .map(|f| (format!("{}/{}", f.target.repository_dir(), f.path), f))
        .filter(|(path, f)| {
            std::fs::read_to_string(r.join(path)).ok().as_deref() != Some(f.contents.as_str())
        })
        .map(|(path, _)| path)
        .collect();
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; run `cargo xtask codegen` and commit the result"
    );
}

#[test]
fn ids_are_unique_well_formed_and_never_retired() {
    let retired = vectors::parse_retired(
        &std::fs::read_to_string(root().join(vectors::RETIRED_PATH)).unwrap(),
    );
    let mut seen = BTreeSet::new();
    for cat in catalogues() {
        let m = &cat.module;
        for v in list(&cat.file) {
            let id = id(v);
            assert!(seen.insert(id.to_owned()), "duplicate id {id}");
            assert!(
                !retired.contains(id),
                "{id} is retired and must not be reused"
            );
            let parts: Vec<&str> = id.split('/').collect();
            assert_eq!(parts.len(), 4, "{id}");
            assert_eq!(parts[0], m.name, "{id}: the catalogue comes first");
            assert!(
                parts[1] == "envelope" || parts[1] == "frame" || m.message(parts[1]).is_some(),
                "{id}: the scope is a message, `envelope` or `frame`"
            );
            let valid = v["valid"].as_bool().unwrap();
            assert_eq!(parts[2], if valid { "valid" } else { "invalid" }, "{id}");
            if let Some(msg) = v["message"].as_str() {
                assert!(m.message(msg).is_some(), "{id}: no message {msg}");
            }
            if m.message(parts[1]).is_some() {
                assert_eq!(v["message"].as_str(), Some(parts[1]), "{id}");
            }
        }
    }
    assert!(seen.len() > 500, "only {} vectors", seen.len());
}

#[test]
fn cited_anchors_exist_in_the_generated_docs() {
    for cat in catalogues() {
        let page = format!("{}.md", cat.module.name);
        let anchors: BTreeSet<&str> = cat
            .doc
            .split("<a id=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect();
        for v in list(&cat.file) {
            let cites = v["cites"].as_array().unwrap();
            assert!(!cites.is_empty(), "{}: cites nothing", id(v));
            for cite in cites {
                let (file, anchor) = cite.as_str().unwrap().split_once('#').unwrap();
                assert_eq!(file, page, "{}: cites another page", id(v));
                assert!(
                    anchors.contains(anchor),
                    "{}: `{anchor}` is no anchor of {page}",
                    id(v)
                );
            }
        }
    }
}

#[test]
fn every_message_and_every_wire_rule_is_covered() {
    let mut classes = BTreeSet::new();
    for cat in catalogues() {
        let m = &cat.module;
        let vs = list(&cat.file);
        let ids: BTreeSet<&str> = vs.iter().map(id).collect();
        let has = |suffix: &str| {
            let full = format!("{}/{suffix}", m.name);
            assert!(ids.contains(full.as_str()), "{} lacks {full}", m.name);
        };
        for msg in &m.messages {
            let of = |valid: bool| {
                vs.iter()
                    .filter(|v| v["message"] == json!(msg.name) && v["valid"] == json!(valid))
                    .count()
            };
            assert!(of(true) >= 1, "{}: no valid vector", msg.name);
            assert!(of(false) >= 1, "{}: no invalid vector", msg.name);
            has(&format!("{}/valid/example", msg.name));
            let json_wire = m.wire.encoding == ir::Encoding::Json;
            let Some(Ty::Named(tid)) = &msg.payload else {
                continue;
            };
            let TypeKind::Struct(s) = &m.ty(*tid).kind else {
                continue;
            };
            if json_wire {
                if let Some(f) = s.fields.iter().find(|f| !f.optional) {
                    has(&format!(
                        "{}/invalid/missing-{}",
                        msg.name,
                        heck::ToKebabCase::to_kebab_case(f.wire.as_str())
                    ));
                }
                assert!(
                    ids.iter()
                        .any(|i| i
                            .starts_with(&format!("{}/{}/invalid/wrong-type-", m.name, msg.name))),
                    "{}: no mistyped field",
                    msg.name
                );
                if m.wire.unknown_keys == UnknownKeys::Reject {
                    has(&format!("{}/invalid/undeclared-key", msg.name));
                }
            }
            let constrained = s.fields.iter().any(|f| !f.constraints.is_empty());
            if constrained {
                let prefix = format!("{}/{}/invalid/", m.name, msg.name);
                assert!(
                    vs.iter().any(|v| id(v).starts_with(&prefix)
                        && v["error"] == json!("schema")
                        && ["above", "below", "longer", "shorter", "match", "items"]
                            .iter()
                            .any(|w| id(v).contains(w))),
                    "{}: no constraint violation",
                    msg.name
                );
            }
        }
        has("envelope/invalid/unknown-message-type");
        match m.wire.framing {
            Framing::LengthPrefixed { .. } => {
                for case in [
                    "frame/invalid/declared-length-over-max",
                    "frame/invalid/body-over-max",
                    "frame/valid/body-at-max",
                    "frame/invalid/truncated-body",
                    "frame/invalid/malformed-json",
                    "frame/invalid/invalid-utf8",
                ] {
                    has(case);
                }
            }
            Framing::NewlineDelimited => {
                for case in [
                    "frame/invalid/line-over-max",
                    "frame/valid/line-at-max",
                    "frame/invalid/unterminated-line",
                    "frame/invalid/malformed-json",
                    "frame/invalid/invalid-utf8",
                ] {
                    has(case);
                }
            }
            Framing::BinaryHeader { .. } => {
                for case in [
                    "frame/invalid/bad-magic",
                    "frame/invalid/bad-version",
                    "frame/invalid/bad-checksum",
                    "frame/invalid/length-below-header",
                    "frame/invalid/truncated-payload",
                    "frame/invalid/declared-length-over-max",
                    "frame/invalid/body-over-max",
                ] {
                    has(case);
                }
            }
        }
        if m.wire.max_nesting_depth.is_some() {
            assert!(
                ids.iter()
                    .any(|i| i.ends_with("/invalid/nesting-over-limit")),
                "{}: no nesting vector",
                m.name
            );
        }
        for v in vs {
            classes.insert(v["error"].as_str().unwrap_or("valid").to_owned());
            assert!(
                ["must", "should"].contains(&v["level"].as_str().unwrap()),
                "{}",
                id(v)
            );
        }
    }
    for class in ErrorClass::ALL {
        assert!(
            classes.contains(class.as_str()),
            "no `{}` vector",
            class.as_str()
        );
    }
}

// ---------------------------------------------------------------------------------------
// The receive path: runtime codecs and generated code

/// Runs a codec over `bytes` followed by the end of the stream; the frames, or the first
/// error.
fn decode_all<D: Decoder>(mut codec: D, bytes: &[u8]) -> Result<Vec<D::Item>, D::Error> {
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = codec.decode(&mut buf)? {
        frames.push(frame);
    }
    while let Some(frame) = codec.decode_eof(&mut buf)? {
        frames.push(frame);
    }
    Ok(frames)
}

fn one<T>(frames: Vec<T>, id: &str) -> T {
    let n = frames.len();
    let mut frames = frames.into_iter();
    match (frames.next(), n) {
        (Some(frame), 1) => frame,
        _ => panic!("{id}: the frame decodes to {n} messages, not one"),
    }
}

/// Nesting depth: scalars 0, a container one more than its deepest element.
fn depth(value: &Value) -> u64 {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// What a receiver built from the runtime and the generated code does with a JSON-wire
/// frame: the decoded message, or the class of the first check it fails.
fn receive_json(cat: &Catalogue, bytes: &[u8], id: &str) -> Result<Value, ErrorClass> {
    let m = &cat.module;
    let limit = match (&m.wire.framing, m.wire.max_line_bytes) {
        (Framing::NewlineDelimited, Some(line)) => line.min(m.wire.max_message_bytes),
        _ => m.wire.max_message_bytes,
    };
    let limit = usize::try_from(limit).unwrap();
    assert_eq!(
        wire_of(m).max_frame_bytes(),
        limit,
        "{id}: the profile's frame limit"
    );
    let body: Vec<u8> = match wire_of(m).framing {
        ipcspec_runtime::codec::Framing::LengthPrefixed(prefix) => {
            let frames = decode_all(LengthPrefixedCodec::new(prefix, limit), bytes).map_err(
                |e| match e {
                    LengthPrefixedError::FrameTooLarge { .. } => ErrorClass::Limit,
                    LengthPrefixedError::Truncated { .. } => ErrorClass::Framing,
                    other => panic!("{id}: {other}"),
                },
            )?;
            one(frames, id).to_vec()
        }
        ipcspec_runtime::codec::Framing::Newline => {
            let frames = decode_all(NewlineCodec::new(limit), bytes).map_err(|e| match e {
                NewlineError::LineTooLong { .. } => ErrorClass::Limit,
                NewlineError::InvalidUtf8 { .. } => ErrorClass::Encoding,
                NewlineError::Truncated { .. } => ErrorClass::Framing,
                other => panic!("{id}: {other}"),
            })?;
            one(frames, id).into_bytes()
        }
        other => panic!("{id}: no runtime codec for {other:?}"),
    };
    let text = std::str::from_utf8(&body).map_err(|_| ErrorClass::Encoding)?;
    // serde_json refuses trailing characters and a second value.
    let value: Value = serde_json::from_str(text).map_err(|_| ErrorClass::Encoding)?;
    // The runtime does not bound nesting (yet): the receiver checks the catalogue's limit
    // on the parsed value, before looking at the envelope.
    if let Some(max) = m.wire.max_nesting_depth {
        if depth(&value) > max {
            return Err(ErrorClass::Limit);
        }
    }
    // The generated envelope, decoded strictly.
    (cat.envelope.unwrap())(value.clone()).map_err(|_| ErrorClass::Schema)?;
    let object = value.as_object().unwrap();
    let env = &m.wire.envelope;
    let name = object[&env.type_key].as_str().unwrap();
    let info = dispatch::find(cat.messages, name).ok_or(ErrorClass::UnknownType)?;
    let msg = m.message(info.name).unwrap();
    let named = |ty: &Ty| match ty {
        Ty::Named(t) => Some(m.ty(*t).name.clone()),
        _ => None,
    };
    // Envelope rules the generated struct cannot express (WIRE-MAPPING.md, "Envelope"):
    // ids satisfy their type's constraints, replies carry the correlation id, other
    // messages do not (an undeclared key where unknown keys are rejected).
    if let Some((key, ty)) = &env.id {
        if let (Some(id_value), Some(type_name)) = (object.get(key), named(ty)) {
            (cat.validate)(&type_name, id_value.clone())
                .unwrap()
                .map_err(|_| ErrorClass::Schema)?;
        }
    }
    if let Some(key) = &env.correlation_id {
        let present = object.get(key);
        if msg.is_reply && present.is_none() && !env.correlation_optional {
            return Err(ErrorClass::Schema);
        }
        if !msg.is_reply && present.is_some() && m.wire.unknown_keys == UnknownKeys::Reject {
            return Err(ErrorClass::Schema);
        }
        let id_type = env.id.as_ref().and_then(|(_, ty)| named(ty));
        if let (Some(value), Some(type_name)) = (present, id_type) {
            (cat.validate)(&type_name, value.clone())
                .unwrap()
                .map_err(|_| ErrorClass::Schema)?;
        }
    }
    let payload = object[env.payload.as_deref().unwrap()].clone();
    match &msg.payload {
        Some(ty) => {
            let type_name = named(ty).expect("payloads of the seed catalogues are named types");
            (cat.validate)(&type_name, payload)
                .unwrap_or_else(|| panic!("{id}: `{type_name}` is not in validate_json"))
                .map_err(|_| ErrorClass::Schema)?;
        }
        None => {
            let raw = serde_json::value::RawValue::from_string(payload.to_string()).unwrap();
            dispatch::decode_empty_json(
                info.name,
                &raw,
                m.wire.unknown_keys == UnknownKeys::Reject,
            )
            .map_err(|_| ErrorClass::Schema)?;
        }
    }
    Ok(value)
}

/// The generated VexFS types a payload or header decodes into, by catalogue name.
macro_rules! vexfs_types {
    ($($t:ident),* $(,)?) => {
        fn vexfs_decode(type_name: &str, bytes: &[u8]) -> Option<Result<Value, DecodeError>> {
            Some(match type_name {
                $(stringify!($t) => <vexfs::$t as Binary>::from_bytes(bytes)
                    .map(|v| serde_json::to_value(v).unwrap()),)*
                _ => return None,
            })
        }
    };
}

vexfs_types!(
    MessageHeader,
    ServiceInfo,
    ServiceRegisterResult,
    ServiceUnregister,
    ServiceLoad,
    DiscoveryAnnouncement,
    EmbeddingRequest,
    EmbeddingResponse,
    BatchEmbeddingRequest,
    BatchEmbeddingResponse,
    HealthCheckResult,
    ServiceStatusReport,
    ErrorInfo,
    AckInfo,
);

/// Bytes that do not form a value of the type are `encoding`; a value that breaks a rule
/// of the catalogue (enum member, padding, range) is `schema`.
fn decode_error_class(error: &DecodeError) -> ErrorClass {
    match error.kind() {
        DecodeErrorKind::UnknownEnumValue { .. }
        | DecodeErrorKind::NonZeroPadding
        | DecodeErrorKind::OutOfRange(_) => ErrorClass::Schema,
        _ => ErrorClass::Encoding,
    }
}

fn binary_codec(m: &Module) -> BinaryHeaderCodec {
    let wire = wire_of(m);
    let ipcspec_runtime::codec::Framing::BinaryHeader(layout) = wire.framing else {
        panic!("{}: not a binary framing", m.name);
    };
    BinaryHeaderCodec::new(*layout, wire.limits.max_message_bytes)
}

/// What a receiver built from the runtime and the generated code does with a binary
/// frame.
fn receive_binary(cat: &Catalogue, bytes: &[u8], id: &str) -> Result<Value, ErrorClass> {
    let m = &cat.module;
    let frames = decode_all(binary_codec(m), bytes).map_err(|e| match e {
        BinaryHeaderError::BadMagic { .. }
        | BinaryHeaderError::UnsupportedVersion { .. }
        | BinaryHeaderError::LengthTooSmall { .. }
        | BinaryHeaderError::Truncated { .. } => ErrorClass::Framing,
        BinaryHeaderError::MessageTooLarge { .. } => ErrorClass::Limit,
        BinaryHeaderError::ChecksumMismatch { .. } => ErrorClass::Checksum,
        other => panic!("{id}: {other}"),
    })?;
    let frame = one(frames, id);
    let header_type = match &m.wire.framing {
        Framing::BinaryHeader { header, .. } => m.ty(*header).name.clone(),
        _ => unreachable!(),
    };
    let header = vexfs_decode(&header_type, &frame.header)
        .unwrap()
        .unwrap_or_else(|e| panic!("{id}: header: {e}"));
    let layout = vexfs::HEADER_LAYOUT;
    let code = u32::try_from(layout.read(layout.message_type, &frame.header))
        .map_err(|_| ErrorClass::UnknownType)?;
    let info = dispatch::find_code(cat.messages, code).ok_or(ErrorClass::UnknownType)?;
    let msg = m.message(info.name).unwrap();
    // The envelope sets the flags per message (`flagBits`): others are refused.
    let expected = vexfs::constraints::expected_header_flags(u64::from(code));
    assert_eq!(
        expected.is_some(),
        m.wire.envelope.flag_bits.is_some(),
        "{id}: every message of a catalogue with flagBits has expected flags"
    );
    let flags = m
        .wire
        .envelope
        .flags
        .as_ref()
        .and_then(|f| header[f].as_u64());
    if expected.is_some_and(|expected| Some(expected) != flags) {
        return Err(ErrorClass::Schema);
    }
    let payload = match &msg.payload {
        Some(Ty::Named(t)) => {
            let type_name = &m.ty(*t).name;
            let value = vexfs_decode(type_name, &frame.payload)
                .unwrap_or_else(|| {
                    panic!("{id}: add `{type_name}` to vexfs_types! in codegen/tests/vectors.rs")
                })
                .map_err(|e| decode_error_class(&e))?;
            (cat.validate)(type_name, value.clone())
                .unwrap()
                .map_err(|_| ErrorClass::Schema)?;
            value
        }
        Some(other) => panic!("{id}: payload {other:?} is not a named type"),
        None => {
            dispatch::decode_empty_binary(info.name, &frame.payload)
                .map_err(|_| ErrorClass::Encoding)?;
            json!({})
        }
    };
    Ok(json!({ "header": header, "payload": payload }))
}

fn receive(cat: &Catalogue, bytes: &[u8], id: &str) -> Result<Value, ErrorClass> {
    match cat.module.wire.encoding {
        ir::Encoding::Json => receive_json(cat, bytes, id),
        ir::Encoding::BinaryLe => receive_binary(cat, bytes, id),
    }
}

/// The frame the runtime's encoder makes of a valid vector's body.
fn encode(cat: &Catalogue, v: &Value) -> Vec<u8> {
    let m = &cat.module;
    let body = &v["body"];
    let mut buf = BytesMut::new();
    match &m.wire.framing {
        Framing::LengthPrefixed { .. } => {
            let text = serde_json::to_vec(body).unwrap();
            let ipcspec_runtime::codec::Framing::LengthPrefixed(prefix) = wire_of(m).framing else {
                panic!("the profile's framing is not the IR's");
            };
            LengthPrefixedCodec::new(prefix, usize::MAX)
                .encode(&text[..], &mut buf)
                .unwrap();
        }
        Framing::NewlineDelimited => {
            NewlineCodec::new(usize::MAX)
                .encode(serde_json::to_string(body).unwrap(), &mut buf)
                .unwrap();
        }
        Framing::BinaryHeader { .. } => {
            // The header from the body (through the generated header type), the payload
            // bytes from the frame: the runtime computes the length and the checksum again.
            let bytes = frame_bytes(v);
            let header: vexfs::MessageHeader =
                serde_json::from_value(body["header"].clone()).unwrap();
            let size = vexfs::HEADER_LAYOUT.size;
            let frame = ipcspec_runtime::codec::BinaryFrame {
                header: bytes::Bytes::from(header.to_bytes().unwrap()),
                payload: bytes::Bytes::copy_from_slice(&bytes[size..]),
            };
            binary_codec(m).encode(frame, &mut buf).unwrap();
        }
    }
    buf.to_vec()
}

/// The verdict of the Rust `jsonschema` crate on every vector that has a body.
fn rust_schema_verdicts(cats: &[Catalogue]) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for cat in cats {
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&cat.schema)
            .unwrap();
        for v in list(&cat.file) {
            if let Some(body) = v.get("body") {
                out.insert(id(v).to_owned(), validator.is_valid(body));
            }
        }
    }
    out
}

#[test]
fn every_vector_gets_its_verdict_from_the_runtime_and_the_generated_code() {
    let cats = catalogues();
    let verdicts = rust_schema_verdicts(&cats);
    let mut failures = Vec::new();
    let mut checked = 0;
    for cat in &cats {
        for v in list(&cat.file) {
            let id = id(v);
            let bytes = frame_bytes(v);
            let want = expected(v);
            let got = receive(cat, &bytes, id);
            checked += 1;
            match (&got, want) {
                (Ok(decoded), None) => {
                    if Some(decoded) != v.get("body") {
                        failures.push(format!(
                            "{id}: decodes to {decoded}, the vector says {}",
                            v["body"]
                        ));
                    }
                    // Message vectors are the runtime encoder's frames of their bodies.
                    let message_scope = id.split('/').nth(1) == v["message"].as_str();
                    if message_scope && encode(cat, v) != bytes {
                        failures.push(format!("{id}: the runtime encodes the body differently"));
                    }
                }
                (Err(class), Some(expected)) if *class == expected => {}
                _ => failures.push(format!(
                    "{id}: expected {}, the receiver says {}",
                    want.map_or("valid", ErrorClass::as_str),
                    match &got {
                        Ok(_) => "valid",
                        Err(class) => class.as_str(),
                    }
                )),
            }
            // The body is there exactly when the verdict is reached on it.
            let needs_body = matches!(
                want,
                None | Some(ErrorClass::Schema | ErrorClass::UnknownType)
            );
            if needs_body && v.get("body").is_none() {
                failures.push(format!("{id}: no body"));
            }
            if let Some(valid) = verdicts.get(id) {
                let schema_expected = match want {
                    None => Some(true),
                    Some(ErrorClass::Schema | ErrorClass::UnknownType) => Some(false),
                    _ => None,
                };
                if schema_expected.is_some_and(|e| e != *valid) {
                    failures.push(format!(
                        "{id}: the generated JSON Schema {} the body",
                        if *valid { "accepts" } else { "rejects" }
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} vectors disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 500, "only {checked} vectors");
}

// ---------------------------------------------------------------------------------------
// The second validator: Python's jsonschema

/// `tools/python/.venv/bin/python`, with `requirements.txt` installed
/// (`tools/python/venv.sh` creates the venv, and installs the requirements again when
/// they change; without `python3` it fails saying what to install).
fn python() -> PathBuf {
    let script = root().join("tools/python/venv.sh");
    let output = Command::new("sh").arg(&script).output().unwrap();
    assert!(
        output.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

#[test]
fn python_jsonschema_reaches_the_same_verdicts_as_the_rust_crate() {
    let cats = catalogues();
    let rust = rust_schema_verdicts(&cats);
    let output = Command::new(python())
        .arg(root().join("tools/python/check_vectors.py"))
        .arg(root().join(vectors::VECTORS_DIR))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "check_vectors.py printed no JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let python: BTreeMap<String, bool> = report["verdicts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bool().unwrap()))
        .collect();
    let differ: Vec<String> = rust
        .keys()
        .chain(python.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|id| rust.get(*id) != python.get(*id))
        .map(|id| format!("{id}: Rust {:?}, Python {:?}", rust.get(id), python.get(id)))
        .collect();
    assert!(
        differ.is_empty(),
        "the validators disagree (Python jsonschema {}):\n{}",
        report["jsonschema"],
        differ.join("\n")
    );
    assert!(
        output.status.success(),
        "check_vectors.py found vectors against their expectation: {}",
        report["mismatches"]
    );
    assert!(rust.len() > 500, "only {} bodies", rust.len());
}
