//! Semantic validation: everything serde's shape check cannot see.
//!
//! Each submodule checks one part of the language and pushes diagnostics into the shared
//! [`Checker`]; none stops at the first problem. The checks rely only on the model, never
//! on the source text: locations are JSON pointers ([`Src`]).

mod machines;
mod messages;
mod rules;
mod types;
mod wire;

use std::collections::HashMap;

use heck::{ToKebabCase, ToLowerCamelCase, ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::model::{Casing, Catalogue, Message, PrimitiveType, Src, TypeDef, TypeRef};

/// Validates a catalogue whose shape is sound, returning every diagnostic.
pub fn validate(catalogue: &Catalogue) -> Vec<Diagnostic> {
    let mut checker = Checker::new(catalogue);
    checker.identity();
    checker.roles_and_channels();
    types::check(&mut checker);
    wire::check(&mut checker);
    messages::check_messages(&mut checker);
    messages::check_ioctls(&mut checker);
    messages::check_constants(&mut checker);
    messages::check_errors(&mut checker);
    machines::check(&mut checker);
    rules::check(&mut checker);
    checker.diagnostics
}

/// Name tables and the diagnostics found so far.
pub(crate) struct Checker<'a> {
    pub cat: &'a Catalogue,
    pub types: HashMap<&'a str, &'a TypeDef>,
    pub messages: HashMap<&'a str, &'a Message>,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    fn new(cat: &'a Catalogue) -> Self {
        // First definition wins; duplicates are reported by `unique`.
        let mut types = HashMap::new();
        for t in &cat.types {
            types.entry(t.name()).or_insert(t);
        }
        let mut messages = HashMap::new();
        for m in &cat.messages {
            messages.entry(m.name.as_str()).or_insert(m);
        }
        Checker {
            cat,
            types,
            messages,
            diagnostics: Vec::new(),
        }
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Reports every name that occurs twice among `items` (name, pointer of its `name` member).
    pub fn unique<'n>(&mut self, what: &str, items: impl IntoIterator<Item = (&'n str, Src)>) {
        let mut seen: HashMap<&str, Src> = HashMap::new();
        for (name, src) in items {
            if let Some(first) = seen.get(name) {
                self.push(
                    Diagnostic::error(
                        "ipcspec::duplicate-name",
                        format!("{what} `{name}` is defined twice"),
                    )
                    .at(&src, "defined again here")
                    .at(first, "first defined here")
                    .help(format!(
                        "rename one of them or remove the copy; every {what} name must be unique"
                    )),
                );
            } else {
                seen.insert(name, src);
            }
        }
    }

    /// Reports `name` at `src` unless it is an identifier every target language accepts.
    pub fn identifier(&mut self, what: &str, name: &str, src: &Src) {
        if !is_identifier(name) {
            self.push(
                Diagnostic::error("ipcspec::invalid-name", format!("{what} name `{name}` is not an identifier"))
                    .at(src, "")
                    .help("use ASCII letters, digits and `_`, starting with a letter or `_`, so Rust, C and TypeScript can all spell it"),
            );
        }
    }

    /// Reports `name` at `src` unless it follows `casing`.
    pub fn casing(&mut self, what: &str, name: &str, casing: Casing, src: &Src, profile_key: &str) {
        if !follows_casing(name, casing) {
            self.push(
                Diagnostic::error(
                    "ipcspec::casing",
                    format!("{what} `{name}` is not {}", casing_name(casing)),
                )
                .at(
                    src,
                    format!("the profile's `{profile_key}` is {}", casing_name(casing)),
                )
                .help(format!(
                    "write it `{}`, or change `wire.{profile_key}`",
                    apply_casing(name, casing)
                )),
            );
        }
    }

    /// Checks that a type reference names something; `src` points at the reference.
    pub fn type_ref(&mut self, ty: &TypeRef, src: &Src) {
        match ty {
            TypeRef::Named(name) => {
                if PrimitiveType::from_name(name).is_none()
                    && !self.types.contains_key(name.as_str())
                {
                    let candidates = self
                        .cat
                        .types
                        .iter()
                        .map(TypeDef::name)
                        .chain(PrimitiveType::ALL.iter().map(|(_, n)| *n));
                    let hint = did_you_mean(name, candidates);
                    self.push(
                        Diagnostic::error("ipcspec::unknown-type", format!("unknown type `{name}`{hint}"))
                            .at(src, "not a primitive nor a type of this catalogue")
                            .help("define it in `types`, or use a primitive: bool, i8..i64, u8..u64, f32, f64, string, bytes, uuid, timestamp, duration, json, fd"),
                    );
                }
            }
            TypeRef::Composite(crate::model::Composite::List(inner))
            | TypeRef::Composite(crate::model::Composite::Map(inner)) => {
                let key = if matches!(ty, TypeRef::Composite(crate::model::Composite::List(_))) {
                    "list"
                } else {
                    "map"
                };
                self.type_ref(inner, &src.at(key));
            }
            TypeRef::Composite(crate::model::Composite::Array(array)) => {
                if array.len.value < 1 || array.len.value > u32::MAX as i128 {
                    self.push(
                        Diagnostic::error(
                            "ipcspec::invalid-value",
                            format!("array length {} is out of range", array.len.display()),
                        )
                        .at(&src.at("array").at("len"), "")
                        .help("a fixed array has between 1 and 4294967295 elements"),
                    );
                }
                self.type_ref(&array.of, &src.at("array").at("of"));
            }
        }
    }

    /// Follows aliases to the underlying type reference.
    pub fn resolve<'t>(&self, mut ty: &'t TypeRef) -> &'t TypeRef
    where
        'a: 't,
    {
        for _ in 0..32 {
            match ty {
                TypeRef::Named(name) => match self.types.get(name.as_str()) {
                    Some(TypeDef::Alias(alias)) => ty = &alias.ty,
                    _ => return ty,
                },
                TypeRef::Composite(_) => return ty,
            }
        }
        ty
    }

    /// The primitive a type reference resolves to, if any.
    pub fn primitive(&self, ty: &TypeRef) -> Option<PrimitiveType> {
        match self.resolve(ty) {
            TypeRef::Named(name) => PrimitiveType::from_name(name),
            TypeRef::Composite(_) => None,
        }
    }

    /// The integer type carrying values of `ty`: an integer primitive, or an `intEnum`'s repr.
    pub fn int_repr(&self, ty: &TypeRef) -> Option<PrimitiveType> {
        match self.resolve(ty) {
            TypeRef::Named(name) => match self.types.get(name.as_str()) {
                Some(TypeDef::IntEnum(e)) => Some(e.repr),
                _ => PrimitiveType::from_name(name).filter(|p| p.int_range().is_some()),
            },
            TypeRef::Composite(_) => None,
        }
    }

    /// The role names.
    pub fn role_names(&self) -> impl Iterator<Item = &'a str> {
        self.cat.roles.iter().map(|r| r.name.as_str())
    }

    /// Reports `role` at `src` unless it is a declared role.
    pub fn role(&mut self, role: &str, src: &Src) {
        if !self.cat.roles.iter().any(|r| r.name == role) {
            let hint = did_you_mean(role, self.role_names());
            let roles: Vec<&str> = self.role_names().collect();
            self.push(
                Diagnostic::error(
                    "ipcspec::unknown-role",
                    format!("unknown role `{role}`{hint}"),
                )
                .at(src, "")
                .help(format!(
                    "the roles of this catalogue are: {}",
                    roles.join(", ")
                )),
            );
        }
    }

    /// Reports every role of `roles` (at `src`) that is not declared.
    pub fn roles(&mut self, roles: &crate::model::Names, src: &Src) {
        match roles {
            crate::model::Names::One(role) => self.role(role, src),
            crate::model::Names::Many(many) => {
                if many.is_empty() {
                    self.push(
                        Diagnostic::error("ipcspec::invalid-value", "an empty list of roles")
                            .at(src, "")
                            .help("name at least one role"),
                    );
                }
                for (i, role) in many.iter().enumerate() {
                    self.role(role, &src.at(i));
                }
            }
        }
    }

    /// Reports `name` at `src` unless it is a message; returns the message.
    pub fn message(&mut self, name: &str, src: &Src) -> Option<&'a Message> {
        let found = self.messages.get(name).copied();
        if found.is_none() {
            let hint = did_you_mean(name, self.cat.messages.iter().map(|m| m.name.as_str()));
            self.push(
                Diagnostic::error(
                    "ipcspec::unknown-message",
                    format!("unknown message `{name}`{hint}"),
                )
                .at(src, "")
                .help("name a message defined in `messages`"),
            );
        }
        found
    }

    fn identity(&mut self) {
        let cat = self.cat;
        let kebab = !cat.name.is_empty()
            && cat
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && cat.name.starts_with(|c: char| c.is_ascii_lowercase());
        if !kebab {
            self.push(
                Diagnostic::error(
                    "ipcspec::invalid-name",
                    format!("catalogue name `{}` is not lower kebab-case", cat.name),
                )
                .at(&Src::default().at("name"), "")
                .help(format!(
                    "write it `{}`; generated files and modules are named after it",
                    cat.name.to_kebab_case()
                )),
            );
        }
        if semver::Version::parse(&cat.version).is_err() {
            self.push(
                Diagnostic::error(
                    "ipcspec::invalid-value",
                    format!("version `{}` is not a semantic version", cat.version),
                )
                .at(&Src::default().at("version"), "")
                .help("write MAJOR.MINOR.PATCH, e.g. `1.0.0`"),
            );
        }
    }

    fn roles_and_channels(&mut self) {
        let cat = self.cat;
        if cat.roles.len() < 2 {
            self.push(
                Diagnostic::error(
                    "ipcspec::invalid-value",
                    "a protocol needs at least two roles",
                )
                .at(&Src::default().at("roles"), "")
                .help("declare every party, e.g. `service` and `agent`"),
            );
        }
        for role in &cat.roles {
            let ok = role.name.starts_with(|c: char| c.is_ascii_lowercase())
                && role
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !ok {
                self.push(
                    Diagnostic::error(
                        "ipcspec::invalid-name",
                        format!("role name `{}` is not lower-case", role.name),
                    )
                    .at(&role.src.at("name"), "")
                    .help(format!("write it `{}`", role.name.to_snake_case())),
                );
            }
        }
        self.unique(
            "role",
            cat.roles
                .iter()
                .map(|r| (r.name.as_str(), r.src.at("name"))),
        );
        self.unique(
            "channel",
            cat.channels
                .iter()
                .map(|c| (c.name.as_str(), c.src.at("name"))),
        );
        for channel in &cat.channels {
            if channel.between.len() != 2 {
                self.push(
                    Diagnostic::error("ipcspec::invalid-value", format!("channel `{}` must have exactly two ends", channel.name))
                        .at(&channel.src.at("between"), "")
                        .help("a channel connects two ends, each a role or a list of roles, e.g. [\"main\", [\"renderer\", \"utility\"]]; repeat an end for peer-to-peer channels"),
                );
            }
            for (i, end) in channel.between.iter().enumerate() {
                self.roles(end, &channel.src.at("between").at(i));
            }
        }
    }

    /// Reports `channel` at `src` unless it is declared.
    pub fn channel(&mut self, channel: &str, src: &Src) -> bool {
        if self.cat.channels.iter().any(|c| c.name == channel) {
            return true;
        }
        let hint = did_you_mean(channel, self.cat.channels.iter().map(|c| c.name.as_str()));
        let help = if self.cat.channels.is_empty() {
            "this catalogue declares no `channels`; remove the member or declare the channel"
                .to_owned()
        } else {
            format!(
                "declared channels: {}",
                self.cat
                    .channels
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        self.push(
            Diagnostic::error(
                "ipcspec::unknown-channel",
                format!("unknown channel `{channel}`{hint}"),
            )
            .at(src, "")
            .help(help),
        );
        false
    }
}

/// ASCII letters, digits and `_`, not starting with a digit.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True if `name` is already in `casing`.
pub fn follows_casing(name: &str, casing: Casing) -> bool {
    apply_casing(name, casing) == name
}

/// `name` converted to `casing`.
pub fn apply_casing(name: &str, casing: Casing) -> String {
    match casing {
        Casing::Camel => name.to_lower_camel_case(),
        Casing::Pascal => name.to_upper_camel_case(),
        Casing::Snake => name.to_snake_case(),
        Casing::ScreamingSnake => name.to_shouty_snake_case(),
        Casing::Kebab => name.to_kebab_case(),
    }
}

/// The catalogue spelling of a casing.
pub fn casing_name(casing: Casing) -> &'static str {
    match casing {
        Casing::Camel => "camelCase",
        Casing::Pascal => "PascalCase",
        Casing::Snake => "snake_case",
        Casing::ScreamingSnake => "SCREAMING_SNAKE_CASE",
        Casing::Kebab => "kebab-case",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casing_table() {
        let table = [
            ("correlationId", Casing::Camel, true),
            ("CorrelationId", Casing::Camel, false),
            ("MachineId", Casing::Pascal, true),
            ("machineId", Casing::Pascal, false),
            ("service_id_ptr", Casing::Snake, true),
            ("reserved0", Casing::Snake, true),
            ("BACKUP_REQUEST", Casing::ScreamingSnake, true),
            ("BackupRequest", Casing::ScreamingSnake, false),
        ];
        for (name, casing, ok) in table {
            assert_eq!(follows_casing(name, casing), ok, "{name} {casing:?}");
        }
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("_pad0"));
        assert!(is_identifier("IPC_MAGIC"));
        assert!(!is_identifier("0x"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
    }
}
