//! Documentation emitter: `generated/docs/<module>.md`, one Markdown page per catalogue.
//!
//! The page has stable anchors (`<a id="..."></a>`) that tests and conformance cases cite
//! as `migration.md#msg-backup-request`: the IR's own anchors for messages (`msg-...`),
//! types (`type-...`) and state machines (`machine-...`), the fixed anchors of
//! [`SECTION_ANCHORS`] and [`WIRE_ANCHORS`] (present on every page, saying "none" when the
//! profile lacks the item), and derived ones for roles (`role-...`), channels
//! (`channel-...`), message groups (`messages-<from>-to-<to>`), sequence diagrams
//! (`seq-<message>`), constants (`const-...`), error codes (`error-...`), ioctls
//! (`ioctl-...`) and machine states (`<machine anchor>-state-<state>`). Every anchor is
//! unique within its page; a derived anchor that would repeat another gets a numeric
//! suffix. Every ```json block is a full example envelope (the decoded form for binary
//! encodings) that the module's JSON Schema accepts.

use std::collections::BTreeSet;

use crate::emit::banner;
use crate::emit::examples;
use crate::ir::{
    ByteOrder, ConstValue, Constraints, Encoding, Field, Framing, Int64Encoding, IoctlDirection,
    LengthCounts, Machine, Message, Module, Struct, Trigger, Ty, TypeDef, TypeKind, UnionRepr,
    UnknownKeys, names::anchor,
};
use crate::output::{OutputFile, Target};

/// Anchors of the page's top-level sections (those of absent sections are not emitted).
pub const SECTION_ANCHORS: [&str; 10] = [
    "roles",
    "channels",
    "wire",
    "messages",
    "sequences",
    "types",
    "constants",
    "errors",
    "ioctls",
    "machines",
];

/// Anchors of the wire requirements, present on every page.
pub const WIRE_ANCHORS: [&str; 11] = [
    "wire-transports",
    "wire-framing",
    "wire-encoding",
    "wire-envelope",
    "wire-limits",
    "wire-timing",
    "wire-reconnect",
    "wire-heartbeat",
    "wire-acknowledgment",
    "wire-errors",
    "wire-priority",
];

/// Emits `<module>.md` for every module.
pub fn emit(modules: &[Module]) -> anyhow::Result<Vec<OutputFile>> {
    modules
        .iter()
        .map(|m| {
            Ok(OutputFile {
                target: Target::Docs,
                path: file_name(m),
                contents: render(m)?,
            })
        })
        .collect()
}

/// The page's file name under `generated/docs`.
pub fn file_name(module: &Module) -> String {
    format!("{}.md", module.name)
}

/// The anchor of the sequence diagram of `msg` (a request with a reply, or an
/// acknowledged message).
pub fn sequence_anchor(msg: &Message) -> String {
    anchor(&["seq", &msg.name])
}

/// The Markdown page of a module.
pub fn render(m: &Module) -> anyhow::Result<String> {
    let mut page = Page::new(m);
    page.header();
    page.roles();
    page.channels();
    page.wire();
    page.messages()?;
    page.sequences();
    page.types();
    page.constants();
    page.errors();
    page.ioctls();
    page.machines();
    let mut out = page.out.trim_end().to_owned();
    out.push('\n');
    Ok(out)
}

struct Page<'m> {
    m: &'m Module,
    out: String,
    used: BTreeSet<String>,
    reserved: BTreeSet<String>,
}

impl<'m> Page<'m> {
    fn new(m: &'m Module) -> Self {
        let reserved = m
            .types
            .iter()
            .map(|t| t.anchor.clone())
            .chain(m.messages.iter().map(|x| x.anchor.clone()))
            .chain(m.machines.iter().map(|x| x.anchor.clone()))
            .chain(SECTION_ANCHORS.iter().map(|s| (*s).to_owned()))
            .chain(WIRE_ANCHORS.iter().map(|s| (*s).to_owned()))
            .collect();
        Page {
            m,
            out: String::new(),
            used: BTreeSet::new(),
            reserved,
        }
    }

    fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn blank(&mut self) {
        if !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn para(&mut self, text: &str) {
        let text = text.trim();
        if !text.is_empty() {
            self.blank();
            self.line(text);
            self.blank();
        }
    }

    /// A derived anchor, made unique.
    fn fresh(&mut self, base: &str) -> String {
        let mut candidate = base.to_owned();
        let mut n = 2;
        while self.used.contains(&candidate) || self.reserved.contains(&candidate) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        self.used.insert(candidate.clone());
        candidate
    }

    /// A fixed or IR anchor (already unique by construction).
    fn fixed(&mut self, id: &str) -> String {
        self.used.insert(id.to_owned());
        format!("<a id=\"{id}\"></a>")
    }

    fn heading(&mut self, level: usize, id: &str, title: &str) {
        self.blank();
        let a = self.fixed(id);
        self.line(&a);
        self.line(&format!("{} {title}", "#".repeat(level)));
        self.blank();
    }

    fn table(&mut self, head: &[&str], rows: &[Vec<String>]) {
        self.blank();
        self.line(&format!("| {} |", head.join(" | ")));
        self.line(&format!("|{}", " --- |".repeat(head.len())));
        for row in rows {
            let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
            self.line(&format!("| {} |", cells.join(" | ")));
        }
        self.blank();
    }

    // ---- links -------------------------------------------------------------------

    fn msg_link(&self, name: &str) -> String {
        match self.m.message(name) {
            Some(msg) => format!("[`{name}`](#{})", msg.anchor),
            None => format!("`{name}`"),
        }
    }

    fn type_link(&self, td: &TypeDef) -> String {
        format!("[`{}`](#{})", td.name, td.anchor)
    }

    fn ty(&self, ty: &Ty) -> String {
        match ty {
            Ty::Prim(p) => format!("`{}`", p.name()),
            Ty::Named(id) => self.type_link(self.m.ty(*id)),
            Ty::List(item) => format!("list of {}", self.ty(item)),
            Ty::Map(item) => format!("map of {}", self.ty(item)),
            Ty::Array(item, n) => format!("array of {n} × {}", self.ty(item)),
        }
    }

    fn roles_text(roles: &[String]) -> String {
        roles
            .iter()
            .map(|r| format!("`{r}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    // ---- sections ----------------------------------------------------------------

    fn header(&mut self) {
        let m = self.m;
        self.line(&format!("<!-- {} -->", banner(m)));
        self.blank();
        self.line(&format!("# {}", m.title));
        self.blank();
        self.line(&format!(
            "Protocol `{}` version {}, generated from `{}`. Machine-readable forms: the JSON Schema `{}` and the generated Rust, C and TypeScript code.",
            m.name,
            m.version,
            m.source,
            crate::emit::jsonschema::file_name(m)
        ));
        self.para(&m.description);
        self.line("## Contents");
        self.blank();
        let mut toc = vec![("Roles", "roles")];
        if !m.channels.is_empty() {
            toc.push(("Channels", "channels"));
        }
        toc.extend([
            ("Wire profile", "wire"),
            ("Messages", "messages"),
            ("Sequences", "sequences"),
            ("Types", "types"),
        ]);
        if !m.constants.is_empty() {
            toc.push(("Constants", "constants"));
        }
        if !m.errors.codes.is_empty() {
            toc.push(("Error codes", "errors"));
        }
        if !m.ioctls.is_empty() {
            toc.push(("ioctl commands", "ioctls"));
        }
        if !m.machines.is_empty() {
            toc.push(("State machines", "machines"));
        }
        for (title, id) in toc {
            self.line(&format!("- [{title}](#{id})"));
        }
        self.blank();
    }

    fn roles(&mut self) {
        let m = self.m;
        self.heading(2, "roles", "Roles");
        let mut rows = Vec::new();
        for role in &m.roles {
            let a = self.fresh(&anchor(&["role", &role.name]));
            let sends: Vec<String> = m
                .sent_by(&role.name)
                .map(|x| self.msg_link(&x.name))
                .collect();
            let receives: Vec<String> = m
                .received_by(&role.name)
                .map(|x| self.msg_link(&x.name))
                .collect();
            rows.push(vec![
                format!("<a id=\"{a}\"></a>`{}`", role.name),
                role.doc.clone(),
                list_or_none(&sends),
                list_or_none(&receives),
            ]);
        }
        self.table(&["Role", "Description", "Sends", "Receives"], &rows);
    }

    fn channels(&mut self) {
        let m = self.m;
        if m.channels.is_empty() {
            return;
        }
        self.heading(2, "channels", "Channels");
        let mut rows = Vec::new();
        for ch in &m.channels {
            let a = self.fresh(&anchor(&["channel", &ch.name]));
            let carried: Vec<String> = m
                .messages
                .iter()
                .filter(|x| x.channels.contains(&ch.name))
                .map(|x| self.msg_link(&x.name))
                .collect();
            rows.push(vec![
                format!("<a id=\"{a}\"></a>`{}`", ch.name),
                format!(
                    "{} ↔ {}",
                    Self::roles_text(&ch.ends[0]),
                    Self::roles_text(&ch.ends[1])
                ),
                list_or_none(&carried),
                ch.doc.clone(),
            ]);
        }
        self.table(&["Channel", "Ends", "Messages", "Description"], &rows);
    }

    fn wire(&mut self) {
        let m = self.m;
        let w = &m.wire;
        self.heading(2, "wire", "Wire profile");
        for doc in &w.docs {
            self.para(doc);
        }

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

        self.envelope();

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

    fn envelope(&mut self) {
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
            rows.extend(member("Flags", &env.flags, "flag bits"));
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

    fn messages(&mut self) -> anyhow::Result<()> {
        let m = self.m;
        self.heading(2, "messages", "Messages");
        self.para("Messages are grouped by direction. Each example is a complete envelope that the JSON Schema accepts.");
        let mut groups: Vec<(&[String], &[String], Vec<&Message>)> = Vec::new();
        for msg in &m.messages {
            match groups
                .iter_mut()
                .find(|(f, t, _)| *f == msg.from.as_slice() && *t == msg.to.as_slice())
            {
                Some((_, _, list)) => list.push(msg),
                None => groups.push((&msg.from, &msg.to, vec![msg])),
            }
        }
        for (from, to, list) in groups {
            let id = self.fresh(&format!(
                "messages-{}-to-{}",
                anchor(&from.iter().map(String::as_str).collect::<Vec<_>>()),
                anchor(&to.iter().map(String::as_str).collect::<Vec<_>>())
            ));
            self.heading(
                3,
                &id,
                &format!("{} → {}", Self::roles_text(from), Self::roles_text(to)),
            );
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|msg| {
                    vec![
                        self.msg_link(&msg.name),
                        msg.code.map_or("—".into(), code),
                        msg.payload.as_ref().map_or("none".into(), |t| self.ty(t)),
                        msg.reply.as_ref().map_or("—".into(), |r| self.msg_link(r)),
                        if msg.acknowledged {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        summary(&msg.doc),
                    ]
                })
                .collect();
            self.table(
                &[
                    "Message",
                    "Code",
                    "Payload",
                    "Reply",
                    "Acknowledged",
                    "Summary",
                ],
                &rows,
            );
            for msg in list {
                self.message(msg)?;
            }
        }
        Ok(())
    }

    fn message(&mut self, msg: &Message) -> anyhow::Result<()> {
        let m = self.m;
        self.heading(4, &msg.anchor, &format!("`{}`", msg.name));
        self.para(&msg.doc);
        let mut facts = vec![format!(
            "**Direction:** {} → {}",
            Self::roles_text(&msg.from),
            Self::roles_text(&msg.to)
        )];
        if !msg.channels.is_empty() {
            let chans: Vec<String> = msg.channels.iter().map(|c| format!("`{c}`")).collect();
            facts.push(format!("**Channels:** {}", chans.join(", ")));
        }
        if let Some(c) = msg.code {
            facts.push(format!("**Code:** {}", code(c)));
        }
        facts.push(format!(
            "**Payload:** {}",
            msg.payload
                .as_ref()
                .map_or("none (`{}`)".to_owned(), |t| self.ty(t))
        ));
        let seq = sequence_anchor(msg);
        if let Some(r) = &msg.reply {
            facts.push(format!(
                "**Reply:** {} ([sequence](#{seq}))",
                self.msg_link(r)
            ));
        }
        let answers: Vec<String> = m
            .messages
            .iter()
            .filter(|x| x.reply.as_deref() == Some(msg.name.as_str()))
            .map(|x| self.msg_link(&x.name))
            .collect();
        if !answers.is_empty() {
            facts.push(format!("**Reply to:** {}", answers.join(", ")));
        }
        if m.wire.ack_message.as_deref() == Some(msg.name.as_str()) {
            facts.push("**Role:** acknowledgment of every acknowledged message ([Acknowledgments](#wire-acknowledgment))".into());
        }
        if m.wire.error_message.as_deref() == Some(msg.name.as_str()) {
            facts.push("**Role:** error reply ([Error replies](#wire-errors))".into());
        }
        if m.wire.heartbeat_message.as_deref() == Some(msg.name.as_str()) {
            facts.push("**Role:** heartbeat ([Heartbeat](#wire-heartbeat))".into());
        }
        if msg.is_reply {
            let key = m
                .wire
                .envelope
                .correlation_id
                .as_deref()
                .unwrap_or("correlation id");
            facts.push(format!(
                "**Correlation:** a reply; `{key}` holds the id of the message answered{}",
                if m.wire.envelope.correlation_optional {
                    " (optional)"
                } else {
                    ""
                }
            ));
        }
        if msg.acknowledged {
            let ack = m
                .wire
                .ack_message
                .as_ref()
                .map_or("an acknowledgment".to_owned(), |a| self.msg_link(a));
            facts.push(format!(
                "**Acknowledged:** yes, with {ack} ([sequence](#{seq}))"
            ));
        } else {
            facts.push("**Acknowledged:** no".into());
        }
        match (&msg.priority, &m.wire.priority) {
            (Some(p), _) => facts.push(format!("**Priority:** `{p}`")),
            (None, Some((_, default))) => {
                facts.push(format!("**Priority:** `{default}` (default)"))
            }
            (None, None) => {}
        }
        let states: Vec<String> = m
            .machines
            .iter()
            .filter(|mach| {
                mach.transitions.iter().any(
                    |t| matches!(&t.on, Trigger::Send(n) | Trigger::Receive(n) if *n == msg.name),
                )
            })
            .map(|mach| format!("[`{}`](#{})", mach.name, mach.anchor))
            .collect();
        if !states.is_empty() {
            facts.push(format!("**State machines:** {}", states.join(", ")));
        }
        self.blank();
        for fact in facts {
            self.line(&format!("- {fact}"));
        }
        self.blank();
        let example = examples::envelope(m, msg)?;
        if examples::is_binary(m) {
            self.para("Example in decoded form (on the wire: the header's bytes, then the payload's; the length is the real one, the checksum is left 0 here because the codec computes it over the encoded bytes):");
        } else {
            self.para("Example:");
        }
        self.line("```json");
        self.line(&serde_json::to_string_pretty(&example)?);
        self.line("```");
        self.blank();
        Ok(())
    }

    fn sequences(&mut self) {
        let m = self.m;
        self.heading(2, "sequences", "Sequences");
        let exchanges: Vec<&Message> = m
            .messages
            .iter()
            .filter(|x| x.reply.is_some() || x.acknowledged)
            .collect();
        if exchanges.is_empty() {
            self.para("No message expects a reply or an acknowledgment.");
            return;
        }
        self.para("One diagram per request with a reply and per acknowledged message.");
        let env = &m.wire.envelope;
        let (request_key, answer_key) = match (&env.id, &env.correlation_id) {
            (Some((id, _)), Some(corr)) => (Some(id.clone()), Some(corr.clone())),
            (None, Some(corr)) => (Some(corr.clone()), Some(corr.clone())),
            (Some((id, _)), None) => (Some(id.clone()), None),
            (None, None) => (None, None),
        };
        let req = |name: &str| match &request_key {
            Some(k) => format!("{name} ({k} = n)"),
            None => name.to_owned(),
        };
        let ans = |name: &str| match &answer_key {
            Some(k) => format!("{name} ({k} = n)"),
            None => name.to_owned(),
        };
        for msg in exchanges {
            let title = match &msg.reply {
                Some(r) => format!("`{}` → `{r}`", msg.name),
                None => format!("`{}` (acknowledged)", msg.name),
            };
            let id = sequence_anchor(msg);
            let id = if self.used.contains(&id) || self.reserved.contains(&id) {
                self.fresh(&id)
            } else {
                id
            };
            self.heading(3, &id, &title);
            let mut lines = vec![
                "sequenceDiagram".to_owned(),
                format!(
                    "    participant S as {}",
                    mermaid_text(&msg.from.join(" or "))
                ),
                format!(
                    "    participant R as {}",
                    mermaid_text(&msg.to.join(" or "))
                ),
                format!("    S->>R: {}", mermaid_text(&req(&msg.name))),
            ];
            if msg.acknowledged {
                if let Some(ack) = &m.wire.ack_message {
                    lines.push(format!("    R-->>S: {}", mermaid_text(&ans(ack))));
                }
            }
            if let Some(reply) = &msg.reply {
                let error = m.wire.error_message.as_ref().filter(|e| {
                    *e != reply
                        && m.message(e).is_some_and(|err| {
                            err.from.iter().any(|r| msg.to.contains(r))
                                && err.to.iter().any(|r| msg.from.contains(r))
                        })
                });
                match error {
                    Some(err) => {
                        lines.push("    alt handled".into());
                        lines.push(format!("        R-->>S: {}", mermaid_text(&ans(reply))));
                        lines.push("    else failed".into());
                        lines.push(format!("        R-->>S: {}", mermaid_text(&ans(err))));
                        lines.push("    end".into());
                    }
                    None => lines.push(format!("    R-->>S: {}", mermaid_text(&ans(reply)))),
                }
            }
            if let Some(timeout) = m.wire.timing.request_timeout_ms {
                lines.push(format!(
                    "    Note over S: no answer within {timeout} ms, the request times out"
                ));
            }
            self.line("```mermaid");
            for l in lines {
                self.line(&l);
            }
            self.line("```");
            self.blank();
        }
    }

    fn types(&mut self) {
        let m = self.m;
        self.heading(2, "types", "Types");
        let rows: Vec<Vec<String>> = m
            .types
            .iter()
            .map(|td| vec![self.type_link(td), kind_name(td).into(), summary(&td.doc)])
            .collect();
        self.table(&["Type", "Kind", "Summary"], &rows);
        for td in &m.types {
            self.type_section(td);
        }
    }

    fn type_section(&mut self, td: &TypeDef) {
        let m = self.m;
        self.heading(3, &td.anchor, &format!("`{}`", td.name));
        let mut kind = format!("*{}*", kind_name(td));
        if let TypeKind::Struct(Struct {
            c_layout: Some(l), ..
        }) = &td.kind
        {
            kind.push_str(&format!(
                ", C layout: {} bytes, alignment {}",
                l.size, l.align
            ));
            if !l.tail.is_empty() {
                kind.push_str(", followed by tail fields");
            }
        }
        self.para(&format!("{kind}."));
        self.para(&td.doc);
        match &td.kind {
            TypeKind::Struct(s) => {
                let c = s.c_layout.is_some();
                let mut head = vec!["Field", "Type", "Presence", "Constraints"];
                if c {
                    head.extend(["Offset", "Size"]);
                }
                head.push("Description");
                let rows: Vec<Vec<String>> = s
                    .fields
                    .iter()
                    .map(|f| {
                        let mut row = vec![
                            format!("`{}`", f.wire),
                            self.field_ty(f),
                            presence(f),
                            constraints(&f.constraints),
                        ];
                        if let Some(layout) = &s.c_layout {
                            match layout.fields.iter().find(|cf| cf.name == f.wire) {
                                Some(cf) => {
                                    row.push(f.c_offset.unwrap_or(cf.offset).to_string());
                                    row.push(cf.size.to_string());
                                }
                                None => {
                                    row.push("tail".into());
                                    row.push(
                                        f.length_field
                                            .as_ref()
                                            .map_or("—".into(), |l| format!("count in `{l}`")),
                                    );
                                }
                            }
                        }
                        row.push(f.doc.clone());
                        row
                    })
                    .collect();
                self.table(&head, &rows);
            }
            TypeKind::Enum(e) => {
                let rows: Vec<Vec<String>> = e
                    .values
                    .iter()
                    .map(|v| {
                        vec![
                            format!("`{}`", v.name),
                            format!("`\"{}\"`", v.wire),
                            v.doc.clone(),
                        ]
                    })
                    .collect();
                self.table(&["Value", "Wire", "Description"], &rows);
            }
            TypeKind::IntEnum(e) => {
                self.para(&format!("Carried as `{}`.", e.repr.name()));
                let rows: Vec<Vec<String>> = e
                    .values
                    .iter()
                    .map(|v| {
                        vec![
                            format!("`{}`", v.name),
                            format!("{} (`{:#x}`)", v.value, v.value),
                            v.doc.clone(),
                        ]
                    })
                    .collect();
                self.table(&["Value", "Number", "Description"], &rows);
            }
            TypeKind::Union(u) => {
                let repr = match u.repr {
                    UnionRepr::Internal => format!(
                        "Internally tagged: the key `{}` holds the variant's tag, beside the variant struct's own keys.",
                        u.tag
                    ),
                    UnionRepr::Adjacent => format!(
                        "Adjacently tagged: the key `{}` holds the variant's tag and `{}` its content (absent for a variant without content).",
                        u.tag,
                        u.content.as_deref().unwrap_or("")
                    ),
                };
                self.para(&repr);
                let rows: Vec<Vec<String>> = u
                    .variants
                    .iter()
                    .map(|v| {
                        vec![
                            format!("`{}`", v.name),
                            format!("`\"{}\"`", v.wire),
                            v.ty.as_ref().map_or("none".into(), |t| self.ty(t)),
                            v.doc.clone(),
                        ]
                    })
                    .collect();
                self.table(&["Variant", "Tag", "Content", "Description"], &rows);
            }
            TypeKind::Alias(a) => {
                let k = constraints(&a.constraints);
                self.para(&format!(
                    "Alias of {}{}.",
                    self.ty(&a.ty),
                    if k == "—" {
                        String::new()
                    } else {
                        format!(", constrained: {k}")
                    }
                ));
            }
        }
        let users: Vec<String> = m
            .messages
            .iter()
            .filter(|x| x.payload.as_ref().is_some_and(|p| mentions(m, p, &td.name)))
            .map(|x| self.msg_link(&x.name))
            .collect();
        if !users.is_empty() {
            self.para(&format!("Payload of {}.", users.join(", ")));
        }
        let ioctls: Vec<String> = m
            .ioctls
            .iter()
            .filter(|i| i.arg.is_some_and(|a| m.ty(a).name == td.name))
            .map(|i| format!("[`{}`](#{})", i.name, anchor(&["ioctl", &i.name])))
            .collect();
        if !ioctls.is_empty() {
            self.para(&format!("Argument of the ioctl(s) {}.", ioctls.join(", ")));
        }
    }

    fn field_ty(&self, f: &Field) -> String {
        let mut t = self.ty(&f.ty);
        if let Some((of, count)) = &f.pointee {
            t.push_str(&format!(", user pointer to {} × `{count}`", self.ty(of)));
        }
        t
    }

    fn constants(&mut self) {
        let m = self.m;
        if m.constants.is_empty() {
            return;
        }
        self.heading(2, "constants", "Constants");
        let mut rows = Vec::new();
        for c in &m.constants {
            let a = self.fresh(&anchor(&["const", &c.name]));
            let value = match (&c.value, &c.text) {
                (ConstValue::Int(v), Some(text)) if text != &v.to_string() => {
                    format!("`{text}` ({v})")
                }
                (ConstValue::Int(v), _) => format!("`{v}`"),
                (ConstValue::Float(v), _) => format!("`{v}`"),
                (ConstValue::Bool(v), _) => format!("`{v}`"),
                (ConstValue::Str(s), _) => {
                    format!("`{}`", serde_json::to_string(s).unwrap_or_default())
                }
            };
            rows.push(vec![
                format!("<a id=\"{a}\"></a>`{}`", c.name),
                format!("`{}`", c.ty.name()),
                value,
                c.doc.clone(),
            ]);
        }
        self.table(&["Constant", "Type", "Value", "Description"], &rows);
    }

    fn errors(&mut self) {
        let m = self.m;
        if m.errors.codes.is_empty() {
            return;
        }
        self.heading(2, "errors", "Error codes");
        self.para(&format!("Generated as the enum `{}`.", m.errors.enum_name));
        let mut rows = Vec::new();
        for e in &m.errors.codes {
            let a = self.fresh(&anchor(&["error", &e.name]));
            rows.push(vec![
                format!("<a id=\"{a}\"></a>`{}`", e.name),
                e.code.map_or("—".into(), |c| c.to_string()),
                e.doc.clone(),
            ]);
        }
        self.table(&["Code", "Number", "Description"], &rows);
    }

    fn ioctls(&mut self) {
        let m = self.m;
        if m.ioctls.is_empty() {
            return;
        }
        self.heading(2, "ioctls", "ioctl commands");
        let mut rows = Vec::new();
        for i in &m.ioctls {
            let a = self.fresh(&anchor(&["ioctl", &i.name]));
            let magic = match i.magic_char {
                Some(c) => format!("`'{c}'` ({:#04x})", i.magic),
                None => format!("`{:#04x}`", i.magic),
            };
            let direction = match i.direction {
                IoctlDirection::None => "none (`_IO`)",
                IoctlDirection::Read => "read (`_IOR`)",
                IoctlDirection::Write => "write (`_IOW`)",
                IoctlDirection::ReadWrite => "read and write (`_IOWR`)",
            };
            let arg = match i.arg {
                Some(id) => {
                    let td = m.ty(id);
                    let size = match &td.kind {
                        TypeKind::Struct(Struct {
                            c_layout: Some(l), ..
                        }) => format!(" ({} bytes)", l.size),
                        _ => String::new(),
                    };
                    format!("{}{size}", self.type_link(td))
                }
                None => "none".into(),
            };
            rows.push(vec![
                format!("<a id=\"{a}\"></a>`{}`", i.name),
                format!("`{:#010x}`", i.request),
                direction.into(),
                magic,
                i.number.to_string(),
                arg,
                i.doc.clone(),
            ]);
        }
        self.table(
            &[
                "Command",
                "Request code",
                "Direction",
                "Magic",
                "Number",
                "Argument",
                "Description",
            ],
            &rows,
        );
    }

    fn machines(&mut self) {
        let m = self.m;
        if m.machines.is_empty() {
            return;
        }
        self.heading(2, "machines", "State machines");
        for mach in &m.machines {
            self.machine(mach);
        }
    }

    fn machine(&mut self, mach: &Machine) {
        self.heading(3, &mach.anchor, &format!("`{}`", mach.name));
        self.para(&format!(
            "Held by {}. Initial state: `{}`.",
            Self::roles_text(&mach.roles),
            mach.initial
        ));
        self.para(&mach.doc);
        let id = |name: &str| mermaid_state(mach, name);
        let mut lines = vec!["stateDiagram-v2".to_owned()];
        for (i, s) in mach.states.iter().enumerate() {
            if id(&s.name) != s.name {
                lines.push(format!("    state \"{}\" as s{i}", mermaid_text(&s.name)));
            }
        }
        lines.push(format!("    [*] --> {}", id(&mach.initial)));
        for t in &mach.transitions {
            lines.push(format!(
                "    {} --> {}: {}",
                id(&t.from),
                id(&t.to),
                mermaid_text(&trigger_text(&t.on))
            ));
        }
        for s in mach.states.iter().filter(|s| s.terminal) {
            lines.push(format!("    {} --> [*]", id(&s.name)));
        }
        self.line("```mermaid");
        for l in lines {
            self.line(&l);
        }
        self.line("```");
        self.blank();

        self.line("States:");
        let mut rows = Vec::new();
        for s in &mach.states {
            let a = self.fresh(&format!("{}-{}", mach.anchor, anchor(&["state", &s.name])));
            let sends: Vec<String> = s.sends.iter().map(|x| self.msg_link(x)).collect();
            let receives: Vec<String> = s.receives.iter().map(|x| self.msg_link(x)).collect();
            let mut flags = Vec::new();
            if s.name == mach.initial {
                flags.push("initial");
            }
            if s.terminal {
                flags.push("terminal");
            }
            rows.push(vec![
                format!("<a id=\"{a}\"></a>`{}`", s.name),
                format!("`{}`", s.value),
                if flags.is_empty() {
                    "—".into()
                } else {
                    flags.join(", ")
                },
                list_or_none(&sends),
                list_or_none(&receives),
                s.doc.clone(),
            ]);
        }
        self.table(
            &["State", "Value", "Kind", "Sends", "Receives", "Description"],
            &rows,
        );

        self.line("Transitions:");
        let rows: Vec<Vec<String>> = mach
            .transitions
            .iter()
            .map(|t| {
                let on = match &t.on {
                    Trigger::Send(x) => format!("send {}", self.msg_link(x)),
                    Trigger::Receive(x) => format!("receive {}", self.msg_link(x)),
                    Trigger::Event(e) => format!("event `{e}`"),
                };
                vec![
                    format!("`{}`", t.from),
                    format!("`{}`", t.to),
                    on,
                    t.doc.clone().unwrap_or_default(),
                ]
            })
            .collect();
        self.table(&["From", "To", "Trigger", "Description"], &rows);
    }
}

// ---- helpers ---------------------------------------------------------------------

/// The catalogue spelling of a model enum value (`camelCase`, `binaryLe`, ...).
fn wire_name<T: serde::Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn order(o: ByteOrder) -> &'static str {
    match o {
        ByteOrder::Little => "little-endian",
        ByteOrder::Big => "big-endian",
    }
}

fn code(c: i128) -> String {
    format!("`{c:#06x}` ({c})")
}

fn kind_name(td: &TypeDef) -> &'static str {
    match &td.kind {
        TypeKind::Struct(_) => "struct",
        TypeKind::Enum(_) => "string enum",
        TypeKind::IntEnum(_) => "integer enum",
        TypeKind::Union(u) if u.repr == UnionRepr::Internal => "union (internally tagged)",
        TypeKind::Union(_) => "union (adjacently tagged)",
        TypeKind::Alias(_) => "alias",
    }
}

fn presence(f: &Field) -> String {
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

fn constraints(k: &Constraints) -> String {
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
fn mentions(m: &Module, ty: &Ty, name: &str) -> bool {
    match ty {
        Ty::Prim(_) => false,
        Ty::Named(id) => m.ty(*id).name == name,
        Ty::List(item) | Ty::Map(item) | Ty::Array(item, _) => mentions(m, item, name),
    }
}

fn trigger_text(t: &Trigger) -> String {
    match t {
        Trigger::Send(x) => format!("send {x}"),
        Trigger::Receive(x) => format!("receive {x}"),
        Trigger::Event(e) => e.clone(),
    }
}

/// The mermaid id of a state: its name when that is a plain identifier and no keyword,
/// else `s<index>` (declared with its name as label).
fn mermaid_state(mach: &Machine, name: &str) -> String {
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
fn mermaid_text(text: &str) -> String {
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
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first sentence of a doc.
fn summary(doc: &str) -> String {
    let doc = one_line(doc);
    match doc.find(". ") {
        Some(i) => doc[..=i].to_owned(),
        None => doc,
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
