//! The durable store: per-user migration state, the journal of handled messages, the
//! outbox and operator commands, in one SQLite database, written by one thread with group
//! commit.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous=FULL`. In WAL mode SQLite's default
//! `NORMAL` only syncs the log at checkpoints, so the last transactions before a power
//! loss can vanish even though `COMMIT` returned; `FULL` syncs the WAL on every commit.
//! The service acknowledges a message to its agent only after [`Store::commit`] returns,
//! and an acknowledged message is never resent, so a commit that could be lost after the
//! acknowledgment would lose the message for good. The price of one `fsync` per
//! transaction is paid once per *batch*, not once per message (group commit, below).
//!
//! # Group commit
//!
//! A single writer thread owns the write connection (rusqlite is synchronous). Each
//! [`Store::commit`] sends a request over a channel and waits for its answer. The writer
//! takes the first waiting request, drains every other request already in the channel
//! (up to [`MAX_BATCH`]), applies them all in one transaction (each in its own savepoint,
//! so one failing request does not undo the others), commits, and only then answers each
//! request. A caller therefore never sees `Ok` for a change that is not yet durable.
//!
//! # Exactly once
//!
//! Every request carries the [`Origin`] of the message that caused it: the sender's user
//! and session and the message id. The triple is recorded in the journal (`handled`, with
//! the message type and time) in the same transaction as the effect; a request whose
//! triple is already there (an agent resending after a reconnect, or the same message
//! twice in one batch) is answered [`Outcome::Duplicate`] and its effect is not applied
//! again. The journal's order (`seq`) is the order messages were handled in, which the
//! crash tests check per sender. [`Store::prune_handled`] drops old entries but always
//! keeps each sender's newest [`DEDUPE_WINDOW`] ids, the catalogue's promise.
//!
//! # Commands
//!
//! `migration-service push` writes operator commands into `commands` through its own
//! connection ([`Store::enqueue_command`]); the service reads pending ones and applies each
//! exactly once (its number is the message id of its journal entries).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipcspec_generated::migration::UserMigration;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

/// The most requests the writer applies in one transaction.
pub const MAX_BATCH: usize = 1024;

/// Handled message ids kept per sender whatever their age: the catalogue's
/// `DUPLICATE_WINDOW_MESSAGES`, the retransmissions a receiver must recognise.
pub const DEDUPE_WINDOW: u32 = ipcspec_generated::migration::DUPLICATE_WINDOW_MESSAGES;

/// The schema version this code creates and understands (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// How long a connection waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA_V1: &str = "
CREATE TABLE users (
    user_id               TEXT PRIMARY KEY NOT NULL,
    state                 TEXT NOT NULL,
    backup_id             TEXT,
    deadline              TEXT,
    delays_remaining      INTEGER NOT NULL DEFAULT 0,
    delay_request_id      TEXT,
    delay_requested_until TEXT,
    percent_complete      REAL,
    bytes_transferred     INTEGER,
    total_bytes           INTEGER,
    escalated             INTEGER NOT NULL DEFAULT 0,
    updated_at            INTEGER NOT NULL
);
CREATE TABLE handled (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    message_type TEXT NOT NULL,
    handled_at   INTEGER NOT NULL,
    UNIQUE (user_id, session_id, message_id)
);
CREATE INDEX handled_by_time ON handled (handled_at);
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    message_type TEXT NOT NULL,
    message_json TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (user_id, message_id)
);
CREATE INDEX outbox_by_user ON outbox (user_id, seq);
CREATE TABLE commands (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    target       TEXT,
    command_json TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    applied_at   INTEGER
);
CREATE INDEX commands_pending ON commands (applied_at, seq);
CREATE INDEX commands_by_kind ON commands (kind, seq);
";

