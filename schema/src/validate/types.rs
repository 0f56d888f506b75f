//! Types: names, references, constraints, unions, recursion and C layout.

use std::collections::{HashMap, HashSet};

use super::Checker;
use crate::diagnostic::Diagnostic;
use crate::layout::{LayoutCalculator, LayoutError, is_tail};
use crate::model::{
    Composite, Constraints, Field, Layout, PrimitiveType, Src, StructDef, Transport, TypeDef,
    TypeRef, UnionDef, UnionRepr,
};

pub(crate) fn check(c: &mut Checker) {
    let cat = c.cat;
    c.unique(
        "type",
        cat.types.iter().map(|t| (t.name(), t.src().at("name"))),
    );
    for def in &cat.types {
        let src = def.src();
        c.identifier("type", def.name(), &src.at("name"));
        if PrimitiveType::from_name(def.name()).is_some() {
            c.push(
                Diagnostic::error(
                    "ipcspec::invalid-name",
                    format!("type `{}` shadows a primitive", def.name()),
                )
                .at(&src.at("name"), "")
                .help("choose another name; primitives cannot be redefined"),
            );
        }
        match def {
            TypeDef::Struct(s) => check_struct(c, s),
            TypeDef::Enum(e) => {
                non_empty(
                    c,
                    e.values.is_empty(),
                    &src.at("values"),
                    "an enum needs at least one value",
                );
                c.unique(
                    "enum value",
                    e.values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (v.name.as_str(), src.at("values").at(i).at("name"))),
                );
                let mut wires: HashMap<&str, usize> = HashMap::new();
                for (i, v) in e.values.iter().enumerate() {
                    c.identifier("enum value", &v.name, &src.at("values").at(i).at("name"));
                    if let Some(first) = wires.insert(v.wire(), i) {
                        c.push(
                            Diagnostic::error(
                                "ipcspec::duplicate-code",
                                format!(
                                    "enum `{}` uses the wire value `{}` twice",
                                    e.name,
                                    v.wire()
                                ),
                            )
                            .at(&src.at("values").at(i), "here")
                            .at(&src.at("values").at(first), "and here")
                            .help("every member needs its own wire string"),
                        );
                    }
                }
            }
            TypeDef::IntEnum(e) => {
                non_empty(
                    c,
                    e.values.is_empty(),
                    &src.at("values"),
                    "an enum needs at least one value",
                );
                let Some((lo, hi)) = e.repr.int_range() else {
                    c.push(
                        Diagnostic::error(
                            "ipcspec::invalid-value",
                            format!("`repr` of `{}` must be an integer type", e.name),
                        )
                        .at(&src.at("repr"), "")
                        .help("use one of i8, i16, i32, i64, u8, u16, u32, u64"),
                    );
                    continue;
                };
                c.unique(
                    "enum value",
                    e.values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (v.name.as_str(), src.at("values").at(i).at("name"))),
                );
                let mut seen: HashMap<i128, usize> = HashMap::new();
                for (i, v) in e.values.iter().enumerate() {
                    let at = src.at("values").at(i);
                    c.identifier("enum value", &v.name, &at.at("name"));
                    if v.value.value < lo || v.value.value > hi {
                        c.push(
                            Diagnostic::error(
                                "ipcspec::invalid-value",
                                format!("{} does not fit `{}`", v.value.display(), e.repr.name()),
                            )
                            .at(
                                &at.at("value"),
                                format!("`{}` holds {lo}..={hi}", e.repr.name()),
                            )
                            .help("pick a value in range or widen `repr`"),
                        );
                    }
                    if let Some(first) = seen.insert(v.value.value, i) {
                        c.push(
                            Diagnostic::error(
                                "ipcspec::duplicate-code",
                                format!(
                                    "enum `{}` uses the value {} twice",
                                    e.name,
                                    v.value.display()
                                ),
                            )
                            .at(&at.at("value"), "here")
                            .at(&src.at("values").at(first).at("value"), "and here")
                            .help("every member needs its own value"),
                        );
                    }
                }
            }
            TypeDef::Union(u) => check_union(c, u),
            TypeDef::Alias(a) => {
                c.type_ref(&a.ty, &src.at("type"));
                check_constraints(c, &a.ty, &a.constraints, &src.at("constraints"));
            }
        }
    }
    check_recursion(c);
    check_c_layouts(c);
}

