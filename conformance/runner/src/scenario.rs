//! The scenario format: what a conformance case does and what it accepts.
//!
//! A scenario file holds the cases of one catalogue. A case is a list of steps on one or
//! more connections to the implementation under test (send a frame described
//! symbolically, expect a frame, a close or silence within a time), with a ranked list of
//! acceptable outcomes: the steps themselves (`ok`), then alternatives a lenient
//! implementation may show instead (`non-strict`). The JSON Schema of this format is
//! generated from these types (`ipcspec-conformance schema`) and checked in as
//! `conformance/schema/scenarios.schema.json`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One scenario file: the cases of one catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScenarioFile {
    /// The schema of this file.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The catalogue's `name`.
    pub catalogue: String,
    /// What the file covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The cases, in the order they run.
    pub cases: Vec<Case>,
}

/// How much a case matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Required by the catalogue: always run.
    Must,
    /// Recommended: run with `--strict`.
    Should,
}

/// The role the implementation under test plays in a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The implementation listens; the runner connects.
    Server,
    /// The runner listens; the implementation connects.
    Client,
}

/// One conformance case.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Case {
    /// Stable identifier (`migration/framing/one-byte-writes`). Never reused for another
    /// check, even after the case is removed.
    pub id: String,
    /// What the case checks, in one line.
    pub title: String,
    /// The group it belongs to (`--group`).
    pub group: String,
    /// `must` or `should`.
    pub level: Level,
    /// The implementation's role.
    pub role: Role,
    /// The requirement anchors it checks: `<catalogue>.md#<anchor>` in the generated docs.
    pub cites: Vec<String>,
    /// Features the implementation must declare in its capabilities for the case to run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// The steps; every step must pass for the `ok` verdict.
    pub steps: Vec<Step>,
    /// Other acceptable behaviours, in order of preference; each replaces the steps from
    /// the first step that failed (`from`, the step's index) with its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Alternative>,
    /// Client cases: lines written to the client's standard input when it starts (what
    /// it should send, in the form its adapter understands; for the Migration agent,
    /// `{"type", "payload", "id"}` objects). Placeholders are replaced first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_input: Vec<Value>,
}

/// A lenient behaviour a case also accepts.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Alternative {
    /// The verdict it earns (`non-strict`).
    pub verdict: String,
    /// Why it is acceptable.
    pub note: String,
    /// The step (index into `steps`) from which the alternative applies.
    pub from: usize,
    /// What the implementation may do instead from there.
    pub steps: Vec<Step>,
}

/// A number (milliseconds for durations), or a capability expression
/// `<capability>[*<factor>][/<divisor>][+<n>]` (`"frameReadTimeoutMs+2000"`,
/// `"frameReadTimeoutMs/2"`, `"maxConnections"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Wait {
    /// Milliseconds.
    Millis(u64),
    /// `<capability>[*<factor>][+<ms>]`, e.g. `heartbeatIntervalMs*2+500`.
    Expr(String),
}

/// One step.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Step {
    /// The connection (`main` unless given); a new name opens a new connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// What the step does.
    #[serde(flatten)]
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Send a frame.
    Send(Send),
    /// Expect a frame matching a pattern within a time; frames of the ignored types
    /// (heartbeats, and anything in `skip`) arriving first are passed over.
    Expect(Expect),
    /// Expect the implementation to close the connection within a time (frames before
    /// the close are passed over, unless they match `forbid`).
    ExpectClose(CloseWithin),
    /// Expect no frame (other than ignored ones) for a time, with the connection open.
    ExpectSilence(During),
    /// Do nothing for a time (the runner does not read: back-pressure).
    Pause(During),
    /// Close the runner's side of the connection.
    Close(Empty),
    /// Open this many more connections (`fill-1`, `fill-2`, ...) without sending on
    /// them, e.g. `maxConnections` to reach the implementation's connection limit.
    Fill(Fill),
    /// Client cases: expect the client not to open another connection for a time.
    ExpectNoConnection(During),
    /// Client cases: expect the client process to exit within a time (with `code`, when
    /// given).
    ExpectExit(ExitWithin),
}

/// A process exit to expect.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExitWithin {
    /// How long to wait.
    pub within: Wait,
    /// The exit code required, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
}

/// Connections to open.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Fill {
    /// How many: a number or a capability expression (`maxConnections`).
    pub connections: Wait,
}

/// No parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// A time limit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Within {
    /// How long to wait.
    pub within: Wait,
}

/// A close to expect.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CloseWithin {
    /// How long to wait.
    pub within: Wait,
    /// A frame arriving before the close that matches this pattern fails the step (for
    /// example the acknowledgment of a frame that should not have been read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid: Option<Value>,
}

/// A duration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct During {
    /// How long.
    pub duration: Wait,
}

/// A frame to send, described symbolically.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Send {
    /// The body.
    #[serde(flatten)]
    pub body: Body,
    /// Declare this length in the prefix instead of the body's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Send only the first this-many bytes of the frame (prefix included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<usize>,
    /// Write the frame in pieces of these sizes (cycled), with a short pause between
    /// writes so the implementation sees separate reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Vec<usize>>,
    /// Send this many copies in one write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<usize>,
    /// For a message: send this many, in one write, with ids `<id>-1` ... `<id>-N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<usize>,
}

/// A frame body.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Body {
    /// A catalogue message: the runner builds the envelope (a fresh `id` unless given,
    /// the current `timestamp`) around `payload`. Strings in the payload may use
    /// `${user}` (the runner's login name), `${otherUser}` (another login name) and
    /// `${uuid}`.
    Message(MessageBody),
    /// Any JSON value, serialized compactly (placeholders as above).
    Json(Value),
    /// Text, sent as UTF-8.
    Text(String),
    /// Bytes, in hex.
    Hex(String),
}

/// A message built by the runner.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MessageBody {
    /// The message's wire name.
    #[serde(rename = "type")]
    pub message_type: String,
    /// The envelope id (fresh when omitted); later steps can refer to it as `${id:<name>}`
    /// when `name` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A name for the id, for later steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The payload.
    #[serde(default = "empty_object")]
    pub payload: Value,
    /// Extra or replaced envelope keys (a `null` value removes the key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub envelope: BTreeMap<String, Value>,
    /// Grow the string at this payload path (`details.pad`) until the body has exactly
    /// this size: a number, `max` (the capability `maxMessageBytes`) or `max+1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad: Option<Pad>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// Padding a message to an exact size.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pad {
    /// Dot-separated path of a string inside the payload.
    pub field: String,
    /// `max`, `max+1` or a number of bytes.
    pub size: String,
}

/// A frame to expect.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    /// The frame's JSON must contain this (objects match by subset, recursively; the
    /// string `$any` matches any value, `$absent` requires the key to be missing;
    /// `${id:<name>}` is the id of an earlier message).
    pub frame: Value,
    /// How long to wait.
    pub within: Wait,
    /// Message types passed over while waiting, besides the catalogue's heartbeat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<String>,
    /// Pass over any frame that does not match (instead of failing on the first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_others: bool,
    /// Expect this many matching frames (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// Remember values of the matching frame for later steps: name -> dot-separated path
    /// (`{"sent": "id"}` makes `${id:sent}` the frame's `id`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub save: BTreeMap<String, String>,
}
