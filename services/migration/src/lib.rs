//! The Migration reference service (`specs/migration.json`): a privileged daemon that asks
//! each logged-in user's Migration Agent to back up before a deadline, follows each user
//! through the `UserMigration` state machine (`NOT_STARTED`, `BACKUP_REQUESTED`,
//! `DELAY_REQUESTED`, `BACKUP_IN_PROGRESS`, `BACKUP_COMPLETED`, `ESCALATED`) and escalates
//! to IT when a deadline passes.
//!
//! Only the durable store exists so far:
//!
//! - [`store`]: one SQLite database (WAL, `synchronous=FULL`) holding each user's record,
//!   the ids of messages already handled (exactly-once handling when an agent resends
//!   after a reconnect) and the outbox of requests for agents that are offline. A single
//!   writer thread applies waiting requests in one transaction (group commit) and answers
//!   each only once the transaction is durable, so the service acknowledges a message
//!   only after its effect can no longer be lost.
//!
//! The server (wiring the generated dispatcher into `ipcspec_runtime::server`), the state
//! machine's transitions, deadlines and the `status` command build on it next.

pub mod store;

pub use store::{Effect, Outcome, Store, StoreError, StoreStats, UserRecord, UserUpdate};
