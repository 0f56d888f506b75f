//! Unix domain stream sockets.
//!
//! - [`Listener::bind`] creates the socket file with the requested mode and group, and
//!   never steals a path: a socket something still answers on is [`BindError::InUse`], a
//!   socket nothing answers on (its server died without removing it) is replaced, and
//!   anything that is not a socket is left alone ([`BindError::NotASocket`]). Dropping
//!   the listener removes the file it created, and only that file.
//! - [`Listener::accept`] yields a [`Connection`] and the peer's [`PeerCredentials`] from
//!   `SO_PEERCRED`.
//! - [`connect`] connects with a timeout and names the path in every error.
//! - [`socketpair`] makes two connected ends within one process.
//!
//! # Creating the socket file safely
//!
//! `bind(2)` creates the socket file with mode `0777 & !umask`, and changing it
//! afterwards leaves a window in which the socket is reachable with the wrong mode and
//! group. To close that window, [`Listener::bind`] binds the socket inside a fresh private
//! directory (mode `0700`, created next to the final path), sets its mode and group
//! there, starts listening, and then hard-links it to the final path with `link(2)`,
//! which never replaces an existing file. The socket therefore appears at its path
//! already listening and with its final permissions, and a path that reappeared in the
//! meantime is detected rather than overwritten. The private directory is removed before
//! `bind` returns (a process killed in between leaves an empty `.ipcspec-PID-N`
//! directory behind).
//!
//! When the staging path would not fit in `sun_path` (see [`SUN_PATH_MAX`]) or the file
//! system refuses hard links to sockets, `bind` binds at the final path directly (still
//! without replacing anything) and sets the group, then the mode, right after; during
//! that short window the socket has the umask-derived mode and the process's group.
//!
//! Removing files is careful in the same way. On drop, the listener removes its socket
//! file only if the path still names the same file (device and inode; the bound socket
//! keeps that inode alive, so its number cannot have been reused). A stale socket is
//! removed only if the path still names the file that was probed, unchanged (device,
//! inode and change time), so two servers starting at once cannot remove each other's
//! fresh socket. What remains is the gap between that check and the `unlink(2)`, which
//! only a process that may write to the directory can use, and such a process can
//! remove the socket anyway.
//!
//! Probing an existing socket to see whether it is alive connects to it: a live server
//! sees a connection that closes without sending anything.

mod connect;
mod error;
mod listener;

use std::io;
use std::path::Path;

use tokio::net::UnixStream;

pub use connect::connect;
pub use error::{BindError, ConnectError};
pub use listener::{Listener, ListenerOptions};

use super::{Connection, PeerCredentials};

/// The longest socket path, in bytes, the platform's `sockaddr_un` holds (its `sun_path`
/// minus the terminating NUL).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const SUN_PATH_MAX: usize = 107;

/// The longest socket path, in bytes, the platform's `sockaddr_un` holds (its `sun_path`
/// minus the terminating NUL).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const SUN_PATH_MAX: usize = 103;

/// Two connected ends of an anonymous Unix stream socket (`socketpair(2)`), each a
/// [`Connection`] whose peer is this process.
///
/// Useful for tests and for handing one end to a child process; receiving a socket end
/// from another process (`SCM_RIGHTS`) is not implemented yet.
///
/// # Panics
///
/// Panics when called outside a tokio runtime with IO enabled, as tokio's
/// `UnixStream::pair` does.
pub fn socketpair() -> io::Result<(Connection, Connection)> {
    let (first, second) = UnixStream::pair()?;
    Ok((into_connection(first), into_connection(second)))
}

/// The peer's credentials on a connected Unix stream socket (`SO_PEERCRED`).
fn peer_credentials(stream: &UnixStream) -> io::Result<PeerCredentials> {
    let cred = stream.peer_cred()?;
    Ok(PeerCredentials {
        uid: Some(cred.uid()),
        gid: Some(cred.gid()),
        pid: cred.pid().and_then(|pid| u32::try_from(pid).ok()),
    })
}

/// A [`Connection`] over `stream` with its peer's credentials, if the system reports
/// them.
fn into_connection(stream: UnixStream) -> Connection {
    let peer = match peer_credentials(&stream) {
        Ok(peer) => Some(peer),
        Err(error) => {
            tracing::debug!(%error, "SO_PEERCRED failed; the connection has no peer credentials");
            None
        }
    };
    connection_with_peer(stream, peer)
}

/// A [`Connection`] over `stream`'s owned halves.
fn connection_with_peer(stream: UnixStream, peer: Option<PeerCredentials>) -> Connection {
    let (reader, writer) = stream.into_split();
    Connection::from_halves(reader, writer, peer)
}

/// Why a path cannot name a Unix socket.
enum PathProblem {
    /// Empty, or contains a NUL byte.
    Invalid(&'static str),
    /// Longer than [`SUN_PATH_MAX`].
    TooLong(usize),
}

/// Checks that `path` fits in a `sockaddr_un` as a file-system path (not an abstract
/// name).
fn check_path(path: &Path) -> Result<(), PathProblem> {
    use std::os::unix::ffi::OsStrExt;

    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(PathProblem::Invalid("the path is empty"));
    }
    if bytes.contains(&0) {
        return Err(PathProblem::Invalid("the path contains a NUL byte"));
    }
    if bytes.len() > SUN_PATH_MAX {
        return Err(PathProblem::TooLong(bytes.len()));
    }
    Ok(())
}
