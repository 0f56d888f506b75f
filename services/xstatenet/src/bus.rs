//! The bus: a runtime [`Service`] that routes events between the machines registered by
//! its connections.
//!
//! # Invariants
//!
//! - **A machine id belongs to the live connection that registered it.** A second
//!   registration from another connection is refused (MACHINE_ALREADY_REGISTERED); a
//!   connection may send only as its own machines (SOURCE_NOT_REGISTERED); closing a
//!   connection unregisters its machines at once (`on_close`).
//! - **Order per sender and target.** Frames of one connection are handled in order and
//!   an event is queued on the target's connection before the next frame of the sender
//!   is handled, so events from one connection to one target arrive in the order sent.
//! - **Memory stays bounded.** Delivery never waits: an event for a target whose outbound
//!   queue is full is dropped, the target is disconnected as a slow consumer (the NATS
//!   policy), the sender is told (SLOW_CONSUMER) and the drop is counted.
//! - **One verdict, two paths.** A valid SendEvent is routed from its borrowed fields
//!   (`route_borrowed`) and its payload forwarded as received; anything that path cannot
//!   accept takes the typed decode through the generated dispatcher, so every refusal
//!   says what the typed path says. Both share the ownership check and the delivery
//!   (`lookup`, `deliver`, `route`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use bytes::Bytes;
use ipcspec_generated::xstatenet::{
    BusError, BusHandler, BusMessage, Envelope, ErrorCode, HandlerResult, HealthStatus, MESSAGES,
    MachineEvent, MachineRegistration, MachineUnregistration, PerformanceMetrics,
    RegistrationResult, constraints, dispatch_to_bus,
};
use ipcspec_runtime::codec::BadFrame;
use ipcspec_runtime::server::{
    CloseReason, ConnectionHandle, ConnectionInfo, Direction, MessageCounter, Metrics, Outcome,
    SendError, Service,
};
use ipcspec_runtime::transport::ConnectionId;
use ipcspec_runtime::validate::Path;
use ipcspec_runtime::{DispatchError, Handled, HandlerError, MessageContext, Unhandled};
use serde::Serialize;
use serde_json::value::RawValue;

/// The wire name of the message routed without a typed decode.
const SEND_EVENT: &str = "SendEvent";

/// The deepest JSON nesting a line may have (the envelope object is level 1).
const MAX_NESTING_DEPTH: usize = ipcspec_generated::xstatenet::MAX_NESTING_DEPTH as usize;

/// How many machines one connection may register.
pub const MAX_MACHINES_PER_CONNECTION: usize =
    ipcspec_generated::xstatenet::MAX_MACHINES_PER_CONNECTION as usize;

/// Counters of the bus, beyond the server's.
#[derive(Debug, Default)]
pub struct BusCounters {
    /// Events delivered to a target's queue.
    pub routed: AtomicU64,
    /// Events refused (unknown target, source not registered, invalid).
    pub refused: AtomicU64,
    /// Events dropped because the target was too slow.
    pub dropped: AtomicU64,
    /// Connections closed as slow consumers.
    pub slow_consumers: AtomicU64,
}

#[derive(Debug)]
struct Registry {
    /// Machine id -> the connection that registered it.
    machines: HashMap<String, (ConnectionId, ConnectionHandle)>,
    /// Connection -> its machines.
    by_connection: HashMap<ConnectionId, Vec<String>>,
    connections: u32,
    peak: u32,
    peak_at: time::OffsetDateTime,
}

