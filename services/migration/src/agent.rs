//! The agent side: one connection to the service that survives the service restarting.
//!
//! [`Agent::connect`] opens a [`ReconnectingClient`] whose every connection starts with a
//! fresh AGENT_STARTED, so the service re-binds the connection to the user after each
//! reconnect. Messages sent with [`Agent::send`] keep their id: a message the service
//! did not acknowledge before the connection dropped is resent with the same bytes after
//! AGENT_STARTED, and the service recognises it (DUPLICATE_MESSAGE, which counts as
//! delivered). Every message the service sends is validated against the catalogue,
//! acknowledged (with `success: false` and INVALID_MESSAGE when it breaks a constraint)
//! and handed to the caller as an [`Event`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use ipcspec_generated::migration::{
    self as catalogue, AcknowledgmentPayload, AgentHandler, AgentMessage, AgentStartedPayload,
    BackupRequestPayload, ConfigurationUpdatePayload, Envelope, ErrorCode, EscalationNoticePayload,
    ShutdownRequestPayload, StatusUpdatePayload, dispatch_to_agent,
};
use ipcspec_runtime::client::reconnect::{ReconnectInbound, Status};
use ipcspec_runtime::client::{
    ClientConfig, JsonCorrelator, ReconnectConfig, ReconnectError, ReconnectPolicy,
    ReconnectingClient,
};
use ipcspec_runtime::{HandlerError, MessageContext};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use crate::wire;

/// Who the agent is and where the service listens.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The service's socket.
    pub socket: PathBuf,
    /// The login name the agent runs as (`userId`).
    pub user_id: String,
    /// The login session (`sessionId`).
    pub session_id: String,
    /// The agent's version (`version`).
    pub version: String,
    /// Reconnection: the catalogue's values by default.
    pub policy: ReconnectPolicy,
    /// How often a HEARTBEAT is sent.
    pub heartbeat_interval: Duration,
    /// A message not acknowledged within this long means the connection is broken: the
    /// agent closes it, reconnects and resends.
    pub ack_timeout: Duration,
    /// Nothing received for this long (the service sends heartbeats) means the service
    /// is gone: the agent closes the connection and reconnects.
    pub stale_after: Duration,
}

impl AgentConfig {
    /// The catalogue's defaults for `user_id` in `session_id`.
    #[must_use]
    pub fn new(socket: impl Into<PathBuf>, user_id: &str, session_id: &str) -> Self {
        Self {
            socket: socket.into(),
            user_id: user_id.to_owned(),
            session_id: session_id.to_owned(),
            version: catalogue::PROTOCOL_VERSION.to_owned(),
            policy: ReconnectPolicy {
                max_attempts: catalogue::MAX_RECONNECT_ATTEMPTS,
                initial_delay: Duration::from_millis(u64::from(
                    catalogue::RECONNECT_INITIAL_DELAY_MS,
                )),
                max_delay: Duration::from_millis(u64::from(catalogue::RECONNECT_MAX_DELAY_MS)),
                multiplier: catalogue::RECONNECT_BACKOFF_MULTIPLIER,
                jitter: catalogue::RECONNECT_JITTER,
                max_queued: catalogue::MAX_QUEUED_MESSAGES as usize,
            },
            heartbeat_interval: Duration::from_secs(u64::from(
                catalogue::HEARTBEAT_INTERVAL_SECONDS,
            )),
            ack_timeout: Duration::from_secs(u64::from(catalogue::ACKNOWLEDGMENT_TIMEOUT_SECONDS)),
            stale_after: Duration::from_secs(u64::from(catalogue::STALE_CONNECTION_SECONDS)),
        }
    }
}

