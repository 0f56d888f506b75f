//! [`Outbox`]: one connection's outbound queue, bounded in frames and in bytes, that any
//! number of tasks fill and one writer empties.
//!
//! A broker fans events in from many connections to one; the queue is where they meet.
//! It is a byte buffer rather than a channel of frames because that is what the writer
//! needs and what fan-in makes cheap:
//!
//! - **A push frames the body straight into the buffer** ([`Framing::encode_parts`]), so
//!   a routed event is copied once, from the sender's read buffer to the target's queue,
//!   with no allocation of its own and nothing freed on another thread.
//! - **The writer takes everything queued at once** by swapping the buffer with a spare
//!   one, and writes it with one call: under load a write carries many frames, and the
//!   writer is woken only when a push finds the queue empty.
//! - **Bounded in bytes as well as frames**, as NATS bounds a client's pending bytes: a
//!   push that would exceed either limit fails at once (the caller decides: drop,
//!   disconnect the slow consumer, or wait for room with [`Outbox::push_wait`]). An
//!   empty queue takes any frame the framing allows, so a limit below the frame size
//!   still lets every frame through one at a time.
//!
//! Frames are written in the order their pushes took the lock.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::Notify;

use crate::codec::Framing;

/// Spare buffers above this capacity are released after a write, so a burst does not
/// pin its peak memory on an idle connection.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Why a push did not queue a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue is at its frame or byte limit.
    Full,
    /// The framing refuses the body (described).
    Invalid(String),
    /// The connection is closing.
    Closed,
}

/// What is queued, taken by the writer in one piece.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Framed bytes.
    pub(crate) bytes: BytesMut,
    /// Frames in `bytes`.
    pub(crate) frames: usize,
    /// Their body bytes (framing not counted), for the metrics.
    pub(crate) body_bytes: usize,
}

#[derive(Debug, Default)]
struct Pending {
    batch: Batch,
    closed: bool,
}

/// See the [module documentation](self).
#[derive(Debug)]
pub(crate) struct Outbox {
    pending: Mutex<Pending>,
    /// Wakes the writer when a push finds the queue empty.
    ready: Notify,
    /// Wakes pushes waiting for room when the writer takes a batch.
    room: Notify,
    framing: Framing,
    max_frame_bytes: usize,
    max_frames: usize,
    max_bytes: usize,
}

