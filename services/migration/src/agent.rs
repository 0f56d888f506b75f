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
//!
//! The connection's state is the catalogue's `AgentConnection` machine, moved only through
//! its generated `next` by the connection's events ([`ConnectionEvent`]), the
//! AGENT_STARTED exchange and SHUTDOWN_REQUEST ([`Agent::state`] watches it). Nothing but
//! AGENT_STARTED and heartbeats goes out before the service accepted AGENT_STARTED
//! (`READY`); then the unacknowledged messages are resent and the queue is sent. While
//! disconnected the queue follows the catalogue (MAX_QUEUED_MESSAGES): only the latest
//! BACKUP_PROGRESS of a backup is kept, and a full queue drops its oldest USER_ACTION or
//! ERROR_REPORT first.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use ipcspec_generated::migration::{
    self as catalogue, AcknowledgmentPayload, AgentConnection, AgentConnectionTrigger,
    AgentHandler, AgentMessage, AgentStartedPayload, BackupRequestPayload,
    ConfigurationUpdatePayload, Envelope, ErrorCode, EscalationNoticePayload, HandlerResult,
    ShutdownRequestPayload, StatusUpdatePayload, dispatch_to_agent,
};
use ipcspec_runtime::client::reconnect::{ConnectionEvent, Queueing, ReconnectInbound, Status};
use ipcspec_runtime::client::{
    ClientConfig, JsonCorrelator, ReconnectConfig, ReconnectError, ReconnectPolicy,
    ReconnectingClient,
};
use ipcspec_runtime::{Handled, MessageContext};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, watch};

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
    machine: Machine,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        // The user logs off or the agent is stopped locally (`exit`). In the states that
        // do not declare it (an attempt or the AGENT_STARTED exchange under way) the
        // process simply ends with the machine.
        self.machine.take_if_accepted(AgentConnectionTrigger::Exit);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The AGENT_STARTED ids sent on each connection, with the connection's number, to
/// recognise their acknowledgments.
type StartIds = Arc<Mutex<Vec<(String, u64)>>>;

/// The agent's `AgentConnection` state; every change goes through the generated machine.
#[derive(Debug, Clone)]
struct Machine {
    state: Arc<watch::Sender<AgentConnection>>,
    /// When the current AGENT_STARTED was sent (for its acknowledgment timeout).
    starting_since: Arc<Mutex<Option<tokio::time::Instant>>>,
    /// The agent closed the connection because an acknowledgment is overdue: its loss is
    /// `stale`, not `closed`.
    closing_stale: Arc<std::sync::atomic::AtomicBool>,
}

impl Machine {
    fn new() -> Machine {
        Machine {
            state: Arc::new(watch::Sender::new(AgentConnection::INITIAL)),
            starting_since: Arc::default(),
            closing_stale: Arc::default(),
        }
    }

    fn current(&self) -> AgentConnection {
        *self.state.borrow()
    }

    /// Takes `trigger`'s transition; a trigger the current state does not accept is
    /// refused by the machine (logged, state unchanged).
    fn take(&self, trigger: AgentConnectionTrigger) -> bool {
        let mut taken = false;
        self.state
            .send_if_modified(|state| match state.next(trigger) {
                Ok(next) => {
                    *state = next;
                    taken = true;
                    true
                }
                Err(refused) => {
                    tracing::warn!(%refused, "AgentConnection transition refused");
                    false
                }
            });
        if taken && trigger == AgentConnectionTrigger::SendAgentStarted {
            *self
                .starting_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(tokio::time::Instant::now());
        }
        taken
    }

    /// Takes `trigger` when the current state declares it; otherwise does nothing (the
    /// event does not concern this state, e.g. a loss after the agent already left it).
    fn take_if_accepted(&self, trigger: AgentConnectionTrigger) -> bool {
        self.current().accepts().contains(&trigger) && self.take(trigger)
    }

