//! Runs cases against an implementation acting as server: connections, frames built from
//! their symbolic description, expectations, verdicts and transcripts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde::Serialize;
use serde_json::Value;

use crate::protocol::{Capabilities, FrameKind, Protocol};
use crate::scenario::{Action, Body, Case, CloseWithin, Expect, Send, Step, Wait};

/// The largest frame the runner itself reads; beyond it the implementation is broken.
const RUNNER_MAX_FRAME: usize = 64 * 1024 * 1024;

/// Pause between the pieces of a chunked send, so the implementation sees separate reads.
const CHUNK_PAUSE: Duration = Duration::from_millis(2);

/// How long the runner tries to connect to the implementation.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the runner reaches the implementation.
#[derive(Debug)]
pub enum Target {
    /// No implementation as server: only client cases run.
    Absent,
    /// A socket someone else keeps listening.
    Connect(PathBuf),
    /// A command the runner starts (and restarts after a crash), told where to listen by
    /// `IPCSPEC_ADDRESS=unix:PATH`.
    Spawn {
        /// The shell command.
        command: String,
        /// The socket it is told to use.
        socket: PathBuf,
        /// Where its standard output and error go.
        log: PathBuf,
        /// The running process (leader of its own process group).
        child: Option<Child>,
    },
}

impl Target {
    /// The socket to connect to.
    pub fn socket(&self) -> &Path {
        match self {
            Target::Absent => Path::new(""),
            Target::Connect(path) | Target::Spawn { socket: path, .. } => path,
        }
    }

    /// Makes sure the implementation runs (spawning or restarting it) and accepts.
    ///
    /// # Errors
    ///
    /// The command cannot start, or nothing accepts on the socket in time.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if matches!(self, Target::Absent) {
            bail!("no implementation as server was given (--connect or --spawn)");
        }
        if let Target::Spawn {
            command,
            socket,
            log,
            child,
        } = self
        {
            let alive = match child {
                Some(process) => process.try_wait()?.is_none(),
                None => false,
            };
            if !alive {
                let _ = std::fs::remove_file(&*socket);
                let output = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&*log)
                    .with_context(|| format!("cannot open {}", log.display()))?;
                let errors = output.try_clone()?;
                // Its own process group, so stopping it stops whatever the command started.
                let process = Command::new("sh")
                    .arg("-c")
                    .arg(&*command)
                    .env("IPCSPEC_ADDRESS", format!("unix:{}", socket.display()))
                    .stdin(Stdio::null())
                    .stdout(output)
                    .stderr(errors)
                    .process_group(0)
                    .spawn()
                    .with_context(|| format!("cannot start `{command}`"))?;
                *child = Some(process);
            }
        }
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            match UnixStream::connect(self.socket()) {
                Ok(_probe) => return Ok(()),
                Err(error) if Instant::now() >= deadline => {
                    bail!(
                        "nothing accepts on {} after {:?}: {error}",
                        self.socket().display(),
                        CONNECT_TIMEOUT
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// If the spawned implementation exited, its status (and it will be restarted).
    pub fn crashed(&mut self) -> Option<String> {
        if let Target::Spawn {
            child: Some(process),
            ..
        } = self
            && let Ok(Some(status)) = process.try_wait()
        {
            return Some(status.to_string());
        }
        None
    }

    /// Like [`Target::crashed`], but waits up to `grace` for the process to be gone: a
    /// process that dies closes its sockets a moment before its exit status exists.
    pub fn crashed_within(&mut self, grace: Duration) -> Option<String> {
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.crashed() {
                return Some(status);
            }
            if !matches!(self, Target::Spawn { .. }) || Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops a spawned implementation: SIGTERM to its process group, SIGKILL if it is
    /// still there a few seconds later.
    pub fn stop(&mut self) {
        if let Target::Spawn {
            child: Some(process),
            ..
        } = self
        {
            stop_group(process);
        }
    }
}

/// What a case ended as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every step passed.
    Ok,
    /// An acceptable alternative passed.
    NonStrict,
    /// The implementation did something the case does not accept.
    Failed,
    /// The harness could not run the case.
    Error,
    /// Not run (level, features, filters).
    Skipped,
    /// Failed, as the expected-failures file says.
    ExpectedFailure,
    /// Passed although the expected-failures file says it fails.
    UnexpectedPass,
}

impl Verdict {
    /// Counts as a pass in the summary.
    #[must_use]
    pub fn passed(self) -> bool {
        matches!(
            self,
            Verdict::Ok | Verdict::NonStrict | Verdict::ExpectedFailure
        )
    }
}

/// One line of a transcript.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Milliseconds since the case started.
    pub at_ms: u64,
    /// The connection.
    pub connection: String,
    /// `sent`, `received`, `closed`, `note`.
    pub kind: &'static str,
    /// The bytes, in hex (the first 4 KiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    /// The bytes as text (the first 4 KiB), or the note.
    pub text: String,
}

/// The outcome of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its group.
    pub group: String,
    /// `must` or `should`.
    pub level: crate::scenario::Level,
    /// The anchors it checks.
    pub cites: Vec<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// What was expected (the step that decided), or why it was skipped.
    pub expected: String,
    /// What happened instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// How long it took.
    pub duration_ms: u64,
    /// Everything sent and received.
    pub transcript: Vec<Event>,
}

