//! Starting the real `migration-service` as a newcomer would, without systemd creating
//! its directories: the service creates a missing state directory (0700) and socket
//! directory (0755), and when it cannot, says which option or directory fixes it.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use common::{HANG, SERVICE, ServiceProcess};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn missing_state_and_socket_directories_are_created_with_their_modes() {
    let dir = common::shared_dir();
    let state = dir.path().join("var/lib/migration-service");
    let run = dir.path().join("run/migration-service");
    let db = state.join("state.db");
    let socket = run.join("ipc.sock");
    let mut service = ServiceProcess::start_args(
        socket.clone(),
        db.clone(),
        &[
            "--socket",
            socket.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(mode(&state), 0o700, "the state directory is private");
    assert_eq!(
        mode(&run),
        0o755,
        "the socket directory is the catalogue's 0755"
    );
    assert!(db.is_file(), "the database was created in it");
    assert!(service.stop().await.success());

    // A second start finds both and leaves them as they are.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o750)).unwrap();
    let mut again = ServiceProcess::start_args(
        socket.clone(),
        db.clone(),
        &[
            "--socket",
            socket.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(mode(&state), 0o750, "an existing directory is not changed");
    assert!(again.stop().await.success());
}

#[tokio::test]
async fn a_relative_socket_and_no_db_beside_it_starts_in_a_fresh_directory() {
    // `migration-service --socket ./m.sock` with the database in a directory that does not
    // exist yet (MIGRATION_DB stands in for the default /var/lib path, which this test
    // must not touch).
    let dir = common::shared_dir();
    let db = dir.path().join("state-dir/state.db");
    let mut child = tokio::process::Command::new(SERVICE)
        .current_dir(dir.path())
        .args(["--socket", "./m.sock"])
        .env("MIGRATION_DB", &db)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let listening = tokio::time::timeout(HANG, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("listening on ./m.sock") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(listening, "the service exited before listening");
    assert_eq!(mode(&dir.path().join("state-dir")), 0o700);
    assert!(dir.path().join("m.sock").exists());
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

#[tokio::test]
async fn a_state_directory_that_cannot_be_created_is_an_error_naming_the_fix() {
    let dir = common::shared_dir();
    // A file where a directory would have to be: no uid (root included) can create it.
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"").unwrap();
    let db = blocker.join("migration-service/state.db");
    let output = tokio::time::timeout(
        HANG,
        tokio::process::Command::new(SERVICE)
            .args(["--socket"])
            .arg(dir.path().join("ipc.sock"))
            .arg("--db")
            .arg(&db)
            .env_remove("NOTIFY_SOCKET")
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot create the directory {}",
            blocker.join("migration-service").display()
        )) && stderr.contains("--db PATH (MIGRATION_DB)"),
        "{stderr}"
    );

    // `push` does not create the service's directory: it says where the database is.
    let output = tokio::process::Command::new(SERVICE)
        .args(["push", "--db"])
        .arg(&db)
        .args(["--all", "shutdown"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no directory") && stderr.contains("--db PATH"),
        "{stderr}"
    );
}
