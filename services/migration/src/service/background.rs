//! Operator commands and passed deadlines: what the service does without being asked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ipcspec_generated::migration::{
    BackupRequestReason, ConfigurationUpdatePayload, DelayDecision, ErrorCode, EscalationLevel,
    EscalationNoticePayload, EscalationReason, ServiceMessage, ShutdownRequestPayload,
    UserMigrationTrigger,
};
use ipcspec_runtime::server::ServerHandle;

use super::{MigrationService, transition};
use crate::commands::Command;
use crate::identity::Directory;
use crate::store::{Effect, Origin, PendingCommand, UserRecord, UserUpdate};
use crate::wire;

impl<D: Directory> MigrationService<D> {
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
            self.abandon_silent_backups().await;
        }
    }

    /// Handles every running backup without BACKUP_PROGRESS or BACKUP_COMPLETED for
    /// `backup_progress_timeout` as failed ([`MigrationService::failed_backup`]). The time
    /// counts from the user's record's last change, which in BACKUP_IN_PROGRESS is
    /// BACKUP_STARTED or the last BACKUP_PROGRESS (and so also covers an agent that
    /// disconnected), and survives a restart of the service.
    async fn abandon_silent_backups(&self) {
        let users = match self.store.users() {
            Ok(users) => users,
            Err(error) => {
                tracing::warn!(%error, "cannot read users to check running backups");
                return;
            }
        };
        let timeout_ms =
            i64::try_from(self.config.backup_progress_timeout.as_millis()).unwrap_or(i64::MAX);
        for user in users {
            // The states a backup can fail in: the machine's, not a list here.
            let running = user
                .record
                .state
                .accepts()
                .contains(&UserMigrationTrigger::BackupFailed);
            if !running || crate::store::now_ms().saturating_sub(user.updated_at_ms) < timeout_ms {
                continue;
            }
            let _lock = self.lock_user(&user.user_id).await;
            // Re-read under the lock: progress may have arrived meanwhile.
            let Ok(Some(current)) = self.store.user(&user.user_id) else {
                continue;
            };
            if current != user {
                continue;
            }
            let backup_id = user.record.backup_id.clone().unwrap_or_default();
            let (next, messages) = match self.failed_backup(
                user.record,
                Some("no progress arrived in time: the backup was abandoned".into()),
            ) {
                Ok(failed) => failed,
                Err(error) => {
                    tracing::error!(user_id = user.user_id, %error, "cannot abandon a backup");
                    continue;
                }
            };
            let mut effects = vec![Effect::SetState {
                user_id: user.user_id.clone(),
                record: next.clone(),
            }];
            let mut frames = Vec::new();
            for message in &messages {
                let Some((queued, frame)) = self.outbox(&user.user_id, message) else {
                    continue;
                };
                frames.push((queued.message_type.clone(), frame));
                effects.push(Effect::OutboxPush(queued));
            }
            let origin = Origin::agent(
                &user.user_id,
                "service",
                format!("abandoned-{backup_id}"),
                "BACKUP_ABANDONED",
            );
            if self.commit(origin, Effect::All(effects)).await.is_ok() {
                tracing::warn!(
                    user_id = user.user_id,
                    backup_id,
                    state = next.state.as_str(),
                    "no progress from the running backup: abandoned"
                );
                self.deliver(&user.user_id, &frames, None);
            }
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
            // The states a deadline can pass in: the machine's, not a list here.
            if !record
                .state
                .accepts()
                .contains(&UserMigrationTrigger::DeadlinePassed)
            {
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
            let Ok(state) = transition(record.state, UserMigrationTrigger::DeadlinePassed) else {
                continue;
            };
            let escalated = UserUpdate {
                state,
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

    /// Applies one operator command: each user's part exactly once, then marks it done,
    /// but only when every part is settled. A part that failed (the store refused its
    /// commit, say) leaves the command pending: the next tick retries it, and the parts
    /// already applied are recognised in the journal and not applied again.
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
        let mut failed = Vec::new();
        for user_id in &users {
            if self.apply_command_to(seq, &command, user_id).await == Part::Failed {
                failed.push(user_id.as_str());
            }
        }
        if !failed.is_empty() {
            tracing::warn!(
                seq,
                kind = command.kind(),
                ?failed,
                "operator command not marked applied: it failed for some users and will be retried"
            );
            return;
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

    /// Applies `command` to `user_id`, once: [`Part::Settled`] when it was applied now or
    /// before, or does not apply to the user's state; [`Part::Failed`] when it must be
    /// retried.
    async fn apply_command_to(&self, seq: i64, command: &Command, user_id: &str) -> Part {
        let _user = self.lock_user(user_id).await;
        let origin = Origin::agent(
            user_id,
            crate::store::OPERATOR_SESSION,
            format!("command-{seq}"),
            command.kind(),
        );
        let record = match self.user_or_new(user_id) {
            Ok(record) => record,
            Err(_) => return Part::Failed,
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
                let state = match transition(record.state, UserMigrationTrigger::SendBackupRequest)
                {
                    Ok(state) => state,
                    Err(refused) => {
                        tracing::info!(user_id, %refused, "backup not requested");
                        return Part::Settled;
                    }
                };
                let requested = UserUpdate {
                    state,
                    backup_id: Some(uuid::Uuid::new_v4().to_string()),
                    deadline: Some(wire::rfc3339(*deadline)),
                    delays_remaining: *delays_allowed,
                    max_delay_ms: *max_delay_ms,
                    ..record
                };
                let Some(request) = Self::backup_request(
                    &requested,
                    BackupRequestReason::MigrationScheduled,
                    message.clone(),
                ) else {
                    return Part::Failed;
                };
                durable.push(request);
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
                    return Part::Settled;
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
                let (Some(request_id), Ok(state)) = (
                    record.delay_request_id.clone(),
                    transition(record.state, UserMigrationTrigger::SendStatusUpdate),
                ) else {
                    tracing::info!(
                        user_id,
                        state = record.state.as_str(),
                        "no delay decision: no delay request is pending"
                    );
                    return Part::Settled;
                };
                let new_deadline = if *granted {
                    record.delay_requested_until.clone()
                } else {
                    None
                };
                let decided = UserUpdate {
                    state,
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
                return Part::Failed;
            };
            frames.push((queued.message_type.clone(), frame));
            effects.push(Effect::OutboxPush(queued));
        }
        for message in &immediate {
            let Some((_, frame)) = self.compose(message) else {
                return Part::Failed;
            };
            frames.push((message.message_type().to_owned(), frame));
        }
        match self.commit(origin, Effect::All(effects)).await {
            Ok(()) => {}
            // Applied by an earlier attempt, which delivered its messages.
            Err(error) if error.code == ErrorCode::DuplicateMessage => {
                return Part::Settled;
            }
            Err(error) => {
                tracing::warn!(user_id, seq, %error, "operator command not applied to the user");
                return Part::Failed;
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
        Part::Settled
    }
}

/// What became of one user's part of an operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Applied (now or by an earlier attempt), or not applicable to the user's state.
    Settled,
    /// Not applied; the command stays pending and is retried.
    Failed,
}
