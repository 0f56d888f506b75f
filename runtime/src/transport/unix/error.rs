//! The errors of binding and connecting, each naming the path concerned.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why [`Listener::bind`](super::Listener::bind) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The path is empty or contains a NUL byte.
    #[error("cannot bind {}: {reason}", .path.display())]
    InvalidPath {
        /// The path asked for.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The path does not fit in a socket address.
    #[error(
        "cannot bind {}: the path is {len} bytes long, and socket paths are limited to {max}",
        .path.display()
    )]
    PathTooLong {
        /// The path asked for.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The limit, [`SUN_PATH_MAX`](super::SUN_PATH_MAX).
        max: usize,
    },
    /// The requested mode has bits other than the permission bits (`0o777`).
    #[error("invalid socket mode {mode:#o}: only permission bits (0o777) are allowed")]
    InvalidMode {
        /// The mode asked for.
        mode: u32,
    },
    /// The directory the socket would live in does not exist.
    #[error(
        "cannot bind {}: the directory {} does not exist",
        .path.display(),
        .parent.display()
    )]
    ParentMissing {
        /// The path asked for.
        path: PathBuf,
        /// Its parent directory, which is missing.
        parent: PathBuf,
    },
    /// The socket's parent path exists but is not a directory.
    #[error("cannot bind {}: {} is not a directory", .path.display(), .parent.display())]
    ParentNotADirectory {
        /// The path asked for.
        path: PathBuf,
        /// Its parent, which is not a directory.
        parent: PathBuf,
    },
    /// A socket exists at the path and something accepts connections on it.
    #[error("another process is listening on {}", .path.display())]
    InUse {
        /// The path asked for.
        path: PathBuf,
    },
    /// Something other than a socket exists at the path; it was left untouched.
    #[error("{} exists and is not a socket; refusing to replace it", .path.display())]
    NotASocket {
        /// The path asked for.
        path: PathBuf,
    },
    /// The socket's group could not be set (usually: this process is not a member of the
    /// group and is not privileged).
    #[error("cannot set the group of {} to gid {gid}: {source}", .path.display())]
    Group {
        /// The socket path.
        path: PathBuf,
        /// The group asked for.
        gid: u32,
        /// What the system said.
        source: io::Error,
    },
    /// Any other failure of a system call, with what was being done and to which path.
    #[error("cannot {op} {}: {source}", .path.display())]
    Io {
        /// What was being done ("create a staging directory at", "set the mode of", ...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// Why [`connect`](super::connect) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The path is empty or contains a NUL byte.
    #[error("cannot connect to {}: {reason}", .path.display())]
    InvalidPath {
        /// The path asked for.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The path does not fit in a socket address.
    #[error(
        "cannot connect to {}: the path is {len} bytes long, and socket paths are limited to {max}",
        .path.display()
    )]
    PathTooLong {
        /// The path asked for.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The limit, [`SUN_PATH_MAX`](super::SUN_PATH_MAX).
        max: usize,
    },
    /// Nothing exists at the path (or a directory on the way is missing).
    #[error("cannot connect to {}: no such socket", .path.display())]
    NotFound {
        /// The path asked for.
        path: PathBuf,
    },
    /// The socket or a directory on the way does not allow this process to connect.
    #[error("cannot connect to {}: permission denied", .path.display())]
    PermissionDenied {
        /// The path asked for.
        path: PathBuf,
    },
    /// The path exists but is not a socket.
    #[error("cannot connect to {}: it is not a socket", .path.display())]
    NotASocket {
        /// The path asked for.
        path: PathBuf,
    },
    /// The socket exists but nothing listens on it: a stale socket whose server is gone.
    #[error("connection to {} refused: nothing is listening (stale socket?)", .path.display())]
    Refused {
        /// The path asked for.
        path: PathBuf,
    },
    /// The server's backlog stayed full for the whole timeout.
    #[error("connecting to {} timed out after {after:?}", .path.display())]
    TimedOut {
        /// The path asked for.
        path: PathBuf,
        /// The timeout that expired.
        after: Duration,
    },
    /// Any other failure, with the system's error.
    #[error("cannot connect to {}: {source}", .path.display())]
    Io {
        /// The path asked for.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}
