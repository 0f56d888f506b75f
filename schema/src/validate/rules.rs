//! Rules that span several items, which the catalogue states as data so that every
//! generated form checks them: exactly-one-of groups of fields, fields computed as sums,
//! an enum that mirrors the message codes, and the flag bits the envelope sets per
//! message.

use std::collections::{HashMap, HashSet};

use super::Checker;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::intlit::IntLit;
use crate::model::{
    Composite, IntEnumDef, Layout, PrimitiveType, Src, StructDef, TypeDef, TypeRef,
};

pub(crate) fn check(c: &mut Checker) {
    let cat = c.cat;
    for def in &cat.types {
        match def {
            TypeDef::Struct(s) => {
                exactly_one_of(c, s);
                sums(c, s);
            }
            TypeDef::IntEnum(e) if e.message_codes => message_codes(c, e),
            _ => {}
        }
    }
    flag_bits(c);
}

/// Each group names two or more optional fields of the struct, each in one group only.
fn exactly_one_of(c: &mut Checker, s: &StructDef) {
    let mut grouped: HashMap<&str, usize> = HashMap::new();
    for (g, group) in s.exactly_one_of.iter().enumerate() {
        let at = s.src.at("exactlyOneOf").at(g);
        if s.layout == Layout::C {
            c.push(
                Diagnostic::error(
                    "ipcspec::exactly-one-of",
                    format!("C-layout struct `{}` has no optional fields to choose from", s.name),
                )
                .at(&at, "")
                .help("every field of a C-layout struct is always present; use a record struct, or remove `exactlyOneOf`"),
            );
            continue;
        }
        if group.len() < 2 {
            c.push(
                Diagnostic::error(
                    "ipcspec::exactly-one-of",
                    format!("a group of {} field(s) in `{}` chooses nothing", group.len(), s.name),
                )
                .at(&at, "")
                .help("list two or more optional fields; a field that must always be present is simply not `optional`"),
            );
        }
        for (i, name) in group.iter().enumerate() {
            let member = at.at(i);
            let Some(position) = s.fields.iter().position(|f| &f.name == name) else {
                let hint = did_you_mean(name, s.fields.iter().map(|f| f.name.as_str()));
                c.push(
                    Diagnostic::error(
                        "ipcspec::exactly-one-of",
                        format!("struct `{}` has no field `{name}`{hint}", s.name),
                    )
                    .at(&member, "")
                    .help("name optional fields of this struct"),
                );
                continue;
            };
            if !s.fields[position].optional {
                c.push(
                    Diagnostic::error(
                        "ipcspec::exactly-one-of",
                        format!("field `{name}` is required, so it is always present"),
                    )
                    .at(&member, "")
                    .at(&s.src.at("fields").at(position).at("name"), "declared here")
                    .help(
                        "mark the field `\"optional\": true`: the group decides when it is present",
                    ),
                );
            }
            if let Some(first) = grouped.insert(name, g) {
                c.push(
                    Diagnostic::error(
                        "ipcspec::exactly-one-of",
                        format!("field `{name}` is listed twice"),
                    )
                    .at(&member, "here")
                    .at(&s.src.at("exactlyOneOf").at(first), "and in this group")
                    .help("a field belongs to at most one group, once"),
                );
            }
        }
    }
}

