//! The wire profile: transports, framing, envelope, limits, timing.

use super::Checker;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::layout::LayoutCalculator;
use crate::model::{
    ChecksumAlgorithm, Encoding, Framing, Layout, PrimitiveType, Src, StructDef, Transport,
    TypeDef, TypeRef, UnattributedCorrelation,
};

pub(crate) fn check(c: &mut Checker) {
    let wire = &c.cat.wire;
    let at = Src::default().at("wire");
    transports(c, &at.at("transports"));
    let header = match &wire.framing {
        Framing::LengthPrefixed { width, .. } => {
            if !matches!(
                width,
                PrimitiveType::U16 | PrimitiveType::U32 | PrimitiveType::U64
            ) {
                c.push(
                    Diagnostic::error(
                        "ipcspec::framing",
                        format!(
                            "a length prefix of type `{}` is not supported",
                            width.name()
                        ),
                    )
                    .at(&at.at("framing").at("width"), "")
                    .help("use `u16`, `u32` or `u64`"),
                );
            } else if let Some((_, max)) = width.int_range() {
                if wire.limits.max_message_bytes.value > max {
                    c.push(
                        Diagnostic::error(
                            "ipcspec::limits",
                            format!(
                                "`maxMessageBytes` {} cannot be written in a `{}` prefix",
                                wire.limits.max_message_bytes.display(),
                                width.name()
                            ),
                        )
                        .at(&at.at("limits").at("maxMessageBytes"), "")
                        .help(format!(
                            "lower the limit to at most {max}, or widen the prefix"
                        )),
                    );
                }
            }
            None
        }
        Framing::NewlineDelimited => {
            if wire.limits.max_line_bytes.is_none() {
                c.push(
                    Diagnostic::error("ipcspec::limits", "newline-delimited framing needs `maxLineBytes`")
                        .at(&at.at("limits"), "")
                        .help("add `\"maxLineBytes\": 1048576` (or your limit): a reader must know how far to scan for a newline before it gives up"),
                );
            }
            None
        }
        Framing::BinaryHeader { header, .. } => match c.types.get(header.as_str()) {
            Some(TypeDef::Struct(s)) if s.layout == Layout::C => Some(s),
            Some(_) => {
                c.push(
                    Diagnostic::error(
                        "ipcspec::framing",
                        format!("header `{header}` is not a C-layout struct"),
                    )
                    .at(&at.at("framing").at("header"), "")
                    .help("declare the header as a `struct` with `\"layout\": \"c\"`"),
                );
                None
            }
            None => {
                c.type_ref(
                    &crate::model::TypeRef::Named(header.clone()),
                    &at.at("framing").at("header"),
                );
                None
            }
        },
    };
    let json = wire.encoding == Encoding::Json;
    match (&wire.framing, json) {
        (Framing::BinaryHeader { .. }, true) => c.push(
            Diagnostic::error("ipcspec::framing", "a binary header frames binary payloads")
                .at(&at.at("encoding"), "")
                .help("use `\"encoding\": \"binaryLe\"` with `binaryHeader` framing"),
        ),
        (Framing::LengthPrefixed { .. } | Framing::NewlineDelimited, false) => c.push(
            Diagnostic::error(
                "ipcspec::framing",
                "binary payloads need a binary header to carry their type",
            )
            .at(&at.at("encoding"), "")
            .help("use `binaryHeader` framing, or `\"encoding\": \"json\"`"),
        ),
        _ => {}
    }
    if wire.max_line_bytes_without_newline_framing() {
        c.push(
            Diagnostic::error(
                "ipcspec::limits",
                "`maxLineBytes` applies only to newline-delimited framing",
            )
            .at_key(&at.at("limits").at("maxLineBytes"), "")
            .help("remove it; `maxMessageBytes` limits length-prefixed and binary frames"),
        );
    }
    if wire.limits.max_message_bytes.value < 1
        || wire.limits.max_message_bytes.value > u32::MAX as i128
    {
        c.push(
            Diagnostic::error(
                "ipcspec::limits",
                "`maxMessageBytes` must be between 1 and 4294967295",
            )
            .at(&at.at("limits").at("maxMessageBytes"), "")
            .help("a finite cap is what lets a receiver refuse a frame before allocating it"),
        );
    }
    envelope(c, header, &at.at("envelope"));
    timing(c, &at.at("timing"));
    special_messages(c, &at);
    unattributable(c, &at);
}

