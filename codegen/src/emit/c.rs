//! C headers: `<module>.h` per catalogue, rendered with tera from a context built here.
//!
//! Every catalogue gets a header. It carries the constants, integer and string enums,
//! message names or codes, error codes and state values as macros; C-layout structs as
//! `struct Name { ... }` with `typedef struct Name Name;` and a static assertion of every
//! size and offset; and ioctl request macros built with `<linux/ioctl.h>`, each asserted
//! equal to the code the IR computed. Types C cannot express (record structs, unions,
//! aliases) are only listed in a comment.
//!
//! The template only lays text out: every name, literal and comment line is prepared
//! here from the IR; the text helpers it shares with the TypeScript emitter are in
//! [`crate::emit::shared`].

use std::collections::BTreeMap;

use anyhow::{Context as _, anyhow, bail};
use serde::Serialize;

use crate::emit::shared::{
    constraints_text, engine, framing_text, hex_width, list_text, paragraphs, render, wrap,
    wrap_item,
};
use crate::ir::{
    ConstValue, Field, Framing, IoctlDirection, Module, PrimitiveType, Struct, Trigger, Ty,
    TypeDef, TypeId, TypeKind, names,
};
use crate::output::{OutputFile, Target};

const TEMPLATE_NAME: &str = "c_header.h";
const TEMPLATE: &str = include_str!("../../templates/c_header.h.tera");

/// Width of comment text (the ` * ` prefix comes on top).
const WIDTH: usize = 92;

/// Emits `<module>.h` for every module.
pub fn emit(modules: &[Module]) -> anyhow::Result<Vec<OutputFile>> {
    let tera = engine(TEMPLATE_NAME, TEMPLATE)?;
    modules
        .iter()
        .map(|module| {
            let context =
                header(module).with_context(|| format!("C header of `{}`", module.name))?;
            Ok(OutputFile {
                target: Target::C,
                path: format!("{}.h", module.name),
                contents: render(&tera, TEMPLATE_NAME, &context)?,
            })
        })
        .collect()
}