/// What the agent hands its caller.
#[derive(Debug, Clone)]
pub enum Event {
    /// A frame the service sent, as received (valid or not), with its type.
    Received {
        /// The envelope `type` (empty when unreadable).
        message_type: String,
        /// The frame's JSON.
        json: String,
    },
    /// The service refused AGENT_STARTED for a reason that retrying cannot fix
    /// (USER_MISMATCH, UNSUPPORTED_AGENT_VERSION): the agent stops.
    Rejected {
        /// The error code.
        code: String,
        /// The service's detail.
        message: String,
    },
    /// The service asked the agent to exit (SHUTDOWN_REQUEST), already acknowledged.
    Shutdown(ShutdownRequestPayload),
    /// Reconnecting failed too often; the agent is finished.
    GaveUp(String),
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The message breaks the catalogue's constraints; it was not sent.
    #[error("not sent: {0}")]
    Invalid(String),
    /// The connection layer refused it.
    #[error(transparent)]
    Connection(#[from] ReconnectError),
    /// The agent stopped before the acknowledgment came.
    #[error("the agent stopped before the message was acknowledged")]
    Stopped,
}

/// Messages waiting for their acknowledgment: since when (restarted on each new
/// connection) and who to tell.
type Waiters =
    Arc<Mutex<HashMap<String, (tokio::time::Instant, oneshot::Sender<AcknowledgmentPayload>)>>>;

/// A connected agent; see the [module documentation](self).
#[derive(Debug)]
pub struct Agent {
    client: ReconnectingClient,
    waiters: Waiters,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The AGENT_STARTED ids sent on each connection, to recognise their acknowledgments.
type StartIds = Arc<Mutex<Vec<String>>>;

impl Agent {
    /// Connects (retrying per the policy) and starts the tasks that acknowledge service
    /// messages and send heartbeats. Events arrive on the returned channel.
    ///
    /// # Errors
    ///
    /// [`ReconnectError::GaveUp`] when no connection attempt succeeded.
    pub async fn connect(
        config: AgentConfig,
    ) -> Result<(Agent, mpsc::Receiver<Event>), ReconnectError> {
        let start_ids: StartIds = Arc::default();
        let started = AgentStartedPayload {
            user_id: config.user_id.clone(),
            version: config.version.clone(),
            session_id: config.session_id.clone(),
        };
        let on_reconnect = {
            let start_ids = Arc::clone(&start_ids);
            Arc::new(move |_generation: u64| {
                let id = wire::new_id();
                let message = AgentMessage::AgentStarted(started.clone());
                match wire::encode_agent(&id, &message) {
                    Ok(frame) => {
                        start_ids
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(id);
                        vec![frame]
                    }
                    Err(_) => Vec::new(),
                }
            })
        };
        let reconnect = ReconnectConfig {
            policy: config.policy.clone(),
            client: ClientConfig {
                max_frame_bytes: catalogue::MAX_MESSAGE_SIZE as usize,
                idle_timeout: Some(config.stale_after),
                ..ClientConfig::default()
            },
            connect_timeout: Duration::from_secs(u64::from(catalogue::CONNECTION_TIMEOUT_SECONDS)),
            max_unacked: catalogue::MAX_QUEUED_MESSAGES as usize,
            ack_id: Some(Arc::new(|frame: &[u8]| {
                let envelope: Envelope<&RawValue> = serde_json::from_slice(frame).ok()?;
                (envelope.message_type == "ACKNOWLEDGMENT")
                    .then_some(envelope.correlation_id)
                    .flatten()
            })),
            on_reconnect: Some(on_reconnect),
            seed: None,
        };
        let (client, inbound) =
            ReconnectingClient::connect(&config.socket, reconnect, JsonCorrelator::ENVELOPE)
                .await?;
        let waiters: Waiters = Arc::default();
        let (events, receiver) = mpsc::channel(256);
        let reader = tokio::spawn(read_loop(
            client.clone(),
            inbound,
            Arc::clone(&waiters),
            start_ids,
            events,
        ));
        let heartbeat = tokio::spawn(heartbeat_loop(client.clone(), config.heartbeat_interval));
        let watchdog = tokio::spawn(ack_watchdog(
            client.clone(),
            Arc::clone(&waiters),
            config.ack_timeout,
        ));
        Ok((
            Agent {
                client,
                waiters,
                tasks: vec![reader, heartbeat, watchdog],
            },
            receiver,
        ))
    }

    /// Sends `message` with a fresh id after checking it against the catalogue; returns
    /// the id and a receiver for its acknowledgment. The message is resent after a
    /// reconnect until acknowledged.
    ///
    /// # Errors
    ///
    /// [`AgentError::Invalid`] for a message breaking a constraint; connection errors.
    pub async fn send(
        &self,
        message: &AgentMessage,
    ) -> Result<(String, oneshot::Receiver<AcknowledgmentPayload>), AgentError> {
        check_agent_message(message)?;
        let id = wire::new_id();
        let frame = wire::encode_agent(&id, message)
            .map_err(|error| AgentError::Invalid(error.to_string()))?;
        let receiver = self.send_frame(&id, frame).await?;
        Ok((id, receiver))
    }