/// Version 2: the longest delay one DELAY_REQUEST may ask for (BACKUP_REQUEST's
/// `maxDelay`), kept so every later BACKUP_REQUEST repeats it and DELAY_REQUEST is
/// checked against it.
const SCHEMA_V2: &str = "ALTER TABLE users ADD COLUMN max_delay_ms INTEGER;";

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, configured or migrated.
    #[error("cannot open the migration store {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer version of the service.
    #[error(
        "the migration store {} has schema version {found}; this build understands up to {supported}",
        path.display()
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The database's `user_version`.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// The database could not be put in WAL mode (SQLite answered another journal mode).
    #[error("the migration store {} cannot use WAL mode (journal mode is {mode:?})", path.display())]
    NoWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// The writer thread could not be started.
    #[error("cannot start the migration store's writer thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A statement failed.
    #[error("migration store: {op}: {source}")]
    Sqlite {
        /// What the store was doing.
        op: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The transaction holding this request could not be committed; nothing of it was
    /// applied. (The SQLite error is shared by the whole batch, so only its text is kept.)
    #[error("migration store: commit failed: {0}")]
    CommitFailed(String),
    /// A value does not fit the database (an unsigned count above `i64::MAX`).
    #[error("migration store: {field} = {value} is out of range")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// A row holds something this build cannot read (an unknown state name, a negative
    /// count).
    #[error("migration store: user {user_id}: {detail}")]
    Corrupt {
        /// The user whose row it is.
        user_id: String,
        /// What is wrong.
        detail: String,
    },
    /// The writer thread has stopped.
    #[error("migration store: the writer has stopped")]
    Closed,
}

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { op, source }
}

/// The answer to a [`Store::commit`], given once the transaction is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The effect was applied and the message recorded as handled.
    Applied,
    /// The message had already been handled; nothing was changed.
    Duplicate,
}

/// The message that caused a commit: who sent it, its id and its type. The triple
/// `(user_id, session_id, message_id)` is what makes handling exactly-once; the type is
/// kept in the journal of handled messages for the operator and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The sending agent's user.
    pub user_id: String,
    /// The sending agent's login session.
    pub session_id: String,
    /// The envelope `id`.
    pub message_id: String,
    /// The envelope `type`.
    pub message_type: String,
}

impl Origin {
    /// The origin of a message of `message_type` with `message_id` from the agent of
    /// `user_id` in `session_id`.
    pub fn agent(
        user_id: impl Into<String>,
        session_id: impl Into<String>,
        message_id: impl Into<String>,
        message_type: impl Into<String>,
    ) -> Self {
        Self {
            user_id: user_id.into(),
            session_id: session_id.into(),
            message_id: message_id.into(),
            message_type: message_type.into(),
        }
    }

    /// The origin of operator command `seq` (see [`Store::enqueue_command`]): applying a
    /// command is exactly-once like handling a message.
    pub fn command(seq: i64) -> Self {
        Self::agent("", OPERATOR_SESSION, format!("command-{seq}"), "COMMAND")
    }
}

/// The session name under which operator commands are journaled.
pub const OPERATOR_SESSION: &str = "operator";

/// A user's migration record as the service keeps it: the state machine's state and
/// what the service needs to remember about the user's backup.
#[derive(Debug, Clone, PartialEq)]
pub struct UserUpdate {
    /// The `UserMigration` state.
    pub state: UserMigration,
    /// The requested or running backup, a hyphenated UUID.
    pub backup_id: Option<String>,
    /// The backup deadline, RFC 3339 UTC, once a backup was requested.
    pub deadline: Option<String>,
    /// Delays the user may still ask for.
    pub delays_remaining: u32,
    /// The longest extension one DELAY_REQUEST may ask for, after the current deadline
    /// (the `maxDelay` of the user's BACKUP_REQUEST); `None`: not limited in length.
    pub max_delay_ms: Option<u64>,
    /// The id of the DELAY_REQUEST awaiting a decision.
    pub delay_request_id: Option<String>,
    /// The deadline the user asked for while a delay is pending, RFC 3339 UTC.
    pub delay_requested_until: Option<String>,
    /// The last reported progress in percent.
    pub percent_complete: Option<f64>,
    /// The last reported bytes written.
    pub bytes_transferred: Option<u64>,
    /// The last reported total.
    pub total_bytes: Option<u64>,
    /// Whether IT has been notified about this user.
    pub escalated: bool,
}