/// What every case can use.
#[derive(Debug)]
pub struct Context {
    /// The catalogue's wire.
    pub protocol: Protocol,
    /// The implementation's limits.
    pub capabilities: Capabilities,
    /// `${user}`.
    pub user: String,
    /// `${otherUser}`.
    pub other_user: String,
}

/// A login name the runner is not, for `${otherUser}` when none is given: `nobody`, or
/// `root` when the runner itself is `nobody`.
#[must_use]
pub fn default_other_user() -> &'static str {
    match nix::unistd::User::from_uid(nix::unistd::Uid::current()) {
        Ok(Some(user)) if user.name == "nobody" => "root",
        _ => "nobody",
    }
}

impl Context {
    /// The context of a run against the catalogue at `spec`: its wire, the capabilities
    /// (the catalogue's, with the file's values over them), the runner's login name as
    /// `${user}` and `other_user` as `${otherUser}`.
    ///
    /// # Errors
    ///
    /// An invalid catalogue or capabilities file; a runner uid without a login name.
    pub fn new(
        spec: &Path,
        capabilities: Option<&Path>,
        other_user: &str,
    ) -> anyhow::Result<Context> {
        let (protocol, mut caps) = Protocol::load(spec)?;
        if let Some(path) = capabilities {
            caps = caps.overlay(path)?;
        }
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::current())
            .ok()
            .flatten()
            .map(|u| u.name)
            .ok_or_else(|| anyhow!("the runner's uid has no login name"))?;
        Ok(Context {
            protocol,
            capabilities: caps,
            user,
            other_user: other_user.to_owned(),
        })
    }

    /// Evaluates a duration (milliseconds).
    ///
    /// # Errors
    ///
    /// See [`Context::number`].
    pub fn duration(&self, wait: &Wait) -> anyhow::Result<Duration> {
        self.number(wait).map(Duration::from_millis)
    }

    /// Evaluates a number or a capability expression.
    ///
    /// # Errors
    ///
    /// An expression naming an unknown capability or not of the form
    /// `<capability>[*<factor>][+<n>]`.
    pub fn number(&self, wait: &Wait) -> anyhow::Result<u64> {
        match wait {
            Wait::Millis(n) => Ok(*n),
            Wait::Expr(expr) => {
                let compact: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
                let (head, plus) = match compact.split_once('+') {
                    Some((head, plus)) => (head, plus.parse::<u64>().ok()),
                    None => (compact.as_str(), Some(0)),
                };
                let (head, divisor) = match head.split_once('/') {
                    Some((head, divisor)) => (head, divisor.parse::<u64>().ok().filter(|d| *d > 0)),
                    None => (head, Some(1)),
                };
                let (name, factor) = match head.split_once('*') {
                    Some((name, factor)) => (name, factor.parse::<u64>().ok()),
                    None => (head, Some(1)),
                };
                let (Ok(base), Some(factor), Some(divisor), Some(plus)) =
                    (self.capabilities.get(name), factor, divisor, plus)
                else {
                    bail!(
                        "`{expr}` is not `<capability>[*<factor>][/<divisor>][+<n>]` with a known capability"
                    );
                };
                let Some(base) = base else {
                    bail!(
                        "`{expr}` needs `{name}`, which the catalogue does not state: give it in the capabilities file"
                    );
                };
                Ok(base.saturating_mul(factor) / divisor + plus)
            }
        }
    }
}

/// One connection of a case.
struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    /// Frames read but not consumed by an expectation.
    backlog: VecDeque<Vec<u8>>,
    eof: bool,
}