impl crate::model::WireProfile {
    fn max_line_bytes_without_newline_framing(&self) -> bool {
        self.limits.max_line_bytes.is_some() && !matches!(self.framing, Framing::NewlineDelimited)
    }
}

fn transports(c: &mut Checker, at: &Src) {
    let cat = c.cat;
    if cat.wire.transports.is_empty() {
        c.push(
            Diagnostic::error("ipcspec::invalid-value", "no transport is declared")
                .at(at, "empty")
                .help("declare at least one, e.g. {\"kind\": \"unix\", \"path\": \"/run/my-service.sock\"}"),
        );
    }
    for (i, transport) in cat.wire.transports.iter().enumerate() {
        let src = at.at(i);
        let channel = match transport {
            Transport::Unix { channel, .. }
            | Transport::Socketpair { channel, .. }
            | Transport::NamedPipe { channel, .. }
            | Transport::Netlink { channel, .. } => channel,
        };
        match channel {
            Some(name) => {
                c.channel(name, &src.at("channel"));
            }
            None if !cat.channels.is_empty() => c.push(
                Diagnostic::error(
                    "ipcspec::unknown-channel",
                    "transport names no channel, but the catalogue declares channels",
                )
                .at(&src, "")
                .help("add `\"channel\": \"<name>\"` naming the channel this transport carries"),
            ),
            None => {}
        }
        if let Transport::Netlink { protocol, .. } = transport {
            if !(0..32).contains(&protocol.value) {
                c.push(
                    Diagnostic::error(
                        "ipcspec::invalid-value",
                        format!("netlink protocol {} is out of range", protocol.display()),
                    )
                    .at(&src.at("protocol"), "")
                    .help("netlink protocols are 0..=31; NETLINK_USERSOCK is 2"),
                );
            }
        }
        if let Transport::Unix { path, .. } = transport {
            if path.is_empty() || path.len() > 107 {
                c.push(
                    Diagnostic::error(
                        "ipcspec::invalid-value",
                        "a Unix socket path must have 1 to 107 bytes",
                    )
                    .at(&src.at("path"), "")
                    .help("sun_path holds 108 bytes including the terminating NUL"),
                );
            }
        }
    }
}

