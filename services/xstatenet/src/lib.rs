//! The XStateNet message bus (`specs/xstatenet.json`, seed 004): state machines in
//! different processes on one machine register with the bus and send each other events
//! through it, as newline-delimited JSON over a Unix socket.
//!
//! - [`bus`]: the bus as a runtime `Service`: registration and ownership of machine ids,
//!   routing, errors naming the problem, health and metrics.
//!
//! Still to come (see the issue): configuration with hot reload, the client library,
//! the command-line client, the systemd unit and the NATS comparison.

pub mod bus;

pub use bus::Bus;