impl Outbox {
    pub(crate) fn new(
        framing: Framing,
        max_frame_bytes: usize,
        max_frames: usize,
        max_bytes: usize,
    ) -> Outbox {
        Outbox {
            pending: Mutex::new(Pending::default()),
            ready: Notify::new(),
            room: Notify::new(),
            framing,
            max_frame_bytes,
            max_frames: max_frames.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // Every critical section leaves `Pending` consistent (a failed encode truncates
        // what it appended before returning).
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The frame limit.
    pub(crate) fn max_frames(&self) -> usize {
        self.max_frames
    }

    /// The byte limit.
    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Queues one frame whose body is `parts` concatenated, never waiting.
    pub(crate) fn push(&self, parts: &[&[u8]]) -> Result<(), PushError> {
        self.push_with(parts.iter().map(|part| part.len()).sum(), |out| {
            self.framing.encode_parts(parts, self.max_frame_bytes, out)
        })
    }

    /// [`Self::push`] for text parts (UTF-8 by their type, so not checked again).
    pub(crate) fn push_str(&self, parts: &[&str]) -> Result<(), PushError> {
        self.push_with(parts.iter().map(|part| part.len()).sum(), |out| {
            self.framing
                .encode_str_parts(parts, self.max_frame_bytes, out)
        })
    }

    /// Queues one frame of `body` bytes that `encode` appends, framed.
    fn push_with(
        &self,
        body: usize,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), String>,
    ) -> Result<(), PushError> {
        let mut pending = self.lock();
        if pending.closed {
            return Err(PushError::Closed);
        }
        let batch = &mut pending.batch;
        let was_empty = batch.frames == 0;
        if !was_empty
            && (batch.frames >= self.max_frames
                || batch.bytes.len().saturating_add(body) > self.max_bytes)
        {
            return Err(PushError::Full);
        }
        encode(&mut batch.bytes).map_err(PushError::Invalid)?;
        batch.frames += 1;
        batch.body_bytes += body;
        drop(pending);
        if was_empty {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Queues one frame, waiting up to `timeout` for room when the queue is full.
    /// Returns `Err(PushError::Full)` when the time ran out.
    pub(crate) async fn push_wait(
        &self,
        parts: &[&[u8]],
        timeout: Duration,
    ) -> Result<(), PushError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before trying, so a batch taken in between is not missed.
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.push(parts) {
                Err(PushError::Full) => {}
                other => return other,
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(PushError::Full);
            }
        }
    }

    /// Takes everything queued, leaving `spare` (emptied) in its place; false when
    /// nothing is queued.
    pub(crate) fn take(&self, spare: &mut Batch) -> bool {
        spare.bytes.clear();
        if spare.bytes.capacity() > KEEP_CAPACITY {
            spare.bytes = BytesMut::new();
        }
        spare.frames = 0;
        spare.body_bytes = 0;
        let mut pending = self.lock();
        if pending.batch.frames == 0 {
            return false;
        }
        std::mem::swap(&mut pending.batch, spare);
        drop(pending);
        self.room.notify_waiters();
        true
    }

    /// Waits until a push finds the queue empty (returns at once if one did since the
    /// last wait). May return with nothing queued; the caller takes and checks.
    pub(crate) async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Refuses every later push and returns what is still queued.
    pub(crate) fn close(&self) -> Batch {
        let mut pending = self.lock();
        pending.closed = true;
        let batch = std::mem::take(&mut pending.batch);
        drop(pending);
        self.room.notify_waiters();
        batch
    }

    /// Frames and bytes queued now.
    pub(crate) fn queued(&self) -> (usize, usize) {
        let pending = self.lock();
        (pending.batch.frames, pending.batch.bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(max_frames: usize, max_bytes: usize) -> Outbox {
        Outbox::new(Framing::Newline, 1024, max_frames, max_bytes)
    }

    #[test]
    fn frames_are_framed_in_order_and_taken_at_once() {
        let outbox = outbox(10, 1000);
        outbox.push(&[b"{\"a\":", b"1}"]).unwrap();
        outbox.push(&[b"two"]).unwrap();
        assert_eq!(outbox.queued(), (2, 12));
        let mut spare = Batch::default();
        assert!(outbox.take(&mut spare));
        assert_eq!(&spare.bytes[..], b"{\"a\":1}\ntwo\n");
        assert_eq!((spare.frames, spare.body_bytes), (2, 10));
        assert_eq!(outbox.queued(), (0, 0));
        assert!(!outbox.take(&mut spare));
    }

    #[test]
    fn the_frame_limit_refuses_the_next_push() {
        let outbox = outbox(2, 1000);
        outbox.push(&[b"1"]).unwrap();
        outbox.push(&[b"2"]).unwrap();
        assert_eq!(outbox.push(&[b"3"]), Err(PushError::Full));
        assert_eq!(outbox.queued(), (2, 4));
    }

    #[test]
    fn the_byte_limit_refuses_a_push_that_would_cross_it() {
        let outbox = outbox(100, 10);
        outbox.push(&[b"12345"]).unwrap();
        assert_eq!(outbox.push(&[b"12345"]), Err(PushError::Full));
        outbox.push(&[b"123"]).unwrap();
        assert_eq!(outbox.queued(), (2, 10));
    }

    #[test]
    fn an_empty_queue_takes_a_frame_above_the_byte_limit() {
        let outbox = outbox(100, 4);
        outbox.push(&[b"a frame longer than the limit"]).unwrap();
        assert_eq!(outbox.push(&[b"x"]), Err(PushError::Full));
    }

    #[test]
    fn a_refused_body_leaves_the_queue_as_it_was() {
        let outbox = outbox(100, 1000);
        outbox.push(&[b"ok"]).unwrap();
        let refused = outbox.push(&[b"two\nlines"]).unwrap_err();
        assert_eq!(
            refused,
            PushError::Invalid("line contains a newline at byte 3".to_owned())
        );
        assert!(matches!(
            outbox.push(&[b"\xff"]),
            Err(PushError::Invalid(_))
        ));
        assert!(matches!(outbox.push(&[]), Err(PushError::Invalid(_))));
        assert_eq!(outbox.queued(), (1, 3));
    }

    #[test]
    fn a_closed_outbox_hands_back_what_was_queued_and_refuses_more() {
        let outbox = outbox(100, 1000);
        outbox.push(&[b"last"]).unwrap();
        let rest = outbox.close();
        assert_eq!(&rest.bytes[..], b"last\n");
        assert_eq!(outbox.push(&[b"more"]), Err(PushError::Closed));
    }

    #[tokio::test]
    async fn a_waiting_push_gets_in_once_the_writer_takes_a_batch() {
        let outbox = std::sync::Arc::new(outbox(1, 1000));
        outbox.push(&[b"first"]).unwrap();
        let waiting = {
            let outbox = std::sync::Arc::clone(&outbox);
            tokio::spawn(async move {
                outbox
                    .push_wait(&[b"second"], Duration::from_secs(30))
                    .await
            })
        };
        tokio::task::yield_now().await;
        let mut spare = Batch::default();
        assert!(outbox.take(&mut spare));
        waiting.await.unwrap().unwrap();
        assert!(outbox.take(&mut spare));
        assert_eq!(&spare.bytes[..], b"second\n");
    }

    #[tokio::test]
    async fn a_waiting_push_gives_up_after_its_timeout() {
        let outbox = outbox(1, 1000);
        outbox.push(&[b"first"]).unwrap();
        let result = outbox
            .push_wait(&[b"second"], Duration::from_millis(20))
            .await;
        assert_eq!(result, Err(PushError::Full));
    }

    #[tokio::test]
    async fn the_writer_is_woken_when_an_empty_queue_gets_a_frame() {
        let outbox = std::sync::Arc::new(outbox(10, 1000));
        let writer = {
            let outbox = std::sync::Arc::clone(&outbox);
            tokio::spawn(async move {
                outbox.ready().await;
                let mut spare = Batch::default();
                outbox.take(&mut spare).then_some(spare.bytes)
            })
        };
        tokio::task::yield_now().await;
        outbox.push(&[b"wake"]).unwrap();
        assert_eq!(&writer.await.unwrap().unwrap()[..], b"wake\n");
    }
}
