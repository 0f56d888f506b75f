//! The handlers: one method of the generated `ServiceHandler` per agent message.

use std::time::Duration;

use bytes::Bytes;
use ipcspec_generated::migration::{
    AcknowledgmentPayload, AgentStartedPayload, BackupCompletedPayload, BackupProgressPayload,
    BackupRequestReason, BackupStartedPayload, ConfigurationUpdatePayload, DelayRequestPayload,
    ErrorCode, ErrorReportPayload, ErrorSeverity, ServiceHandler, ServiceMessage, ShutdownReason,
    ShutdownRequestPayload, UserActionPayload, UserMigration, UserMigrationTrigger,
};
use ipcspec_runtime::dispatch::MessageId;
use ipcspec_runtime::server::ConnectionHandle;
use ipcspec_runtime::transport::ConnectionId;
use ipcspec_runtime::{Handled, MessageContext};

use super::call::Call;
use super::{
    Agent, Answer, FollowUp, MigrationService, Refusal, internal, receives, refuse, transition,
};
use crate::identity::Directory;
use crate::store::{Effect, Origin, UserUpdate};
use crate::wire;

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

/// UNKNOWN_BACKUP unless `given` is the user's running backup.
fn running_backup(record: &UserUpdate, given: &uuid::Uuid) -> Result<(), Refusal> {
    if record.state == UserMigration::BackupInProgress
        && record.backup_id.as_deref() == Some(given.to_string().as_str())
    {
        Ok(())
    } else {
        Err(unknown_backup(given, record))
    }
}

