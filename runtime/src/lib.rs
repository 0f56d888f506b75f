//! Support code for the crates ipcspec generates from protocol catalogues.
//!
//! Generated code is plain data types plus thin glue; everything that glue calls lives
//! here, once, and names no catalogue:
//!
//! - [`serde_as`]: composable serde adapters, so a field of type `list<map<list<i64>>>`
//!   gets the int64-as-string form at every depth (`As::<ListOf<MapOf<ListOf<I64String>>>>`),
//!   with one small module per wire form (int64 strings, base64 bytes, durations in
//!   milliseconds, RFC 3339 timestamps, hyphenated UUIDs).
//! - [`binary`]: the little-endian codec for C-layout structs: a bounds-checked
//!   [`binary::Reader`] and a [`binary::Writer`], the [`binary::Binary`] trait generated
//!   structs implement, and precise [`binary::DecodeError`]s.
//! - [`dispatch`]: what generated dispatchers and handler traits take and return.
//! - [`machine`]: the [`Trigger`] that drives generated state machines.
//!
//! Nothing here panics on input from outside: malformed input is an error value.

pub mod binary;
pub mod dispatch;
pub mod machine;
pub mod serde_as;

pub use dispatch::{DispatchError, HandlerError, MessageContext, MessageInfo};
pub use machine::Trigger;
