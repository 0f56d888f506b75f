//! JSON Schema emitter: `generated/jsonschema/<module>.schema.json`, draft 2020-12.
//!
//! Each module's schema accepts exactly one envelope of any of its messages, in the JSON
//! forms of `codegen/WIRE-MAPPING.md` (what the generated serde types write and read).
//! `$defs` holds every named type under its catalogue name, and per message
//! `<MESSAGE>.payload` (so a runtime can validate a payload by message name) and
//! `<MESSAGE>.envelope`.
//!
//! **Message selection by `if`/`then`, not `oneOf`.** The root requires the type key,
//! lists the message names in an `enum`, and holds one `if {type: const NAME} then
//! {$ref NAME.envelope}` per message under `allOf`. A `oneOf` over the envelopes would
//! report a bad message as "not valid under any of the schemas" together with one error
//! per *other* message; with `if`/`then` an unknown type is one `enum` error and a bad
//! payload is reported at its own path inside the one envelope it claims to be. Unions
//! keep the `oneOf` the wire mapping prescribes (their tags are `const`s, so at most one
//! branch matches).
//!
//! **Binary encodings** (`binaryLe` behind a binary header) have no JSON on the wire; their
//! schema describes the decoded form `{"header": {...}, "payload": {...}}`, the header
//! struct with the type code, magic and version fixed, and the payload struct. Tail-field
//! counts and the length and checksum fields cannot be checked by JSON Schema.

use serde_json::{Map, Value, json};

use crate::emit::banner;
use crate::emit::shared::{BINARY_HEADER_KEY, BINARY_PAYLOAD_KEY, binary_header, int, is_binary};
use crate::ir::{
    Constraints, Field, Int64Encoding, Message, Module, PrimitiveType, Struct, Ty, TypeKind, Union,
    UnionRepr, UnknownKeys,
};
use crate::output::{OutputFile, Target};

/// The dialect every emitted schema declares.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";
/// A signed 64-bit integer written as a decimal string.
pub const I64_STRING_PATTERN: &str = "^-?(0|[1-9][0-9]*)$";
/// An unsigned 64-bit integer written as a decimal string.
pub const U64_STRING_PATTERN: &str = "^(0|[1-9][0-9]*)$";
/// Standard base64 with padding (RFC 4648 section 4).
pub const BASE64_PATTERN: &str = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$";
/// A hyphenated UUID in either case.
pub const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// RFC 3339 date-time with `Z` or an offset and 0 to 9 fractional digits.
pub const TIMESTAMP_PATTERN: &str = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";

/// Emits `<module>.schema.json` for every module.
pub fn emit(modules: &[Module]) -> anyhow::Result<Vec<OutputFile>> {
    modules
        .iter()
        .map(|m| {
            let mut contents = serde_json::to_string_pretty(&module_schema(m))?;
            contents.push('\n');
            Ok(OutputFile {
                target: Target::JsonSchema,
                path: file_name(m),
                contents,
            })
        })
        .collect()
}

/// The schema's file name under `generated/jsonschema`.
pub fn file_name(module: &Module) -> String {
    format!("{}.schema.json", module.name)
}

/// The schema's `$id`.
pub fn schema_id(module: &Module) -> String {
    format!(
        "https://ipcspec.invalid/{}/{}/schema.json",
        module.name, module.version
    )
}

/// The `$defs` name of a message's envelope.
pub fn envelope_def(msg: &Message) -> String {
    format!("{}.envelope", msg.name)
}

/// The `$defs` name of a message's payload.
pub fn payload_def(msg: &Message) -> String {
    format!("{}.payload", msg.name)
}