/// The C-layout struct `id`, if it is one.
fn c_struct(module: &Module, id: TypeId) -> Option<&Struct> {
    match &module.ty(id).kind {
        TypeKind::Struct(s) if s.c_layout.is_some() => Some(s),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// The template context.

#[derive(Debug, Serialize)]
struct Header {
    banner: String,
    file: String,
    guard: String,
    intro: Vec<String>,
    includes: Vec<Include>,
    needs_assert: bool,
    constants: Vec<Define>,
    int_enums: Vec<Group>,
    string_enums: Vec<Group>,
    messages: Option<Group>,
    errors: Option<Group>,
    machines: Vec<Group>,
    json_only: Vec<String>,
    structs: Vec<CStruct>,
    ioctls: Vec<CIoctl>,
}

#[derive(Debug, Serialize)]
struct Include {
    path: &'static str,
    why: &'static str,
}

/// `#define name value` with its comment.
#[derive(Debug, Serialize)]
struct Define {
    doc: Vec<String>,
    name: String,
    value: String,
    /// The catalogue's own spelling, defined as an alias of `name` unless another
    /// header already defined it (seed code uses `IPC_MAGIC`, not `VEXFS_IPC_MAGIC`).
    alias: Option<String>,
}

/// Macros that belong together (the values of one enum), under one comment.
#[derive(Debug, Serialize)]
struct Group {
    doc: Vec<String>,
    defines: Vec<Define>,
}

#[derive(Debug, Serialize)]
struct CStruct {
    doc: Vec<String>,
    name: String,
    size: u64,
    members: Vec<Member>,
}

#[derive(Debug, Serialize)]
struct Member {
    doc: Vec<String>,
    decl: String,
    name: String,
    offset: u64,
}

#[derive(Debug, Serialize)]
struct CIoctl {
    doc: Vec<String>,
    name: String,
    expr: String,
    request: String,
}

/// Text that is safe inside a C block comment.
fn comment_safe(text: &str) -> String {
    text.replace("*/", "* /")
        .replace("/*", "/ *")
        .replace("??", "? ?")
}

fn doc(text: &str) -> Vec<String> {
    wrap(&comment_safe(text), WIDTH)
}

fn header(module: &Module) -> anyhow::Result<Header> {
    let c_structs: Vec<(TypeId, &TypeDef, &Struct)> = module
        .types
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match &t.kind {
            TypeKind::Struct(s) if s.c_layout.is_some() => Some((TypeId(i), t, s)),
            _ => None,
        })
        .collect();
    let mut includes = vec![];
    if !c_structs.is_empty() {
        includes.push(Include {
            path: "stddef.h",
            why: "offsetof, for the layout assertions",
        });
    }
    includes.push(Include {
        path: "stdint.h",
        why: "exact-width integer types",
    });
    if !module.ioctls.is_empty() {
        includes.push(Include {
            path: "linux/ioctl.h",
            why: "_IO, _IOR, _IOW, _IOWR",
        });
    }

    let json_only: Vec<String> = module
        .types
        .iter()
        .filter_map(|t| {
            let kind = match &t.kind {
                TypeKind::Struct(s) if s.c_layout.is_none() => "record struct",
                TypeKind::Union(_) => "tagged union",
                TypeKind::Alias(_) => "alias",
                _ => return None,
            };
            Some(format!("{} ({kind})", t.name))
        })
        .collect();
    let json_only = if json_only.is_empty() {
        Vec::new()
    } else {
        wrap(&comment_safe(&json_only.join(", ")), WIDTH - 2)
            .into_iter()
            .map(|l| format!("  {l}"))
            .collect()
    };

    let context = Header {
        banner: comment_safe(&super::banner(module)),
        file: format!("{}.h", module.name),
        guard: module.idents.c_guard.clone(),
        intro: intro(module),
        includes,
        needs_assert: !c_structs.is_empty() || !module.ioctls.is_empty(),
        constants: constants(module),
        int_enums: int_enums(module),
        string_enums: string_enums(module),
        messages: messages(module)?,
        errors: errors(module),
        machines: machines(module),
        json_only,
        structs: c_structs
            .iter()
            .map(|(id, def, s)| c_struct_context(module, *id, def, s))
            .collect::<anyhow::Result<_>>()?,
        ioctls: module
            .ioctls
            .iter()
            .map(|io| ioctl(module, io))
            .collect::<anyhow::Result<_>>()?,
    };
    check_collisions(module, &context)?;
    Ok(context)
}

fn intro(module: &Module) -> Vec<String> {
    let mut parts = vec![
        doc(&format!(
            "{} (`{}`), protocol version {}.",
            module.title, module.name, module.version
        )),
        doc(&module.description),
        doc(&framing_text(module)),
    ];
    let env = &module.wire.envelope;
    if matches!(module.wire.framing, Framing::BinaryHeader { .. }) {
        parts.push(doc(&format!(
            "The header field `{}` holds the message code (the {}_MSG_* macros). Multi-byte fields are little-endian on the wire; the structs below describe them in host order, so they can be used as they are on little-endian hosts.",
            env.type_key, module.idents.c_prefix
        )));
    } else {
        let mut keys = vec![format!(
            "\"{}\" (the message name, one of the {}_MSG_* macros)",
            env.type_key, module.idents.c_prefix
        )];
        if let Some(p) = &env.payload {
            keys.push(format!("\"{p}\" (the payload)"));
        }
        if let Some((id, _)) = &env.id {
            keys.push(format!("\"{id}\" (the message id)"));
        }
        if let Some(t) = &env.timestamp {
            keys.push(format!("\"{t}\" (the RFC 3339 send time)"));
        }
        if let Some(c) = &env.correlation_id {
            keys.push(format!("\"{c}\" (the id of the message a reply answers)"));
        }
        parts.push(doc(&format!(
            "Every message is one JSON object with the keys {}. This header carries the protocol's names and numbers for C programs that read or write that JSON.",
            list_text(&keys)
        )));
    }
    paragraphs(parts)
}

// ---------------------------------------------------------------------------------------
// Literals.

/// The C spelling of an integer of type `prim`, keeping the hexadecimal form when the
/// catalogue wrote it so (`0x56455849u`, `UINT64_C(18446744073709551615)`, `(-5)`).
fn int_literal(prim: PrimitiveType, value: i128, text: Option<&str>) -> String {
    let magnitude = value.unsigned_abs();
    let digits = match hex_width(text) {
        Some(width) => format!("0x{magnitude:0width$X}"),
        None => magnitude.to_string(),
    };
    let negative = value < 0;
    match prim {
        PrimitiveType::U8 | PrimitiveType::U16 | PrimitiveType::U32 => format!("{digits}u"),
        PrimitiveType::U64 => format!("UINT64_C({digits})"),
        PrimitiveType::I64 if value == i128::from(i64::MIN) => {
            "(-INT64_C(9223372036854775807) - 1)".into()
        }
        PrimitiveType::I64 if negative => format!("(-INT64_C({digits}))"),
        PrimitiveType::I64 => format!("INT64_C({digits})"),
        _ if value == i128::from(i32::MIN) => "(-2147483647 - 1)".into(),
        _ if negative => format!("(-{digits})"),
        _ => digits,
    }
}

/// A code of no declared width: `int` when it fits, else a 64-bit literal.
fn code_literal(code: i128) -> String {
    let prim = if i32::try_from(code).is_ok() {
        PrimitiveType::I32
    } else {
        PrimitiveType::I64
    };
    int_literal(prim, code, None)
}

/// A C string literal: printable ASCII as is, `\"`, `\\`, the usual escapes, and every
/// other byte (UTF-8 included) as a three-digit octal escape. `?` after `?` is escaped so
/// that no trigraph forms.
fn string_literal(text: &str) -> String {
    let mut out = String::from("\"");
    let mut previous = 0u8;
    for byte in text.bytes() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            b'?' if previous == b'?' => out.push_str("\\?"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\{byte:03o}")),
        }
        previous = byte;
    }
    out.push('"');
    out
}

