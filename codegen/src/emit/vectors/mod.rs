//! Static conformance vectors: `conformance/vectors/<catalogue>.json`, one file per
//! catalogue, and the JSON Schema of their format (`conformance/schema/vectors.schema.json`).
//!
//! A vector is a complete frame as it travels on the wire (hex), the verdict a receiver
//! must reach (`valid`, or the [`ErrorClass`] of the first check the frame fails), the
//! decoded form when there is one, the requirement anchors of the generated docs it
//! checks (`migration.md#msg-backup-request`) and a level (`must`/`should`). Vectors are
//! built from the IR with the deterministic example generator ([`examples`]): valid
//! examples of every message (full, minimal, one per union variant), every wrong value
//! [`examples::wrong_values`] knows for a payload type, unknown enum members, and per
//! catalogue the envelope, framing, encoding and limit cases of its wire profile.
//!
//! Ids are `<catalogue>/<scope>/<valid|invalid>/<case>`: the scope is a message name,
//! `envelope` or `frame`, the case a kebab-case name derived from what the case does
//! (never from a position or randomness). Generation fails on a duplicate id and on an id
//! listed in `conformance/vectors/retired.txt`: an id, once published, always means the
//! same case, and a removed case's id is retired for good (`cargo xtask codegen` appends
//! the ids that disappeared to that list).
//!
//! Binary catalogues are encoded here from the IR (C layouts, tail fields, the header's
//! length and CRC-32C), independently of the generated Rust codecs, so that the tests
//! comparing the two check something.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};
use serde_json::{Map, Value, json};

use crate::emit::{docs, examples};
use crate::ir::{Encoding, Framing, Module, Struct, Ty, TypeId, TypeKind};
use crate::output::{OutputFile, Target};
use binary::{BinWire, binary_frames, binary_message};
use ids::is_case_name;
use json::{json_envelope, json_frames, json_message};

mod binary;
mod encoding;
mod format;
mod ids;
mod json;

pub use format::{ErrorClass, Level, Segment, Vector, render, schema, schema_text};
pub use ids::{ids_in, parse_retired, retire};

/// Directory of the vectors files, relative to the repository root.
pub const VECTORS_DIR: &str = "conformance/vectors";
/// The JSON Schema of the vectors format, relative to the repository root.
pub const SCHEMA_PATH: &str = "conformance/schema/vectors.schema.json";
/// The list of retired ids, relative to the repository root.
pub const RETIRED_PATH: &str = "conformance/vectors/retired.txt";

/// The vectors file of every module (`Target::Vectors`, `<catalogue>.json`). Fails on a
/// duplicate id; [`refuse_retired`] checks the ids against the retired list.
pub fn emit(modules: &[Module]) -> anyhow::Result<Vec<OutputFile>> {
    let mut ids = BTreeSet::new();
    let mut files = Vec::new();
    for m in modules {
        let list = vectors(m).with_context(|| format!("vectors of `{}`", m.name))?;
        for v in &list {
            ensure!(ids.insert(v.id.clone()), "duplicate vector id `{}`", v.id);
        }
        files.push(OutputFile {
            target: Target::Vectors,
            path: file_name(m),
            contents: render(m, &list)?,
        });
    }
    Ok(files)
}

/// Fails when a vectors file of `files` uses an id of `retired`: an id, once published,
/// always means the same case.
pub fn refuse_retired(files: &[OutputFile], retired: &BTreeSet<String>) -> anyhow::Result<()> {
    for file in files.iter().filter(|f| f.target == Target::Vectors) {
        for id in ids_in(&file.contents)? {
            ensure!(
                !retired.contains(&id),
                "vector id `{id}` is retired ({RETIRED_PATH}): ids are never reused, give the case another name"
            );
        }
    }
    Ok(())
}

/// The JSON Schema of the vectors format (`Target::VectorsSchema`).
pub fn schema_file() -> OutputFile {
    OutputFile {
        target: Target::VectorsSchema,
        path: "vectors.schema.json".into(),
        contents: schema_text(),
    }
}

/// The vectors file's name under `conformance/vectors`.
pub fn file_name(module: &Module) -> String {
    format!("{}.json", module.name)
}

/// Every vector of a module, in a fixed order (messages in catalogue order, then the
/// envelope, then the frame cases).
pub fn vectors(m: &Module) -> anyhow::Result<Vec<Vector>> {
    let mut b = Builder {
        m,
        doc: docs::file_name(m),
        out: Vec::new(),
        ids: BTreeSet::new(),
    };
    match m.wire.encoding {
        Encoding::Json => {
            ensure!(
                !matches!(m.wire.framing, Framing::BinaryHeader { .. }),
                "a JSON encoding under binary-header framing"
            );
            for msg in &m.messages {
                json_message(&mut b, msg).with_context(|| format!("message `{}`", msg.name))?;
            }
            json_envelope(&mut b)?;
            json_frames(&mut b)?;
        }
        Encoding::BinaryLe => {
            let wire = BinWire::new(m)?;
            for msg in &m.messages {
                binary_message(&mut b, &wire, msg)
                    .with_context(|| format!("message `{}`", msg.name))?;
            }
            binary_frames(&mut b, &wire)?;
        }
    }
    Ok(b.out)
}

