//! The [`Service`] trait: what the server calls for every frame, and its [`Outcome`].

use std::future::Future;

use bytes::Bytes;

use super::connection::{CloseReason, ConnectionInfo};

/// The application behind a [`Server`](super::Server): it decodes each frame, dispatches
/// it (a generated `dispatch_to_<role>` plugs in here) and says what to send back.
///
/// The server calls [`Service::handle`] for the frames of one connection one at a time,
/// in order, and for different connections concurrently. A handler that is running when
/// graceful shutdown starts is allowed to finish and its replies are written.
pub trait Service: Send + Sync + 'static {
    /// Handles one received frame (the body, without its length prefix).
    fn handle(&self, conn: &ConnectionInfo, frame: Bytes) -> impl Future<Output = Outcome> + Send;

    /// Called for a frame the framing had to skip (newline framing: an over-long line, a
    /// line that is not UTF-8); the stream goes on. The default counts the error and
    /// sends nothing; a protocol with an error message answers with it here.
    fn on_bad_frame(
        &self,
        conn: &ConnectionInfo,
        bad: crate::codec::BadFrame,
    ) -> impl Future<Output = Outcome> + Send {
        let _ = conn;
        async move { Outcome::none().error(bad.kind) }
    }

    /// Called once a connection is accepted, before its first frame is read. A service
    /// keeps `conn.handle()` to push frames to it later.
    fn on_connect(&self, conn: &ConnectionInfo) -> impl Future<Output = ()> + Send {
        let _ = conn;
        async {}
    }

    /// Called once a connection is closed, after its queued frames were written or
    /// dropped.
    fn on_close(
        &self,
        conn: &ConnectionInfo,
        reason: CloseReason,
    ) -> impl Future<Output = ()> + Send {
        let _ = (conn, reason);
        async {}
    }
}

/// What [`Service::handle`] asks the server to do: frames to queue on the same
/// connection (acknowledgments, replies), whether to close it, and an error kind to
/// count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Outcome {
    /// Frames to write back, in order.
    pub frames: Vec<Bytes>,
    /// Close the connection after writing `frames`.
    pub close: bool,
    /// Count one error of this kind (`invalid_message`, `unknown_type`, ...) in the
    /// server's metrics.
    pub error: Option<&'static str>,
}

impl Outcome {
    /// Nothing to send.
    pub fn none() -> Self {
        Outcome::default()
    }

    /// One frame to send back.
    pub fn reply(frame: impl Into<Bytes>) -> Self {
        Outcome {
            frames: vec![frame.into()],
            ..Outcome::default()
        }
    }

    /// Several frames to send back, in order.
    pub fn replies(frames: impl IntoIterator<Item = Bytes>) -> Self {
        Outcome {
            frames: frames.into_iter().collect(),
            ..Outcome::default()
        }
    }

    /// Also close the connection once the frames are written.
    pub fn and_close(mut self) -> Self {
        self.close = true;
        self
    }

    /// Also count an error of `kind`.
    pub fn error(mut self, kind: &'static str) -> Self {
        self.error = Some(kind);
        self
    }
}
