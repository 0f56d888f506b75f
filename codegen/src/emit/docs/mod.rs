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
//!
//! One module per part of the page: [`overview`] (header, roles, channels), [`wire`] (one
//! function per wire section), [`messages`] (messages and sequence diagrams), [`types`],
//! [`items`] (constants, error codes, ioctls), [`machines`]; [`table`] is the one table
//! writer and [`text`] the cell and label helpers.

use std::collections::BTreeSet;

use crate::ir::{Message, Module, Ty, TypeDef, names::anchor};
use crate::output::{OutputFile, Target};

mod items;
mod machines;
mod messages;
mod overview;
mod table;
mod text;
mod types;
mod wire;

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
pub const WIRE_ANCHORS: [&str; 12] = [
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
    "wire-unattributable",
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
}
