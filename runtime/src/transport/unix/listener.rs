//! The listening side: binding a path safely, accepting, and cleaning up.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{UnixListener, UnixSocket, UnixStream};

use super::{
    BindError, PathProblem, SUN_PATH_MAX, check_path, connection_with_peer, peer_credentials,
};
use crate::transport::{Accept, Connection, PeerCredentials};

/// How long probing an existing socket may take before it counts as alive.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How many times `bind` probes again when the path changes under it.
const BIND_ATTEMPTS: usize = 3;

/// How a [`Listener`] creates its socket.
///
/// ```
/// # use ipcspec_runtime::transport::unix::ListenerOptions;
/// let options = ListenerOptions { mode: 0o660, group: Some(1000), ..Default::default() };
/// assert_eq!(options.backlog, ListenerOptions::default().backlog);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerOptions {
    /// Permission bits of the socket file (`0o600` by default: only the owner may
    /// connect; `0o660` lets the group in). Connecting needs write permission. Only the
    /// bits in `0o777` are allowed.
    pub mode: u32,
    /// The group to give the socket file, or `None` to keep the process's (or the
    /// directory's, with setgid directories). An unprivileged process may only choose a
    /// group it belongs to.
    pub group: Option<u32>,
    /// The `listen(2)` backlog: how many connections may wait to be accepted (the kernel
    /// caps it at `net.core.somaxconn`). 128 by default.
    pub backlog: u32,
    /// `SO_SNDBUF` of every accepted connection, in bytes, or `None` for the kernel's
    /// default (`net.core.wmem_default`, typically 208 KiB; the kernel caps a request at
    /// `net.core.wmem_max` and doubles it for bookkeeping). On a Unix stream socket this
    /// is how much the server may write before the peer reads: a broker streaming events
    /// to a consumer wants more than the default, or its writer waits on the reader
    /// after every batch. Memory is used only while data waits. A failure to set it is
    /// logged and the connection kept.
    pub send_buffer_bytes: Option<usize>,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            mode: 0o600,
            group: None,
            backlog: 128,
            send_buffer_bytes: None,
        }
    }
}

/// The device and inode of a file: what tells "the file we created" from "a file at the
/// same path".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    fn of(metadata: &fs::Metadata) -> Self {
        FileIdentity {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }
}

/// A Unix stream socket listening at a path, which it removes when dropped.
///
/// See the [module documentation](super) for how the socket file is created and how
/// existing files at the path are treated.
#[derive(Debug)]
pub struct Listener {
    inner: UnixListener,
    path: PathBuf,
    identity: FileIdentity,
    send_buffer_bytes: Option<usize>,
}

impl Listener {
    /// Creates a socket at `path` with `options`' mode and group and starts listening.
    ///
    /// The directory containing `path` must exist. An existing socket at `path` that
    /// refuses connections (its server is gone) is removed and replaced; one that accepts
    /// them is left alone. Anything else at `path` is never touched. The few file-system
    /// calls this makes are blocking, as they are quick on local file systems.
    ///
    /// # Errors
    ///
    /// [`BindError::InUse`] when another process listens on `path`,
    /// [`BindError::NotASocket`] when something else is there, [`BindError::ParentMissing`]
    /// naming the missing directory, [`BindError::Group`] when the group cannot be set,
    /// and the other [`BindError`] variants for invalid paths or modes and failed system
    /// calls.
    ///
    /// # Panics
    ///
    /// Panics outside a tokio runtime with IO enabled.
    pub async fn bind(
        path: impl AsRef<Path>,
        options: ListenerOptions,
    ) -> Result<Listener, BindError> {
        let path = path.as_ref();
        match check_path(path) {
            Ok(()) => {}
            Err(PathProblem::Invalid(reason)) => {
                return Err(BindError::InvalidPath {
                    path: path.to_path_buf(),
                    reason,
                });
            }
            Err(PathProblem::TooLong(len)) => {
                return Err(BindError::PathTooLong {
                    path: path.to_path_buf(),
                    len,
                    max: SUN_PATH_MAX,
                });
            }
        }
        if options.mode & !0o777 != 0 {
            return Err(BindError::InvalidMode { mode: options.mode });
        }
        let parent = parent_of(path);
        check_parent(path, parent)?;

        for _ in 0..BIND_ATTEMPTS {
            clear_stale(path).await?;
            if let Some((inner, identity)) = install(path, parent, &options)? {
                tracing::debug!(
                    path = %path.display(),
                    mode = format_args!("{:#o}", options.mode),
                    group = ?options.group,
                    "listening"
                );
                return Ok(Listener {
                    inner,
                    path: path.to_path_buf(),
                    identity,
                    send_buffer_bytes: options.send_buffer_bytes,
                });
            }
            // Something appeared at the path between the probe and the link: look again.
        }
        Err(BindError::InUse {
            path: path.to_path_buf(),
        })
    }