/// A same-document reference to `$defs/<name>`, escaped as a JSON pointer in a URI
/// fragment.
pub fn def_ref(name: &str) -> String {
    let mut out = String::from("#/$defs/");
    for c in name.replace('~', "~0").replace('/', "~1").chars() {
        if c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// The complete schema document of a module.
pub fn module_schema(m: &Module) -> Value {
    let binary = is_binary(m);
    let env = &m.wire.envelope;
    let mut root = Map::new();
    root.insert("$schema".into(), json!(DIALECT));
    root.insert("$id".into(), json!(schema_id(m)));
    root.insert("$comment".into(), json!(banner(m)));
    root.insert("title".into(), json!(format!("{} {}", m.title, m.version)));
    let mut description = format!(
        "One message of the `{}` protocol: its envelope selects the message by `{}` (one `if`/`then` per message, so errors point into the message's own definition).",
        m.name, env.type_key
    );
    if binary {
        description.push_str(
            " The wire encoding is binary: this schema describes the decoded form {\"header\": header struct, \"payload\": payload struct}; lengths, tail counts and the checksum are checked by the binary codec, not here.",
        );
    }
    root.insert("description".into(), json!(description));
    root.insert("type".into(), json!("object"));

    let selector_values: Vec<Value> = m.messages.iter().map(|msg| type_value(m, msg)).collect();
    let type_names = json!({ "enum": selector_values });
    if binary {
        root.insert(
            "properties".into(),
            json!({ BINARY_HEADER_KEY: {
                "type": "object",
                "properties": { env.type_key.clone(): type_names },
                "required": [env.type_key],
            }}),
        );
        root.insert("required".into(), json!([BINARY_HEADER_KEY]));
    } else {
        root.insert(
            "properties".into(),
            json!({ env.type_key.clone(): type_names }),
        );
        root.insert("required".into(), json!([env.type_key]));
    }
    let selectors: Vec<Value> = m
        .messages
        .iter()
        .map(|msg| {
            let test = json!({
                "properties": { env.type_key.clone(): { "const": type_value(m, msg) } },
                "required": [env.type_key],
            });
            let test = if binary {
                json!({ "properties": { BINARY_HEADER_KEY: test }, "required": [BINARY_HEADER_KEY] })
            } else {
                test
            };
            json!({ "if": test, "then": { "$ref": def_ref(&envelope_def(msg)) } })
        })
        .collect();
    root.insert("allOf".into(), Value::Array(selectors));

    let mut defs = Map::new();
    for td in &m.types {
        defs.insert(td.name.clone(), type_def(m, td));
    }
    for msg in &m.messages {
        defs.insert(payload_def(msg), payload_schema(m, msg));
        defs.insert(envelope_def(msg), envelope_schema(m, msg));
    }
    root.insert("$defs".into(), Value::Object(defs));
    Value::Object(root)
}

/// The value of the type key: the wire name in JSON, the code in a binary header.
fn type_value(m: &Module, msg: &Message) -> Value {
    match (is_binary(m), msg.code) {
        (true, Some(code)) => int(code),
        _ => json!(msg.name),
    }
}

fn closed(m: &Module) -> bool {
    m.wire.unknown_keys == UnknownKeys::Reject
}

fn payload_schema(m: &Module, msg: &Message) -> Value {
    match &msg.payload {
        Some(ty) => with_description(&format!("Payload of `{}`.", msg.name), ty_schema(m, ty)),
        // Written as `{}`; read like any object under `unknownKeys: ignore`.
        None if closed(m) => json!({
            "description": format!("`{}` has no payload: always `{{}}`.", msg.name),
            "type": "object",
            "maxProperties": 0,
        }),
        None => json!({
            "description": format!("`{}` has no payload: written as `{{}}`; undeclared keys are ignored.", msg.name),
            "type": "object",
        }),
    }
}

fn envelope_schema(m: &Module, msg: &Message) -> Value {
    let env = &m.wire.envelope;
    let mut out = Map::new();
    out.insert("title".into(), json!(format!("{} envelope", msg.name)));
    out.insert("description".into(), json!(one_line(&msg.doc)));
    out.insert("type".into(), json!("object"));
    let mut props = Map::new();
    let mut required = Vec::new();
    if is_binary(m) {
        let mut fixed = Map::new();
        if let Some(code) = msg.code {
            fixed.insert(env.type_key.clone(), json!({ "const": int(code) }));
        }
        for (field, value) in env.magic.iter().chain(env.version.iter()) {
            fixed.insert(field.clone(), json!({ "const": int(*value) }));
        }
        if let (Some(field), Some(flags)) = (&env.flags, m.header_flags(msg)) {
            fixed.insert(field.clone(), json!({ "const": int(flags) }));
        }
        let header = match binary_header(m) {
            Some(id) => json!({ "$ref": def_ref(&m.ty(id).name), "properties": fixed }),
            None => json!({ "type": "object", "properties": fixed }),
        };
        props.insert(BINARY_HEADER_KEY.into(), header);
        props.insert(
            BINARY_PAYLOAD_KEY.into(),
            json!({ "$ref": def_ref(&payload_def(msg)) }),
        );
        required.extend([json!(BINARY_HEADER_KEY), json!(BINARY_PAYLOAD_KEY)]);
        out.insert("properties".into(), Value::Object(props));
        out.insert("required".into(), Value::Array(required));
        out.insert("additionalProperties".into(), json!(false));
        return Value::Object(out);
    }
    let id_ty = env
        .id
        .as_ref()
        .map_or(Ty::Prim(PrimitiveType::String), |(_, t)| t.clone());
    props.insert(env.type_key.clone(), json!({ "const": msg.name }));
    required.push(json!(env.type_key));
    if let Some((key, ty)) = &env.id {
        props.insert(key.clone(), ty_schema(m, ty));
        if !env.id_optional {
            required.push(json!(key));
        }
    }
    if let Some(key) = &env.timestamp {
        props.insert(key.clone(), prim_schema(m, PrimitiveType::Timestamp));
        if !env.timestamp_optional {
            required.push(json!(key));
        }
    }
    if msg.is_reply {
        if let Some(key) = &env.correlation_id {
            props.insert(key.clone(), ty_schema(m, &id_ty));
            if !env.correlation_optional {
                required.push(json!(key));
            }
        }
    }
    if let Some(key) = &env.payload {
        props.insert(key.clone(), json!({ "$ref": def_ref(&payload_def(msg)) }));
        required.push(json!(key));
    }
    out.insert("properties".into(), Value::Object(props));
    out.insert("required".into(), Value::Array(required));
    if closed(m) {
        out.insert("additionalProperties".into(), json!(false));
    }
    Value::Object(out)
}

fn type_def(m: &Module, td: &crate::ir::TypeDef) -> Value {
    let doc = one_line(&td.doc);
    match &td.kind {
        TypeKind::Struct(s) => {
            let mut out = Map::new();
            out.insert("description".into(), json!(doc));
            if let Some(layout) = &s.c_layout {
                out.insert(
                    "$comment".into(),
                    json!(format!(
                        "C layout: {} bytes, alignment {}{}; in a binary encoding these are the struct's bytes, this is its decoded JSON form.",
                        layout.size,
                        layout.align,
                        if layout.tail.is_empty() { String::new() } else { format!(", then the tail fields {}", layout.tail.join(", ")) }
                    )),
                );
            }
            out.extend(object_schema(m, s, None));
            Value::Object(out)
        }
        TypeKind::Enum(e) => json!({
            "description": doc,
            "type": "string",
            "enum": e.values.iter().map(|v| json!(v.wire)).collect::<Vec<_>>(),
        }),
        TypeKind::IntEnum(e) => json!({
            "description": doc,
            "type": "integer",
            "enum": e.values.iter().map(|v| int(v.value)).collect::<Vec<_>>(),
        }),
        TypeKind::Union(u) => json!({
            "description": doc,
            "oneOf": union_branches(m, u),
        }),
        TypeKind::Alias(a) => with_description(
            &doc,
            constrained(m, ty_schema(m, &a.ty), &a.ty, &a.constraints),
        ),
    }
}

/// `type`, `properties`, `required`, `additionalProperties` of a struct, with an extra
/// leading property (a union tag) when given.
fn object_schema(m: &Module, s: &Struct, tag: Option<(&str, &str)>) -> Map<String, Value> {
    let mut props = Map::new();
    let mut required = Vec::new();
    if let Some((key, value)) = tag {
        props.insert(key.into(), json!({ "const": value }));
        required.push(json!(key));
    }
    for f in &s.fields {
        let mut schema = field_schema(m, f);
        if let (Some(sum), Value::Object(map)) =
            (s.sums.iter().find(|x| x.field == f.wire), &mut schema)
        {
            // JSON Schema has no arithmetic: the rule travels as an annotation, and the
            // generated validators check it.
            map.insert(
                "x-ipcspec-sumOf".into(),
                json!({ "list": sum.list, "field": sum.item_field }),
            );
        }
        props.insert(f.wire.clone(), schema);
        if !f.optional {
            required.push(json!(f.wire));
        }
    }
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    out.insert("properties".into(), Value::Object(props));
    if !required.is_empty() {
        out.insert("required".into(), Value::Array(required));
    }
    // Each exactly-one-of group: one branch per field, requiring it; with `oneOf`, a
    // value with none of the fields or with several matches no branch or several.
    let mut groups: Vec<Value> = s
        .exactly_one_of
        .iter()
        .map(|group| {
            let branches: Vec<Value> = group.iter().map(|f| json!({ "required": [f] })).collect();
            json!({ "oneOf": branches })
        })
        .collect();
    match groups.len() {
        0 => {}
        1 => {
            if let Value::Object(group) = groups.remove(0) {
                out.extend(group);
            }
        }
        _ => {
            out.insert("allOf".into(), Value::Array(groups));
        }
    }
    if closed(m) {
        out.insert("additionalProperties".into(), json!(false));
    }
    out
}

fn union_branches(m: &Module, u: &Union) -> Vec<Value> {
    u.variants
        .iter()
        .map(|v| {
            let mut out = Map::new();
            out.insert("title".into(), json!(v.name));
            out.insert("description".into(), json!(one_line(&v.doc)));
            match (u.repr, &v.ty) {
                (UnionRepr::Internal, Some(ty)) => match resolve_struct(m, ty) {
                    Some(s) => out.extend(object_schema(m, s, Some((&u.tag, &v.wire)))),
                    None => {
                        // Not reachable for a validated catalogue: an internal variant is a struct.
                        out.insert(
                            "allOf".into(),
                            json!([
                                { "type": "object", "properties": { u.tag.clone(): { "const": v.wire } }, "required": [u.tag] },
                                ty_schema(m, ty),
                            ]),
                        );
                    }
                },
                (UnionRepr::Adjacent, Some(ty)) => {
                    let content = u.content.clone().unwrap_or_default();
                    out.insert("type".into(), json!("object"));
                    out.insert(
                        "properties".into(),
                        json!({ u.tag.clone(): { "const": v.wire }, content.clone(): ty_schema(m, ty) }),
                    );
                    out.insert("required".into(), json!([u.tag, content]));
                    if closed(m) {
                        out.insert("additionalProperties".into(), json!(false));
                    }
                }
                (_, None) => {
                    out.insert("type".into(), json!("object"));
                    out.insert("properties".into(), json!({ u.tag.clone(): { "const": v.wire } }));
                    out.insert("required".into(), json!([u.tag]));
                    if closed(m) {
                        out.insert("additionalProperties".into(), json!(false));
                    }
                }
            }
            Value::Object(out)
        })
        .collect()
}

fn resolve_struct<'m>(m: &'m Module, ty: &Ty) -> Option<&'m Struct> {
    let mut ty = ty;
    for _ in 0..64 {
        let Ty::Named(id) = ty else { return None };
        match &m.ty(*id).kind {
            TypeKind::Struct(s) => return Some(s),
            TypeKind::Alias(a) => ty = &a.ty,
            _ => return None,
        }
    }
    None
}