fn envelope(c: &mut Checker, header: Option<&StructDef>, at: &Src) {
    let env = &c.cat.wire.envelope;
    let casing = c.cat.wire.key_casing;
    let members: [(&str, Option<&String>); 4] = [
        ("type", Some(&env.type_key)),
        ("id", env.id.as_ref()),
        ("timestamp", env.timestamp.as_ref()),
        ("correlationId", env.correlation_id.as_ref()),
    ];
    let binary_only: [(&str, bool); 5] = [
        ("length", env.length.is_some()),
        ("magic", env.magic.is_some()),
        ("version", env.version.is_some()),
        ("flags", env.flags.is_some()),
        ("checksum", env.checksum.is_some()),
    ];
    for (i, member) in env.optional.iter().enumerate() {
        let (key, present) = match member {
            crate::model::EnvelopeMember::Id => ("id", env.id.is_some()),
            crate::model::EnvelopeMember::Timestamp => ("timestamp", env.timestamp.is_some()),
            crate::model::EnvelopeMember::CorrelationId => {
                ("correlationId", env.correlation_id.is_some())
            }
        };
        if !present {
            c.push(
                Diagnostic::error(
                    "ipcspec::envelope",
                    format!("`{key}` is listed as optional but the envelope has no `{key}`"),
                )
                .at(&at.at("optional").at(i), "")
                .help(format!(
                    "name the key in `{key}`, or remove it from `optional`"
                )),
            );
        }
        if header.is_some() {
            c.push(
                Diagnostic::error(
                    "ipcspec::envelope",
                    "a binary header has no optional fields",
                )
                .at(&at.at("optional").at(i), "")
                .help("every header field is always present; remove `optional`"),
            );
        }
    }
    let Some(header) = header else {
        // JSON envelope: keys of the message object.
        if env.payload.is_none() {
            c.push(
                Diagnostic::error("ipcspec::envelope", "a JSON envelope needs a `payload` key")
                    .at(at, "")
                    .help("add `\"payload\": \"payload\"` (the key holding the message's payload)"),
            );
        }
        let mut keys: Vec<(&str, Src)> = Vec::new();
        for (member, key) in members
            .into_iter()
            .chain([("payload", env.payload.as_ref())])
        {
            if let Some(key) = key {
                c.casing("envelope key", key, casing, &at.at(member), "keyCasing");
                keys.push((key, at.at(member)));
            }
        }
        c.unique("envelope key", keys);
        for (member, present) in binary_only {
            if present {
                c.push(
                    Diagnostic::error(
                        "ipcspec::envelope",
                        format!("`{member}` belongs to a binary header"),
                    )
                    .at_key(&at.at(member), "")
                    .help("remove it: JSON framings carry length and integrity themselves"),
                );
            }
        }
        return;
    };
    if env.payload.is_some() {
        c.push(
            Diagnostic::error(
                "ipcspec::envelope",
                "a binary header has no payload key: the payload follows the header",
            )
            .at_key(&at.at("payload"), "")
            .help("remove `payload`"),
        );
    }
    let header_field = |name: &str| header.fields.iter().find(|f| f.name == name);
    let check_field =
        |c: &mut Checker, member: &str, name: &str, src: &Src, allowed: &[PrimitiveType]| {
            match header_field(name) {
                None => {
                    let hint = did_you_mean(name, header.fields.iter().map(|f| f.name.as_str()));
                    c.push(
                        Diagnostic::error(
                            "ipcspec::envelope",
                            format!("header `{}` has no field `{name}`{hint}", header.name),
                        )
                        .at(src, format!("the envelope's `{member}`"))
                        .help("name a field of the header struct"),
                    );
                }
                Some(field) => {
                    let primitive = c.int_repr(&field.ty).or_else(|| c.primitive(&field.ty));
                    if !primitive.is_some_and(|p| allowed.contains(&p)) {
                        let names: Vec<&str> = allowed.iter().map(|p| p.name()).collect();
                        c.push(
                            Diagnostic::error(
                                "ipcspec::envelope",
                                format!(
                                    "header field `{name}` cannot hold the envelope's `{member}`"
                                ),
                            )
                            .at(src, "")
                            .help(format!("its type must be one of: {}", names.join(", "))),
                        );
                    }
                }
            }
        };
    let ints = [
        PrimitiveType::U8,
        PrimitiveType::U16,
        PrimitiveType::U32,
        PrimitiveType::U64,
    ];
    for (member, key) in members {
        let Some(key) = key else { continue };
        let allowed: &[PrimitiveType] = if member == "timestamp" {
            &[PrimitiveType::U64, PrimitiveType::Timestamp]
        } else {
            &ints
        };
        check_field(c, member, key, &at.at(member), allowed);
    }
    if let Some(length) = &env.length {
        check_field(c, "length", length, &at.at("length"), &ints);
    } else {
        c.push(
            Diagnostic::error(
                "ipcspec::envelope",
                "a binary header needs a `length` field",
            )
            .at(at, "")
            .help("name the header field that holds the message length"),
        );
    }
    if let Some(flags) = &env.flags {
        check_field(c, "flags", flags, &at.at("flags"), &ints);
    }
    if let Some(checksum) = &env.checksum {
        let allowed: &[PrimitiveType] = match checksum.algorithm {
            ChecksumAlgorithm::Crc32c => &[PrimitiveType::U32],
        };
        check_field(
            c,
            "checksum",
            &checksum.field,
            &at.at("checksum").at("field"),
            allowed,
        );
    }
    for (member, fixed) in [("magic", &env.magic), ("version", &env.version)] {
        let Some(fixed) = fixed else { continue };
        check_field(c, member, &fixed.field, &at.at(member).at("field"), &ints);
        if !c.cat.constants.iter().any(|k| k.name == fixed.constant) {
            let hint = did_you_mean(
                &fixed.constant,
                c.cat.constants.iter().map(|k| k.name.as_str()),
            );
            c.push(
                Diagnostic::error(
                    "ipcspec::unknown-constant",
                    format!("unknown constant `{}`{hint}", fixed.constant),
                )
                .at(&at.at(member).at("constant"), "")
                .help("define it in `constants`"),
            );
        }
    }
    let mut calculator = LayoutCalculator::new(c.cat);
    if let Some(Ok(layout)) = calculator.layout(&header.name) {
        if i128::from(layout.size) > c.cat.wire.limits.max_message_bytes.value {
            c.push(
                Diagnostic::error(
                    "ipcspec::limits",
                    format!(
                        "`maxMessageBytes` is smaller than the {}-byte header",
                        layout.size
                    ),
                )
                .at(
                    &Src::default().at("wire").at("limits").at("maxMessageBytes"),
                    "",
                )
                .help("the limit counts the header and the payload"),
            );
        }
        if !layout.tail.is_empty() {
            c.push(
                Diagnostic::error(
                    "ipcspec::framing",
                    format!("header `{}` has variable-length fields", header.name),
                )
                .at(&header.src, "")
                .help("a header has a fixed size; move variable data into the payload"),
            );
        }
    }
}

