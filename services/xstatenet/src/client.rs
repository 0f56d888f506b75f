//! The client library: the seed's `InterProcessClient` operations over the bus socket.
//!
//! [`BusClient::connect`] keeps one connection that survives the bus restarting: after
//! every reconnect it registers again every machine registered so far (the runtime's
//! `ReconnectingClient` with an `on_reconnect` hook), so a process's machines come back
//! without help. Events are at most once (the catalogue's delivery guarantee): an event
//! sent while disconnected fails with [`BusClientError::Disconnected`] instead of being
//! queued.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use ipcspec_generated::xstatenet::{
    self as catalogue, BusError, Envelope, HealthStatus, MachineEvent, MachineRegistration,
    PerformanceMetrics,
};
use ipcspec_runtime::client::reconnect::ReconnectInbound;
use ipcspec_runtime::client::{
    ClientError, JsonCorrelator, ReconnectConfig, ReconnectError, ReconnectPolicy,
    ReconnectingClient,
};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// The bus's correlation keys.
const CORRELATOR: JsonCorrelator = JsonCorrelator {
    id_field: "Id",
    correlation_field: "CorrelationId",
};

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusClientError {
    /// Not connected right now (the client is reconnecting).
    #[error("not connected to the bus")]
    Disconnected,
    /// The bus answered with an Error.
    #[error("the bus refused: {}: {}", .0.error_code, .0.message)]
    Refused(BusError),
    /// The connection failed or timed out.
    #[error(transparent)]
    Connection(#[from] ClientError),
    /// Reconnecting failed for good.
    #[error(transparent)]
    Reconnect(#[from] ReconnectError),
    /// The bus answered something this client does not understand.
    #[error("unexpected answer from the bus: {0}")]
    Protocol(String),
    /// A message could not be encoded, so nothing was sent.
    #[error("cannot encode the message: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What arrives unasked: events for this process's machines, and unsolicited errors.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// An event for one of this process's machines.
    Event(MachineEvent),
    /// An Error the bus sent without being asked (e.g. a SLOW_CONSUMER notice).
    Error(BusError),
}

/// A connection to the bus; cheap to clone.
#[derive(Debug, Clone)]
pub struct BusClient {
    client: ReconnectingClient,
    machines: Arc<Mutex<Vec<MachineRegistration>>>,
    timeout: Duration,
}

/// The stream of [`Incoming`] messages.
#[derive(Debug)]
pub struct Events {
    inbound: ReconnectInbound,
}

fn line<P: Serialize>(
    message_type: &str,
    payload: P,
    id: Option<String>,
) -> Result<Bytes, serde_json::Error> {
    let envelope = Envelope {
        id,
        message_type: message_type.to_owned(),
        payload,
        correlation_id: None,
    };
    serde_json::to_vec(&envelope).map(Bytes::from)
}

fn new_id() -> String {
    format!("c{}", std::process::id()) + &format!("-{:x}", rand_u64())
}

/// A fresh id without a random-number dependency: time and a counter.
fn rand_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos().into());
    (nanos << 20) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}

fn registration(machine_id: &str) -> MachineRegistration {
    MachineRegistration {
        machine_id: machine_id.to_owned(),
        process_name: std::env::args()
            .next()
            .and_then(|a| a.rsplit('/').next().map(str::to_owned))
            .unwrap_or_else(|| "client".to_owned()),
        process_id: std::process::id(),
        registered_at: time::OffsetDateTime::now_utc(),
    }
}

impl BusClient {
    /// Connects to the bus at `socket` (retrying with the runtime's default backoff).
    ///
    /// # Errors
    ///
    /// [`BusClientError::Reconnect`] when no attempt succeeded.
    pub async fn connect(
        socket: impl AsRef<std::path::Path>,
    ) -> Result<(BusClient, Events), BusClientError> {
        let machines: Arc<Mutex<Vec<MachineRegistration>>> = Arc::default();
        let on_reconnect = {
            let machines = Arc::clone(&machines);
            Arc::new(move |_generation: u64| {
                machines
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    // A registration that cannot be encoded is logged and left out, never
                    // sent as an empty line.
                    .filter_map(|m| {
                        line("Register", m, None)
                            .inspect_err(|error| tracing::error!(%error, machine = %m.machine_id, "cannot encode a re-registration"))
                            .ok()
                    })
                    .collect()
            })
        };
        let profile = ReconnectConfig::from_profile(&catalogue::WIRE);
        let config = ReconnectConfig {
            policy: ReconnectPolicy {
                max_attempts: 20,
                initial_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(5),
                ..profile.policy.clone()
            },
            on_reconnect: Some(on_reconnect),
            ..profile
        };
        let (client, inbound) = ReconnectingClient::connect(socket, config, CORRELATOR).await?;
        Ok((
            BusClient {
                client,
                machines,
                timeout: Duration::from_millis(u64::from(catalogue::REQUEST_TIMEOUT_MS)),
            },
            Events { inbound },
        ))
    }

