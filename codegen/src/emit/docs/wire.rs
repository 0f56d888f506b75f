//! The wire profile: one function per wire section, each with its fixed anchor.

use super::Page;
use super::text::{list_or_none, one_line, order, wire_name};
use crate::emit::examples;
use crate::ir::{
    Encoding, Framing, Int64Encoding, LengthCounts, Struct, Ty, TypeKind, UnattributedCorrelation,
    UnknownKeys, names::anchor,
};

impl Page<'_> {
    pub(super) fn wire(&mut self) {
        self.heading(2, "wire", "Wire profile");
        for doc in &self.m.wire.docs {
            self.para(doc);
        }
        self.transports();
        self.framing();
        self.encoding();
        self.envelope();
        self.limits();
        self.timing();
        self.reconnect();
        self.heartbeat();
        self.acknowledgment();
        self.error_replies();
        self.unattributable();
        self.priority();
    }

    /// The transports a peer may connect over.
    fn transports(&mut self) {
        let m = self.m;
        let w = &m.wire;
        self.heading(3, "wire-transports", "Transports");
        let rows: Vec<Vec<String>> = w
            .transports
            .iter()
            .map(|t| {
                vec![
                    format!("`{}`", t.kind),
                    t.address.as_ref().map_or("—".into(), |a| format!("`{a}`")),
                    wire_name(t.platform),
                    if t.fd_passing {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                    t.channel
                        .as_ref()
                        .map_or("all".into(), |c| format!("`{c}`")),
                ]
            })
            .collect();
        self.table(
            &[
                "Kind",
                "Address",
                "Platform",
                "Descriptor passing",
                "Channel",
            ],
            &rows,
        );
        for t in &w.transports {
            if let Some(doc) = &t.doc {
                let address = t
                    .address
                    .as_ref()
                    .map_or(String::new(), |a| format!(" `{a}`"));
                self.line(&format!("- **{}**{address}: {}", t.kind, one_line(doc)));
            }
        }
        self.blank();
    }

    /// How frames are delimited.
    fn framing(&mut self) {
        let m = self.m;
        let w = &m.wire;
        self.heading(3, "wire-framing", "Framing");
        let limit = format!("{} bytes", w.max_message_bytes);
        match &w.framing {
            Framing::LengthPrefixed { width_bytes, byte_order } => self.para(&format!(
                "Length-prefixed: each frame is a {}-bit {} unsigned integer counting the bytes of the body that follows, then the body: exactly one message. A length above {limit} (`maxMessageBytes`) is refused before anything is allocated.",
                u32::from(*width_bytes) * 8,
                order(*byte_order)
            )),
            Framing::NewlineDelimited => self.para(&format!(
                "Newline-delimited: each message is one line of UTF-8 JSON ended by `\\n`; JSON string escapes keep raw newlines out of a message. Lines longer than {} are refused.",
                w.max_line_bytes.map_or(limit.clone(), |n| format!("{n} bytes (`maxLineBytes`)"))
            )),
            Framing::BinaryHeader { header, byte_order, length_counts } => {
                let td = m.ty(*header);
                let size = match &td.kind {
                    TypeKind::Struct(Struct { c_layout: Some(l), .. }) => format!(" ({} bytes)", l.size),
                    _ => String::new(),
                };
                let counts = match length_counts {
                    LengthCounts::HeaderAndPayload => "the header and the payload",
                    LengthCounts::Payload => "the payload only",
                };
                let link = self.type_link(td);
                self.para(&format!(
                    "Binary header: every message starts with the C-layout struct {link}{size}, {}, followed by the payload struct and its tail fields. The header's length field counts {counts}; a message longer than {limit} (`maxMessageBytes`) is refused before its payload is read.",
                    order(*byte_order)
                ));
            }
        }
    }

    /// How a message is encoded.
    fn encoding(&mut self) {
        let m = self.m;
        let w = &m.wire;
        self.heading(3, "wire-encoding", "Encoding");
        let mut items = Vec::new();
        match w.encoding {
            Encoding::Json => {
                items.push("Encoding: `json`, UTF-8 JSON objects in the forms of the JSON Schema (see [Types](#types)).".to_owned());
                items.push(format!(
                    "Object keys: `{}`, exactly as in the field tables.",
                    wire_name(w.key_casing)
                ));
                items.push(match w.int64 {
                    Int64Encoding::String => "64-bit integers (`i64`, `u64`): decimal strings such as `\"-12\"`, exact in every language.".to_owned(),
                    Int64Encoding::Number => "64-bit integers (`i64`, `u64`): JSON numbers.".to_owned(),
                });
                items.push(match w.unknown_keys {
                    UnknownKeys::Reject => "Undeclared object keys are rejected.".to_owned(),
                    UnknownKeys::Ignore => "Undeclared object keys are ignored.".to_owned(),
                });
                items.push("`bytes`: standard base64 with padding; `uuid`: hyphenated hex, written lower-case; `timestamp`: RFC 3339 with `Z` or an offset; `duration`: integer milliseconds; `fd`: index of a descriptor passed with the frame.".to_owned());
            }
            enc => {
                items.push(format!("Encoding: `{}` (binary). C-layout structs travel as their bytes in the computed layout, little-endian, padding zero; `intEnum` fields are their carrier integer; `timestamp` and `duration` are u64 nanoseconds; `uuid` is its 16 bytes; `bool` is one byte. Tail fields follow the fixed part packed, in order, each counted by its length field.", wire_name(enc)));
                items.push("The examples on this page and the JSON Schema show the decoded form `{\"header\": ..., \"payload\": ...}`, with each struct in its JSON form.".to_owned());
            }
        }
        for item in items {
            self.line(&format!("- {item}"));
        }
        self.blank();
    }

    /// The limits of the profile.
    fn limits(&mut self) {
        let m = self.m;
        let w = &m.wire;
        self.heading(3, "wire-limits", "Limits");
        let mut rows = vec![vec![
            "Largest message (`maxMessageBytes`)".to_owned(),
            format!("{} bytes", w.max_message_bytes),
        ]];
        if let Some(n) = w.max_line_bytes {
            rows.push(vec![
                "Longest line (`maxLineBytes`)".into(),
                format!("{n} bytes"),
            ]);
        }
        if let Some(n) = w.max_nesting_depth {
            rows.push(vec![
                "Deepest JSON nesting (`maxNestingDepth`)".into(),
                n.to_string(),
            ]);
        }
        if let Some(n) = w.max_connections {
            rows.push(vec![
                "Most connections (`maxConnections`)".into(),
                n.to_string(),
            ]);
        }
        self.table(&["Limit", "Value"], &rows);
    }

    /// Heartbeat, stale, connect, request and frame-read times.
    fn timing(&mut self) {
        let m = self.m;
        let w = &m.wire;
        self.heading(3, "wire-timing", "Timing");
        let t = &w.timing;
        let ms = |v: Option<u64>| v.map_or("—".to_owned(), |v| format!("{v} ms"));
        let rows = vec![
            vec![
                "Heartbeat interval (`heartbeatIntervalMs`)".to_owned(),
                ms(t.heartbeat_interval_ms),
            ],
            vec![
                "Peer stale after (`staleAfterMs`)".into(),
                ms(t.stale_after_ms),
            ],
            vec![
                "Connect timeout (`connectTimeoutMs`)".into(),
                ms(t.connect_timeout_ms),
            ],
            vec![
                "Request timeout (`requestTimeoutMs`)".into(),
                ms(t.request_timeout_ms),
            ],
            vec![
                "Frame read timeout (`frameReadTimeoutMs`)".into(),
                ms(t.frame_read_timeout_ms),
            ],
        ];
        self.table(&["Setting", "Value"], &rows);
    }

    /// The reconnection policy.
    fn reconnect(&mut self) {
        let m = self.m;
        let w = &m.wire;
        let t = &w.timing;
        self.heading(4, "wire-reconnect", "Reconnection");
        match &t.reconnect {
            Some(r) => {
                let mut rows = vec![
                    vec![
                        "Attempts (`maxAttempts`)".to_owned(),
                        r.max_attempts.to_string(),
                    ],
                    vec![
                        "First delay (`initialDelayMs`)".into(),
                        format!("{} ms", r.initial_delay_ms),
                    ],
                    vec![
                        "Largest delay (`maxDelayMs`)".into(),
                        format!("{} ms", r.max_delay_ms),
                    ],
                    vec![
                        "Growth factor (`multiplier`)".into(),
                        r.multiplier.to_string(),
                    ],
                    vec!["Jitter (`jitter`)".into(), r.jitter.to_string()],
                ];
                if let Some(q) = r.max_queued_messages {
                    rows.push(vec![
                        "Messages queued while disconnected (`maxQueuedMessages`)".into(),
                        q.to_string(),
                    ]);
                }
                self.table(&["Setting", "Value"], &rows);
            }
            None => self.para("The profile defines no reconnection policy."),
        }
    }

    /// The heartbeat message and interval.
    fn heartbeat(&mut self) {
        let m = self.m;
        let w = &m.wire;
        let t = &w.timing;
        self.heading(3, "wire-heartbeat", "Heartbeat");
        let text = match (&w.heartbeat_message, t.heartbeat_interval_ms) {
            (Some(msg), interval) => format!(
                "Each peer sends {}{}{}.",
                self.msg_link(msg),
                interval.map_or(String::new(), |i| format!(" every {i} ms")),
                t.stale_after_ms.map_or(String::new(), |s| format!(
                    "; a peer from which nothing arrives for {s} ms is considered dead"
                ))
            ),
            (None, Some(i)) => {
                format!("Heartbeats every {i} ms; the profile names no heartbeat message.")
            }
            (None, None) => "The profile has no heartbeat.".to_owned(),
        };
        self.para(&text);
    }

    /// Which messages are acknowledged, and with what.
    fn acknowledgment(&mut self) {
        let m = self.m;
        let w = &m.wire;
        let t = &w.timing;
        self.heading(3, "wire-acknowledgment", "Acknowledgments");
        let acked: Vec<String> = m
            .messages
            .iter()
            .filter(|x| x.acknowledged)
            .map(|x| self.msg_link(&x.name))
            .collect();
        let text = match &w.ack_message {
            Some(ack) => format!(
                "The receiver of an acknowledged message answers with {}, whose correlation id is the acknowledged message's id{}. Acknowledged messages: {}.",
                self.msg_link(ack),
                t.request_timeout_ms
                    .map_or(String::new(), |ms| format!(", within {ms} ms")),
                list_or_none(&acked)
            ),
            None => "The profile has no acknowledgment message.".to_owned(),
        };
        self.para(&text);
    }

    /// The error message a failed request gets.
    fn error_replies(&mut self) {
        let m = self.m;
        let w = &m.wire;
        self.heading(3, "wire-errors", "Error replies");
        let text = match &w.error_message {
            Some(err) => format!(
                "A request that fails is answered with {} instead of its reply, correlated like a reply.{}",
                self.msg_link(err),
                if m.errors.codes.is_empty() {
                    String::new()
                } else {
                    " The codes are listed under [Error codes](#errors).".to_owned()
                }
            ),
            None => "The profile has no error message.".to_owned(),
        };
        self.para(&text);
    }

    /// What a receiver answers a frame whose message id cannot be read with.
    fn unattributable(&mut self) {
        self.heading(3, "wire-unattributable", "Frames that cannot be attributed");
        let text = match &self.m.wire.unattributable {
            Some(u) => {
                let correlation = match u.correlation {
                    UnattributedCorrelation::Absent => "without a correlation id",
                    UnattributedCorrelation::Zero => {
                        "with the zero correlation id (the nil UUID, or 0 in a binary header)"
                    }
                };
                let doc = u.doc.as_deref().map_or(String::new(), |d| format!(" {d}"));
                format!(
                    "A frame whose message id cannot be read cannot be answered like the message it was meant to be. The receiver answers it with {} {correlation}, carrying [`{}`](#{}).{doc}",
                    self.msg_link(&u.message),
                    u.code,
                    anchor(&["error", &u.code]),
                )
            }
            None => "The profile names no answer to a frame that cannot be attributed.".to_owned(),
        };
        self.para(&text);
    }

    /// Priority levels and the messages that have their own.
    fn priority(&mut self) {
        let m = self.m;
        let w = &m.wire;
        self.heading(3, "wire-priority", "Priority");
        let text = match &w.priority {
            Some((id, default)) => {
                let explicit: Vec<String> = m
                    .messages
                    .iter()
                    .filter_map(|x| {
                        x.priority
                            .as_ref()
                            .map(|p| format!("{} `{p}`", self.msg_link(&x.name)))
                    })
                    .collect();
                format!(
                    "Priority levels are the values of {}; a message without its own priority has `{default}`. Messages with their own priority: {}.",
                    self.type_link(m.ty(*id)),
                    list_or_none(&explicit)
                )
            }
            None => "The profile has no message priorities.".to_owned(),
        };
        self.para(&text);
    }

    pub(super) fn envelope(&mut self) {
        let m = self.m;
        let env = &m.wire.envelope;
        self.heading(3, "wire-envelope", "Envelope");
        let id_ty = env
            .id
            .as_ref()
            .map_or(Ty::Prim(crate::ir::PrimitiveType::String), |(_, t)| {
                t.clone()
            });
        let mut rows = Vec::new();
        if examples::is_binary(m) {
            let member = |name: &str, field: &Option<String>, what: &str| {
                field
                    .as_ref()
                    .map(|f| vec![name.to_owned(), format!("`{f}`"), what.to_owned()])
            };
            rows.extend(member(
                "Message type",
                &Some(env.type_key.clone()),
                "the message's code",
            ));
            rows.extend(member(
                "Length",
                &env.length,
                "bytes of the message (see [Framing](#wire-framing))",
            ));
            if let Some((f, v)) = &env.magic {
                rows.push(vec![
                    "Magic".into(),
                    format!("`{f}`"),
                    format!("always `{v:#x}`"),
                ]);
            }
            if let Some((f, v)) = &env.version {
                rows.push(vec![
                    "Version".into(),
                    format!("`{f}`"),
                    format!("always `{v}`"),
                ]);
            }
            rows.extend(member(
                "Message id",
                &env.id.as_ref().map(|(k, _)| k.clone()),
                "sender-chosen id",
            ));
            rows.extend(member("Timestamp", &env.timestamp, "send time"));
            rows.extend(member(
                "Correlation id",
                &env.correlation_id,
                "correlation id; a reply copies the one of the message it answers",
            ));
            let flags_text = match &env.flag_bits {
                Some(bits) => {
                    let mut parts = Vec::new();
                    if bits.reply != 0 {
                        parts.push(format!(
                            "`{:#x}` on every reply, error and acknowledgment",
                            bits.reply
                        ));
                    }
                    if let Some(shift) = bits.priority_shift {
                        parts.push(format!(
                            "the message's priority value shifted left by {shift}"
                        ));
                    }
                    let set = if parts.is_empty() {
                        "no bits".to_owned()
                    } else {
                        parts.join(", ")
                    };
                    format!(
                        "set by the envelope per message: {set}, every other bit zero (each message lists its value); a receiver answers other flags with `{}`",
                        bits.error
                    )
                }
                None => "flag bits".to_owned(),
            };
            rows.extend(member("Flags", &env.flags, &flags_text));
            if let Some((f, alg)) = &env.checksum {
                rows.push(vec!["Checksum".into(), format!("`{f}`"), wire_name(alg)]);
            }
            self.table(&["Member", "Header field", "Content"], &rows);
        } else {
            let required = |optional: bool| if optional { "optional" } else { "required" };
            rows.push(vec![
                "Message type".to_owned(),
                format!("`{}`", env.type_key),
                "string: the message's wire name".into(),
                "required".into(),
            ]);
            if let Some((k, ty)) = &env.id {
                rows.push(vec![
                    "Message id".into(),
                    format!("`{k}`"),
                    self.ty(ty),
                    required(env.id_optional).into(),
                ]);
            }
            if let Some(k) = &env.timestamp {
                rows.push(vec![
                    "Timestamp".into(),
                    format!("`{k}`"),
                    "`timestamp`".into(),
                    required(env.timestamp_optional).into(),
                ]);
            }
            if let Some(k) = &env.correlation_id {
                rows.push(vec![
                    "Correlation id".into(),
                    format!("`{k}`"),
                    self.ty(&id_ty),
                    format!(
                        "{} on replies, absent on other messages",
                        required(env.correlation_optional)
                    ),
                ]);
            }
            if let Some(k) = &env.payload {
                rows.push(vec![
                    "Payload".into(),
                    format!("`{k}`"),
                    "the message's payload type; `{}` for a message without payload".into(),
                    "required".into(),
                ]);
            }
            self.table(&["Member", "Key", "Type", "Presence"], &rows);
        }
        if let Some(doc) = &env.doc {
            self.para(doc);
        }
    }
}
