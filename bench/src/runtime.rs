//! Row (d), `runtime`, and the client of row (e), `durable`.
//!
//! The server is the project's runtime: [`Server`] on a
//! [`Listener`](ipcspec_runtime::transport::unix::Listener) with a [`Service`] that
//! decodes the generated [`Envelope`] strictly (payload kept raw), validates the envelope
//! id, dispatches through the generated [`dispatch_to_service`] to an in-memory
//! [`ServiceHandler`] (each method validates its payload against the catalogue's
//! constraints with [`Validate`] and returns `Ok(())`), and replies with an
//! ACKNOWLEDGMENT `Envelope<AcknowledgmentPayload>` whose `correlationId` is the request
//! id (`success: false` and the catalogue error code when decoding, validation or
//! dispatch fails).
//!
//! The client is the runtime's [`Client`]: round trips with [`Client::request`] (which
//! correlates the reply by `correlationId`), the reply decoded as the generated
//! `Envelope<AcknowledgmentPayload>`; throughput with [`Client::send`], the acks counted
//! from [`Inbound`](ipcspec_runtime::client::Inbound). Against the durable
//! `migration-service` the client first sends AGENT_STARTED and waits for its ack, and
//! ignores every inbound frame that is not an ACKNOWLEDGMENT of one of its requests
//! (the service pushes CONFIGURATION_UPDATE and STATUS_UPDATE after AGENT_STARTED).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use ipcspec_generated::migration::{
    self, AcknowledgmentPayload, AgentStartedPayload, BackupCompletedPayload,
    BackupProgressPayload, BackupStartedPayload, DelayRequestPayload, Envelope, ErrorCode,
    ErrorReportPayload, HandlerResult, ServiceHandler, UserActionPayload, UserActionType,
    constraints, dispatch_to_service,
};
use ipcspec_runtime::client::{Client, ClientConfig, JsonCorrelator};
use ipcspec_runtime::dispatch::MessageId;
use ipcspec_runtime::server::{ConnectionInfo, Outcome, Server, ServerConfig, Service};
use ipcspec_runtime::transport::unix::{Listener, ListenerOptions};
use ipcspec_runtime::validate;
use ipcspec_runtime::{DispatchError, Handled, MessageContext, Unhandled, strict};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::measure::{ClientReport, Tally};
use crate::wire;
use crate::{ClientOptions, Mode};

/// How long a request waits for its ack (the catalogue's ACKNOWLEDGMENT_TIMEOUT_SECONDS).
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long pipelined requests may take to be acknowledged, all together.
const THROUGHPUT_TIMEOUT: Duration = Duration::from_secs(300);

/// A [`ServiceHandler`] that keeps nothing: the generated dispatcher has checked every
/// payload against the catalogue's constraints, so each method accepts it.
#[derive(Debug, Default)]
struct InMemoryHandler;

/// What an [`InMemoryHandler`] method returns.
type Accepted = HandlerResult<()>;

impl ServiceHandler for InMemoryHandler {
    type FollowUp = ();
    type Detail = ();

    async fn agent_started(&self, _: &MessageContext, _: AgentStartedPayload) -> Accepted {
        Ok(Handled::done())
    }

    async fn backup_started(&self, _: &MessageContext, _: BackupStartedPayload) -> Accepted {
        Ok(Handled::done())
    }

    async fn backup_progress(&self, _: &MessageContext, _: BackupProgressPayload) -> Accepted {
        Ok(Handled::done())
    }

    async fn backup_completed(&self, _: &MessageContext, _: BackupCompletedPayload) -> Accepted {
        Ok(Handled::done())
    }

    async fn delay_request(&self, _: &MessageContext, _: DelayRequestPayload) -> Accepted {
        Ok(Handled::done())
    }

    async fn user_action(&self, _: &MessageContext, _: UserActionPayload) -> Accepted {
        Ok(Handled::done())
    }

    async fn error_report(&self, _: &MessageContext, _: ErrorReportPayload) -> Accepted {
        Ok(Handled::done())
    }

    async fn heartbeat(&self, _: &MessageContext) -> Accepted {
        Ok(Handled::done())
    }

    async fn acknowledgment(&self, _: &MessageContext, _: AcknowledgmentPayload) -> Accepted {
        Ok(Handled::done())
    }
}