    /// Moves the machine on the reconnecting client's events.
    fn on_connection_event(&self, event: &ConnectionEvent) {
        use AgentConnectionTrigger as On;
        match event {
            ConnectionEvent::Attempt { .. } => {
                let trigger = if self.current() == AgentConnection::Disconnected {
                    On::Start
                } else {
                    On::Retry
                };
                self.take_if_accepted(trigger);
            }
            ConnectionEvent::AttemptFailed { timed_out, .. } => {
                self.take_if_accepted(if *timed_out { On::Timeout } else { On::Error });
            }
            ConnectionEvent::Connected { .. } => {
                self.take_if_accepted(On::Connected);
            }
            ConnectionEvent::Lost { idle, .. } => {
                let stale = *idle
                    || self
                        .closing_stale
                        .swap(false, std::sync::atomic::Ordering::Relaxed);
                if !(stale && self.take_if_accepted(On::Stale)) {
                    self.take_if_accepted(On::Closed);
                }
            }
            ConnectionEvent::GaveUp => {
                self.take_if_accepted(On::Exhausted);
            }
            ConnectionEvent::Closed => {
                self.take_if_accepted(On::Exit);
            }
            _ => {}
        }
    }
}

/// How a message waits while disconnected, as MAX_QUEUED_MESSAGES states it: only the
/// latest BACKUP_PROGRESS of a backup, USER_ACTION and ERROR_REPORT dropped first.
#[must_use]
pub fn queueing(message: &AgentMessage) -> Queueing {
    match message {
        AgentMessage::BackupProgress(p) => Queueing::Latest(format!("progress:{}", p.backup_id)),
        AgentMessage::UserAction(_) | AgentMessage::ErrorReport(_) => Queueing::Droppable,
        _ => Queueing::Keep,
    }
}

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
        Self::connect_with_state(config, watch::Sender::new(AgentConnection::INITIAL)).await
    }

    /// [`connect`](Self::connect), publishing the `AgentConnection` state on `state` from
    /// the first attempt on (the caller sees the states of a connect that fails too).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn connect_with_state(
        config: AgentConfig,
        state: watch::Sender<AgentConnection>,
    ) -> Result<(Agent, mpsc::Receiver<Event>), ReconnectError> {
        let machine = Machine {
            state: Arc::new(state),
            ..Machine::new()
        };
        let start_ids: StartIds = Arc::default();
        let started = AgentStartedPayload {
            user_id: config.user_id.clone(),
            version: config.version.clone(),
            session_id: config.session_id.clone(),
        };
        let on_reconnect = {
            let start_ids = Arc::clone(&start_ids);
            let machine = machine.clone();
            Arc::new(move |generation: u64| {
                let id = wire::new_id();
                let message = AgentMessage::AgentStarted(started.clone());
                match wire::encode_agent(&id, &message) {
                    Ok(frame) if machine.take(AgentConnectionTrigger::SendAgentStarted) => {
                        start_ids
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push((id, generation));
                        vec![frame]
                    }
                    Ok(_) => Vec::new(),
                    Err(error) => {
                        tracing::error!(%error, "cannot encode AGENT_STARTED");
                        Vec::new()
                    }
                }
            })
        };
        let on_event = {
            let machine = machine.clone();
            Arc::new(move |event: &ConnectionEvent| machine.on_connection_event(event))
        };
        let reconnect = ReconnectConfig {
            policy: config.policy.clone(),
            client: ClientConfig {
                idle_timeout: Some(config.stale_after),
                ..ClientConfig::from_profile(&catalogue::WIRE)
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
            on_event: Some(on_event),
            hold_until_ready: true,
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
            machine.clone(),
            events,
        ));
        let heartbeat = tokio::spawn(heartbeat_loop(client.clone(), config.heartbeat_interval));
        let watchdog = tokio::spawn(ack_watchdog(
            client.clone(),
            Arc::clone(&waiters),
            machine.clone(),
            config.ack_timeout,
        ));
        Ok((
            Agent {
                client,
                waiters,
                machine,
                tasks: vec![reader, heartbeat, watchdog],
            },
            receiver,
        ))
    }

    /// The connection's `AgentConnection` state, as a watch.
    #[must_use]
    pub fn state(&self) -> watch::Receiver<AgentConnection> {
        self.machine.state.subscribe()
    }

    /// Sends `message` with a fresh id after checking it against the catalogue; returns
    /// the id and a receiver for its acknowledgment. The message is resent after a
    /// reconnect until acknowledged. While disconnected it is queued as the catalogue
    /// says: a BACKUP_PROGRESS replaced by a later one of the same backup, or a
    /// USER_ACTION or ERROR_REPORT dropped from a full queue, is never sent, and its
    /// receiver reports that (the sender is dropped).
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
        let receiver = self.send_frame_with(&id, frame, queueing(message)).await?;
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
        self.send_frame_with(id, frame, Queueing::Keep).await
    }

    /// [`send_frame`](Self::send_frame), queued while disconnected as `queueing` says
    /// (see [`queueing`]).
    ///
    /// # Errors
    ///
    /// Connection errors.
    pub async fn send_frame_with(
        &self,
        id: &str,
        frame: Bytes,
        queueing: Queueing,
    ) -> Result<oneshot::Receiver<AcknowledgmentPayload>, AgentError> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), (tokio::time::Instant::now(), tx));
        match self.client.send_with(frame, id, queueing).await {
            Ok(superseded) => {
                if let Some(superseded) = superseded {
                    tracing::debug!(id = superseded, "a queued message gave way");
                    self.waiters
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&superseded);
                }
                Ok(rx)
            }
            Err(error) => {
                self.waiters
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(id);
                Err(error.into())
            }
        }
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
/// acknowledgment (the catalogue's "treats the connection as broken": `stale` when
/// `READY`, `timeout` for AGENT_STARTED); the reconnecting client then reconnects and
/// resends. Waiting restarts with each new connection.
async fn ack_watchdog(
    client: ReconnectingClient,
    waiters: Waiters,
    machine: Machine,
    timeout: Duration,
) {
    let mut status = client.status();
    let mut generation = 0;
    let period = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        if machine.current() == AgentConnection::Starting {
            let since = *machine
                .starting_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if since.is_some_and(|since| since.elapsed() > timeout)
                && machine.take(AgentConnectionTrigger::Timeout)
                && let Some(connection) = client.client()
            {
                tracing::warn!(
                    ?timeout,
                    "AGENT_STARTED not acknowledged in time; reconnecting"
                );
                connection.close();
            }
            continue;
        }
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
            machine
                .closing_stale
                .store(true, std::sync::atomic::Ordering::Relaxed);
            connection.close();
        }
    }
}

