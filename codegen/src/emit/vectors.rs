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

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail, ensure};
use heck::ToKebabCase;
use serde_json::{Map, Value, json};

use crate::emit::jsonschema::{BINARY_HEADER_KEY, BINARY_PAYLOAD_KEY};
use crate::emit::{banner, docs, examples, jsonschema};
use crate::ir::{
    ByteOrder, ChecksumAlgorithm, Encoding, Framing, LengthCounts, Message, Module, PrimitiveType,
    Struct, Ty, TypeId, TypeKind, UnknownKeys,
};

/// Directory of the vectors files, relative to the repository root.
pub const VECTORS_DIR: &str = "conformance/vectors";
/// The JSON Schema of the vectors format, relative to the repository root.
pub const SCHEMA_PATH: &str = "conformance/schema/vectors.schema.json";
/// The list of retired ids, relative to the repository root.
pub const RETIRED_PATH: &str = "conformance/vectors/retired.txt";

/// Why a receiver must refuse an invalid vector: the first check, in this order, that the
/// frame fails. The order is the order of [`ErrorClass::ALL`], except that a binary
/// payload is only decoded after its message code is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    /// The byte stream does not hold a well-formed frame: truncated prefix, body, header
    /// or payload; bad magic or version; a header length smaller than the header.
    Framing,
    /// The binary header's checksum does not match the message.
    Checksum,
    /// The frame's body is not one value of the encoding: invalid UTF-8, malformed JSON,
    /// trailing bytes, two values, an empty body; binary payload bytes that do not decode
    /// as the payload type (too short, too long, invalid UTF-8 or bool, bad tail count).
    Encoding,
    /// A limit of the wire profile is exceeded: the message is larger than
    /// `maxMessageBytes` (or the line than `maxLineBytes`), or nests deeper than
    /// `maxNestingDepth`.
    Limit,
    /// The envelope's message type (or the header's message code) is not in the catalogue.
    UnknownType,
    /// The decoded message breaks its definition: a missing, mistyped, null or undeclared
    /// key (where unknown keys are rejected), a violated constraint, an unknown enum
    /// member or union tag, non-zero padding, a missing or misplaced envelope member.
    Schema,
}

impl ErrorClass {
    /// Every class, in the order a receiver checks.
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::Framing,
        ErrorClass::Checksum,
        ErrorClass::Encoding,
        ErrorClass::Limit,
        ErrorClass::UnknownType,
        ErrorClass::Schema,
    ];

    /// The name in vectors files.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Framing => "framing",
            ErrorClass::Checksum => "checksum",
            ErrorClass::Encoding => "encoding",
            ErrorClass::Limit => "limit",
            ErrorClass::UnknownType => "unknownType",
            ErrorClass::Schema => "schema",
        }
    }

    /// The class named `name` in vectors files.
    pub fn from_name(name: &str) -> Option<ErrorClass> {
        ErrorClass::ALL.into_iter().find(|c| c.as_str() == name)
    }

    fn doc(self) -> &'static str {
        match self {
            ErrorClass::Framing => {
                "The byte stream holds no well-formed frame: truncated prefix, body, header or payload; bad magic or version; a header length smaller than the header."
            }
            ErrorClass::Checksum => "The binary header's checksum does not match the message.",
            ErrorClass::Encoding => {
                "The body is not one value of the encoding: invalid UTF-8, malformed JSON, trailing bytes, two values, an empty body; binary payload bytes that do not decode as the payload type."
            }
            ErrorClass::Limit => {
                "The message is larger than maxMessageBytes (the line than maxLineBytes) or nests deeper than maxNestingDepth."
            }
            ErrorClass::UnknownType => {
                "The envelope's message type or the header's message code is not in the catalogue."
            }
            ErrorClass::Schema => {
                "The decoded message breaks its definition: missing, mistyped, null or undeclared keys, violated constraints, unknown enum members or union tags, non-zero padding, missing or misplaced envelope members."
            }
        }
    }
}

/// How binding a vector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The catalogue or the wire mapping requires this verdict.
    Must,
    /// Recommended receiver behaviour that the catalogue does not require.
    Should,
}

impl Level {
    /// The name in vectors files.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "must",
            Level::Should => "should",
        }
    }
}

/// A piece of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// These bytes.
    Bytes(Vec<u8>),
    /// `count` copies of `byte` (keeps megabyte frames small in the file).
    Fill {
        /// The byte.
        byte: u8,
        /// How many.
        count: u64,
    },
}

/// One vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Vector {
    /// Stable id, `<catalogue>/<scope>/<valid|invalid>/<case>`.
    pub id: String,
    /// The catalogue message the frame carries, when it carries one.
    pub message: Option<String>,
    /// How binding the verdict is.
    pub level: Level,
    /// `None` for a valid frame; else why it must be refused.
    pub error: Option<ErrorClass>,
    /// What the case is.
    pub description: String,
    /// Anchors of the generated docs (`migration.md#msg-backup-request`).
    pub cites: Vec<String>,
    /// The bytes a receiver reads, followed by the end of the stream.
    pub frame: Vec<Segment>,
    /// The decoded form: the envelope object (JSON encodings) or
    /// `{"header": ..., "payload": ...}` (binary), present exactly when the verdict is
    /// reached on it (valid vectors, `unknownType`, `schema`, and `limit` for nesting).
    pub body: Option<Value>,
}

impl Vector {
    /// The vector in its file form.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        if let Some(message) = &self.message {
            out.insert("message".into(), json!(message));
        }
        out.insert("level".into(), json!(self.level.as_str()));
        out.insert("valid".into(), json!(self.error.is_none()));
        if let Some(error) = self.error {
            out.insert("error".into(), json!(error.as_str()));
        }
        out.insert("description".into(), json!(self.description));
        out.insert("cites".into(), json!(self.cites));
        match self.frame.as_slice() {
            [Segment::Bytes(bytes)] => {
                out.insert("frame".into(), json!(hex(bytes)));
            }
            segments => {
                let list: Vec<Value> = segments
                    .iter()
                    .map(|s| match s {
                        Segment::Bytes(bytes) => json!({ "hex": hex(bytes) }),
                        Segment::Fill { byte, count } => {
                            json!({ "fill": hex(&[*byte]), "count": count })
                        }
                    })
                    .collect();
                out.insert("frameSegments".into(), Value::Array(list));
            }
        }
        if let Some(body) = &self.body {
            out.insert("body".into(), body.clone());
        }
        Value::Object(out)
    }
}

/// A generated file, with its path relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorFile {
    /// `conformance/vectors/<catalogue>.json`.
    pub path: String,
    /// Full contents.
    pub contents: String,
}

/// The vectors file of every module. Fails on a duplicate id and on an id in `retired`.
pub fn emit(modules: &[Module], retired: &BTreeSet<String>) -> anyhow::Result<Vec<VectorFile>> {
    let mut ids = BTreeSet::new();
    let mut files = Vec::new();
    for m in modules {
        let list = vectors(m).with_context(|| format!("vectors of `{}`", m.name))?;
        for v in &list {
            ensure!(
                !retired.contains(&v.id),
                "vector id `{}` is retired ({RETIRED_PATH}): ids are never reused, give the case another name",
                v.id
            );
            ensure!(ids.insert(v.id.clone()), "duplicate vector id `{}`", v.id);
        }
        files.push(VectorFile {
            path: format!("{VECTORS_DIR}/{}", file_name(m)),
            contents: render(m, &list)?,
        });
    }
    Ok(files)
}

/// The vectors file's name under `conformance/vectors`.
pub fn file_name(module: &Module) -> String {
    format!("{}.json", module.name)
}