/// The message bus; see the [module documentation](self).
#[derive(Debug)]
pub struct Bus {
    /// Read-locked to route (every event), write-locked to change (registrations and
    /// closes), so events from connections on different threads do not queue up.
    registry: RwLock<Registry>,
    /// When the last message was handled, in nanoseconds after `started`: the
    /// monotonic clock the handler already read (a wall-clock read per event costs;
    /// health turns it into a time of day).
    last_activity: AtomicU64,
    started: Instant,
    started_at: time::OffsetDateTime,
    /// The per-type counters of every event, kept rather than looked up per event.
    hot_counters: OnceLock<HotCounters>,
    /// The bus's own counters.
    pub counters: BusCounters,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Encodes one bus message line (`Envelope` with PascalCase keys).
fn line<P: Serialize>(
    message_type: &str,
    payload: P,
    correlation: Option<&str>,
) -> Result<Bytes, serde_json::Error> {
    let envelope = Envelope {
        id: None,
        message_type: message_type.to_owned(),
        payload,
        correlation_id: correlation.map(str::to_owned),
    };
    serde_json::to_vec(&envelope).map(Bytes::from)
}

/// The metrics kind of a line that could not be encoded.
const ENCODE_FAILED: &str = "encode_failed";

/// `frame` queued in `outcome`, or, when it could not be encoded, an internal error: logged,
/// counted (`encode_failed`) and answered with INTERNAL_ERROR, never an empty line.
fn push_line(
    outcome: &mut Outcome,
    conn: &ConnectionInfo,
    message_type: &'static str,
    frame: Result<Bytes, serde_json::Error>,
    correlation: Option<&str>,
) {
    match frame {
        Ok(frame) => {
            conn.metrics().record_message(Direction::Out, message_type);
            outcome.frames.push(frame);
        }
        Err(error) => {
            tracing::error!(message_type, %error, "cannot encode a reply; answering INTERNAL_ERROR");
            outcome.error = Some(ENCODE_FAILED);
            let internal = error_line(
                ErrorCode::InternalError,
                format!("the bus could not encode its {message_type} reply"),
                correlation,
                ErrorDetail::default(),
            );
            if let Some(frame) = internal {
                conn.metrics().record_message(Direction::Out, "Error");
                outcome.frames.push(frame);
            }
        }
    }
}

/// The EventReceived line around a SendEvent payload as it was received (a JSON object
/// from one line, so it holds no newline), in pieces: the target's queue frames them
/// straight into its buffer.
fn event_received(raw_payload: &str) -> [&str; 3] {
    const HEAD: &str = "{\"Type\":\"EventReceived\",\"Payload\":";
    [HEAD, raw_payload, "}"]
}

/// An Error line, or `None` (logged) in the impossible case that it does not encode.
fn error_line(
    code: ErrorCode,
    message: impl Into<String>,
    correlation: Option<&str>,
    detail: ErrorDetail,
) -> Option<Bytes> {
    let payload = BusError {
        error_code: code.as_str().to_owned(),
        message: message.into(),
        message_type: detail.message_type,
        machine_id: detail.machine_id,
        target_machine_id: detail.target_machine_id,
        field: detail.field,
    };
    line("Error", payload, correlation)
        .inspect_err(|error| tracing::error!(%error, "cannot encode an Error line"))
        .ok()
}

/// The optional fields of an Error.
#[derive(Debug, Default)]
struct ErrorDetail {
    message_type: Option<String>,
    machine_id: Option<String>,
    target_machine_id: Option<String>,
    field: Option<String>,
}

/// Why the bus refuses a message: the code, message and optional fields of its Error
/// line. The detail is boxed: a refusal travels in the `Err` of every routing call, kept
/// small.
type Refusal = HandlerError<ErrorCode, Box<ErrorDetail>>;

/// What a bus handler returns.
type Answer<R> = HandlerResult<R, (), Box<ErrorDetail>>;

/// The Error line answering a message of `message_type` with `refusal`.
fn refusal_line(refusal: Refusal, message_type: &str, correlation: Option<&str>) -> Option<Bytes> {
    let detail = ErrorDetail {
        message_type: refusal
            .detail
            .message_type
            .or_else(|| Some(message_type.to_owned())),
        ..*refusal.detail
    };
    error_line(refusal.code, refusal.message, correlation, detail)
}

/// A refusal with `code`, `message` and `detail`.
fn refuse(code: ErrorCode, message: impl Into<String>, detail: ErrorDetail) -> Refusal {
    code.error(message).with_detail(Box::new(detail))
}

impl Bus {
    /// An empty bus.
    #[must_use]
    pub fn new() -> Bus {
        let at = now();
        Bus {
            last_activity: AtomicU64::new(0),
            registry: RwLock::new(Registry {
                machines: HashMap::new(),
                by_connection: HashMap::new(),
                connections: 0,
                peak: 0,
                peak_at: at,
            }),
            started: Instant::now(),
            hot_counters: OnceLock::new(),
            started_at: at,
            counters: BusCounters::default(),
        }
    }

