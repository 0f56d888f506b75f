//! A client that survives its server restarting: it reconnects with exponential backoff
//! and jitter, queues what is sent while disconnected (bounded), and resends what the
//! server has not acknowledged.
//!
//! - [`ReconnectPolicy`] says how often and how long to retry; [`ReconnectPolicy::delays`]
//!   is the pure sequence of waits for a given [`Rng`], so tests fix the seed.
//! - [`ReconnectingClient::send`] takes a frame and its message id. While connected the
//!   frame is written and tracked as unacknowledged (at most
//!   [`ReconnectConfig::max_unacked`]); while disconnected it is queued (at most
//!   [`ReconnectPolicy::max_queued`], then [`ReconnectError::QueueFull`]).
//! - A message stays unacknowledged until [`ReconnectingClient::ack`] is called with its
//!   id, or until an inbound frame for which [`ReconnectConfig::ack_id`] returns its id
//!   arrives.
//! - After reconnecting, the frames of [`ReconnectConfig::on_reconnect`] are sent first
//!   (re-registration), then every unacknowledged message in its original order with its
//!   original bytes (the server suppresses duplicates by id), then the queue in order.
//! - When [`ReconnectPolicy::max_attempts`] attempts in a row fail, the client gives up:
//!   [`ReconnectInbound::recv`] yields [`ReconnectError::GaveUp`] (then `None`), the
//!   [`Status`] watch becomes [`Status::Failed`], and sends fail.
//! - Dropping every clone of the [`ReconnectingClient`] stops reconnecting and closes the
//!   connection once the frames already written to it are flushed.
//! - [`ReconnectConfig::on_event`] hears every [`ConnectionEvent`] in order (attempts,
//!   failures and their kind, connections, losses, giving up): what a protocol's
//!   connection state machine moves on.
//! - With [`ReconnectConfig::hold_until_ready`], a new connection carries only the
//!   `on_reconnect` frames (and what is sent on [`ReconnectingClient::client`] directly)
//!   until [`ReconnectingClient::ready`] is called, typically when the server accepted the
//!   registration; only then are unacknowledged and queued messages sent.
//! - [`ReconnectingClient::send_with`] says how a message waits while disconnected
//!   ([`Queueing`]): kept in order, dropped first when the queue is full, or replacing
//!   the queued message with the same key (only the latest is kept).

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::{Client, ClientConfig, ClientError, Correlator, Inbound};
use crate::transport::unix::ConnectError;

/// A small, fast, non-cryptographic random number generator (xorshift64*), enough to
/// spread reconnect attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator with a fixed seed: the same seed gives the same sequence.
    #[must_use]
    pub fn seeded(seed: u64) -> Rng {
        // The all-zero state is a fixed point of xorshift.
        let state = if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        };
        Rng { state }
    }

    /// A generator seeded from the clock and a per-process counter.
    #[must_use]
    pub fn from_time() -> Rng {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        // Truncation is fine: only the low bits vary anyway.
        #[allow(clippy::cast_possible_truncation)]
        let nanos = nanos as u64;
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        Rng::seeded(
            nanos ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id()),
        )
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform value in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        #[allow(clippy::cast_precision_loss)]
        let value = (self.next_u64() >> 11) as f64;
        value / (1u64 << 53) as f64
    }
}

/// How a [`ReconnectingClient`] retries.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// Connection attempts in a row before giving up.
    pub max_attempts: u32,
    /// The wait before the first attempt.
    pub initial_delay: Duration,
    /// The longest wait between attempts (before jitter).
    pub max_delay: Duration,
    /// Each wait is this many times the previous one (at least 1).
    pub multiplier: f64,
    /// How much of each wait is randomised, in `0..=1`: a wait `d` becomes a uniform
    /// value in `[d * (1 - jitter), d]` (`1` is "full jitter").
    pub jitter: f64,
    /// Messages queued while disconnected; one more fails with
    /// [`ReconnectError::QueueFull`].
    pub max_queued: usize,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.5,
            max_queued: 1024,
        }
    }
}

