//! One received message being handled, and the checks every handler starts with.

use ipcspec_generated::migration::{ErrorCode, ServiceMessage};
use ipcspec_runtime::server::ConnectionInfo;

use super::{Agent, FollowUp, MigrationService, Refusal, internal, refuse};
use crate::identity::Directory;
use crate::store::{Effect, Origin, UserUpdate};

/// One received message being handled: the generated dispatcher calls its
/// `ServiceHandler` methods, once it has checked the payload against the catalogue. What
/// a handler sends after the acknowledgment, and whether the connection closes, it says
/// in its return value.
pub(super) struct Call<'a, D> {
    pub(super) service: &'a MigrationService<D>,
    pub(super) conn: &'a ConnectionInfo,
    pub(super) message_id: &'a str,
}

impl<D: Directory> Call<'_, D> {
    /// The accepted agent on this connection, or AGENT_NOT_STARTED.
    pub(super) fn agent(&self) -> Result<Agent, Refusal> {
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

    /// Refuses impersonation: logs a security event; the refusal closes the connection.
    pub(super) fn mismatch(&self, claimed: &str, actual: &str) -> Refusal {
        let peer = self.conn.peer().unwrap_or_default();
        tracing::warn!(
            target: "security",
            claimed_user = claimed,
            peer_user = actual,
            peer_uid = ?peer.uid,
            peer_pid = ?peer.pid,
            "impersonation refused: the message's userId is not the peer's login name"
        );
        refuse(
            ErrorCode::UserMismatch,
            format!("userId {claimed:?} is not the login name of the connection's peer ({actual})"),
        )
        .and_close()
    }

    /// The sending agent, once its payload's `userId` was checked against the
    /// connection.
    pub(super) fn sender(&self, user_id: &str) -> Result<Agent, Refusal> {
        let agent = self.agent()?;
        if user_id != agent.user_id {
            return Err(self.mismatch(user_id, &agent.user_id));
        }
        Ok(agent)
    }

    /// What every state-changing handler starts with: the checked sender, the user's
    /// lock (held until the commit), the journal check and the user's record.
    pub(super) async fn begin(
        &self,
        user_id: &str,
    ) -> Result<(Agent, tokio::sync::OwnedMutexGuard<()>, UserUpdate), Refusal> {
        let agent = self.sender(user_id)?;
        let lock = self.service.lock_user(&agent.user_id).await;
        self.not_yet_handled(&agent)?;
        let record = self.service.user_or_new(&agent.user_id)?;
        Ok((agent, lock, record))
    }

    pub(super) fn origin(&self, agent: &Agent) -> Origin {
        Origin::agent(&agent.user_id, &agent.session_id, self.message_id, "")
    }

    pub(super) fn not_yet_handled(&self, agent: &Agent) -> Result<(), Refusal> {
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
    /// user's other agents; what this agent gets after the acknowledgment is returned.
    pub(super) async fn commit(
        &self,
        agent: &Agent,
        message_type: &str,
        mut effects: Vec<Effect>,
        outbox: &[ServiceMessage],
    ) -> Result<Vec<FollowUp>, Refusal> {
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
        Ok(frames
            .into_iter()
            .map(|(message_type, frame)| FollowUp {
                message_type,
                frame,
            })
            .collect())
    }

    pub(super) fn set(agent: &Agent, record: UserUpdate) -> Effect {
        Effect::SetState {
            user_id: agent.user_id.clone(),
            record,
        }
    }
}