    fn registry(&self) -> RwLockWriteGuard<'_, Registry> {
        // Every critical section leaves both maps consistent.
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The event counters, from the server's metrics (every connection shares them).
    fn hot_counters(&self, metrics: &Metrics) -> &HotCounters {
        self.hot_counters.get_or_init(|| HotCounters {
            send_event_in: metrics.message_counter(Direction::In, SEND_EVENT),
            event_received_out: metrics.message_counter(Direction::Out, "EventReceived"),
        })
    }

    fn registry_read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn active(&self, at: Instant) {
        let nanos = u64::try_from(at.saturating_duration_since(self.started).as_nanos())
            .unwrap_or(u64::MAX);
        self.last_activity.fetch_max(nanos, Ordering::Relaxed);
    }

    /// Routes one valid event: the source must be registered on `conn`, the target on
    /// some connection, whose queue gets the EventReceived line around `raw_payload`.
    fn route(
        &self,
        conn: &ConnectionInfo,
        received: Instant,
        source: &str,
        target_id: &str,
        raw_payload: &str,
    ) -> Result<(), Refusal> {
        let handle = match self.lookup(conn, received, source, target_id) {
            Lookup::Target(handle) => handle,
            Lookup::SourceNotMine => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                return Err(refuse(
                    ErrorCode::SourceNotRegistered,
                    format!("source machine {source} is not registered on this connection"),
                    ErrorDetail {
                        machine_id: Some(source.to_owned()),
                        ..ErrorDetail::default()
                    },
                ));
            }
            Lookup::UnknownTarget => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                return Err(refuse(
                    ErrorCode::UnknownTarget,
                    format!("no machine {target_id} is registered"),
                    ErrorDetail {
                        target_machine_id: Some(target_id.to_owned()),
                        ..ErrorDetail::default()
                    },
                ));
            }
        };
        self.deliver(&handle, target_id, raw_payload)
    }

    /// The connection of `target`, if `source` is registered on `conn` and `target`
    /// anywhere (one lock for both).
    fn lookup(
        &self,
        conn: &ConnectionInfo,
        received: Instant,
        source: &str,
        target: &str,
    ) -> Lookup {
        self.active(received);
        let registry = self.registry_read();
        if registry
            .machines
            .get(source)
            .is_none_or(|(owner, _)| *owner != conn.id())
        {
            return Lookup::SourceNotMine;
        }
        match registry.machines.get(target) {
            Some((_, handle)) => Lookup::Target(handle.clone()),
            None => Lookup::UnknownTarget,
        }
    }

    /// Queues the EventReceived line around `raw_payload` on the target's connection.
    fn deliver(
        &self,
        handle: &ConnectionHandle,
        target_id: &str,
        raw_payload: &str,
    ) -> Result<(), Refusal> {
        match handle.send_str_parts(&event_received(raw_payload)) {
            Ok(()) => {
                self.counters.routed.fetch_add(1, Ordering::Relaxed);
                self.hot_counters(handle.metrics())
                    .event_received_out
                    .count();
                Ok(())
            }
            Err(SendError::QueueFull { .. }) => {
                // The NATS slow-consumer policy: the target goes, memory stays bounded.
                tracing::warn!(target = %target_id, connection = %handle.id(), "slow consumer: disconnecting");
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                self.counters.slow_consumers.fetch_add(1, Ordering::Relaxed);
                handle.close();
                Err(refuse(
                    ErrorCode::SlowConsumer,
                    format!(
                        "the connection of {target_id} fell behind and was closed; the event was dropped"
                    ),
                    ErrorDetail {
                        target_machine_id: Some(target_id.to_owned()),
                        ..ErrorDetail::default()
                    },
                ))
            }
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                Err(refuse(
                    ErrorCode::UnknownTarget,
                    format!("the connection of {target_id} is closing"),
                    ErrorDetail {
                        target_machine_id: Some(target_id.to_owned()),
                        ..ErrorDetail::default()
                    },
                ))
            }
        }
    }

    /// Routes a SendEvent without decoding it into a [`MachineEvent`], when it is valid:
    /// the payload is forwarded as received (it was checked to be JSON with the
    /// envelope), so the bus needs only the two ids and the event name, borrowed and
    /// checked against the catalogue's constraints, and a well-formed timestamp. `None`
    /// when the event does not decode or breaks a constraint: the caller takes the
    /// typed path, which says precisely why.
    ///
    /// The event's text is read twice, once to delimit it within the envelope and once
    /// here: the envelope's keys may come in any order, so what `Payload` holds is known
    /// only once `Type` has been read.
    ///
    /// The ids are checked only when routing fails: an id registered on a connection
    /// passed the checks at registration, so a routed event's ids are valid; a refused
    /// one's are checked before the refusal, so a malformed id is reported as malformed.
    fn route_borrowed(
        &self,
        conn: &ConnectionInfo,
        received: Instant,
        raw_payload: &str,
    ) -> Option<Result<(), Refusal>> {
        /// The fields of a MachineEvent routing reads. `Payload` is skipped (its JSON
        /// was checked with the envelope) but named, so that a duplicate fails here as
        /// it does in the generated type; unknown keys are ignored, as there.
        #[derive(serde::Deserialize)]
        struct EventRoute<'a> {
            #[serde(rename = "Payload", default)]
            _payload: Option<serde::de::IgnoredAny>,
            #[serde(rename = "SourceMachineId", borrow)]
            source: Cow<'a, str>,
            #[serde(rename = "TargetMachineId", borrow)]
            target: Cow<'a, str>,
            #[serde(rename = "EventName", borrow)]
            event_name: Cow<'a, str>,
            #[serde(
                rename = "Timestamp",
                with = "ipcspec_runtime::serde_as::As::<ipcspec_runtime::serde_as::Rfc3339>"
            )]
            _timestamp: time::OffsetDateTime,
        }
        let event = ipcspec_runtime::strict::from_str::<EventRoute<'_>>(raw_payload).ok()?;
        let mut errors = Vec::new();
        constraints::event_name(&event.event_name, &Path::Root, &mut errors);
        if !errors.is_empty() {
            return None;
        }
        if let Lookup::Target(handle) = self.lookup(conn, received, &event.source, &event.target) {
            return Some(self.deliver(&handle, &event.target, raw_payload));
        }
        constraints::machine_id(&event.source, &Path::Root, &mut errors);
        constraints::machine_id(&event.target, &Path::Root, &mut errors);
        if !errors.is_empty() {
            return None;
        }
        Some(self.route(conn, received, &event.source, &event.target, raw_payload))
    }

    /// The machines registered now, sorted.
    #[must_use]
    pub fn machines(&self) -> Vec<String> {
        let mut machines: Vec<String> = self.registry().machines.keys().cloned().collect();
        machines.sort();
        machines
    }

    /// The health record GetHealth answers.
    #[must_use]
    pub fn health(&self) -> HealthStatus {
        let registry = self.registry();
        HealthStatus {
            is_healthy: true,
            connection_count: registry.connections,
            registered_machines: u32::try_from(registry.machines.len()).unwrap_or(u32::MAX),
            last_activity_at: now()
                - self
                    .started
                    .elapsed()
                    .saturating_sub(std::time::Duration::from_nanos(
                        self.last_activity.load(Ordering::Relaxed),
                    )),
            error_message: None,
        }
    }

    /// The metrics record GetMetrics answers.
    #[must_use]
    pub fn metrics(&self) -> PerformanceMetrics {
        let registry = self.registry();
        PerformanceMetrics {
            started_at: self.started_at,
            uptime: self.started.elapsed(),
            connection_count: registry.connections,
            registered_machines: u32::try_from(registry.machines.len()).unwrap_or(u32::MAX),
            peak_connections: registry.peak,
            peak_connections_at: registry.peak_at,
        }
    }
}

