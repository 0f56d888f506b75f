//! The Migration Service on the runtime's server: decoding, validation, uid binding,
//! exactly-once handling, the `UserMigration` state machine and delivery to agents.
//!
//! # One message
//!
//! [`MigrationService::handle`] decodes the envelope ([`wire::receive`]), hands the
//! payload to the generated `dispatch_to_service`, whose [`ServiceHandler`] here is a
//! per-message `Call`, and answers with an ACKNOWLEDGMENT (except for HEARTBEAT and
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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipcspec_generated::migration::{
    AcknowledgmentPayload, AgentSettings, AgentStartedPayload, BackupCompletedPayload,
    BackupProgressPayload, BackupRequestPayload, BackupRequestReason, BackupStartedPayload,
    ConfigurationUpdatePayload, DelayDecision, DelayRequestPayload, ErrorCode, ErrorReportPayload,
    ErrorSeverity, EscalationLevel, EscalationNoticePayload, EscalationReason, MESSAGES,
    MigrationPhase, ServiceHandler, ServiceMessage, ShutdownReason, ShutdownRequestPayload,
    StatusUpdatePayload, UserActionPayload, UserMigration, UserMigrationState, dispatch_to_service,
};
use ipcspec_runtime::dispatch::MessageId;
use ipcspec_runtime::server::{
    CloseReason, ConnectionHandle, ConnectionInfo, Direction, Outcome, ServerHandle, Service,
};
use ipcspec_runtime::transport::ConnectionId;
use ipcspec_runtime::validate::Validate;
use ipcspec_runtime::{DispatchError, HandlerError, MessageContext};
use tracing::Instrument;

use crate::commands::Command;
use crate::identity::Directory;
use crate::store::{
    Effect, Origin, OutboxMessage, Outcome as Committed, PendingCommand, Store, UserRecord,
    UserUpdate,
};
use crate::wire::{self, Received};

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
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            min_agent_version: None,
            phase: MigrationPhase::CollectingBackups,
            tick: Duration::from_millis(500),
            journal_retention: Duration::from_secs(30 * 24 * 3600),
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

/// A handler refusal with one of the catalogue's codes.
fn refuse(code: ErrorCode, message: impl Into<String>) -> HandlerError {
    code.error(message)
}

fn internal(error: impl std::fmt::Display) -> HandlerError {
    tracing::error!(%error, "cannot process a message");
    refuse(
        ErrorCode::InternalError,
        format!("the service failed: {error}"),
    )
}

/// The `UserMigrationState` a `UserMigration` state is reported as.
fn reported_state(state: UserMigration) -> UserMigrationState {
    match state {
        UserMigration::NotStarted => UserMigrationState::NotStarted,
        UserMigration::BackupRequested => UserMigrationState::BackupRequested,
        UserMigration::DelayRequested => UserMigrationState::DelayRequested,
        UserMigration::BackupInProgress => UserMigrationState::BackupInProgress,
        UserMigration::BackupCompleted => UserMigrationState::BackupCompleted,
        UserMigration::Escalated => UserMigrationState::Escalated,
    }
}