    /// The path this listener is bound to (as given to [`Listener::bind`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the next connection and returns it with its peer's credentials (also
    /// available as [`Connection::peer`]).
    ///
    /// # Errors
    ///
    /// The `accept(2)` error, for example `EMFILE` when the process is out of file
    /// descriptors (the listener stays usable), or the `SO_PEERCRED` error, in which
    /// case the connection is dropped.
    pub async fn accept(&self) -> io::Result<(Connection, PeerCredentials)> {
        let (stream, _address) = self.inner.accept().await?;
        if let Some(bytes) = self.send_buffer_bytes
            && let Err(error) = socket2::SockRef::from(&stream).set_send_buffer_size(bytes)
        {
            tracing::warn!(%error, bytes, "could not set SO_SNDBUF; keeping the default");
        }
        let peer = peer_credentials(&stream)?;
        let connection = connection_with_peer(stream, Some(peer));
        tracing::debug!(
            path = %self.path.display(),
            id = %connection.id(),
            ?peer,
            "accepted"
        );
        Ok((connection, peer))
    }
}

impl Accept for Listener {
    async fn accept_connection(&mut self) -> io::Result<Connection> {
        self.accept().await.map(|(connection, _peer)| connection)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        match remove_if_same(&self.path, self.identity) {
            Ok(true) => tracing::debug!(path = %self.path.display(), "removed socket file"),
            Ok(false) => tracing::debug!(
                path = %self.path.display(),
                "socket file already gone or replaced; left alone"
            ),
            Err(error) => tracing::warn!(
                path = %self.path.display(),
                %error,
                "could not remove socket file"
            ),
        }
    }
}

