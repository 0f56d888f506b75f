//! Connecting to a listening socket.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::net::UnixStream;

use super::{ConnectError, PathProblem, SUN_PATH_MAX, check_path, into_connection};
use crate::transport::Connection;

/// The first pause before retrying when the server's backlog is full; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(5);

/// The longest pause between attempts while the server's backlog is full.
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// Connects to the Unix socket at `path`, giving up after `timeout`.
///
/// A full backlog on the server (`EAGAIN`, the server is alive but not accepting fast
/// enough) is retried with a short backoff until the timeout expires. The connection's
/// peer credentials are the server's (`SO_PEERCRED`), so a client can check whom it is
/// talking to.
///
/// # Errors
///
/// [`ConnectError::NotFound`] when nothing is at `path`, [`ConnectError::PermissionDenied`]
/// when this process may not connect, [`ConnectError::NotASocket`] when `path` is some
/// other kind of file, [`ConnectError::Refused`] when it is a socket nothing listens on,
/// [`ConnectError::TimedOut`] after `timeout`, and [`ConnectError::InvalidPath`] /
/// [`ConnectError::PathTooLong`] for paths no socket can have. Every variant names the
/// path.
pub async fn connect(
    path: impl AsRef<Path>,
    timeout: Duration,
) -> Result<Connection, ConnectError> {
    let path = path.as_ref();
    match check_path(path) {
        Ok(()) => {}
        Err(PathProblem::Invalid(reason)) => {
            return Err(ConnectError::InvalidPath {
                path: path.to_path_buf(),
                reason,
            });
        }
        Err(PathProblem::TooLong(len)) => {
            return Err(ConnectError::PathTooLong {
                path: path.to_path_buf(),
                len,
                max: SUN_PATH_MAX,
            });
        }
    }

    let stream = match tokio::time::timeout(timeout, connect_retrying(path)).await {
        Err(_elapsed) => {
            return Err(ConnectError::TimedOut {
                path: path.to_path_buf(),
                after: timeout,
            });
        }
        Ok(Err(error)) => return Err(classify(path, error)),
        Ok(Ok(stream)) => stream,
    };
    let connection = into_connection(stream);
    tracing::debug!(
        path = %path.display(),
        id = %connection.id(),
        peer = ?connection.peer(),
        "connected"
    );
    Ok(connection)
}

/// Connects, retrying while the server's backlog is full.
async fn connect_retrying(path: &Path) -> io::Result<UnixStream> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match UnixStream::connect(path).await {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                tracing::trace!(path = %path.display(), ?backoff, "backlog full; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            result => return result,
        }
    }
}

/// The precise error for a failed `connect(2)` on `path`.
fn classify(path: &Path, error: io::Error) -> ConnectError {
    let path_buf = path.to_path_buf();
    match error.kind() {
        io::ErrorKind::NotFound => ConnectError::NotFound { path: path_buf },
        io::ErrorKind::PermissionDenied => ConnectError::PermissionDenied { path: path_buf },
        io::ErrorKind::ConnectionRefused => {
            // Linux also answers ECONNREFUSED for a path that is not a socket at all.
            use std::os::unix::fs::FileTypeExt;
            match std::fs::metadata(path) {
                Ok(metadata) if !metadata.file_type().is_socket() => {
                    ConnectError::NotASocket { path: path_buf }
                }
                _ => ConnectError::Refused { path: path_buf },
            }
        }
        _ => ConnectError::Io {
            path: path_buf,
            source: error,
        },
    }
}