fn non_empty(c: &mut Checker, empty: bool, src: &Src, message: &str) {
    if empty {
        c.push(
            Diagnostic::error("ipcspec::invalid-value", message)
                .at(src, "empty")
                .help("add at least one element"),
        );
    }
}

fn check_struct(c: &mut Checker, s: &StructDef) {
    let src = &s.src;
    let fd_passing = c.cat.wire.transports.iter().any(|t| match t {
        Transport::Unix { fd_passing, .. } | Transport::Socketpair { fd_passing, .. } => {
            *fd_passing
        }
        _ => false,
    });
    c.unique(
        "field",
        s.fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), src.at("fields").at(i).at("name"))),
    );
    for (i, field) in s.fields.iter().enumerate() {
        let at = src.at("fields").at(i);
        c.identifier("field", &field.name, &at.at("name"));
        c.casing(
            "field",
            &field.name,
            c.cat.wire.key_casing,
            &at.at("name"),
            "keyCasing",
        );
        c.type_ref(&field.ty, &at.at("type"));
        check_constraints(c, &field.ty, &field.constraints, &at.at("constraints"));
        if c.primitive(&field.ty) == Some(PrimitiveType::Fd) && !fd_passing {
            c.push(
                Diagnostic::error("ipcspec::invalid-type", format!("field `{}` passes a file descriptor but no transport passes them", field.name))
                    .at(&at.at("type"), "")
                    .help("set `\"fdPassing\": true` on the Unix or socketpair transport that carries this message"),
            );
        }
        if (field.padding || field.pointee.is_some()) && s.layout != Layout::C {
            {
                c.push(
                    Diagnostic::error(
                        "ipcspec::c-layout",
                        format!(
                            "field `{}` uses a C-layout attribute in a record struct",
                            field.name
                        ),
                    )
                    .at_key(
                        &at.at(if field.padding { "padding" } else { "pointee" }),
                        "",
                    )
                    .help("`padding` and `pointee` apply to structs with `\"layout\": \"c\"`"),
                );
            }
        }
        if field.padding {
            let ok = match c.resolve(&field.ty) {
                TypeRef::Composite(Composite::Array(a)) => {
                    PrimitiveType::from_name(match &*a.of {
                        TypeRef::Named(n) => n,
                        _ => "",
                    }) == Some(PrimitiveType::U8)
                }
                other => c.primitive(other).is_some_and(PrimitiveType::is_unsigned),
            };
            if !ok {
                c.push(
                    Diagnostic::error("ipcspec::c-layout", format!("padding field `{}` must be an unsigned integer or a u8 array", field.name))
                        .at(&at.at("type"), "")
                        .help("write `\"type\": {\"array\": {\"of\": \"u8\", \"len\": N}}` or `\"type\": \"u32\"`"),
                );
            }
        }
        if let Some(pointee) = &field.pointee {
            if c.primitive(&field.ty) != Some(PrimitiveType::U64) {
                c.push(
                    Diagnostic::error("ipcspec::c-layout", format!("user pointer `{}` must be a `u64`", field.name))
                        .at(&at.at("type"), "")
                        .help("user-space pointers cross the kernel boundary as `u64` so 32- and 64-bit processes agree"),
                );
            }
            c.type_ref(&pointee.of, &at.at("pointee").at("of"));
            count_field(
                c,
                s,
                &pointee.count_field,
                i,
                &at.at("pointee").at("countField"),
                false,
            );
        }
        if let Some(length_field) = &field.length_field {
            if s.layout != Layout::C {
                c.push(
                    Diagnostic::error("ipcspec::c-layout", format!("tail field `{}` belongs in a C-layout struct", field.name))
                        .at_key(&at.at("lengthField"), "")
                        .help("`lengthField` describes variable data after a binary struct; JSON fields need none"),
                );
            }
            let tail_ok = match c.resolve(&field.ty) {
                TypeRef::Composite(Composite::List(element)) => {
                    if let Err(reason) = LayoutCalculator::new(c.cat).element_size(element) {
                        c.push(
                            Diagnostic::error(
                                "ipcspec::c-layout",
                                format!(
                                    "the elements of tail field `{}` have no binary layout",
                                    field.name
                                ),
                            )
                            .at(&at.at("type"), "")
                            .help(format!("tail lists hold fixed-size C elements: {reason}")),
                        );
                    }
                    true
                }
                other => matches!(
                    c.primitive(other),
                    Some(PrimitiveType::Bytes | PrimitiveType::String)
                ),
            };
            if !tail_ok {
                c.push(
                    Diagnostic::error(
                        "ipcspec::c-layout",
                        format!(
                            "tail field `{}` must be `bytes`, `string` or a list",
                            field.name
                        ),
                    )
                    .at(&at.at("type"), "")
                    .help(
                        "fixed-size data belongs in the struct's fixed part, without `lengthField`",
                    ),
                );
            }
            count_field(c, s, length_field, i, &at.at("lengthField"), true);
        }
    }
    if s.size.is_some() && s.layout != Layout::C {
        c.push(
            Diagnostic::error(
                "ipcspec::c-layout",
                "`size` applies only to C-layout structs",
            )
            .at_key(&src.at("size"), "")
            .help("remove `size`, or add `\"layout\": \"c\"`"),
        );
    }
}