impl ReconnectPolicy {
    /// The policy a catalogue's `wire.timing.reconnect` describes (the queue bound is
    /// the default's when the catalogue sets none).
    #[must_use]
    pub fn from_profile(reconnect: &crate::profile::Reconnect) -> ReconnectPolicy {
        ReconnectPolicy {
            max_attempts: reconnect.max_attempts,
            initial_delay: reconnect.initial_delay,
            max_delay: reconnect.max_delay,
            multiplier: reconnect.multiplier,
            jitter: reconnect.jitter,
            max_queued: reconnect
                .max_queued_messages
                .unwrap_or(ReconnectPolicy::default().max_queued),
        }
    }

    /// The waits before each of the [`max_attempts`](Self::max_attempts) attempts.
    #[must_use]
    pub fn delays(&self, rng: Rng) -> Delays {
        Delays {
            next_base: self.initial_delay.min(self.max_delay),
            max_delay: self.max_delay,
            multiplier: if self.multiplier.is_finite() {
                self.multiplier.max(1.0)
            } else {
                1.0
            },
            jitter: if self.jitter.is_nan() {
                0.0
            } else {
                self.jitter.clamp(0.0, 1.0)
            },
            remaining: self.max_attempts,
            rng,
        }
    }
}

/// The iterator of [`ReconnectPolicy::delays`].
#[derive(Debug, Clone)]
pub struct Delays {
    next_base: Duration,
    max_delay: Duration,
    multiplier: f64,
    jitter: f64,
    remaining: u32,
    rng: Rng,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let base = self.next_base;
        let grown = base.as_secs_f64() * self.multiplier;
        self.next_base = if grown >= self.max_delay.as_secs_f64() {
            self.max_delay
        } else {
            Duration::from_secs_f64(grown)
        };
        let cut = self.jitter * self.rng.next_f64();
        Some(base.mul_f64(1.0 - cut))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (remaining, Some(remaining))
    }
}

/// Frames to send first on every new connection (the number of the connection, from 1).
pub type OnReconnect = Arc<dyn Fn(u64) -> Vec<Bytes> + Send + Sync>;

/// What happens to a [`ReconnectingClient`]'s connection, in the order it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// A connection attempt starts (`attempt` counts from 1 in each outage); for every
    /// attempt but the client's very first, after the backoff delay.
    Attempt {
        /// The attempt's number.
        attempt: u32,
    },
    /// The attempt failed: `timed_out` when it hit [`ReconnectConfig::connect_timeout`],
    /// otherwise the endpoint is missing or refused.
    AttemptFailed {
        /// The attempt's number.
        attempt: u32,
        /// The attempt ran out of time.
        timed_out: bool,
    },
    /// A connection is up (`generation` counts connections from 1); the `on_reconnect`
    /// frames follow.
    Connected {
        /// The connection's number.
        generation: u64,
    },
    /// The connection ended: `idle` when nothing was received for
    /// [`ClientConfig::idle_timeout`](super::ClientConfig::idle_timeout).
    Lost {
        /// The connection's number.
        generation: u64,
        /// Closed for silence.
        idle: bool,
    },
    /// [`ReconnectPolicy::max_attempts`] attempts in a row failed; terminal.
    GaveUp,
    /// Every handle was dropped; terminal.
    Closed,
}

/// Hears each [`ConnectionEvent`]; called on the client's own task, so it must not block.
pub type OnEvent = Arc<dyn Fn(&ConnectionEvent) + Send + Sync>;

/// How a message sent with [`ReconnectingClient::send_with`] waits while disconnected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queueing {
    /// Queued in order; with the queue full, it takes the place of the oldest
    /// [`Queueing::Droppable`] message, or the send fails with
    /// [`ReconnectError::QueueFull`].
    Keep,
    /// Like `Keep`, but dropped first (oldest first) when a message finds the queue full.
    Droppable,
    /// Replaces the queued message with the same key, in its place, so only the latest is
    /// sent; queued like `Keep` when there is none.
    Latest(String),
}