/// The [`Service`]: decode, validate, dispatch, acknowledge.
#[derive(Debug, Default)]
struct MigrationService {
    handler: InMemoryHandler,
    acks: AtomicU64,
}

/// The catalogue error code for a failed dispatch.
fn error_code(error: &DispatchError<ErrorCode>) -> String {
    let code = match error {
        DispatchError::Unhandled(Unhandled::UnknownType { .. } | Unhandled::NotReceived { .. }) => {
            ErrorCode::UnknownMessageType
        }
        DispatchError::Refused { error, .. } => error.code,
        _ => ErrorCode::InvalidMessage,
    };
    code.as_str().to_owned()
}

/// Checks the envelope id against the catalogue's `MessageId` constraints.
fn validate_id(id: &str) -> Result<(), String> {
    validate::check_str(id, constraints::message_id).map_err(|errors| format!("`id`: {errors}"))
}

impl MigrationService {
    /// Handles one decoded request; the ack payload to send.
    async fn process(&self, conn: &ConnectionInfo, envelope: &Envelope) -> AcknowledgmentPayload {
        if let Err(message) = validate_id(&envelope.id) {
            return failure(ErrorCode::InvalidMessage.as_str().to_owned(), message);
        }
        let ctx = MessageContext {
            message_id: Some(MessageId::Text(envelope.id.clone())),
            correlation_id: None,
            timestamp: Some(envelope.timestamp),
            peer: conn.peer().unwrap_or_default(),
        };
        match dispatch_to_service(
            &self.handler,
            &ctx,
            &envelope.message_type,
            &envelope.payload,
        )
        .await
        {
            Ok(_) => AcknowledgmentPayload {
                success: true,
                error_code: None,
                error_message: None,
            },
            Err(error) => failure(error_code(&error), error.to_string()),
        }
    }
}

fn failure(code: String, message: String) -> AcknowledgmentPayload {
    AcknowledgmentPayload {
        success: false,
        error_code: Some(code),
        error_message: Some(message.chars().take(1000).collect()),
    }
}

impl Service for MigrationService {
    async fn handle(&self, conn: &ConnectionInfo, frame: Bytes) -> Outcome {
        let envelope: Envelope = match strict::from_slice(&frame) {
            Ok(envelope) => envelope,
            // Without a readable id there is nothing to acknowledge.
            Err(_) => return Outcome::none().error("invalid_message"),
        };
        let payload = self.process(conn, &envelope).await;
        let failed = !payload.success;
        let ack = Envelope {
            id: wire::ack_id(self.acks.fetch_add(1, Ordering::Relaxed) + 1),
            message_type: "ACKNOWLEDGMENT".to_owned(),
            timestamp: OffsetDateTime::now_utc(),
            payload,
            correlation_id: Some(envelope.id),
        };
        match serde_json::to_vec(&ack) {
            Ok(bytes) if failed => Outcome::reply(bytes).error("rejected"),
            Ok(bytes) => Outcome::reply(bytes),
            Err(_) => Outcome::none().error("encode"),
        }
    }
}

/// Serves until killed.
pub async fn serve(socket: &Path) -> anyhow::Result<()> {
    let listener = Listener::bind(socket, ListenerOptions::default())
        .await
        .with_context(|| format!("binding {}", socket.display()))?;
    crate::announce(socket);
    let server = Server::new(
        ServerConfig::from_profile(&migration::WIRE),
        MigrationService::default(),
    );
    server.serve(listener).await;
    Ok(())
}

/// Builds the requests from the generated types.
struct Requests {
    user: String,
    timestamp: OffsetDateTime,
}

impl Requests {
    fn new(user: &str) -> anyhow::Result<Self> {
        Ok(Requests {
            user: user.to_owned(),
            timestamp: OffsetDateTime::parse(wire::REQUEST_TIMESTAMP, &Rfc3339)?,
        })
    }

    /// Request number `n`, serialized; the same bytes as [`wire::request_body`].
    fn body(&self, n: u64) -> anyhow::Result<Bytes> {
        let envelope = Envelope {
            id: wire::request_id(n),
            message_type: "USER_ACTION".to_owned(),
            timestamp: self.timestamp,
            payload: UserActionPayload {
                user_id: self.user.clone(),
                action: UserActionType::StatusViewed,
                backup_id: None,
                details: Some([("screen".to_owned(), "status".to_owned())].into()),
            },
            correlation_id: None,
        };
        Ok(Bytes::from(serde_json::to_vec(&envelope)?))
    }
}