/// Checks that `name` is an unsigned integer field of `s` (before field `user` for tails).
fn count_field(
    c: &mut Checker,
    s: &StructDef,
    name: &str,
    user: usize,
    src: &Src,
    must_precede: bool,
) {
    let position = s.fields.iter().position(|f| f.name == name);
    let Some(position) = position else {
        let hint = crate::diagnostic::did_you_mean(name, s.fields.iter().map(|f| f.name.as_str()));
        c.push(
            Diagnostic::error(
                "ipcspec::unknown-field",
                format!("struct `{}` has no field `{name}`{hint}", s.name),
            )
            .at(src, "")
            .help("name the integer field of this struct that holds the element count"),
        );
        return;
    };
    let counter: &Field = &s.fields[position];
    let unsigned = c
        .primitive(&counter.ty)
        .is_some_and(PrimitiveType::is_unsigned);
    if !unsigned || is_tail(counter) {
        c.push(
            Diagnostic::error(
                "ipcspec::invalid-type",
                format!("count field `{name}` must be a fixed unsigned integer"),
            )
            .at(src, "")
            .at(&s.src.at("fields").at(position).at("type"), "declared here")
            .help("counts are u8, u16, u32 or u64 fields of the fixed part"),
        );
    }
    if must_precede && position > user {
        c.push(
            Diagnostic::error("ipcspec::c-layout", format!("count field `{name}` comes after the tail field it counts"))
                .at(src, "")
                .help("a reader must know the count before the data; move the count into the fixed part, before the tail"),
        );
    }
}