/// Finds the id of the message an inbound frame acknowledges.
pub type AckIdFn = Arc<dyn Fn(&[u8]) -> Option<String> + Send + Sync>;

/// The configuration of a [`ReconnectingClient`].
#[derive(Clone)]
pub struct ReconnectConfig {
    /// Retries and the queue bound.
    pub policy: ReconnectPolicy,
    /// The limits of each underlying [`Client`].
    pub client: ClientConfig,
    /// The timeout of each connection attempt.
    pub connect_timeout: Duration,
    /// Messages sent and not yet acknowledged; one more fails with
    /// [`ReconnectError::TooManyUnacked`].
    pub max_unacked: usize,
    /// Recognises acknowledgments among inbound frames (they are still delivered).
    pub ack_id: Option<AckIdFn>,
    /// Frames sent on each new connection before anything else (called with the
    /// connection's number, 1 for the first).
    pub on_reconnect: Option<OnReconnect>,
    /// The seed of the jitter; `None` seeds from the clock.
    pub seed: Option<u64>,
    /// Hears every [`ConnectionEvent`].
    pub on_event: Option<OnEvent>,
    /// A new connection sends only the `on_reconnect` frames until
    /// [`ReconnectingClient::ready`] is called for it.
    pub hold_until_ready: bool,
}

impl ReconnectConfig {
    /// The connect timeout when the catalogue sets none.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Unacknowledged messages unless the client says otherwise.
    pub const MAX_UNACKED: usize = 1024;

    /// The configuration the catalogue's wire profile describes: its reconnection policy
    /// ([`ReconnectPolicy::default`] when it has none), its connect timeout
    /// ([`Self::CONNECT_TIMEOUT`] when it has none) and a [`ClientConfig::from_profile`]
    /// per connection. Acknowledgment recognition and the reconnect hook are the
    /// client's to add.
    #[must_use]
    pub fn from_profile(profile: &crate::profile::WireProfile) -> ReconnectConfig {
        ReconnectConfig {
            policy: profile
                .timing
                .reconnect
                .as_ref()
                .map_or_else(ReconnectPolicy::default, ReconnectPolicy::from_profile),
            client: ClientConfig::from_profile(profile),
            connect_timeout: profile
                .timing
                .connect_timeout
                .unwrap_or(Self::CONNECT_TIMEOUT),
            max_unacked: Self::MAX_UNACKED,
            ack_id: None,
            on_reconnect: None,
            seed: None,
            on_event: None,
            hold_until_ready: false,
        }
    }
}

impl fmt::Debug for ReconnectConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconnectConfig")
            .field("policy", &self.policy)
            .field("client", &self.client)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_unacked", &self.max_unacked)
            .field("ack_id", &self.ack_id.as_ref().map(|_| "<fn>"))
            .field("on_reconnect", &self.on_reconnect.as_ref().map(|_| "<fn>"))
            .field("seed", &self.seed)
            .field("on_event", &self.on_event.as_ref().map(|_| "<fn>"))
            .field("hold_until_ready", &self.hold_until_ready)
            .finish()
    }
}

/// Where a [`ReconnectingClient`] stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Connected; `generation` counts connections from 1.
    Connected {
        /// The connection's number.
        generation: u64,
    },
    /// Disconnected and retrying; `attempt` is the attempt under way or next (from 1).
    Reconnecting {
        /// The attempt's number.
        attempt: u32,
    },
    /// Gave up after `attempts` failed attempts; terminal.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        error: String,
    },
    /// Every handle was dropped; terminal.
    Closed,
}