impl UserUpdate {
    /// A record in `state` with nothing else known.
    pub fn new(state: UserMigration) -> Self {
        Self {
            state,
            backup_id: None,
            deadline: None,
            delays_remaining: 0,
            max_delay_ms: None,
            delay_request_id: None,
            delay_requested_until: None,
            percent_complete: None,
            bytes_transferred: None,
            total_bytes: None,
            escalated: false,
        }
    }
}

/// A user's row in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// The user.
    pub user_id: String,
    /// The record.
    pub record: UserUpdate,
    /// When the row was last written, in milliseconds since the Unix epoch.
    pub updated_at_ms: i64,
}

/// A message waiting in the outbox for a user's agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its place in the outbox (increasing in the order messages were queued).
    pub seq: i64,
    /// The user whose agents receive it.
    pub user_id: String,
    /// The envelope `id`, which the agent's ACKNOWLEDGMENT names.
    pub message_id: String,
    /// The envelope `type`.
    pub message_type: String,
    /// The message exactly as it is sent (encoded JSON).
    pub message_json: String,
}

/// A handled message, from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandledMessage {
    /// Its place in the journal: the order messages were handled in.
    pub seq: i64,
    /// The sender's user.
    pub user_id: String,
    /// The sender's session.
    pub session_id: String,
    /// The envelope `id`.
    pub message_id: String,
    /// The envelope `type`.
    pub message_type: String,
    /// When it was handled, in milliseconds since the Unix epoch.
    pub handled_at_ms: i64,
}

/// An operator command waiting to be applied by the running service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCommand {
    /// Its number, in the order commands were queued.
    pub seq: i64,
    /// What kind of command it is.
    pub kind: String,
    /// The user it is for, or `None` for every user.
    pub target: Option<String>,
    /// The command, as the service's command type encodes it.
    pub command_json: String,
}

/// What a committed message changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Replace `user_id`'s record (creating it if the user is new).
    SetState {
        /// The user.
        user_id: String,
        /// The new record.
        record: UserUpdate,
    },
    /// Queue a message for `user_id`'s agents, kept until one of them acknowledges it.
    OutboxPush(OutboxMessage),
    /// An agent of `user_id` acknowledged the outbox message `message_id`; remove it.
    OutboxDelivered {
        /// The user.
        user_id: String,
        /// The acknowledged message's id.
        message_id: String,
    },
    /// Operator command `seq` was applied.
    CommandApplied {
        /// The command's number.
        seq: i64,
    },
    /// Several effects, applied together or not at all, in order.
    All(Vec<Effect>),
    /// Only record the message as handled (a message that changes nothing but must not
    /// be handled twice).
    Nothing,
}

/// A message to queue in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The user whose agents receive it.
    pub user_id: String,
    /// The envelope `id`.
    pub message_id: String,
    /// The envelope `type`.
    pub message_type: String,
    /// The encoded message.
    pub message_json: String,
}

/// Counters of the writer, for metrics and for tests that show batching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Transactions committed.
    pub transactions: u64,
    /// Requests answered `Applied`.
    pub applied: u64,
    /// Requests answered `Duplicate`.
    pub duplicates: u64,
    /// Requests answered with an error.
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    transactions: AtomicU64,
    applied: AtomicU64,
    duplicates: AtomicU64,
    failed: AtomicU64,
}

struct Request {
    origin: Origin,
    effect: Effect,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// The durable store. Cheap to clone; every clone talks to the same writer thread, which
/// stops (after finishing what it was sent) when the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    reader: Mutex<Connection>,
    counters: Arc<Counters>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish the requests it has and return.
        self.requests.take();
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "migration store writer panicked");
        }
    }
}