/// The directory `path` lives in (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Checks that `parent` exists and is a directory.
fn check_parent(path: &Path, parent: &Path) -> Result<(), BindError> {
    match fs::metadata(parent) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(BindError::ParentNotADirectory {
            path: path.to_path_buf(),
            parent: parent.to_path_buf(),
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(BindError::ParentMissing {
            path: path.to_path_buf(),
            parent: parent.to_path_buf(),
        }),
        Err(source) => Err(BindError::Io {
            op: "inspect the directory",
            path: parent.to_path_buf(),
            source,
        }),
    }
}

/// What connecting to an existing socket showed.
enum Probe {
    /// Something accepted, or its backlog is full, or it did not answer in time.
    Alive,
    /// Connection refused: nothing listens.
    Stale,
    /// The file disappeared meanwhile.
    Gone,
    /// Some other error (for example, no permission to connect).
    Failed(io::Error),
}

/// Connects to the socket at `path` to see whether anything listens on it.
async fn probe(path: &Path) -> Probe {
    match tokio::time::timeout(PROBE_TIMEOUT, UnixStream::connect(path)).await {
        Err(_elapsed) => Probe::Alive,
        Ok(Ok(_stream)) => Probe::Alive,
        Ok(Err(error)) => match error.kind() {
            io::ErrorKind::ConnectionRefused => Probe::Stale,
            // EAGAIN: the backlog is full, so a listener exists.
            io::ErrorKind::WouldBlock => Probe::Alive,
            io::ErrorKind::NotFound => Probe::Gone,
            _ => Probe::Failed(error),
        },
    }
}

/// Makes sure `path` is free, removing a stale socket; fails when it holds a live socket
/// or anything that is not a socket.
async fn clear_stale(path: &Path) -> Result<(), BindError> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(BindError::Io {
                op: "inspect",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    // A symbolic link is refused even when it points at a socket: it is not ours to
    // remove, and following it would bind somewhere else.
    if !metadata.file_type().is_socket() {
        return Err(BindError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match probe(path).await {
        Probe::Alive => Err(BindError::InUse {
            path: path.to_path_buf(),
        }),
        Probe::Gone => Ok(()),
        Probe::Failed(source) => Err(BindError::Io {
            op: "probe the existing socket",
            path: path.to_path_buf(),
            source,
        }),
        Probe::Stale => {
            match remove_if_unchanged(path, &metadata) {
                Ok(true) => {
                    tracing::info!(path = %path.display(), "removed stale socket (connection refused)");
                }
                // Replaced since the probe: the next attempt will examine the new file.
                Ok(false) => {}
                Err(source) => {
                    return Err(BindError::Io {
                        op: "remove the stale socket",
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
            Ok(())
        }
    }
}

/// Removes `path` if it is still the file `identity` describes. `Ok(false)` when it is
/// gone or another file.
///
/// Device and inode identify a file only while it exists: once it is removed, a new file
/// may get the same inode number. That cannot happen to a listener's own socket file,
/// which the bound socket keeps alive; a stale socket file is pinned by nothing, so
/// [`clear_stale`] also compares the change time (see [`remove_if_unchanged`]).
fn remove_if_same(path: &Path, identity: FileIdentity) -> io::Result<bool> {
    remove_if(path, |metadata| FileIdentity::of(metadata) == identity)
}

/// Removes `path` if it is still the file `examined` describes, not even changed since:
/// same device, inode and change time.
fn remove_if_unchanged(path: &Path, examined: &fs::Metadata) -> io::Result<bool> {
    remove_if(path, |metadata| {
        FileIdentity::of(metadata) == FileIdentity::of(examined)
            && metadata.ctime() == examined.ctime()
            && metadata.ctime_nsec() == examined.ctime_nsec()
    })
}

/// Removes `path` if its metadata (not following links) satisfies `is_expected`.
/// `Ok(false)` when it is gone or does not.
fn remove_if(path: &Path, is_expected: impl Fn(&fs::Metadata) -> bool) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if is_expected(&metadata) => match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        },
        Ok(_) => Ok(false),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Binds, configures and starts the socket, then puts it at `path` without replacing
/// anything. `Ok(None)` when something took `path` meanwhile.
fn install(
    path: &Path,
    parent: &Path,
    options: &ListenerOptions,
) -> Result<Option<(UnixListener, FileIdentity)>, BindError> {
    static STAGING: AtomicU64 = AtomicU64::new(0);
    let mut staging = Staging {
        created: false,
        dir: parent.join(format!(
            ".ipcspec-{}-{}",
            std::process::id(),
            STAGING.fetch_add(1, Ordering::Relaxed)
        )),
    };
    if check_path(&staging.socket()).is_ok() {
        match install_staged(path, &mut staging, options)? {
            Staged::Installed(installed) => return Ok(Some(installed)),
            Staged::PathTaken => return Ok(None),
            Staged::Unavailable => {}
        }
    } else {
        tracing::debug!(
            path = %path.display(),
            "staging path too long for a socket address; binding in place"
        );
    }
    install_in_place(path, options)
}

/// A private directory to bind and configure the socket in before it becomes visible.
/// Dropping it removes the staged name and the directory.
struct Staging {
    dir: PathBuf,
    /// Whether this process created `dir` (only then is it removed on drop).
    created: bool,
}

impl Staging {
    fn socket(&self) -> PathBuf {
        self.dir.join("s")
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.created {
            return;
        }
        // The socket may never have been bound; nothing else is in the directory.
        let _ = fs::remove_file(self.socket());
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The outcome of [`install_staged`].
enum Staged {
    /// Listening at the final path.
    Installed((UnixListener, FileIdentity)),
    /// Something exists at the final path now.
    PathTaken,
    /// The staging directory's name is taken (left by a killed process whose pid was
    /// reused) or the file system would not hard-link the socket: bind in place instead.
    Unavailable,
}

/// Binds in the private staging directory, sets mode and group there, listens, and
/// hard-links the socket to `path` (which fails rather than replace a file).
fn install_staged(
    path: &Path,
    staging: &mut Staging,
    options: &ListenerOptions,
) -> Result<Staged, BindError> {
    match fs::DirBuilder::new().mode(0o700).create(&staging.dir) {
        Ok(()) => staging.created = true,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            tracing::debug!(
                dir = %staging.dir.display(),
                "staging directory name taken; binding in place"
            );
            return Ok(Staged::Unavailable);
        }
        Err(source) => {
            return Err(BindError::Io {
                op: "create a staging directory at",
                path: staging.dir.clone(),
                source,
            });
        }
    }
    let staged = staging.socket();
    let socket = new_socket(&staged)?;
    socket.bind(&staged).map_err(|source| BindError::Io {
        op: "bind a socket at",
        path: staged.clone(),
        source,
    })?;
    set_group_and_mode(&staged, path, options)?;
    let listener = listen(socket, options, path)?;
    let identity = fs::symlink_metadata(&staged)
        .map(|metadata| FileIdentity::of(&metadata))
        .map_err(|source| BindError::Io {
            op: "inspect",
            path: staged.clone(),
            source,
        })?;
    match fs::hard_link(&staged, path) {
        Ok(()) => Ok(Staged::Installed((listener, identity))),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(Staged::PathTaken),
        Err(error) => {
            tracing::debug!(
                path = %path.display(),
                %error,
                "cannot hard-link the staged socket; binding in place"
            );
            Ok(Staged::Unavailable)
        }
    }
}

/// Binds directly at `path` (which fails rather than replace a file), then sets group
/// and mode. `Ok(None)` when something exists at `path`.
fn install_in_place(
    path: &Path,
    options: &ListenerOptions,
) -> Result<Option<(UnixListener, FileIdentity)>, BindError> {
    let socket = new_socket(path)?;
    match socket.bind(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => return Ok(None),
        Err(source) => {
            return Err(BindError::Io {
                op: "bind a socket at",
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let identity = fs::symlink_metadata(path)
        .map(|metadata| FileIdentity::of(&metadata))
        .map_err(|source| BindError::Io {
            op: "inspect",
            path: path.to_path_buf(),
            source,
        })?;
    let configured =
        set_group_and_mode(path, path, options).and_then(|()| listen(socket, options, path));
    match configured {
        Ok(listener) => Ok(Some((listener, identity))),
        Err(error) => {
            // Do not leave a half-configured socket behind.
            let _ = remove_if_same(path, identity);
            Err(error)
        }
    }
}

/// A new stream socket, for `path` (named in the error).
fn new_socket(path: &Path) -> Result<UnixSocket, BindError> {
    UnixSocket::new_stream().map_err(|source| BindError::Io {
        op: "create a socket for",
        path: path.to_path_buf(),
        source,
    })
}

/// Starts listening with the configured backlog.
fn listen(
    socket: UnixSocket,
    options: &ListenerOptions,
    path: &Path,
) -> Result<UnixListener, BindError> {
    socket
        .listen(options.backlog)
        .map_err(|source| BindError::Io {
            op: "listen on",
            path: path.to_path_buf(),
            source,
        })
}

/// Sets the group (first: changing owner or group may clear mode bits), then the mode,
/// of the socket file at `file`; errors name `path`, the path the caller asked for.
fn set_group_and_mode(
    file: &Path,
    path: &Path,
    options: &ListenerOptions,
) -> Result<(), BindError> {
    if let Some(gid) = options.group {
        std::os::unix::fs::chown(file, None, Some(gid)).map_err(|source| BindError::Group {
            path: path.to_path_buf(),
            gid,
            source,
        })?;
    }
    fs::set_permissions(file, fs::Permissions::from_mode(options.mode)).map_err(|source| {
        BindError::Io {
            op: "set the mode of",
            path: path.to_path_buf(),
            source,
        }
    })
}