/// A `sumOf` field is an integer; it names a list field of the same struct whose items
/// are structs with the integer field it sums.
fn sums(c: &mut Checker, s: &StructDef) {
    for (i, field) in s.fields.iter().enumerate() {
        let Some(sum) = &field.sum_of else { continue };
        let at = s.src.at("fields").at(i).at("sumOf");
        if !c.primitive(&field.ty).is_some_and(is_integer) {
            c.push(
                Diagnostic::error(
                    "ipcspec::sum-of",
                    format!("field `{}` holds a sum but is not an integer", field.name),
                )
                .at_key(&at, "")
                .at(&s.src.at("fields").at(i).at("type"), "declared here")
                .help("a computed sum is an integer field (u8 to u64, i8 to i64)"),
            );
        }
        let Some(list) = s.fields.iter().find(|f| f.name == sum.list) else {
            let hint = did_you_mean(&sum.list, s.fields.iter().map(|f| f.name.as_str()));
            c.push(
                Diagnostic::error(
                    "ipcspec::sum-of",
                    format!("struct `{}` has no field `{}`{hint}", s.name, sum.list),
                )
                .at(&at.at("list"), "")
                .help("name the list field of this struct whose items are summed"),
            );
            continue;
        };
        if field.optional || list.optional {
            c.push(
                Diagnostic::error(
                    "ipcspec::sum-of",
                    format!(
                        "`{}` and the list `{}` must both be required to hold a sum",
                        field.name, sum.list
                    ),
                )
                .at_key(&at, "")
                .help("a computed sum and what it sums are always present; remove `optional`"),
            );
        }
        let item = match c.resolve(&list.ty) {
            TypeRef::Composite(Composite::List(item)) => match c.resolve(item) {
                TypeRef::Named(name) => c.cat.types.iter().find_map(|t| match t {
                    TypeDef::Struct(item) if &item.name == name => Some(item),
                    _ => None,
                }),
                _ => None,
            },
            _ => None,
        };
        let Some(item) = item else {
            c.push(
                Diagnostic::error(
                    "ipcspec::sum-of",
                    format!("field `{}` is not a list of structs", sum.list),
                )
                .at(&at.at("list"), "")
                .help("`list` names a field of type `{\"list\": \"SomeStruct\"}`"),
            );
            continue;
        };
        match item.fields.iter().find(|f| f.name == sum.field) {
            None => {
                let hint = did_you_mean(&sum.field, item.fields.iter().map(|f| f.name.as_str()));
                c.push(
                    Diagnostic::error(
                        "ipcspec::sum-of",
                        format!("struct `{}` has no field `{}`{hint}", item.name, sum.field),
                    )
                    .at(&at.at("field"), "")
                    .help(format!("name an integer field of `{}`", item.name)),
                );
            }
            Some(summed) if !c.primitive(&summed.ty).is_some_and(is_integer) || summed.optional => {
                c.push(
                    Diagnostic::error(
                        "ipcspec::sum-of",
                        format!(
                            "field `{}` of `{}` is not a required integer",
                            sum.field, item.name
                        ),
                    )
                    .at(&at.at("field"), "")
                    .help("only required integer fields can be summed"),
                );
            }
            Some(_) => {}
        }
    }
}

fn is_integer(p: PrimitiveType) -> bool {
    p.int_range().is_some()
}

/// An enum marked `messageCodes` has exactly one member per message with a code, with the
/// message's name and code.
fn message_codes(c: &mut Checker, e: &IntEnumDef) {
    let cat = c.cat;
    let mut members: HashMap<&str, usize> = HashMap::new();
    for (i, v) in e.values.iter().enumerate() {
        members.insert(v.name.as_str(), i);
    }
    let mut matched = HashSet::new();
    for msg in &cat.messages {
        let Some(code) = &msg.code else { continue };
        match members.get(msg.name.as_str()) {
            None => c.push(
                Diagnostic::error(
                    "ipcspec::message-codes",
                    format!("`{}` mirrors the message codes but has no member `{}`", e.name, msg.name),
                )
                .at(&e.src.at("values"), "")
                .at(&msg.src.at("code"), "the message's code")
                .help(format!(
                    "add `{{ \"name\": \"{}\", \"value\": \"{:#06x}\", \"doc\": \"...\" }}` to `{}`",
                    msg.name, code.value, e.name
                )),
            ),
            Some(&i) => {
                matched.insert(i);
                let value = &e.values[i].value;
                if value.value != code.value {
                    c.push(
                        Diagnostic::error(
                            "ipcspec::message-codes",
                            format!(
                                "`{}::{}` is {:#x} but message `{}` has code {:#x}",
                                e.name, msg.name, value.value, msg.name, code.value
                            ),
                        )
                        .at(&e.src.at("values").at(i).at("value"), "the enum's value")
                        .at(&msg.src.at("code"), "the message's code")
                        .help("the message's `code` is the source of truth: give the member the same value"),
                    );
                }
            }
        }
    }
    for (i, v) in e.values.iter().enumerate() {
        if !matched.contains(&i) {
            let hint = did_you_mean(&v.name, cat.messages.iter().map(|m| m.name.as_str()));
            c.push(
                Diagnostic::error(
                    "ipcspec::message-codes",
                    format!("`{}::{}` is no message with a code{hint}", e.name, v.name),
                )
                .at(&e.src.at("values").at(i).at("name"), "")
                .help("every member is named after a message that has a `code`; remove it or fix its name"),
            );
        }
    }
}

