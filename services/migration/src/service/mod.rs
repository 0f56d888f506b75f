//! The Migration Service on the runtime's server: decoding, validation, uid binding,
//! exactly-once handling, the `UserMigration` state machine and delivery to agents.
//!
//! # One message
//!
//! [`Service::handle`](ipcspec_runtime::server::Service::handle) (in `receive`) decodes
//! the envelope ([`wire::receive`]), hands the payload to the generated
//! `dispatch_to_service`, whose
//! [`ServiceHandler`](ipcspec_generated::migration::ServiceHandler) here is a per-message
//! `Call`, and answers with an ACKNOWLEDGMENT (except for HEARTBEAT and
//! ACKNOWLEDGMENT, which are never acknowledged). Messages the handling produced for the
//! same agent (the CONFIGURATION_UPDATE, STATUS_UPDATE and outbox after AGENT_STARTED, a
//! new BACKUP_REQUEST after a failed backup) follow the acknowledgment on the connection;
//! other agents of the same user get them through their connection handles.
//!
//! # Invariants
//!
//! - **Acknowledged means durable.** A handler commits its effect through
//!   [`Store::commit`] and returns only once the transaction is durable; the
//!   acknowledgment is queued after that.
//! - **Exactly once per sender.** The journal key is `(userId, sessionId, id)`. A message
//!   already in the journal is answered DUPLICATE_MESSAGE (which the agent treats as
//!   delivered) before any state check, so a resend after a lost acknowledgment is never
//!   refused as INVALID_STATE nor applied twice.
//! - **One decision per user at a time.** Each user's read-decide-commit runs under the
//!   user's lock, so two sessions of one user (or an operator command) cannot interleave.
//! - **Bound to the peer.** AGENT_STARTED is accepted only when its `userId` is the login
//!   name of the peer's uid, and every later message must carry the same `userId`;
//!   otherwise USER_MISMATCH, a `security` log line, and the connection is closed.
//!
//! # Where things are
//!
//! - this module: the service's shared state (accepted agents, per-user locks, the store)
//!   and what every path uses to compose, queue and commit messages;
//! - `receive`: the receive pipeline, from a frame to its acknowledgment;
//! - `call`: one message being handled (`Call`), with the checks every handler starts
//!   with and its commit;
//! - `handlers`: the generated `ServiceHandler`, one method per agent message;
//! - `background`: operator commands and passed deadlines.

mod background;
mod call;
mod handlers;
mod receive;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use ipcspec_generated::migration::HandlerResult;
use ipcspec_generated::migration::{
    AgentSettings, BackupRequestPayload, BackupRequestReason, DelayDecision, ErrorCode,
    MigrationPhase, ServiceMessage, StatusUpdatePayload, UserMigration, UserMigrationTrigger,
};
use ipcspec_runtime::HandlerError;
use ipcspec_runtime::server::{ConnectionHandle, Direction};
use ipcspec_runtime::transport::ConnectionId;
use ipcspec_runtime::validate::Validate;

use crate::commands::Command;
use crate::identity::Directory;
use crate::store::{Effect, Origin, OutboxMessage, Outcome as Committed, Store, UserUpdate};
use crate::wire;

/// How the service behaves beyond what the catalogue fixes.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// AGENT_STARTED with an older `version` is refused (UNSUPPORTED_AGENT_VERSION).
    pub min_agent_version: Option<String>,
    /// The migration's phase, as STATUS_UPDATE reports it.
    pub phase: MigrationPhase,
    /// How often pending operator commands and passed deadlines are checked.
    pub tick: Duration,
    /// Journal entries older than this are pruned (the newest
    /// [`DEDUPE_WINDOW`](crate::store::DEDUPE_WINDOW) of each sender are always kept).
    pub journal_retention: Duration,
    /// A running backup without BACKUP_PROGRESS or BACKUP_COMPLETED for this long is
    /// abandoned (the catalogue's `BACKUP_PROGRESS_TIMEOUT_SECONDS` by default).
    pub backup_progress_timeout: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            min_agent_version: None,
            phase: MigrationPhase::CollectingBackups,
            tick: Duration::from_millis(500),
            journal_retention: Duration::from_secs(30 * 24 * 3600),
            backup_progress_timeout: Duration::from_secs(u64::from(
                ipcspec_generated::migration::BACKUP_PROGRESS_TIMEOUT_SECONDS,
            )),
        }
    }
}

