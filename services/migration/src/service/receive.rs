//! The receive pipeline: a frame in, its acknowledgment and follow-ups out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use ipcspec_generated::migration::{
    ErrorCode, MESSAGES, UNATTRIBUTABLE_MESSAGE, dispatch_to_service,
};
use ipcspec_runtime::dispatch::MessageId;
use ipcspec_runtime::server::{CloseReason, ConnectionInfo, Direction, Outcome, Service};
use ipcspec_runtime::{DispatchError, MessageContext};
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
                return Outcome::reply(wire::ack(&id, Err((ErrorCode::InvalidMessage, error))))
                    .error("invalid_message");
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
            let code = error.code.parse().unwrap_or(ErrorCode::InternalError);
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
