//! Lowering a validated catalogue into the IR: names, references, order, layouts, and
//! collision checks.

use std::collections::{BTreeMap, HashMap, HashSet};

use ipcspec_schema::Diagnostic;
use ipcspec_schema::layout::LayoutCalculator;
use ipcspec_schema::model::{self as m, Catalogue, Composite, Src, TypeRef};

use super::names::{
    self, anchor, c_ident, c_macro, rust_member, rust_type, rust_variant, ts_key, ts_member,
    ts_type,
};
use super::*;

/// Lowers a catalogue that loaded without errors. Name collisions that only appear once
/// names are converted for a target language are returned as diagnostics.
pub fn lower(cat: &Catalogue) -> Result<Module, Vec<Diagnostic>> {
    let mut lowerer = Lowerer::new(cat);
    let module = lowerer.module();
    if lowerer.diagnostics.is_empty() {
        Ok(module)
    } else {
        Err(lowerer.diagnostics)
    }
}

struct Lowerer<'a> {
    cat: &'a Catalogue,
    /// Catalogue type name -> index in declaration order.
    ids: HashMap<&'a str, TypeId>,
    /// Catalogue types in declaration order.
    order: Vec<&'a m::TypeDef>,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Lowerer<'a> {
    fn new(cat: &'a Catalogue) -> Self {
        let order = declaration_order(cat);
        let ids = order
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name(), TypeId(i)))
            .collect();
        Lowerer {
            cat,
            ids,
            order,
            diagnostics: Vec::new(),
        }
    }

    fn module(&mut self) -> Module {
        let cat = self.cat;
        let rust = rust_member(&cat.name);
        let c_prefix = c_macro(&[&cat.name]);
        let types: Vec<TypeDef> = self
            .order
            .clone()
            .into_iter()
            .map(|t| self.type_def(t))
            .collect();
        self.check_type_collisions(&types);
        let messages = self.messages();
        let errors = self.errors(&types);
        let machines = self.machines(&types);
        let role_items = self.role_items(&types, &machines, &errors);
        let wire = self.wire();
        Module {
            name: cat.name.clone(),
            source: format!("{}.json", cat.name),
            idents: ModuleIdents {
                rust,
                c_guard: format!("IPCSPEC_{c_prefix}_H"),
                c_prefix,
            },
            title: cat.title.clone().unwrap_or_else(|| cat.name.clone()),
            version: cat.version.clone(),
            description: cat.description.clone(),
            roles: cat
                .roles
                .iter()
                .map(|r| Role {
                    name: r.name.clone(),
                    rust: rust_type(&r.name),
                    doc: r.doc.clone(),
                })
                .collect(),
            channels: cat
                .channels
                .iter()
                .map(|c| Channel {
                    name: c.name.clone(),
                    ends: [
                        c.between
                            .first()
                            .map(|e| e.names().to_vec())
                            .unwrap_or_default(),
                        c.between
                            .get(1)
                            .map(|e| e.names().to_vec())
                            .unwrap_or_default(),
                    ],
                    doc: c.doc.clone(),
                })
                .collect(),
            wire,
            types,
            messages,
            ioctls: self.ioctls(),
            constants: self.constants(),
            errors,
            machines,
            role_items,
        }
    }

    fn ty(&self, ty: &TypeRef) -> Ty {
        match ty {
            TypeRef::Named(name) => match PrimitiveType::from_name(name) {
                Some(p) => Ty::Prim(p),
                // Validation guarantees the name exists.
                None => Ty::Named(self.ids.get(name.as_str()).copied().unwrap_or(TypeId(0))),
            },
            TypeRef::Composite(Composite::List(inner)) => Ty::List(Box::new(self.ty(inner))),
            TypeRef::Composite(Composite::Map(inner)) => Ty::Map(Box::new(self.ty(inner))),
            TypeRef::Composite(Composite::Array(a)) => Ty::Array(
                Box::new(self.ty(&a.of)),
                u64::try_from(a.len.value).unwrap_or(0),
            ),
        }
    }

    fn type_def(&mut self, def: &m::TypeDef) -> TypeDef {
        let name = def.name().to_owned();
        let kind = match def {
            m::TypeDef::Struct(s) => TypeKind::Struct(self.strukt(s)),
            m::TypeDef::Enum(e) => {
                let values: Vec<EnumValue> = e
                    .values
                    .iter()
                    .map(|v| EnumValue {
                        name: v.name.clone(),
                        wire: v.wire().to_owned(),
                        idents: self.value_idents(&e.name, &v.name),
                        doc: v.doc.clone(),
                    })
                    .collect();
                let names = values.iter().map(|v| (v.name.as_str(), &v.idents));
                self.unique_values(names, &e.src);
                TypeKind::Enum(Enum { values })
            }
            m::TypeDef::IntEnum(e) => {
                let values: Vec<IntEnumValue> = e
                    .values
                    .iter()
                    .map(|v| IntEnumValue {
                        name: v.name.clone(),
                        value: v.value.value,
                        idents: self.value_idents(&e.name, &v.name),
                        doc: v.doc.clone(),
                    })
                    .collect();
                let names = values.iter().map(|v| (v.name.as_str(), &v.idents));
                self.unique_values(names, &e.src);
                TypeKind::IntEnum(IntEnum {
                    repr: e.repr,
                    values,
                })
            }
            m::TypeDef::Union(u) => {
                let variants: Vec<Variant> = u
                    .variants
                    .iter()
                    .map(|v| Variant {
                        name: v.name.clone(),
                        wire: v.wire().to_owned(),
                        idents: Idents {
                            rust: rust_variant(&v.name),
                            c: c_macro(&[&self.cat.name, &u.name, &v.name]),
                            ts: ts_type(&v.name),
                        },
                        ty: v.ty.as_ref().map(|t| self.ty(t)),
                        doc: v.doc.clone(),
                    })
                    .collect();
                self.unique_idents(
                    "variant",
                    variants.iter().enumerate().map(|(i, v)| {
                        (
                            v.name.as_str(),
                            &v.idents,
                            u.src.at("variants").at(i).at("name"),
                        )
                    }),
                );
                TypeKind::Union(Union {
                    repr: u.repr,
                    tag: u.tag.clone(),
                    content: u.content.clone(),
                    variants,
                })
            }
            m::TypeDef::Alias(a) => TypeKind::Alias(Alias {
                ty: self.ty(&a.ty),
                constraints: constraints(&a.constraints),
            }),
        };
        TypeDef {
            idents: Idents {
                rust: rust_type(&name),
                c: c_ident(&name),
                ts: ts_type(&name),
            },
            anchor: anchor(&["type", &name]),
            doc: def.doc().to_owned(),
            name,
            kind,
        }
    }

    /// Identifiers of a member of enum `owner`.
    fn value_idents(&self, owner: &str, value: &str) -> Idents {
        Idents {
            rust: rust_variant(value),
            c: c_macro(&[&self.cat.name, owner, value]),
            ts: ts_member(value),
        }
    }

    /// Reports enum members whose names collide in some language.
    fn unique_values<'i>(
        &mut self,
        values: impl Iterator<Item = (&'i str, &'i Idents)>,
        src: &Src,
    ) {
        let items = values
            .enumerate()
            .map(|(i, (name, idents))| (name, idents, src.at("values").at(i).at("name")));
        self.unique_idents("enum value", items);
    }

    fn strukt(&mut self, s: &m::StructDef) -> Struct {
        let c_layout = if s.layout == m::Layout::C {
            LayoutCalculator::new(self.cat)
                .layout(&s.name)
                .and_then(Result::ok)
        } else {
            None
        };
        let offsets: HashMap<&str, u64> = c_layout
            .iter()
            .flat_map(|l| l.fields.iter().map(|f| (f.name.as_str(), f.offset)))
            .collect();
        let fields: Vec<Field> = s
            .fields
            .iter()
            .map(|f| Field {
                wire: f.name.clone(),
                idents: Idents {
                    rust: rust_member(&f.name),
                    c: c_ident(&f.name),
                    ts: ts_key(&f.name),
                },
                ty: self.ty(&f.ty),
                doc: f.doc.clone(),
                optional: f.optional,
                nullable: f.nullable,
                constraints: constraints(&f.constraints),
                padding: f.padding,
                pointee: f
                    .pointee
                    .as_ref()
                    .map(|p| (self.ty(&p.of), p.count_field.clone())),
                length_field: f.length_field.clone(),
                c_offset: offsets.get(f.name.as_str()).copied(),
            })
            .collect();
        self.unique_idents(
            "field",
            fields.iter().enumerate().map(|(i, f)| {
                (
                    f.wire.as_str(),
                    &f.idents,
                    s.src.at("fields").at(i).at("name"),
                )
            }),
        );
        let sums = s
            .fields
            .iter()
            .filter_map(|f| {
                f.sum_of.as_ref().map(|sum| Sum {
                    field: f.name.clone(),
                    list: sum.list.clone(),
                    item_field: sum.field.clone(),
                })
            })
            .collect();
        Struct {
            c_layout,
            fields,
            exactly_one_of: s.exactly_one_of.clone(),
            sums,
        }
    }

    /// Reports two items whose names differ in the catalogue but not in some language.
    fn unique_idents<'i>(
        &mut self,
        what: &str,
        items: impl Iterator<Item = (&'i str, &'i Idents, Src)>,
    ) {
        let mut seen: [HashMap<String, (&str, Src)>; 3] = Default::default();
        let mut found = Vec::new();
        for (name, idents, src) in items {
            for (lang, (ident, table)) in ["Rust", "C", "TypeScript"].iter().zip(
                [&idents.rust, &idents.c, &idents.ts]
                    .into_iter()
                    .zip(seen.iter_mut()),
            ) {
                match table.get(ident.as_str()) {
                    Some((first, first_src)) if *first != name => {
                        found.push(collision(what, lang, ident, first, first_src, name, &src))
                    }
                    Some(_) => {}
                    None => {
                        table.insert(ident.clone(), (name, src.clone()));
                    }
                }
            }
        }
        self.diagnostics.extend(found);
    }

    fn check_type_collisions(&mut self, types: &[TypeDef]) {
        let items: Vec<(String, Idents, Src)> = types
            .iter()
            .zip(&self.order)
            .map(|(t, def)| (t.name.clone(), t.idents.clone(), def.src().at("name")))
            .chain(self.cat.state_machines.iter().map(|sm| {
                (
                    sm.name.clone(),
                    Idents {
                        rust: rust_type(&sm.name),
                        c: c_ident(&sm.name),
                        ts: ts_type(&sm.name),
                    },
                    sm.src.at("name"),
                )
            }))
            .chain(self.cat.state_machines.iter().map(|sm| {
                // The machine's trigger enum is a Rust item beside the types.
                let rust = format!("{}Trigger", rust_type(&sm.name));
                (
                    format!("{}Trigger", sm.name),
                    Idents {
                        c: rust.clone(),
                        ts: rust.clone(),
                        rust,
                    },
                    sm.src.at("name"),
                )
            }))
            .collect();
        self.unique_idents(
            "type",
            items.iter().map(|(n, i, s)| (n.as_str(), i, s.clone())),
        );
    }

    fn messages(&mut self) -> Vec<Message> {
        let cat = self.cat;
        let messages: Vec<Message> = cat
            .messages
            .iter()
            .map(|msg| Message {
                name: msg.name.clone(),
                rust_variant: rust_variant(&msg.name),
                rust_method: rust_member(&msg.name),
                c_macro: c_macro(&[&cat.name, "MSG", &msg.name]),
                code: msg.code.as_ref().map(|c| c.value),
                from: msg.from.clone(),
                to: msg.to.clone(),
                channels: msg
                    .channel
                    .as_ref()
                    .map(|c| c.names().to_vec())
                    .unwrap_or_default(),
                payload: msg.payload.as_ref().map(|p| self.ty(p)),
                reply: msg.reply.clone(),
                is_reply: msg.is_reply,
                acknowledged: msg.acknowledged,
                priority: msg.priority.clone(),
                doc: msg.doc.clone(),
                anchor: anchor(&["msg", &msg.name]),
            })
            .collect();
        let idents: Vec<Idents> = messages
            .iter()
            .map(|msg| Idents {
                rust: msg.rust_variant.clone(),
                c: msg.c_macro.clone(),
                ts: msg.rust_method.clone(),
            })
            .collect();
        self.unique_idents(
            "message",
            messages
                .iter()
                .zip(&idents)
                .zip(&cat.messages)
                .map(|((msg, i), src)| (msg.name.as_str(), i, src.src.at("name"))),
        );
        messages
    }

    fn ioctls(&self) -> Vec<Ioctl> {
        let mut calculator = LayoutCalculator::new(self.cat);
        self.cat
            .ioctls
            .iter()
            .map(|io| {
                let magic = u8::try_from(io.magic.value).unwrap_or(0);
                let number = u8::try_from(io.number.value).unwrap_or(0);
                let size = io
                    .arg
                    .as_deref()
                    .and_then(|a| calculator.layout(a))
                    .and_then(Result::ok)
                    .map_or(0, |l| l.size);
                let dir: u32 = match io.direction {
                    IoctlDirection::None => 0,
                    IoctlDirection::Write => 1,
                    IoctlDirection::Read => 2,
                    IoctlDirection::ReadWrite => 3,
                };
                // Linux's generic _IOC layout (x86, arm, riscv): dir:2 size:14 type:8 nr:8.
                let request = (dir << 30)
                    | ((size as u32 & 0x3fff) << 16)
                    | (u32::from(magic) << 8)
                    | u32::from(number);
                let magic_char = io
                    .magic
                    .text
                    .as_deref()
                    .filter(|t| t.chars().count() == 1)
                    .and_then(|t| t.chars().next());
                Ioctl {
                    name: io.name.clone(),
                    magic,
                    magic_char,
                    number,
                    direction: io.direction,
                    arg: io.arg.as_deref().and_then(|a| self.ids.get(a).copied()),
                    request,
                    doc: io.doc.clone(),
                }
            })
            .collect()
    }

    fn constants(&self) -> Vec<Constant> {
        self.cat
            .constants
            .iter()
            .map(|k| {
                let (value, text) = if k.ty.int_range().is_some() {
                    match &k.value {
                        serde_json::Value::String(s) => (
                            ConstValue::Int(
                                ipcspec_schema::intlit::IntLit::parse(s).map_or(0, |l| l.value),
                            ),
                            Some(s.clone()),
                        ),
                        other => (
                            ConstValue::Int(
                                other
                                    .as_i64()
                                    .map(i128::from)
                                    .or(other.as_u64().map(i128::from))
                                    .unwrap_or(0),
                            ),
                            None,
                        ),
                    }
                } else {
                    let value = match &k.value {
                        serde_json::Value::Bool(b) => ConstValue::Bool(*b),
                        serde_json::Value::Number(n) => {
                            ConstValue::Float(n.as_f64().unwrap_or(0.0))
                        }
                        serde_json::Value::String(s) => ConstValue::Str(s.clone()),
                        _ => ConstValue::Str(String::new()),
                    };
                    (value, None)
                };
                Constant {
                    name: k.name.clone(),
                    ty: k.ty,
                    value,
                    text,
                    doc: k.doc.clone(),
                }
            })
            .collect()
    }

    fn errors(&mut self, types: &[TypeDef]) -> ErrorCodes {
        let taken: HashSet<&str> = types.iter().map(|t| t.idents.rust.as_str()).collect();
        let enum_name = [
            "ErrorCode".to_owned(),
            format!("{}ErrorCode", rust_type(&self.cat.name)),
        ]
        .into_iter()
        .find(|n| !taken.contains(n.as_str()))
        .unwrap_or_else(|| "CatalogueErrorCode".into());
        let codes: Vec<ErrorCode> = self
            .cat
            .errors
            .iter()
            .map(|e| ErrorCode {
                name: e.name.clone(),
                rust_variant: rust_variant(&e.name),
                c_macro: c_macro(&[&self.cat.name, "ERR", &e.name]),
                code: e.code.as_ref().map(|c| c.value),
                doc: e.doc.clone(),
            })
            .collect();
        let idents: Vec<Idents> = codes
            .iter()
            .map(|e| Idents {
                rust: e.rust_variant.clone(),
                c: e.c_macro.clone(),
                ts: e.name.clone(),
            })
            .collect();
        self.unique_idents(
            "error code",
            codes
                .iter()
                .zip(&idents)
                .zip(&self.cat.errors)
                .map(|((e, i), src)| (e.name.as_str(), i, src.src.at("name"))),
        );
        ErrorCodes { enum_name, codes }
    }

    fn machines(&mut self, types: &[TypeDef]) -> Vec<Machine> {
        let mut out = Vec::new();
        for sm in &self.cat.state_machines {
            let states: Vec<State> = sm
                .states
                .iter()
                .map(|s| State {
                    name: s.name.clone(),
                    value: s.value.clone().unwrap_or_else(|| s.name.clone()),
                    idents: Idents {
                        rust: rust_variant(&s.name),
                        c: c_macro(&[&self.cat.name, &sm.name, &s.name]),
                        ts: ts_member(&s.name),
                    },
                    doc: s.doc.clone(),
                    sends: s.sends.clone(),
                    receives: s.receives.clone(),
                    terminal: s.terminal,
                })
                .collect();
            self.unique_idents(
                "state",
                states.iter().enumerate().map(|(i, s)| {
                    (
                        s.name.as_str(),
                        &s.idents,
                        sm.src.at("states").at(i).at("name"),
                    )
                }),
            );
            let state_type = sm.state_type.as_deref().and_then(|name| {
                let ty = *self.ids.get(name)?;
                let TypeKind::Enum(e) = &types.get(ty.0)?.kind else {
                    return None;
                };
                // Validation guarantees one member per state value.
                let variants = states
                    .iter()
                    .map(|s| {
                        e.values
                            .iter()
                            .find(|v| v.wire == s.value)
                            .map(|v| v.idents.rust.clone())
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(StateType { ty, variants })
            });
            let triggers = self.machine_triggers(sm);
            out.push(Machine {
                name: sm.name.clone(),
                trigger_enum: format!("{}Trigger", rust_type(&sm.name)),
                triggers,
                state_type,
                idents: Idents {
                    rust: rust_type(&sm.name),
                    c: c_ident(&sm.name),
                    ts: ts_type(&sm.name),
                },
                roles: sm.role.names().to_vec(),
                doc: sm.doc.clone(),
                initial: sm.initial.clone(),
                states,
                transitions: sm
                    .transitions
                    .iter()
                    .map(|t| Transition {
                        from: t.from.clone(),
                        to: t.to.clone(),
                        on: match &t.on {
                            m::Trigger::Send(s) => Trigger::Send(s.clone()),
                            m::Trigger::Receive(s) => Trigger::Receive(s.clone()),
                            m::Trigger::Event(s) => Trigger::Event(s.clone()),
                        },
                        doc: t.doc.clone(),
                    })
                    .collect(),
                anchor: anchor(&["machine", &sm.name]),
            });
        }
        out
    }

    /// The distinct triggers of a machine's transitions, in first-seen order, named
    /// `SendX`/`ReceiveX` for messages and after the event otherwise.
    fn machine_triggers(&mut self, sm: &m::StateMachine) -> Vec<MachineTrigger> {
        let mut triggers: Vec<MachineTrigger> = Vec::new();
        let mut sources = Vec::new();
        for (i, t) in sm.transitions.iter().enumerate() {
            let (on, rust) = match &t.on {
                m::Trigger::Send(s) => {
                    (Trigger::Send(s.clone()), format!("Send{}", rust_variant(s)))
                }
                m::Trigger::Receive(s) => (
                    Trigger::Receive(s.clone()),
                    format!("Receive{}", rust_variant(s)),
                ),
                m::Trigger::Event(s) => (Trigger::Event(s.clone()), rust_variant(s)),
            };
            if triggers.iter().all(|k| k.on != on) {
                triggers.push(MachineTrigger { on, rust });
                sources.push(sm.src.at("transitions").at(i).at("on"));
            }
        }
        let names: Vec<(String, Idents)> = triggers
            .iter()
            .map(|t| {
                let name = match &t.on {
                    Trigger::Send(s) => format!("send {s}"),
                    Trigger::Receive(s) => format!("receive {s}"),
                    Trigger::Event(s) => format!("event {s}"),
                };
                let rust = t.rust.clone();
                (
                    name,
                    Idents {
                        c: rust.clone(),
                        ts: rust.clone(),
                        rust,
                    },
                )
            })
            .collect();
        self.unique_idents(
            "trigger",
            names
                .iter()
                .zip(sources)
                .map(|((n, i), s)| (n.as_str(), i, s)),
        );
        triggers
    }

    /// Derived names (message enums, handler traits) give way to declared ones.
    fn role_items(
        &mut self,
        types: &[TypeDef],
        machines: &[Machine],
        errors: &ErrorCodes,
    ) -> Vec<RoleItems> {
        let mut taken: HashSet<String> = types
            .iter()
            .map(|t| t.idents.rust.clone())
            .chain(machines.iter().map(|m| m.idents.rust.clone()))
            .chain(machines.iter().map(|m| m.trigger_enum.clone()))
            .chain([errors.enum_name.clone()])
            .collect();
        let mut pick = |candidates: [String; 3]| -> String {
            let chosen = candidates
                .iter()
                .find(|c| !taken.contains(*c))
                .cloned()
                .unwrap_or_else(|| candidates[2].clone() + "_");
            taken.insert(chosen.clone());
            chosen
        };
        let cat_prefix = rust_type(&self.cat.name);
        self.cat
            .roles
            .iter()
            .map(|r| {
                let role = rust_type(&r.name);
                let sends = self
                    .cat
                    .messages
                    .iter()
                    .any(|msg| msg.from.contains(&r.name));
                let receives = self.cat.messages.iter().any(|msg| msg.to.contains(&r.name));
                RoleItems {
                    role: r.name.clone(),
                    message_enum: sends.then(|| {
                        pick([
                            format!("{role}Message"),
                            format!("{role}Messages"),
                            format!("{cat_prefix}{role}Message"),
                        ])
                    }),
                    handler_trait: receives.then(|| {
                        pick([
                            format!("{role}Handler"),
                            format!("{role}MessageHandler"),
                            format!("{cat_prefix}{role}Handler"),
                        ])
                    }),
                    dispatch_fn: receives.then(|| {
                        format!(
                            "dispatch_to_{}",
                            names::rust_member(&r.name).trim_start_matches("r#")
                        )
                    }),
                }
            })
            .collect()
    }

    fn wire(&self) -> Wire {
        let w = &self.cat.wire;
        let num = |l: &ipcspec_schema::intlit::IntLit| u64::try_from(l.value).unwrap_or(0);
        let env = &w.envelope;
        let framing = match &w.framing {
            m::Framing::LengthPrefixed { width, byte_order } => Framing::LengthPrefixed {
                width_bytes: width.c_size().unwrap_or(4) as u8,
                byte_order: *byte_order,
            },
            m::Framing::NewlineDelimited => Framing::NewlineDelimited,
            m::Framing::BinaryHeader {
                header,
                byte_order,
                length_counts,
            } => Framing::BinaryHeader {
                header: self.ids.get(header.as_str()).copied().unwrap_or(TypeId(0)),
                byte_order: *byte_order,
                length_counts: *length_counts,
            },
        };
        let constant = |name: &str| {
            self.cat
                .constants
                .iter()
                .find(|k| k.name == name)
                .and_then(|k| match &k.value {
                    serde_json::Value::String(s) => ipcspec_schema::intlit::IntLit::parse(s)
                        .ok()
                        .map(|l| l.value),
                    other => other
                        .as_i64()
                        .map(i128::from)
                        .or(other.as_u64().map(i128::from)),
                })
                .unwrap_or(0)
        };
        let optional = |member: m::EnvelopeMember| env.optional.contains(&member);
        Wire {
            transports: w
                .transports
                .iter()
                .map(|t| match t {
                    m::Transport::Unix {
                        path,
                        platform,
                        fd_passing,
                        channel,
                        doc,
                    } => Transport {
                        kind: "unix",
                        address: Some(path.clone()),
                        platform: *platform,
                        fd_passing: *fd_passing,
                        channel: channel.clone(),
                        doc: doc.clone(),
                    },
                    m::Transport::Socketpair {
                        platform,
                        fd_passing,
                        channel,
                        doc,
                    } => Transport {
                        kind: "socketpair",
                        address: None,
                        platform: *platform,
                        fd_passing: *fd_passing,
                        channel: channel.clone(),
                        doc: doc.clone(),
                    },
                    m::Transport::NamedPipe {
                        name,
                        platform,
                        channel,
                        doc,
                    } => Transport {
                        kind: "namedPipe",
                        address: Some(name.clone()),
                        platform: *platform,
                        fd_passing: false,
                        channel: channel.clone(),
                        doc: doc.clone(),
                    },
                    m::Transport::Netlink {
                        protocol,
                        multicast_group,
                        platform,
                        channel,
                        doc,
                    } => Transport {
                        kind: "netlink",
                        address: Some(match multicast_group {
                            Some(g) => {
                                format!("protocol {}, multicast group {}", protocol.value, g.value)
                            }
                            None => format!("protocol {}", protocol.value),
                        }),
                        platform: *platform,
                        fd_passing: false,
                        channel: channel.clone(),
                        doc: doc.clone(),
                    },
                })
                .collect(),
            framing,
            encoding: w.encoding,
            envelope: Envelope {
                type_key: env.type_key.clone(),
                payload: env.payload.clone(),
                id: env.id.clone().map(|k| {
                    let ty = env
                        .id_type
                        .as_ref()
                        .map_or(Ty::Prim(PrimitiveType::String), |t| self.ty(t));
                    (k, ty)
                }),
                timestamp: env.timestamp.clone(),
                correlation_id: env.correlation_id.clone(),
                length: env.length.clone(),
                magic: env
                    .magic
                    .as_ref()
                    .map(|f| (f.field.clone(), constant(&f.constant))),
                version: env
                    .version
                    .as_ref()
                    .map(|f| (f.field.clone(), constant(&f.constant))),
                flags: env.flags.clone(),
                flag_bits: env.flag_bits.as_ref().map(|b| FlagBits {
                    reply: b.reply.as_deref().map_or(0, constant),
                    priority_shift: b
                        .priority_shift
                        .as_deref()
                        .and_then(|k| u32::try_from(constant(k)).ok()),
                    error: b.error.clone(),
                }),
                checksum: env
                    .checksum
                    .as_ref()
                    .map(|c| (c.field.clone(), c.algorithm)),
                checksum_covers: env.checksum.as_ref().map(|c| c.covers),
                id_optional: optional(m::EnvelopeMember::Id),
                timestamp_optional: optional(m::EnvelopeMember::Timestamp),
                correlation_optional: optional(m::EnvelopeMember::CorrelationId),
                doc: env.doc.clone(),
            },
            key_casing: w.key_casing,
            int64: w.int64_encoding,
            unknown_keys: w.unknown_keys,
            max_message_bytes: num(&w.limits.max_message_bytes),
            max_line_bytes: w.limits.max_line_bytes.as_ref().map(num),
            max_nesting_depth: w.limits.max_nesting_depth.as_ref().map(num),
            max_connections: w.limits.max_connections.as_ref().map(num),
            timing: Timing {
                heartbeat_interval_ms: w.timing.heartbeat_interval_ms.as_ref().map(num),
                stale_after_ms: w.timing.stale_after_ms.as_ref().map(num),
                connect_timeout_ms: w.timing.connect_timeout_ms.as_ref().map(num),
                request_timeout_ms: w.timing.request_timeout_ms.as_ref().map(num),
                frame_read_timeout_ms: w.timing.frame_read_timeout_ms.as_ref().map(num),
                reconnect: w.timing.reconnect.as_ref().map(|r| Reconnect {
                    max_attempts: num(&r.max_attempts),
                    initial_delay_ms: num(&r.initial_delay_ms),
                    max_delay_ms: num(&r.max_delay_ms),
                    multiplier: r.multiplier,
                    jitter: r.jitter,
                    max_queued_messages: r.max_queued_messages.as_ref().map(num),
                }),
            },
            ack_message: w.ack_message.clone(),
            error_message: w.error_message.clone(),
            heartbeat_message: w.heartbeat_message.clone(),
            unattributable: w.unattributable.as_ref().map(|u| Unattributable {
                message: u.message.clone(),
                code: u.code.clone(),
                code_rust_variant: rust_variant(&u.code),
                correlation: u.correlation,
                doc: u.doc.clone(),
            }),
            priority: w.priority.as_ref().and_then(|p| {
                self.ids
                    .get(p.enum_type.as_str())
                    .map(|id| (*id, p.default.clone()))
            }),
            docs: [w.doc.clone(), w.limits.doc.clone(), w.timing.doc.clone()]
                .into_iter()
                .flatten()
                .collect(),
        }
    }
}

fn constraints(k: &m::Constraints) -> Constraints {
    let num = |l: &Option<ipcspec_schema::intlit::IntLit>| {
        l.as_ref().and_then(|l| u64::try_from(l.value).ok())
    };
    Constraints {
        minimum: k.minimum,
        maximum: k.maximum,
        min_length: num(&k.min_length),
        max_length: num(&k.max_length),
        pattern: k.pattern.clone(),
        min_items: num(&k.min_items),
        max_items: num(&k.max_items),
    }
}

fn collision(
    what: &str,
    lang: &str,
    ident: &str,
    first: &str,
    first_src: &Src,
    second: &str,
    src: &Src,
) -> Diagnostic {
    Diagnostic::error(
        "ipcspec::name-collision",
        format!("{what}s `{first}` and `{second}` are both `{ident}` in {lang}"),
    )
    .at(src, format!("becomes `{ident}` in {lang}"))
    .at(first_src, "so does this one")
    .help("rename one of them so the names differ in more than case and separators")
}

/// Catalogue order, except that a type embedded by value in another (through a required
/// field, a fixed array or an alias) is declared first, as C requires.
fn declaration_order(cat: &Catalogue) -> Vec<&m::TypeDef> {
    let by_name: BTreeMap<&str, &m::TypeDef> = cat.types.iter().map(|t| (t.name(), t)).collect();
    let mut placed: HashSet<&str> = HashSet::new();
    let mut visiting: HashSet<&str> = HashSet::new();
    let mut order = Vec::new();
    fn embedded(ty: &TypeRef, out: &mut Vec<String>) {
        match ty {
            TypeRef::Named(n) if PrimitiveType::from_name(n).is_none() => out.push(n.clone()),
            TypeRef::Composite(Composite::Array(a)) => embedded(&a.of, out),
            _ => {}
        }
    }
    fn visit<'a>(
        def: &'a m::TypeDef,
        by_name: &BTreeMap<&str, &'a m::TypeDef>,
        placed: &mut HashSet<&'a str>,
        visiting: &mut HashSet<&'a str>,
        order: &mut Vec<&'a m::TypeDef>,
    ) {
        if placed.contains(def.name()) || !visiting.insert(def.name()) {
            return;
        }
        let mut deps = Vec::new();
        match def {
            m::TypeDef::Struct(s) => {
                for f in &s.fields {
                    if !f.optional && !f.nullable {
                        embedded(&f.ty, &mut deps);
                    }
                }
            }
            m::TypeDef::Alias(a) => embedded(&a.ty, &mut deps),
            _ => {}
        }
        for dep in deps {
            if let Some(d) = by_name.get(dep.as_str()) {
                visit(d, by_name, placed, visiting, order);
            }
        }
        visiting.remove(def.name());
        placed.insert(def.name());
        order.push(def);
    }
    for def in &cat.types {
        visit(def, &by_name, &mut placed, &mut visiting, &mut order);
    }
    order
}
