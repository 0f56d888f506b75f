//! Constants, error codes and ioctl commands.

use super::Page;
use crate::ir::{ConstValue, IoctlDirection, Struct, TypeKind, names::anchor};

impl Page<'_> {
    pub(super) fn constants(&mut self) {
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

    pub(super) fn errors(&mut self) {
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

    pub(super) fn ioctls(&mut self) {
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
}
