//! Starting the real bus for the tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Bounds how long a broken build can hang a test; never a performance threshold.
pub const HANG: Duration = Duration::from_secs(60);

/// The bus binary.
pub const BUS: &str = env!("CARGO_BIN_EXE_xstatenet-bus");

/// Starts `xstatenet-bus` on `socket` with `extra` flags and returns once it logged
/// `listening on` (a probing connection would count against its connection limit).
/// Its configuration directory is the socket's directory.
pub async fn start_bus(socket: &Path, extra: &[&str]) -> Child {
    let mut child = Command::new(BUS)
        .arg("--socket")
        .arg(socket)
        .arg("--config")
        .arg(socket.parent().unwrap())
        .args(extra)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::time::timeout(HANG, async {
        while let Some(line) = log.next_line().await.unwrap() {
            if line.contains("listening on") {
                return;
            }
        }
        panic!("the bus exited before listening");
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
    child
}
