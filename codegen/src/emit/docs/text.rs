//! Text helpers: catalogue spellings, constraint and presence text, table cells,
//! mermaid labels.

use crate::ir::{
    ByteOrder, Constraints, Field, Machine, Module, Trigger, Ty, TypeDef, TypeKind, UnionRepr,
};

/// The catalogue spelling of a model enum value (`camelCase`, `binaryLe`, ...).
pub(super) fn wire_name<T: serde::Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

pub(super) fn order(o: ByteOrder) -> &'static str {
    match o {
        ByteOrder::Little => "little-endian",
        ByteOrder::Big => "big-endian",
    }
}

pub(super) fn code(c: i128) -> String {
    format!("`{c:#06x}` ({c})")
}

pub(super) fn kind_name(td: &TypeDef) -> &'static str {
    match &td.kind {
        TypeKind::Struct(_) => "struct",
        TypeKind::Enum(_) => "string enum",
        TypeKind::IntEnum(_) => "integer enum",
        TypeKind::Union(u) if u.repr == UnionRepr::Internal => "union (internally tagged)",
        TypeKind::Union(_) => "union (adjacently tagged)",
        TypeKind::Alias(_) => "alias",
    }
}

pub(super) fn presence(f: &Field) -> String {
    if f.padding {
        return "padding, zero".into();
    }
    match (f.optional, f.nullable) {
        (false, false) => "required",
        (true, false) => "optional",
        (false, true) => "required, nullable",
        (true, true) => "optional, nullable",
    }
    .into()
}

pub(super) fn constraints(k: &Constraints) -> String {
    let mut parts = Vec::new();
    let n = |v: f64| {
        if v.fract() == 0.0 {
            format!("{}", v as i64)
        } else {
            v.to_string()
        }
    };
    if let Some(v) = k.minimum {
        parts.push(format!("≥ {}", n(v)));
    }
    if let Some(v) = k.maximum {
        parts.push(format!("≤ {}", n(v)));
    }
    if let Some(v) = k.min_length {
        parts.push(format!("length ≥ {v}"));
    }
    if let Some(v) = k.max_length {
        parts.push(format!("length ≤ {v}"));
    }
    if let Some(v) = &k.pattern {
        parts.push(format!("pattern `{v}`"));
    }
    if let Some(v) = k.min_items {
        parts.push(format!("items ≥ {v}"));
    }
    if let Some(v) = k.max_items {
        parts.push(format!("items ≤ {v}"));
    }
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(", ")
    }
}

/// Whether `ty` is the type named `name` or a list, map or array of it.
pub(super) fn mentions(m: &Module, ty: &Ty, name: &str) -> bool {
    match ty {
        Ty::Prim(_) => false,
        Ty::Named(id) => m.ty(*id).name == name,
        Ty::List(item) | Ty::Map(item) | Ty::Array(item, _) => mentions(m, item, name),
    }
}

pub(super) fn trigger_text(t: &Trigger) -> String {
    match t {
        Trigger::Send(x) => format!("send {x}"),
        Trigger::Receive(x) => format!("receive {x}"),
        Trigger::Event(e) => e.clone(),
    }
}

/// The mermaid id of a state: its name when that is a plain identifier and no keyword,
/// else `s<index>` (declared with its name as label).
pub(super) fn mermaid_state(mach: &Machine, name: &str) -> String {
    const KEYWORDS: [&str; 12] = [
        "state",
        "note",
        "end",
        "direction",
        "class",
        "classDef",
        "click",
        "style",
        "as",
        "left",
        "right",
        "of",
    ];
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&name);
    if plain {
        return name.to_owned();
    }
    match mach.states.iter().position(|s| s.name == name) {
        Some(i) => format!("s{i}"),
        None => name.to_owned(),
    }
}

/// Text safe inside a mermaid label.
pub(super) fn mermaid_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if matches!(c, ';' | '#' | '\n' | '"') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// A table cell: one line, pipes escaped.
pub(super) fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first sentence of a doc.
pub(super) fn summary(doc: &str) -> String {
    let doc = one_line(doc);
    match doc.find(". ") {
        Some(i) => doc[..=i].to_owned(),
        None => doc,
    }
}

pub(super) fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Names as code, joined: `` `a` and `b` ``, `` `a`, `b` and `c` ``.
pub(super) fn code_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