fn check_constraints(c: &mut Checker, ty: &TypeRef, k: &Constraints, src: &Src) {
    if k.is_empty() {
        return;
    }
    let resolved = c.resolve(ty).clone();
    if let TypeRef::Named(name) = &resolved {
        if PrimitiveType::from_name(name).is_none() && !c.types.contains_key(name.as_str()) {
            return; // Unknown type: already reported, nothing to check against.
        }
    }
    let primitive = c.primitive(&resolved);
    let numeric = primitive
        .is_some_and(|p| p.int_range().is_some() || p.is_float() || p == PrimitiveType::Duration);
    let stringy = primitive == Some(PrimitiveType::String);
    let listy = matches!(resolved, TypeRef::Composite(Composite::List(_)));
    let checks: [(&str, bool, bool); 7] = [
        ("minimum", k.minimum.is_some(), numeric),
        ("maximum", k.maximum.is_some(), numeric),
        ("minLength", k.min_length.is_some(), stringy),
        ("maxLength", k.max_length.is_some(), stringy),
        ("pattern", k.pattern.is_some(), stringy),
        ("minItems", k.min_items.is_some(), listy),
        ("maxItems", k.max_items.is_some(), listy),
    ];
    for (key, present, applies) in checks {
        if present && !applies {
            let needs = match key {
                "minimum" | "maximum" => "a number",
                "minItems" | "maxItems" => "a list",
                _ => "a string",
            };
            c.push(
                Diagnostic::error(
                    "ipcspec::constraint",
                    format!("`{key}` needs {needs}, but the type is not one"),
                )
                .at_key(&src.at(key), "")
                .help(format!(
                    "remove `{key}`, or constrain a field whose type is {needs}"
                )),
            );
        }
    }
    let pairs = [
        ("minimum", k.minimum, "maximum", k.maximum),
        (
            "minLength",
            k.min_length.as_ref().map(|v| v.value as f64),
            "maxLength",
            k.max_length.as_ref().map(|v| v.value as f64),
        ),
        (
            "minItems",
            k.min_items.as_ref().map(|v| v.value as f64),
            "maxItems",
            k.max_items.as_ref().map(|v| v.value as f64),
        ),
    ];
    for (lo_key, lo, hi_key, hi) in pairs {
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if lo > hi {
                c.push(
                    Diagnostic::error(
                        "ipcspec::constraint",
                        format!("`{lo_key}` ({lo}) is greater than `{hi_key}` ({hi})"),
                    )
                    .at(&src.at(lo_key), "")
                    .at(&src.at(hi_key), "")
                    .help("no value could satisfy both; swap or correct them"),
                );
            }
        }
    }
    if let Some(p) = primitive {
        if let Some((lo, hi)) = p.int_range() {
            for (key, value) in [("minimum", k.minimum), ("maximum", k.maximum)] {
                if let Some(v) = value {
                    if v < lo as f64 || v > hi as f64 {
                        c.push(
                            Diagnostic::error(
                                "ipcspec::constraint",
                                format!("`{key}` {v} is outside the range of `{}`", p.name()),
                            )
                            .at(&src.at(key), format!("`{}` holds {lo}..={hi}", p.name()))
                            .help(
                                "the type already bounds the value; use a bound inside its range",
                            ),
                        );
                    }
                }
            }
        }
    }
    if let Some(pattern) = &k.pattern {
        if let Err(error) = regex::Regex::new(pattern) {
            let first = error
                .to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_owned();
            c.push(
                Diagnostic::error("ipcspec::constraint", format!("`pattern` is not a valid regular expression: {first}"))
                    .at(&src.at("pattern"), "")
                    .help("write a regular expression in the subset shared by ECMA-262 and Rust's regex crate"),
            );
        }
    }
}

