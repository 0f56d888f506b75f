//! Harness for the end-to-end tests: the real `migration-service` and `migration-agent`
//! binaries as child processes, agents running under real uids when the tests run as
//! root, and the service's database read directly.
//!
//! Timeouts here only bound how long a broken build can hang a test; none of them is a
//! performance assertion.

#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// How long any single expectation may wait before the test fails as hung.
pub const HANG: Duration = Duration::from_secs(60);

pub const SERVICE: &str = env!("CARGO_BIN_EXE_migration-service");
pub const AGENT: &str = env!("CARGO_BIN_EXE_migration-agent");

/// A directory every uid may enter (the socket lives there).
pub fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A local user the tests can run an agent as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
}

/// Up to `max` distinct users: every account of `/etc/passwd` whose name is a valid
/// `UserId` when the tests run as root (so agents run as those uids), else only the
/// current user.
pub fn identities(max: usize) -> Vec<Identity> {
    let me = nix::unistd::Uid::current();
    let current = || {
        let user = nix::unistd::User::from_uid(me).unwrap().unwrap();
        Identity {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            name: user.name,
        }
    };
    if !me.is_root() {
        return vec![current()];
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let valid = regex_lite_valid_user;
    let mut found: Vec<Identity> = Vec::new();
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 4 {
            continue;
        }
        let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse()) else {
            continue;
        };
        // Resolve through NSS as the service does, so names and uids agree.
        let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
            continue;
        };
        if user.name != fields[0] || !valid(&user.name) || found.iter().any(|i| i.uid == uid) {
            continue;
        }
        found.push(Identity {
            uid,
            gid,
            name: user.name,
        });
        if found.len() == max {
            break;
        }
    }
    if found.is_empty() {
        found.push(current());
    }
    found
}