fn timing(c: &mut Checker, at: &Src) {
    let timing = &c.cat.wire.timing;
    let durations = [
        ("heartbeatIntervalMs", &timing.heartbeat_interval_ms),
        ("staleAfterMs", &timing.stale_after_ms),
        ("connectTimeoutMs", &timing.connect_timeout_ms),
        ("requestTimeoutMs", &timing.request_timeout_ms),
        ("frameReadTimeoutMs", &timing.frame_read_timeout_ms),
    ];
    for (key, value) in durations {
        if let Some(v) = value {
            if v.value < 1 || v.value > u32::MAX as i128 {
                c.push(
                    Diagnostic::error(
                        "ipcspec::timing",
                        format!("`{key}` must be between 1 and 4294967295 ms"),
                    )
                    .at(&at.at(key), "")
                    .help("omit the member to disable the timer"),
                );
            }
        }
    }
    if let (Some(beat), Some(stale)) = (&timing.heartbeat_interval_ms, &timing.stale_after_ms) {
        if stale.value <= beat.value {
            c.push(
                Diagnostic::error(
                    "ipcspec::timing",
                    "`staleAfterMs` must be longer than `heartbeatIntervalMs`",
                )
                .at(&at.at("staleAfterMs"), "")
                .at(&at.at("heartbeatIntervalMs"), "")
                .help("allow at least two missed heartbeats, e.g. three times the interval"),
            );
        }
    }
    if let Some(r) = &timing.reconnect {
        let r_at = at.at("reconnect");
        if r.multiplier < 1.0 || !r.multiplier.is_finite() {
            c.push(
                Diagnostic::error("ipcspec::timing", "`multiplier` must be at least 1")
                    .at(&r_at.at("multiplier"), "")
                    .help("2 doubles the delay after each failed attempt"),
            );
        }
        if !(0.0..=1.0).contains(&r.jitter) {
            c.push(
                Diagnostic::error("ipcspec::timing", "`jitter` must be between 0 and 1")
                    .at(&r_at.at("jitter"), "")
                    .help("0 for none, 1 for full jitter"),
            );
        }
        if r.initial_delay_ms.value > r.max_delay_ms.value {
            c.push(
                Diagnostic::error(
                    "ipcspec::timing",
                    "`initialDelayMs` is greater than `maxDelayMs`",
                )
                .at(&r_at.at("initialDelayMs"), "")
                .at(&r_at.at("maxDelayMs"), "")
                .help("the delay grows from the initial value up to the maximum"),
            );
        }
        if r.max_attempts.value < 1 {
            c.push(
                Diagnostic::error("ipcspec::timing", "`maxAttempts` must be at least 1")
                    .at(&r_at.at("maxAttempts"), "")
                    .help("omit `reconnect` for a client that does not reconnect"),
            );
        }
    }
}