fn check_union(c: &mut Checker, u: &UnionDef) {
    let src = &u.src;
    non_empty(
        c,
        u.variants.is_empty(),
        &src.at("variants"),
        "a union needs at least one variant",
    );
    c.casing(
        "union tag key",
        &u.tag,
        c.cat.wire.key_casing,
        &src.at("tag"),
        "keyCasing",
    );
    match (u.repr, &u.content) {
        (UnionRepr::Adjacent, None) => c.push(
            Diagnostic::error(
                "ipcspec::union",
                format!("adjacently tagged union `{}` needs a `content` key", u.name),
            )
            .at_key(&src.at("repr"), "")
            .help("add `\"content\": \"data\"` (the key holding the variant's value)"),
        ),
        (UnionRepr::Internal, Some(_)) => c.push(
            Diagnostic::error(
                "ipcspec::union",
                format!("internally tagged union `{}` has no content key", u.name),
            )
            .at_key(&src.at("content"), "")
            .help("remove `content`, or use `\"repr\": \"adjacent\"`"),
        ),
        (UnionRepr::Adjacent, Some(content)) => {
            c.casing(
                "union content key",
                content,
                c.cat.wire.key_casing,
                &src.at("content"),
                "keyCasing",
            );
            if content == &u.tag {
                c.push(
                    Diagnostic::error("ipcspec::union", "the tag and content keys are the same")
                        .at(&src.at("content"), "")
                        .help("use two different keys, e.g. `type` and `data`"),
                );
            }
        }
        (UnionRepr::Internal, None) => {}
    }
    c.unique(
        "variant",
        u.variants
            .iter()
            .enumerate()
            .map(|(i, v)| (v.name.as_str(), src.at("variants").at(i).at("name"))),
    );
    let mut tags: HashMap<&str, usize> = HashMap::new();
    for (i, variant) in u.variants.iter().enumerate() {
        let at = src.at("variants").at(i);
        c.identifier("variant", &variant.name, &at.at("name"));
        if let Some(first) = tags.insert(variant.wire(), i) {
            c.push(
                Diagnostic::error(
                    "ipcspec::duplicate-code",
                    format!("union `{}` uses the tag `{}` twice", u.name, variant.wire()),
                )
                .at(&at, "here")
                .at(&src.at("variants").at(first), "and here")
                .help("every variant needs its own tag"),
            );
        }
        let Some(ty) = &variant.ty else { continue };
        c.type_ref(ty, &at.at("type"));
        if u.repr != UnionRepr::Internal {
            continue;
        }
        let (record, known) = match c.resolve(ty) {
            TypeRef::Named(name) => match c.types.get(name.as_str()) {
                Some(TypeDef::Struct(s)) => (Some(s), true),
                Some(_) => (None, true),
                None => (None, PrimitiveType::from_name(name).is_some()),
            },
            TypeRef::Composite(_) => (None, true),
        };
        match record {
            // An unknown type was already reported by `type_ref`.
            None if known => c.push(
                Diagnostic::error("ipcspec::union", format!("variant `{}` of internally tagged union `{}` is not a struct", variant.name, u.name))
                    .at(&at.at("type"), "")
                    .help("an internal tag is a key among the variant's own keys, so each variant must be a struct; use `\"repr\": \"adjacent\"` for other types"),
            ),
            Some(s) => {
                if let Some(j) = s.fields.iter().position(|f| f.name == u.tag) {
                    c.push(
                        Diagnostic::error("ipcspec::union", format!("variant struct `{}` has a field named like the tag `{}`", s.name, u.tag))
                            .at(&at.at("type"), "")
                            .at(&s.src.at("fields").at(j).at("name"), "this field")
                            .help("rename the field or the union's `tag`: the two keys would collide on the wire"),
                    );
                }
            }
            None => {}
        }
    }
}

/// A value type that contains itself without indirection has no finite size.
fn check_recursion(c: &mut Checker) {
    // Edges: type -> named types it embeds by value (required fields, arrays, aliases).
    let mut edges: HashMap<&str, Vec<(&str, Src)>> = HashMap::new();
    for def in &c.cat.types {
        let mut out = Vec::new();
        match def {
            TypeDef::Struct(s) => {
                for (i, f) in s.fields.iter().enumerate() {
                    if !f.optional && !f.nullable {
                        embedded(&f.ty, &s.src.at("fields").at(i).at("type"), &mut out);
                    }
                }
            }
            TypeDef::Alias(a) => embedded(&a.ty, &a.src.at("type"), &mut out),
            _ => {}
        }
        edges.insert(def.name(), out);
    }
    let mut reported: HashSet<&str> = HashSet::new();
    for def in &c.cat.types {
        let start = def.name();
        // Depth-first search for a path back to `start`.
        let mut stack: Vec<(&str, Vec<(&str, Src)>)> = vec![(start, Vec::new())];
        let mut visited: HashSet<&str> = HashSet::new();
        while let Some((node, path)) = stack.pop() {
            for (next, src) in edges.get(node).into_iter().flatten() {
                let mut path = path.clone();
                path.push((next, src.clone()));
                if *next == start {
                    if path.iter().all(|(n, _)| !reported.contains(n)) {
                        let cycle: Vec<&str> = std::iter::once(start)
                            .chain(path.iter().map(|(n, _)| *n))
                            .collect();
                        reported.extend(cycle.iter().copied());
                        c.push(
                            Diagnostic::error("ipcspec::recursive-type", format!("type `{start}` contains itself: {}", cycle.join(" -> ")))
                                .at(&path[0].1, "embeds by value")
                                .help("break the cycle with indirection: make a field `optional`, or hold it in a `list` or `map`"),
                        );
                    }
                } else if visited.insert(next) {
                    stack.push((next, path));
                }
            }
        }
    }
}