/// The ids listed in a retired-ids file: one per line, `#` comments and blank lines
/// ignored.
pub fn parse_retired(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// `text` (a retired-ids file) with `ids` appended, sorted.
pub fn retire(text: &str, ids: &BTreeSet<String>) -> String {
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for id in ids {
        out.push_str(id);
        out.push('\n');
    }
    out
}

/// The ids of a vectors file's text.
pub fn ids_in(text: &str) -> anyhow::Result<Vec<String>> {
    let doc: Value = serde_json::from_str(text).context("not JSON")?;
    let list = doc
        .get("vectors")
        .and_then(Value::as_array)
        .context("no `vectors` array")?;
    list.iter()
        .map(|v| {
            v.get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .context("a vector without `id`")
        })
        .collect()
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

/// The vectors file of a module.
pub fn render(m: &Module, vectors: &[Vector]) -> anyhow::Result<String> {
    let mut doc = Map::new();
    doc.insert("$schema".into(), json!("../schema/vectors.schema.json"));
    doc.insert("$comment".into(), json!(banner(m)));
    doc.insert("catalogue".into(), json!(m.name));
    doc.insert("catalogueVersion".into(), json!(m.version));
    let framing = match &m.wire.framing {
        Framing::LengthPrefixed { .. } => "lengthPrefixed",
        Framing::NewlineDelimited => "newlineDelimited",
        Framing::BinaryHeader { .. } => "binaryHeader",
    };
    doc.insert("framing".into(), json!(framing));
    doc.insert(
        "encoding".into(),
        json!(match m.wire.encoding {
            Encoding::Json => "json",
            Encoding::BinaryLe => "binaryLe",
        }),
    );
    doc.insert("maxMessageBytes".into(), json!(m.wire.max_message_bytes));
    if let Some(n) = m.wire.max_line_bytes {
        doc.insert("maxLineBytes".into(), json!(n));
    }
    if let Some(n) = m.wire.max_nesting_depth {
        doc.insert("maxNestingDepth".into(), json!(n));
    }
    doc.insert(
        "unknownKeys".into(),
        json!(match m.wire.unknown_keys {
            UnknownKeys::Reject => "reject",
            UnknownKeys::Ignore => "ignore",
        }),
    );
    match &m.wire.framing {
        Framing::LengthPrefixed {
            width_bytes,
            byte_order,
        } => {
            doc.insert(
                "lengthPrefix".into(),
                json!({ "widthBytes": width_bytes, "byteOrder": order_name(*byte_order) }),
            );
        }
        Framing::NewlineDelimited => {}
        Framing::BinaryHeader { .. } => {
            let wire = BinWire::new(m)?;
            let mut header = Map::new();
            header.insert("type".into(), json!(m.ty(wire.header).name));
            header.insert("sizeBytes".into(), json!(wire.header_size));
            header.insert("byteOrder".into(), json!(order_name(wire.byte_order)));
            header.insert(
                "lengthCounts".into(),
                json!(match wire.length_counts {
                    LengthCounts::HeaderAndPayload => "headerAndPayload",
                    LengthCounts::Payload => "payload",
                }),
            );
            if let Some((field, value)) = &m.wire.envelope.magic {
                header.insert(
                    "magic".into(),
                    json!({ "field": field, "value": value_of(*value) }),
                );
            }
            if let Some((field, value)) = &m.wire.envelope.version {
                header.insert(
                    "version".into(),
                    json!({ "field": field, "value": value_of(*value) }),
                );
            }
            if let Some((field, algorithm)) = &m.wire.envelope.checksum {
                let name = match algorithm {
                    ChecksumAlgorithm::Crc32c => "crc32c",
                };
                header.insert(
                    "checksum".into(),
                    json!({ "field": field, "algorithm": name, "covers": "messageWithChecksumZeroed" }),
                );
            }
            doc.insert("binaryHeader".into(), Value::Object(header));
        }
    }
    doc.insert(
        "jsonSchema".into(),
        json!(format!(
            "../../generated/jsonschema/{}",
            jsonschema::file_name(m)
        )),
    );
    doc.insert(
        "docs".into(),
        json!(format!("../../generated/docs/{}", docs::file_name(m))),
    );
    doc.insert(
        "vectors".into(),
        Value::Array(vectors.iter().map(Vector::to_json).collect()),
    );
    let mut text = serde_json::to_string_pretty(&Value::Object(doc))?;
    text.push('\n');
    Ok(text)
}

fn order_name(order: ByteOrder) -> &'static str {
    match order {
        ByteOrder::Little => "little",
        ByteOrder::Big => "big",
    }
}

fn value_of(v: i128) -> Value {
    jsonschema::int(v)
}

/// Collects vectors, refusing duplicate ids.
struct Builder<'m> {
    m: &'m Module,
    doc: String,
    out: Vec<Vector>,
    ids: BTreeSet<String>,
}

