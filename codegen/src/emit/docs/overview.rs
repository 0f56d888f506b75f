//! The page's header (title, contents), roles and channels.

use super::Page;
use super::text::list_or_none;
use crate::emit::banner;
use crate::ir::names::anchor;

impl Page<'_> {
    pub(super) fn header(&mut self) {
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

    pub(super) fn roles(&mut self) {
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

    pub(super) fn channels(&mut self) {
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
}