/// Milliseconds since the Unix epoch, the store's clock for `updated_at`.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn to_i64(field: &'static str, value: Option<u64>) -> Result<Option<i64>, StoreError> {
    value
        .map(|v| i64::try_from(v).map_err(|_| StoreError::OutOfRange { field, value: v }))
        .transpose()
}

/// Opens a connection and configures it; every error names the path.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let open = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(open)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open)?;
    // The first statement that reads the file: a file that is not a database fails here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(open)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal {
            path: path.to_owned(),
            mode,
        });
    }
    // See the module documentation: a commit must survive power loss.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open)?;
    Ok(conn)
}

/// Creates the schema or brings it up to [`SCHEMA_VERSION`].
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(open)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version < 1 {
        tx.execute_batch(SCHEMA_V1).map_err(open)?;
    }
    if version < 2 {
        tx.execute_batch(SCHEMA_V2).map_err(open)?;
    }
    // Later versions add their steps here, each guarded by `version < N`.
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(open)?;
        tracing::info!(path = %path.display(), from = version, to = SCHEMA_VERSION, "migration store schema updated");
    }
    tx.commit().map_err(open)
}

impl Store {
    /// Opens the database at `path`, creating it and its schema if needed, and starts
    /// the writer thread.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let mut writer_conn = connect(&path)?;
        migrate(&mut writer_conn, &path)?;
        let reader = connect(&path)?;
        reader
            .pragma_update(None, "query_only", true)
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        let counters = Arc::new(Counters::default());
        let (requests, receiver) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("migration-store-writer".into())
            .spawn({
                let counters = Arc::clone(&counters);
                move || writer_loop(writer_conn, &receiver, &counters)
            })
            .map_err(StoreError::Spawn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                requests: Some(requests),
                writer: Some(writer),
                reader: Mutex::new(reader),
                counters,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Applies `effect` for the message `origin`, unless that message was already
    /// handled. Resolves once the transaction holding it is durable.
    pub async fn commit(&self, origin: Origin, effect: Effect) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            origin,
            effect,
            reply,
        };
        self.inner
            .requests
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(request)
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues an operator command for the running service (the `push` subcommand writes
    /// here; the service applies pending commands in order). Returns its number.
    /// Synchronous: it writes through its own connection, so it works whether or not a
    /// service has the database open.
    pub fn enqueue_command(
        path: impl AsRef<Path>,
        kind: &str,
        target: Option<&str>,
        command_json: &str,
    ) -> Result<i64, StoreError> {
        let path = path.as_ref();
        let mut conn = connect(path)?;
        migrate(&mut conn, path)?;
        conn.execute(
            "INSERT INTO commands (kind, target, command_json, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![kind, target, command_json, now_ms()],
        )
        .map_err(sql("queueing a command"))?;
        Ok(conn.last_insert_rowid())
    }

    /// Removes journal entries older than `age`, keeping at least the dedupe window the
    /// catalogue promises. Returns how many rows went.
    pub fn prune_handled(&self, age: Duration) -> Result<usize, StoreError> {
        let cutoff = now_ms().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        let path = self.path().to_owned();
        let conn = connect(&path)?;
        conn.execute(
            "DELETE FROM handled WHERE seq IN (
                 SELECT seq FROM (
                     SELECT seq, handled_at, ROW_NUMBER() OVER (
                         PARTITION BY user_id, session_id ORDER BY seq DESC) AS newer
                     FROM handled)
                 WHERE newer > ?2 AND handled_at < ?1)",
            params![cutoff, DEDUPE_WINDOW],
        )
        .map_err(sql("pruning the journal"))
    }