/// Decodes a reply as the generated ack envelope; whether it acknowledges `expected`
/// successfully.
fn acknowledges(reply: &[u8], expected: &str) -> anyhow::Result<(String, bool)> {
    let ack: Envelope<AcknowledgmentPayload> =
        strict::from_slice(reply).context("decoding an acknowledgment")?;
    let correlation = ack.correlation_id.unwrap_or_default();
    let ok = ack.message_type == "ACKNOWLEDGMENT" && ack.payload.success && correlation == expected;
    Ok((correlation, ok))
}

/// Sends AGENT_STARTED and requires a successful ack.
async fn start_agent(client: &Client, user: &str) -> anyhow::Result<()> {
    let reply = client
        .request(Bytes::from(wire::agent_started_body(user)), ACK_TIMEOUT)
        .await
        .context("AGENT_STARTED")?;
    let view = wire::AckView::parse(&reply)?;
    if !view.is_ack() || !view.succeeded() {
        bail!(
            "AGENT_STARTED was refused: {}",
            String::from_utf8_lossy(&reply)
        );
    }
    Ok(())
}

/// Runs the client against the runtime server (`durable == false`) or the
/// `migration-service` (`durable == true`).
pub async fn client(options: &ClientOptions, durable: bool) -> anyhow::Result<ClientReport> {
    let name = if durable { "durable" } else { "runtime" };
    let config = ClientConfig {
        inbound_queue_capacity: 4096,
        ..ClientConfig::from_profile(&migration::WIRE)
    };
    let (client, mut inbound) = Client::connect(
        &options.socket,
        Duration::from_secs(5),
        config,
        JsonCorrelator::ENVELOPE,
    )
    .await
    .with_context(|| format!("connecting to {}", options.socket.display()))?;
    if durable {
        start_agent(&client, &options.user).await?;
    }
    let requests = Requests::new(&options.user)?;
    let first = options.warmup;
    let mut tally = Tally::new(first, options.count);
    match options.mode {
        Mode::Rtt => {
            // Pushed frames (durable: CONFIGURATION_UPDATE, STATUS_UPDATE) are dropped.
            tokio::spawn(async move { while inbound.recv().await.is_some() {} });
            for n in 0..first {
                client.request(requests.body(n)?, ACK_TIMEOUT).await?;
            }
            let mut samples = Vec::with_capacity(options.count as usize);
            for n in first..first + options.count {
                let expected = wire::request_id(n);
                let start = Instant::now();
                let reply = client.request(requests.body(n)?, ACK_TIMEOUT).await?;
                let (correlation, ok) = acknowledges(&reply, &expected)?;
                samples.push(start.elapsed());
                tally.record(Some(&correlation), ok);
            }
            Ok(ClientReport::rtt(name, options.warmup, &samples, &tally))
        }
        Mode::Throughput => {
            for n in 0..first {
                client.request(requests.body(n)?, ACK_TIMEOUT).await?;
            }
            let count = options.count;
            let start = Instant::now();
            let write_all = async {
                for n in first..first + count {
                    client.send(requests.body(n)?).await?;
                }
                anyhow::Ok(())
            };
            let read_all = async {
                while !tally.complete() {
                    let frame = inbound
                        .recv()
                        .await
                        .context("the connection closed before every ack arrived")?;
                    let view = wire::AckView::parse(&frame)?;
                    if view.is_ack() {
                        tally.record(view.correlation_id, view.succeeded());
                    }
                }
                anyhow::Ok(start.elapsed())
            };
            let ((), elapsed) = tokio::time::timeout(THROUGHPUT_TIMEOUT, async {
                tokio::try_join!(write_all, read_all)
            })
            .await
            .context("throughput run timed out")??;
            Ok(ClientReport::throughput(
                name,
                options.warmup,
                count,
                elapsed,
                &tally,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_requests_are_the_shared_bytes() {
        let requests = Requests::new("root").unwrap();
        assert_eq!(requests.body(3).unwrap(), wire::request_body(3, "root"));
    }

    #[test]
    fn ids_are_validated() {
        validate_id("b-000000000001").unwrap();
        assert!(validate_id("").is_err());
        assert!(validate_id("with space").is_err());
    }
}
