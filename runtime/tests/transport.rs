//! The Unix domain socket transport, on real sockets in temporary directories.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipcspec_runtime::transport::unix::{
    self, BindError, ConnectError, Listener, ListenerOptions, SUN_PATH_MAX,
};
use ipcspec_runtime::transport::{Accept, Connection, PeerCredentials};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Fails the test instead of hanging it; never a performance threshold.
const GUARD: Duration = Duration::from_secs(30);

/// A generous connect timeout.
const CONNECT: Duration = Duration::from_secs(10);

async fn guarded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(GUARD, future)
        .await
        .expect("test did not finish in time")
}

fn socket_path(dir: &TempDir) -> PathBuf {
    dir.path().join("service.sock")
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// This process's effective uid and gid: the owner of `/proc/self`.
fn own_ids() -> (u32, u32) {
    let metadata = std::fs::metadata("/proc/self").unwrap();
    (metadata.uid(), metadata.gid())
}

fn own_credentials() -> PeerCredentials {
    let (uid, gid) = own_ids();
    PeerCredentials {
        uid: Some(uid),
        gid: Some(gid),
        pid: Some(std::process::id()),
    }
}

/// Leaves a socket file nothing listens on, as a crashed server does.
fn make_stale_socket(path: &Path) {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    drop(listener);
    assert!(
        std::fs::symlink_metadata(path)
            .unwrap()
            .file_type()
            .is_socket()
    );
}

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Accepts one connection and echoes what it reads, upper-cased, until end-of-file.
async fn echo_upper_once(listener: &Listener) {
    let (connection, _peer) = listener.accept().await.unwrap();
    let (mut reader, mut writer) = connection.into_split();
    let mut received = Vec::new();
    reader.read_to_end(&mut received).await.unwrap();
    writer
        .write_all(&received.to_ascii_uppercase())
        .await
        .unwrap();
    writer.shutdown().await.unwrap();
}

/// Sends `message`, closes the write side, and returns everything the server sent.
async fn exchange(connection: &mut Connection, message: &[u8]) -> Vec<u8> {
    connection.write_all(message).await.unwrap();
    connection.shutdown().await.unwrap();
    let mut reply = Vec::new();
    connection.read_to_end(&mut reply).await.unwrap();
    reply
}

#[tokio::test]
async fn bind_creates_the_socket_with_mode_0600_by_default() {
    let dir = TempDir::new().unwrap();
    let path = socket_path(&dir);
    let listener = Listener::bind(&path, ListenerOptions::default())
        .await
        .unwrap();
    let metadata = std::fs::symlink_metadata(&path).unwrap();
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(listener.path(), path);
    // The staging directory is gone: only the socket remains.
    assert_eq!(entries(dir.path()), ["service.sock"]);
}

#[tokio::test]
async fn bind_uses_the_requested_mode() {
    let dir = TempDir::new().unwrap();
    let path = socket_path(&dir);
    let _listener = Listener::bind(
        &path,
        ListenerOptions {
            mode: 0o660,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(mode_of(&path), 0o660);
}

/// A group this process is not in as its primary group, so a socket that ends up with
/// it was given it by `ListenerOptions::group` and not by default: as root, a group the
/// test creates (`groupadd`, removed on drop); otherwise one of the process's
/// supplementary groups.
struct OtherGroup {
    gid: u32,
    created: Option<String>,
}

impl OtherGroup {
    fn new() -> OtherGroup {
        let (uid, own_gid) = own_ids();
        if uid == 0 {
            let name = format!("ipcspec-t{}", std::process::id());
            let status = std::process::Command::new("groupadd")
                .arg(&name)
                .status()
                .expect("groupadd (Debian's `passwd` package) is needed to create a test group");
            assert!(status.success(), "groupadd {name} failed ({status})");
            let group = std::fs::read_to_string("/etc/group").unwrap();
            let gid = group
                .lines()
                .find_map(|line| {
                    let fields: Vec<&str> = line.split(':').collect();
                    (fields.first() == Some(&name.as_str()))
                        .then(|| fields.get(2).and_then(|gid| gid.parse().ok()))
                        .flatten()
                })
                .unwrap_or_else(|| panic!("{name} is not in /etc/group after groupadd"));
            return OtherGroup {
                gid,
                created: Some(name),
            };
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let gid = status
            .lines()
            .find_map(|line| line.strip_prefix("Groups:"))
            .and_then(|groups| {
                groups
                    .split_whitespace()
                    .filter_map(|gid| gid.parse::<u32>().ok())
                    .find(|&gid| gid != own_gid)
            })
            .expect("run the tests as root, or as a member of a supplementary group");
        OtherGroup { gid, created: None }
    }
}

impl Drop for OtherGroup {
    fn drop(&mut self) {
        if let Some(name) = &self.created {
            let _ = std::process::Command::new("groupdel").arg(name).status();
        }
    }
}

#[tokio::test]
async fn bind_sets_the_requested_group() {
    let dir = TempDir::new().unwrap();
    let path = socket_path(&dir);
    let group = OtherGroup::new();
    assert_ne!(group.gid, own_ids().1);
    let _listener = Listener::bind(
        &path,
        ListenerOptions {
            mode: 0o660,
            group: Some(group.gid),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let metadata = std::fs::symlink_metadata(&path).unwrap();
    assert_eq!(metadata.gid(), group.gid);
    assert_eq!(metadata.permissions().mode() & 0o777, 0o660);
}

#[tokio::test]
async fn bind_rejects_modes_beyond_the_permission_bits() {
    let dir = TempDir::new().unwrap();
    let path = socket_path(&dir);
    let error = Listener::bind(
        &path,
        ListenerOptions {
            mode: 0o4600,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, BindError::InvalidMode { mode: 0o4600 }),
        "{error:?}"
    );
    assert!(!path.exists());
}

#[tokio::test]
async fn bind_in_place_when_the_staging_path_is_too_long_still_sets_the_mode() {
    // A directory deep enough that the socket path fits in sun_path but the staging
    // path (`DIR/.ipcspec-PID-N/s`) does not.
    let dir = TempDir::new().unwrap();
    let base_len = dir.path().as_os_str().len();
    let name = "x.sock";
    let filler = SUN_PATH_MAX - base_len - 2 - name.len();
    let deep = dir.path().join("d".repeat(filler));
    std::fs::create_dir(&deep).unwrap();
    let path = deep.join(name);
    assert_eq!(path.as_os_str().len(), SUN_PATH_MAX);

    let listener = Listener::bind(
        &path,
        ListenerOptions {
            mode: 0o640,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(mode_of(&path), 0o640);
    assert_eq!(entries(&deep), [name]);

    let (server, client) = tokio::join!(listener.accept(), unix::connect(&path, CONNECT));
    server.unwrap();
    client.unwrap();
}

#[tokio::test]
async fn bind_rejects_a_path_longer_than_sun_path() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("s".repeat(SUN_PATH_MAX));
    let error = Listener::bind(&path, ListenerOptions::default())
        .await
        .unwrap_err();
    match error {
        BindError::PathTooLong {
            path: named,
            len,
            max,
        } => {
            assert_eq!(named, path);
            assert_eq!(len, path.as_os_str().len());
            assert_eq!(max, SUN_PATH_MAX);
        }
        other => panic!("expected PathTooLong, got {other:?}"),
    }
}

#[tokio::test]
async fn a_live_socket_is_not_stolen() {
    guarded(async {
        let dir = TempDir::new().unwrap();
        let path = socket_path(&dir);
        let first = Listener::bind(&path, ListenerOptions::default())
            .await
            .unwrap();
        let inode = std::fs::symlink_metadata(&path).unwrap().ino();

        let error = Listener::bind(&path, ListenerOptions::default())
            .await
            .unwrap_err();
        match &error {
            BindError::InUse { path: named } => assert_eq!(named, &path),
            other => panic!("expected InUse, got {other:?}"),
        }
        assert_eq!(
            error.to_string(),
            format!("another process is listening on {}", path.display())
        );
        assert_eq!(std::fs::symlink_metadata(&path).unwrap().ino(), inode);

        // The probe's connection arrives first; then the first listener keeps serving.
        let (_probe, _) = first.accept().await.unwrap();
        let (server, client) = tokio::join!(echo_upper_once(&first), async {
            let mut connection = unix::connect(&path, CONNECT).await.unwrap();
            exchange(&mut connection, b"still here").await
        });
        let () = server;
        assert_eq!(client, b"STILL HERE");
    })
    .await;
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    guarded(async {
        let dir = TempDir::new().unwrap();
        let path = socket_path(&dir);
        make_stale_socket(&path);

        let listener = Listener::bind(&path, ListenerOptions::default())
            .await
            .unwrap();
        let metadata = std::fs::symlink_metadata(&path).unwrap();
        assert!(metadata.file_type().is_socket());
        // (The inode number may be the stale file's again: it was freed.)
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);

        let (server, client) = tokio::join!(listener.accept(), unix::connect(&path, CONNECT));
        server.unwrap();
        client.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_regular_file_is_refused_and_left_intact() {
    let dir = TempDir::new().unwrap();
    let path = socket_path(&dir);
    std::fs::write(&path, b"precious data").unwrap();

    let error = Listener::bind(&path, ListenerOptions::default())
        .await
        .unwrap_err();
    match &error {
        BindError::NotASocket { path: named } => assert_eq!(named, &path),
        other => panic!("expected NotASocket, got {other:?}"),
    }
    assert!(error.to_string().contains(&path.display().to_string()));
    assert_eq!(std::fs::read(&path).unwrap(), b"precious data");
    assert_eq!(entries(dir.path()), ["service.sock"]);
}

#[tokio::test]
async fn a_symlink_to_a_stale_socket_is_refused_and_left_intact() {
    let dir = TempDir::new().unwrap();
    let target = dir.path().join("real.sock");
    make_stale_socket(&target);
    let path = socket_path(&dir);
    std::os::unix::fs::symlink(&target, &path).unwrap();

    let error = Listener::bind(&path, ListenerOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, BindError::NotASocket { .. }), "{error:?}");
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_socket()
    );
}

#[tokio::test]
async fn a_missing_parent_directory_is_named() {
    let dir = TempDir::new().unwrap();
    let parent = dir.path().join("run").join("ipcspec");
    let path = parent.join("service.sock");

    let error = Listener::bind(&path, ListenerOptions::default())
        .await
        .unwrap_err();
    match &error {
        BindError::ParentMissing {
            path: named,
            parent: missing,
        } => {
            assert_eq!(named, &path);
            assert_eq!(missing, &parent);
        }
        other => panic!("expected ParentMissing, got {other:?}"),
    }
    assert!(
        error.to_string().contains(&format!(
            "the directory {} does not exist",
            parent.display()
        )),
        "{error}"
    );
    assert!(!parent.exists());
}

#[tokio::test]
async fn a_parent_that_is_a_file_is_reported() {
    let dir = TempDir::new().unwrap();
    let parent = dir.path().join("not-a-dir");
    std::fs::write(&parent, b"").unwrap();
    let error = Listener::bind(parent.join("service.sock"), ListenerOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BindError::ParentNotADirectory { parent: p, .. } if p == &parent),
        "{error:?}"
    );
}

#[tokio::test]
async fn accept_reports_the_peer_credentials() {
    guarded(async {
        let dir = TempDir::new().unwrap();
        let path = socket_path(&dir);
        let listener = Listener::bind(&path, ListenerOptions::default())
            .await
            .unwrap();

        let (accepted, client) = tokio::join!(listener.accept(), unix::connect(&path, CONNECT));
        let (connection, peer) = accepted.unwrap();
        let client = client.unwrap();

        assert_eq!(peer, own_credentials());
        assert_eq!(connection.peer(), Some(own_credentials()));
        // The client sees the server's credentials: the same process here.
        assert_eq!(client.peer(), Some(own_credentials()));
        // The socket file is owned by this process's uid too.
        assert_eq!(std::fs::symlink_metadata(&path).unwrap().uid(), own_ids().0);
    })
    .await;
}

#[tokio::test]
async fn connect_to_a_missing_path_is_not_found_naming_it() {
    let dir = TempDir::new().unwrap();
    let path = socket_path(&dir);
    let error = unix::connect(&path, CONNECT).await.unwrap_err();
    match &error {
        ConnectError::NotFound { path: named } => assert_eq!(named, &path),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn connect_to_a_stale_socket_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = socket_path(&dir);
    make_stale_socket(&path);
    let error = unix::connect(&path, CONNECT).await.unwrap_err();
    match &error {
        ConnectError::Refused { path: named } => assert_eq!(named, &path),
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_to_a_regular_file_is_not_a_socket() {
    let dir = TempDir::new().unwrap();
    let path = socket_path(&dir);
    std::fs::write(&path, b"").unwrap();
    let error = unix::connect(&path, CONNECT).await.unwrap_err();
    assert!(
        matches!(&error, ConnectError::NotASocket { path: named } if named == &path),
        "{error:?}"
    );
}

/// Set in the child process [`connect_without_permission_is_permission_denied`] starts
/// as an unprivileged user: the socket to connect to.
const UNPRIVILEGED_CONNECT: &str = "IPCSPEC_TEST_UNPRIVILEGED_CONNECT";

/// `nobody`'s uid and gid, from `/etc/passwd`.
fn unprivileged_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                ["nobody", _, uid, gid, ..] => Some((uid.parse().ok()?, gid.parse().ok()?)),
                _ => None,
            }
        })
        .expect("the tests run as root need the unprivileged user `nobody` in /etc/passwd")
}

/// Connects to `path`, which must refuse with `PermissionDenied` naming it.
async fn expect_permission_denied(path: &Path) {
    let error = unix::connect(path, CONNECT).await.unwrap_err();
    assert!(
        matches!(&error, ConnectError::PermissionDenied { path: named } if named == path),
        "{error:?}"
    );
}

#[tokio::test]
async fn connect_without_permission_is_permission_denied() {
    if let Some(path) = std::env::var_os(UNPRIVILEGED_CONNECT) {
        // The child: running as `nobody`, started below.
        expect_permission_denied(Path::new(&path)).await;
        return;
    }
    let dir = TempDir::new().unwrap();
    // Every user may enter the directory: the socket's mode is what refuses.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = socket_path(&dir);
    let _listener = Listener::bind(
        &path,
        ListenerOptions {
            mode: 0o000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (uid, _gid) = own_ids();
    if uid != 0 {
        expect_permission_denied(&path).await;
        return;
    }
    // root connects whatever the mode: the connect runs in this test's binary again, as
    // `nobody` (std drops the supplementary groups with the uid).
    use std::os::unix::process::CommandExt;
    let (uid, gid) = unprivileged_user();
    // Blocking is fine: connect(2) is refused by the kernel, the listener need not run.
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "connect_without_permission_is_permission_denied",
            "--nocapture",
        ])
        .env(UNPRIVILEGED_CONNECT, &path)
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the connect as nobody failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn connect_times_out_while_the_backlog_stays_full() {
    guarded(async {
        let dir = TempDir::new().unwrap();
        let path = socket_path(&dir);
        // A listener that never accepts, with the smallest backlog.
        let _listener = Listener::bind(
            &path,
            ListenerOptions {
                backlog: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();

        let timeout = Duration::from_millis(200);
        let mut held = Vec::new();
        let error = loop {
            match unix::connect(&path, timeout).await {
                Ok(connection) => {
                    held.push(connection);
                    assert!(held.len() < 64, "the backlog never filled up");
                }
                Err(error) => break error,
            }
        };
        match &error {
            ConnectError::TimedOut { path: named, after } => {
                assert_eq!(named, &path);
                assert_eq!(*after, timeout);
            }
            other => panic!("expected TimedOut, got {other:?}"),
        }

        // A listener with a full backlog is alive: binding again must not steal it.
        let error = Listener::bind(&path, ListenerOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, BindError::InUse { .. }), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn dropping_the_listener_removes_its_socket_file() {
    let dir = TempDir::new().unwrap();
    let path = socket_path(&dir);
    let listener = Listener::bind(&path, ListenerOptions::default())
        .await
        .unwrap();
    assert!(path.exists());
    drop(listener);
    assert!(std::fs::symlink_metadata(&path).is_err());
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn dropping_the_listener_leaves_a_replaced_file_alone() {
    let dir = TempDir::new().unwrap();
    let path = socket_path(&dir);
    let old = Listener::bind(&path, ListenerOptions::default())
        .await
        .unwrap();
    // Someone removes the socket and another listener takes the path.
    std::fs::remove_file(&path).unwrap();
    let new = Listener::bind(&path, ListenerOptions::default())
        .await
        .unwrap();
    let inode = std::fs::symlink_metadata(&path).unwrap().ino();

    drop(old);
    assert_eq!(std::fs::symlink_metadata(&path).unwrap().ino(), inode);
    drop(new);
    assert!(std::fs::symlink_metadata(&path).is_err());
}

#[tokio::test]
async fn data_round_trips_over_accept_and_connect() {
    guarded(async {
        let dir = TempDir::new().unwrap();
        let path = socket_path(&dir);
        let listener = Listener::bind(&path, ListenerOptions::default())
            .await
            .unwrap();
        // Larger than a socket buffer, so both directions really stream.
        let message: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();

        let (server, reply) = tokio::join!(echo_upper_once(&listener), async {
            let mut connection = unix::connect(&path, CONNECT).await.unwrap();
            exchange(&mut connection, &message).await
        });
        let () = server;
        assert_eq!(reply, message.to_ascii_uppercase());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_clients_each_get_their_own_answer() {
    guarded(async {
        let dir = TempDir::new().unwrap();
        let path = socket_path(&dir);
        let mut listener = Listener::bind(&path, ListenerOptions::default())
            .await
            .unwrap();

        let server = tokio::spawn(async move {
            let mut handlers = Vec::new();
            let mut ids = Vec::new();
            for _ in 0..50 {
                // Through the transport-independent trait, as a server will.
                let connection = listener.accept_connection().await.unwrap();
                assert_eq!(connection.peer(), Some(own_credentials()));
                ids.push(connection.id());
                handlers.push(tokio::spawn(async move {
                    let (mut reader, mut writer) = connection.into_split();
                    let mut received = Vec::new();
                    reader.read_to_end(&mut received).await.unwrap();
                    received.reverse();
                    writer.write_all(&received).await.unwrap();
                    writer.shutdown().await.unwrap();
                }));
            }
            for handler in handlers {
                handler.await.unwrap();
            }
            ids
        });

        let clients: Vec<_> = (0..50)
            .map(|n| {
                let path = path.clone();
                tokio::spawn(async move {
                    let mut connection = unix::connect(&path, CONNECT).await.unwrap();
                    let message = format!("client number {n} says hello").repeat(100);
                    let reply = exchange(&mut connection, message.as_bytes()).await;
                    let mut expected = message.into_bytes();
                    expected.reverse();
                    assert_eq!(reply, expected, "client {n}");
                })
            })
            .collect();
        for client in futures::future::join_all(clients).await {
            client.unwrap();
        }

        let mut ids = server.await.unwrap();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 50, "connection ids are unique");
    })
    .await;
}

#[tokio::test]
async fn socketpair_ends_are_connected_and_know_their_peer() {
    guarded(async {
        let (mut first, mut second) = unix::socketpair().unwrap();
        assert_ne!(first.id(), second.id());
        assert!(first.id().get() > 0);
        assert_eq!(first.peer(), Some(own_credentials()));
        assert_eq!(second.peer(), Some(own_credentials()));

        first.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        second.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        second.write_all(b"pong").await.unwrap();
        first.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
    })
    .await;
}

#[tokio::test]
async fn any_stream_becomes_a_connection() {
    guarded(async {
        // How a future transport (named pipes) plugs in: a plain AsyncRead + AsyncWrite.
        let (near, far) = tokio::io::duplex(64);
        let mut near = Connection::from_stream(near, None);
        let mut far = Connection::from_stream(far, None);
        assert_eq!(near.peer(), None);
        assert!(far.id() > near.id());
        assert!(near.id().to_string().starts_with("conn#"));

        near.write_all(b"hello").await.unwrap();
        near.shutdown().await.unwrap();
        let mut received = Vec::new();
        far.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, b"hello");
    })
    .await;
}

#[tokio::test]
async fn a_taken_staging_name_is_left_alone() {
    // Directories named like the staging directories this process would create (as a
    // killed process whose pid was reused would leave them): bind must neither fail nor
    // remove them.
    let dir = TempDir::new().unwrap();
    let pid = std::process::id();
    for n in 0..500 {
        let taken = dir.path().join(format!(".ipcspec-{pid}-{n}"));
        std::fs::create_dir(&taken).unwrap();
        std::fs::write(taken.join("keep"), b"").unwrap();
    }
    let path = socket_path(&dir);
    let listener = Listener::bind(
        &path,
        ListenerOptions {
            mode: 0o640,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(mode_of(&path), 0o640);
    drop(listener);
    for n in 0..500 {
        assert!(
            dir.path()
                .join(format!(".ipcspec-{pid}-{n}"))
                .join("keep")
                .exists()
        );
    }
    assert_eq!(entries(dir.path()).len(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_binds_on_a_stale_socket_leave_exactly_one_winner() {
    guarded(async {
        for _round in 0..10 {
            let dir = TempDir::new().unwrap();
            let path = socket_path(&dir);
            make_stale_socket(&path);

            let attempts: Vec<_> = (0..8)
                .map(|_| {
                    let path = path.clone();
                    tokio::spawn(
                        async move { Listener::bind(&path, ListenerOptions::default()).await },
                    )
                })
                .collect();
            let mut winners = Vec::new();
            for attempt in futures::future::join_all(attempts).await {
                match attempt.unwrap() {
                    Ok(listener) => winners.push(listener),
                    Err(BindError::InUse { .. }) => {}
                    Err(other) => panic!("unexpected error: {other:?}"),
                }
            }
            assert_eq!(winners.len(), 1, "exactly one bind wins");
            let winner = winners.pop().unwrap();
            // The path leads to the winner (after the losers' probe connections).
            let mut client = unix::connect(&path, CONNECT).await.unwrap();
            client.write_all(b"x").await.unwrap();
            client.shutdown().await.unwrap();
            let mut found = false;
            for _ in 0..16 {
                let (mut connection, _peer) = winner.accept().await.unwrap();
                let mut received = Vec::new();
                connection.read_to_end(&mut received).await.unwrap();
                if received == b"x" {
                    found = true;
                    break;
                }
            }
            assert!(
                found,
                "the winner accepts connections made through the path"
            );
            drop(winner);
            assert_eq!(entries(dir.path()), Vec::<String>::new());
        }
    })
    .await;
}

/// Bytes the server side of a fresh connection accepts without the client reading: the
/// socket's send buffer, filled by writes until one would wait (checked without waiting,
/// so nothing here depends on time).
async fn bytes_writable_before_the_peer_reads(options: ListenerOptions) -> usize {
    use futures::FutureExt;

    let dir = TempDir::new().unwrap();
    let path = socket_path(&dir);
    let listener = Listener::bind(&path, options).await.unwrap();
    let (client, accepted) = tokio::join!(unix::connect(&path, CONNECT), listener.accept());
    let _client = client.unwrap();
    let (_reader, mut writer) = accepted.unwrap().0.into_split();
    let chunk = vec![b'x'; 4096];
    let mut written = 0;
    // A write that is not ready at once finds the buffer full: the client never reads.
    while let Some(result) = writer.write(&chunk).now_or_never() {
        written += result.unwrap();
        assert!(written < 64 * 1024 * 1024, "the send buffer never filled");
    }
    written
}

#[tokio::test]
async fn send_buffer_bytes_lets_the_server_write_more_before_the_peer_reads() {
    let default = guarded(bytes_writable_before_the_peer_reads(
        ListenerOptions::default(),
    ))
    .await;
    // Well above the usual default (net.core.wmem_default, 208 KiB) and below the usual
    // cap (net.core.wmem_max); the kernel's accounting makes the bytes writable a
    // fraction of the buffer, so only the comparison is exact.
    let requested = 1024 * 1024;
    let enlarged = guarded(bytes_writable_before_the_peer_reads(ListenerOptions {
        send_buffer_bytes: Some(requested),
        ..ListenerOptions::default()
    }))
    .await;
    assert!(
        enlarged > default,
        "{enlarged} bytes writable with SO_SNDBUF {requested}, {default} with the default"
    );
}