    /// The writer's counters.
    pub fn stats(&self) -> StoreStats {
        let c = &self.inner.counters;
        StoreStats {
            transactions: c.transactions.load(Ordering::Relaxed),
            applied: c.applied.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.inner
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The record of `user_id`, if the store has one.
    pub fn user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        let conn = self.reader();
        let row = conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE user_id = ?1"),
                params![user_id],
                RawUser::from_row,
            )
            .optional()
            .map_err(sql("reading a user"))?;
        row.map(RawUser::into_record).transpose()
    }

    /// Every user's record, ordered by user id.
    pub fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY user_id"
            ))
            .map_err(sql("listing users"))?;
        let rows = stmt
            .query_map([], RawUser::from_row)
            .map_err(sql("listing users"))?;
        rows.map(|row| row.map_err(sql("listing users"))?.into_record())
            .collect()
    }

    /// The messages queued for `user_id`'s agents, oldest first.
    pub fn pending_outbox(&self, user_id: &str) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_where("user_id = ?1", params![user_id])
    }

    /// Every queued message, in queue order.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_where("1", params![])
    }

    fn outbox_where(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT seq, user_id, message_id, message_type, message_json FROM outbox \
                 WHERE {filter} ORDER BY seq"
            ))
            .map_err(sql("reading the outbox"))?;
        let rows = stmt
            .query_map(args, |row| {
                Ok(OutboxEntry {
                    seq: row.get(0)?,
                    user_id: row.get(1)?,
                    message_id: row.get(2)?,
                    message_type: row.get(3)?,
                    message_json: row.get(4)?,
                })
            })
            .map_err(sql("reading the outbox"))?;
        rows.map(|row| row.map_err(sql("reading the outbox")))
            .collect()
    }

    /// The journal of handled messages of `user_id`'s agent in `session_id`, in the
    /// order they were handled (`None`: every sender).
    pub fn handled(&self, sender: Option<(&str, &str)>) -> Result<Vec<HandledMessage>, StoreError> {
        let conn = self.reader();
        let (filter, args): (&str, Vec<&str>) = match sender {
            Some((user, session)) => (
                "WHERE user_id = ?1 AND session_id = ?2",
                vec![user, session],
            ),
            None => ("", vec![]),
        };
        let mut stmt = conn
            .prepare(&format!(
                "SELECT seq, user_id, session_id, message_id, message_type, handled_at \
                 FROM handled {filter} ORDER BY seq"
            ))
            .map_err(sql("reading the journal"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |row| {
                Ok(HandledMessage {
                    seq: row.get(0)?,
                    user_id: row.get(1)?,
                    session_id: row.get(2)?,
                    message_id: row.get(3)?,
                    message_type: row.get(4)?,
                    handled_at_ms: row.get(5)?,
                })
            })
            .map_err(sql("reading the journal"))?;
        rows.map(|row| row.map_err(sql("reading the journal")))
            .collect()
    }

    /// Whether the message `message_id` of `user_id`'s agent in `session_id` was handled
    /// (and is still in the journal).
    pub fn was_handled(
        &self,
        user_id: &str,
        session_id: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        self.reader()
            .query_row(
                "SELECT 1 FROM handled WHERE user_id = ?1 AND session_id = ?2 AND message_id = ?3",
                params![user_id, session_id, message_id],
                |_| Ok(()),
            )
            .optional()
            .map(|row| row.is_some())
            .map_err(sql("looking up a handled message"))
    }

    /// The newest applied command of `kind`, with its number.
    pub fn latest_applied_command(&self, kind: &str) -> Result<Option<(i64, String)>, StoreError> {
        self.reader()
            .query_row(
                "SELECT seq, command_json FROM commands \
                 WHERE kind = ?1 AND applied_at IS NOT NULL ORDER BY seq DESC LIMIT 1",
                params![kind],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(sql("reading the latest command"))
    }

    /// Operator commands not applied yet, in order.
    pub fn pending_commands(&self) -> Result<Vec<PendingCommand>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare(
                "SELECT seq, kind, target, command_json FROM commands \
                 WHERE applied_at IS NULL ORDER BY seq",
            )
            .map_err(sql("reading commands"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(PendingCommand {
                    seq: row.get(0)?,
                    kind: row.get(1)?,
                    target: row.get(2)?,
                    command_json: row.get(3)?,
                })
            })
            .map_err(sql("reading commands"))?;
        rows.map(|row| row.map_err(sql("reading commands")))
            .collect()
    }
}