/// Why a [`ReconnectingClient`] operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconnectError {
    /// Disconnected, and the queue holds [`ReconnectPolicy::max_queued`] messages.
    #[error("disconnected and the queue of {max} messages is full")]
    QueueFull {
        /// The bound.
        max: usize,
    },
    /// [`ReconnectConfig::max_unacked`] messages await acknowledgment.
    #[error("{max} messages await acknowledgment")]
    TooManyUnacked {
        /// The bound.
        max: usize,
    },
    /// The frame exceeds the maximum frame size.
    #[error("a frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The frame's size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Reconnecting failed `attempts` times in a row; the client is finished.
    #[error("gave up after {attempts} connection attempts: {last_error}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last_error: String,
    },
}

/// A message sent or waiting to be sent.
#[derive(Debug, Clone)]
struct Message {
    id: String,
    frame: Bytes,
    queueing: Queueing,
}

#[derive(Debug, Default)]
struct State {
    /// The current connection; `None` while disconnected.
    client: Option<Client>,
    /// Its number.
    generation: u64,
    /// Messages go out on it (false while it waits for [`ReconnectingClient::ready`]).
    live: bool,
    /// Sent, awaiting acknowledgment, in send order.
    unacked: VecDeque<Message>,
    /// Waiting for a connection, in send order.
    queued: VecDeque<Message>,
    /// Set once the client gave up.
    failed: Option<ReconnectError>,
}

struct Shared {
    state: Mutex<State>,
    /// Serialises writers (sends and the resend after reconnecting) so frames keep their
    /// order. Never held by the task reading inbound frames.
    send_lock: tokio::sync::Mutex<()>,
    status: watch::Sender<Status>,
    config: ReconnectConfig,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn event(&self, happened: &ConnectionEvent) {
        event(&self.config, happened);
    }

    fn ack(&self, id: &str) -> bool {
        let mut state = self.state();
        match state.unacked.iter().position(|message| message.id == id) {
            Some(position) => {
                state.unacked.remove(position);
                true
            }
            None => false,
        }
    }
}

/// Stops the supervisor when the last handle is dropped.
struct Guard {
    _stop: watch::Sender<()>,
}

/// A client that reconnects; cheap to clone. See the [module documentation](self).
#[derive(Clone)]
pub struct ReconnectingClient {
    shared: Arc<Shared>,
    _guard: Arc<Guard>,
}

impl fmt::Debug for ReconnectingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconnectingClient")
            .field("status", &*self.shared.status.borrow())
            .finish_non_exhaustive()
    }
}

/// The inbound frames of every connection in turn, then the terminal error if the client
/// gave up.
#[derive(Debug)]
pub struct ReconnectInbound {
    rx: mpsc::Receiver<Result<Bytes, ReconnectError>>,
}

impl ReconnectInbound {
    /// The next inbound frame; `Err` once the client gave up; `None` after that or once
    /// the client is closed.
    pub async fn recv(&mut self) -> Option<Result<Bytes, ReconnectError>> {
        self.rx.recv().await
    }
}

/// A [`Correlator`] shared by every connection.
#[derive(Clone)]
struct SharedCorrelator(Arc<dyn Correlator>);

impl Correlator for SharedCorrelator {
    fn request_id(&self, frame: &[u8]) -> Option<String> {
        self.0.request_id(frame)
    }

    fn correlation_id(&self, frame: &[u8]) -> Option<String> {
        self.0.correlation_id(frame)
    }
}

fn event(config: &ReconnectConfig, event: &ConnectionEvent) {
    if let Some(hook) = &config.on_event {
        hook(event);
    }
}

struct Connector {
    path: PathBuf,
    correlator: SharedCorrelator,
    rng: Rng,
}