    /// Sends an already encoded frame whose envelope id is `id`.
    ///
    /// # Errors
    ///
    /// Connection errors.
    pub async fn send_frame(
        &self,
        id: &str,
        frame: Bytes,
    ) -> Result<oneshot::Receiver<AcknowledgmentPayload>, AgentError> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), (tokio::time::Instant::now(), tx));
        if let Err(error) = self.client.send(frame, id).await {
            self.waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id);
            return Err(error.into());
        }
        Ok(rx)
    }

    /// The connection's status.
    #[must_use]
    pub fn status(&self) -> tokio::sync::watch::Receiver<Status> {
        self.client.status()
    }

    /// Messages sent and not acknowledged yet.
    #[must_use]
    pub fn unacked(&self) -> usize {
        self.client.unacked() + self.client.queued()
    }
}

/// Checks an agent message against the catalogue before it is sent.
///
/// # Errors
///
/// [`AgentError::Invalid`] naming every violated rule.
pub fn check_agent_message(message: &AgentMessage) -> Result<(), AgentError> {
    use ipcspec_runtime::validate::Validate;
    let result = match message {
        AgentMessage::AgentStarted(p) => p.validate(),
        AgentMessage::BackupStarted(p) => p.validate(),
        AgentMessage::BackupProgress(p) => p.validate(),
        AgentMessage::BackupCompleted(p) => p.validate(),
        AgentMessage::DelayRequest(p) => p.validate(),
        AgentMessage::UserAction(p) => p.validate(),
        AgentMessage::ErrorReport(p) => p.validate(),
        AgentMessage::Acknowledgment(p) => p.validate(),
        AgentMessage::Heartbeat => Ok(()),
    };
    result.map_err(|errors| AgentError::Invalid(errors.to_string()))
}

async fn heartbeat_loop(client: ReconnectingClient, interval: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tick.tick().await;
        // Heartbeats are never queued: one is only useful on a live connection.
        if let Some(connection) = client.client()
            && let Ok(frame) = wire::encode_agent(&wire::new_id(), &AgentMessage::Heartbeat)
        {
            let _ = connection.try_send(frame);
        }
    }
}

/// Closes a connection on which a message waited longer than `timeout` for its
/// acknowledgment (the catalogue's "treats the connection as broken"); the reconnecting
/// client then reconnects and resends. Waiting restarts with each new connection.
async fn ack_watchdog(client: ReconnectingClient, waiters: Waiters, timeout: Duration) {
    let mut status = client.status();
    let mut generation = 0;
    let period = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let current = match &*status.borrow_and_update() {
            Status::Connected { generation } => Some(*generation),
            _ => None,
        };
        let Some(current) = current else { continue };
        let now = tokio::time::Instant::now();
        let mut waiting = waiters.lock().unwrap_or_else(PoisonError::into_inner);
        if current != generation {
            generation = current;
            for (since, _) in waiting.values_mut() {
                *since = now;
            }
            continue;
        }
        let overdue = waiting
            .iter()
            .find(|(_, (since, _))| now.duration_since(*since) > timeout)
            .map(|(id, _)| id.clone());
        drop(waiting);
        if let (Some(id), Some(connection)) = (overdue, client.client()) {
            tracing::warn!(id, ?timeout, "no acknowledgment in time; reconnecting");
            connection.close();
        }
    }
}

/// Validates what the generated dispatcher decodes; the agent's behaviour is its
/// caller's (the CLI prints every message).
struct Checker;

impl AgentHandler for Checker {
    async fn backup_request(
        &self,
        _: &MessageContext,
        p: BackupRequestPayload,
    ) -> Result<(), HandlerError> {
        wire::check(&p)
    }
    async fn status_update(
        &self,
        _: &MessageContext,
        p: StatusUpdatePayload,
    ) -> Result<(), HandlerError> {
        wire::check(&p)
    }
    async fn escalation_notice(
        &self,
        _: &MessageContext,
        p: EscalationNoticePayload,
    ) -> Result<(), HandlerError> {
        wire::check(&p)
    }
    async fn configuration_update(
        &self,
        _: &MessageContext,
        p: ConfigurationUpdatePayload,
    ) -> Result<(), HandlerError> {
        wire::check(&p)
    }
    async fn shutdown_request(
        &self,
        _: &MessageContext,
        p: ShutdownRequestPayload,
    ) -> Result<(), HandlerError> {
        wire::check(&p)
    }
    async fn heartbeat(&self, _: &MessageContext) -> Result<(), HandlerError> {
        Ok(())
    }
    async fn acknowledgment(
        &self,
        _: &MessageContext,
        p: AcknowledgmentPayload,
    ) -> Result<(), HandlerError> {
        wire::check(&p)
    }
}