/// `MAJOR.MINOR.PATCH` of a catalogue `Version` (a pre-release sorts before its release,
/// which is all a minimum-version check needs).
fn version_key(version: &str) -> Option<(u64, u64, u64, bool)> {
    let (core, suffix) = match version.find(['-', '+']) {
        Some(at) => (&version[..at], Some(&version[at..])),
        None => (version, None),
    };
    let mut parts = core.split('.').map(str::parse::<u64>);
    let (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let release = !suffix.is_some_and(|s| s.starts_with('-'));
    Some((major, minor, patch, release))
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
            user_state: reported_state(record.state),
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
            max_delay: None,
        }))
    }

    fn user_or_new(&self, user_id: &str) -> Result<UserUpdate, HandlerError> {
        Ok(self
            .store
            .user(user_id)
            .map_err(internal)?
            .map_or_else(|| UserUpdate::new(UserMigration::INITIAL), |r| r.record))
    }

    /// Commits `effect` for `origin`; a duplicate is DUPLICATE_MESSAGE.
    async fn commit(&self, origin: Origin, effect: Effect) -> Result<(), HandlerError> {
        match self.store.commit(origin, effect).await {
            Ok(Committed::Applied) => Ok(()),
            Ok(Committed::Duplicate) => Err(refuse(
                ErrorCode::DuplicateMessage,
                "this message was already processed",
            )),
            Err(error) => Err(internal(error)),
        }
    }

    /// Applies pending operator commands, escalates users whose deadline passed, and
    /// prunes the journal once a day, until the server shuts down.
    pub async fn run_background(self: Arc<Self>, server: ServerHandle) {
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune: Option<Instant> = None;
        while !server.is_shutting_down() {
            tick.tick().await;
            if last_prune.is_none_or(|at| at.elapsed() > Duration::from_secs(24 * 3600)) {
                match self.store.prune_handled(self.config.journal_retention) {
                    Ok(removed) => tracing::debug!(removed, "journal pruned"),
                    Err(error) => tracing::warn!(%error, "cannot prune the journal"),
                }
                last_prune = Some(Instant::now());
            }
            match self.store.pending_commands() {
                Ok(commands) => {
                    for command in commands {
                        self.apply_command(command).await;
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read operator commands"),
            }
            self.escalate_passed_deadlines().await;
        }
    }

    async fn escalate_passed_deadlines(&self) {
        let users = match self.store.users() {
            Ok(users) => users,
            Err(error) => {
                tracing::warn!(%error, "cannot read users to check deadlines");
                return;
            }
        };
        let now = wire::now();
        for UserRecord {
            user_id, record, ..
        } in users
        {
            if !matches!(
                record.state,
                UserMigration::BackupRequested | UserMigration::DelayRequested
            ) {
                continue;
            }
            let Some(deadline) = record.deadline.as_deref().and_then(wire::parse_rfc3339) else {
                continue;
            };
            if deadline > now {
                continue;
            }
            let _user = self.lock_user(&user_id).await;
            // Re-read under the lock: an agent may have started the backup meanwhile.
            let Ok(Some(current)) = self.store.user(&user_id) else {
                continue;
            };
            if current.record != record {
                continue;
            }
            let escalated = UserUpdate {
                state: UserMigration::Escalated,
                escalated: true,
                delay_request_id: None,
                delay_requested_until: None,
                ..record.clone()
            };
            let notice = ServiceMessage::EscalationNotice(EscalationNoticePayload {
                level: EscalationLevel::ItEscalated,
                reason: EscalationReason::DeadlinePassed,
                deadline,
                backup_id: record.backup_id.as_deref().and_then(|b| b.parse().ok()),
                message: Some("The backup deadline passed; IT has been notified.".into()),
                ticket_id: None,
                contact: None,
            });
            let Some((queued, frame)) = self.outbox(&user_id, &notice) else {
                continue;
            };
            let origin = Origin::agent(
                &user_id,
                "service",
                format!("deadline-{}", wire::rfc3339(deadline)),
                "DEADLINE_PASSED",
            );
            let effect = Effect::All(vec![
                Effect::SetState {
                    user_id: user_id.clone(),
                    record: escalated,
                },
                Effect::OutboxPush(queued.clone()),
            ]);
            if self.commit(origin, effect).await.is_ok() {
                tracing::warn!(user_id, deadline = %wire::rfc3339(deadline), "deadline passed: escalated to IT");
                self.deliver(&user_id, &[(queued.message_type, frame)], None);
            }
        }
    }

    /// Applies one operator command: each user's part exactly once, then marks it done.
    async fn apply_command(&self, pending: PendingCommand) {
        let seq = pending.seq;
        let command = match serde_json::from_str::<Command>(&pending.command_json) {
            Ok(command) => command,
            Err(error) => {
                tracing::error!(seq, %error, "skipping an unreadable operator command");
                let _ = self
                    .commit(Origin::command(seq), Effect::CommandApplied { seq })
                    .await;
                return;
            }
        };
        let users: Vec<String> = match &pending.target {
            Some(user) => vec![user.clone()],
            None => match &command {
                // Configuration and shutdown concern connected agents only.
                Command::Configure { .. } | Command::Shutdown { .. } => {
                    let mut users: Vec<_> =
                        self.agents().values().map(|a| a.user_id.clone()).collect();
                    users.sort();
                    users.dedup();
                    users
                }
                _ => match self.store.users() {
                    Ok(users) => users.into_iter().map(|u| u.user_id).collect(),
                    Err(error) => {
                        tracing::warn!(seq, %error, "cannot list users; will retry the command");
                        return;
                    }
                },
            },
        };
        for user_id in &users {
            self.apply_command_to(seq, &command, user_id).await;
        }
        match self
            .commit(Origin::command(seq), Effect::CommandApplied { seq })
            .await
        {
            Ok(()) => tracing::info!(
                seq,
                kind = command.kind(),
                users = users.len(),
                "operator command applied"
            ),
            Err(error) => tracing::warn!(seq, %error, "operator command not marked applied"),
        }
    }

    async fn apply_command_to(&self, seq: i64, command: &Command, user_id: &str) {
        let _user = self.lock_user(user_id).await;
        let origin = Origin::agent(
            user_id,
            crate::store::OPERATOR_SESSION,
            format!("command-{seq}"),
            command.kind(),
        );
        let record = match self.user_or_new(user_id) {
            Ok(record) => record,
            Err(_) => return,
        };
        let mut effects = Vec::new();
        let mut durable = Vec::new();
        let mut immediate = Vec::new();
        match command {
            Command::RequestBackup {
                deadline,
                delays_allowed,
                max_delay_ms,
                message,
            } => {
                if record.state != UserMigration::NotStarted {
                    tracing::info!(
                        user_id,
                        state = record.state.as_str(),
                        "backup not requested: the user is past NOT_STARTED"
                    );
                    return;
                }
                let requested = UserUpdate {
                    state: UserMigration::BackupRequested,
                    backup_id: Some(uuid::Uuid::new_v4().to_string()),
                    deadline: Some(wire::rfc3339(*deadline)),
                    delays_remaining: *delays_allowed,
                    ..record
                };
                let Some(ServiceMessage::BackupRequest(mut payload)) = Self::backup_request(
                    &requested,
                    BackupRequestReason::MigrationScheduled,
                    message.clone(),
                ) else {
                    return;
                };
                payload.max_delay = max_delay_ms.map(Duration::from_millis);
                durable.push(ServiceMessage::BackupRequest(payload));
                effects.push(Effect::SetState {
                    user_id: user_id.to_owned(),
                    record: requested,
                });
            }
            Command::Notify {
                level,
                reason,
                message,
            } => {
                let Some(deadline) = record.deadline.as_deref().and_then(wire::parse_rfc3339)
                else {
                    tracing::info!(user_id, "no notice: the user has no deadline");
                    return;
                };
                durable.push(ServiceMessage::EscalationNotice(EscalationNoticePayload {
                    level: *level,
                    reason: *reason,
                    deadline,
                    backup_id: record.backup_id.as_deref().and_then(|b| b.parse().ok()),
                    message: message.clone(),
                    ticket_id: None,
                    contact: None,
                }));
            }
            Command::DecideDelay { granted, reason } => {
                let (Some(request_id), UserMigration::DelayRequested) =
                    (record.delay_request_id.clone(), record.state)
                else {
                    tracing::info!(
                        user_id,
                        state = record.state.as_str(),
                        "no delay decision: no delay request is pending"
                    );
                    return;
                };
                let new_deadline = if *granted {
                    record.delay_requested_until.clone()
                } else {
                    None
                };
                let decided = UserUpdate {
                    state: UserMigration::BackupRequested,
                    deadline: new_deadline.clone().or(record.deadline.clone()),
                    delays_remaining: if *granted {
                        record.delays_remaining.saturating_sub(1)
                    } else {
                        record.delays_remaining
                    },
                    delay_request_id: None,
                    delay_requested_until: None,
                    ..record
                };
                let decision = DelayDecision {
                    request_id,
                    granted: *granted,
                    new_deadline: new_deadline.as_deref().and_then(wire::parse_rfc3339),
                    reason: reason.clone(),
                };
                durable.push(self.status_update(&decided, Some(decision)));
                if *granted
                    && let Some(request) =
                        Self::backup_request(&decided, BackupRequestReason::DeadlineExtended, None)
                {
                    durable.push(request);
                }
                effects.push(Effect::SetState {
                    user_id: user_id.to_owned(),
                    record: decided,
                });
            }
            Command::Configure { settings } => {
                immediate.push(ServiceMessage::ConfigurationUpdate(
                    ConfigurationUpdatePayload {
                        config_version: u64::try_from(seq).unwrap_or(0),
                        settings: settings.clone(),
                    },
                ));
            }
            Command::Shutdown {
                reason,
                grace_period_ms,
                message,
            } => {
                immediate.push(ServiceMessage::ShutdownRequest(ShutdownRequestPayload {
                    reason: *reason,
                    grace_period: Duration::from_millis(*grace_period_ms),
                    message: message.clone(),
                }));
            }
        }
        let mut frames = Vec::new();
        for message in &durable {
            let Some((queued, frame)) = self.outbox(user_id, message) else {
                return;
            };
            frames.push((queued.message_type.clone(), frame));
            effects.push(Effect::OutboxPush(queued));
        }
        for message in &immediate {
            let Some((_, frame)) = self.compose(message) else {
                return;
            };
            frames.push((message.message_type().to_owned(), frame));
        }
        match self.commit(origin, Effect::All(effects)).await {
            Ok(()) => {}
            Err(error) if error.code == ErrorCode::DuplicateMessage.as_str() => return,
            Err(error) => {
                tracing::warn!(user_id, seq, %error, "operator command not applied to the user");
                return;
            }
        }
        self.deliver(user_id, &frames, None);
        if let Some(grace) = command.grace_period() {
            let handles: Vec<_> = self
                .agents()
                .values()
                .filter(|a| a.user_id == user_id)
                .map(|a| a.handle.clone())
                .collect();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                for handle in handles {
                    handle.close();
                }
            });
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

impl<D: Directory> Service for MigrationService<D> {
    async fn handle(&self, conn: &ConnectionInfo, frame: Bytes) -> Outcome {
        let started = Instant::now();
        let outcome = self.receive(conn, &frame).await;
        conn.metrics().record_latency(started.elapsed());
        outcome
    }

    async fn on_close(&self, conn: &ConnectionInfo, reason: CloseReason) {
        if let Some(agent) = self.agents().remove(&conn.id()) {
            tracing::info!(
                user_id = agent.user_id,
                session_id = agent.session_id,
                reason = reason.as_str(),
                "agent disconnected"
            );
        }
    }
}

impl<D: Directory> MigrationService<D> {
    async fn receive(&self, conn: &ConnectionInfo, frame: &[u8]) -> Outcome {
        if frame.is_empty() {
            // The catalogue treats a zero length prefix like an oversized one (see
            // MAX_MESSAGE_SIZE): the peer is broken, close.
            tracing::warn!("zero-length frame; closing the connection");
            return Outcome::none().and_close().error("empty_frame");
        }
        let envelope = match wire::receive(frame) {
            Received::Envelope(envelope) => envelope,
            Received::Invalid { id, error } => {
                tracing::warn!(id, %error, "refusing an invalid message");
                conn.metrics().record_message(Direction::In, "invalid");
                return Outcome::reply(wire::ack(&id, Err((ErrorCode::InvalidMessage, error))))
                    .error("invalid_message");
            }
            Received::Unreadable { error } => {
                tracing::warn!(%error, "dropping a frame whose id cannot be read");
                conn.metrics().record_message(Direction::In, "invalid");
                return Outcome::none().error("invalid_message");
            }
        };
        let message_type = envelope.message_type.clone();
        let known = ipcspec_runtime::dispatch::find(MESSAGES, &message_type).map(|m| m.name);
        conn.metrics()
            .record_message(Direction::In, known.unwrap_or("unknown"));
        let span =
            tracing::debug_span!("ipcspec.message", id = %envelope.id, r#type = %message_type);
        async {
            let call = Call {
                service: self,
                conn,
                message_id: &envelope.id,
                follow_ups: Mutex::new(Vec::new()),
                close: AtomicBool::new(false),
            };
            let ctx = MessageContext {
                message_id: Some(MessageId::Text(envelope.id.clone())),
                correlation_id: envelope.correlation_id.clone().map(MessageId::Text),
                timestamp: Some(envelope.timestamp),
                peer: conn.peer().unwrap_or_default(),
            };
            let result = dispatch_to_service(&call, &ctx, &message_type, envelope.payload).await;
            // HEARTBEAT and ACKNOWLEDGMENT are never acknowledged.
            let acknowledged = !matches!(known, Some("HEARTBEAT" | "ACKNOWLEDGMENT"));
            let mut outcome = Outcome::none();
            match result {
                Ok(_) => {
                    if acknowledged {
                        outcome.frames.push(wire::ack(&envelope.id, Ok(())));
                        conn.metrics()
                            .record_message(Direction::Out, "ACKNOWLEDGMENT");
                    }
                }
                Err(error) => {
                    let (code, detail, kind) = classify(&error);
                    if code == ErrorCode::DuplicateMessage {
                        tracing::debug!(%detail, "duplicate message");
                    } else {
                        tracing::warn!(code = code.as_str(), %detail, "message refused");
                    }
                    if acknowledged {
                        outcome
                            .frames
                            .push(wire::ack(&envelope.id, Err((code, detail))));
                        conn.metrics()
                            .record_message(Direction::Out, "ACKNOWLEDGMENT");
                    }
                    outcome.error = Some(kind);
                }
            }
            let follow_ups = call
                .follow_ups
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner);
            for (message_type, frame) in follow_ups {
                conn.metrics().record_message(Direction::Out, &message_type);
                outcome.frames.push(frame);
            }
            outcome.close = call.close.load(Ordering::Relaxed);
            outcome
        }
        .instrument(span)
        .await
    }
}

/// The catalogue error, its detail and the metrics kind of a dispatch failure.
fn classify(error: &DispatchError) -> (ErrorCode, String, &'static str) {
    match error {
        DispatchError::Handler { error, .. } => {
            let code = ErrorCode::from_name(&error.code).unwrap_or(ErrorCode::InternalError);
            let kind = match code {
                ErrorCode::DuplicateMessage => "duplicate",
                ErrorCode::UserMismatch => "user_mismatch",
                ErrorCode::InvalidMessage => "invalid_message",
                ErrorCode::InternalError => "internal",
                _ => "refused",
            };
            (code, error.message.clone(), kind)
        }
        DispatchError::MalformedJson { .. } | DispatchError::MalformedBinary { .. } => (
            ErrorCode::InvalidMessage,
            error.to_string(),
            "invalid_message",
        ),
        DispatchError::UnknownType { .. }
        | DispatchError::UnknownCode { .. }
        | DispatchError::NotReceived { .. } => (
            ErrorCode::UnknownMessageType,
            error.to_string(),
            "unknown_type",
        ),
        _ => (ErrorCode::InternalError, error.to_string(), "internal"),
    }
}

/// One received message being handled: the generated dispatcher calls its
/// [`ServiceHandler`] methods.
struct Call<'a, D> {
    service: &'a MigrationService<D>,
    conn: &'a ConnectionInfo,
    message_id: &'a str,
    /// Messages to send on this connection after the acknowledgment.
    follow_ups: Mutex<Vec<(String, Bytes)>>,
    /// Close the connection after sending.
    close: AtomicBool,
}

impl<D: Directory> Call<'_, D> {
    fn follow_up(&self, frames: impl IntoIterator<Item = (String, Bytes)>) {
        self.follow_ups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(frames);
    }

    /// The accepted agent on this connection, or AGENT_NOT_STARTED.
    fn agent(&self) -> Result<Agent, HandlerError> {
        self.service
            .agents()
            .get(&self.conn.id())
            .cloned()
            .ok_or_else(|| {
                refuse(
                    ErrorCode::AgentNotStarted,
                    "send AGENT_STARTED first on this connection",
                )
            })
    }

    /// Refuses impersonation: logs a security event and closes the connection.
    fn mismatch(&self, claimed: &str, actual: &str) -> HandlerError {
        let peer = self.conn.peer().unwrap_or_default();
        tracing::warn!(
            target: "security",
            claimed_user = claimed,
            peer_user = actual,
            peer_uid = ?peer.uid,
            peer_pid = ?peer.pid,
            "impersonation refused: the message's userId is not the peer's login name"
        );
        self.close.store(true, Ordering::Relaxed);
        refuse(
            ErrorCode::UserMismatch,
            format!("userId {claimed:?} is not the login name of the connection's peer ({actual})"),
        )
    }

    /// The sending agent, once its payload's `userId` was checked against the
    /// connection, the payload against the catalogue, and the journal for a duplicate.
    fn sender<P: Validate>(&self, payload: &P, user_id: &str) -> Result<Agent, HandlerError> {
        let agent = self.agent()?;
        wire::check(payload)?;
        if user_id != agent.user_id {
            return Err(self.mismatch(user_id, &agent.user_id));
        }
        Ok(agent)
    }

    /// What every state-changing handler starts with: the checked sender, the user's
    /// lock (held until the commit), the journal check and the user's record.
    async fn begin<P: Validate>(
        &self,
        payload: &P,
        user_id: &str,
    ) -> Result<(Agent, tokio::sync::OwnedMutexGuard<()>, UserUpdate), HandlerError> {
        let agent = self.sender(payload, user_id)?;
        let lock = self.service.lock_user(&agent.user_id).await;
        self.not_yet_handled(&agent)?;
        let record = self.service.user_or_new(&agent.user_id)?;
        Ok((agent, lock, record))
    }

    fn origin(&self, agent: &Agent) -> Origin {
        Origin::agent(&agent.user_id, &agent.session_id, self.message_id, "")
    }

    fn not_yet_handled(&self, agent: &Agent) -> Result<(), HandlerError> {
        let handled = self
            .service
            .store
            .was_handled(&agent.user_id, &agent.session_id, self.message_id)
            .map_err(internal)?;
        if handled {
            return Err(refuse(
                ErrorCode::DuplicateMessage,
                "this message was already processed",
            ));
        }
        Ok(())
    }

    /// Commits the message's effect and the outbox messages, then sends those to the
    /// user's agents (this one after the acknowledgment).
    async fn commit(
        &self,
        agent: &Agent,
        message_type: &str,
        mut effects: Vec<Effect>,
        outbox: &[ServiceMessage],
    ) -> Result<(), HandlerError> {
        let mut frames = Vec::new();
        for message in outbox {
            let (queued, frame) = self
                .service
                .outbox(&agent.user_id, message)
                .ok_or_else(|| internal("a reply breaks the catalogue's constraints"))?;
            frames.push((queued.message_type.clone(), frame));
            effects.push(Effect::OutboxPush(queued));
        }
        let origin = Origin {
            message_type: message_type.to_owned(),
            ..self.origin(agent)
        };
        self.service.commit(origin, Effect::All(effects)).await?;
        self.service
            .deliver(&agent.user_id, &frames, Some(self.conn.id()));
        self.follow_up(frames);
        Ok(())
    }

    fn set(agent: &Agent, record: UserUpdate) -> Effect {
        Effect::SetState {
            user_id: agent.user_id.clone(),
            record,
        }
    }
}

