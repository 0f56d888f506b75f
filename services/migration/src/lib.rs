//! The Migration reference service (`specs/migration.json`): a privileged daemon that asks
//! each logged-in user's Migration Agent to back up before a deadline, follows each user
//! through the `UserMigration` state machine (`NOT_STARTED`, `BACKUP_REQUESTED`,
//! `DELAY_REQUESTED`, `BACKUP_IN_PROGRESS`, `BACKUP_COMPLETED`, `ESCALATED`) and escalates
//! to IT when a deadline passes; and the agent that runs in each user's session.
//!
//! - [`store`]: one SQLite database (WAL, `synchronous=FULL`) holding each user's record,
//!   the journal of handled messages (exactly-once handling when an agent resends after a
//!   reconnect), the outbox of messages for agents that are offline, and operator
//!   commands. A single writer thread applies waiting requests in one transaction (group
//!   commit) and answers each only once the transaction is durable.
//! - [`service`]: the service on `ipcspec_runtime::server`, with the generated dispatcher.
//! - [`commands`]: what an operator asks of the service (`migration-service push`).
//! - [`agent`]: the agent's connection: AGENT_STARTED on every connection, reconnecting,
//!   resending, acknowledging what the service sends.
//! - [`wire`]: envelopes and acknowledgments; [`identity`]: uid to login name.

pub mod agent;
pub mod commands;
pub mod identity;
pub mod service;
pub mod store;
pub mod wire;

pub use service::{MigrationService, ServiceConfig};
pub use store::{
    Effect, HandledMessage, Origin, OutboxEntry, OutboxMessage, Outcome, PendingCommand, Store,
    StoreError, StoreStats, UserRecord, UserUpdate,
};