/// `unattributable`: declared whenever the profile answers messages, naming the
/// acknowledgment or error message, a declared code, and a correlation the envelope can
/// carry.
fn unattributable(c: &mut Checker, at: &Src) {
    let wire = &c.cat.wire;
    let at_u = at.at("unattributable");
    let Some(u) = &wire.unattributable else {
        // Without error codes there is nothing to name: such a profile answers nothing.
        if (wire.ack_message.is_some() || wire.error_message.is_some()) && !c.cat.errors.is_empty()
        {
            c.push(
                Diagnostic::error(
                    "ipcspec::unattributable",
                    "the profile answers messages but does not say what a receiver sends for a frame whose id cannot be read",
                )
                .at(at, "")
                .help("add `\"unattributable\": {\"message\": ..., \"code\": ..., \"correlation\": \"absent\" | \"zero\"}` to `wire`, so a peer is never left to guess whether a broken frame arrived"),
            );
        }
        return;
    };
    let answers = [wire.ack_message.as_deref(), wire.error_message.as_deref()];
    if let Some(m) = c.message(&u.message, &at_u.at("message")) {
        if !answers.contains(&Some(m.name.as_str())) {
            c.push(
                Diagnostic::error(
                    "ipcspec::unattributable",
                    format!("`{}` is neither the profile's `ackMessage` nor its `errorMessage`", u.message),
                )
                .at(&at_u.at("message"), "")
                .help("a receiver answers a frame it cannot attribute with the message it answers failures with"),
            );
        }
    }
    if !c.cat.errors.iter().any(|e| e.name == u.code) {
        let hint = did_you_mean(&u.code, c.cat.errors.iter().map(|e| e.name.as_str()));
        c.push(
            Diagnostic::error(
                "ipcspec::unattributable",
                format!("unknown error code `{}`{hint}", u.code),
            )
            .at(&at_u.at("code"), "")
            .help("name a code declared in `errors`"),
        );
    }
    let envelope = &wire.envelope;
    let problem = match (u.correlation, wire.encoding) {
        (_, _) if envelope.correlation_id.is_none() => {
            Some("the envelope has no `correlationId` to set or leave out")
        }
        (UnattributedCorrelation::Absent, Encoding::BinaryLe) => {
            Some("a binary header always carries its correlation id; it cannot be absent")
        }
        (UnattributedCorrelation::Zero, Encoding::Json) if !matches!(&envelope.id_type, Some(TypeRef::Named(t)) if t == "uuid" || PrimitiveType::from_name(t).is_some_and(|p| p.int_range().is_some())) => {
            Some(
                "a JSON id without a zero value (only `uuid` and integer ids have one) cannot be zero",
            )
        }
        _ => None,
    };
    if let Some(problem) = problem {
        c.push(
            Diagnostic::error("ipcspec::unattributable", problem.to_owned())
                .at(&at_u.at("correlation"), "")
                .help("use `absent` for an optional JSON correlation id, `zero` for a nil UUID or a binary header's 0"),
        );
    }
}

fn special_messages(c: &mut Checker, at: &Src) {
    let wire = &c.cat.wire;
    if let Some(name) = &wire.ack_message {
        c.message(name, &at.at("ackMessage"));
    }
    if let Some(name) = &wire.error_message {
        if let Some(m) = c.message(name, &at.at("errorMessage")) {
            if !m.is_reply {
                c.push(
                    Diagnostic::error("ipcspec::reply-role", format!("error message `{name}` is not a reply"))
                        .at(&at.at("errorMessage"), "")
                        .at_key(&m.src.at("name"), "")
                        .help(format!("add `\"isReply\": true` to `{name}`: it answers requests in place of their reply")),
                );
            }
        }
    }
    match (&wire.heartbeat_message, &wire.timing.heartbeat_interval_ms) {
        (Some(name), Some(_)) => {
            c.message(name, &at.at("heartbeatMessage"));
        }
        (Some(_), None) => c.push(
            Diagnostic::error(
                "ipcspec::timing",
                "a heartbeat message needs `timing.heartbeatIntervalMs`",
            )
            .at(&at.at("heartbeatMessage"), "")
            .help("add `\"heartbeatIntervalMs\": 30000` (or your interval) to `wire.timing`"),
        ),
        (None, Some(_)) => c.push(
            Diagnostic::error(
                "ipcspec::timing",
                "`heartbeatIntervalMs` is set but no `heartbeatMessage` is named",
            )
            .at(&at.at("timing").at("heartbeatIntervalMs"), "")
            .help("name the keep-alive message in `wire.heartbeatMessage`"),
        ),
        (None, None) => {}
    }
    if let Some(priority) = &wire.priority {
        let p_at = at.at("priority");
        match c.types.get(priority.enum_type.as_str()) {
            Some(TypeDef::IntEnum(e)) => {
                if !e.values.iter().any(|v| v.name == priority.default) {
                    let hint =
                        did_you_mean(&priority.default, e.values.iter().map(|v| v.name.as_str()));
                    c.push(
                        Diagnostic::error(
                            "ipcspec::unknown-value",
                            format!(
                                "`{}` is not a value of `{}`{hint}",
                                priority.default, e.name
                            ),
                        )
                        .at(&p_at.at("default"), "")
                        .help("name one of the enum's values"),
                    );
                }
            }
            Some(_) => c.push(
                Diagnostic::error(
                    "ipcspec::invalid-type",
                    format!(
                        "priority type `{}` is not an integer enum",
                        priority.enum_type
                    ),
                )
                .at(&p_at.at("enum"), "")
                .help("priorities are an `intEnum`, e.g. Low 0 .. Critical 255"),
            ),
            None => c.type_ref(
                &crate::model::TypeRef::Named(priority.enum_type.clone()),
                &p_at.at("enum"),
            ),
        }
    }
}