impl Connector {
    /// Tries up to `max_attempts` times, waiting the policy's delays (the first try of the
    /// initial connection does not wait).
    async fn connect(
        &mut self,
        config: &ReconnectConfig,
        status: Option<&watch::Sender<Status>>,
        immediate_first: bool,
        stop: &mut watch::Receiver<()>,
    ) -> Result<(Client, Inbound), ReconnectError> {
        let delays = config.policy.delays(self.rng.clone());
        // Advance the generator so the next outage gets different jitter.
        self.rng.next_u64();
        let mut attempts = 0;
        let mut last_error = String::from("no attempt was allowed (max_attempts is 0)");
        for (index, delay) in delays.enumerate() {
            attempts += 1;
            if let Some(status) = status {
                status.send_replace(Status::Reconnecting { attempt: attempts });
            }
            if !(immediate_first && index == 0) {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => {
                        return Err(ReconnectError::GaveUp {
                            attempts,
                            last_error: "the client was closed".to_owned(),
                        });
                    }
                }
            }
            event(config, &ConnectionEvent::Attempt { attempt: attempts });
            match Client::connect(
                &self.path,
                config.connect_timeout,
                config.client.clone(),
                self.correlator.clone(),
            )
            .await
            {
                Ok(connected) => return Ok(connected),
                Err(error) => {
                    tracing::debug!(%error, attempt = attempts, "connection attempt failed");
                    let timed_out = matches!(error, ConnectError::TimedOut { .. });
                    event(
                        config,
                        &ConnectionEvent::AttemptFailed {
                            attempt: attempts,
                            timed_out,
                        },
                    );
                    last_error = error.to_string();
                }
            }
        }
        Err(ReconnectError::GaveUp {
            attempts,
            last_error,
        })
    }
}

