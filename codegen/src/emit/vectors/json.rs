//! Vectors of JSON catalogues: messages, the envelope and the frames of the wire profile.

use anyhow::{Context, bail, ensure};
use serde_json::{Map, Value, json};

use super::format::{ErrorClass, Segment};
use super::ids::{kebab, named_wrongs};
use super::{Builder, Case, enum_non_members, nested, obj, payload_struct, resolve};
use crate::emit::examples;
use crate::ir::{ByteOrder, Framing, Message, Module, PrimitiveType, Ty, TypeKind, UnknownKeys};

// ---------------------------------------------------------------------------------------
// JSON catalogues

pub(super) fn json_frame(m: &Module, body: &[u8]) -> anyhow::Result<Vec<u8>> {
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

pub(super) fn length_prefix(width: u8, order: ByteOrder, n: u64) -> anyhow::Result<Vec<u8>> {
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
pub(super) fn json_limit(m: &Module) -> u64 {
    match (&m.wire.framing, m.wire.max_line_bytes) {
        (Framing::NewlineDelimited, Some(line)) => line.min(m.wire.max_message_bytes),
        _ => m.wire.max_message_bytes,
    }
}

pub(super) fn compact(value: &Value) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

pub(super) fn payload_key(m: &Module) -> anyhow::Result<&str> {
    m.wire
        .envelope
        .payload
        .as_deref()
        .context("a JSON envelope without payload key")
}

pub(super) fn with_payload(m: &Module, envelope: &Value, payload: Value) -> anyhow::Result<Value> {
    let mut env = obj(envelope)?;
    env.insert(payload_key(m)?.to_owned(), payload);
    Ok(Value::Object(env))
}

/// The envelope without the members the catalogue lets senders omit.
pub(super) fn strip_optional_envelope(m: &Module, envelope: &mut Map<String, Value>) {
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
    pub(super) fn json_case(&mut self, case: Case, body: Value) -> anyhow::Result<()> {
        let frame = json_frame(self.m, &compact(&body)?)?;
        self.push(case.bytes(frame).body(body))
    }
}

pub(super) fn json_message(b: &mut Builder<'_>, msg: &Message) -> anyhow::Result<()> {
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
pub(super) fn nesting(
    b: &mut Builder<'_>,
    msg: &Message,
    example: &Value,
    depth: u64,
) -> anyhow::Result<()> {
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

pub(super) fn json_envelope(b: &mut Builder<'_>) -> anyhow::Result<()> {
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

pub(super) fn json_frames(b: &mut Builder<'_>) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

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
}
