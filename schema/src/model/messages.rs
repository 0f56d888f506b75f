//! Messages, ioctls, constants and error codes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Names, PrimitiveType, Src, TypeRef};
use crate::intlit::IntLit;

/// A message of the protocol.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Message {
    /// The wire name, exactly as peers write it (e.g. `BACKUP_REQUEST`, `SendEvent`).
    pub name: String,
    /// Numeric type code; required by binary-header framing, unique per catalogue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<IntLit>,
    /// Names that send it.
    pub from: Vec<String>,
    /// Names that receive it.
    pub to: Vec<String>,
    /// The channel (or channels) it travels on, when the catalogue declares channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Names>,
    /// Payload type; absent for a message without payload (`{}` in JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<TypeRef>,
    /// The message the receiver answers with, correlated by the envelope's correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// This message is a reply (it carries a correlation id).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_reply: bool,
    /// The receiver acknowledges it with `wire.ackMessage`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub acknowledged: bool,
    /// Default priority: a value name of `wire.priority.enum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// What the message means, when it is sent and what the receiver does.
    pub doc: String,
    #[serde(skip)]
    pub src: Src,
}

/// Direction of an ioctl's argument transfer, seen from user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum IoctlDirection {
    /// `_IO`: no argument.
    None,
    /// `_IOR`: the kernel writes the argument for user space to read.
    Read,
    /// `_IOW`: user space writes the argument for the kernel.
    Write,
    /// `_IOWR`: both.
    ReadWrite,
}

/// An ioctl command.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ioctl {
    /// The request macro name (e.g. `VEXFS_IOCTL_IPC_REGISTER_SERVICE`).
    pub name: String,
    /// The ioctl type (magic): one character such as `"V"`, or an integer 0..=255.
    pub magic: IntLit,
    /// The command number, 0..=255.
    pub number: IntLit,
    /// Direction of the argument.
    pub direction: IoctlDirection,
    /// The argument struct (C layout); absent for direction `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg: Option<String>,
    /// What the command does and what it returns.
    pub doc: String,
    #[serde(skip)]
    pub src: Src,
}

/// A named constant.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Constant {
    /// Name, SCREAMING_SNAKE_CASE.
    pub name: String,
    /// Type: an integer, float, bool or string primitive.
    #[serde(rename = "type")]
    pub ty: PrimitiveType,
    /// The value: a number, a hex string (`"0x56455849"`), a bool or a string.
    pub value: serde_json::Value,
    /// What the constant means, with its unit.
    pub doc: String,
    #[serde(skip)]
    pub src: Src,
}

/// An error code.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorCode {
    /// Symbolic name, as it appears on the wire where errors are strings.
    pub name: String,
    /// Numeric code, where errors are numbers on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<IntLit>,
    /// When it is reported and what the receiver should do.
    pub doc: String,
    #[serde(skip)]
    pub src: Src,
}
