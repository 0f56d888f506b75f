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
    BackupStartedPayload, DelayRequestPayload, Envelope, ErrorReportPayload, HandlerResult,
    ServiceHandler, UserActionPayload, dispatch_to_service,
};
use ipcspec_runtime::{Handled, MessageContext, dispatch, strict};
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

/// A handler that accepts everything: the generated dispatcher has checked the payload
/// before calling it.
struct Handler;

/// What a [`Handler`] method returns.
type Accepted = HandlerResult<()>;

impl ServiceHandler for Handler {
    type FollowUp = ();
    type Detail = ();

    async fn agent_started(&self, _: &MessageContext, p: AgentStartedPayload) -> Accepted {
        black_box(p);
        Ok(Handled::done())
    }
    async fn backup_started(&self, _: &MessageContext, p: BackupStartedPayload) -> Accepted {
        black_box(p);
        Ok(Handled::done())
    }
    async fn backup_progress(&self, _: &MessageContext, p: BackupProgressPayload) -> Accepted {
        black_box(p);
        Ok(Handled::done())
    }
    async fn backup_completed(&self, _: &MessageContext, p: BackupCompletedPayload) -> Accepted {
        black_box(p);
        Ok(Handled::done())
    }
    async fn delay_request(&self, _: &MessageContext, p: DelayRequestPayload) -> Accepted {
        black_box(p);
        Ok(Handled::done())
    }
    async fn user_action(&self, _: &MessageContext, p: UserActionPayload) -> Accepted {
        black_box(p);
        Ok(Handled::done())
    }
    async fn error_report(&self, _: &MessageContext, p: ErrorReportPayload) -> Accepted {
        black_box(p);
        Ok(Handled::done())
    }
    async fn heartbeat(&self, _: &MessageContext) -> Accepted {
        Ok(Handled::done())
    }
    async fn acknowledgment(&self, _: &MessageContext, p: AcknowledgmentPayload) -> Accepted {
        black_box(p);
        Ok(Handled::done())
    }
}

/// Handles `frame` once. Without `validate`: the envelope, then the USER_ACTION payload
/// decoded as the dispatcher decodes it. With `validate`: the envelope id checked, then
/// the generated dispatcher (decode, constraint check, handler). The dispatcher's future
/// is ready at once (the handler never waits), so it is polled once with a no-op waker
/// rather than through a runtime.
fn handle_once(frame: &[u8], validate: bool) -> bool {
    let Ok(envelope) = strict::from_slice::<Envelope<&RawValue>>(frame) else {
        return false;
    };
    if !validate {
        return dispatch::decode_json::<UserActionPayload>("USER_ACTION", envelope.payload)
            .map(black_box)
            .is_ok();
    }
    if ipcspec_runtime::validate::check_str(
        &envelope.id,
        ipcspec_generated::migration::constraints::message_id,
    )
    .is_err()
    {
        return false;
    }
    let ctx = MessageContext::default();
    let future = dispatch_to_service(&Handler, &ctx, &envelope.message_type, envelope.payload);
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
        if !handle_once(frame, validate) {
            anyhow::bail!("the benchmark frame does not decode");
        }
        let mut batches: Vec<f64> = (0..7)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..iterations {
                    black_box(handle_once(black_box(frame), validate));
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