/// Whether a refusal of AGENT_STARTED is final (the catalogue's `fatalRejection`).
fn fatal(code: Option<&str>) -> bool {
    matches!(code, Some("USER_MISMATCH" | "UNSUPPORTED_AGENT_VERSION"))
}

async fn read_loop(
    client: ReconnectingClient,
    mut inbound: ReconnectInbound,
    waiters: Waiters,
    start_ids: StartIds,
    events: mpsc::Sender<Event>,
) {
    while let Some(frame) = inbound.recv().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                let _ = events.send(Event::GaveUp(error.to_string())).await;
                return;
            }
        };
        let json = String::from_utf8_lossy(&frame).into_owned();
        let envelope = match wire::receive(&frame) {
            wire::Received::Envelope(envelope) => envelope,
            wire::Received::Invalid { id, error } => {
                tracing::warn!(id, %error, "the service sent an invalid message");
                reply(
                    &client,
                    wire::ack(&id, Err((ErrorCode::InvalidMessage, error))),
                );
                let _ = events
                    .send(Event::Received {
                        message_type: String::new(),
                        json,
                    })
                    .await;
                continue;
            }
            wire::Received::Unreadable { error } => {
                tracing::warn!(%error, "dropping an unreadable frame from the service");
                continue;
            }
        };
        let message_type = envelope.message_type.clone();
        let ctx = MessageContext {
            correlation_id: envelope
                .correlation_id
                .clone()
                .map(ipcspec_runtime::dispatch::MessageId::Text),
            ..MessageContext::default()
        };
        let result = dispatch_to_agent(&Checker, &ctx, &message_type, envelope.payload).await;
        let mut stop = None;
        match (&result, message_type.as_str()) {
            (Ok(_), "ACKNOWLEDGMENT") => {
                let payload: Option<AcknowledgmentPayload> =
                    serde_json::from_str(envelope.payload.get()).ok();
                if let (Some(payload), Some(acknowledged)) = (payload, &envelope.correlation_id) {
                    let was_start = start_ids
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .contains(acknowledged);
                    if was_start && !payload.success && fatal(payload.error_code.as_deref()) {
                        stop = Some(Event::Rejected {
                            code: payload.error_code.clone().unwrap_or_default(),
                            message: payload.error_message.clone().unwrap_or_default(),
                        });
                    }
                    let waiter = waiters
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(acknowledged);
                    if let Some((_, waiter)) = waiter {
                        let _ = waiter.send(payload);
                    }
                }
            }
            (Ok(_), "HEARTBEAT") => {}
            (Ok(_), _) => {
                reply(&client, wire::ack(&envelope.id, Ok(())));
                if message_type == "SHUTDOWN_REQUEST"
                    && let Ok(payload) = serde_json::from_str(envelope.payload.get())
                {
                    stop = Some(Event::Shutdown(payload));
                }
            }
            (Err(error), _) => {
                tracing::warn!(%error, "the service sent a message the agent refuses");
                if !matches!(message_type.as_str(), "ACKNOWLEDGMENT" | "HEARTBEAT") {
                    let code = match error {
                        ipcspec_runtime::DispatchError::UnknownType { .. }
                        | ipcspec_runtime::DispatchError::NotReceived { .. } => {
                            ErrorCode::UnknownMessageType
                        }
                        _ => ErrorCode::InvalidMessage,
                    };
                    reply(
                        &client,
                        wire::ack(&envelope.id, Err((code, error.to_string()))),
                    );
                }
            }
        }
        if message_type != "HEARTBEAT" {
            let _ = events
                .send(Event::Received {
                    message_type: message_type.clone(),
                    json,
                })
                .await;
        }
        if let Some(event) = stop {
            let _ = events.send(event).await;
            return;
        }
    }
}

/// Sends an acknowledgment on the current connection; it is not tracked (an
/// acknowledgment is never acknowledged), and one lost with the connection is answered
/// by the service resending its outbox.
fn reply(client: &ReconnectingClient, frame: Bytes) {
    if let Some(connection) = client.client()
        && let Err(error) = connection.try_send(frame)
    {
        tracing::debug!(%error, "acknowledgment not sent");
    }
}
