//! The XStateNet message bus (`specs/xstatenet.json`, seed 004): state machines in
//! different processes on one machine register with the bus and send each other events
//! through it, as newline-delimited JSON over a Unix socket.
//!
//! - [`bus`]: the bus as a runtime `Service`: registration and ownership of machine ids,
//!   routing, errors naming the problem, health and metrics.
//! - [`client`]: the client library (the seed's `InterProcessClient`): register, send,
//!   receive and wait for events, health and metrics; re-registers after a bus restart.
//!
//! - [`config`]: `appsettings.json` with an environment overlay, and hot reload.
//!
//! Still to come (see the issue): the systemd unit, the Prometheus page and the NATS
//! comparison.

pub mod bus;
pub mod client;
pub mod config;

pub use bus::Bus;
pub use client::{BusClient, BusClientError, Events, Incoming};