impl ReconnectingClient {
    /// Connects to the Unix socket at `path`, retrying per the policy (the first attempt
    /// is immediate), and starts the task that reconnects.
    ///
    /// # Errors
    ///
    /// [`ReconnectError::GaveUp`] when no attempt succeeded.
    pub async fn connect(
        path: impl AsRef<Path>,
        config: ReconnectConfig,
        correlator: impl Correlator,
    ) -> Result<(ReconnectingClient, ReconnectInbound), ReconnectError> {
        let (stop_tx, mut stop_rx) = watch::channel(());
        let mut connector = Connector {
            path: path.as_ref().to_owned(),
            correlator: SharedCorrelator(Arc::new(correlator)),
            rng: config.seed.map_or_else(Rng::from_time, Rng::seeded),
        };
        let (client, inbound) = match connector.connect(&config, None, true, &mut stop_rx).await {
            Ok(connected) => connected,
            Err(error) => {
                event(&config, &ConnectionEvent::GaveUp);
                return Err(error);
            }
        };
        let (status, _) = watch::channel(Status::Reconnecting { attempt: 1 });
        let (user_tx, user_rx) = mpsc::channel(config.client.inbound_queue_capacity.max(1));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            send_lock: tokio::sync::Mutex::new(()),
            status,
            config,
        });
        // The first connection gets its registration frames like any other.
        let live = resume(&shared, client, 1).await;
        tokio::spawn(supervise(
            Arc::clone(&shared),
            connector,
            live.then_some(inbound),
            user_tx,
            stop_rx,
        ));
        let client = ReconnectingClient {
            shared,
            _guard: Arc::new(Guard { _stop: stop_tx }),
        };
        Ok((client, ReconnectInbound { rx: user_rx }))
    }

    /// Sends `frame`, whose message id is `id`: written now and tracked until
    /// acknowledged, or queued while disconnected.
    ///
    /// # Errors
    ///
    /// [`ReconnectError::QueueFull`] while disconnected with a full queue,
    /// [`ReconnectError::TooManyUnacked`], [`ReconnectError::TooLarge`], and
    /// [`ReconnectError::GaveUp`] once the client gave up.
    pub async fn send(
        &self,
        frame: impl Into<Bytes>,
        id: impl Into<String>,
    ) -> Result<(), ReconnectError> {
        self.send_with(frame, id, Queueing::Keep).await.map(drop)
    }

    /// [`send`](Self::send), saying how the message waits while disconnected. Returns
    /// the id of the queued message it dropped or replaced, if any: that message will
    /// never be sent.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn send_with(
        &self,
        frame: impl Into<Bytes>,
        id: impl Into<String>,
        queueing: Queueing,
    ) -> Result<Option<String>, ReconnectError> {
        let frame = frame.into();
        let max = self.shared.config.client.max_frame_bytes;
        if frame.len() > max {
            return Err(ReconnectError::TooLarge {
                len: frame.len(),
                max,
            });
        }
        let message = Message {
            id: id.into(),
            frame,
            queueing,
        };
        let _order = self.shared.send_lock.lock().await;
        let client = {
            let mut state = self.shared.state();
            if let Some(error) = &state.failed {
                return Err(error.clone());
            }
            match state.client.clone().filter(|_| state.live) {
                None => {
                    let max = self.shared.config.policy.max_queued;
                    return enqueue(&mut state.queued, message, max);
                }
                Some(client) => {
                    let max = self.shared.config.max_unacked;
                    if state.unacked.len() >= max {
                        return Err(ReconnectError::TooManyUnacked { max });
                    }
                    state.unacked.push_back(message.clone());
                    client
                }
            }
        };
        // A closed connection is fine: the message is unacknowledged and will be resent.
        if let Err(error) = client.send(message.frame).await {
            tracing::debug!(%error, "send on a closing connection; will resend");
        }
        Ok(None)
    }

    /// With [`ReconnectConfig::hold_until_ready`]: the connection `generation` may carry
    /// messages now, so the unacknowledged ones are resent and the queue is sent, in order.
    /// False when that connection is gone (or was already ready).
    pub async fn ready(&self, generation: u64) -> bool {
        let _order = self.shared.send_lock.lock().await;
        let client = {
            let state = self.shared.state();
            match &state.client {
                Some(client) if state.generation == generation && !state.live => client.clone(),
                _ => return false,
            }
        };
        flush(&self.shared, &client, generation).await
    }

    /// Marks the message `id` acknowledged; false if it was not awaiting acknowledgment.
    pub fn ack(&self, id: &str) -> bool {
        self.shared.ack(id)
    }

    /// Messages sent and not yet acknowledged.
    #[must_use]
    pub fn unacked(&self) -> usize {
        self.shared.state().unacked.len()
    }

    /// Messages queued waiting for a connection.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.shared.state().queued.len()
    }

    /// The current connection (for [`Client::request`]), or `None` while disconnected.
    #[must_use]
    pub fn client(&self) -> Option<Client> {
        self.shared.state().client.clone()
    }

    /// Where the client stands, as a watch.
    #[must_use]
    pub fn status(&self) -> watch::Receiver<Status> {
        self.shared.status.subscribe()
    }
}

/// Queues `message` under its [`Queueing`] within `max` messages.
fn enqueue(
    queued: &mut VecDeque<Message>,
    message: Message,
    max: usize,
) -> Result<Option<String>, ReconnectError> {
    if let Queueing::Latest(key) = &message.queueing
        && let Some(old) = queued
            .iter_mut()
            .find(|m| matches!(&m.queueing, Queueing::Latest(k) if k == key))
    {
        let replaced = std::mem::replace(old, message);
        return Ok(Some(replaced.id));
    }
    let mut dropped = None;
    if queued.len() >= max {
        let oldest_droppable = queued
            .iter()
            .position(|m| m.queueing == Queueing::Droppable);
        match oldest_droppable.and_then(|at| queued.remove(at)) {
            Some(old) => dropped = Some(old.id),
            None => return Err(ReconnectError::QueueFull { max }),
        }
    }
    queued.push_back(message);
    Ok(dropped)
}