/// Counters of the messages every event makes.
#[derive(Debug)]
struct HotCounters {
    send_event_in: MessageCounter,
    event_received_out: MessageCounter,
}

/// Where an event goes.
enum Lookup {
    /// To this connection.
    Target(ConnectionHandle),
    /// Nowhere: the source is not registered on the sending connection.
    SourceNotMine,
    /// Nowhere: no connection registered the target.
    UnknownTarget,
}

/// One received message being handled.
struct Call<'a> {
    bus: &'a Bus,
    conn: &'a ConnectionInfo,
    /// When handling began.
    received: Instant,
    correlation: Option<&'a str>,
    /// The payload exactly as received: an event is forwarded with these bytes (the
    /// catalogue: "the fields are those of the SendEvent, unchanged"), so routing does
    /// not serialize it again.
    raw_payload: &'a str,
}

/// The generated dispatcher has checked every payload against the catalogue before these
/// methods see it.
impl BusHandler for Call<'_> {
    type FollowUp = ();
    type Detail = Box<ErrorDetail>;

    async fn register(
        &self,
        _ctx: &MessageContext,
        payload: MachineRegistration,
    ) -> Answer<RegistrationResult> {
        let id = payload.machine_id;
        let me = self.conn.id();
        self.bus.active(self.received);
        let mut registry = self.bus.registry();
        match registry.machines.get(&id) {
            Some((owner, _)) if *owner == me => {}
            Some(_) => {
                return Err(refuse(
                    ErrorCode::MachineAlreadyRegistered,
                    format!("machine {id} is registered by another connection"),
                    ErrorDetail {
                        machine_id: Some(id),
                        ..ErrorDetail::default()
                    },
                ));
            }
            None => {
                let mine = registry.by_connection.entry(me).or_default();
                if mine.len() >= MAX_MACHINES_PER_CONNECTION {
                    return Err(refuse(
                        ErrorCode::RegistrationLimit,
                        format!(
                            "a connection may register at most {MAX_MACHINES_PER_CONNECTION} machines"
                        ),
                        ErrorDetail {
                            machine_id: Some(id),
                            ..ErrorDetail::default()
                        },
                    ));
                }
                mine.push(id.clone());
                registry
                    .machines
                    .insert(id.clone(), (me, self.conn.handle().clone()));
                tracing::info!(machine = %id, process = %payload.process_name, pid = payload.process_id, "machine registered");
            }
        }
        Ok(Handled::reply(RegistrationResult {
            machine_id: id,
            registered_at: now(),
        }))
    }

    async fn unregister(
        &self,
        _ctx: &MessageContext,
        payload: MachineUnregistration,
    ) -> Answer<()> {
        let id = payload.machine_id;
        let me = self.conn.id();
        self.bus.active(self.received);
        let mut registry = self.bus.registry();
        if registry
            .machines
            .get(&id)
            .is_none_or(|(owner, _)| *owner != me)
        {
            return Err(refuse(
                ErrorCode::MachineNotRegistered,
                format!("machine {id} is not registered by this connection"),
                ErrorDetail {
                    machine_id: Some(id),
                    ..ErrorDetail::default()
                },
            ));
        }
        registry.machines.remove(&id);
        if let Some(mine) = registry.by_connection.get_mut(&me) {
            mine.retain(|m| *m != id);
        }
        tracing::info!(machine = %id, "machine unregistered");
        Ok(Handled::done())
    }

    async fn send_event(&self, _ctx: &MessageContext, payload: MachineEvent) -> Answer<()> {
        self.bus.route(
            self.conn,
            self.received,
            &payload.source_machine_id,
            &payload.target_machine_id,
            self.raw_payload,
        )?;
        Ok(Handled::done())
    }

    async fn get_health(&self, _ctx: &MessageContext) -> Answer<HealthStatus> {
        Ok(Handled::reply(self.bus.health()))
    }

    async fn get_metrics(&self, _ctx: &MessageContext) -> Answer<PerformanceMetrics> {
        Ok(Handled::reply(self.bus.metrics()))
    }
}

