//! TypeScript definitions: `<module>.ts` per catalogue, rendered with tera.
//!
//! The types describe exactly the JSON forms of `codegen/WIRE-MAPPING.md`: enums as
//! `export enum`, structs as interfaces (`key?: T` for optional, `T | null` for nullable),
//! unions as discriminated unions, 64-bit integers as `number` or `string` per
//! `wire.int64Encoding`, `json` as the recursive `JsonValue` (never `any`). The messages
//! become a discriminated union keyed by the envelope's type key, a map from message name
//! to payload type, one union per sending role and a handler map per receiving role.
//!
//! Binary catalogues have no JSON envelope: their message union describes the decoded
//! form, `{ type: name, payload, <the header's correlation, timestamp and flags fields> }`,
//! with the payload in its JSON form.
//!
//! Names derived here (`Message`, `PayloadOf`, `MessageType`, role unions and handler maps,
//! `JsonValue`, ...) give way to the catalogue's own names: each has a list of candidates
//! and takes the first one that is free, so the choice is deterministic.

use std::collections::BTreeSet;

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::shared::{
    constraints_text, engine, framing_text, hex_width, list_text, paragraphs, render, wrap,
};
use crate::ir::{
    ConstValue, Encoding, Field, Framing, Int64Encoding, Message, Module, PrimitiveType, Ty,
    TypeDef, TypeKind, UnionRepr, names,
};
use crate::output::{OutputFile, Target};

const TEMPLATE_NAME: &str = "module.ts";
const TEMPLATE: &str = include_str!("../../templates/module.ts.tera");

/// Width of comment text.
const WIDTH: usize = 92;

/// Largest integer a JavaScript number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: i128 = 9_007_199_254_740_991;

/// Global TypeScript types the generated code refers to; a catalogue type of the same
/// name would shadow them.
const GLOBALS_USED: &[&str] = &["Extract", "Promise"];