/// Accepts what the generated dispatcher decoded and checked against the catalogue; the
/// agent's behaviour is its caller's (the CLI prints every message).
struct Checker;

impl AgentHandler for Checker {
    type FollowUp = ();
    type Detail = ();

    async fn backup_request(&self, _: &MessageContext, _: BackupRequestPayload) -> Accepted {
        Ok(Handled::done())
    }
    async fn status_update(&self, _: &MessageContext, _: StatusUpdatePayload) -> Accepted {
        Ok(Handled::done())
    }
    async fn escalation_notice(&self, _: &MessageContext, _: EscalationNoticePayload) -> Accepted {
        Ok(Handled::done())
    }
    async fn configuration_update(
        &self,
        _: &MessageContext,
        _: ConfigurationUpdatePayload,
    ) -> Accepted {
        Ok(Handled::done())
    }
    async fn shutdown_request(&self, _: &MessageContext, _: ShutdownRequestPayload) -> Accepted {
        Ok(Handled::done())
    }
    async fn heartbeat(&self, _: &MessageContext) -> Accepted {
        Ok(Handled::done())
    }
    async fn acknowledgment(&self, _: &MessageContext, _: AcknowledgmentPayload) -> Accepted {
        Ok(Handled::done())
    }
}

/// What a [`Checker`] method returns.
type Accepted = HandlerResult<()>;