/// The primitive at the end of an alias chain, if any.
fn resolve_prim(m: &Module, ty: &Ty) -> Option<PrimitiveType> {
    let mut ty = ty;
    for _ in 0..64 {
        match ty {
            Ty::Prim(p) => return Some(*p),
            Ty::Named(id) => match &m.ty(*id).kind {
                TypeKind::Alias(a) => ty = &a.ty,
                _ => return None,
            },
            _ => return None,
        }
    }
    None
}

fn field_schema(m: &Module, f: &Field) -> Value {
    let schema = if f.padding {
        match &f.ty {
            Ty::Array(_, n) => {
                json!({ "type": "array", "items": { "const": 0 }, "minItems": n, "maxItems": n })
            }
            _ => json!({ "const": 0 }),
        }
    } else {
        constrained(m, ty_schema(m, &f.ty), &f.ty, &f.constraints)
    };
    let schema = if f.nullable { nullable(schema) } else { schema };
    with_description(&one_line(&f.doc), schema)
}

fn nullable(schema: Value) -> Value {
    if schema == Value::Bool(true) {
        return schema;
    }
    json!({ "anyOf": [schema, { "type": "null" }] })
}

/// Adds a description in front of a schema (`true` becomes `{"description": ...}`).
fn with_description(doc: &str, schema: Value) -> Value {
    let mut out = Map::new();
    if !doc.is_empty() {
        out.insert("description".into(), json!(doc));
    }
    match schema {
        Value::Object(map) => {
            for (k, v) in map {
                out.insert(k, v);
            }
        }
        Value::Bool(true) => {}
        other => return other,
    }
    Value::Object(out)
}