fn float_literal(prim: PrimitiveType, value: f64) -> String {
    let text = format!("{value:?}");
    if prim == PrimitiveType::F32 {
        format!("{text}f")
    } else {
        text
    }
}

/// The C type of a primitive in a struct (a UUID is an array of this type).
fn prim_c(prim: PrimitiveType) -> Option<&'static str> {
    Some(match prim {
        PrimitiveType::Bool | PrimitiveType::U8 | PrimitiveType::Uuid => "uint8_t",
        PrimitiveType::I8 => "int8_t",
        PrimitiveType::I16 => "int16_t",
        PrimitiveType::U16 => "uint16_t",
        PrimitiveType::I32 => "int32_t",
        PrimitiveType::U32 => "uint32_t",
        PrimitiveType::I64 => "int64_t",
        PrimitiveType::U64 | PrimitiveType::Timestamp | PrimitiveType::Duration => "uint64_t",
        PrimitiveType::F32 => "float",
        PrimitiveType::F64 => "double",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// Macros.

/// A constant's C macro: its catalogue name under the module prefix (unless it already
/// starts with it), so that the headers of several catalogues can be included together.
fn constant_macro(module: &Module, name: &str) -> String {
    let prefix = format!("{}_", module.idents.c_prefix);
    let own = names::c_macro(&[name]);
    if own.starts_with(&prefix) {
        own
    } else {
        format!("{prefix}{own}")
    }
}

fn constants(module: &Module) -> Vec<Define> {
    module
        .constants
        .iter()
        .map(|k| {
            let value = match &k.value {
                ConstValue::Int(v) => int_literal(k.ty, *v, k.text.as_deref()),
                ConstValue::Float(v) => float_literal(k.ty, *v),
                ConstValue::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
                ConstValue::Str(s) => string_literal(s),
            };
            let name = constant_macro(module, &k.name);
            let ty = match k.ty {
                PrimitiveType::Bool => "bool, 0 or 1",
                other => other.name(),
            };
            let mut title = format!("`{}` ({ty}", k.name);
            if let (Some(text), ConstValue::Int(_)) = (&k.text, &k.value) {
                if text.chars().count() == 1 {
                    title.push_str(&format!(", the character '{text}'"));
                }
            }
            title.push(')');
            let alias = (name != k.name).then(|| names::c_ident(&k.name));
            Define {
                doc: doc(&format!("{title}: {}", k.doc)),
                name,
                value,
                alias,
            }
        })
        .collect()
}

fn enum_prefix(module: &Module, name: &str) -> String {
    format!("{}_*", names::c_macro(&[&module.name, name]))
}

fn int_enums(module: &Module) -> Vec<Group> {
    module
        .types
        .iter()
        .filter_map(|t| match &t.kind {
            TypeKind::IntEnum(e) => Some(Group {
                doc: paragraphs(vec![
                    doc(&format!(
                        "`{}`: integer enum carried as {} ({}).",
                        t.name,
                        prim_c(e.repr).unwrap_or("int"),
                        enum_prefix(module, &t.name)
                    )),
                    doc(&t.doc),
                ]),
                defines: e
                    .values
                    .iter()
                    .map(|v| Define {
                        doc: doc(&v.doc),
                        name: v.idents.c.clone(),
                        value: int_literal(e.repr, v.value, None),
                        alias: None,
                    })
                    .collect(),
            }),
            _ => None,
        })
        .collect()
}

fn string_enums(module: &Module) -> Vec<Group> {
    module
        .types
        .iter()
        .filter_map(|t| match &t.kind {
            TypeKind::Enum(e) => Some(Group {
                doc: paragraphs(vec![
                    doc(&format!(
                        "`{}`: string enum; each macro is the value's JSON string ({}).",
                        t.name,
                        enum_prefix(module, &t.name)
                    )),
                    doc(&t.doc),
                ]),
                defines: e
                    .values
                    .iter()
                    .map(|v| Define {
                        doc: doc(&v.doc),
                        name: v.idents.c.clone(),
                        value: string_literal(&v.wire),
                        alias: None,
                    })
                    .collect(),
            }),
            _ => None,
        })
        .collect()
}

/// How a payload type reads in prose (`struct ServiceInfo`, `BackupRequestPayload`).
fn type_text(module: &Module, ty: &Ty) -> String {
    match ty {
        Ty::Prim(p) => p.name().to_owned(),
        Ty::Named(id) if c_struct(module, *id).is_some() => {
            format!("struct {}", module.ty(*id).idents.c)
        }
        Ty::Named(id) => module.ty(*id).name.clone(),
        Ty::List(t) => format!("list of {}", type_text(module, t)),
        Ty::Map(t) => format!("map of {}", type_text(module, t)),
        Ty::Array(t, n) => format!("array of {n} {}", type_text(module, t)),
    }
}

fn messages(module: &Module) -> anyhow::Result<Option<Group>> {
    if module.messages.is_empty() {
        return Ok(None);
    }
    // Binary catalogues: codes, typed as the header's message type field.
    let code_type = match &module.wire.framing {
        Framing::BinaryHeader { header, .. } => {
            let key = &module.wire.envelope.type_key;
            let field = match &module.ty(*header).kind {
                TypeKind::Struct(s) => s.fields.iter().find(|f| &f.wire == key),
                _ => None,
            };
            match field.map(|f| &f.ty) {
                Some(Ty::Prim(p)) if p.int_range().is_some() => Some(*p),
                _ => Some(PrimitiveType::U32),
            }
        }
        _ => None,
    };
    let mut defines = Vec::new();
    for msg in &module.messages {
        let mut facts = vec![format!(
            "Sent by {} to {}.",
            list_text(&msg.from),
            list_text(&msg.to)
        )];
        facts.push(match &msg.payload {
            Some(ty) => format!("Payload: {}.", type_text(module, ty)),
            None => "No payload.".to_owned(),
        });
        if let Some(reply) = &msg.reply {
            facts.push(format!("Answered by {reply}."));
        }
        if msg.is_reply {
            facts.push("A reply: carries the correlation id of the message it answers.".into());
        }
        let text = format!("{}: {} {}", msg.name, msg.doc.trim(), facts.join(" "));
        match (code_type, msg.code) {
            (Some(prim), Some(code)) => defines.push(Define {
                doc: doc(&text),
                name: msg.c_macro.clone(),
                value: int_literal(prim, code, None),
                alias: None,
            }),
            (Some(_), None) => bail!("message `{}` of a binary catalogue has no code", msg.name),
            (None, code) => {
                defines.push(Define {
                    doc: doc(&text),
                    name: msg.c_macro.clone(),
                    value: string_literal(&msg.name),
                    alias: None,
                });
                if let Some(code) = code {
                    defines.push(Define {
                        doc: doc(&format!("Numeric code of {}.", msg.name)),
                        name: format!("{}_CODE", msg.c_macro),
                        value: code_literal(code),
                        alias: None,
                    });
                }
            }
        }
    }
    let what = if code_type.is_some() {
        format!(
            "Message codes: the value of the header's `{}` field.",
            module.wire.envelope.type_key
        )
    } else {
        format!(
            "Message names: the value of the envelope's \"{}\" key.",
            module.wire.envelope.type_key
        )
    };
    Ok(Some(Group {
        doc: doc(&what),
        defines,
    }))
}

fn errors(module: &Module) -> Option<Group> {
    if module.errors.codes.is_empty() {
        return None;
    }
    let numeric = module.errors.codes.iter().all(|e| e.code.is_some());
    let what = if numeric {
        format!("Error codes (`{}`), by number.", module.errors.enum_name)
    } else {
        format!(
            "Error codes (`{}`): each macro is the code's symbolic name as it appears on the wire.",
            module.errors.enum_name
        )
    };
    Some(Group {
        doc: doc(&what),
        defines: module
            .errors
            .codes
            .iter()
            .map(|e| Define {
                doc: doc(&format!("{}: {}", e.name, e.doc)),
                name: e.c_macro.clone(),
                value: match e.code {
                    Some(code) if numeric => code_literal(code),
                    _ => string_literal(&e.name),
                },
                alias: None,
            })
            .collect(),
    })
}

fn machines(module: &Module) -> Vec<Group> {
    module
        .machines
        .iter()
        .map(|m| {
            let mut parts = vec![
                doc(&format!(
                    "State machine `{}` (held by {}); initial state {}. Each macro is the state's value.",
                    m.name,
                    list_text(&m.roles),
                    m.initial
                )),
                doc(&m.doc),
            ];
            if !m.transitions.is_empty() {
                let mut lines = vec!["Transitions:".to_owned()];
                for t in &m.transitions {
                    let on = match &t.on {
                        Trigger::Send(s) => format!("send {s}"),
                        Trigger::Receive(s) => format!("receive {s}"),
                        Trigger::Event(s) => format!("event {s}"),
                    };
                    let text = format!("{} -> {} on {on}", t.from, t.to);
                    lines.extend(wrap_item("  ", &comment_safe(&text), WIDTH));
                }
                parts.push(lines);
            }
            Group {
                doc: paragraphs(parts),
                defines: m
                    .states
                    .iter()
                    .map(|s| {
                        let terminal = if s.terminal { " (Terminal.)" } else { "" };
                        Define {
                            doc: doc(&format!("{}: {}{terminal}", s.name, s.doc.trim())),
                            name: s.idents.c.clone(),
                            value: string_literal(&s.value),
                            alias: None,
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Structs.

/// A C declarator's parts: the base type and the array dimensions.
fn c_base(module: &Module, ty: &Ty) -> anyhow::Result<(String, Vec<u64>)> {
    Ok(match ty {
        Ty::Prim(PrimitiveType::Uuid) => ("uint8_t".into(), vec![16]),
        Ty::Prim(p) => (
            prim_c(*p)
                .ok_or_else(|| anyhow!("`{}` has no C representation", p.name()))?
                .to_owned(),
            vec![],
        ),
        Ty::Named(id) => {
            let def = module.ty(*id);
            match &def.kind {
                TypeKind::Struct(s) if s.c_layout.is_some() => {
                    (format!("struct {}", def.idents.c), vec![])
                }
                TypeKind::IntEnum(e) => (prim_c(e.repr).unwrap_or("uint32_t").to_owned(), vec![]),
                TypeKind::Alias(a) => c_base(module, &a.ty)?,
                _ => bail!("`{}` has no C representation", def.name),
            }
        }
        Ty::Array(inner, len) => {
            let (base, mut dims) = c_base(module, inner)?;
            dims.insert(0, *len);
            (base, dims)
        }
        Ty::List(_) | Ty::Map(_) => bail!("lists and maps have no C representation"),
    })
}

/// The C type of `ty` as text (`uint32_t`, `struct ModelInfo`, `uint8_t[16]`).
fn c_type_text(module: &Module, ty: &Ty) -> anyhow::Result<String> {
    let (base, dims) = c_base(module, ty)?;
    Ok(base + &dims.iter().map(|d| format!("[{d}]")).collect::<String>())
}

/// Size in bytes of `ty` in C layout.
fn c_size(module: &Module, ty: &Ty) -> Option<u64> {
    match ty {
        Ty::Prim(p) => p.c_size(),
        Ty::Named(id) => match &module.ty(*id).kind {
            TypeKind::Struct(s) => s.c_layout.as_ref().map(|l| l.size),
            TypeKind::IntEnum(e) => e.repr.c_size(),
            TypeKind::Alias(a) => c_size(module, &a.ty),
            _ => None,
        },
        Ty::Array(inner, len) => c_size(module, inner).map(|s| s * len),
        Ty::List(_) | Ty::Map(_) => None,
    }
}

/// The integer enum behind `ty` (through aliases and arrays), if any.
fn int_enum_of<'m>(module: &'m Module, ty: &Ty) -> Option<&'m TypeDef> {
    match ty {
        Ty::Named(id) => {
            let def = module.ty(*id);
            match &def.kind {
                TypeKind::IntEnum(_) => Some(def),
                TypeKind::Alias(a) => int_enum_of(module, &a.ty),
                _ => None,
            }
        }
        Ty::Array(inner, _) => int_enum_of(module, inner),
        _ => None,
    }
}

fn unit_note(ty: &Ty) -> Option<&'static str> {
    match ty {
        Ty::Prim(PrimitiveType::Timestamp) => Some("Nanoseconds since the Unix epoch."),
        Ty::Prim(PrimitiveType::Duration) => Some("Nanoseconds."),
        Ty::Prim(PrimitiveType::Uuid) => Some("UUID, 16 bytes in RFC 4122 order."),
        Ty::Prim(PrimitiveType::Bool) => Some("Boolean: 0 or 1."),
        _ => None,
    }
}

fn member(module: &Module, field: &Field) -> anyhow::Result<Member> {
    let (base, dims) =
        c_base(module, &field.ty).with_context(|| format!("field `{}`", field.wire))?;
    let decl = format!(
        "{base} {}{}",
        field.idents.c,
        dims.iter().map(|d| format!("[{d}]")).collect::<String>()
    );
    let lower_doc = field.doc.to_lowercase();
    let mut notes: Vec<String> = Vec::new();
    if field.padding && !lower_doc.contains("zero") {
        notes.push("Padding: must be zero.".into());
    } else if field.padding && !lower_doc.contains("padding") {
        notes.push("(Padding.)".into());
    }
    if let Some(e) = int_enum_of(module, &field.ty) {
        notes.push(format!(
            "Values: `{}` ({}).",
            e.name,
            enum_prefix(module, &e.name)
        ));
    }
    if let Some(note) = unit_note(&field.ty) {
        notes.push(note.into());
    }
    if let Some((of, count)) = &field.pointee {
        notes.push(format!(
            "User-space pointer (as an integer) to `{count}` elements of {}.",
            c_type_text(module, of).unwrap_or_else(|_| type_text(module, of))
        ));
    }
    notes.extend(constraints_text(&field.constraints));
    let text = [field.doc.trim().to_owned()]
        .into_iter()
        .chain(notes)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Member {
        doc: doc(&text),
        decl,
        name: field.idents.c.clone(),
        offset: field
            .c_offset
            .ok_or_else(|| anyhow!("field `{}` has no C offset", field.wire))?,
    })
}

fn tail_text(module: &Module, field: &Field) -> String {
    let count = field.length_field.as_deref().unwrap_or("?");
    let what = match &field.ty {
        Ty::Prim(PrimitiveType::String) => {
            format!("`{count}` bytes of UTF-8 text, no terminating NUL")
        }
        Ty::Prim(PrimitiveType::Bytes) => format!("`{count}` bytes"),
        Ty::List(inner) => {
            let ty = c_type_text(module, inner).unwrap_or_else(|_| type_text(module, inner));
            match c_size(module, inner) {
                Some(size) => format!("`{count}` elements of {ty}, {size} bytes each"),
                None => format!("`{count}` elements of {ty}"),
            }
        }
        other => format!("`{count}` x {}", type_text(module, other)),
    };
    let doc = field.doc.trim();
    if doc.is_empty() {
        format!("{}: {what}.", field.wire)
    } else {
        format!("{}: {what}. {doc}", field.wire)
    }
}

fn c_struct_context(
    module: &Module,
    id: TypeId,
    def: &TypeDef,
    s: &Struct,
) -> anyhow::Result<CStruct> {
    let layout = s
        .c_layout
        .as_ref()
        .ok_or_else(|| anyhow!("`{}` has no C layout", def.name))?;
    let mut uses: Vec<String> = Vec::new();
    if matches!(module.wire.framing, Framing::BinaryHeader { header, .. } if header == id) {
        uses.push("the header of every message".into());
    }
    for msg in &module.messages {
        if msg.payload == Some(Ty::Named(id)) {
            uses.push(format!("the payload of {}", msg.name));
        }
    }
    for io in &module.ioctls {
        if io.arg == Some(id) {
            uses.push(format!("the argument of {}", io.name));
        }
    }
    let mut layout_text = format!(
        "C layout: {} bytes, aligned to {}.",
        layout.size, layout.align
    );
    if !uses.is_empty() {
        layout_text.push_str(&format!(" Used as {}.", uses.join("; ")));
    }
    let mut parts = vec![
        doc(&format!("`{}`: {}", def.name, def.doc.trim())),
        doc(&layout_text),
    ];
    let tail: Vec<&Field> = s
        .fields
        .iter()
        .filter(|f| f.length_field.is_some())
        .collect();
    if !tail.is_empty() {
        let mut lines = doc(
            "Variable-length tail, not part of the struct: on the wire these fields follow the fixed part, in this order, packed with no padding:",
        );
        for (i, f) in tail.iter().enumerate() {
            lines.extend(wrap_item(
                &format!("  {}. ", i + 1),
                &comment_safe(&tail_text(module, f)),
                WIDTH,
            ));
        }
        parts.push(lines);
    }
    let members = s
        .fields
        .iter()
        .filter(|f| f.length_field.is_none())
        .map(|f| member(module, f))
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("struct `{}`", def.name))?;
    Ok(CStruct {
        doc: paragraphs(parts),
        name: def.idents.c.clone(),
        size: layout.size,
        members,
    })
}

// ---------------------------------------------------------------------------------------
// ioctls.

fn ioctl(module: &Module, io: &crate::ir::Ioctl) -> anyhow::Result<CIoctl> {
    let magic = match io.magic_char {
        Some(c)
            if c.is_ascii_graphic()
                && c != '\''
                && c != '\\'
                && u32::from(c) == u32::from(io.magic) =>
        {
            format!("'{c}'")
        }
        _ => format!("0x{:02X}", io.magic),
    };
    let number = format!("0x{:02X}", io.number);
    let arg = match io.arg {
        Some(id) => {
            if c_struct(module, id).is_none() {
                bail!(
                    "ioctl `{}`: argument `{}` is not a C-layout struct",
                    io.name,
                    module.ty(id).name
                );
            }
            Some(format!("struct {}", module.ty(id).idents.c))
        }
        None => None,
    };
    let expr = match (io.direction, &arg) {
        (IoctlDirection::None, None) => format!("_IO({magic}, {number})"),
        (IoctlDirection::Read, Some(a)) => format!("_IOR({magic}, {number}, {a})"),
        (IoctlDirection::Write, Some(a)) => format!("_IOW({magic}, {number}, {a})"),
        (IoctlDirection::ReadWrite, Some(a)) => format!("_IOWR({magic}, {number}, {a})"),
        (IoctlDirection::None, Some(a)) => {
            format!("_IOC(_IOC_NONE, {magic}, {number}, sizeof({a}))")
        }
        (dir, None) => format!(
            "_IOC({}, {magic}, {number}, 0)",
            match dir {
                IoctlDirection::Read => "_IOC_READ",
                IoctlDirection::Write => "_IOC_WRITE",
                _ => "_IOC_READ | _IOC_WRITE",
            }
        ),
    };
    let direction = match io.direction {
        IoctlDirection::None => "none (no data transfer)",
        IoctlDirection::Read => "read (the kernel fills the argument)",
        IoctlDirection::Write => "write (the kernel reads the argument)",
        IoctlDirection::ReadWrite => {
            "read/write (the kernel reads the argument and writes results back)"
        }
    };
    let facts = match &arg {
        Some(a) => format!(
            "Direction: {direction}; argument: {a}. Request code 0x{:08X}.",
            io.request
        ),
        None => format!(
            "Direction: {direction}; no argument. Request code 0x{:08X}.",
            io.request
        ),
    };
    Ok(CIoctl {
        doc: paragraphs(vec![doc(&io.doc), doc(&facts)]),
        name: io.name.clone(),
        expr,
        request: format!("0x{:08X}u", io.request),
    })
}

// ---------------------------------------------------------------------------------------

/// Every macro, struct tag and typedef name of the header must be distinct: two catalogue
/// items that map to one C name would otherwise redefine each other.
fn check_collisions(module: &Module, header: &Header) -> anyhow::Result<()> {
    let mut items: Vec<(&str, &str)> = vec![(header.guard.as_str(), "the include guard")];
    items.extend(
        header
            .constants
            .iter()
            .map(|d| (d.name.as_str(), "a constant")),
    );
    for g in header
        .int_enums
        .iter()
        .chain(&header.string_enums)
        .chain(&header.machines)
    {
        items.extend(
            g.defines
                .iter()
                .map(|d| (d.name.as_str(), "an enum or state value")),
        );
    }
    for g in header.messages.iter().chain(&header.errors) {
        items.extend(
            g.defines
                .iter()
                .map(|d| (d.name.as_str(), "a message or error code")),
        );
    }
    items.extend(header.ioctls.iter().map(|d| (d.name.as_str(), "an ioctl")));
    items.extend(header.structs.iter().map(|d| (d.name.as_str(), "a struct")));
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut clashes = Vec::new();
    for (name, what) in items {
        if let Some(first) = seen.insert(name, what) {
            clashes.push(format!("`{name}` is both {first} and {what}"));
        }
    }
    if !clashes.is_empty() {
        bail!(
            "C names collide in {}.h: {}; rename one of each pair in {}",
            module.name,
            clashes.join("; "),
            module.source
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_literals() {
        let lit = int_literal;
        assert_eq!(
            lit(PrimitiveType::U32, 0x5645_5849, Some("0x56455849")),
            "0x56455849u"
        );
        assert_eq!(
            lit(PrimitiveType::U32, 1, Some("0x00000001")),
            "0x00000001u"
        );
        assert_eq!(
            lit(PrimitiveType::U32, 0xCAFE_F00D, Some("0xCAFE_F00D")),
            "0xCAFEF00Du"
        );
        assert_eq!(
            lit(PrimitiveType::U64, u64::MAX.into(), None),
            "UINT64_C(18446744073709551615)"
        );
        assert_eq!(lit(PrimitiveType::I32, -5, None), "(-5)");
        assert_eq!(
            lit(PrimitiveType::I32, i32::MIN.into(), None),
            "(-2147483647 - 1)"
        );
        assert_eq!(
            lit(PrimitiveType::I64, i64::MIN.into(), None),
            "(-INT64_C(9223372036854775807) - 1)"
        );
        assert_eq!(lit(PrimitiveType::U8, 86, Some("V")), "86u");
    }

    #[test]
    fn string_literals() {
        assert_eq!(
            string_literal("hello \"world\"\n"),
            r#""hello \"world\"\n""#
        );
        assert_eq!(string_literal(r"\\.\pipe\x"), r#""\\\\.\\pipe\\x""#);
        assert_eq!(string_literal("é??="), r#""\303\251?\?=""#);
    }
}