/// The Error line (`None` if it cannot be encoded) and the metrics kind for a failed
/// dispatch.
fn dispatch_error(
    error: DispatchError<ErrorCode, Box<ErrorDetail>>,
    message_type: &str,
    correlation: Option<&str>,
) -> (Option<Bytes>, &'static str) {
    match error {
        DispatchError::Refused { error, .. } => {
            (refusal_line(error, message_type, correlation), "refused")
        }
        DispatchError::Unhandled(Unhandled::MalformedJson { path, source, .. }) => {
            let text = source.to_string();
            let (code, field) = match text.strip_prefix("missing field `") {
                Some(rest) => (
                    ErrorCode::MissingField,
                    rest.split('`').next().map(str::to_owned),
                ),
                None => (
                    ErrorCode::InvalidField,
                    (!path.is_empty() && path != ".").then_some(path),
                ),
            };
            let detail = ErrorDetail {
                message_type: Some(message_type.to_owned()),
                field,
                ..ErrorDetail::default()
            };
            (error_line(code, text, correlation, detail), "invalid_field")
        }
        DispatchError::Unhandled(Unhandled::Invalid { errors, .. }) => {
            let detail = ErrorDetail {
                message_type: Some(message_type.to_owned()),
                field: errors.errors().first().map(|e| e.path.clone()),
                ..ErrorDetail::default()
            };
            let line = error_line(
                ErrorCode::InvalidField,
                errors.to_string(),
                correlation,
                detail,
            );
            (line, "refused")
        }
        _ => (
            error_line(
                ErrorCode::UnknownType,
                format!("`{message_type}` is not a message a client may send"),
                correlation,
                ErrorDetail {
                    message_type: Some(message_type.to_owned()),
                    ..ErrorDetail::default()
                },
            ),
            "unknown_type",
        ),
    }
}

