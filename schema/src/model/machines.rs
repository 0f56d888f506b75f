//! State machines: lifecycles of roles, connections and requests.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Names, Src};

/// A lifecycle: of a role's session, a connection or a request.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateMachine {
    /// Name (e.g. `RegistrationState`); generated as an enum of the states.
    pub name: String,
    /// The role (or roles) that hold this state.
    pub role: Names,
    /// What the machine tracks.
    pub doc: String,
    /// The state a new instance starts in.
    pub initial: String,
    /// The string enum type that carries this machine's state in messages (e.g.
    /// `UserMigrationState`), when one does. Its values' wire strings must be exactly the
    /// states' values; the conversions between the machine and the type are generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_type: Option<String>,
    /// The states.
    pub states: Vec<State>,
    /// The transitions.
    pub transitions: Vec<Transition>,
    #[serde(skip)]
    pub src: Src,
}

/// A state.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct State {
    /// Name (e.g. `SUBSCRIBING`).
    pub name: String,
    /// Wire or display string of the state (e.g. `subscribing`); defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What holds in this state.
    pub doc: String,
    /// Messages the role may send in this state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sends: Vec<String>,
    /// Messages the role accepts in this state; others are a protocol error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receives: Vec<String>,
    /// No transition leaves this state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminal: bool,
}

/// A transition between states.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transition {
    /// Source state.
    pub from: String,
    /// Target state.
    pub to: String,
    /// What causes it: exactly one of `send`, `receive` or `event`.
    pub on: Trigger,
    /// What happens on the way (actions, cleanup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// What causes a transition.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Trigger {
    /// The role sends this message.
    Send(String),
    /// The role receives this message.
    Receive(String),
    /// A local event: `connected`, `closed`, `timeout`, `error`, `exit`, ...
    Event(String),
}