/// Emits `<module>.ts` for every module.
pub fn emit(modules: &[Module]) -> anyhow::Result<Vec<OutputFile>> {
    let tera = engine(TEMPLATE_NAME, TEMPLATE)?;
    modules
        .iter()
        .map(|module| {
            let context = TsModule::new(module)
                .with_context(|| format!("TypeScript of `{}`", module.name))?;
            Ok(OutputFile {
                target: Target::Ts,
                path: format!("{}.ts", module.name),
                contents: render(&tera, TEMPLATE_NAME, &context)?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Names.

/// Identifiers already used in the module, per TypeScript namespace.
#[derive(Debug, Default)]
struct Taken {
    types: BTreeSet<String>,
    values: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy)]
enum Space {
    /// A type (interface, alias).
    Type,
    /// A value (const).
    Value,
    /// An enum: a type and a value.
    Both,
}

impl Taken {
    fn is_free(&self, name: &str, space: Space) -> bool {
        match space {
            Space::Type => !self.types.contains(name),
            Space::Value => !self.values.contains(name),
            Space::Both => !self.types.contains(name) && !self.values.contains(name),
        }
    }

    fn insert(&mut self, name: &str, space: Space) {
        if matches!(space, Space::Type | Space::Both) {
            self.types.insert(name.to_owned());
        }
        if matches!(space, Space::Value | Space::Both) {
            self.values.insert(name.to_owned());
        }
    }

    /// The first free candidate, else the first one with `_` appended until it is free.
    fn pick(&mut self, candidates: &[String], space: Space) -> String {
        let mut chosen = candidates
            .iter()
            .find(|c| self.is_free(c, space))
            .cloned()
            .unwrap_or_else(|| candidates.first().cloned().unwrap_or_default());
        while !self.is_free(&chosen, space) {
            chosen.push('_');
        }
        self.insert(&chosen, space);
        chosen
    }
}

/// Derived names of one module.
#[derive(Debug, Serialize)]
struct Names {
    json_value: String,
    no_payload: String,
    message_type: String,
    message_types: String,
    message_codes: String,
    payload_of: String,
    message: String,
    message_of: String,
    error_enum: String,
}

// ---------------------------------------------------------------------------------------
// Context.

#[derive(Debug, Serialize)]
struct TsModule {
    banner: String,
    intro: Vec<String>,
    names: Names,
    constants: Vec<Const>,
    decls: Vec<Decl>,
    messages: Option<Messages>,
}

#[derive(Debug, Serialize)]
struct Const {
    doc: Vec<String>,
    name: String,
    value: String,
}

/// A declaration: `enum` (members `name = value`), `interface` (members `name: value`),
/// `union` (the alternatives are the members' `value`) or `alias` (`= ty`).
#[derive(Debug, Serialize)]
struct Decl {
    doc: Vec<String>,
    kind: &'static str,
    name: String,
    members: Vec<DeclMember>,
    ty: String,
}

#[derive(Debug, Serialize)]
struct DeclMember {
    doc: Vec<String>,
    name: String,
    optional: bool,
    value: String,
}

impl DeclMember {
    fn plain(name: String, optional: bool, value: String) -> DeclMember {
        DeclMember {
            doc: Vec::new(),
            name,
            optional,
            value,
        }
    }
}

#[derive(Debug, Serialize)]
struct Messages {
    type_doc: Vec<String>,
    names: Vec<String>,
    codes: Vec<DeclMember>,
    payloads: Vec<DeclMember>,
    message_doc: Vec<String>,
    type_key: String,
    alternatives: Vec<Alternative>,
    sent: Vec<RoleUnion>,
    handlers: Vec<Handlers>,
}

#[derive(Debug, Serialize)]
struct Alternative {
    doc: Vec<String>,
    fields: Vec<DeclMember>,
}

#[derive(Debug, Serialize)]
struct RoleUnion {
    doc: Vec<String>,
    name: String,
    names: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Handlers {
    doc: Vec<String>,
    name: String,
    entries: Vec<Handler>,
}

#[derive(Debug, Serialize)]
struct Handler {
    doc: Vec<String>,
    key: String,
    payload: String,
    message: String,
    returns: String,
}

/// Text that is safe inside a JSDoc comment.
fn doc(text: &str) -> Vec<String> {
    wrap(&text.replace("*/", "*\\/"), WIDTH)
}

/// A JSON (and so TypeScript) string literal.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

impl TsModule {
    fn new(module: &Module) -> anyhow::Result<TsModule> {
        let mut taken = Taken::default();
        for t in &module.types {
            let space = match t.kind {
                TypeKind::Enum(_) | TypeKind::IntEnum(_) => Space::Both,
                _ => Space::Type,
            };
            taken.insert(&t.idents.ts, space);
        }
        for m in &module.machines {
            taken.insert(&m.idents.ts, Space::Both);
        }
        if let Some(shadow) = GLOBALS_USED.iter().find(|g| taken.types.contains(**g)) {
            bail!(
                "the catalogue type `{shadow}` would shadow TypeScript's global `{shadow}`, which the generated module uses; rename it"
            );
        }
        let upper = names::rust_type(&module.name);
        let shouty = names::c_macro(&[&module.name]);
        let candidates = |names: &[&str]| -> Vec<String> {
            names
                .iter()
                .map(|n| n.replace("{MM}", &shouty).replace("{M}", &upper))
                .collect()
        };
        let error_enum = if module.errors.codes.is_empty() {
            String::new()
        } else {
            taken.pick(
                &[
                    module.errors.enum_name.clone(),
                    format!("{upper}ErrorCode"),
                    "ErrorCodes".into(),
                ],
                Space::Both,
            )
        };
        let constants = constants(module, &mut taken);
        let mut names = Names {
            json_value: taken.pick(
                &candidates(&["JsonValue", "Json", "{M}JsonValue"]),
                Space::Type,
            ),
            no_payload: taken.pick(
                &candidates(&["NoPayload", "EmptyPayload", "{M}NoPayload"]),
                Space::Type,
            ),
            message_type: taken.pick(
                &candidates(&["MessageType", "MessageName", "{M}MessageType"]),
                Space::Type,
            ),
            message_types: taken.pick(
                &candidates(&["MESSAGE_TYPES", "MESSAGE_NAMES", "{MM}_MESSAGE_TYPES"]),
                Space::Value,
            ),
            message_codes: String::new(),
            payload_of: taken.pick(
                &candidates(&["PayloadOf", "PayloadMap", "{M}PayloadOf"]),
                Space::Type,
            ),
            message: taken.pick(
                &candidates(&["Message", "AnyMessage", "{M}Message"]),
                Space::Type,
            ),
            message_of: taken.pick(
                &candidates(&["MessageOf", "MessageWithType", "{M}MessageOf"]),
                Space::Type,
            ),
            error_enum,
        };
        if module.messages.iter().any(|m| m.code.is_some()) {
            names.message_codes = taken.pick(
                &candidates(&["MESSAGE_CODES", "MESSAGE_NUMBERS", "{MM}_MESSAGE_CODES"]),
                Space::Value,
            );
        }

        let mut decls = Vec::new();
        for t in &module.types {
            decls.push(type_decl(module, &names, t)?);
        }
        for m in &module.machines {
            decls.push(Decl {
                doc: paragraphs(vec![
                    doc(&format!(
                        "States of the `{}` state machine (held by {}; initial state {}).",
                        m.name,
                        list_text(&m.roles),
                        m.initial
                    )),
                    doc(&m.doc),
                ]),
                kind: "enum",
                name: m.idents.ts.clone(),
                members: m
                    .states
                    .iter()
                    .map(|s| DeclMember {
                        doc: doc(&format!(
                            "{}{}",
                            s.doc.trim(),
                            if s.terminal { " (Terminal.)" } else { "" }
                        )),
                        name: s.idents.ts.clone(),
                        optional: false,
                        value: quote(&s.value),
                    })
                    .collect(),
                ty: String::new(),
            });
        }
        if !module.errors.codes.is_empty() {
            let numeric = module.errors.codes.iter().all(|e| e.code.is_some());
            decls.push(Decl {
                doc: doc(if numeric {
                    "Error codes of the protocol, by number."
                } else {
                    "Error codes of the protocol: each value is the code's symbolic name as it travels in JSON."
                }),
                kind: "enum",
                name: names.error_enum.clone(),
                members: module
                    .errors
                    .codes
                    .iter()
                    .map(|e| DeclMember {
                        doc: doc(&e.doc),
                        name: names::ts_member(&e.name),
                        optional: false,
                        value: match e.code {
                            Some(code) if numeric => code.to_string(),
                            _ => quote(&e.name),
                        },
                    })
                    .collect(),
                ty: String::new(),
            });
        }

        let messages = if module.messages.is_empty() {
            None
        } else {
            Some(messages(module, &names, &mut taken)?)
        };
        Ok(TsModule {
            banner: super::banner(module),
            intro: intro(module),
            names,
            constants,
            decls,
            messages,
        })
    }
}

fn intro(module: &Module) -> Vec<String> {
    let int64 = match module.wire.int64 {
        Int64Encoding::Number => "64-bit integers are JSON numbers (`number`), exact up to 2^53.",
        Int64Encoding::String => {
            "64-bit integers are decimal strings in JSON (`string`), so they stay exact."
        }
    };
    let mut parts = vec![
        doc(&format!(
            "{} (`{}`), protocol version {}.",
            module.title, module.name, module.version
        )),
        doc(&module.description),
        doc(&framing_text(module)),
    ];
    if module.wire.encoding == Encoding::BinaryLe {
        parts.push(doc(
            "The types below describe the JSON form of each value (as in the documentation and the conformance vectors) and, for messages, the decoded form; the bytes on the wire are described by the C header.",
        ));
    }
    parts.push(doc(int64));
    paragraphs(parts)
}

// ---------------------------------------------------------------------------------------
// Types.

/// The TypeScript type of `ty` in JSON form.
fn ts_type(module: &Module, names: &Names, ty: &Ty) -> String {
    match ty {
        Ty::Prim(p) => match p {
            PrimitiveType::Bool => "boolean".into(),
            PrimitiveType::I64 | PrimitiveType::U64 => match module.wire.int64 {
                Int64Encoding::Number => "number".into(),
                Int64Encoding::String => "string".into(),
            },
            PrimitiveType::String
            | PrimitiveType::Bytes
            | PrimitiveType::Uuid
            | PrimitiveType::Timestamp => "string".into(),
            PrimitiveType::Json => names.json_value.clone(),
            _ => "number".into(),
        },
        Ty::Named(id) => module.ty(*id).idents.ts.clone(),
        Ty::List(inner) | Ty::Array(inner, _) => format!("{}[]", ts_type(module, names, inner)),
        Ty::Map(inner) => format!("{{ [key: string]: {} }}", ts_type(module, names, inner)),
    }
}

/// What the JSON form of `ty` is, when its TypeScript type does not say it all.
fn form_note(module: &Module, ty: &Ty) -> Option<String> {
    Some(match ty {
        Ty::Prim(PrimitiveType::I64 | PrimitiveType::U64)
            if module.wire.int64 == Int64Encoding::String =>
        {
            "A 64-bit integer as a decimal string.".into()
        }
        Ty::Prim(PrimitiveType::Bytes) => "Bytes, base64-encoded (RFC 4648, padded).".into(),
        Ty::Prim(PrimitiveType::Uuid) => "A UUID, hyphenated hexadecimal.".into(),
        Ty::Prim(PrimitiveType::Timestamp) => "An RFC 3339 timestamp.".into(),
        Ty::Prim(PrimitiveType::Duration) => "A duration in milliseconds.".into(),
        Ty::Prim(PrimitiveType::Fd) => {
            "A file descriptor: its index among the descriptors received with the frame.".into()
        }
        Ty::Array(_, len) => format!("Exactly {len} elements."),
        _ => return None,
    })
}

fn field_member(module: &Module, names: &Names, field: &Field) -> DeclMember {
    let mut text = vec![field.doc.trim().to_owned()];
    if field.padding && !field.doc.to_lowercase().contains("zero") {
        text.push("Padding: must be zero.".into());
    }
    text.extend(form_note(module, &field.ty));
    text.extend(constraints_text(&field.constraints));
    text.retain(|t| !t.is_empty());
    let mut value = ts_type(module, names, &field.ty);
    if field.nullable {
        value.push_str(" | null");
    }
    DeclMember {
        doc: doc(&text.join(" ")),
        name: field.idents.ts.clone(),
        optional: field.optional,
        value,
    }
}

fn type_decl(module: &Module, names: &Names, t: &TypeDef) -> anyhow::Result<Decl> {
    let mut decl = Decl {
        doc: doc(&t.doc),
        kind: "alias",
        name: t.idents.ts.clone(),
        members: Vec::new(),
        ty: String::new(),
    };
    match &t.kind {
        TypeKind::Struct(s) => {
            if s.fields.is_empty() {
                decl.ty = names.no_payload.clone();
            } else {
                decl.kind = "interface";
                decl.members = s
                    .fields
                    .iter()
                    .map(|f| field_member(module, names, f))
                    .collect();
            }
            if let Some(layout) = &s.c_layout {
                let tail = if layout.tail.is_empty() {
                    ""
                } else {
                    ", followed by its tail fields"
                };
                decl.doc = paragraphs(vec![
                    decl.doc,
                    doc(&format!(
                        "In binary form: a C-layout struct of {} bytes (see the C header){tail}.",
                        layout.size
                    )),
                ]);
            }
        }
        TypeKind::Enum(e) => {
            decl.kind = "enum";
            decl.members = e
                .values
                .iter()
                .map(|v| DeclMember {
                    doc: doc(&v.doc),
                    name: v.idents.ts.clone(),
                    optional: false,
                    value: quote(&v.wire),
                })
                .collect();
        }
        TypeKind::IntEnum(e) => {
            decl.kind = "enum";
            decl.doc = paragraphs(vec![
                decl.doc,
                doc(&format!("In binary form: {}.", e.repr.name())),
            ]);
            decl.members = e
                .values
                .iter()
                .map(|v| DeclMember {
                    doc: doc(&v.doc),
                    name: v.idents.ts.clone(),
                    optional: false,
                    value: v.value.to_string(),
                })
                .collect();
        }
        TypeKind::Union(u) => {
            decl.kind = "union";
            let tag = names::ts_key(&u.tag);
            decl.members = u
                .variants
                .iter()
                .map(|v| {
                    let tag_value = quote(&v.wire);
                    let value = match (u.repr, &v.ty, &u.content) {
                        (UnionRepr::Internal, Some(ty), _) => format!(
                            "({{ {tag}: {tag_value} }} & {})",
                            ts_type(module, names, ty)
                        ),
                        (UnionRepr::Adjacent, Some(ty), Some(content)) => format!(
                            "{{ {tag}: {tag_value}; {}: {} }}",
                            names::ts_key(content),
                            ts_type(module, names, ty)
                        ),
                        (UnionRepr::Adjacent, Some(_), None) => {
                            bail!("adjacent union `{}` has no content key", t.name)
                        }
                        (_, None, _) => format!("{{ {tag}: {tag_value} }}"),
                    };
                    Ok(DeclMember {
                        doc: doc(&v.doc),
                        name: v.name.clone(),
                        optional: false,
                        value,
                    })
                })
                .collect::<anyhow::Result<_>>()?;
        }
        TypeKind::Alias(a) => {
            decl.ty = ts_type(module, names, &a.ty);
            let notes: Vec<String> = form_note(module, &a.ty)
                .into_iter()
                .chain(constraints_text(&a.constraints))
                .collect();
            if !notes.is_empty() {
                decl.doc = paragraphs(vec![decl.doc, doc(&notes.join(" "))]);
            }
        }
    }
    Ok(decl)
}

fn constants(module: &Module, taken: &mut Taken) -> Vec<Const> {
    module
        .constants
        .iter()
        .map(|k| {
            let name = taken.pick(&[names::ts_member(&k.name)], Space::Value);
            let mut text = k.doc.trim().to_owned();
            if name != k.name {
                text.push_str(&format!(" (`{}` in the catalogue.)", k.name));
            }
            let value = match &k.value {
                ConstValue::Int(v) if v.abs() <= MAX_SAFE_INTEGER => {
                    if let Some(t) = k.text.as_deref().filter(|t| t.chars().count() == 1) {
                        text.push_str(&format!(" (The character '{t}'.)"));
                    }
                    let sign = if *v < 0 { "-" } else { "" };
                    match hex_width(k.text.as_deref()) {
                        Some(width) => format!("{sign}0x{:0width$X}", v.unsigned_abs()),
                        None => v.to_string(),
                    }
                }
                ConstValue::Int(v) => {
                    text.push_str(&format!(
                        " (A {} written as a decimal string: the value is beyond 2^53, which a JavaScript number cannot hold exactly; use `BigInt({name})` to compute with it.)",
                        k.ty.name()
                    ));
                    quote(&v.to_string())
                }
                ConstValue::Float(v) => format!("{v}"),
                ConstValue::Bool(b) => b.to_string(),
                ConstValue::Str(s) => quote(s),
            };
            Const {
                doc: doc(&text),
                name,
                value,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Messages.

fn payload_type(module: &Module, names: &Names, msg: &Message) -> String {
    match &msg.payload {
        Some(ty) => ts_type(module, names, ty),
        None => names.no_payload.clone(),
    }
}

/// The doc comment of the message union, and the keys of the type and the payload.
fn envelope_text(module: &Module, names: &Names) -> (String, String, String) {
    let env = &module.wire.envelope;
    if let Framing::BinaryHeader { header, .. } = module.wire.framing {
        let header = &module.ty(header).name;
        let carried: Vec<String> = [&env.correlation_id, &env.timestamp, &env.flags]
            .into_iter()
            .flatten()
            .map(|m| format!("`{m}`"))
            .collect();
        let computed: Vec<String> = [
            env.magic.as_ref().map(|m| &m.0),
            env.version.as_ref().map(|m| &m.0),
            env.length.as_ref(),
            env.checksum.as_ref().map(|m| &m.0),
        ]
        .into_iter()
        .flatten()
        .map(|m| format!("`{m}`"))
        .collect();
        let mut text = format!(
            "A decoded message of this binary protocol (not its bytes), discriminated by `type`: `type` is the message name (the `{header}` field `{}` carries its code, see `{}`) and `payload` the payload in its JSON form",
            env.type_key, names.message_codes
        );
        if !carried.is_empty() {
            text.push_str(&format!(
                "; {} are the `{header}` fields of the same names",
                list_text(&carried)
            ));
        }
        text.push('.');
        if !computed.is_empty() {
            text.push_str(&format!(
                " The codec computes the other header fields ({}).",
                list_text(&computed)
            ));
        }
        return (text, "type".into(), "payload".into());
    }
    let payload = env.payload.clone().unwrap_or_else(|| "payload".into());
    let mut text = format!(
        "A message: one JSON object, discriminated by `{}`. `{payload}` is the payload (`{{}}` for a message without one)",
        env.type_key
    );
    if let Some((id, _)) = &env.id {
        let optional = if env.id_optional { " (optional)" } else { "" };
        text.push_str(&format!("; `{id}` is the message id{optional}"));
    }
    if let Some(ts) = &env.timestamp {
        let optional = if env.timestamp_optional {
            " (optional)"
        } else {
            ""
        };
        text.push_str(&format!("; `{ts}` is the RFC 3339 send time{optional}"));
    }
    if let Some(c) = &env.correlation_id {
        let presence = if env.correlation_optional {
            "optional"
        } else {
            "required"
        };
        text.push_str(&format!(
            "; `{c}` is the id of the message a reply answers, {presence} on replies and absent from other messages"
        ));
    }
    text.push('.');
    (text, env.type_key.clone(), payload)
}

fn messages(module: &Module, names: &Names, taken: &mut Taken) -> anyhow::Result<Messages> {
    let env = &module.wire.envelope;
    let binary = matches!(module.wire.framing, Framing::BinaryHeader { .. });
    let upper = names::rust_type(&module.name);
    let (message_doc, type_key, payload_key) = envelope_text(module, names);

    let header_field_type = |name: &str| -> String {
        if let Framing::BinaryHeader { header, .. } = module.wire.framing {
            if let TypeKind::Struct(s) = &module.ty(header).kind {
                if let Some(f) = s.fields.iter().find(|f| f.wire == name) {
                    return ts_type(module, names, &f.ty);
                }
            }
        }
        "number".into()
    };
    let id_type = env
        .id
        .as_ref()
        .map_or_else(|| "string".to_owned(), |(_, ty)| ts_type(module, names, ty));

    let mut alternatives = Vec::new();
    for msg in &module.messages {
        let mut fields = vec![
            DeclMember::plain(names::ts_key(&type_key), false, quote(&msg.name)),
            DeclMember::plain(
                names::ts_key(&payload_key),
                false,
                payload_type(module, names, msg),
            ),
        ];
        if binary {
            for member in [&env.correlation_id, &env.timestamp, &env.flags]
                .into_iter()
                .flatten()
            {
                if member == &type_key || member == &payload_key {
                    bail!(
                        "the header field `{member}` clashes with the decoded message's `{member}` key"
                    );
                }
                fields.push(DeclMember::plain(
                    names::ts_key(member),
                    false,
                    header_field_type(member),
                ));
            }
        } else {
            if let Some((id, _)) = &env.id {
                fields.push(DeclMember::plain(
                    names::ts_key(id),
                    env.id_optional,
                    id_type.clone(),
                ));
            }
            if let Some(ts) = &env.timestamp {
                fields.push(DeclMember::plain(
                    names::ts_key(ts),
                    env.timestamp_optional,
                    "string".into(),
                ));
            }
            if let (Some(c), true) = (&env.correlation_id, msg.is_reply) {
                fields.push(DeclMember::plain(
                    names::ts_key(c),
                    env.correlation_optional,
                    id_type.clone(),
                ));
            }
        }
        alternatives.push(Alternative {
            doc: doc(&message_text(msg)),
            fields,
        });
    }

    let mut sent = Vec::new();
    for role in &module.roles {
        let names_sent: Vec<String> = module.sent_by(&role.name).map(|m| quote(&m.name)).collect();
        if names_sent.is_empty() {
            continue;
        }
        let role_type = names::rust_type(&role.name);
        let name = taken.pick(
            &[
                format!("{role_type}Message"),
                format!("{role_type}Outbound"),
                format!("{upper}{role_type}Message"),
            ],
            Space::Type,
        );
        sent.push(RoleUnion {
            doc: doc(&format!("The messages the `{}` role sends.", role.name)),
            name,
            names: names_sent,
        });
    }

    let mut handlers = Vec::new();
    for role in &module.roles {
        let received: Vec<&Message> = module.received_by(&role.name).collect();
        if received.is_empty() {
            continue;
        }
        let role_type = names::rust_type(&role.name);
        let name = taken.pick(
            &[
                format!("{role_type}Handlers"),
                format!("{role_type}MessageHandlers"),
                format!("{upper}{role_type}Handlers"),
            ],
            Space::Type,
        );
        let entries = received
            .iter()
            .map(|msg| {
                let reply = msg
                    .reply
                    .as_deref()
                    .and_then(|r| module.message(r))
                    .filter(|r| r.payload.is_some());
                let returns = match reply {
                    Some(r) => {
                        let p = payload_type(module, names, r);
                        format!("{p} | void | Promise<{p} | void>")
                    }
                    None => "void | Promise<void>".into(),
                };
                let mut text = format!("{}: {}", msg.name, first_sentence(&msg.doc));
                if let Some(r) = reply {
                    text.push_str(&format!(
                        " May return the payload of the reply, {}.",
                        r.name
                    ));
                }
                Handler {
                    doc: doc(&text),
                    key: names::ts_key(&msg.name),
                    payload: payload_type(module, names, msg),
                    message: format!("{}<{}>", names.message_of, quote(&msg.name)),
                    returns,
                }
            })
            .collect();
        handlers.push(Handlers {
            doc: doc(&format!(
                "Handlers for every message the `{}` role receives. Each gets the payload and the whole message; the handler of a request may return the payload of its reply.",
                role.name
            )),
            name,
            entries,
        });
    }

    let type_doc = if binary {
        "The name of every message: the value of `type` in a decoded message.".to_owned()
    } else {
        format!(
            "The name of every message: the value of the envelope's `{}` key.",
            env.type_key
        )
    };
    Ok(Messages {
        type_doc: doc(&type_doc),
        names: module.messages.iter().map(|m| quote(&m.name)).collect(),
        codes: module
            .messages
            .iter()
            .filter_map(|m| {
                m.code
                    .map(|code| DeclMember::plain(names::ts_key(&m.name), false, code.to_string()))
            })
            .collect(),
        payloads: module
            .messages
            .iter()
            .map(|m| {
                DeclMember::plain(
                    names::ts_key(&m.name),
                    false,
                    payload_type(module, names, m),
                )
            })
            .collect(),
        message_doc: doc(&message_doc),
        type_key: names::ts_key(&type_key),
        alternatives,
        sent,
        handlers,
    })
}

fn message_text(msg: &Message) -> String {
    let mut text = format!("{}: {}", msg.name, msg.doc.trim());
    text.push_str(&format!(
        " Sent by {} to {}.",
        list_text(&msg.from),
        list_text(&msg.to)
    ));
    if let Some(reply) = &msg.reply {
        text.push_str(&format!(" Answered by {reply}."));
    }
    text
}

/// The first sentence of `text` (up to the first `. ` that does not end an abbreviation
/// such as `e.g.`), or all of it.
fn first_sentence(text: &str) -> String {
    let text = text.trim();
    let end = text.match_indices(". ").map(|(i, _)| i).find(|&i| {
        let word = text[..i].rsplit(' ').next().unwrap_or("");
        !matches!(word, "e.g" | "i.e" | "etc" | "vs" | "cf") && word.chars().count() > 1
    });
    match end {
        Some(end) => text[..=end].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_free_candidate() {
        let mut taken = Taken::default();
        taken.insert("MessageType", Space::Both);
        taken.insert("Message", Space::Type);
        let candidates = ["MessageType".to_owned(), "MessageName".to_owned()];
        assert_eq!(taken.pick(&candidates, Space::Type), "MessageName");
        assert_eq!(taken.pick(&candidates, Space::Type), "MessageType_");
        assert_eq!(taken.pick(&["Message".into()], Space::Value), "Message");
        assert_eq!(taken.pick(&["Message".into()], Space::Both), "Message_");
    }

    #[test]
    fn first_sentences() {
        assert_eq!(first_sentence("One. Two."), "One.");
        assert_eq!(first_sentence("e.g. this"), "e.g. this");
        assert_eq!(first_sentence("Use e.g. this. Then."), "Use e.g. this.");
    }
}
