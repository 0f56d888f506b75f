//! The catalogue model: the Rust form of the catalogue language.
//!
//! These types are what a catalogue file deserializes into and what the meta-schema
//! (`specs/catalogue.schema.json`) is generated from, so their doc comments are the
//! descriptions an editor shows. They are plain data: no IO, no positions. Where a
//! diagnostic needs a position, the loader keeps a JSON pointer in [`Src`] and the
//! [`crate::SourceMap`] turns it into a byte span.
//!
//! Every collection is a JSON array of objects with a `name`, never an object keyed by
//! name: the order of fields is meaningful (C layout, docs), and a duplicate name is a
//! diagnostic that can point at both definitions instead of a key silently overwritten.
//!
//! Split as [`crate::validate`] is: [`wire`] (the wire profile), [`types`], [`messages`]
//! (messages, ioctls, constants, errors) and [`machines`]; every item is re-exported
//! here, so `model::X` names each of them.

mod machines;
mod messages;
mod types;
mod wire;

pub use machines::*;
pub use messages::*;
pub use types::*;
pub use wire::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where an item came from: the JSON pointer of its object in the catalogue file.
/// Filled by the loader; not part of the catalogue language.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Src(pub String);

impl Src {
    /// The pointer of a member of this item, e.g. `src.at("fields").at(3)`.
    pub fn at(&self, token: impl std::fmt::Display) -> Src {
        let token = token.to_string().replace('~', "~0").replace('/', "~1");
        Src(format!("{}/{}", self.0, token))
    }

    /// The pointer as text (`""` for the document root).
    pub fn pointer(&self) -> &str {
        &self.0
    }
}

/// A protocol catalogue: every message of one IPC system, written once.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "ipcspec catalogue")]
pub struct Catalogue {
    /// Path or URL of the meta-schema, so editors complete and check the file.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Identifier of the catalogue, lower kebab-case (`migration`, `direct-ipc`). Generated
    /// modules and files are named after it.
    pub name: String,
    /// Human title used in generated documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Semantic version of the protocol (`MAJOR.MINOR.PATCH`).
    pub version: String,
    /// What the system is and who talks to whom.
    pub description: String,
    /// The parties of the protocol.
    pub roles: Vec<Role>,
    /// Logical channels when a system uses more than one kind of connection (for example
    /// a control channel to a broker and direct peer channels). Omit for a single channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
    /// How messages travel: transports, framing, encoding, envelope, limits, timing.
    pub wire: WireProfile,
    /// Named types used by payloads, headers and ioctl arguments.
    #[serde(default)]
    pub types: Vec<TypeDef>,
    /// The messages of the protocol.
    pub messages: Vec<Message>,
    /// ioctl commands (Linux `_IO`/`_IOR`/`_IOW`/`_IOWR` numbers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ioctls: Vec<Ioctl>,
    /// Named constants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constants: Vec<Constant>,
    /// Error codes a peer may report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorCode>,
    /// Lifecycles of roles, connections and requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state_machines: Vec<StateMachine>,
}

/// A party of the protocol, e.g. `service` and `agent`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Role {
    /// Lower snake_case or kebab-case identifier used by messages and state machines.
    pub name: String,
    /// What this party is and how it runs.
    pub doc: String,
    #[serde(skip)]
    pub src: Src,
}

/// A logical channel: one kind of connection between two ends.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Channel {
    /// Identifier referenced by transports and messages.
    pub name: String,
    /// The two ends of a connection of this channel; each end is a role or a list of roles
    /// that may stand there (`["main", ["renderer", "utility"]]`).
    pub between: Vec<Names>,
    /// What the channel carries.
    pub doc: String,
    #[serde(skip)]
    pub src: Src,
}

/// One name, or a list of them (roles of a channel end or state machine, channels of a
/// message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Names {
    /// A single name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl Names {
    /// The names, in order.
    pub fn names(&self) -> &[String] {
        match self {
            Names::One(one) => std::slice::from_ref(one),
            Names::Many(many) => many,
        }
    }

    /// True if `role` is among them.
    pub fn contains(&self, role: &str) -> bool {
        self.names().iter().any(|r| r == role)
    }
}

// By hand for the same reason as `TypeRef`: untagged's only error is "did not match".
impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamesVisitor;

        impl<'de> serde::de::Visitor<'de> for NamesVisitor {
            type Value = Names;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a name or a list of names")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Names, E> {
                Ok(Names::One(v.to_owned()))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Names, A::Error> {
                Vec::<String>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(Names::Many)
            }
        }

        deserializer.deserialize_any(NamesVisitor)
    }
}