/// The schema of a type reference.
pub fn ty_schema(m: &Module, ty: &Ty) -> Value {
    match ty {
        Ty::Prim(p) => prim_schema(m, *p),
        Ty::Named(id) => json!({ "$ref": def_ref(&m.ty(*id).name) }),
        Ty::List(item) => json!({ "type": "array", "items": ty_schema(m, item) }),
        Ty::Map(item) => json!({ "type": "object", "additionalProperties": ty_schema(m, item) }),
        Ty::Array(item, n) => {
            json!({ "type": "array", "items": ty_schema(m, item), "minItems": n, "maxItems": n })
        }
    }
}

/// The schema of a primitive in this module's JSON wire form.
pub fn prim_schema(m: &Module, p: PrimitiveType) -> Value {
    use PrimitiveType as P;
    match p {
        P::Bool => json!({ "type": "boolean" }),
        P::I64 | P::U64 if m.wire.int64 == Int64Encoding::String => json!({
            "type": "string",
            "pattern": if p == P::I64 { I64_STRING_PATTERN } else { U64_STRING_PATTERN },
        }),
        P::F32 | P::F64 => json!({ "type": "number" }),
        P::String => json!({ "type": "string" }),
        P::Bytes => {
            json!({ "type": "string", "contentEncoding": "base64", "pattern": BASE64_PATTERN })
        }
        P::Uuid => json!({ "type": "string", "format": "uuid", "pattern": UUID_PATTERN }),
        P::Timestamp => {
            json!({ "type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN })
        }
        P::Duration => json!({ "type": "integer", "minimum": 0 }),
        P::Json => json!(true),
        P::Fd => json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX }),
        _ => match p.int_range() {
            Some((lo, hi)) => json!({ "type": "integer", "minimum": int(lo), "maximum": int(hi) }),
            None => json!({}),
        },
    }
}