/// `flagBits` needs a `flags` header field; its constants are integer constants, the
/// priority shift needs the wire profile's priorities, every value fits the flags field,
/// and the error is one of the catalogue's codes.
fn flag_bits(c: &mut Checker) {
    let cat = c.cat;
    let env = &cat.wire.envelope;
    let Some(bits) = &env.flag_bits else { return };
    let at = Src::default().at("wire").at("envelope").at("flagBits");
    if env.flags.is_none() {
        c.push(
            Diagnostic::error(
                "ipcspec::flag-bits",
                "`flagBits` without a `flags` header field",
            )
            .at_key(&at, "")
            .help("name the header field that holds the flags in `envelope.flags`"),
        );
    }
    let mut used: Vec<(&str, i128)> = Vec::new();
    if let Some(reply) = &bits.reply {
        if let Some(value) = int_constant(c, reply, &at.at("reply")) {
            if value <= 0 {
                c.push(
                    Diagnostic::error(
                        "ipcspec::flag-bits",
                        format!("reply bits `{reply}` are {value}"),
                    )
                    .at(&at.at("reply"), "")
                    .help("the reply constant names one or more bits: a positive integer"),
                );
            }
            used.push(("reply", value));
        }
    }
    if let Some(shift) = &bits.priority_shift {
        let value = int_constant(c, shift, &at.at("priorityShift"));
        match (&cat.wire.priority, value) {
            (None, _) => c.push(
                Diagnostic::error("ipcspec::flag-bits", "`priorityShift` without priorities")
                    .at(&at.at("priorityShift"), "")
                    .help("declare `wire.priority` (the priority enum and its default)"),
            ),
            (Some(profile), Some(shift)) => {
                let highest = cat
                    .types
                    .iter()
                    .find_map(|t| match t {
                        TypeDef::IntEnum(e) if e.name == profile.enum_type => {
                            e.values.iter().map(|v| v.value.value).max()
                        }
                        _ => None,
                    })
                    .unwrap_or(0);
                if !(0..64).contains(&shift) {
                    c.push(
                        Diagnostic::error(
                            "ipcspec::flag-bits",
                            format!("priority shift {shift} is outside 0..64"),
                        )
                        .at(&at.at("priorityShift"), "")
                        .help("the shift is a bit position in the flags field"),
                    );
                } else {
                    used.push(("priority", highest << shift));
                }
            }
            _ => {}
        }
    }
    // The bits must fit the flags field and not overlap.
    let width = env.flags.as_ref().and_then(|name| {
        let header = match &cat.wire.framing {
            crate::model::Framing::BinaryHeader { header, .. } => header,
            _ => return None,
        };
        cat.types.iter().find_map(|t| match t {
            TypeDef::Struct(s) if &s.name == header => s
                .fields
                .iter()
                .find(|f| &f.name == name)
                .and_then(|f| c.primitive(&f.ty))
                .and_then(PrimitiveType::int_range),
            _ => None,
        })
    });
    if let Some((_, max)) = width {
        for (what, value) in &used {
            if *value > max {
                c.push(
                    Diagnostic::error(
                        "ipcspec::flag-bits",
                        format!("the {what} bits {value:#x} do not fit the flags field (at most {max:#x})"),
                    )
                    .at(&at.at(if *what == "reply" { "reply" } else { "priorityShift" }), "")
                    .help("use bits within the flags field's width"),
                );
            }
        }
    }
    if let [(_, reply), (_, priority)] = used.as_slice() {
        if reply & priority != 0 {
            c.push(
                Diagnostic::error(
                    "ipcspec::flag-bits",
                    "the reply bits overlap the priority bits",
                )
                .at(&at.at("reply"), "")
                .at(&at.at("priorityShift"), "")
                .help("give the reply flag and the priority separate bits"),
            );
        }
    }
    if !cat.errors.iter().any(|e| e.name == bits.error) {
        let hint = did_you_mean(&bits.error, cat.errors.iter().map(|e| e.name.as_str()));
        c.push(
            Diagnostic::error("ipcspec::flag-bits", format!("unknown error code `{}`{hint}", bits.error))
                .at(&at.at("error"), "")
                .help("name one of the catalogue's `errors`: the code a receiver answers wrong flags with"),
        );
    }
}

/// The value of the integer constant `name`, or a diagnostic at `src`.
fn int_constant(c: &mut Checker, name: &str, src: &Src) -> Option<i128> {
    let cat = c.cat;
    let Some(k) = cat.constants.iter().find(|k| k.name == name) else {
        let hint = did_you_mean(name, cat.constants.iter().map(|k| k.name.as_str()));
        c.push(
            Diagnostic::error(
                "ipcspec::unknown-constant",
                format!("unknown constant `{name}`{hint}"),
            )
            .at(src, "")
            .help("define it in `constants`"),
        );
        return None;
    };
    let value = match &k.value {
        serde_json::Value::Number(n) => n.as_i64().map(i128::from),
        serde_json::Value::String(s) => IntLit::parse(s).ok().map(|l| l.value),
        _ => None,
    };
    if value.is_none() || k.ty.int_range().is_none() {
        c.push(
            Diagnostic::error(
                "ipcspec::flag-bits",
                format!("constant `{name}` is not an integer"),
            )
            .at(src, "")
            .at(&k.src.at("value"), "defined here")
            .help("flag bits and shifts are integer constants"),
        );
        return None;
    }
    value
}