/// A vector before its id is made.
struct Case {
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

fn is_case_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

// ---------------------------------------------------------------------------------------
// Case names

/// A kebab-case case name for a wrong value's description (`required field `deadline`
/// missing` -> `missing-deadline`).
fn case_name(what: &str) -> String {
    let between = |prefix: &str, suffix: &str| {
        what.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .filter(|inner| !inner.contains('`'))
    };
    if let Some(f) = between("required field `", "` missing") {
        return format!("missing-{}", kebab(f));
    }
    if let Some(f) = between("field `", "` of the wrong type") {
        return format!("wrong-type-{}", kebab(f));
    }
    if let Some(f) = between("field `", "` is null") {
        return format!("null-{}", kebab(f));
    }
    if let Some(f) = between("padding `", "` is not zero") {
        return format!("nonzero-padding-{}", kebab(f));
    }
    match what {
        "an undeclared key" => return "undeclared-key".into(),
        "a value of the wrong JSON type" => return "wrong-json-type".into(),
        _ => {}
    }
    if let Some((f, rest)) = what
        .strip_prefix("field `")
        .and_then(|r| r.split_once("`: "))
    {
        return format!("{}-{}", kebab(f), slug(rest));
    }
    if let Some((v, rest)) = what
        .strip_prefix("variant `")
        .and_then(|r| r.split_once('`'))
    {
        let rest = rest.trim_start_matches(':').trim();
        let tail = if rest.starts_with("required field")
            || rest.starts_with("field `")
            || rest.starts_with("padding `")
            || rest.starts_with("an undeclared")
        {
            case_name(rest)
        } else {
            slug(rest)
        };
        return format!("variant-{}-{tail}", kebab(v));
    }
    slug(what)
}

fn kebab(name: &str) -> String {
    let k = name.to_kebab_case();
    slug(&k)
}

/// Lower-case words joined by `-`; text in backticks is kept when it is an identifier
/// and dropped otherwise (patterns).
fn slug(text: &str) -> String {
    let mut words = String::new();
    for (i, part) in text.split('`').enumerate() {
        let inside = i % 2 == 1;
        if inside {
            let ident = !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if ident {
                words.push(' ');
                words.push_str(&part.to_kebab_case());
                words.push(' ');
            }
        } else {
            words.push_str(part);
        }
    }
    let mut out = String::new();
    for c in words.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() { "case".into() } else { out }
}

/// Names for wrong values: their case names, with a content hash appended to names that
/// two different values share; identical values are kept once.
fn named_wrongs(wrongs: Vec<examples::Wrong>) -> Vec<(String, examples::Wrong)> {
    let mut by_name: BTreeMap<String, Vec<examples::Wrong>> = BTreeMap::new();
    let mut order = Vec::new();
    for w in wrongs {
        let name = case_name(&w.what);
        let list = by_name.entry(name.clone()).or_default();
        if list.iter().any(|x| x.value == w.value) {
            continue;
        }
        if list.is_empty() {
            order.push(name);
        }
        list.push(w);
    }
    let mut out = Vec::new();
    for name in order {
        let Some(list) = by_name.remove(&name) else {
            continue;
        };
        let several = list.len() > 1;
        for w in list {
            let case = if several {
                format!("{name}-{:08x}", fnv32(&w.value.to_string()))
            } else {
                name.clone()
            };
            out.push((case, w));
        }
    }
    out
}

fn fnv32(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// JSON catalogues

fn json_frame(m: &Module, body: &[u8]) -> anyhow::Result<Vec<u8>> {
    match &m.wire.framing {
        Framing::LengthPrefixed {
            width_bytes,
            byte_order,
        } => {
            let mut out = length_prefix(*width_bytes, *byte_order, body.len() as u64)?;
            out.extend_from_slice(body);
            Ok(out)
        }
        Framing::NewlineDelimited => {
            let mut out = body.to_vec();
            out.push(b'\n');
            Ok(out)
        }
        Framing::BinaryHeader { .. } => bail!("not a JSON framing"),
    }
}

fn length_prefix(width: u8, order: ByteOrder, n: u64) -> anyhow::Result<Vec<u8>> {
    let width = usize::from(width);
    ensure!((1..=8).contains(&width), "length prefix of {width} bytes");
    ensure!(
        width == 8 || n < 1u64 << (8 * width),
        "{n} does not fit a {width}-byte prefix"
    );
    let mut bytes = n.to_le_bytes()[..width].to_vec();
    if order == ByteOrder::Big {
        bytes.reverse();
    }
    Ok(bytes)
}

/// The longest body the framing accepts: `maxMessageBytes`, and `maxLineBytes` for lines.
fn json_limit(m: &Module) -> u64 {
    match (&m.wire.framing, m.wire.max_line_bytes) {
        (Framing::NewlineDelimited, Some(line)) => line.min(m.wire.max_message_bytes),
        _ => m.wire.max_message_bytes,
    }
}

fn compact(value: &Value) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

fn payload_key(m: &Module) -> anyhow::Result<&str> {
    m.wire
        .envelope
        .payload
        .as_deref()
        .context("a JSON envelope without payload key")
}

fn with_payload(m: &Module, envelope: &Value, payload: Value) -> anyhow::Result<Value> {
    let mut env = obj(envelope)?;
    env.insert(payload_key(m)?.to_owned(), payload);
    Ok(Value::Object(env))
}

/// The envelope without the members the catalogue lets senders omit.
fn strip_optional_envelope(m: &Module, envelope: &mut Map<String, Value>) {
    let env = &m.wire.envelope;
    if env.id_optional {
        if let Some((key, _)) = &env.id {
            envelope.shift_remove(key);
        }
    }
    if env.timestamp_optional {
        if let Some(key) = &env.timestamp {
            envelope.shift_remove(key);
        }
    }
    if env.correlation_optional {
        if let Some(key) = &env.correlation_id {
            envelope.shift_remove(key);
        }
    }
}

impl Builder<'_> {
    /// A JSON-wire case carrying `body` in one frame.
    fn json_case(&mut self, case: Case, body: Value) -> anyhow::Result<()> {
        let frame = json_frame(self.m, &compact(&body)?)?;
        self.push(case.bytes(frame).body(body))
    }
}

fn json_message(b: &mut Builder<'_>, msg: &Message) -> anyhow::Result<()> {
    let m = b.m;
    let name = msg.name.as_str();
    let example = examples::envelope(m, msg)?;
    let payload_anchor = msg
        .payload
        .as_ref()
        .and_then(|ty| match ty {
            Ty::Named(id) => Some(m.ty(*id).anchor.clone()),
            _ => None,
        })
        .unwrap_or_else(|| msg.anchor.clone());
    b.json_case(
        Case::new(
            name,
            "example",
            None,
            format!(
                "`{name}` with every envelope member and every optional payload field present."
            ),
        )
        .message(name)
        .cites(&[&msg.anchor, "wire-envelope", "wire-encoding"]),
        example.clone(),
    )?;

    let mut minimal = obj(&example)?;
    strip_optional_envelope(m, &mut minimal);
    let mut variants = Vec::new();
    if let Some(Ty::Named(id)) = &msg.payload {
        let all = examples::type_examples(m, *id)?;
        if let Some(smallest) = all.get(1) {
            minimal.insert(payload_key(m)?.to_owned(), smallest.clone());
        }
        if let TypeKind::Union(u) = &m.ty(*id).kind {
            for (variant, value) in u.variants.iter().zip(all.iter().skip(2)) {
                variants.push((variant.name.clone(), value.clone()));
            }
        }
    }
    let minimal = Value::Object(minimal);
    if minimal != example {
        b.json_case(
            Case::new(
                name,
                "minimal",
                None,
                format!("`{name}` with only what is required: optional envelope members and optional payload fields absent, nullable ones null, lists as short as allowed."),
            )
            .message(name)
            .cites(&[&msg.anchor, "wire-envelope", &payload_anchor]),
            minimal,
        )?;
    }
    for (variant, value) in variants {
        b.json_case(
            Case::new(
                name,
                &format!("variant-{}", kebab(&variant)),
                None,
                format!("`{name}` whose payload is the union variant `{variant}`."),
            )
            .message(name)
            .cites(&[&msg.anchor, &payload_anchor]),
            with_payload(m, &example, value)?,
        )?;
    }

    match &msg.payload {
        Some(Ty::Named(id)) => {
            for (case, w) in named_wrongs(examples::wrong_values(m, *id)?) {
                b.json_case(
                    Case::new(
                        name,
                        &case,
                        Some(ErrorClass::Schema),
                        format!("`{name}` payload: {}.", w.what),
                    )
                    .message(name)
                    .cites(&[&msg.anchor, &payload_anchor]),
                    with_payload(m, &example, w.value)?,
                )?;
            }
            if let Some((type_id, s)) = payload_struct(m, &Ty::Named(*id)) {
                let base = obj(&examples::type_example(m, type_id)?)?;
                for (field, value, enum_name) in enum_non_members(m, s)? {
                    if !base.contains_key(&field) {
                        continue;
                    }
                    let mut payload = base.clone();
                    payload.insert(field.clone(), value.clone());
                    b.json_case(
                        Case::new(
                            name,
                            &format!("{}-not-a-member", kebab(&field)),
                            Some(ErrorClass::Schema),
                            format!("`{name}` payload: field `{field}` is {value}, not a member of `{enum_name}`."),
                        )
                        .message(name)
                        .cites(&[&msg.anchor, &payload_anchor, &m.ty(type_id).anchor]),
                        with_payload(m, &example, Value::Object(payload))?,
                    )?;
                }
            }
        }
        Some(_) => {}
        None => {
            let extra = json!({ "undeclaredKey": 1 });
            match m.wire.unknown_keys {
                UnknownKeys::Reject => b.json_case(
                    Case::new(
                        name,
                        "payload-undeclared-key",
                        Some(ErrorClass::Schema),
                        format!("`{name}` has no payload, so its payload must be `{{}}`; this one has a key."),
                    )
                    .message(name)
                    .cites(&[&msg.anchor, "wire-encoding"]),
                    with_payload(m, &example, extra)?,
                )?,
                UnknownKeys::Ignore => b.json_case(
                    Case::new(
                        name,
                        "payload-undeclared-key-ignored",
                        None,
                        format!("`{name}` has no payload; undeclared keys in its payload object are ignored."),
                    )
                    .message(name)
                    .cites(&[&msg.anchor, "wire-encoding"]),
                    with_payload(m, &example, extra)?,
                )?,
            }
            b.json_case(
                Case::new(
                    name,
                    "payload-not-an-object",
                    Some(ErrorClass::Schema),
                    format!("`{name}` has no payload, so its payload must be the object `{{}}`; this one is an array."),
                )
                .message(name)
                .cites(&[&msg.anchor, "wire-envelope"]),
                with_payload(m, &example, json!([]))?,
            )?;
        }
    }

    if let Some(depth) = m.wire.max_nesting_depth {
        nesting(b, msg, &example, depth)?;
    }
    Ok(())
}

/// Nesting vectors for the first message whose payload has a `json` field: at the limit
/// (valid) and one deeper (limit).
fn nesting(b: &mut Builder<'_>, msg: &Message, example: &Value, depth: u64) -> anyhow::Result<()> {
    let m = b.m;
    let first = m.messages.iter().find_map(|x| {
        let (_, s) = payload_struct(m, x.payload.as_ref()?)?;
        let f = s
            .fields
            .iter()
            .find(|f| resolve(m, &f.ty) == Ty::Prim(PrimitiveType::Json))?;
        Some((x.name.clone(), f.wire.clone()))
    });
    let name = msg.name.as_str();
    match first {
        Some((target, field)) if target == msg.name => {
            ensure!(
                depth >= 3,
                "maxNestingDepth {depth} leaves no room for a payload field"
            );
            let payload_key = payload_key(m)?.to_owned();
            let mut env = obj(example)?;
            let mut payload = obj(env.get(&payload_key).context("no payload")?)?;
            // envelope (1) > payload (2) > the field's arrays.
            payload.insert(field.clone(), nested(depth - 2));
            env.insert(payload_key.clone(), Value::Object(payload.clone()));
            b.json_case(
                Case::new(
                    name,
                    "nesting-at-limit",
                    None,
                    format!("`{name}` whose `{field}` (any JSON) nests the message exactly {depth} levels deep, the limit."),
                )
                .message(name)
                .cites(&[&msg.anchor, "wire-limits"]),
                Value::Object(env.clone()),
            )?;
            payload.insert(field.clone(), nested(depth - 1));
            env.insert(payload_key, Value::Object(payload));
            b.json_case(
                Case::new(
                    name,
                    "nesting-over-limit",
                    Some(ErrorClass::Limit),
                    format!("`{name}` whose `{field}` (any JSON) nests the message {} levels deep, one more than maxNestingDepth.", depth + 1),
                )
                .message(name)
                .cites(&[&msg.anchor, "wire-limits"]),
                Value::Object(env),
            )?;
        }
        None if m.messages.first().is_some_and(|x| x.name == msg.name) => {
            // No payload can nest legally: nest the payload itself one level too deep.
            b.json_case(
                Case::new(
                    name,
                    "nesting-over-limit",
                    Some(ErrorClass::Limit),
                    format!("`{name}` whose payload is nested arrays, {} levels deep with the envelope: one more than maxNestingDepth (checked before the payload's type).", depth + 1),
                )
                .message(name)
                .cites(&[&msg.anchor, "wire-limits"]),
                with_payload(m, example, nested(depth))?,
            )?;
        }
        _ => {}
    }
    Ok(())
}

fn json_envelope(b: &mut Builder<'_>) -> anyhow::Result<()> {
    let m = b.m;
    let env = &m.wire.envelope;
    let base_msg = m.messages.first().context("a catalogue without messages")?;
    let base_name = base_msg.name.as_str();
    let base = obj(&examples::envelope(m, base_msg)?)?;
    let scope = "envelope";
    let with = |key: &str, value: Value| {
        let mut e = base.clone();
        e.insert(key.to_owned(), value);
        Value::Object(e)
    };
    let without = |key: &str| {
        let mut e = base.clone();
        e.shift_remove(key);
        Value::Object(e)
    };
    let type_key = env.type_key.as_str();
    let payload = payload_key(m)?;

    b.json_case(
        Case::new(
            scope,
            "not-an-object",
            Some(ErrorClass::Schema),
            "A message must be a JSON object; this is an array holding one.".into(),
        )
        .cites(&["wire-envelope", "wire-encoding"]),
        Value::Array(vec![Value::Object(base.clone())]),
    )?;
    b.json_case(
        Case::new(
            scope,
            "missing-type",
            Some(ErrorClass::Schema),
            format!("`{base_name}` without the message type key `{type_key}`."),
        )
        .cites(&["wire-envelope"]),
        without(type_key),
    )?;
    b.json_case(
        Case::new(
            scope,
            "type-not-a-string",
            Some(ErrorClass::Schema),
            format!("The message type `{type_key}` is a number."),
        )
        .cites(&["wire-envelope"]),
        with(type_key, json!(12)),
    )?;
    let mut unknown = if m
        .messages
        .iter()
        .any(|x| x.name.chars().any(|c| c.is_ascii_lowercase()))
    {
        String::from("NoSuchMessage")
    } else {
        String::from("NO_SUCH_MESSAGE")
    };
    while m.message(&unknown).is_some() {
        unknown.push('X');
    }
    let mut unknown_env = base.clone();
    unknown_env.insert(type_key.to_owned(), json!(unknown));
    unknown_env.insert(payload.to_owned(), json!({}));
    if let Some(key) = &env.correlation_id {
        unknown_env.shift_remove(key);
    }
    b.json_case(
        Case::new(
            scope,
            "unknown-message-type",
            Some(ErrorClass::UnknownType),
            format!(
                "A well-formed envelope whose message type `{unknown}` is not in the catalogue."
            ),
        )
        .cites(&["wire-envelope", "messages"]),
        Value::Object(unknown_env),
    )?;
    b.json_case(
        Case::new(
            scope,
            "missing-payload",
            Some(ErrorClass::Schema),
            format!(
                "`{base_name}` without the payload key `{payload}` (required even when empty)."
            ),
        )
        .message(base_name)
        .cites(&["wire-envelope"]),
        without(payload),
    )?;
    if let Some((key, ty)) = &env.id {
        if !env.id_optional {
            b.json_case(
                Case::new(
                    scope,
                    "missing-id",
                    Some(ErrorClass::Schema),
                    format!("`{base_name}` without the message id `{key}`."),
                )
                .message(base_name)
                .cites(&["wire-envelope"]),
                without(key),
            )?;
        }
        let mut wrongs: Vec<(String, String, Value)> = Vec::new();
        match ty {
            Ty::Named(id) => {
                for (case, w) in named_wrongs(examples::wrong_values(m, *id)?) {
                    wrongs.push((format!("id-{case}"), w.what, w.value));
                }
            }
            Ty::Prim(PrimitiveType::Uuid) => {
                wrongs.push(("id-wrong-json-type".into(), "a number".into(), json!(12)));
                wrongs.push((
                    "id-not-a-uuid".into(),
                    "not a UUID".into(),
                    json!("not-a-uuid"),
                ));
            }
            Ty::Prim(PrimitiveType::String) => {
                wrongs.push(("id-wrong-json-type".into(), "a number".into(), json!(12)));
            }
            Ty::Prim(_) => {
                wrongs.push(("id-wrong-json-type".into(), "a string".into(), json!("12")));
            }
            _ => {}
        }
        for (case, what, value) in wrongs {
            b.json_case(
                Case::new(
                    scope,
                    &case,
                    Some(ErrorClass::Schema),
                    format!("`{base_name}` whose message id `{key}` is wrong: {what}."),
                )
                .message(base_name)
                .cites(&["wire-envelope"]),
                with(key, value),
            )?;
        }
    }
    if let Some(key) = &env.timestamp {
        if !env.timestamp_optional {
            b.json_case(
                Case::new(
                    scope,
                    "missing-timestamp",
                    Some(ErrorClass::Schema),
                    format!("`{base_name}` without the timestamp `{key}`."),
                )
                .message(base_name)
                .cites(&["wire-envelope"]),
                without(key),
            )?;
        }
        for (case, what, value) in [
            (
                "timestamp-not-rfc3339",
                "a space instead of `T`",
                "2025-01-15 10:00:00Z",
            ),
            (
                "timestamp-without-offset",
                "no `Z` or offset",
                "2025-01-15T10:00:00",
            ),
        ] {
            b.json_case(
                Case::new(
                    scope,
                    case,
                    Some(ErrorClass::Schema),
                    format!("`{base_name}` whose timestamp `{key}` is not RFC 3339: {what}."),
                )
                .message(base_name)
                .cites(&["wire-envelope"]),
                with(key, json!(value)),
            )?;
        }
    }
    let mut extra = String::from("undeclaredKey");
    while base.contains_key(&extra) {
        extra.push('_');
    }
    match m.wire.unknown_keys {
        UnknownKeys::Reject => b.json_case(
            Case::new(
                scope,
                "undeclared-key",
                Some(ErrorClass::Schema),
                format!("`{base_name}` with an undeclared envelope key `{extra}` (unknown keys are rejected)."),
            )
            .message(base_name)
            .cites(&["wire-envelope", "wire-encoding"]),
            with(&extra, json!(1)),
        )?,
        UnknownKeys::Ignore => b.json_case(
            Case::new(
                scope,
                "undeclared-key-ignored",
                None,
                format!("`{base_name}` with an undeclared envelope key `{extra}`, which receivers ignore."),
            )
            .message(base_name)
            .cites(&["wire-envelope", "wire-encoding"]),
            with(&extra, json!(1)),
        )?,
    }
    if let Some(key) = &env.correlation_id {
        if let Some(reply) = m.messages.iter().find(|x| x.is_reply) {
            if !env.correlation_optional {
                let mut e = obj(&examples::envelope(m, reply)?)?;
                e.shift_remove(key);
                b.json_case(
                    Case::new(
                        scope,
                        "reply-without-correlation-id",
                        Some(ErrorClass::Schema),
                        format!(
                            "The reply `{}` without its correlation id `{key}`.",
                            reply.name
                        ),
                    )
                    .message(&reply.name)
                    .cites(&["wire-envelope", &reply.anchor]),
                    Value::Object(e),
                )?;
            }
        }
        if let Some(other) = m.messages.iter().find(|x| !x.is_reply) {
            if m.wire.unknown_keys == UnknownKeys::Reject {
                let mut e = obj(&examples::envelope(m, other)?)?;
                let id = env
                    .id
                    .as_ref()
                    .and_then(|(k, _)| e.get(k).cloned())
                    .unwrap_or_else(|| json!("x"));
                e.insert(key.clone(), id);
                b.json_case(
                    Case::new(
                        scope,
                        "correlation-id-on-non-reply",
                        Some(ErrorClass::Schema),
                        format!(
                            "`{}` is no reply but carries a correlation id `{key}`.",
                            other.name
                        ),
                    )
                    .message(&other.name)
                    .cites(&["wire-envelope", &other.anchor]),
                    Value::Object(e),
                )?;
            }
        }
    }
    Ok(())
}

fn json_frames(b: &mut Builder<'_>) -> anyhow::Result<()> {
    let m = b.m;
    let base_msg = m.messages.first().context("a catalogue without messages")?;
    let name = base_msg.name.as_str();
    let base = examples::envelope(m, base_msg)?;
    let body = compact(&base)?;
    let scope = "frame";
    let limit = json_limit(m);
    let len = body.len() as u64;
    ensure!(
        len + 2 <= limit,
        "the example `{name}` ({len} bytes) does not fit the limit {limit}"
    );

    // Encoding: the frame is intact, its body is not one JSON value.
    let mut bad_utf8 = body.clone();
    let at = body
        .windows(3)
        .position(|w| w == b"\":\"")
        .context("no string value in the example")?;
    bad_utf8.insert(at + 3, 0xff);
    let encoding_cases: [(&str, &str, Vec<u8>); 4] = [
        (
            "invalid-utf8",
            "a byte 0xFF inside the first string value: not UTF-8",
            bad_utf8,
        ),
        (
            "malformed-json",
            "the JSON object without its closing brace",
            body[..body.len() - 1].to_vec(),
        ),
        (
            "trailing-garbage",
            "the JSON object followed by `x`",
            [body.as_slice(), b"x"].concat(),
        ),
        (
            "two-values",
            "two JSON objects back to back in one frame",
            [body.as_slice(), body.as_slice()].concat(),
        ),
    ];
    for (case, what, bytes) in encoding_cases {
        b.push(
            Case::new(
                scope,
                case,
                Some(ErrorClass::Encoding),
                format!("`{name}`, its frame intact, its body broken: {what}."),
            )
            .message(name)
            .cites(&["wire-encoding", "wire-framing"])
            .bytes(json_frame(m, &bytes)?),
        )?;
    }

    match &m.wire.framing {
        Framing::LengthPrefixed {
            width_bytes,
            byte_order,
        } => {
            let (w, o) = (*width_bytes, *byte_order);
            let full = json_frame(m, &body)?;
            b.push(
                Case::new(
                    scope,
                    "empty-body",
                    Some(ErrorClass::Encoding),
                    "A frame whose length prefix is 0: an empty body is no JSON value.".into(),
                )
                .cites(&["wire-framing", "wire-encoding"])
                .bytes(length_prefix(w, o, 0)?),
            )?;
            b.push(
                Case::new(
                    scope,
                    "truncated-prefix",
                    Some(ErrorClass::Framing),
                    format!(
                        "The stream ends after {} of the {w} length-prefix bytes.",
                        w - 1
                    ),
                )
                .cites(&["wire-framing"])
                .bytes(full[..usize::from(w) - 1].to_vec()),
            )?;
            b.push(
                Case::new(
                    scope,
                    "truncated-body",
                    Some(ErrorClass::Framing),
                    format!("`{name}` whose stream ends one byte before the end of the body the prefix declares."),
                )
                .message(name)
                .cites(&["wire-framing"])
                .bytes(full[..full.len() - 1].to_vec()),
            )?;
            let mut head = length_prefix(w, o, limit)?;
            head.extend_from_slice(&body);
            b.push(
                Case::new(
                    scope,
                    "body-at-max",
                    None,
                    format!("`{name}` padded with spaces after the object to exactly maxMessageBytes ({limit}) bytes: the limit is inclusive."),
                )
                .message(name)
                .cites(&["wire-limits", "wire-framing"])
                .segments(vec![
                    Segment::Bytes(head),
                    Segment::Fill { byte: b' ', count: limit - len },
                ])
                .body(base.clone()),
            )?;
            let mut head = length_prefix(w, o, limit + 1)?;
            head.extend_from_slice(&body);
            b.push(
                Case::new(
                    scope,
                    "body-over-max",
                    Some(ErrorClass::Limit),
                    format!("`{name}` padded with spaces to maxMessageBytes + 1 ({}) bytes; the receiver refuses it from the prefix alone.", limit + 1),
                )
                .message(name)
                .cites(&["wire-limits", "wire-framing"])
                .segments(vec![
                    Segment::Bytes(head),
                    Segment::Fill { byte: b' ', count: limit + 1 - len },
                ]),
            )?;
            let mut head = length_prefix(w, o, limit + 1)?;
            head.extend_from_slice(&body[..2]);
            b.push(
                Case::new(
                    scope,
                    "declared-length-over-max",
                    Some(ErrorClass::Limit),
                    format!("A prefix declaring maxMessageBytes + 1 ({}) bytes, then 2 body bytes and the end of the stream: the receiver must refuse at the prefix, before reading or allocating the body (waiting for it would report a truncated frame instead).", limit + 1),
                )
                .cites(&["wire-limits", "wire-framing"])
                .bytes(head),
            )?;
        }
        Framing::NewlineDelimited => {
            b.push(
                Case::new(
                    scope,
                    "unterminated-line",
                    Some(ErrorClass::Framing),
                    format!(
                        "`{name}` without its terminating newline: the stream ends inside the line."
                    ),
                )
                .message(name)
                .cites(&["wire-framing"])
                .bytes(body.clone()),
            )?;
            b.push(
                Case::new(
                    scope,
                    "crlf-line-ending",
                    None,
                    format!("`{name}` terminated by CR LF; the CR is not part of the message."),
                )
                .message(name)
                .should()
                .cites(&["wire-framing"])
                .bytes([body.as_slice(), b"\r\n"].concat())
                .body(base.clone()),
            )?;
            b.push(
                Case::new(
                    scope,
                    "blank-lines-skipped",
                    None,
                    format!("An empty line and a line holding only CR, then `{name}`: blank lines carry no message."),
                )
                .message(name)
                .should()
                .cites(&["wire-framing"])
                .bytes([b"\n\r\n".as_slice(), body.as_slice(), b"\n"].concat())
                .body(base.clone()),
            )?;
            b.push(
                Case::new(
                    scope,
                    "line-at-max",
                    None,
                    format!("`{name}` padded with spaces to a line of exactly {limit} bytes (the newline not counted): the limit is inclusive."),
                )
                .message(name)
                .cites(&["wire-limits", "wire-framing"])
                .segments(vec![
                    Segment::Bytes(body.clone()),
                    Segment::Fill { byte: b' ', count: limit - len },
                    Segment::Bytes(b"\n".to_vec()),
                ])
                .body(base.clone()),
            )?;
            b.push(
                Case::new(
                    scope,
                    "line-over-max",
                    Some(ErrorClass::Limit),
                    format!("`{name}` padded with spaces to a line of {} bytes, one more than the limit.", limit + 1),
                )
                .message(name)
                .cites(&["wire-limits", "wire-framing"])
                .segments(vec![
                    Segment::Bytes(body.clone()),
                    Segment::Fill { byte: b' ', count: limit + 1 - len },
                    Segment::Bytes(b"\n".to_vec()),
                ]),
            )?;
        }
        Framing::BinaryHeader { .. } => bail!("not a JSON framing"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Binary catalogues

/// The binary header's layout and rules.
struct BinWire {
    header: TypeId,
    header_size: u64,
    byte_order: ByteOrder,
    length_counts: LengthCounts,
}

impl BinWire {
    fn new(m: &Module) -> anyhow::Result<BinWire> {
        let Framing::BinaryHeader {
            header,
            byte_order,
            length_counts,
        } = &m.wire.framing
        else {
            bail!("binary encoding without binary-header framing");
        };
        ensure!(
            *byte_order == ByteOrder::Little,
            "only little-endian binary headers are supported"
        );
        let TypeKind::Struct(s) = &m.ty(*header).kind else {
            bail!("the header is not a struct");
        };
        let layout = s.c_layout.as_ref().context("the header has no C layout")?;
        ensure!(!s.has_tail(), "the header has tail fields");
        Ok(BinWire {
            header: *header,
            header_size: layout.size,
            byte_order: *byte_order,
            length_counts: *length_counts,
        })
    }

    /// The header with its length and checksum set for `payload`, and its bytes.
    fn seal(
        &self,
        m: &Module,
        header: &Map<String, Value>,
        payload: &[u8],
    ) -> anyhow::Result<(Map<String, Value>, Vec<u8>)> {
        let env = &m.wire.envelope;
        let mut header = header.clone();
        if let Some(field) = &env.length {
            let length = payload.len() as u64
                + match self.length_counts {
                    LengthCounts::HeaderAndPayload => self.header_size,
                    LengthCounts::Payload => 0,
                };
            header.insert(field.clone(), json!(length));
        }
        if let Some((field, algorithm)) = &env.checksum {
            header.insert(field.clone(), json!(0));
            let zeroed = self.header_bytes(m, &header)?;
            let crc = match algorithm {
                ChecksumAlgorithm::Crc32c => {
                    crc32c::crc32c_append(crc32c::crc32c(&zeroed), payload)
                }
            };
            header.insert(field.clone(), json!(crc));
        }
        let bytes = self.header_bytes(m, &header)?;
        Ok((header, bytes))
    }

    fn header_bytes(&self, m: &Module, header: &Map<String, Value>) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        encode(
            m,
            &Ty::Named(self.header),
            &Value::Object(header.clone()),
            &mut out,
        )?;
        Ok(out)
    }

    /// Body and frame of a message: its header sealed over the encoded payload.
    fn message(
        &self,
        m: &Module,
        msg: &Message,
        header: &Map<String, Value>,
        payload: &Value,
    ) -> anyhow::Result<(Value, Vec<u8>, Vec<u8>)> {
        let bytes = encode_payload(m, msg, payload)?;
        let (header, head) = self.seal(m, header, &bytes)?;
        let body = json!({ BINARY_HEADER_KEY: header, BINARY_PAYLOAD_KEY: payload });
        Ok((body, head, bytes))
    }
}

fn encode_payload(m: &Module, msg: &Message, payload: &Value) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    match &msg.payload {
        Some(ty) => encode(m, ty, payload, &mut out)?,
        None => ensure!(
            payload.as_object().is_some_and(Map::is_empty),
            "a message without payload has the payload `{{}}`"
        ),
    }
    Ok(out)
}

/// The example header of `msg` and its example payload.
fn binary_example(m: &Module, msg: &Message) -> anyhow::Result<(Map<String, Value>, Value)> {
    let example = examples::envelope(m, msg)?;
    let header = obj(example.get(BINARY_HEADER_KEY).context("no header")?)?;
    let payload = example
        .get(BINARY_PAYLOAD_KEY)
        .cloned()
        .context("no payload")?;
    Ok((header, payload))
}

/// Longest tail a wrong count is given, so vectors stay small.
const MAX_RESIZED_TAIL: u64 = 1 << 16;

/// `value` with tails and their counts in step again after a wrong value changed one of
/// them: a changed tail (a string too long) gets its count set to its length; a changed
/// count (a count above its maximum) gets its tail resized to it (strings padded with
/// `x` or cut, bytes with zeros, lists repeating their first element).
fn recount(m: &Module, s: &Struct, base: &Value, value: &Value) -> Value {
    let Some(mut out) = value.as_object().cloned() else {
        return value.clone();
    };
    for f in &s.fields {
        let Some(count_field) = &f.length_field else {
            continue;
        };
        let Some(tail) = out.get(&f.wire).cloned() else {
            continue;
        };
        let ty = resolve(m, &f.ty);
        if base.get(&f.wire) != Some(&tail) {
            let n = match (&ty, &tail) {
                (Ty::Prim(PrimitiveType::Bytes), Value::String(s)) => {
                    base64_decode(s).map(|b| b.len() as u64)
                }
                (Ty::Prim(PrimitiveType::String), Value::String(s)) => Some(s.len() as u64),
                (Ty::List(_), Value::Array(items)) => Some(items.len() as u64),
                _ => None,
            };
            if let Some(n) = n {
                out.insert(count_field.clone(), json!(n));
            }
            continue;
        }
        let count = out.get(count_field).and_then(Value::as_u64);
        let Some(n) = count.filter(|n| {
            *n <= MAX_RESIZED_TAIL && base.get(count_field).and_then(Value::as_u64) != Some(*n)
        }) else {
            continue;
        };
        let Ok(n) = usize::try_from(n) else {
            continue;
        };
        let resized = match (&ty, &tail) {
            (Ty::Prim(PrimitiveType::String), Value::String(text)) if text.is_ascii() => {
                let mut text: String = text.chars().take(n).collect();
                while text.len() < n {
                    text.push('x');
                }
                Some(json!(text))
            }
            (Ty::Prim(PrimitiveType::Bytes), Value::String(text)) => {
                base64_decode(text).map(|mut bytes| {
                    bytes.resize(n, 0);
                    json!(examples::base64(&bytes))
                })
            }
            (Ty::List(_), Value::Array(items)) => items.first().map(|first| {
                let mut items = items.clone();
                items.resize(n, first.clone());
                Value::Array(items)
            }),
            _ => None,
        };
        if let Some(resized) = resized {
            out.insert(f.wire.clone(), resized);
        }
    }
    Value::Object(out)
}

fn binary_message(b: &mut Builder<'_>, wire: &BinWire, msg: &Message) -> anyhow::Result<()> {
    let m = b.m;
    let name = msg.name.as_str();
    let header_anchor = m.ty(wire.header).anchor.clone();
    let payload_anchor = msg
        .payload
        .as_ref()
        .and_then(|ty| match ty {
            Ty::Named(id) => Some(m.ty(*id).anchor.clone()),
            _ => None,
        })
        .unwrap_or_else(|| msg.anchor.clone());
    let (header, payload) = binary_example(m, msg)?;
    let (body, head, bytes) = wire
        .message(m, msg, &header, &payload)
        .context("encoding the example")?;
    b.push(
        Case::new(
            name,
            "example",
            None,
            format!("`{name}`: the header (magic, version, code, length, CRC-32C) and the example payload in its C layout."),
        )
        .message(name)
        .cites(&[&msg.anchor, "wire-envelope", "wire-encoding", &header_anchor])
        .bytes([head.as_slice(), bytes.as_slice()].concat())
        .body(body),
    )?;

    if let Some(Ty::Named(id)) = &msg.payload {
        let all = examples::type_examples(m, *id)?;
        if let Some(smallest) = all.get(1).filter(|v| **v != payload) {
            let (body, head, bytes) = wire
                .message(m, msg, &header, smallest)
                .context("encoding the minimal example")?;
            b.push(
                Case::new(
                    name,
                    "minimal",
                    None,
                    format!(
                        "`{name}` with the smallest payload: lists and tails as short as allowed."
                    ),
                )
                .message(name)
                .cites(&[&msg.anchor, &payload_anchor])
                .bytes([head.as_slice(), bytes.as_slice()].concat())
                .body(body),
            )?;
        }

        // Wrong values that have a binary form (a number out of its constraints, padding
        // that is not zero, a tail too long); those without one (wrong JSON types, missing
        // fields) cannot travel in a binary payload.
        let base_payload = examples::type_example(m, *id)?;
        let s = payload_struct(m, &Ty::Named(*id));
        for (case, w) in named_wrongs(examples::wrong_values(m, *id)?) {
            let value = match s {
                Some((_, s)) => recount(m, s, &base_payload, &w.value),
                None => w.value.clone(),
            };
            let Ok((body, head, bytes)) = wire.message(m, msg, &header, &value) else {
                continue;
            };
            b.push(
                Case::new(
                    name,
                    &case,
                    Some(ErrorClass::Schema),
                    format!("`{name}` payload: {}.", w.what),
                )
                .message(name)
                .cites(&[&msg.anchor, &payload_anchor])
                .bytes([head.as_slice(), bytes.as_slice()].concat())
                .body(body),
            )?;
        }
        if let Some((type_id, s)) = s {
            let base = obj(&base_payload)?;
            for (field, value, enum_name) in enum_non_members(m, s)? {
                let mut p = base.clone();
                p.insert(field.clone(), value.clone());
                let Ok((body, head, bytes)) = wire.message(m, msg, &header, &Value::Object(p))
                else {
                    continue;
                };
                b.push(
                    Case::new(
                        name,
                        &format!("{}-not-a-member", kebab(&field)),
                        Some(ErrorClass::Schema),
                        format!("`{name}` payload: field `{field}` is {value}, not a member of `{enum_name}`."),
                    )
                    .message(name)
                    .cites(&[&msg.anchor, &payload_anchor, &m.ty(type_id).anchor])
                    .bytes([head.as_slice(), bytes.as_slice()].concat())
                    .body(body),
                )?;
            }
            // A string tail that is not UTF-8.
            let fixed = s.c_layout.as_ref().map_or(0, |l| l.size);
            let mut offset = usize::try_from(fixed)?;
            let example = obj(&payload)?;
            for f in s.fields.iter().filter(|f| f.length_field.is_some()) {
                let tail = example
                    .get(&f.wire)
                    .context("a tail missing from the example")?;
                let mut tail_bytes = Vec::new();
                encode_tail(m, &f.ty, tail, &mut tail_bytes)?;
                if resolve(m, &f.ty) == Ty::Prim(PrimitiveType::String) && !tail_bytes.is_empty() {
                    let mut broken = bytes.clone();
                    broken[offset] = 0xff;
                    let (_, head) = wire.seal(m, &header, &broken)?;
                    b.push(
                        Case::new(
                            name,
                            &format!("{}-invalid-utf8", kebab(&f.wire)),
                            Some(ErrorClass::Encoding),
                            format!("`{name}` whose string tail `{}` starts with the byte 0xFF: not UTF-8.", f.wire),
                        )
                        .message(name)
                        .cites(&[&msg.anchor, &payload_anchor, "wire-encoding"])
                        .bytes([head.as_slice(), broken.as_slice()].concat()),
                    )?;
                }
                offset += tail_bytes.len();
            }
        }
    }

    // Payload bytes that do not decode as the payload type; header and checksum agree.
    if !bytes.is_empty() {
        let short = &bytes[..bytes.len() - 1];
        let (_, head) = wire.seal(m, &header, short)?;
        b.push(
            Case::new(
                name,
                "payload-truncated",
                Some(ErrorClass::Encoding),
                format!("`{name}` whose payload lacks its last byte; the header's length and checksum match the shorter payload."),
            )
            .message(name)
            .cites(&[&msg.anchor, &payload_anchor, "wire-encoding"])
            .bytes([head.as_slice(), short].concat()),
        )?;
    }
    let long = [bytes.as_slice(), &[0]].concat();
    let (_, head) = wire.seal(m, &header, &long)?;
    b.push(
        Case::new(
            name,
            "payload-trailing-byte",
            Some(ErrorClass::Encoding),
            format!("`{name}` whose payload has one byte more than its type; the header's length and checksum include it."),
        )
        .message(name)
        .cites(&[&msg.anchor, &payload_anchor, "wire-encoding"])
        .bytes([head.as_slice(), long.as_slice()].concat()),
    )?;
    Ok(())
}

fn binary_frames(b: &mut Builder<'_>, wire: &BinWire) -> anyhow::Result<()> {
    let m = b.m;
    let env = &m.wire.envelope;
    let header_anchor = m.ty(wire.header).anchor.clone();
    let base_msg = m
        .messages
        .iter()
        .find(|x| x.payload.is_some())
        .or_else(|| m.messages.first())
        .context("a catalogue without messages")?;
    let name = base_msg.name.as_str();
    let (header, payload) = binary_example(m, base_msg)?;
    let (body, head, bytes) = wire.message(m, base_msg, &header, &payload)?;
    let sealed = obj(body.get(BINARY_HEADER_KEY).context("no header")?)?;
    let full = [head.as_slice(), bytes.as_slice()].concat();
    let header_size = usize::try_from(wire.header_size)?;
    let max = m.wire.max_message_bytes;

    // Unknown message code: a well-formed message with an empty payload.
    let code_field = env.type_key.clone();
    let codes: BTreeSet<i128> = m.messages.iter().filter_map(|x| x.code).collect();
    let unknown = (0..=0xffff_i128)
        .rev()
        .find(|c| !codes.contains(c))
        .context("every code is taken")?;
    let mut h = header.clone();
    h.insert(code_field.clone(), value_of(unknown));
    let (h, head) = wire.seal(m, &h, &[])?;
    b.push(
        Case::new(
            "envelope",
            "unknown-message-type",
            Some(ErrorClass::UnknownType),
            format!("A well-formed message with the code {unknown:#06x}, which no message of the catalogue has, and no payload."),
        )
        .cites(&["wire-envelope", "messages", &header_anchor])
        .bytes(head)
        .body(json!({ BINARY_HEADER_KEY: h, BINARY_PAYLOAD_KEY: {} })),
    )?;

    let scope = "frame";
    // Header fields broken one at a time, the checksum recomputed so only that field is
    // wrong.
    let broken_header = |field: &Option<(String, i128)>| -> anyhow::Result<Option<Vec<u8>>> {
        let Some((key, expected)) = field else {
            return Ok(None);
        };
        let mut h = header.clone();
        h.insert(key.clone(), value_of(expected ^ 0x5a));
        let (_, head) = wire.seal(m, &h, &bytes)?;
        Ok(Some([head.as_slice(), bytes.as_slice()].concat()))
    };
    if let Some(frame) = broken_header(&env.magic)? {
        b.push(
            Case::new(
                scope,
                "bad-magic",
                Some(ErrorClass::Framing),
                format!("`{name}` whose header magic is wrong (the checksum is computed over the wrong value)."),
            )
            .message(name)
            .cites(&["wire-envelope", "wire-framing", &header_anchor])
            .bytes(frame),
        )?;
    }
    if let Some(frame) = broken_header(&env.version)? {
        b.push(
            Case::new(
                scope,
                "bad-version",
                Some(ErrorClass::Framing),
                format!("`{name}` whose header carries a protocol version the catalogue does not define."),
            )
            .message(name)
            .cites(&["wire-envelope", "wire-framing", &header_anchor])
            .bytes(frame),
        )?;
    }
    if let Some(length) = &env.length {
        if wire.length_counts == LengthCounts::HeaderAndPayload {
            let below = wire.header_size - 1;
            let mut h = sealed.clone();
            h.insert(length.clone(), json!(below));
            let head = wire.header_bytes(m, &h)?;
            b.push(
                Case::new(
                    scope,
                    "length-below-header",
                    Some(ErrorClass::Framing),
                    format!("`{name}` whose header declares a length of {below} bytes, less than the header itself."),
                )
                .message(name)
                .cites(&["wire-framing", &header_anchor])
                .bytes([head.as_slice(), bytes.as_slice()].concat()),
            )?;
        }
        let over = max + 1;
        let mut h = sealed.clone();
        h.insert(length.clone(), json!(over));
        let head = wire.header_bytes(m, &h)?;
        b.push(
            Case::new(
                scope,
                "declared-length-over-max",
                Some(ErrorClass::Limit),
                format!("A header declaring maxMessageBytes + 1 ({over}) bytes, then the end of the stream: the receiver must refuse at the header, before reading or allocating the payload."),
            )
            .message(name)
            .cites(&["wire-limits", "wire-framing", &header_anchor])
            .bytes(head.clone()),
        )?;
        b.push(
            Case::new(
                scope,
                "body-over-max",
                Some(ErrorClass::Limit),
                format!("A header declaring maxMessageBytes + 1 ({over}) bytes followed by that many bytes in all."),
            )
            .message(name)
            .cites(&["wire-limits", "wire-framing", &header_anchor])
            .segments(vec![
                Segment::Bytes(head),
                Segment::Fill {
                    byte: 0,
                    count: over - wire.header_size,
                },
            ]),
        )?;
    }
    b.push(
        Case::new(
            scope,
            "truncated-header",
            Some(ErrorClass::Framing),
            format!(
                "The stream ends after {} of the {header_size} header bytes.",
                header_size / 2
            ),
        )
        .cites(&["wire-framing", &header_anchor])
        .bytes(full[..header_size / 2].to_vec()),
    )?;
    if !bytes.is_empty() {
        b.push(
            Case::new(
                scope,
                "truncated-payload",
                Some(ErrorClass::Framing),
                format!("`{name}` whose stream ends one byte before the end of the payload its header declares."),
            )
            .message(name)
            .cites(&["wire-framing", &header_anchor])
            .bytes(full[..full.len() - 1].to_vec()),
        )?;
    }
    if let Some((field, _)) = &env.checksum {
        let mut h = sealed.clone();
        let crc = h
            .get(field)
            .and_then(Value::as_u64)
            .context("no checksum in the sealed header")?;
        h.insert(field.clone(), json!(crc ^ 0xffff_ffff));
        let head = wire.header_bytes(m, &h)?;
        b.push(
            Case::new(
                scope,
                "bad-checksum",
                Some(ErrorClass::Checksum),
                format!("`{name}` whose header checksum has every bit inverted."),
            )
            .message(name)
            .cites(&["wire-envelope", &header_anchor])
            .bytes([head.as_slice(), bytes.as_slice()].concat()),
        )?;
        if !bytes.is_empty() {
            let mut corrupted = full.clone();
            if let Some(last) = corrupted.last_mut() {
                *last ^= 0x01;
            }
            b.push(
                Case::new(
                    scope,
                    "payload-corrupted",
                    Some(ErrorClass::Checksum),
                    format!("`{name}` with one bit of its last payload byte flipped after the checksum was computed."),
                )
                .message(name)
                .cites(&["wire-envelope", &header_anchor])
                .bytes(corrupted),
            )?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Binary encoding from the IR (`codegen/WIRE-MAPPING.md`, "Binary")

/// Appends the binary form of `value` (of type `ty`) to `out`.
fn encode(m: &Module, ty: &Ty, value: &Value, out: &mut Vec<u8>) -> anyhow::Result<()> {
    match ty {
        Ty::Prim(p) => encode_prim(*p, value, out),
        Ty::Array(item, n) => {
            let items = value.as_array().context("an array expected")?;
            ensure!(items.len() as u64 == *n, "an array of {n} items expected");
            for v in items {
                encode(m, item, v, out)?;
            }
            Ok(())
        }
        Ty::List(_) | Ty::Map(_) => bail!("a list or map outside a tail field has no binary form"),
        Ty::Named(id) => match &m.ty(*id).kind {
            TypeKind::Struct(s) => encode_struct(m, s, value, out),
            TypeKind::IntEnum(e) => encode_prim(e.repr, value, out),
            TypeKind::Alias(a) => encode(m, &a.ty, value, out),
            TypeKind::Enum(_) | TypeKind::Union(_) => {
                bail!("`{}` has no binary form", m.ty(*id).name)
            }
        },
    }
}

fn encode_struct(m: &Module, s: &Struct, value: &Value, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let layout = s.c_layout.as_ref().context("a struct without C layout")?;
    let object = value.as_object().context("an object expected")?;
    for key in object.keys() {
        ensure!(
            s.fields.iter().any(|f| &f.wire == key),
            "undeclared key `{key}`"
        );
    }
    let mut fixed = vec![0u8; usize::try_from(layout.size)?];
    for f in s.fields.iter().filter(|f| f.length_field.is_none()) {
        let v = object
            .get(&f.wire)
            .with_context(|| format!("field `{}` missing", f.wire))?;
        let place = layout
            .fields
            .iter()
            .find(|c| c.name == f.wire)
            .with_context(|| format!("field `{}` has no place in the layout", f.wire))?;
        let mut bytes = Vec::new();
        encode(m, &f.ty, v, &mut bytes)?;
        ensure!(
            bytes.len() as u64 == place.size,
            "field `{}` encodes to {} bytes, its place has {}",
            f.wire,
            bytes.len(),
            place.size
        );
        let start = usize::try_from(place.offset)?;
        fixed[start..start + bytes.len()].copy_from_slice(&bytes);
    }
    out.extend_from_slice(&fixed);
    for f in s.fields.iter() {
        let Some(count_field) = &f.length_field else {
            continue;
        };
        let v = object
            .get(&f.wire)
            .with_context(|| format!("tail `{}` missing", f.wire))?;
        let declared = object
            .get(count_field)
            .and_then(Value::as_u64)
            .with_context(|| format!("count `{count_field}` missing"))?;
        let count = encode_tail(m, &f.ty, v, out)?;
        ensure!(
            count == declared,
            "`{count_field}` says {declared}, `{}` has {count}",
            f.wire
        );
    }
    Ok(())
}

/// Appends a tail field; returns its count (bytes, or elements for lists).
fn encode_tail(m: &Module, ty: &Ty, value: &Value, out: &mut Vec<u8>) -> anyhow::Result<u64> {
    match resolve(m, ty) {
        Ty::Prim(PrimitiveType::String) => {
            let s = value.as_str().context("a string expected")?;
            out.extend_from_slice(s.as_bytes());
            Ok(s.len() as u64)
        }
        Ty::Prim(PrimitiveType::Bytes) => {
            let bytes = value
                .as_str()
                .and_then(base64_decode)
                .context("base64 expected")?;
            out.extend_from_slice(&bytes);
            Ok(bytes.len() as u64)
        }
        Ty::List(item) => {
            let items = value.as_array().context("an array expected")?;
            for v in items {
                encode(m, &item, v, out)?;
            }
            Ok(items.len() as u64)
        }
        _ => bail!("not a tail type"),
    }
}

fn encode_prim(p: PrimitiveType, value: &Value, out: &mut Vec<u8>) -> anyhow::Result<()> {
    use PrimitiveType as P;
    match p {
        P::Bool => out.push(u8::from(value.as_bool().context("a bool expected")?)),
        P::F32 => {
            let f = value.as_f64().context("a number expected")?;
            let narrow = f as f32;
            ensure!(f64::from(narrow) == f, "{f} is no f32");
            out.extend_from_slice(&narrow.to_le_bytes());
        }
        P::F64 => {
            out.extend_from_slice(&value.as_f64().context("a number expected")?.to_le_bytes())
        }
        P::Uuid => out.extend_from_slice(
            &parse_uuid(value.as_str().context("a string expected")?).context("a UUID expected")?,
        ),
        P::Timestamp => {
            let ns = rfc3339_nanos(value.as_str().context("a string expected")?)
                .context("an RFC 3339 timestamp expected")?;
            out.extend_from_slice(
                &u64::try_from(ns)
                    .context("a timestamp before 1970 or after 2554")?
                    .to_le_bytes(),
            );
        }
        P::Duration => {
            let ms = value.as_u64().context("milliseconds expected")?;
            let ns = ms
                .checked_mul(1_000_000)
                .context("a duration over 584 years")?;
            out.extend_from_slice(&ns.to_le_bytes());
        }
        P::String | P::Bytes | P::Json | P::Fd => {
            bail!("`{}` has no fixed binary form", p.name())
        }
        _ => {
            let (lo, hi) = p.int_range().context("an integer type expected")?;
            let n = value
                .as_i64()
                .map(i128::from)
                .or_else(|| value.as_u64().map(i128::from))
                .context("an integer expected")?;
            ensure!(lo <= n && n <= hi, "{n} is out of range for `{}`", p.name());
            let size = usize::try_from(p.c_size().context("no size")?)?;
            out.extend_from_slice(&n.to_le_bytes()[..size]);
        }
    }
    Ok(())
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let digits: Vec<u8> = b.iter().copied().filter(|c| *c != b'-').collect();
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in digits.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Nanoseconds since the Unix epoch of an RFC 3339 timestamp.
fn rfc3339_nanos(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let t = s.get(from..to)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        let scale = 10_i128.pow(u32::try_from(9 - digits.len()).ok()?);
        nanos = digits.parse::<i128>().ok()? * scale;
    }
    let offset: i64 = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = (num(i + 1, i + 3)?, num(i + 4, i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(i128::from(seconds) * 1_000_000_000 + nanos)
}

/// Standard padded base64 (RFC 4648), strictly.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::new();
    let chunks = b.len() / 4;
    for (i, chunk) in b.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for (j, c) in chunk.iter().enumerate() {
            let v = if j >= 4 - pad { 0 } else { value(*c)? };
            n = (n << 6) | v;
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------
// The format's JSON Schema

/// The JSON Schema (draft 2020-12) of a vectors file.
pub fn schema() -> Value {
    let classes: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
    let class_docs: Vec<String> = ErrorClass::ALL
        .iter()
        .map(|c| format!("`{}`: {}", c.as_str(), c.doc()))
        .collect();
    let vector = json!({
        "type": "object",
        "required": ["id", "level", "valid", "description", "cites"],
        "additionalProperties": false,
        "properties": {
            "id": {
                "description": "Stable id <catalogue>/<scope>/<valid|invalid>/<case>; never reused once published (retired ids are listed in retired.txt).",
                "type": "string",
                "pattern": "^[a-z][a-z0-9]*(-[a-z0-9]+)*/[A-Za-z_][A-Za-z0-9_]*/(valid|invalid)/[a-z0-9]+(-[a-z0-9]+)*$"
            },
            "message": { "description": "The catalogue message the frame carries.", "type": "string" },
            "level": { "description": "must: required by the catalogue or the wire mapping; should: recommended receiver behaviour.", "enum": ["must", "should"] },
            "valid": { "type": "boolean" },
            "error": { "$ref": "#/$defs/errorClass" },
            "description": { "type": "string", "minLength": 1 },
            "cites": {
                "description": "Requirement anchors of the generated docs: <page>.md#<anchor>.",
                "type": "array",
                "minItems": 1,
                "uniqueItems": true,
                "items": { "type": "string", "pattern": "^[a-z0-9-]+\\.md#[a-z0-9-]+$" }
            },
            "frame": { "description": "The bytes a receiver reads, in hex, followed by the end of the stream.", "$ref": "#/$defs/hex" },
            "frameSegments": {
                "description": "The frame as segments to concatenate, for frames too large to write out (megabyte fills).",
                "type": "array",
                "minItems": 1,
                "items": { "$ref": "#/$defs/segment" }
            },
            "body": { "description": "The decoded form (the envelope object, or {\"header\", \"payload\"} for binary encodings), present exactly when the verdict is reached on it: valid vectors, and invalid ones of class unknownType, schema or (nesting) limit." }
        },
        "oneOf": [
            { "required": ["frame"], "not": { "required": ["frameSegments"] } },
            { "required": ["frameSegments"], "not": { "required": ["frame"] } }
        ],
        "if": { "properties": { "valid": { "const": true } } },
        "then": { "required": ["body"], "not": { "required": ["error"] } },
        "else": { "required": ["error"] }
    });
    let binary_header = json!({
        "description": "The header of binaryHeader framing.",
        "type": "object",
        "required": ["type", "sizeBytes", "byteOrder", "lengthCounts"],
        "additionalProperties": false,
        "properties": {
            "type": { "description": "The header struct of the catalogue.", "type": "string" },
            "sizeBytes": { "type": "integer", "minimum": 1 },
            "byteOrder": { "enum": ["little", "big"] },
            "lengthCounts": { "enum": ["headerAndPayload", "payload"] },
            "magic": { "$ref": "#/$defs/headerConstant" },
            "version": { "$ref": "#/$defs/headerConstant" },
            "checksum": {
                "type": "object",
                "required": ["field", "algorithm", "covers"],
                "additionalProperties": false,
                "properties": {
                    "field": { "type": "string" },
                    "algorithm": { "enum": ["crc32c"] },
                    "covers": { "enum": ["messageWithChecksumZeroed"] }
                }
            }
        }
    });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://ipcspec.invalid/conformance/vectors.schema.json",
        "$comment": format!(
            "Generated by ipcspec {} (codegen/src/emit/vectors.rs). Do not edit: change the generator and run `cargo xtask codegen`.",
            env!("CARGO_PKG_VERSION")
        ),
        "title": "ipcspec static conformance vectors",
        "description": "The static test vectors of one catalogue: complete frames as they travel on the wire, the verdict a receiver must reach, and the decoded form. See conformance/vectors/README.md.",
        "type": "object",
        "required": ["catalogue", "catalogueVersion", "framing", "encoding", "maxMessageBytes", "unknownKeys", "jsonSchema", "docs", "vectors"],
        "additionalProperties": false,
        "properties": {
            "$schema": { "type": "string" },
            "$comment": { "type": "string" },
            "catalogue": {
                "description": "The catalogue's name (specs/<catalogue>.json).",
                "type": "string",
                "pattern": "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
            },
            "catalogueVersion": { "description": "The catalogue's protocol version.", "type": "string", "minLength": 1 },
            "framing": {
                "description": "The catalogue's framing (wire.framing.kind).",
                "enum": ["lengthPrefixed", "newlineDelimited", "binaryHeader"]
            },
            "encoding": { "description": "The catalogue's encoding (wire.encoding).", "enum": ["json", "binaryLe"] },
            "maxMessageBytes": { "description": "wire.limits.maxMessageBytes: the largest body (length-prefixed), message (binary, header included) or line.", "type": "integer", "minimum": 1 },
            "maxLineBytes": { "description": "wire.limits.maxLineBytes (newline framing).", "type": "integer", "minimum": 1 },
            "maxNestingDepth": { "description": "wire.limits.maxNestingDepth: the deepest JSON nesting; the envelope object is depth 1.", "type": "integer", "minimum": 1 },
            "unknownKeys": { "description": "wire.unknownKeys.", "enum": ["reject", "ignore"] },
            "lengthPrefix": {
                "description": "The length prefix of lengthPrefixed framing; it counts the body bytes after it.",
                "type": "object",
                "required": ["widthBytes", "byteOrder"],
                "additionalProperties": false,
                "properties": {
                    "widthBytes": { "enum": [2, 4, 8] },
                    "byteOrder": { "enum": ["little", "big"] }
                }
            },
            "binaryHeader": binary_header,
            "jsonSchema": { "description": "The catalogue's generated JSON Schema, relative to this file; it describes `body`.", "type": "string" },
            "docs": { "description": "The catalogue's generated documentation, relative to this file; `cites` point into it.", "type": "string" },
            "vectors": { "type": "array", "items": { "$ref": "#/$defs/vector" } }
        },
        "$defs": {
            "headerConstant": {
                "type": "object",
                "required": ["field", "value"],
                "additionalProperties": false,
                "properties": {
                    "field": { "type": "string" },
                    "value": { "type": "integer" }
                }
            },
            "hex": { "type": "string", "pattern": "^([0-9a-f]{2})*$" },
            "errorClass": {
                "description": format!("Why a receiver must refuse the frame: the first check it fails, in the order framing, checksum, encoding, limit, unknownType, schema. {}", class_docs.join(" ")),
                "enum": classes
            },
            "segment": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["hex"],
                        "additionalProperties": false,
                        "properties": { "hex": { "$ref": "#/$defs/hex" } }
                    },
                    {
                        "type": "object",
                        "required": ["fill", "count"],
                        "additionalProperties": false,
                        "properties": {
                            "fill": { "type": "string", "pattern": "^[0-9a-f]{2}$" },
                            "count": { "type": "integer", "minimum": 1 }
                        }
                    }
                ]
            },
            "vector": vector
        }
    })
}

/// [`schema`] as the file's text.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn case_names_follow_the_wrong_values() {
        assert_eq!(
            case_name("required field `deadline` missing"),
            "missing-deadline"
        );
        assert_eq!(
            case_name("field `percentComplete` of the wrong type"),
            "wrong-type-percent-complete"
        );
        assert_eq!(case_name("field `eta` is null"), "null-eta");
        assert_eq!(
            case_name("padding `reserved0` is not zero"),
            "nonzero-padding-reserved0"
        );
        assert_eq!(
            case_name("field `percentComplete`: above the maximum 100"),
            "percent-complete-above-the-maximum-100"
        );
        assert_eq!(
            case_name("field `userId`: does not match `^[a-z_][a-z0-9_-]*[$]?$`"),
            "user-id-does-not-match"
        );
        assert_eq!(
            case_name("variant `Identifier` without its tag `by`"),
            "variant-identifier-without-its-tag-by"
        );
        assert_eq!(
            case_name("variant `Identifier`: required field `id` missing"),
            "variant-identifier-missing-id"
        );
        assert_eq!(case_name("an undeclared key"), "undeclared-key");
        assert!(is_case_name("missing-deadline"));
        assert!(!is_case_name("Missing"));
        assert!(!is_case_name("a--b"));
    }

    #[test]
    fn timestamps_and_base64_decode() {
        assert_eq!(rfc3339_nanos("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_nanos("2000-03-01T00:00:01.5+01:00"),
            Some((951_868_800 + 1 - 3600) * 1_000_000_000 + 500_000_000)
        );
        assert_eq!(rfc3339_nanos("2025-02-29T00:00:00Z"), None);
        assert_eq!(rfc3339_nanos("2025-01-15 10:00:00Z"), None);
        assert_eq!(base64_decode("Zm9vYg==").as_deref(), Some(&b"foob"[..]));
        for text in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let encoded = examples::base64(text.as_bytes());
            assert_eq!(base64_decode(&encoded).as_deref(), Some(text.as_bytes()));
        }
        assert_eq!(base64_decode("Zm9v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(base64_decode("YWI"), None);
        assert_eq!(base64_decode("***="), None);
        assert_eq!(
            parse_uuid("123e4567-e89b-12d3-a456-426614174000").map(|b| b[0]),
            Some(0x12)
        );
        assert_eq!(parse_uuid("123e4567e89b12d3a456426614174000"), None);
    }

    #[test]
    fn prefixes_and_nesting() {
        assert_eq!(
            length_prefix(4, ByteOrder::Little, 5).unwrap(),
            vec![5, 0, 0, 0]
        );
        assert_eq!(length_prefix(2, ByteOrder::Big, 258).unwrap(), vec![1, 2]);
        assert!(length_prefix(2, ByteOrder::Big, 1 << 16).is_err());
        assert_eq!(nested(1), json!([]));
        assert_eq!(nested(3), json!([[[]]]));
    }

    #[test]
    fn retired_ids_are_parsed_and_appended() {
        let text = "# retired\n\na/b/valid/c\n";
        let ids = parse_retired(text);
        assert_eq!(ids.len(), 1);
        let more: BTreeSet<String> = ["z/y/invalid/x".to_owned()].into();
        let next = retire(text, &more);
        assert_eq!(parse_retired(&next).len(), 2);
        assert!(next.ends_with("z/y/invalid/x\n"));
    }
}