fn embedded<'t>(ty: &'t TypeRef, src: &Src, out: &mut Vec<(&'t str, Src)>) {
    match ty {
        TypeRef::Named(name) if PrimitiveType::from_name(name).is_none() => {
            out.push((name, src.clone()))
        }
        TypeRef::Composite(Composite::Array(a)) => embedded(&a.of, &src.at("array").at("of"), out),
        _ => {}
    }
}

fn check_c_layouts(c: &mut Checker) {
    let mut calculator = LayoutCalculator::new(c.cat);
    for def in &c.cat.types {
        let TypeDef::Struct(s) = def else { continue };
        if s.layout != Layout::C {
            continue;
        }
        let Some(result) = calculator.layout(&s.name) else {
            continue;
        };
        let field_src = |i: usize| s.src.at("fields").at(i);
        match result {
            Ok(layout) => {
                if let Some(size) = &s.size {
                    if size.value != i128::from(layout.size) {
                        c.push(
                            Diagnostic::error("ipcspec::c-layout", format!("struct `{}` is {} bytes, not {}", s.name, layout.size, size.display()))
                                .at(&s.src.at("size"), format!("computed size is {}", layout.size))
                                .help("correct `size`, or the fields: the computed size is what C compilers produce"),
                        );
                    }
                }
            }
            Err(LayoutError::NotRepresentable { field, reason }) => c.push(
                Diagnostic::error("ipcspec::c-layout", format!("field `{}` of C-layout struct `{}` cannot be expressed in C", s.fields[field].name, s.name))
                    .at(&field_src(field).at("type"), "")
                    .help(reason),
            ),
            Err(LayoutError::ImplicitPadding { field, offset, bytes }) => c.push(
                Diagnostic::error("ipcspec::c-layout", format!("C would insert {bytes} byte(s) of hidden padding before `{}` (offset {offset})", s.fields[field].name))
                    .at(&field_src(field), format!("needs alignment; the previous field ends at offset {offset}"))
                    .help(format!("add an explicit padding field before it: {{\"name\": \"reserved{offset}\", \"type\": {{\"array\": {{\"of\": \"u8\", \"len\": {bytes}}}}}, \"padding\": true, \"doc\": \"Must be zero.\"}}, or reorder the fields")),
            ),
            Err(LayoutError::TrailingPadding { size, bytes }) => c.push(
                Diagnostic::error("ipcspec::c-layout", format!("C would insert {bytes} byte(s) of hidden padding at the end of `{}` (after offset {size})", s.name))
                    .at(&s.src.at("fields"), "")
                    .help(format!("add a final padding field: {{\"name\": \"reserved{size}\", \"type\": {{\"array\": {{\"of\": \"u8\", \"len\": {bytes}}}}}, \"padding\": true, \"doc\": \"Must be zero.\"}}")),
            ),
            Err(LayoutError::FixedAfterTail { field }) => c.push(
                Diagnostic::error("ipcspec::c-layout", format!("fixed field `{}` follows a variable-length tail field", s.fields[field].name))
                    .at(&field_src(field), "")
                    .help("put every fixed field first, then the fields with `lengthField`"),
            ),
            Err(LayoutError::Recursive { field }) => c.push(
                Diagnostic::error("ipcspec::recursive-type", format!("C-layout struct `{}` contains itself", s.name))
                    .at(&field_src(field).at("type"), "")
                    .help("C structs cannot contain themselves; use a user pointer (`u64` with `pointee`)"),
            ),
        }
    }
}