impl Service for Bus {
    async fn handle(&self, conn: &ConnectionInfo, frame: Bytes) -> Outcome {
        let started = Instant::now();
        if ipcspec_runtime::nesting::deeper_than(&frame, MAX_NESTING_DEPTH) {
            // The catalogue: INVALID_JSON, without CorrelationId (the line is not read).
            return Outcome::replies(error_line(
                ErrorCode::InvalidJson,
                format!(
                    "the line nests deeper than {MAX_NESTING_DEPTH} levels of arrays and objects"
                ),
                None,
                ErrorDetail::default(),
            ))
            .error("invalid_json");
        }
        let envelope = match ipcspec_runtime::strict::from_slice::<Envelope<&RawValue>>(&frame) {
            Ok(envelope) => envelope,
            Err(error) => {
                // Not an envelope: say why, with the Id if one can be read.
                #[derive(serde::Deserialize)]
                struct Probe {
                    #[serde(rename = "Id")]
                    id: Option<String>,
                    #[serde(rename = "Type")]
                    message_type: Option<serde_json::Value>,
                }
                let probe = serde_json::from_slice::<Probe>(&frame).ok();
                let (code, kind) = match &probe {
                    Some(p)
                        if !p
                            .message_type
                            .as_ref()
                            .is_some_and(serde_json::Value::is_string) =>
                    {
                        (ErrorCode::UnknownType, "unknown_type")
                    }
                    Some(_) => (ErrorCode::MissingField, "missing_field"),
                    None => (ErrorCode::InvalidJson, "invalid_json"),
                };
                let id = probe.and_then(|p| p.id);
                let field = (code == ErrorCode::MissingField).then(|| "Payload".to_owned());
                return Outcome::replies(error_line(
                    code,
                    format!("not a bus message: {error}"),
                    id.as_deref(),
                    ErrorDetail {
                        field,
                        ..ErrorDetail::default()
                    },
                ))
                .error(kind);
            }
        };
        let message_type = envelope.message_type.as_str();
        if message_type == SEND_EVENT {
            self.hot_counters(conn.metrics()).send_event_in.count();
        } else {
            let known = ipcspec_runtime::dispatch::find(MESSAGES, message_type).map(|m| m.name);
            conn.metrics()
                .record_message(Direction::In, known.unwrap_or("unknown"));
        }
        let correlation = envelope.id.as_deref();
        if message_type == SEND_EVENT
            && let Some(routed) = self.route_borrowed(conn, started, envelope.payload.get())
        {
            let mut outcome = Outcome::none();
            if let Err(refusal) = routed {
                if let Some(frame) = refusal_line(refusal, message_type, correlation) {
                    conn.metrics().record_message(Direction::Out, "Error");
                    outcome.frames.push(frame);
                }
                outcome.error = Some("refused");
            }
            conn.metrics().record_latency(started.elapsed());
            return outcome;
        }
        let call = Call {
            bus: self,
            conn,
            received: started,
            correlation,
            raw_payload: envelope.payload.get(),
        };
        let ctx = MessageContext::default();
        let result = dispatch_to_bus(&call, &ctx, message_type, envelope.payload).await;
        let mut outcome = Outcome::none();
        match result {
            Ok(Handled {
                reply: Some(reply), ..
            }) => {
                let frame = match &reply {
                    BusMessage::Registered(p) => line("Registered", p, call.correlation),
                    BusMessage::HealthStatus(p) => line("HealthStatus", p, call.correlation),
                    BusMessage::PerformanceMetrics(p) => {
                        line("PerformanceMetrics", p, call.correlation)
                    }
                    BusMessage::EventReceived(p) => line("EventReceived", p, call.correlation),
                    BusMessage::Error(p) => line("Error", p, call.correlation),
                };
                push_line(
                    &mut outcome,
                    conn,
                    reply.message_type(),
                    frame,
                    call.correlation,
                );
            }
            Ok(Handled { reply: None, .. }) => {}
            Err(error) => {
                if message_type == SEND_EVENT
                    && matches!(&error, DispatchError::Unhandled(Unhandled::Invalid { .. }))
                {
                    // An event that breaks a constraint is refused without routing.
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                }
                let (frame, kind) = dispatch_error(error, message_type, correlation);
                if let Some(frame) = frame {
                    conn.metrics().record_message(Direction::Out, "Error");
                    outcome.frames.push(frame);
                }
                outcome.error = Some(kind);
            }
        }
        conn.metrics().record_latency(started.elapsed());
        outcome
    }