const USER_COLUMNS: &str = "user_id, state, backup_id, deadline, delays_remaining, \
     delay_request_id, delay_requested_until, percent_complete, bytes_transferred, \
     total_bytes, escalated, updated_at, max_delay_ms";

/// A `users` row before its values are checked.
struct RawUser {
    user_id: String,
    state: String,
    backup_id: Option<String>,
    deadline: Option<String>,
    delays_remaining: i64,
    delay_request_id: Option<String>,
    delay_requested_until: Option<String>,
    percent_complete: Option<f64>,
    bytes_transferred: Option<i64>,
    total_bytes: Option<i64>,
    escalated: bool,
    updated_at: i64,
    max_delay_ms: Option<i64>,
}

impl RawUser {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            user_id: row.get(0)?,
            state: row.get(1)?,
            backup_id: row.get(2)?,
            deadline: row.get(3)?,
            delays_remaining: row.get(4)?,
            delay_request_id: row.get(5)?,
            delay_requested_until: row.get(6)?,
            percent_complete: row.get(7)?,
            bytes_transferred: row.get(8)?,
            total_bytes: row.get(9)?,
            escalated: row.get(10)?,
            updated_at: row.get(11)?,
            max_delay_ms: row.get(12)?,
        })
    }

    fn into_record(self) -> Result<UserRecord, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            user_id: self.user_id.clone(),
            detail,
        };
        let state = UserMigration::ALL
            .iter()
            .copied()
            .find(|s| s.as_str() == self.state)
            .ok_or_else(|| corrupt(format!("unknown state {:?}", self.state)))?;
        let count = |field: &str, v: Option<i64>| {
            v.map(|v| u64::try_from(v).map_err(|_| corrupt(format!("negative {field} {v}"))))
                .transpose()
        };
        let bytes_transferred = count("bytes_transferred", self.bytes_transferred)?;
        let total_bytes = count("total_bytes", self.total_bytes)?;
        let max_delay_ms = count("max_delay_ms", self.max_delay_ms)?;
        let delays_remaining = u32::try_from(self.delays_remaining)
            .map_err(|_| corrupt(format!("delays_remaining {}", self.delays_remaining)))?;
        Ok(UserRecord {
            user_id: self.user_id,
            record: UserUpdate {
                state,
                backup_id: self.backup_id,
                deadline: self.deadline,
                delays_remaining,
                max_delay_ms,
                delay_request_id: self.delay_request_id,
                delay_requested_until: self.delay_requested_until,
                percent_complete: self.percent_complete,
                bytes_transferred,
                total_bytes,
                escalated: self.escalated,
            },
            updated_at_ms: self.updated_at,
        })
    }
}

/// The writer thread: one transaction per batch of waiting requests.
fn writer_loop(mut conn: Connection, requests: &mpsc::Receiver<Request>, counters: &Counters) {
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        match apply_batch(&mut conn, &batch) {
            Ok(outcomes) => {
                counters.transactions.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(requests = batch.len(), "migration store batch committed");
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    let counter = match &outcome {
                        Ok(Outcome::Applied) => &counters.applied,
                        Ok(Outcome::Duplicate) => &counters.duplicates,
                        Err(_) => &counters.failed,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    // A caller that stopped waiting still had its change committed.
                    let _ = request.reply.send(outcome);
                }
            }
            Err(error) => {
                tracing::error!(%error, requests = batch.len(), "migration store commit failed");
                let message = error.to_string();
                for request in batch {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    let _ = request
                        .reply
                        .send(Err(StoreError::CommitFailed(message.clone())));
                }
            }
        }
    }
    tracing::debug!("migration store writer stopped");
}