fn invalid_state(state: UserMigration, what: &str) -> HandlerError {
    refuse(
        ErrorCode::InvalidState,
        format!("{what} is not allowed in state {}", state.as_str()),
    )
}

/// UNKNOWN_BACKUP unless `given` is the user's running backup.
fn running_backup(record: &UserUpdate, given: &uuid::Uuid) -> Result<(), HandlerError> {
    if record.state == UserMigration::BackupInProgress
        && record.backup_id.as_deref() == Some(given.to_string().as_str())
    {
        Ok(())
    } else {
        Err(unknown_backup(given, record))
    }
}

fn unknown_backup(given: &uuid::Uuid, record: &UserUpdate) -> HandlerError {
    refuse(
        ErrorCode::UnknownBackup,
        format!(
            "backup {given} is not this user's {} backup ({})",
            if record.state == UserMigration::BackupInProgress {
                "running"
            } else {
                "requested"
            },
            record.backup_id.as_deref().unwrap_or("none")
        ),
    )
}

impl<D: Directory> ServiceHandler for Call<'_, D> {
    async fn agent_started(
        &self,
        ctx: &MessageContext,
        payload: AgentStartedPayload,
    ) -> Result<(), HandlerError> {
        wire::check(&payload)?;
        let Some(uid) = ctx.peer.uid else {
            return Err(refuse(
                ErrorCode::UserMismatch,
                "the transport reports no peer credentials",
            ));
        };
        let login = self.service.directory.login_name(uid);
        if login.as_deref() != Some(payload.user_id.as_str()) {
            let actual = login.unwrap_or_else(|| format!("uid {uid} has no login name"));
            return Err(self.mismatch(&payload.user_id, &actual));
        }
        if let Ok(existing) = self.agent() {
            if existing.user_id == payload.user_id && existing.session_id == payload.session_id {
                return Ok(());
            }
            return Err(refuse(
                ErrorCode::InvalidState,
                format!(
                    "this connection already started as session {} of {}",
                    existing.session_id, existing.user_id
                ),
            ));
        }
        if let Some(minimum) = &self.service.config.min_agent_version
            && version_key(&payload.version) < version_key(minimum)
        {
            self.close.store(true, Ordering::Relaxed);
            return Err(refuse(
                ErrorCode::UnsupportedAgentVersion,
                format!(
                    "agent version {} is older than the minimum {minimum}; update the agent",
                    payload.version
                ),
            ));
        }
        let agent = Agent {
            user_id: payload.user_id.clone(),
            session_id: payload.session_id.clone(),
            handle: self.conn.handle().clone(),
        };
        let _user = self.service.lock_user(&agent.user_id).await;
        let existing = self.service.store.user(&agent.user_id).map_err(internal)?;
        let record = existing.as_ref().map_or_else(
            || UserUpdate::new(UserMigration::INITIAL),
            |r| r.record.clone(),
        );
        let effect = if existing.is_none() {
            Call::<D>::set(&agent, record.clone())
        } else {
            Effect::Nothing
        };
        let origin = Origin {
            message_type: "AGENT_STARTED".into(),
            ..self.origin(&agent)
        };
        match self.service.commit(origin, effect).await {
            Ok(()) => {}
            // A resent AGENT_STARTED changes nothing; the connection is still accepted.
            Err(error) if error.code == ErrorCode::DuplicateMessage.as_str() => {}
            Err(error) => return Err(error),
        }
        let superseded: Vec<ConnectionHandle> = {
            let mut agents = self.service.agents();
            let old: Vec<ConnectionId> = agents
                .iter()
                .filter(|(_, a)| a.user_id == agent.user_id && a.session_id == agent.session_id)
                .map(|(id, _)| *id)
                .collect();
            let handles = old
                .iter()
                .filter_map(|id| agents.remove(id))
                .map(|a| a.handle)
                .collect();
            agents.insert(self.conn.id(), agent.clone());
            handles
        };
        for handle in superseded {
            tracing::info!(user_id = agent.user_id, session_id = agent.session_id, old = %handle.id(), "a newer connection supersedes this session's connection");
            let shutdown = ServiceMessage::ShutdownRequest(ShutdownRequestPayload {
                reason: ShutdownReason::Superseded,
                grace_period: Duration::ZERO,
                message: Some("A newer connection of this session replaced this one.".into()),
            });
            if let Some((_, frame)) = self.service.compose(&shutdown) {
                let _ = handle.send(frame);
            }
            handle.close();
        }
        tracing::info!(
            user_id = agent.user_id,
            session_id = agent.session_id,
            version = payload.version,
            "agent started"
        );

        // After the acknowledgment: settings, status, an outstanding request, the outbox.
        let (config_version, settings) = self.service.current_settings();
        let mut messages = vec![
            ServiceMessage::ConfigurationUpdate(ConfigurationUpdatePayload {
                config_version,
                settings,
            }),
            self.service.status_update(&record, None),
        ];
        let pending = self
            .service
            .store
            .pending_outbox(&agent.user_id)
            .map_err(internal)?;
        let request_pending = pending.iter().any(|e| e.message_type == "BACKUP_REQUEST");
        if record.state == UserMigration::BackupRequested
            && !request_pending
            && let Some(request) = MigrationService::<D>::backup_request(
                &record,
                BackupRequestReason::ResentAfterReconnect,
                None,
            )
        {
            messages.push(request);
        }
        let mut frames: Vec<(String, Bytes)> = messages
            .iter()
            .filter_map(|m| {
                self.service
                    .compose(m)
                    .map(|(_, frame)| (m.message_type().to_owned(), frame))
            })
            .collect();
        frames.extend(
            pending
                .into_iter()
                .map(|e| (e.message_type, Bytes::from(e.message_json))),
        );
        self.follow_up(frames);
        Ok(())
    }

    async fn backup_started(
        &self,
        _ctx: &MessageContext,
        payload: BackupStartedPayload,
    ) -> Result<(), HandlerError> {
        let (agent, _user, record) = self.begin(&payload, &payload.user_id).await?;
        match record.state {
            UserMigration::NotStarted | UserMigration::Escalated => {}
            UserMigration::BackupRequested | UserMigration::DelayRequested => {
                if record.backup_id.as_deref() != Some(payload.backup_id.to_string().as_str()) {
                    return Err(unknown_backup(&payload.backup_id, &record));
                }
            }
            state => return Err(invalid_state(state, "BACKUP_STARTED")),
        }
        let running = UserUpdate {
            state: UserMigration::BackupInProgress,
            backup_id: Some(payload.backup_id.to_string()),
            delay_request_id: None,
            delay_requested_until: None,
            percent_complete: Some(0.0),
            bytes_transferred: Some(0),
            total_bytes: payload.estimated_total_bytes,
            ..record
        };
        let effects = vec![Call::<D>::set(&agent, running)];
        self.commit(&agent, "BACKUP_STARTED", effects, &[]).await
    }

    async fn backup_progress(
        &self,
        _ctx: &MessageContext,
        payload: BackupProgressPayload,
    ) -> Result<(), HandlerError> {
        let (agent, _user, record) = self.begin(&payload, &payload.user_id).await?;
        running_backup(&record, &payload.backup_id)?;
        let progressed = UserUpdate {
            percent_complete: Some(payload.percent_complete),
            bytes_transferred: Some(payload.bytes_transferred),
            total_bytes: Some(payload.total_bytes),
            ..record
        };
        let effects = vec![Call::<D>::set(&agent, progressed)];
        self.commit(&agent, "BACKUP_PROGRESS", effects, &[]).await
    }

    async fn backup_completed(
        &self,
        _ctx: &MessageContext,
        payload: BackupCompletedPayload,
    ) -> Result<(), HandlerError> {
        let (agent, _user, record) = self.begin(&payload, &payload.user_id).await?;
        running_backup(&record, &payload.backup_id)?;
        let deadline_passed = record
            .deadline
            .as_deref()
            .and_then(wire::parse_rfc3339)
            .is_some_and(|d| d <= wire::now());
        let (next, messages) = if payload.success {
            let done = UserUpdate {
                state: UserMigration::BackupCompleted,
                bytes_transferred: Some(payload.bytes_transferred),
                percent_complete: Some(100.0),
                ..record
            };
            let status = self.service.status_update(&done, None);
            (done, vec![status])
        } else if deadline_passed || record.deadline.is_none() {
            // No deadline to retry before: IT takes over (or, unrequested, nothing).
            let state = if record.deadline.is_some() {
                UserMigration::Escalated
            } else {
                UserMigration::NotStarted
            };
            let next = UserUpdate {
                state,
                escalated: record.escalated || state == UserMigration::Escalated,
                ..record
            };
            let status = self.service.status_update(&next, None);
            (next, vec![status])
        } else {
            let retry = UserUpdate {
                state: UserMigration::BackupRequested,
                backup_id: Some(uuid::Uuid::new_v4().to_string()),
                percent_complete: None,
                bytes_transferred: None,
                total_bytes: None,
                ..record
            };
            let request = MigrationService::<D>::backup_request(
                &retry,
                BackupRequestReason::RetryAfterFailure,
                payload.error_message.clone(),
            )
            .ok_or_else(|| internal("cannot build the retry request"))?;
            (retry, vec![request])
        };
        tracing::info!(
            user_id = agent.user_id,
            success = payload.success,
            state = next.state.as_str(),
            "backup completed"
        );
        let effects = vec![Call::<D>::set(&agent, next)];
        self.commit(&agent, "BACKUP_COMPLETED", effects, &messages)
            .await
    }

    async fn delay_request(
        &self,
        _ctx: &MessageContext,
        payload: DelayRequestPayload,
    ) -> Result<(), HandlerError> {
        let (agent, _user, record) = self.begin(&payload, &payload.user_id).await?;
        if record.state != UserMigration::BackupRequested {
            return Err(invalid_state(record.state, "DELAY_REQUEST"));
        }
        if record.backup_id.as_deref() != Some(payload.backup_id.to_string().as_str()) {
            return Err(unknown_backup(&payload.backup_id, &record));
        }
        if record.delays_remaining == 0 {
            return Err(refuse(ErrorCode::DelayNotAllowed, "no delays remain"));
        }
        let deadline = record.deadline.as_deref().and_then(wire::parse_rfc3339);
        if deadline.is_some_and(|d| payload.requested_deadline <= d) {
            return Err(refuse(
                ErrorCode::DelayNotAllowed,
                "requestedDeadline is not after the current deadline",
            ));
        }
        let requested = UserUpdate {
            state: UserMigration::DelayRequested,
            delay_request_id: Some(self.message_id.to_owned()),
            delay_requested_until: Some(wire::rfc3339(payload.requested_deadline)),
            ..record
        };
        tracing::info!(user_id = agent.user_id, until = %wire::rfc3339(payload.requested_deadline), reason = payload.reason.as_str(), "delay requested");
        let effects = vec![Call::<D>::set(&agent, requested)];
        self.commit(&agent, "DELAY_REQUEST", effects, &[]).await
    }

    async fn user_action(
        &self,
        _ctx: &MessageContext,
        payload: UserActionPayload,
    ) -> Result<(), HandlerError> {
        let agent = self.sender(&payload, &payload.user_id)?;
        let _user = self.service.lock_user(&agent.user_id).await;
        self.not_yet_handled(&agent)?;
        tracing::info!(
            user_id = agent.user_id,
            action = payload.action.as_str(),
            "user action"
        );
        self.commit(&agent, "USER_ACTION", vec![Effect::Nothing], &[])
            .await
    }

    async fn error_report(
        &self,
        _ctx: &MessageContext,
        payload: ErrorReportPayload,
    ) -> Result<(), HandlerError> {
        let agent = self.sender(&payload, &payload.user_id)?;
        let _user = self.service.lock_user(&agent.user_id).await;
        self.not_yet_handled(&agent)?;
        let code = payload.error_code.as_str();
        match payload.severity {
            ErrorSeverity::Critical => {
                tracing::error!(target: "it_alert", user_id = agent.user_id, session_id = agent.session_id, code, message = payload.message, "critical agent error");
            }
            ErrorSeverity::Error => {
                tracing::error!(
                    user_id = agent.user_id,
                    code,
                    message = payload.message,
                    "agent error"
                );
            }
            ErrorSeverity::Warning => {
                tracing::warn!(
                    user_id = agent.user_id,
                    code,
                    message = payload.message,
                    "agent warning"
                );
            }
        }
        self.commit(&agent, "ERROR_REPORT", vec![Effect::Nothing], &[])
            .await
    }

    async fn heartbeat(&self, _ctx: &MessageContext) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn acknowledgment(
        &self,
        ctx: &MessageContext,
        payload: AcknowledgmentPayload,
    ) -> Result<(), HandlerError> {
        let agent = self.agent()?;
        wire::check(&payload)?;
        let Some(MessageId::Text(acknowledged)) = &ctx.correlation_id else {
            return Err(refuse(
                ErrorCode::InvalidMessage,
                "an ACKNOWLEDGMENT needs a correlationId",
            ));
        };
        if !payload.success {
            tracing::warn!(user_id = agent.user_id, message_id = acknowledged, code = ?payload.error_code, detail = ?payload.error_message, "the agent refused a message");
        }
        // An acknowledged outbox message is delivered (a refusal too: resending the same
        // message would be refused again).
        let queued = self
            .service
            .store
            .pending_outbox(&agent.user_id)
            .map_err(internal)?
            .into_iter()
            .any(|e| &e.message_id == acknowledged);
        if queued {
            let origin = Origin {
                message_type: "ACKNOWLEDGMENT".into(),
                ..self.origin(&agent)
            };
            let effect = Effect::OutboxDelivered {
                user_id: agent.user_id.clone(),
                message_id: acknowledged.clone(),
            };
            match self.service.commit(origin, effect).await {
                Ok(()) => {}
                Err(error) if error.code == ErrorCode::DuplicateMessage.as_str() => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::version_key;

    #[test]
    fn versions_compare_by_number_and_prerelease_sorts_first() {
        assert!(version_key("1.10.0") > version_key("1.9.9"));
        assert!(version_key("2.0.0-rc.1") < version_key("2.0.0"));
        assert!(version_key("2.0.0+build.5") == version_key("2.0.0"));
        assert_eq!(version_key("1.2"), None);
    }
}
