//! Messages, ioctl commands, constants and error codes.

use std::collections::HashMap;

use super::Checker;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::intlit::IntLit;
use crate::layout::{IOC_SIZE_MAX, LayoutCalculator};
use crate::model::{Encoding, Framing, IoctlDirection, Layout, PrimitiveType, TypeDef, TypeRef};

pub(crate) fn check_messages(c: &mut Checker) {
    let cat = c.cat;
    c.unique(
        "message",
        cat.messages
            .iter()
            .map(|m| (m.name.as_str(), m.src.at("name"))),
    );
    let binary = matches!(cat.wire.framing, Framing::BinaryHeader { .. });
    let code_range = code_range(c);
    let mut codes: HashMap<i128, usize> = HashMap::new();
    for (index, m) in cat.messages.iter().enumerate() {
        let src = &m.src;
        c.identifier("message", &m.name, &src.at("name"));
        if let Some(casing) = cat.wire.message_casing {
            c.casing(
                "message name",
                &m.name,
                casing,
                &src.at("name"),
                "messageCasing",
            );
        }
        match &m.code {
            Some(code) => {
                if let Some(first) = codes.insert(code.value, index) {
                    c.push(
                        Diagnostic::error(
                            "ipcspec::duplicate-code",
                            format!(
                                "message code {} is used by `{}` and `{}`",
                                code.display(),
                                cat.messages[first].name,
                                m.name
                            ),
                        )
                        .at(&src.at("code"), "used again here")
                        .at(&cat.messages[first].src.at("code"), "first used here")
                        .help("every message needs its own code; take the next free one"),
                    );
                }
                if let Some((lo, hi)) = code_range {
                    if code.value < lo || code.value > hi {
                        c.push(
                            Diagnostic::error(
                                "ipcspec::invalid-value",
                                format!(
                                    "message code {} does not fit the header's type field",
                                    code.display()
                                ),
                            )
                            .at(&src.at("code"), format!("the field holds {lo}..={hi}"))
                            .help("choose a code in range"),
                        );
                    }
                }
            }
            None if binary => c.push(
                Diagnostic::error(
                    "ipcspec::missing-code",
                    format!("message `{}` has no `code`", m.name),
                )
                .at_key(&src.at("name"), "")
                .help("binary-header framing identifies messages by number: add `\"code\": N`"),
            ),
            None => {}
        }
        for (key, roles) in [("from", &m.from), ("to", &m.to)] {
            if roles.is_empty() {
                c.push(
                    Diagnostic::error(
                        "ipcspec::invalid-value",
                        format!("message `{}` has an empty `{key}`", m.name),
                    )
                    .at(&src.at(key), "")
                    .help("name at least one role"),
                );
            }
            for (i, role) in roles.iter().enumerate() {
                c.role(role, &src.at(key).at(i));
            }
        }
        match (&m.channel, cat.channels.is_empty()) {
            (Some(names), _) => {
                let mut declared = Vec::new();
                for (i, name) in names.names().iter().enumerate() {
                    let at = match names {
                        crate::model::Names::One(_) => src.at("channel"),
                        crate::model::Names::Many(_) => src.at("channel").at(i),
                    };
                    if c.channel(name, &at) {
                        declared.extend(cat.channels.iter().filter(|ch| &ch.name == name));
                    }
                }
                if declared.len() == names.names().len() {
                    channel_pairs(c, m, &declared);
                }
            }
            (None, false) => c.push(
                Diagnostic::error(
                    "ipcspec::unknown-channel",
                    format!("message `{}` names no channel", m.name),
                )
                .at_key(&src.at("name"), "")
                .help("this catalogue declares channels: add `\"channel\": \"<name>\"`"),
            ),
            (None, true) => {}
        }
        if let Some(payload) = &m.payload {
            c.type_ref(payload, &src.at("payload"));
            if cat.wire.encoding == Encoding::BinaryLe {
                let c_struct = match c.resolve(payload) {
                    TypeRef::Named(name) => match c.types.get(name.as_str()) {
                        Some(TypeDef::Struct(s)) => s.layout == Layout::C,
                        _ => false,
                    },
                    TypeRef::Composite(_) => false,
                };
                let known = match payload {
                    TypeRef::Named(name) => {
                        c.types.contains_key(name.as_str())
                            || PrimitiveType::from_name(name).is_some()
                    }
                    TypeRef::Composite(_) => true,
                };
                // An unknown name was reported by `type_ref`.
                if !c_struct && known {
                    c.push(
                        Diagnostic::error("ipcspec::c-layout", format!("binary payload of `{}` is not a C-layout struct", m.name))
                            .at(&src.at("payload"), "")
                            .help("binary encoding writes payloads in C layout: give the payload struct `\"layout\": \"c\"`"),
                    );
                }
            }
        }
        if let Some(reply) = &m.reply {
            if let Some(r) = c.message(reply, &src.at("reply")) {
                // Unknown roles were reported above; do not cascade.
                let known = |role: &&String| cat.roles.iter().any(|x| &x.name == *role);
                for role in m.to.iter().filter(known) {
                    if !r.from.contains(role) {
                        c.push(
                            Diagnostic::error("ipcspec::reply-role", format!("`{}` is answered by `{reply}`, which role `{role}` cannot send", m.name))
                                .at(&src.at("reply"), format!("`{role}` receives `{}`", m.name))
                                .at(&r.src.at("from"), format!("`{reply}` is sent only by these roles"))
                                .help(format!("add `{role}` to the `from` of `{reply}`, or answer with another message")),
                        );
                    }
                }
                for role in m.from.iter().filter(known) {
                    if !r.to.contains(role) {
                        c.push(
                            Diagnostic::error("ipcspec::reply-role", format!("the reply `{reply}` does not go back to `{role}`, which sends `{}`", m.name))
                                .at(&src.at("reply"), "")
                                .at(&r.src.at("to"), "the reply's receivers")
                                .help(format!("add `{role}` to the `to` of `{reply}`")),
                        );
                    }
                }
                if !r.is_reply {
                    c.push(
                        Diagnostic::error(
                            "ipcspec::reply-role",
                            format!(
                                "`{reply}` answers `{}` but is not marked as a reply",
                                m.name
                            ),
                        )
                        .at(&src.at("reply"), "")
                        .at_key(&r.src.at("name"), "")
                        .help(format!(
                            "add `\"isReply\": true` to `{reply}` so it carries the correlation id"
                        )),
                    );
                }
            }
        }
        if m.is_reply && cat.wire.envelope.correlation_id.is_none() {
            c.push(
                Diagnostic::error(
                    "ipcspec::envelope",
                    format!(
                        "reply `{}` needs a correlation id, but the envelope has none",
                        m.name
                    ),
                )
                .at_key(&src.at("isReply"), "")
                .help("add `\"correlationId\": \"<key>\"` to `wire.envelope`"),
            );
        }
        if m.acknowledged {
            match &cat.wire.ack_message {
                None => c.push(
                    Diagnostic::error(
                        "ipcspec::ack",
                        format!(
                            "`{}` is acknowledged but the profile names no acknowledgment",
                            m.name
                        ),
                    )
                    .at_key(&src.at("acknowledged"), "")
                    .help("name the acknowledgment message in `wire.ackMessage`"),
                ),
                Some(ack) if ack == &m.name => c.push(
                    Diagnostic::error(
                        "ipcspec::ack",
                        "the acknowledgment message cannot itself be acknowledged",
                    )
                    .at_key(&src.at("acknowledged"), "")
                    .help("remove `acknowledged`; acknowledging acknowledgments never ends"),
                ),
                Some(_) => {}
            }
        }
        if let Some(priority) = &m.priority {
            match &cat.wire.priority {
                None => c.push(
                    Diagnostic::error(
                        "ipcspec::unknown-value",
                        format!("`{}` has a priority but the profile defines none", m.name),
                    )
                    .at_key(&src.at("priority"), "")
                    .help("declare `wire.priority` with an integer enum of priority levels"),
                ),
                Some(profile) => {
                    if let Some(TypeDef::IntEnum(e)) = c.types.get(profile.enum_type.as_str()) {
                        if !e.values.iter().any(|v| &v.name == priority) {
                            let hint =
                                did_you_mean(priority, e.values.iter().map(|v| v.name.as_str()));
                            c.push(
                                Diagnostic::error(
                                    "ipcspec::unknown-value",
                                    format!("`{priority}` is not a priority{hint}"),
                                )
                                .at(&src.at("priority"), "")
                                .help(format!(
                                    "use one of: {}",
                                    e.values
                                        .iter()
                                        .map(|v| v.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The range of the binary header's message-type field, when framing has one.
fn code_range(c: &Checker) -> Option<(i128, i128)> {
    let Framing::BinaryHeader { header, .. } = &c.cat.wire.framing else {
        return None;
    };
    let Some(TypeDef::Struct(s)) = c.types.get(header.as_str()) else {
        return None;
    };
    let field = s
        .fields
        .iter()
        .find(|f| f.name == c.cat.wire.envelope.type_key)?;
    c.primitive(&field.ty)?.int_range()
}

pub(crate) fn check_ioctls(c: &mut Checker) {
    let cat = c.cat;
    c.unique(
        "ioctl",
        cat.ioctls
            .iter()
            .map(|i| (i.name.as_str(), i.src.at("name"))),
    );
    let mut calculator = LayoutCalculator::new(cat);
    let mut numbers: HashMap<(i128, i128), usize> = HashMap::new();
    for (index, ioctl) in cat.ioctls.iter().enumerate() {
        let src = &ioctl.src;
        c.identifier("ioctl", &ioctl.name, &src.at("name"));
        for (key, lit) in [("magic", &ioctl.magic), ("number", &ioctl.number)] {
            if !(0..=255).contains(&lit.value) {
                c.push(
                    Diagnostic::error(
                        "ipcspec::ioctl",
                        format!("ioctl {key} {} does not fit in 8 bits", lit.display()),
                    )
                    .at(&src.at(key), "")
                    .help(format!(
                        "the {key} is one byte: 0..=255 (a character such as \"V\" for the magic)"
                    )),
                );
            }
        }
        let key = (ioctl.magic.value, ioctl.number.value);
        if let Some(first) = numbers.insert(key, index) {
            let other = &cat.ioctls[first];
            c.push(
                Diagnostic::error("ipcspec::ioctl-clash", format!("`{}` and `{}` have the same magic and number", other.name, ioctl.name))
                    .at(&src.at("number"), format!("magic {} number {}", ioctl.magic.display(), ioctl.number.display()))
                    .at(&other.src.at("number"), "already used here")
                    .help("give each command of one magic its own number; the kernel tells them apart by (magic, number) alone"),
            );
        }
        match (ioctl.direction, &ioctl.arg) {
            (IoctlDirection::None, Some(_)) => c.push(
                Diagnostic::error("ipcspec::ioctl", format!("`{}` has direction `none` but an argument", ioctl.name))
                    .at_key(&src.at("arg"), "")
                    .help("remove `arg`, or choose `read`, `write` or `readWrite`"),
            ),
            (IoctlDirection::None, None) => {}
            (_, None) => c.push(
                Diagnostic::error("ipcspec::ioctl", format!("`{}` transfers data but names no argument struct", ioctl.name))
                    .at_key(&src.at("direction"), "")
                    .help("add `\"arg\": \"<C-layout struct>\"`, or use direction `none`"),
            ),
            (_, Some(arg)) => match c.types.get(arg.as_str()) {
                Some(TypeDef::Struct(s)) if s.layout == Layout::C => {
                    if let Some(Ok(layout)) = calculator.layout(arg) {
                        if !layout.tail.is_empty() {
                            c.push(
                                Diagnostic::error("ipcspec::ioctl", format!("ioctl argument `{arg}` has variable-length tail fields"))
                                    .at(&src.at("arg"), "")
                                    .help("an ioctl copies a fixed-size struct; pass variable data through user pointers (`pointee`)"),
                            );
                        } else if layout.size > IOC_SIZE_MAX {
                            c.push(
                                Diagnostic::error("ipcspec::ioctl", format!("ioctl argument `{arg}` is {} bytes; the size field holds at most {IOC_SIZE_MAX}", layout.size))
                                    .at(&src.at("arg"), "")
                                    .help("pass large data through a user pointer (`pointee`) instead of inline"),
                            );
                        }
                    }
                }
                Some(_) => c.push(
                    Diagnostic::error("ipcspec::ioctl", format!("ioctl argument `{arg}` is not a C-layout struct"))
                        .at(&src.at("arg"), "")
                        .help("ioctl arguments cross into the kernel as C structs: declare it with `\"layout\": \"c\"`"),
                ),
                None => c.type_ref(&TypeRef::Named(arg.clone()), &src.at("arg")),
            },
        }
    }
}

pub(crate) fn check_constants(c: &mut Checker) {
    let cat = c.cat;
    c.unique(
        "constant",
        cat.constants
            .iter()
            .map(|k| (k.name.as_str(), k.src.at("name"))),
    );
    for constant in &cat.constants {
        let src = &constant.src;
        c.identifier("constant", &constant.name, &src.at("name"));
        let value = &constant.value;
        let problem: Option<String> = match constant.ty {
            ty if ty.int_range().is_some() => {
                let parsed = match value {
                    serde_json::Value::Number(n) => n
                        .as_i64()
                        .map(i128::from)
                        .or(n.as_u64().map(i128::from))
                        .ok_or_else(|| format!("{n} is not an integer")),
                    serde_json::Value::String(s) => IntLit::parse(s).map(|l| l.value),
                    other => Err(format!("{other} is not an integer")),
                };
                match parsed {
                    Ok(v) => {
                        let (lo, hi) = ty.int_range().unwrap_or((0, 0));
                        (v < lo || v > hi)
                            .then(|| format!("{v} does not fit `{}` ({lo}..={hi})", ty.name()))
                    }
                    Err(e) => Some(e),
                }
            }
            PrimitiveType::F32 | PrimitiveType::F64 => {
                (!value.is_number()).then(|| format!("{value} is not a number"))
            }
            PrimitiveType::Bool => {
                (!value.is_boolean()).then(|| format!("{value} is not `true` or `false`"))
            }
            PrimitiveType::String => {
                (!value.is_string()).then(|| format!("{value} is not a string"))
            }
            other => Some(format!(
                "constants of type `{}` are not supported",
                other.name()
            )),
        };
        if let Some(problem) = problem {
            c.push(
                Diagnostic::error("ipcspec::invalid-value", format!("constant `{}`: {problem}", constant.name))
                    .at(&src.at("value"), format!("declared `{}`", constant.ty.name()))
                    .help("constants are integers (a number or \"0x…\"), floats, bools or strings matching `type`"),
            );
        }
    }
}

pub(crate) fn check_errors(c: &mut Checker) {
    let cat = c.cat;
    c.unique(
        "error code",
        cat.errors
            .iter()
            .map(|e| (e.name.as_str(), e.src.at("name"))),
    );
    let mut codes: HashMap<i128, usize> = HashMap::new();
    for (index, error) in cat.errors.iter().enumerate() {
        c.identifier("error code", &error.name, &error.src.at("name"));
        if let Some(code) = &error.code {
            if let Some(first) = codes.insert(code.value, index) {
                c.push(
                    Diagnostic::error(
                        "ipcspec::duplicate-code",
                        format!(
                            "error code {} is used by `{}` and `{}`",
                            code.display(),
                            cat.errors[first].name,
                            error.name
                        ),
                    )
                    .at(&error.src.at("code"), "used again here")
                    .at(&cat.errors[first].src.at("code"), "first used here")
                    .help("every error needs its own code"),
                );
            }
        }
    }
}

/// Every (sender, receiver) pair of `m` must be connected by one of its channels, in
/// either orientation; unknown roles were reported already.
fn channel_pairs(c: &mut Checker, m: &crate::model::Message, channels: &[&crate::model::Channel]) {
    let known = |role: &String| c.cat.roles.iter().any(|r| &r.name == role);
    let connects = |ch: &crate::model::Channel, from: &str, to: &str| match ch.between.as_slice() {
        [a, b] => a.contains(from) && b.contains(to) || b.contains(from) && a.contains(to),
        _ => true, // Reported with the channel.
    };
    let names: Vec<&str> = channels.iter().map(|ch| ch.name.as_str()).collect();
    for (i, from) in m.from.iter().enumerate().filter(|(_, r)| known(r)) {
        for to in m.to.iter().filter(|r| known(r)) {
            if !channels.iter().any(|ch| connects(ch, from, to)) {
                let mut diagnostic = Diagnostic::error(
                    "ipcspec::channel-role",
                    format!("no channel of `{}` connects `{from}` to `{to}`", m.name),
                )
                .at(
                    &m.src.at("from").at(i),
                    format!("`{}` is sent from here to `{to}`", m.name),
                );
                for ch in channels {
                    diagnostic =
                        diagnostic.at(&ch.src.at("between"), format!("the ends of `{}`", ch.name));
                }
                c.push(diagnostic.help(format!(
                    "add a channel connecting both roles to the message's `channel` ({}), or narrow `from`/`to`",
                    names.join(", ")
                )));
            }
        }
    }
}