/// Applies every request of `batch` in one transaction, each in a savepoint, and
/// commits. The outer error means nothing was committed.
fn apply_batch(
    conn: &mut Connection,
    batch: &[Request],
) -> rusqlite::Result<Vec<Result<Outcome, StoreError>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_ms();
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch {
        let savepoint = tx.savepoint()?;
        match apply_one(&savepoint, request, now) {
            Ok(outcome) => {
                savepoint.commit()?;
                outcomes.push(Ok(outcome));
            }
            // Dropping the savepoint rolls this request back; the others stay.
            Err(error) => {
                tracing::warn!(user_id = %request.origin.user_id, message_id = %request.origin.message_id, %error, "migration store request failed");
                outcomes.push(Err(error));
            }
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

fn apply_one(conn: &Connection, request: &Request, now: i64) -> Result<Outcome, StoreError> {
    let origin = &request.origin;
    let inserted = conn
        .execute(
            "INSERT OR IGNORE INTO handled (user_id, session_id, message_id, message_type, handled_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                origin.user_id,
                origin.session_id,
                origin.message_id,
                origin.message_type,
                now
            ],
        )
        .map_err(sql("recording a handled message"))?;
    if inserted == 0 {
        return Ok(Outcome::Duplicate);
    }
    apply_effect(conn, &request.effect, now)?;
    Ok(Outcome::Applied)
}

fn apply_effect(conn: &Connection, effect: &Effect, now: i64) -> Result<(), StoreError> {
    match effect {
        Effect::SetState { user_id, record: u } => {
            conn.execute(
                &format!(
                    "INSERT INTO users ({USER_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                     ON CONFLICT (user_id) DO UPDATE SET
                        state = excluded.state,
                        backup_id = excluded.backup_id,
                        deadline = excluded.deadline,
                        delays_remaining = excluded.delays_remaining,
                        delay_request_id = excluded.delay_request_id,
                        delay_requested_until = excluded.delay_requested_until,
                        percent_complete = excluded.percent_complete,
                        bytes_transferred = excluded.bytes_transferred,
                        total_bytes = excluded.total_bytes,
                        escalated = excluded.escalated,
                        updated_at = excluded.updated_at,
                        max_delay_ms = excluded.max_delay_ms"
                ),
                params![
                    user_id,
                    u.state.as_str(),
                    u.backup_id,
                    u.deadline,
                    u.delays_remaining,
                    u.delay_request_id,
                    u.delay_requested_until,
                    u.percent_complete,
                    to_i64("bytes_transferred", u.bytes_transferred)?,
                    to_i64("total_bytes", u.total_bytes)?,
                    u.escalated,
                    now,
                    to_i64("max_delay_ms", u.max_delay_ms)?,
                ],
            )
            .map_err(sql("writing a user"))?;
        }
        Effect::OutboxPush(m) => {
            conn.execute(
                "INSERT INTO outbox (user_id, message_id, message_type, message_json, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![m.user_id, m.message_id, m.message_type, m.message_json, now],
            )
            .map_err(sql("queueing an outbox message"))?;
        }
        Effect::OutboxDelivered {
            user_id,
            message_id,
        } => {
            conn.execute(
                "DELETE FROM outbox WHERE user_id = ?1 AND message_id = ?2",
                params![user_id, message_id],
            )
            .map_err(sql("removing a delivered outbox message"))?;
        }
        Effect::CommandApplied { seq } => {
            conn.execute(
                "UPDATE commands SET applied_at = ?2 WHERE seq = ?1",
                params![seq, now],
            )
            .map_err(sql("marking a command applied"))?;
        }
        Effect::All(effects) => {
            for effect in effects {
                apply_effect(conn, effect, now)?;
            }
        }
        Effect::Nothing => {}
    }
    Ok(())
}