fn unknown_backup(given: &uuid::Uuid, record: &UserUpdate) -> Refusal {
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

/// Every payload reaching these methods has been checked against the catalogue by the
/// generated dispatcher.
impl<D: Directory> ServiceHandler for Call<'_, D> {
    type FollowUp = FollowUp;
    type Detail = ();

    async fn agent_started(&self, ctx: &MessageContext, payload: AgentStartedPayload) -> Answer {
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
                return Ok(Handled::done());
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
            return Err(refuse(
                ErrorCode::UnsupportedAgentVersion,
                format!(
                    "agent version {} is older than the minimum {minimum}; update the agent",
                    payload.version
                ),
            )
            .and_close());
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
            Err(error) if error.code == ErrorCode::DuplicateMessage => {}
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
        let frames = frames.into_iter().map(|(message_type, frame)| FollowUp {
            message_type,
            frame,
        });
        Ok(Handled::done().then(frames))
    }

    async fn backup_started(&self, _ctx: &MessageContext, payload: BackupStartedPayload) -> Answer {
        let (agent, _user, record) = self.begin(&payload.user_id).await?;
        receives(record.state, "BACKUP_STARTED")?;
        // A requested backup starts with the id it was requested under.
        if matches!(
            record.state,
            UserMigration::BackupRequested | UserMigration::DelayRequested
        ) && record.backup_id.as_deref() != Some(payload.backup_id.to_string().as_str())
        {
            return Err(unknown_backup(&payload.backup_id, &record));
        }
        let running = UserUpdate {
            state: transition(record.state, UserMigrationTrigger::ReceiveBackupStarted)?,
            backup_id: Some(payload.backup_id.to_string()),
            delay_request_id: None,
            delay_requested_until: None,
            percent_complete: Some(0.0),
            bytes_transferred: Some(0),
            total_bytes: payload.estimated_total_bytes,
            ..record
        };
        let effects = vec![Call::<D>::set(&agent, running)];
        let then = self.commit(&agent, "BACKUP_STARTED", effects, &[]).await?;
        Ok(Handled::done().then(then))
    }

    async fn backup_progress(
        &self,
        _ctx: &MessageContext,
        payload: BackupProgressPayload,
    ) -> Answer {
        let (agent, _user, record) = self.begin(&payload.user_id).await?;
        receives(record.state, "BACKUP_PROGRESS")?;
        running_backup(&record, &payload.backup_id)?;
        let progressed = UserUpdate {
            percent_complete: Some(payload.percent_complete),
            bytes_transferred: Some(payload.bytes_transferred),
            total_bytes: Some(payload.total_bytes),
            ..record
        };
        let effects = vec![Call::<D>::set(&agent, progressed)];
        let then = self.commit(&agent, "BACKUP_PROGRESS", effects, &[]).await?;
        Ok(Handled::done().then(then))
    }

    async fn backup_completed(
        &self,
        _ctx: &MessageContext,
        payload: BackupCompletedPayload,
    ) -> Answer {
        let (agent, _user, record) = self.begin(&payload.user_id).await?;
        receives(record.state, "BACKUP_COMPLETED")?;
        running_backup(&record, &payload.backup_id)?;
        let (next, messages) = if payload.success {
            let done = UserUpdate {
                state: transition(record.state, UserMigrationTrigger::ReceiveBackupCompleted)?,
                bytes_transferred: Some(payload.bytes_transferred),
                percent_complete: Some(100.0),
                ..record
            };
            let status = self.service.status_update(&done, None);
            (done, vec![status])
        } else {
            self.service
                .failed_backup(record, payload.error_message.clone())?
        };
        tracing::info!(
            user_id = agent.user_id,
            success = payload.success,
            state = next.state.as_str(),
            "backup completed"
        );
        let effects = vec![Call::<D>::set(&agent, next)];
        let then = self
            .commit(&agent, "BACKUP_COMPLETED", effects, &messages)
            .await?;
        Ok(Handled::done().then(then))
    }

    async fn delay_request(&self, _ctx: &MessageContext, payload: DelayRequestPayload) -> Answer {
        let (agent, _user, record) = self.begin(&payload.user_id).await?;
        receives(record.state, "DELAY_REQUEST")?;
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
        // BACKUP_REQUEST's `maxDelay`: the longest extension one request may ask for.
        if let (Some(deadline), Some(max_ms)) = (deadline, record.max_delay_ms) {
            let latest = deadline.saturating_add(time::Duration::milliseconds(
                i64::try_from(max_ms).unwrap_or(i64::MAX),
            ));
            if payload.requested_deadline > latest {
                return Err(refuse(
                    ErrorCode::DelayNotAllowed,
                    format!(
                        "requestedDeadline is more than maxDelay ({max_ms} ms) after the current deadline; the latest is {}",
                        wire::rfc3339(latest)
                    ),
                ));
            }
        }
        let requested = UserUpdate {
            state: transition(record.state, UserMigrationTrigger::ReceiveDelayRequest)?,
            delay_request_id: Some(self.message_id.to_owned()),
            delay_requested_until: Some(wire::rfc3339(payload.requested_deadline)),
            ..record
        };
        tracing::info!(user_id = agent.user_id, until = %wire::rfc3339(payload.requested_deadline), reason = payload.reason.as_str(), "delay requested");
        let effects = vec![Call::<D>::set(&agent, requested)];
        let then = self.commit(&agent, "DELAY_REQUEST", effects, &[]).await?;
        Ok(Handled::done().then(then))
    }

    async fn user_action(&self, _ctx: &MessageContext, payload: UserActionPayload) -> Answer {
        let agent = self.sender(&payload.user_id)?;
        let _user = self.service.lock_user(&agent.user_id).await;
        self.not_yet_handled(&agent)?;
        tracing::info!(
            user_id = agent.user_id,
            action = payload.action.as_str(),
            "user action"
        );
        let then = self
            .commit(&agent, "USER_ACTION", vec![Effect::Nothing], &[])
            .await?;
        Ok(Handled::done().then(then))
    }

    async fn error_report(&self, _ctx: &MessageContext, payload: ErrorReportPayload) -> Answer {
        let agent = self.sender(&payload.user_id)?;
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
        let then = self
            .commit(&agent, "ERROR_REPORT", vec![Effect::Nothing], &[])
            .await?;
        Ok(Handled::done().then(then))
    }

    async fn heartbeat(&self, _ctx: &MessageContext) -> Answer {
        Ok(Handled::done())
    }

    async fn acknowledgment(&self, ctx: &MessageContext, payload: AcknowledgmentPayload) -> Answer {
        let agent = self.agent()?;
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
                Err(error) if error.code == ErrorCode::DuplicateMessage => {}
                Err(error) => return Err(error),
            }
        }
        Ok(Handled::done())
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