/// On a new connection: sends the registration frames, then (unless the configuration
/// holds it until [`ReconnectingClient::ready`]) the unacknowledged messages and the queue,
/// and makes the connection live. False if the connection failed meanwhile (everything
/// sent stays unacknowledged or queued).
async fn resume(shared: &Shared, client: Client, generation: u64) -> bool {
    shared.event(&ConnectionEvent::Connected { generation });
    let _order = shared.send_lock.lock().await;
    let first = shared
        .config
        .on_reconnect
        .as_ref()
        .map(|hook| hook(generation))
        .unwrap_or_default();
    for frame in first {
        if !sent(client.send(frame).await) {
            return false;
        }
    }
    if shared.config.hold_until_ready {
        let mut state = shared.state();
        state.client = Some(client);
        state.generation = generation;
        state.live = false;
        return true;
    }
    flush(shared, &client, generation).await
}

/// Resends the unacknowledged messages and sends the queue on `client`, then makes it
/// live. Called with `send_lock` held.
async fn flush(shared: &Shared, client: &Client, generation: u64) -> bool {
    let resend: Vec<Bytes> = shared
        .state()
        .unacked
        .iter()
        .map(|message| message.frame.clone())
        .collect();
    for frame in resend {
        if !sent(client.send(frame).await) {
            return false;
        }
    }
    loop {
        let frame = {
            let mut state = shared.state();
            match state.queued.pop_front() {
                Some(message) => {
                    let frame = message.frame.clone();
                    state.unacked.push_back(message);
                    frame
                }
                None => {
                    // Sends wait for `send_lock`, so nothing is queued after this.
                    state.client = Some(client.clone());
                    state.generation = generation;
                    state.live = true;
                    break;
                }
            }
        };
        if !sent(client.send(frame).await) {
            return false;
        }
    }
    shared.status.send_replace(Status::Connected { generation });
    true
}

fn sent(result: Result<(), ClientError>) -> bool {
    match result {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(%error, "connection failed while resending");
            false
        }
    }
}

/// Forwards inbound frames, and reconnects when the connection closes.
async fn supervise(
    shared: Arc<Shared>,
    mut connector: Connector,
    mut inbound: Option<Inbound>,
    user: mpsc::Sender<Result<Bytes, ReconnectError>>,
    mut stop: watch::Receiver<()>,
) {
    let mut generation = 1;
    loop {
        if let Some(inbound) = inbound.as_mut() {
            loop {
                let frame = tokio::select! {
                    frame = inbound.recv() => frame,
                    _ = stop.changed() => None,
                };
                let Some(frame) = frame else { break };
                if let Some(id) = shared.config.ack_id.as_ref().and_then(|f| f(&frame)) {
                    shared.ack(&id);
                }
                // The user may have dropped the inbound side; frames are then discarded.
                let _ = user.send(Ok(frame)).await;
            }
        }
        let lost = {
            let mut state = shared.state();
            state.live = false;
            state.client.take()
        };
        if let Some(client) = lost {
            shared.event(&ConnectionEvent::Lost {
                generation,
                idle: client.metrics().idle_timeouts > 0,
            });
        }
        if stop.has_changed().is_err() {
            shared.status.send_replace(Status::Closed);
            shared.event(&ConnectionEvent::Closed);
            return;
        }
        match connector
            .connect(&shared.config, Some(&shared.status), false, &mut stop)
            .await
        {
            Ok((client, next)) => {
                generation += 1;
                inbound = resume(&shared, client, generation).await.then_some(next);
            }
            Err(error) => {
                if stop.has_changed().is_err() {
                    shared.status.send_replace(Status::Closed);
                    shared.event(&ConnectionEvent::Closed);
                    return;
                }
                let ReconnectError::GaveUp {
                    attempts,
                    last_error,
                } = &error
                else {
                    return;
                };
                tracing::warn!(attempts, %last_error, "giving up reconnecting");
                shared.status.send_replace(Status::Failed {
                    attempts: *attempts,
                    error: last_error.clone(),
                });
                shared.state().failed = Some(error.clone());
                shared.event(&ConnectionEvent::GaveUp);
                let _ = user.send(Err(error)).await;
                return;
            }
        }
    }
}
