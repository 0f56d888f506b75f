//! Vectors of binary catalogues: messages and the frames of the binary header.

use std::collections::BTreeSet;

use anyhow::{Context, bail, ensure};
use serde_json::{Map, Value, json};

use super::encoding::{base64_decode, encode, encode_tail};
use super::format::{ErrorClass, Segment, value_of};
use super::ids::{kebab, named_wrongs};
use super::{Builder, Case, enum_non_members, obj, payload_struct, resolve};
use crate::emit::shared::{BINARY_HEADER_KEY, BINARY_PAYLOAD_KEY};
use crate::emit::{examples, shared};
use crate::ir::{
    ByteOrder, ChecksumAlgorithm, Framing, LengthCounts, Message, Module, PrimitiveType, Struct,
    Ty, TypeId, TypeKind,
};

// ---------------------------------------------------------------------------------------
// Binary catalogues

/// The binary header's layout and rules.
pub(super) struct BinWire {
    pub(super) header: TypeId,
    pub(super) header_size: u64,
    pub(super) byte_order: ByteOrder,
    pub(super) length_counts: LengthCounts,
}

impl BinWire {
    pub(super) fn new(m: &Module) -> anyhow::Result<BinWire> {
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
    pub(super) fn seal(
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

    pub(super) fn header_bytes(
        &self,
        m: &Module,
        header: &Map<String, Value>,
    ) -> anyhow::Result<Vec<u8>> {
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
    pub(super) fn message(
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

pub(super) fn encode_payload(
    m: &Module,
    msg: &Message,
    payload: &Value,
) -> anyhow::Result<Vec<u8>> {
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
pub(super) fn binary_example(
    m: &Module,
    msg: &Message,
) -> anyhow::Result<(Map<String, Value>, Value)> {
    let example = examples::envelope(m, msg)?;
    let header = obj(example.get(BINARY_HEADER_KEY).context("no header")?)?;
    let payload = example
        .get(BINARY_PAYLOAD_KEY)
        .cloned()
        .context("no payload")?;
    Ok((header, payload))
}

/// Longest tail a wrong count is given, so vectors stay small.
pub(super) const MAX_RESIZED_TAIL: u64 = 1 << 16;

/// `value` with tails and their counts in step again after a wrong value changed one of
/// them: a changed tail (a string too long) gets its count set to its length; a changed
/// count (a count above its maximum) gets its tail resized to it (strings padded with
/// `x` or cut, bytes with zeros, lists repeating their first element).
pub(super) fn recount(m: &Module, s: &Struct, base: &Value, value: &Value) -> Value {
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

pub(super) fn binary_message(
    b: &mut Builder<'_>,
    wire: &BinWire,
    msg: &Message,
) -> anyhow::Result<()> {
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

    // The envelope sets the header's flags per message (`flagBits`): the reply bits
    // flipped are refused.
    if let (Some(field), Some(flags), Some(bits)) = (
        &m.wire.envelope.flags,
        m.header_flags(msg),
        &m.wire.envelope.flag_bits,
    ) {
        let flipped = if bits.reply != 0 { bits.reply } else { 1 };
        let mut wrong = header.clone();
        wrong.insert(field.clone(), shared::int(flags ^ flipped));
        let (body, head, bytes) = wire
            .message(m, msg, &wrong, &payload)
            .context("encoding the example with wrong flags")?;
        let (case, what) = if msg.is_reply {
            ("reply-flag-missing", "without the reply bits it must carry")
        } else {
            (
                "reply-flag-set",
                "with the reply bits, which only replies carry",
            )
        };
        b.push(
            Case::new(
                name,
                case,
                Some(ErrorClass::Schema),
                format!(
                    "`{name}` whose header `{field}` is {:#x} instead of {flags:#x}: {what}; refused with `{}`.",
                    flags ^ flipped,
                    bits.error
                ),
            )
            .message(name)
            .cites(&[&msg.anchor, "wire-envelope", &header_anchor])
            .bytes([head.as_slice(), bytes.as_slice()].concat())
            .body(body),
        )?;
    }

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

pub(super) fn binary_frames(b: &mut Builder<'_>, wire: &BinWire) -> anyhow::Result<()> {
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