/// An agent connection that has been accepted by AGENT_STARTED.
#[derive(Debug, Clone)]
struct Agent {
    user_id: String,
    session_id: String,
    handle: ConnectionHandle,
}

/// The Migration Service; see the [module documentation](self).
#[derive(Debug)]
pub struct MigrationService<D> {
    store: Store,
    directory: D,
    config: ServiceConfig,
    agents: Mutex<HashMap<ConnectionId, Agent>>,
    user_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A handler's refusal: one of the catalogue's codes, a message, and whether the
/// connection closes after it.
type Refusal = HandlerError<ErrorCode>;

/// What a handler returns: accepted, with the messages that follow the acknowledgment on
/// this connection (and whether it closes), or refused.
type Answer = HandlerResult<(), FollowUp>;

/// A message a handler sends on its own connection after the acknowledgment: its wire
/// name (for the metrics) and its frame.
#[derive(Debug, Clone)]
struct FollowUp {
    message_type: String,
    frame: Bytes,
}

/// A handler refusal with one of the catalogue's codes.
fn refuse(code: ErrorCode, message: impl Into<String>) -> Refusal {
    code.error(message)
}

fn internal(error: impl std::fmt::Display) -> Refusal {
    tracing::error!(%error, "cannot process a message");
    refuse(
        ErrorCode::InternalError,
        format!("the service failed: {error}"),
    )
}

/// The one way a user's state changes: the generated `UserMigration` machine, which
/// allows exactly the catalogue's transitions (and records each one it takes). An
/// undeclared one is INVALID_STATE, naming what the state accepts.
fn transition(
    state: UserMigration,
    trigger: UserMigrationTrigger,
) -> Result<UserMigration, Refusal> {
    state
        .next(trigger)
        .map_err(|refused| refuse(ErrorCode::InvalidState, refused.to_string()))
}

/// INVALID_STATE unless `state` receives `message_type` (the state's `receives` in the
/// catalogue).
fn receives(state: UserMigration, message_type: &str) -> Result<(), Refusal> {
    if state.receives().contains(&message_type) {
        return Ok(());
    }
    Err(refuse(
        ErrorCode::InvalidState,
        format!(
            "{message_type} is not accepted in state {}; it receives {}",
            state.as_str(),
            state.receives().join(", ")
        ),
    ))
}

impl<D: Directory> MigrationService<D> {
    /// A service keeping its state in `store` and resolving peers with `directory`.
    pub fn new(store: Store, directory: D, config: ServiceConfig) -> Self {
        Self {
            store,
            directory,
            config,
            agents: Mutex::new(HashMap::new()),
            user_locks: Mutex::new(HashMap::new()),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn agents(&self) -> std::sync::MutexGuard<'_, HashMap<ConnectionId, Agent>> {
        // Every critical section is one map operation; the map stays consistent.
        self.agents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The accepted agents, as `(user, session)` pairs in connection order.
    pub fn connected_agents(&self) -> Vec<(String, String)> {
        let mut agents: Vec<_> = self
            .agents()
            .iter()
            .map(|(id, a)| (*id, a.user_id.clone(), a.session_id.clone()))
            .collect();
        agents.sort_by_key(|(id, _, _)| *id);
        agents.into_iter().map(|(_, u, s)| (u, s)).collect()
    }

    async fn lock_user(&self, user_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .user_locks
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(user_id.to_owned()).or_default())
        };
        lock.lock_owned().await
    }

