//! What validation costs: the same USER_ACTION frame decoded the way the runtime row's
//! server does it (strict envelope with a raw payload, then the payload through the
//! generated dispatcher), with and without checking the catalogue's constraints, in
//! this process, many times. The difference is set against the runtime row's round trip
//! so the report says whether validation dominates it (it must not).

use std::future::Future;
use std::hint::black_box;
use std::time::Instant;

use ipcspec_generated::migration::{
    AcknowledgmentPayload, AgentStartedPayload, BackupCompletedPayload, BackupProgressPayload,
    BackupStartedPayload, DelayRequestPayload, Envelope, ErrorReportPayload, ServiceHandler,
    UserActionPayload, dispatch_to_service,
};
use ipcspec_runtime::validate::Validate;
use ipcspec_runtime::{HandlerError, MessageContext, strict};
use serde::Serialize;
use serde_json::value::RawValue;

/// Nanoseconds per message, median of several batches.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ValidationCost {
    /// Decoding the envelope and the payload.
    pub decode_ns: f64,
    /// Decoding and checking every constraint (payload and envelope id).
    pub decode_and_validate_ns: f64,
}

impl ValidationCost {
    /// What validation adds per message.
    #[must_use]
    pub fn validate_ns(&self) -> f64 {
        (self.decode_and_validate_ns - self.decode_ns).max(0.0)
    }
}

/// A handler that accepts everything, validating or not.
struct Handler {
    validate: bool,
}

impl Handler {
    fn check(&self, payload: &impl Validate) -> Result<(), HandlerError> {
        if self.validate {
            payload
                .validate()
                .map_err(|errors| HandlerError::new("INVALID_MESSAGE", errors.to_string()))?;
        }
        black_box(payload);
        Ok(())
    }
}

impl ServiceHandler for Handler {
    async fn agent_started(
        &self,
        _: &MessageContext,
        p: AgentStartedPayload,
    ) -> Result<(), HandlerError> {
        self.check(&p)
    }
    async fn backup_started(
        &self,
        _: &MessageContext,
        p: BackupStartedPayload,
    ) -> Result<(), HandlerError> {
        self.check(&p)
    }
    async fn backup_progress(
        &self,
        _: &MessageContext,
        p: BackupProgressPayload,
    ) -> Result<(), HandlerError> {
        self.check(&p)
    }
    async fn backup_completed(
        &self,
        _: &MessageContext,
        p: BackupCompletedPayload,
    ) -> Result<(), HandlerError> {
        self.check(&p)
    }
    async fn delay_request(
        &self,
        _: &MessageContext,
        p: DelayRequestPayload,
    ) -> Result<(), HandlerError> {
        self.check(&p)
    }
    async fn user_action(
        &self,
        _: &MessageContext,
        p: UserActionPayload,
    ) -> Result<(), HandlerError> {
        self.check(&p)
    }
    async fn error_report(
        &self,
        _: &MessageContext,
        p: ErrorReportPayload,
    ) -> Result<(), HandlerError> {
        self.check(&p)
    }
    async fn heartbeat(&self, _: &MessageContext) -> Result<(), HandlerError> {
        Ok(())
    }
    async fn acknowledgment(
        &self,
        _: &MessageContext,
        p: AcknowledgmentPayload,
    ) -> Result<(), HandlerError> {
        self.check(&p)
    }
}

/// Handles `frame` once: decode, dispatch, and (with `validate`) check constraints. The
/// dispatcher's future is ready at once (the handler never waits), so it is polled once
/// with a no-op waker rather than through a runtime.
fn handle_once(handler: &Handler, frame: &[u8]) -> bool {
    let Ok(envelope) = strict::from_slice::<Envelope<&RawValue>>(frame) else {
        return false;
    };
    if handler.validate
        && ipcspec_runtime::validate::check_str(
            &envelope.id,
            ipcspec_generated::migration::constraints::message_id,
        )
        .is_err()
    {
        return false;
    }
    let ctx = MessageContext::default();
    let future = dispatch_to_service(handler, &ctx, &envelope.message_type, envelope.payload);
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    matches!(
        future.as_mut().poll(&mut context),
        std::task::Poll::Ready(Ok(_))
    )
}

/// Measures decoding with and without validation of `frame`, `iterations` times per
/// batch, returning the median batch of each.
///
/// # Errors
///
/// When the frame does not decode (a broken benchmark, not a slow one).
pub fn measure(frame: &[u8], iterations: u32) -> anyhow::Result<ValidationCost> {
    let mut medians = [0.0_f64; 2];
    for (slot, validate) in [(0, false), (1, true)] {
        let handler = Handler { validate };
        if !handle_once(&handler, frame) {
            anyhow::bail!("the benchmark frame does not decode");
        }
        let mut batches: Vec<f64> = (0..7)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..iterations {
                    black_box(handle_once(&handler, black_box(frame)));
                }
                started.elapsed().as_secs_f64() * 1e9 / f64::from(iterations)
            })
            .collect();
        batches.sort_by(f64::total_cmp);
        medians[slot] = batches[batches.len() / 2];
    }
    Ok(ValidationCost {
        decode_ns: medians[0],
        decode_and_validate_ns: medians[1],
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_benchmark_frame_decodes_and_validates() {
        let frame = crate::wire::request_body(7, "root");
        let cost = super::measure(&frame, 10).unwrap();
        assert!(cost.decode_ns > 0.0 && cost.decode_and_validate_ns > 0.0);
    }
}