/// `schema` narrowed by the constraints (siblings of a `$ref`, or merged into an inline
/// schema, replacing the width's own bounds).
fn constrained(m: &Module, schema: Value, ty: &Ty, k: &Constraints) -> Value {
    if k.is_empty() {
        return schema;
    }
    let Value::Object(mut out) = schema else {
        return schema;
    };
    let string_int = matches!(
        resolve_prim(m, ty),
        Some(PrimitiveType::I64 | PrimitiveType::U64)
    ) && m.wire.int64 == Int64Encoding::String;
    if string_int && (k.minimum.is_some() || k.maximum.is_some()) {
        let bounds: Vec<String> = [("minimum", k.minimum), ("maximum", k.maximum)]
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| format!("{name} {v}")))
            .collect();
        out.insert(
            "$comment".into(),
            json!(format!(
                "{} apply to the decimal value; JSON Schema cannot compare a string-encoded 64-bit integer.",
                bounds.join(", ")
            )),
        );
    } else {
        // Keep the tighter of the width's bound and the constraint.
        let current = |out: &Map<String, Value>, key: &str| out.get(key).and_then(Value::as_f64);
        if let Some(v) = k.minimum {
            if current(&out, "minimum").is_none_or(|w| v > w) {
                out.insert("minimum".into(), num(v));
            }
        }
        if let Some(v) = k.maximum {
            if current(&out, "maximum").is_none_or(|w| v < w) {
                out.insert("maximum".into(), num(v));
            }
        }
    }
    if let Some(v) = k.min_length {
        out.insert("minLength".into(), json!(v));
    }
    if let Some(v) = k.max_length {
        out.insert("maxLength".into(), json!(v));
    }
    if let Some(v) = &k.pattern {
        if out.contains_key("pattern") {
            // Two patterns (the type's and the constraint's): both must match.
            let all = out.entry("allOf").or_insert_with(|| json!([]));
            if let Value::Array(all) = all {
                all.push(json!({ "pattern": v }));
            }
        } else {
            out.insert("pattern".into(), json!(v));
        }
    }
    if let Some(v) = k.min_items {
        out.insert("minItems".into(), json!(v));
    }
    if let Some(v) = k.max_items {
        out.insert("maxItems".into(), json!(v));
    }
    Value::Object(out)
}

/// A constraint bound: an integer when it is one.
fn num(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// Prose on one line, for `description`s.
fn one_line(doc: &str) -> String {
    doc.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_escaped_json_pointers() {
        assert_eq!(def_ref("Tree"), "#/$defs/Tree");
        assert_eq!(def_ref("GET_TREE.payload"), "#/$defs/GET_TREE.payload");
        assert_eq!(def_ref("a/b~c d"), "#/$defs/a~1b~0c%20d");
    }

    #[test]
    fn bounds_print_as_integers_when_whole() {
        assert_eq!(num(1000.0), json!(1000));
        assert_eq!(num(0.5), json!(0.5));
        assert_eq!(int(i128::from(u64::MAX)), json!(u64::MAX));
    }
}