    /// Sends `message_type` with `payload` and an `Id`, and returns the answer's envelope.
    async fn request<P: Serialize>(
        &self,
        message_type: &str,
        payload: P,
    ) -> Result<Value, BusClientError> {
        let connection = self.client.client().ok_or(BusClientError::Disconnected)?;
        let reply = connection
            .request(line(message_type, payload, Some(new_id()))?, self.timeout)
            .await?;
        let value: Value =
            serde_json::from_slice(&reply).map_err(|e| BusClientError::Protocol(e.to_string()))?;
        if value["Type"] == "Error" {
            let error: BusError = serde_json::from_value(value["Payload"].clone())
                .map_err(|e| BusClientError::Protocol(e.to_string()))?;
            return Err(BusClientError::Refused(error));
        }
        Ok(value)
    }

    /// Registers `machine_id` for this process (and again after every reconnect).
    ///
    /// # Errors
    ///
    /// [`BusClientError::Refused`] (MACHINE_ALREADY_REGISTERED, ...), connection errors.
    pub async fn register(&self, machine_id: &str) -> Result<(), BusClientError> {
        let registration = registration(machine_id);
        let reply = self.request("Register", &registration).await?;
        if reply["Type"] != "Registered" {
            return Err(BusClientError::Protocol(reply.to_string()));
        }
        let mut machines = self.machines.lock().unwrap_or_else(PoisonError::into_inner);
        if !machines.iter().any(|m| m.machine_id == machine_id) {
            machines.push(registration);
        }
        Ok(())
    }

    /// Sends an event from `source` (a machine of this process) to `target`.
    ///
    /// # Errors
    ///
    /// [`BusClientError::Disconnected`] while reconnecting (events are not queued).
    /// Refusals (UNKNOWN_TARGET, ...) arrive later on [`Events`].
    pub async fn send_event(
        &self,
        source: &str,
        target: &str,
        event: &str,
        payload: Option<Value>,
    ) -> Result<(), BusClientError> {
        let connection = self.client.client().ok_or(BusClientError::Disconnected)?;
        let event = MachineEvent {
            source_machine_id: source.to_owned(),
            target_machine_id: target.to_owned(),
            event_name: event.to_owned(),
            payload: payload.map(Some),
            timestamp: time::OffsetDateTime::now_utc(),
        };
        connection.send(line("SendEvent", &event, None)?).await?;
        Ok(())
    }

    /// The bus's health.
    ///
    /// # Errors
    ///
    /// Connection errors, an answer that is not HealthStatus.
    pub async fn health(&self) -> Result<HealthStatus, BusClientError> {
        let reply = self.request("GetHealth", serde_json::json!({})).await?;
        serde_json::from_value(reply["Payload"].clone())
            .map_err(|e| BusClientError::Protocol(e.to_string()))
    }

    /// The bus's performance metrics.
    ///
    /// # Errors
    ///
    /// Connection errors, an answer that is not PerformanceMetrics.
    pub async fn metrics(&self) -> Result<PerformanceMetrics, BusClientError> {
        let reply = self.request("GetMetrics", serde_json::json!({})).await?;
        serde_json::from_value(reply["Payload"].clone())
            .map_err(|e| BusClientError::Protocol(e.to_string()))
    }

    /// Waits until the client is connected (after a bus restart, for example).
    pub async fn connected(&self) {
        let mut status = self.client.status();
        let _ = status
            .wait_for(|s| {
                matches!(
                    s,
                    ipcspec_runtime::client::reconnect::Status::Connected { .. }
                )
            })
            .await;
    }
}

impl Events {
    /// The next event or unsolicited error; `None` once the client gave up or closed.
    pub async fn recv(&mut self) -> Option<Incoming> {
        loop {
            let frame = self.inbound.recv().await?.ok()?;
            let Ok(envelope) = serde_json::from_slice::<Envelope<&RawValue>>(&frame) else {
                continue;
            };
            match envelope.message_type.as_str() {
                "EventReceived" => {
                    if let Ok(event) = serde_json::from_str(envelope.payload.get()) {
                        return Some(Incoming::Event(event));
                    }
                }
                "Error" => {
                    if let Ok(error) = serde_json::from_str(envelope.payload.get()) {
                        return Some(Incoming::Error(error));
                    }
                }
                // Registered after a reconnect, and anything else, are not for the caller.
                _ => {}
            }
        }
    }

    /// Waits up to `timeout` for an event named `name` (the seed's `WaitForEventAsync`),
    /// passing over others.
    pub async fn wait_for(&mut self, name: &str, timeout: Duration) -> Option<MachineEvent> {
        tokio::time::timeout(timeout, async {
            while let Some(incoming) = self.recv().await {
                if let Incoming::Event(event) = incoming
                    && event.event_name == name
                {
                    return Some(event);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }
}
