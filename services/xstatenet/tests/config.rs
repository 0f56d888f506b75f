#![allow(clippy::unwrap_used)]
//! The seed's `appsettings.json` with its environment overlay, and hot reload: a new
//! MaxConnections applies without a restart, a broken file is refused with a clear log
//! line and the running configuration kept.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipcspec_generated::xstatenet::LogLevel;
use ipcspec_xstatenet::config::{ConfigFiles, load};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::Command;

const HANG: Duration = Duration::from_secs(60);

fn write(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

fn seed_settings(max: u32) -> Value {
    json!({
        "Logging": {"LogLevel": {"Default": "Information", "XStateNet.InterProcess.Service": "Debug"}},
        "MessageBus": {"PipeName": "XStateNet.MessageBus", "MaxConnections": max, "HealthCheckIntervalSeconds": 30}
    })
}

#[test]
fn the_environment_file_overlays_the_base_file_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("appsettings.json"), &seed_settings(100));
    write(
        &dir.path().join("appsettings.Production.json"),
        &json!({"Logging": {"LogLevel": {"Default": "Warning"}}, "MessageBus": {"MaxConnections": 500}}),
    );
    let development = load(&ConfigFiles::in_dir(dir.path(), None)).unwrap();
    assert_eq!(development.max_connections, 100);
    let production = load(&ConfigFiles::in_dir(dir.path(), Some("Production"))).unwrap();
    assert_eq!(production.max_connections, 500);
    assert_eq!(production.pipe_name, "XStateNet.MessageBus");
    assert_eq!(production.health_check_interval, Duration::from_secs(30));
    assert!(
        production
            .log_levels
            .contains(&("Default".to_owned(), LogLevel::Warning))
    );
    assert!(
        production
            .log_levels
            .contains(&("XStateNet.InterProcess.Service".to_owned(), LogLevel::Debug))
    );
    assert_eq!(
        production.filter(),
        "warn,xstatenet::interprocess::service=debug"
    );

    // Mistakes name the file and the problem.
    std::fs::write(dir.path().join("appsettings.Production.json"), "{ not json").unwrap();
    let error = format!(
        "{:#}",
        load(&ConfigFiles::in_dir(dir.path(), Some("Production"))).unwrap_err()
    );
    assert!(
        error.contains("appsettings.Production.json is not JSON"),
        "{error}"
    );
    write(
        &dir.path().join("appsettings.Production.json"),
        &json!({"MessageBus": {"PipeName": "has spaces"}}),
    );
    let error = format!(
        "{:#}",
        load(&ConfigFiles::in_dir(dir.path(), Some("Production"))).unwrap_err()
    );
    assert!(error.contains("PipeName"), "{error}");
    write(
        &dir.path().join("appsettings.Production.json"),
        &json!({"MessageBus": {"MaxConnections": "many"}}),
    );
    let error = format!(
        "{:#}",
        load(&ConfigFiles::in_dir(dir.path(), Some("Production"))).unwrap_err()
    );
    assert!(
        error.contains("appsettings.Production.json") && error.contains("invalid type"),
        "{error}"
    );
}

/// Connects, asks for health, and tells whether the bus refused the connection: the
/// first line is then CONNECTION_LIMIT instead of the HealthStatus answer.
async fn refused(socket: &Path) -> (bool, UnixStream) {
    use tokio::io::AsyncWriteExt;
    let stream = UnixStream::connect(socket).await.unwrap();
    let (read, mut write) = stream.into_split();
    // The bus may already have closed a refused connection: a failed write is fine.
    let _ = write
        .write_all(b"{\"Type\":\"GetHealth\",\"Id\":\"probe\",\"Payload\":{}}\n")
        .await;
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    tokio::time::timeout(HANG, reader.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    let refused = line.contains("CONNECTION_LIMIT");
    assert!(refused || line.contains("HealthStatus"), "{line}");
    (refused, reader.into_inner().reunite(write).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_reloads_and_a_broken_file_keeps_the_running_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("appsettings.json");
    write(&config, &seed_settings(1));
    let socket = dir.path().join("bus.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xstatenet-bus"))
        .arg("--socket")
        .arg(&socket)
        .arg("--config")
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    {
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
    }
    let wait_log = |text: &'static str| {
        let log = Arc::clone(&log);
        async move {
            tokio::time::timeout(HANG, async {
                while !log.lock().unwrap().contains(text) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("never logged {text:?}"));
        }
    };
    wait_log("listening on").await;

    let (first_refused, _first) = refused(&socket).await;
    assert!(!first_refused);
    let (second_refused, _) = refused(&socket).await;
    assert!(second_refused, "MaxConnections 1 from the file");

    // Raised in the file: applies without a restart.
    write(&config, &seed_settings(3));
    wait_log("MaxConnections changed").await;
    let (refused_now, _second) = refused(&socket).await;
    assert!(!refused_now, "MaxConnections 3 after the reload");

    // A broken file is refused, logged, and the running configuration kept.
    std::fs::write(&config, "{ \"MessageBus\": ").unwrap();
    wait_log("configuration refused, keeping the running one").await;
    assert!(log.lock().unwrap().contains("appsettings.json is not JSON"));
    let (third_refused, _third) = refused(&socket).await;
    assert!(!third_refused, "still 3");
    let (fourth_refused, _) = refused(&socket).await;
    assert!(fourth_refused, "and no more than 3");
}
