//! The ipcspec runtime: what carries catalogue messages over real sockets, and the
//! support code of the crates ipcspec generates. It names no catalogue.
//!
//! - [`codec`]: framing as tokio-util `Decoder`/`Encoder`s (a length prefix of any width
//!   and byte order, newline-delimited lines, a binary header of the layout a catalogue
//!   declares), each enforcing its size limit before allocating.
//! - [`profile`]: the [`profile::WireProfile`] type the generated `WIRE` constant of each
//!   catalogue fills (framing, limits, timings, role messages); servers, clients and
//!   codecs are built from it.
//! - [`transport`]: Unix domain socket listeners (mode, group, stale-socket handling) and
//!   connections with peer credentials; the [`transport::Connection`] every transport yields.
//! - [`server`]: the accept loop, connection limit, bounded outbound queues, frame read
//!   timeouts, stale detection, heartbeats, graceful drain and metrics, around a
//!   [`server::Service`] that decodes and dispatches each frame.
//! - [`client`]: a connection with sends and requests resolved by correlation id (timeouts,
//!   late replies discarded and counted), other inbound frames on a channel.
//! - [`metrics_http`]: a service's Prometheus page on a loopback address.
//!
//! - [`serde_as`]: composable serde adapters, so a field of type `list<map<list<i64>>>`
//!   gets the int64-as-string form at every depth (`As::<ListOf<MapOf<ListOf<I64String>>>>`),
//!   with one small module per wire form (int64 strings, base64 bytes, durations in
//!   milliseconds, RFC 3339 timestamps, hyphenated UUIDs).
//! - [`binary`]: the little-endian codec for C-layout structs: a bounds-checked
//!   [`binary::Reader`] and a [`binary::Writer`], the [`binary::Binary`] trait generated
//!   structs implement, and precise [`binary::DecodeError`]s.
//! - [`dispatch`]: what generated dispatchers and handler traits take and return.
//! - [`machine`]: what generated state machines share: the [`Trigger`], the transition
//!   table as data, [`machine::InvalidTransition`] and the transition log.
//! - [`nesting`]: the JSON nesting limit, checked on the raw text.
//! - [`strict`]: strict JSON decoding, structs only from JSON objects (never serde's
//!   positional array form), at every depth; every JSON decoding helper here uses it.
//! - [`validate`]: the [`validate::Validate`] trait generated types implement, checking
//!   decoded values against the catalogue's constraints with path-aware errors.
//!
//! Nothing here panics on input from outside: malformed input is an error value.

pub mod binary;
pub mod client;
pub mod codec;
pub mod dispatch;
pub mod machine;
pub mod metrics_http;
pub mod nesting;
pub mod profile;
pub mod serde_as;
pub mod server;
pub mod strict;
pub mod transport;
pub mod validate;

pub use dispatch::{DispatchError, Handled, HandlerError, MessageContext, MessageInfo, Unhandled};
pub use machine::{InvalidTransition, Trigger};
pub use profile::WireProfile;
