//! Types: one section per type with its field table.

use super::Page;
use super::text::{code_list, constraints, kind_name, mentions, presence, summary};
use crate::ir::{Field, Struct, TypeDef, TypeKind, UnionRepr, names::anchor};

impl Page<'_> {
    pub(super) fn types(&mut self) {
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

    pub(super) fn type_section(&mut self, td: &TypeDef) {
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
                        let mut rules = constraints(&f.constraints);
                        if let Some(sum) = s.sums.iter().find(|x| x.field == f.wire) {
                            let computed =
                                format!("the sum of `{}` over `{}`", sum.item_field, sum.list);
                            rules = if rules == "—" {
                                computed
                            } else {
                                format!("{rules}; {computed}")
                            };
                        }
                        let mut presence = presence(f);
                        if let Some(group) = s.exactly_one_of.iter().find(|g| g.contains(&f.wire)) {
                            presence = format!("exactly one of {}", code_list(group));
                        }
                        let mut row =
                            vec![format!("`{}`", f.wire), self.field_ty(f), presence, rules];
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
                for group in &s.exactly_one_of {
                    self.para(&format!(
                        "Exactly one of {} is present: a value with none of them, or with more than one, is refused.",
                        code_list(group)
                    ));
                }
                for sum in &s.sums {
                    self.para(&format!(
                        "`{}` is computed: the sum of `{}` over the items of `{}`. A sender sets it; a value where it differs is refused.",
                        sum.field, sum.item_field, sum.list
                    ));
                }
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

    pub(super) fn field_ty(&self, f: &Field) -> String {
        let mut t = self.ty(&f.ty);
        if let Some((of, count)) = &f.pointee {
            t.push_str(&format!(", user pointer to {} × `{count}`", self.ty(of)));
        }
        t
    }
}