/// Whether a refusal of AGENT_STARTED is final (the catalogue's `fatalRejection`).
fn fatal(code: Option<&str>) -> bool {
    [ErrorCode::UserMismatch, ErrorCode::UnsupportedAgentVersion]
        .iter()
        .any(|fatal| code == Some(fatal.as_str()))
}

async fn read_loop(
    client: ReconnectingClient,
    mut inbound: ReconnectInbound,
    waiters: Waiters,
    start_ids: StartIds,
    machine: Machine,
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
                if let (Some(payload), None) = (&payload, &envelope.correlation_id)
                    && payload.error_code.as_deref() == Some(ErrorCode::TooManyConnections.as_str())
                {
                    // The connection limit's refusal (no correlationId): the service
                    // closes the connection and the agent retries.
                    tracing::warn!("the service refused the connection: TOO_MANY_CONNECTIONS");
                    machine.take_if_accepted(AgentConnectionTrigger::RetryableRejection);
                }
                if let (Some(payload), Some(acknowledged)) = (payload, &envelope.correlation_id) {
                    let start = start_ids
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .iter()
                        .find(|(id, _)| id == acknowledged)
                        .map(|(_, generation)| *generation);
                    if let Some(generation) = start {
                        started(&client, &machine, &payload, generation, &mut stop).await;
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
                    machine.take(AgentConnectionTrigger::ReceiveShutdownRequest);
                    stop = Some(Event::Shutdown(payload));
                }
            }
            (Err(error), _) => {
                tracing::warn!(%error, "the service sent a message the agent refuses");
                if !matches!(message_type.as_str(), "ACKNOWLEDGMENT" | "HEARTBEAT") {
                    let code = match error {
                        ipcspec_runtime::DispatchError::Unhandled(
                            ipcspec_runtime::Unhandled::UnknownType { .. }
                            | ipcspec_runtime::Unhandled::NotReceived { .. },
                        ) => ErrorCode::UnknownMessageType,
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

/// The acknowledgment of the AGENT_STARTED sent on connection `generation`: `READY` (and
/// the held messages go out), or a rejection, fatal or retryable.
async fn started(
    client: &ReconnectingClient,
    machine: &Machine,
    payload: &AcknowledgmentPayload,
    generation: u64,
    stop: &mut Option<Event>,
) {
    use AgentConnectionTrigger as On;
    if payload.success {
        if machine.take(On::ReceiveAcknowledgment) {
            client.ready(generation).await;
        }
    } else if fatal(payload.error_code.as_deref()) {
        machine.take(On::FatalRejection);
        *stop = Some(Event::Rejected {
            code: payload.error_code.clone().unwrap_or_default(),
            message: payload.error_message.clone().unwrap_or_default(),
        });
    } else if machine.take(On::RetryableRejection)
        && let Some(connection) = client.client()
    {
        connection.close();
    }
}

/// Sends an acknowledgment on the current connection; it is not tracked (an
/// acknowledgment is never acknowledged), and one lost with the connection is answered
/// by the service resending its outbox. One that cannot be encoded is logged, not sent
/// empty.
fn reply(client: &ReconnectingClient, frame: Result<Bytes, serde_json::Error>) {
    let frame = match frame {
        Ok(frame) => frame,
        Err(error) => {
            tracing::error!(%error, "cannot encode an acknowledgment; none sent");
            return;
        }
    };
    if let Some(connection) = client.client()
        && let Err(error) = connection.try_send(frame)
    {
        tracing::debug!(%error, "acknowledgment not sent");
    }
}
