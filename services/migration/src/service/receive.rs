//! The receive pipeline: a frame in, its acknowledgment and follow-ups out.

use std::time::Instant;

use bytes::Bytes;
use ipcspec_generated::migration::{
    ErrorCode, MESSAGES, UNATTRIBUTABLE_MESSAGE, dispatch_to_service,
};
use ipcspec_runtime::dispatch::MessageId;
use ipcspec_runtime::server::{CloseReason, ConnectionInfo, Direction, Outcome, Service};
use ipcspec_runtime::{DispatchError, Handled, MessageContext, Unhandled};
use tracing::Instrument;

use super::MigrationService;
use super::call::Call;
use crate::identity::Directory;
use crate::wire::{self, Received};

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
                let mut outcome = Outcome::none().error("invalid_message");
                push_ack(
                    &mut outcome,
                    conn,
                    &id,
                    Err((ErrorCode::InvalidMessage, error)),
                );
                return outcome;
            }
            Received::Unreadable { error } => {
                tracing::warn!(%error, "refusing a frame whose id cannot be read");
                conn.metrics().record_message(Direction::In, "invalid");
                return match wire::unattributable(&error) {
                    Ok(answer) => {
                        conn.metrics()
                            .record_message(Direction::Out, UNATTRIBUTABLE_MESSAGE);
                        Outcome::reply(answer).error("invalid_message")
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot encode the answer to an unreadable frame");
                        Outcome::none().error("internal")
                    }
                };
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
                Ok(Handled { then, close, .. }) => {
                    if acknowledged {
                        push_ack(&mut outcome, conn, &envelope.id, Ok(()));
                    }
                    for follow_up in then {
                        conn.metrics()
                            .record_message(Direction::Out, &follow_up.message_type);
                        outcome.frames.push(follow_up.frame);
                    }
                    outcome.close = close;
                }
                Err(error) => {
                    let (code, detail, kind, close) = classify(error);
                    if code == ErrorCode::DuplicateMessage {
                        tracing::debug!(%detail, "duplicate message");
                    } else {
                        tracing::warn!(code = code.as_str(), %detail, "message refused");
                    }
                    outcome.error = Some(kind);
                    if acknowledged {
                        push_ack(&mut outcome, conn, &envelope.id, Err((code, detail)));
                    }
                    outcome.close = close;
                }
            }
            outcome
        }
        .instrument(span)
        .await
    }
}

/// The ACKNOWLEDGMENT of `id` queued in `outcome`; one that cannot be encoded is an
/// internal error, logged and counted (`encode_failed`), never an empty frame.
fn push_ack(
    outcome: &mut Outcome,
    conn: &ConnectionInfo,
    id: &str,
    result: Result<(), (ErrorCode, String)>,
) {
    match wire::ack(id, result) {
        Ok(frame) => {
            conn.metrics()
                .record_message(Direction::Out, "ACKNOWLEDGMENT");
            outcome.frames.push(frame);
        }
        Err(error) => {
            tracing::error!(id, %error, "cannot encode an acknowledgment; none sent");
            outcome.error = Some("encode_failed");
        }
    }
}

/// The catalogue error, its detail, the metrics kind of a dispatch failure, and whether
/// the connection closes after it.
fn classify(error: DispatchError<ErrorCode>) -> (ErrorCode, String, &'static str, bool) {
    match error {
        DispatchError::Refused { error, .. } => {
            let kind = match error.code {
                ErrorCode::DuplicateMessage => "duplicate",
                ErrorCode::UserMismatch => "user_mismatch",
                ErrorCode::InvalidMessage => "invalid_message",
                ErrorCode::InternalError => "internal",
                _ => "refused",
            };
            (error.code, error.message, kind, error.close)
        }
        DispatchError::Unhandled(
            unhandled @ (Unhandled::MalformedJson { .. }
            | Unhandled::MalformedBinary { .. }
            | Unhandled::Invalid { .. }),
        ) => (
            ErrorCode::InvalidMessage,
            unhandled.to_string(),
            "invalid_message",
            false,
        ),
        DispatchError::Unhandled(
            unhandled @ (Unhandled::UnknownType { .. }
            | Unhandled::UnknownCode { .. }
            | Unhandled::NotReceived { .. }),
        ) => (
            ErrorCode::UnknownMessageType,
            unhandled.to_string(),
            "unknown_type",
            false,
        ),
        DispatchError::Unhandled(unhandled) => (
            ErrorCode::InternalError,
            unhandled.to_string(),
            "internal",
            false,
        ),
    }
}