/// Why a step did not pass.
enum StepError {
    /// The implementation's behaviour: the case fails (or an alternative applies).
    Mismatch { expected: String, actual: String },
    /// The harness could not do its part.
    Harness(anyhow::Error),
}

impl From<anyhow::Error> for StepError {
    fn from(error: anyhow::Error) -> Self {
        StepError::Harness(error)
    }
}

/// A running case.
struct Run<'a> {
    ctx: &'a Context,
    socket: &'a Path,
    /// Client cases: connections are accepted from the implementation, not opened.
    listener: Option<&'a std::os::unix::net::UnixListener>,
    /// Client cases: the implementation's process.
    client: Option<Child>,
    started: Instant,
    conns: BTreeMap<String, Conn>,
    ids: HashMap<String, String>,
    transcript: Vec<Event>,
}

fn clip(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(4096)]
}

fn hex(bytes: &[u8]) -> String {
    clip(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl Run<'_> {
    fn log(&mut self, connection: &str, kind: &'static str, bytes: Option<&[u8]>, text: String) {
        self.transcript.push(Event {
            at_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            connection: connection.to_owned(),
            kind,
            hex: bytes.map(hex),
            text,
        });
    }

    fn conn(&mut self, name: &str) -> anyhow::Result<&mut Conn> {
        if !self.conns.contains_key(name) {
            let stream = match self.listener {
                None => UnixStream::connect(self.socket)
                    .with_context(|| format!("connecting to {}", self.socket.display()))?,
                Some(listener) => {
                    accept(listener, Instant::now() + CONNECT_TIMEOUT)?.ok_or_else(|| {
                        anyhow!("the client did not connect within {CONNECT_TIMEOUT:?}")
                    })?
                }
            };
            self.log(name, "note", None, "connected".to_owned());
            self.conns.insert(
                name.to_owned(),
                Conn {
                    stream,
                    buf: Vec::new(),
                    backlog: VecDeque::new(),
                    eof: false,
                },
            );
        }
        self.conns
            .get_mut(name)
            .ok_or_else(|| anyhow!("connection {name} vanished"))
    }

    /// Replaces `${user}`, `${otherUser}`, `${uuid}` and `${id:<name>}` in every string.
    fn substitute(&self, value: &Value) -> Value {
        match value {
            Value::String(text) if text.contains("${") => {
                let mut out = text
                    .replace("${user}", &self.ctx.user)
                    .replace("${otherUser}", &self.ctx.other_user);
                while let Some(at) = out.find("${uuid}") {
                    out.replace_range(at..at + 7, &uuid::Uuid::new_v4().to_string());
                }
                for (name, id) in &self.ids {
                    out = out.replace(&format!("${{id:{name}}}"), id);
                }
                Value::String(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.substitute(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.substitute(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The body bytes of a send step.
    fn body(&mut self, body: &Body) -> anyhow::Result<Vec<u8>> {
        Ok(match body {
            Body::Json(value) => serde_json::to_vec(&self.substitute(value))?,
            Body::Text(text) => text.clone().into_bytes(),
            Body::Hex(text) => decode_hex(text)?,
            Body::Message(message) => {
                let protocol = &self.ctx.protocol;
                let id = match &message.id {
                    Some(id) => match self.substitute(&Value::String(id.clone())) {
                        Value::String(id) => id,
                        _ => id.clone(),
                    },
                    None => uuid::Uuid::new_v4().to_string(),
                };
                if let Some(name) = &message.name {
                    self.ids.insert(name.clone(), id.clone());
                }
                let mut envelope = serde_json::Map::new();
                if let Some(key) = &protocol.id_key {
                    envelope.insert(key.clone(), Value::String(id));
                }
                envelope.insert(
                    protocol.type_key.clone(),
                    Value::String(message.message_type.clone()),
                );
                if let Some(key) = &protocol.timestamp_key {
                    let now = time::OffsetDateTime::now_utc()
                        .format(&time::format_description::well_known::Rfc3339)?;
                    envelope.insert(key.clone(), Value::String(now));
                }
                let mut payload = self.substitute(&message.payload);
                if let Some(pad) = &message.pad {
                    // Sized below, once the envelope around it is known.
                    set_path(&mut payload, &pad.field, Value::String(String::new()))?;
                }
                if let Some(key) = &protocol.payload_key {
                    envelope.insert(key.clone(), payload);
                }
                for (key, value) in &message.envelope {
                    if value.is_null() {
                        envelope.remove(key);
                    } else {
                        envelope.insert(key.clone(), self.substitute(value));
                    }
                }
                let mut value = Value::Object(envelope);
                if let Some(pad) = &message.pad {
                    let size = match pad.size.as_str() {
                        "max" => self.ctx.capabilities.max_message_bytes,
                        "max+1" => self.ctx.capabilities.max_message_bytes + 1,
                        n => n
                            .parse()
                            .map_err(|_| anyhow!("pad size `{n}` is not max, max+1 or a number"))?,
                    };
                    let size = usize::try_from(size)?;
                    let base = serde_json::to_vec(&value)?.len();
                    let fill = size.checked_sub(base).ok_or_else(|| {
                        anyhow!("the message is already {base} bytes, over {size}")
                    })?;
                    let field = match &protocol.payload_key {
                        Some(key) => format!("{key}.{}", pad.field),
                        None => pad.field.clone(),
                    };
                    set_path(&mut value, &field, Value::String("x".repeat(fill)))?;
                }
                serde_json::to_vec(&value)?
            }
        })
    }

    fn send(&mut self, name: &str, send: &Send) -> Result<(), StepError> {
        if let (Some(count), Body::Message(message)) = (send.sequence, &send.body) {
            let base = message
                .id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let mut frames = Vec::new();
            for n in 1..=count {
                let mut one = message.clone();
                one.id = Some(format!("{base}-{n}"));
                let body = self.body(&Body::Message(one))?;
                frames.extend(self.frame(send, &body)?);
            }
            self.log(
                name,
                "sent",
                Some(&frames),
                format!("{count} {} messages in one write", message.message_type),
            );
            let conn = self.conn(name)?;
            return conn
                .stream
                .write_all(&frames)
                .map_err(|error| StepError::Mismatch {
                    expected: "the implementation reads the frames".to_owned(),
                    actual: format!("writing failed: {error}"),
                });
        }
        let body = self.body(&send.body)?;
        let frame = self.frame(send, &body)?;
        self.write(name, send, &body, frame)
    }

    /// The frame around `body`: prefix or newline, then the send's overrides.
    fn frame(&self, send: &Send, body: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut frame = match self.ctx.protocol.framing {
            framing @ FrameKind::LengthPrefixed { width, .. } => {
                let declared = send.length.unwrap_or(body.len() as u64);
                let mut frame = framing.prefix(declared).ok_or_else(|| {
                    anyhow!("length {declared} does not fit a {width}-byte prefix")
                })?;
                frame.extend_from_slice(body);
                frame
            }
            FrameKind::Newline => {
                let mut frame = body.to_vec();
                frame.push(b'\n');
                frame
            }
        };
        if let Some(keep) = send.truncate {
            frame.truncate(keep);
        }
        if let Some(copies) = send.repeat {
            frame = frame.repeat(copies.max(1));
        }
        Ok(frame)
    }

    fn write(
        &mut self,
        name: &str,
        send: &Send,
        body: &[u8],
        frame: Vec<u8>,
    ) -> Result<(), StepError> {
        let text = String::from_utf8_lossy(clip(body)).into_owned();
        self.log(name, "sent", Some(&frame), text);
        let chunks = send.chunks.clone();
        let conn = self.conn(name)?;
        let result = match chunks {
            Some(sizes) if !sizes.is_empty() && sizes.iter().all(|s| *s > 0) => {
                let mut rest: &[u8] = &frame;
                let mut result = Ok(());
                for size in sizes.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (piece, tail) = rest.split_at((*size).min(rest.len()));
                    if let Err(error) = conn
                        .stream
                        .write_all(piece)
                        .and_then(|()| conn.stream.flush())
                    {
                        result = Err(error);
                        break;
                    }
                    rest = tail;
                    std::thread::sleep(CHUNK_PAUSE);
                }
                result
            }
            _ => conn.stream.write_all(&frame),
        };
        match result {
            Ok(()) => Ok(()),
            // The implementation closed while the frame was being written (as it should
            // for an oversized frame): later steps see the close.
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                ) =>
            {
                conn.eof = true;
                self.log(
                    name,
                    "closed",
                    None,
                    format!("closed by the implementation during the write ({error})"),
                );
                Ok(())
            }
            Err(error) => Err(StepError::Harness(anyhow!(
                "writing to the implementation failed: {error}"
            ))),
        }
    }

    /// Reads one frame within `deadline`: `Ok(None)` at end of stream, `Err` on timeout.
    fn read_frame(&mut self, name: &str, deadline: Instant) -> Result<Option<Vec<u8>>, StepError> {
        let framing = self.ctx.protocol.framing;
        loop {
            let conn = self.conn(name)?;
            if let Some(frame) = conn.backlog.pop_front() {
                return Ok(Some(frame));
            }
            if let Some(frame) = cut(framing, &mut conn.buf)? {
                let text = String::from_utf8_lossy(clip(&frame)).into_owned();
                self.log(name, "received", Some(&frame), text);
                return Ok(Some(frame));
            }
            if conn.eof {
                return Ok(None);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StepError::Mismatch {
                    expected: String::new(),
                    actual: "timeout".to_owned(),
                });
            }
            conn.stream
                .set_read_timeout(Some(deadline - now))
                .map_err(anyhow::Error::from)?;
            let mut chunk = [0_u8; 64 * 1024];
            match conn.stream.read(&mut chunk) {
                Ok(0) => {
                    conn.eof = true;
                    let leftover = conn.buf.len();
                    self.log(name, "closed", None, format!("closed by the implementation ({leftover} bytes of an incomplete frame left)"));
                }
                Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => {
                    conn.eof = true;
                    self.log(name, "closed", None, format!("read failed: {error}"));
                }
            }
        }
    }

    fn ignored(&self, frame: &Value, skip: &[String]) -> bool {
        let kind = frame
            .get(&self.ctx.protocol.type_key)
            .and_then(Value::as_str);
        kind.is_some_and(|kind| {
            self.ctx.protocol.heartbeat.as_deref() == Some(kind) || skip.iter().any(|s| s == kind)
        })
    }

    fn expect(&mut self, name: &str, expect: &Expect) -> Result<(), StepError> {
        let pattern = self.substitute(&expect.frame);
        let deadline = Instant::now() + self.ctx.duration(&expect.within)?;
        let wanted = expect.count.unwrap_or(1);
        let mut found = 0;
        let mut passed_over = Vec::new();
        let outcome = loop {
            match self.read_frame(name, deadline) {
                Ok(Some(frame)) => {
                    let Ok(value) = serde_json::from_slice::<Value>(&frame) else {
                        break Err(format!(
                            "a frame that is not JSON: {}",
                            String::from_utf8_lossy(clip(&frame))
                        ));
                    };
                    if matches(&pattern, &value) {
                        for (key, path) in &expect.save {
                            if let Some(saved) = get_path(&value, path) {
                                let text = saved
                                    .as_str()
                                    .map_or_else(|| saved.to_string(), str::to_owned);
                                self.ids.insert(key.clone(), text);
                            }
                        }
                        found += 1;
                        if found == wanted {
                            break Ok(());
                        }
                        continue;
                    }
                    if self.ignored(&value, &expect.skip) || expect.skip_others {
                        passed_over.push(frame);
                        continue;
                    }
                    passed_over.push(frame);
                    break Err(format!("{value}"));
                }
                Ok(None) => {
                    break Err(format!(
                        "the connection was closed ({found} of {wanted} matching frames seen)"
                    ));
                }
                Err(StepError::Mismatch { .. }) => {
                    break Err(format!("{found} of {wanted} matching frames in time"));
                }
                Err(harness) => return Err(harness),
            }
        };
        outcome.map_err(|actual| {
            // An alternative may look at the same frames again.
            if let Some(conn) = self.conns.get_mut(name) {
                for frame in passed_over.into_iter().rev() {
                    conn.backlog.push_front(frame);
                }
            }
            StepError::Mismatch {
                expected: format!(
                    "a frame matching {pattern} within {:?}",
                    self.ctx.duration(&expect.within).unwrap_or_default()
                ),
                actual,
            }
        })
    }

    fn expect_close(&mut self, name: &str, close: &CloseWithin) -> Result<(), StepError> {
        let limit = self.ctx.duration(&close.within)?;
        let forbid = close
            .forbid
            .as_ref()
            .map(|pattern| self.substitute(pattern));
        let deadline = Instant::now() + limit;
        loop {
            match self.read_frame(name, deadline) {
                Ok(Some(frame)) => {
                    if let Some(pattern) = &forbid
                        && serde_json::from_slice::<Value>(&frame)
                            .is_ok_and(|value| matches(pattern, &value))
                    {
                        return Err(StepError::Mismatch {
                            expected: format!(
                                "the connection closed without a frame matching {pattern}"
                            ),
                            actual: String::from_utf8_lossy(clip(&frame)).into_owned(),
                        });
                    }
                }
                Ok(None) => return Ok(()),
                Err(StepError::Mismatch { .. }) => {
                    return Err(StepError::Mismatch {
                        expected: format!(
                            "the implementation closes the connection within {limit:?}"
                        ),
                        actual: "the connection is still open".to_owned(),
                    });
                }
                Err(harness) => return Err(harness),
            }
        }
    }

    fn expect_silence(&mut self, name: &str, during: &Wait) -> Result<(), StepError> {
        let limit = self.ctx.duration(during)?;
        let deadline = Instant::now() + limit;
        loop {
            match self.read_frame(name, deadline) {
                Ok(Some(frame)) => {
                    let value = serde_json::from_slice::<Value>(&frame).unwrap_or(Value::Null);
                    if !self.ignored(&value, &[]) {
                        return Err(StepError::Mismatch {
                            expected: format!("no frame for {limit:?}"),
                            actual: String::from_utf8_lossy(clip(&frame)).into_owned(),
                        });
                    }
                }
                Ok(None) => {
                    return Err(StepError::Mismatch {
                        expected: format!("the connection stays open and silent for {limit:?}"),
                        actual: "the connection was closed".to_owned(),
                    });
                }
                Err(StepError::Mismatch { .. }) => return Ok(()),
                Err(harness) => return Err(harness),
            }
        }
    }

    fn step(&mut self, step: &Step) -> Result<(), StepError> {
        let name = step.connection.clone().unwrap_or_else(|| "main".to_owned());
        match &step.action {
            Action::Send(send) => self.send(&name, send),
            Action::Expect(expect) => self.expect(&name, expect),
            Action::ExpectClose(close) => self.expect_close(&name, close),
            Action::ExpectSilence(during) => self.expect_silence(&name, &during.duration),
            Action::Pause(during) => {
                std::thread::sleep(self.ctx.duration(&during.duration)?);
                Ok(())
            }
            Action::ExpectNoConnection(during) => {
                let limit = self.ctx.duration(&during.duration)?;
                let Some(listener) = self.listener else {
                    return Err(StepError::Harness(anyhow!(
                        "expectNoConnection is for client cases"
                    )));
                };
                match accept(listener, Instant::now() + limit)? {
                    None => Ok(()),
                    Some(stream) => {
                        self.log(&name, "note", None, "an unexpected connection".to_owned());
                        drop(stream);
                        Err(StepError::Mismatch {
                            expected: format!("no new connection for {limit:?}"),
                            actual: "the client connected again".to_owned(),
                        })
                    }
                }
            }
            Action::ExpectExit(exit) => {
                let limit = self.ctx.duration(&exit.within)?;
                let Some(child) = self.client.as_mut() else {
                    return Err(StepError::Harness(anyhow!(
                        "expectExit is for client cases"
                    )));
                };
                let deadline = Instant::now() + limit;
                loop {
                    if let Some(status) = child.try_wait().map_err(anyhow::Error::from)? {
                        self.log(&name, "note", None, format!("the client exited: {status}"));
                        return match exit.code {
                            Some(code) if status.code() != Some(code) => Err(StepError::Mismatch {
                                expected: format!("the client exits with {code}"),
                                actual: format!("it exited: {status}"),
                            }),
                            _ => Ok(()),
                        };
                    }
                    if Instant::now() >= deadline {
                        return Err(StepError::Mismatch {
                            expected: format!("the client exits within {limit:?}"),
                            actual: "it is still running".to_owned(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Action::Fill(fill) => {
                let count = self.ctx.number(&fill.connections)?;
                for n in 1..=count {
                    self.conn(&format!("fill-{n}"))?;
                }
                Ok(())
            }
            Action::Close(_) => {
                if let Some(conn) = self.conns.remove(&name) {
                    let _ = conn.stream.shutdown(std::net::Shutdown::Both);
                    self.log(&name, "note", None, "closed by the runner".to_owned());
                }
                Ok(())
            }
        }
    }

    /// Runs `steps`; on a mismatch, the index of the failing step and what happened.
    fn steps(&mut self, steps: &[Step]) -> Result<(), (usize, StepError)> {
        for (index, step) in steps.iter().enumerate() {
            self.step(step).map_err(|error| (index, error))?;
        }
        Ok(())
    }
}

/// Cuts one frame from `buf`, if complete.
fn cut(framing: FrameKind, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, StepError> {
    match framing {
        FrameKind::LengthPrefixed { width, .. } => {
            let Some(declared) = framing.read_prefix(buf) else {
                return Ok(None);
            };
            // Checked before anything is kept for the frame.
            let declared = usize::try_from(declared)
                .ok()
                .filter(|&declared| declared <= RUNNER_MAX_FRAME)
                .ok_or_else(|| StepError::Mismatch {
                    expected: "frames of a sane size".to_owned(),
                    actual: format!("the implementation declared a frame of {declared} bytes"),
                })?;
            if buf.len() < width + declared {
                return Ok(None);
            }
            let frame = buf[width..width + declared].to_vec();
            buf.drain(..width + declared);
            Ok(Some(frame))
        }
        FrameKind::Newline => match buf.iter().position(|b| *b == b'\n') {
            Some(at) => {
                let frame = buf[..at].to_vec();
                buf.drain(..=at);
                Ok(Some(frame))
            }
            None => Ok(None),
        },
    }
}

/// Whether `actual` matches `pattern` (objects by subset, `$any`, `$absent`).
#[must_use]
pub fn matches(pattern: &Value, actual: &Value) -> bool {
    match (pattern, actual) {
        (Value::String(s), _) if s == "$any" => true,
        (Value::Object(expected), Value::Object(actual)) => {
            expected
                .iter()
                .all(|(key, want)| match (want, actual.get(key)) {
                    (Value::String(s), None) if s == "$absent" => true,
                    (Value::String(s), Some(_)) if s == "$absent" => false,
                    (_, None) => false,
                    (want, Some(got)) => matches(want, got),
                })
        }
        (Value::Array(expected), Value::Array(actual)) => {
            expected.len() == actual.len()
                && expected.iter().zip(actual).all(|(w, g)| matches(w, g))
        }
        (expected, actual) => expected == actual,
    }
}

/// The value at a dot-separated path.
fn get_path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(value, |current, part| current.get(part))
}

/// Accepts one connection before `deadline`; `None` when none came.
fn accept(
    listener: &std::os::unix::net::UnixListener,
    deadline: Instant,
) -> anyhow::Result<Option<UnixStream>> {
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(Some(stream));
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Sets the value at a dot-separated path, creating objects on the way.
fn set_path(value: &mut Value, path: &str, new: Value) -> anyhow::Result<()> {
    let mut current = value;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(map) = current else {
            bail!("`{path}` does not lead through objects");
        };
        if parts.peek().is_none() {
            map.insert(part.to_owned(), new);
            return Ok(());
        }
        current = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    Ok(())
}

fn decode_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if clean.len() % 2 != 0 {
        bail!("hex `{text}` has an odd number of digits");
    }
    (0..clean.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&clean[i..i + 2], 16).map_err(|e| anyhow!("bad hex `{text}`: {e}"))
        })
        .collect()
}

/// Runs one case on fresh connections to `socket`.
#[must_use]
pub fn run_case(ctx: &Context, socket: &Path, case: &Case) -> CaseResult {
    let run = Run {
        ctx,
        socket,
        listener: None,
        client: None,
        started: Instant::now(),
        conns: BTreeMap::new(),
        ids: HashMap::new(),
        transcript: Vec::new(),
    };
    finish(run, case)
}

/// Runs one client case: listens on a fresh socket, starts `command` with the socket in
/// `IPCSPEC_ADDRESS` and the case id in `IPCSPEC_CASE`, writes the case's client input
/// to its stdin, and plays the steps on the connections it opens (`main` first). Its
/// output goes to the transcript; it is stopped at the end.
#[must_use]
pub fn run_client_case(ctx: &Context, command: &str, case: &Case) -> CaseResult {
    let started = Instant::now();
    let prepared = (|| -> anyhow::Result<(tempfile_dir::Dir, std::os::unix::net::UnixListener)> {
        let dir = tempfile_dir::Dir::new()?;
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("runner.sock"))?;
        Ok((dir, listener))
    })();
    let (dir, listener) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return harness_failure(case, started, &error),
    };
    let socket = dir.path().join("runner.sock");
    let mut run = Run {
        ctx,
        socket: &socket,
        listener: Some(&listener),
        client: None,
        started,
        conns: BTreeMap::new(),
        ids: HashMap::new(),
        transcript: Vec::new(),
    };
    let input: Vec<String> = case
        .client_input
        .iter()
        .map(|line| run.substitute(line).to_string())
        .collect();
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("IPCSPEC_ADDRESS", format!("unix:{}", socket.display()))
        .env("IPCSPEC_CASE", &case.id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            return harness_failure(case, started, &anyhow!("cannot start `{command}`: {error}"));
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        for line in &input {
            let _ = writeln!(stdin, "{line}");
        }
        // Dropping stdin ends the input: the client sends what it was given and goes on.
    }
    let output = collect_output(child.stdout.take(), child.stderr.take());
    run.client = Some(child);
    let mut result = finish_borrowed(&mut run, case);
    if let Some(mut child) = run.client.take() {
        stop_group(&mut child);
    }
    for line in output.join() {
        result.transcript.push(line);
    }
    drop(dir);
    result
}

/// The client's output lines, as transcript events, once it has exited.
struct Output(Vec<std::thread::JoinHandle<Vec<Event>>>);

impl Output {
    fn join(self) -> Vec<Event> {
        self.0
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    }
}

fn collect_output(
    stdout: Option<std::process::ChildStdout>,
    stderr: Option<std::process::ChildStderr>,
) -> Output {
    fn lines(
        stream: impl Read + std::marker::Send + 'static,
        connection: &'static str,
    ) -> std::thread::JoinHandle<Vec<Event>> {
        std::thread::spawn(move || {
            let reader = std::io::BufReader::new(stream);
            std::io::BufRead::lines(reader)
                .map_while(Result::ok)
                .map(|text| Event {
                    at_ms: 0,
                    connection: connection.to_owned(),
                    kind: "note",
                    hex: None,
                    text,
                })
                .collect()
        })
    }
    let mut handles = Vec::new();
    if let Some(out) = stdout {
        handles.push(lines(out, "client stdout"));
    }
    if let Some(err) = stderr {
        handles.push(lines(err, "client stderr"));
    }
    Output(handles)
}

/// SIGTERM to the process group, then SIGKILL.
fn stop_group(child: &mut Child) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Ok(pid) = i32::try_from(child.id()) {
        let group = Pid::from_raw(pid);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = killpg(group, Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn harness_failure(case: &Case, started: Instant, error: &anyhow::Error) -> CaseResult {
    CaseResult {
        id: case.id.clone(),
        title: case.title.clone(),
        group: case.group.clone(),
        level: case.level,
        cites: case.cites.clone(),
        verdict: Verdict::Error,
        expected: "the harness runs the case".to_owned(),
        actual: Some(format!("{error:#}")),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        transcript: Vec::new(),
    }
}

/// A private temporary directory (removed on drop).
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> std::io::Result<Dir> {
            let path = std::env::temp_dir().join(format!(
                "ipcspec-conformance-client-{}",
                uuid::Uuid::new_v4()
            ));
            std::fs::create_dir_all(&path)?;
            Ok(Dir(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn finish(mut run: Run<'_>, case: &Case) -> CaseResult {
    finish_borrowed(&mut run, case)
}

/// Plays the case's steps (and alternatives) and builds its result.
fn finish_borrowed(run: &mut Run<'_>, case: &Case) -> CaseResult {
    let (verdict, expected, actual) = match run.steps(&case.steps) {
        Ok(()) => (Verdict::Ok, "every step".to_owned(), None),
        Err((_, StepError::Harness(error))) => (
            Verdict::Error,
            "the harness runs the case".to_owned(),
            Some(format!("{error:#}")),
        ),
        Err((index, StepError::Mismatch { expected, actual })) => {
            let mut outcome = (
                Verdict::Failed,
                format!("step {}: {expected}", index + 1),
                Some(actual),
            );
            for alternative in case.alternatives.iter().filter(|a| a.from == index) {
                run.log(
                    "main",
                    "note",
                    None,
                    format!("trying the alternative: {}", alternative.note),
                );
                match run.steps(&alternative.steps) {
                    Ok(()) => {
                        let verdict = if alternative.verdict == "non-strict" {
                            Verdict::NonStrict
                        } else {
                            Verdict::Ok
                        };
                        outcome = (verdict, alternative.note.clone(), None);
                        break;
                    }
                    Err((_, StepError::Harness(error))) => {
                        outcome = (
                            Verdict::Error,
                            "the harness runs the case".to_owned(),
                            Some(format!("{error:#}")),
                        );
                        break;
                    }
                    Err(_) => {}
                }
            }
            outcome
        }
    };
    let duration_ms = u64::try_from(run.started.elapsed().as_millis()).unwrap_or(u64::MAX);
    CaseResult {
        id: case.id.clone(),
        title: case.title.clone(),
        group: case.group.clone(),
        level: case.level,
        cites: case.cites.clone(),
        verdict,
        expected,
        actual,
        duration_ms,
        transcript: std::mem::take(&mut run.transcript),
    }
}