    async fn on_bad_frame(&self, _conn: &ConnectionInfo, bad: BadFrame) -> Outcome {
        let code = match bad.kind {
            "line_too_long" => ErrorCode::LineTooLong,
            _ => ErrorCode::InvalidUtf8,
        };
        Outcome::replies(error_line(code, bad.detail, None, ErrorDetail::default())).error(bad.kind)
    }

    async fn on_connect(&self, _conn: &ConnectionInfo) {
        let mut registry = self.registry();
        registry.connections += 1;
        if registry.connections > registry.peak {
            registry.peak = registry.connections;
            registry.peak_at = now();
        }
    }

    async fn on_close(&self, conn: &ConnectionInfo, reason: CloseReason) {
        let mut registry = self.registry();
        registry.connections = registry.connections.saturating_sub(1);
        let machines = registry
            .by_connection
            .remove(&conn.id())
            .unwrap_or_default();
        for machine in &machines {
            registry.machines.remove(machine);
        }
        if !machines.is_empty() {
            tracing::info!(connection = %conn.id(), reason = reason.as_str(), ?machines, "connection closed; its machines are unregistered");
        }
    }
}

/// The line every connection gets when the bus stops (SHUTTING_DOWN); `None` (logged)
/// if it cannot be encoded.
#[must_use]
pub fn shutting_down_line() -> Option<Bytes> {
    error_line(
        ErrorCode::ShuttingDown,
        "the bus is stopping; reconnect and register again when it is back",
        None,
        ErrorDetail::default(),
    )
}

/// The refusal line for a connection beyond the limit (CONNECTION_LIMIT); `None` (logged)
/// if it cannot be encoded.
#[must_use]
pub fn connection_limit_line(max: usize) -> Option<Bytes> {
    error_line(
        ErrorCode::ConnectionLimit,
        format!("the bus already has {max} connections; retry later"),
        None,
        ErrorDetail::default(),
    )
}