    /// Queues `frames` on every accepted connection of `user_id` except `except`. A
    /// connection whose queue is full misses them; outbox messages reach it again on its
    /// next AGENT_STARTED.
    fn deliver(&self, user_id: &str, frames: &[(String, Bytes)], except: Option<ConnectionId>) {
        let handles: Vec<ConnectionHandle> = self
            .agents()
            .iter()
            .filter(|(id, a)| a.user_id == user_id && Some(**id) != except)
            .map(|(_, a)| a.handle.clone())
            .collect();
        for handle in handles {
            for (message_type, frame) in frames {
                match handle.send(frame.clone()) {
                    Ok(()) => handle
                        .metrics()
                        .record_message(Direction::Out, message_type),
                    Err(error) => {
                        tracing::warn!(user_id, %error, message_type, "message not queued for an agent");
                    }
                }
            }
        }
    }

    /// Encodes a service message with a fresh id, checking it against the catalogue
    /// first; `None` (and an error log) when it breaks a constraint, so the service never
    /// sends what its agents must refuse.
    fn compose(&self, message: &ServiceMessage) -> Option<(String, Bytes)> {
        let problems = match message {
            ServiceMessage::BackupRequest(p) => p.validate(),
            ServiceMessage::StatusUpdate(p) => p.validate(),
            ServiceMessage::EscalationNotice(p) => p.validate(),
            ServiceMessage::ConfigurationUpdate(p) => p.validate(),
            ServiceMessage::ShutdownRequest(p) => p.validate(),
            ServiceMessage::Acknowledgment(p) => p.validate(),
            ServiceMessage::Heartbeat => Ok(()),
        };
        if let Err(errors) = problems {
            tracing::error!(message_type = message.message_type(), %errors, "not sending an invalid message");
            return None;
        }
        let id = wire::new_id();
        match wire::encode_service(&id, message) {
            Ok(frame) => Some((id, frame)),
            Err(error) => {
                tracing::error!(%error, "cannot encode a message");
                None
            }
        }
    }

    fn outbox(&self, user_id: &str, message: &ServiceMessage) -> Option<(OutboxMessage, Bytes)> {
        let (id, frame) = self.compose(message)?;
        let json = String::from_utf8_lossy(&frame).into_owned();
        Some((
            OutboxMessage {
                user_id: user_id.to_owned(),
                message_id: id,
                message_type: message.message_type().to_owned(),
                message_json: json,
            },
            frame,
        ))
    }

    fn current_settings(&self) -> (u64, AgentSettings) {
        let latest = self.store.latest_applied_command("configure");
        match latest {
            Ok(Some((seq, json))) => match serde_json::from_str::<Command>(&json) {
                Ok(Command::Configure { settings }) => (u64::try_from(seq).unwrap_or(0), settings),
                other => {
                    tracing::error!(seq, ?other, "the latest configure command is unreadable");
                    (0, AgentSettings::default_settings())
                }
            },
            Ok(None) => (0, AgentSettings::default_settings()),
            Err(error) => {
                tracing::error!(%error, "cannot read the agents' settings");
                (0, AgentSettings::default_settings())
            }
        }
    }

    fn status_update(
        &self,
        record: &UserUpdate,
        decision: Option<DelayDecision>,
    ) -> ServiceMessage {
        let (total, completed) = match self.store.users() {
            Ok(users) => (
                u32::try_from(users.len()).ok(),
                u32::try_from(
                    users
                        .iter()
                        .filter(|u| u.record.state == UserMigration::BackupCompleted)
                        .count(),
                )
                .ok(),
            ),
            Err(_) => (None, None),
        };
        ServiceMessage::StatusUpdate(StatusUpdatePayload {
            phase: self.config.phase,
            user_state: record.state.into(),
            deadline: record.deadline.as_deref().and_then(wire::parse_rfc3339),
            migration_scheduled_at: None,
            users_total: total,
            users_completed: completed,
            delay_decision: decision,
            message: None,
        })
    }

