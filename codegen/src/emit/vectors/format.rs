//! The vectors file format: the vector type, the file's rendering and the format's JSON
//! Schema.

use serde_json::{Map, Value, json};

use super::binary::BinWire;
use crate::emit::{banner, docs, jsonschema};
use crate::ir::{
    ByteOrder, ChecksumAlgorithm, Encoding, Framing, LengthCounts, Module, UnknownKeys,
};

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

pub(super) fn order_name(order: ByteOrder) -> &'static str {
    match order {
        ByteOrder::Little => "little",
        ByteOrder::Big => "big",
    }
}

pub(super) fn value_of(v: i128) -> Value {
    crate::emit::shared::int(v)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
            "Generated by ipcspec {} (codegen/src/emit/vectors/). Do not edit: change the generator and run `cargo xtask codegen`.",
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