/// Collects vectors, refusing duplicate ids.
pub(super) struct Builder<'m> {
    m: &'m Module,
    doc: String,
    out: Vec<Vector>,
    ids: BTreeSet<String>,
}

/// A vector before its id is made.
pub(super) struct Case {
    scope: String,
    message: Option<String>,
    name: String,
    level: Level,
    error: Option<ErrorClass>,
    description: String,
    cites: Vec<String>,
    frame: Vec<Segment>,
    body: Option<Value>,
}

impl Case {
    fn new(scope: &str, name: &str, error: Option<ErrorClass>, description: String) -> Case {
        Case {
            scope: scope.to_owned(),
            message: None,
            name: name.to_owned(),
            level: Level::Must,
            error,
            description,
            cites: Vec::new(),
            frame: Vec::new(),
            body: None,
        }
    }

    fn message(mut self, msg: &str) -> Case {
        self.message = Some(msg.to_owned());
        self
    }

    fn should(mut self) -> Case {
        self.level = Level::Should;
        self
    }

    fn cites(mut self, anchors: &[&str]) -> Case {
        self.cites.extend(anchors.iter().map(|a| (*a).to_owned()));
        self
    }

    fn bytes(mut self, bytes: Vec<u8>) -> Case {
        self.frame = vec![Segment::Bytes(bytes)];
        self
    }

    fn segments(mut self, segments: Vec<Segment>) -> Case {
        self.frame = segments;
        self
    }

    fn body(mut self, body: Value) -> Case {
        self.body = Some(body);
        self
    }
}

impl Builder<'_> {
    fn push(&mut self, case: Case) -> anyhow::Result<()> {
        let verdict = if case.error.is_none() {
            "valid"
        } else {
            "invalid"
        };
        ensure!(
            is_case_name(&case.name),
            "case name `{}` is not kebab-case",
            case.name
        );
        ensure!(!case.frame.is_empty(), "case `{}` has no frame", case.name);
        let id = format!("{}/{}/{verdict}/{}", self.m.name, case.scope, case.name);
        ensure!(self.ids.insert(id.clone()), "duplicate vector id `{id}`");
        let mut cites: Vec<String> = Vec::new();
        for anchor in &case.cites {
            let cite = format!("{}#{anchor}", self.doc);
            if !cites.contains(&cite) {
                cites.push(cite);
            }
        }
        self.out.push(Vector {
            id,
            message: case.message,
            level: case.level,
            error: case.error,
            description: case.description,
            cites,
            frame: case.frame,
            body: case.body,
        });
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Type helpers

fn resolve(m: &Module, ty: &Ty) -> Ty {
    let mut ty = ty.clone();
    for _ in 0..64 {
        match &ty {
            Ty::Named(id) => match &m.ty(*id).kind {
                TypeKind::Alias(a) => ty = a.ty.clone(),
                _ => break,
            },
            _ => break,
        }
    }
    ty
}

/// The struct a payload type is (through aliases), with its id.
fn payload_struct<'m>(m: &'m Module, ty: &Ty) -> Option<(TypeId, &'m Struct)> {
    match resolve(m, ty) {
        Ty::Named(id) => match &m.ty(id).kind {
            TypeKind::Struct(s) => Some((id, s)),
            _ => None,
        },
        _ => None,
    }
}

/// For each field of `s` whose type is an enum, a value of the field that is no member,
/// with the enum's name.
fn enum_non_members(m: &Module, s: &Struct) -> anyhow::Result<Vec<(String, Value, String)>> {
    let mut out = Vec::new();
    for f in &s.fields {
        let Ty::Named(id) = resolve(m, &f.ty) else {
            continue;
        };
        if !matches!(m.ty(id).kind, TypeKind::Enum(_) | TypeKind::IntEnum(_)) {
            continue;
        }
        if let Some(w) = examples::wrong_values(m, id)?
            .into_iter()
            .find(|w| w.what.ends_with("is not a member"))
        {
            out.push((f.wire.clone(), w.value, m.ty(id).name.clone()));
        }
    }
    Ok(out)
}

/// Depth of a JSON value: scalars 0, a container one more than its deepest element.
fn nested(depth: u64) -> Value {
    let mut v = json!([]);
    for _ in 1..depth {
        v = Value::Array(vec![v]);
    }
    v
}

fn obj(value: &Value) -> anyhow::Result<Map<String, Value>> {
    value.as_object().cloned().context("expected a JSON object")
}