/// The catalogue's `UserId` pattern, `^[A-Za-z0-9_][A-Za-z0-9._-]*$`, at most 32 chars.
fn regex_lite_valid_user(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 32
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Collects a child's stderr lines.
fn collect_lines(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    log: Arc<Mutex<String>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

/// A running `migration-service`.
pub struct ServiceProcess {
    child: Child,
    pub socket: PathBuf,
    pub db: PathBuf,
    log: Arc<Mutex<String>>,
    pub args: Vec<String>,
}

impl ServiceProcess {
    /// Starts the service on `dir/ipc.sock` with `dir/state.db` and `extra` flags, and
    /// waits for `listening on`.
    pub async fn start(dir: &Path, extra: &[&str]) -> ServiceProcess {
        let socket = dir.join("ipc.sock");
        let db = dir.join("state.db");
        let mut args = vec![
            "--socket".to_owned(),
            socket.display().to_string(),
            "--db".to_owned(),
            db.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self::start_with(socket, db, args).await
    }

    /// Starts the service with exactly `args` (which must name `socket` and `db`), and
    /// waits for `listening on`.
    pub async fn start_args(socket: PathBuf, db: PathBuf, args: &[&str]) -> ServiceProcess {
        let args = args.iter().map(|s| (*s).to_owned()).collect();
        Self::start_with(socket, db, args).await
    }

    /// Starts the service like [`ServiceProcess::start`], writing every state-machine
    /// transition it takes to `log` (`IPCSPEC_TRANSITION_LOG`).
    pub async fn start_logged(dir: &Path, extra: &[&str], log: &Path) -> ServiceProcess {
        let socket = dir.join("ipc.sock");
        let db = dir.join("state.db");
        let mut args = vec![
            "--socket".to_owned(),
            socket.display().to_string(),
            "--db".to_owned(),
            db.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self::start_env(socket, db, args, Some(log)).await
    }

    async fn start_with(socket: PathBuf, db: PathBuf, args: Vec<String>) -> ServiceProcess {
        Self::start_env(socket, db, args, None).await
    }

    async fn start_env(
        socket: PathBuf,
        db: PathBuf,
        args: Vec<String>,
        transition_log: Option<&Path>,
    ) -> ServiceProcess {
        let mut command = Command::new(SERVICE);
        if let Some(log) = transition_log {
            command.env(ipcspec_runtime::machine::TRANSITION_LOG_ENV, log);
        }
        let mut child = command
            .args(&args)
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        collect_lines(child.stderr.take().unwrap(), Arc::clone(&log));
        let service = ServiceProcess {
            child,
            socket,
            db,
            log,
            args,
        };
        let expected = format!("listening on {}", service.socket.display());
        service.wait_log(&expected).await;
        service
    }

    /// Starts the same service again (same socket, database and flags).
    pub async fn restart(&mut self) {
        let _ = self.child.wait().await;
        let next = Self::start_with(self.socket.clone(), self.db.clone(), self.args.clone()).await;
        *self = next;
    }

    /// Everything the service logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `text`.
    pub async fn wait_log(&self, text: &str) {
        let found = tokio::time::timeout(HANG, async {
            loop {
                if self.log().contains(text) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "the service never logged {text:?}; log:\n{}",
            self.log()
        );
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        self.child.start_kill().unwrap();
    }

    /// SIGTERM, then waits for the exit.
    pub async fn stop(&mut self) -> ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        tokio::time::timeout(HANG, self.child.wait())
            .await
            .unwrap()
            .unwrap()
    }

    /// The metrics page, when started with `--metrics-address`.
    pub async fn metrics(&self) -> String {
        let log = self.log();
        let address = log
            .lines()
            .find_map(|l| l.split("metrics on http://").nth(1))
            .and_then(|rest| rest.split('/').next())
            .expect("started without --metrics-address")
            .to_owned();
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut response)
            .await
            .unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response
    }

    /// Runs `migration-service ARGS --db DB` (status, push) and returns its stdout.
    pub async fn admin(&self, args: &[&str]) -> String {
        let mut command = Command::new(SERVICE);
        let (subcommand, rest) = args.split_first().unwrap();
        command.arg(subcommand).arg("--db").arg(&self.db).args(rest);
        let output = command.output().await.unwrap();
        assert!(
            output.status.success(),
            "migration-service {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// The journal of handled messages: `(user, session, message id, type)` in order.
    pub fn journal(&self) -> Vec<(String, String, String, String)> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT user_id, session_id, message_id, message_type FROM handled ORDER BY seq",
            )
            .unwrap();
        stmt.query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }
}

/// A running `migration-agent run`, driven through its stdin and stdout.
pub struct AgentProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Every line received so far.
    pub seen: Vec<Value>,
    stderr: Arc<Mutex<String>>,
    pub user: String,
    pub session: String,
}

impl AgentProcess {
    /// Starts `migration-agent ARGS` as `identity` with `--session session`.
    pub fn spawn(socket: &Path, identity: &Identity, session: &str, args: &[&str]) -> Self {
        let mut command = Command::new(AGENT);
        command
            .arg("--socket")
            .arg(socket)
            .arg("--session")
            .arg(session)
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("XDG_SESSION_ID")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if identity.uid != nix::unistd::Uid::current().as_raw() {
            command.uid(identity.uid).gid(identity.gid);
        }
        let mut child = command.spawn().unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        collect_lines(child.stderr.take().unwrap(), Arc::clone(&stderr));
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("agent printed a non-JSON line {line:?}: {e}"));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        AgentProcess {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            stderr,
            user: identity.name.clone(),
            session: session.to_owned(),
        }
    }

    /// Writes one message line: `{"id", "type", "payload"}`.
    pub async fn send(&mut self, id: &str, message_type: &str, payload: Value) {
        let line = json!({"id": id, "type": message_type, "payload": payload});
        self.write_line(&line.to_string()).await;
    }

    /// Writes a raw line to the agent's stdin.
    pub async fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// Ends stdin: the agent exits once everything sent is acknowledged.
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits for the first line (not yet consumed) for which `matches` holds.
    pub async fn expect(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + HANG;
        loop {
            let next = tokio::time::timeout_at(deadline, self.lines.recv()).await;
            match next {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Ok(None) | Err(_) => panic!(
                    "agent {}/{} never received {what}; it printed {:#?}\nstderr: {}",
                    self.user,
                    self.session,
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    /// Waits for a message of `message_type`.
    pub async fn expect_type(&mut self, message_type: &str) -> Value {
        self.expect(message_type, |v| v["type"] == message_type)
            .await
    }

    /// Waits for the acknowledgment of message `id` and returns its payload.
    pub async fn ack_of(&mut self, id: &str) -> Value {
        self.expect(&format!("the acknowledgment of {id}"), |v| {
            v["type"] == "ACKNOWLEDGMENT" && v["correlationId"] == id
        })
        .await["payload"]
            .clone()
    }

    /// Sends a message and asserts it is accepted.
    pub async fn call(&mut self, id: &str, message_type: &str, payload: Value) {
        self.send(id, message_type, payload).await;
        let ack = self.ack_of(id).await;
        assert_eq!(
            ack["success"], true,
            "{message_type} {id} from {}/{} refused: {ack}",
            self.user, self.session
        );
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the agent to exit.
    pub async fn wait(&mut self) -> ExitStatus {
        self.stdin.take();
        tokio::time::timeout(HANG, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("agent {}/{} did not exit", self.user, self.session))
            .unwrap()
    }
}

/// Runs `migration-agent ARGS` to completion as `identity`: (exit code, stdout, stderr).
pub async fn agent_command(
    socket: &Path,
    identity: &Identity,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let mut command = Command::new(AGENT);
    command
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("XDG_SESSION_ID")
        .kill_on_drop(true);
    if identity.uid != nix::unistd::Uid::current().as_raw() {
        command.uid(identity.uid).gid(identity.gid);
    }
    let output = tokio::time::timeout(HANG, command.output())
        .await
        .unwrap()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// RFC 3339 for `now + offset`.
pub fn in_future(offset: Duration) -> String {
    let at = time::OffsetDateTime::now_utc() + offset;
    at.replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