    fn backup_request(
        record: &UserUpdate,
        reason: BackupRequestReason,
        message: Option<String>,
    ) -> Option<ServiceMessage> {
        let backup_id = record.backup_id.as_deref()?.parse().ok()?;
        let deadline = wire::parse_rfc3339(record.deadline.as_deref()?)?;
        Some(ServiceMessage::BackupRequest(BackupRequestPayload {
            backup_id,
            deadline,
            reason,
            message,
            delays_remaining: record.delays_remaining,
            max_delay: record.max_delay_ms.map(Duration::from_millis),
        }))
    }

    /// A running backup that failed (BACKUP_COMPLETED without success) or was abandoned
    /// (no progress for `backup_progress_timeout`): retried before the deadline
    /// (`backupFailed`, a new BACKUP_REQUEST with a new backup id), IT's after it
    /// (`backupFailedAfterDeadline`), and back to NOT_STARTED when nobody requested it
    /// (`unrequestedBackupFailed`).
    fn failed_backup(
        &self,
        record: UserUpdate,
        error_message: Option<String>,
    ) -> Result<(UserUpdate, Vec<ServiceMessage>), Refusal> {
        let deadline = record.deadline.as_deref().and_then(wire::parse_rfc3339);
        let (trigger, retry) = match deadline {
            None => (UserMigrationTrigger::UnrequestedBackupFailed, false),
            Some(deadline) if deadline <= wire::now() => {
                (UserMigrationTrigger::BackupFailedAfterDeadline, false)
            }
            Some(_) => (UserMigrationTrigger::BackupFailed, true),
        };
        let state = transition(record.state, trigger)?;
        if retry {
            let retry = UserUpdate {
                state,
                backup_id: Some(uuid::Uuid::new_v4().to_string()),
                percent_complete: None,
                bytes_transferred: None,
                total_bytes: None,
                ..record
            };
            let request = Self::backup_request(
                &retry,
                BackupRequestReason::RetryAfterFailure,
                error_message,
            )
            .ok_or_else(|| internal("cannot build the retry request"))?;
            return Ok((retry, vec![request]));
        }
        let next = UserUpdate {
            state,
            escalated: record.escalated || state == UserMigration::Escalated,
            ..record
        };
        let status = self.status_update(&next, None);
        Ok((next, vec![status]))
    }

    fn user_or_new(&self, user_id: &str) -> Result<UserUpdate, Refusal> {
        Ok(self
            .store
            .user(user_id)
            .map_err(internal)?
            .map_or_else(|| UserUpdate::new(UserMigration::INITIAL), |r| r.record))
    }

    /// Commits `effect` for `origin`; a duplicate is DUPLICATE_MESSAGE.
    async fn commit(&self, origin: Origin, effect: Effect) -> Result<(), Refusal> {
        match self.store.commit(origin, effect).await {
            Ok(Committed::Applied) => Ok(()),
            Ok(Committed::Duplicate) => Err(refuse(
                ErrorCode::DuplicateMessage,
                "this message was already processed",
            )),
            Err(error) => Err(internal(error)),
        }
    }
}

/// The settings an agent gets before IT configured any.
trait DefaultSettings {
    fn default_settings() -> Self;
}

impl DefaultSettings for AgentSettings {
    fn default_settings() -> Self {
        AgentSettings {
            progress_report_interval: Some(Duration::from_secs(u64::from(
                ipcspec_generated::migration::PROGRESS_REPORT_INTERVAL_SECONDS,
            ))),
            reminder_interval: None,
            notifications_enabled: Some(true),
            log_level: None,
            backup_destination: None,
            exclude_patterns: None,
            max_backup_bytes: None,
            support_contact: None,
        }
    }
}
