#![allow(clippy::unwrap_used)]
//! Running the bus: readiness and a graceful stop for systemd (every client is told
//! SHUTTING_DOWN), a second bus on a live socket refused with a clear message, the
//! Prometheus page, and the unit's ExecStart line.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::Command;

const HANG: Duration = Duration::from_secs(60);
const BUS: &str = env!("CARGO_BIN_EXE_xstatenet-bus");

async fn line(reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>) -> Option<Value> {
    let mut text = String::new();
    let n = tokio::time::timeout(HANG, reader.read_line(&mut text))
        .await
        .unwrap()
        .unwrap();
    (n > 0).then(|| serde_json::from_str(&text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_for_systemd_and_a_graceful_stop_tells_every_client() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let listener = tokio::net::UnixDatagram::bind(&notify).unwrap();
    let socket = dir.path().join("bus.sock");
    let mut child = Command::new(BUS)
        .arg("--socket")
        .arg(&socket)
        .arg("--config")
        .arg(dir.path())
        .env("NOTIFY_SOCKET", &notify)
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut buf = vec![0_u8; 256];
    let n = tokio::time::timeout(HANG, listener.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim_end(), "READY=1");

    let (read, mut write) = UnixStream::connect(&socket).await.unwrap().into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(b"{\"Type\":\"GetHealth\",\"Id\":\"1\",\"Payload\":{}}\n")
        .await
        .unwrap();
    assert_eq!(line(&mut reader).await.unwrap()["Type"], "HealthStatus");

    // A second bus on the same, live socket refuses to start, saying why.
    let second = Command::new(BUS)
        .arg("--socket")
        .arg(&socket)
        .arg("--config")
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("is another bus running?"), "{stderr}");

    nix_kill(child.id().unwrap());
    let n = tokio::time::timeout(HANG, listener.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim_end(), "STOPPING=1");
    let notice = line(&mut reader).await.unwrap();
    assert_eq!(notice["Payload"]["ErrorCode"], "SHUTTING_DOWN", "{notice}");
    assert!(line(&mut reader).await.is_none(), "closed after the notice");
    let status = tokio::time::timeout(HANG, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the socket file is removed");
}

fn nix_kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prometheus_page_counts_routing_and_shows_queue_depths() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bus.sock");
    let mut child = Command::new(BUS)
        .arg("--socket")
        .arg(&socket)
        .arg("--config")
        .arg(dir.path())
        .args(["--metrics-address", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = tokio::time::timeout(HANG, async {
        let mut address = None;
        while let Some(text) = log.next_line().await.unwrap() {
            if let Some(rest) = text.split("metrics on http://").nth(1) {
                address = Some(rest.split('/').next().unwrap().to_owned());
            }
            if text.contains("listening on") {
                return address;
            }
        }
        None
    })
    .await
    .unwrap()
    .expect("no metrics address logged");
    tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });

    let (read, mut write) = UnixStream::connect(&socket).await.unwrap().into_split();
    let mut reader = BufReader::new(read);
    for machine in ["a", "b"] {
        let register = format!(
            "{{\"Type\":\"Register\",\"Id\":\"{machine}\",\"Payload\":{{\"MachineId\":\"{machine}\",\"ProcessName\":\"t\",\"ProcessId\":1,\"RegisteredAt\":\"2026-11-25T10:00:00Z\"}}}}\n"
        );
        write.write_all(register.as_bytes()).await.unwrap();
        assert_eq!(line(&mut reader).await.unwrap()["Type"], "Registered");
    }
    write
        .write_all(b"{\"Type\":\"SendEvent\",\"Payload\":{\"SourceMachineId\":\"a\",\"TargetMachineId\":\"b\",\"EventName\":\"E\",\"Timestamp\":\"2026-11-25T10:00:00Z\"}}\n")
        .await
        .unwrap();
    assert_eq!(line(&mut reader).await.unwrap()["Type"], "EventReceived");

    let page = scrape(&address).await;
    for expected in [
        "xstatenet_bus_events_routed_total 1",
        "xstatenet_bus_registered_machines 2",
        "xstatenet_bus_connection_queue_depth{connection=",
        "xstatenet_bus_connection_queue_bytes{connection=",
        "ipcspec_server_messages_by_type_total{direction=\"in\",message_type=\"SendEvent\"} 1",
        "ipcspec_server_messages_by_type_total{direction=\"out\",message_type=\"EventReceived\"} 1",
        "ipcspec_server_handling_latency_seconds_count",
    ] {
        assert!(page.contains(expected), "no {expected:?} in\n{page}");
    }
}

async fn scrape(address: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_units_exec_start_runs_a_bus() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/xstatenet-bus.service"),
    )
    .unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = exec
        .split_whitespace()
        .skip(1)
        .map(|a| {
            a.replace("/etc/xstatenet", &dir.path().display().to_string())
                .replace("/run/xstatenet", &dir.path().display().to_string())
        })
        .collect();
    std::fs::write(
        dir.path().join("appsettings.Production.json"),
        r#"{"MessageBus": {"PipeName": "XStateNet.MessageBus", "MaxConnections": 500, "HealthCheckIntervalSeconds": 60}}"#,
    )
    .unwrap();
    let _child = Command::new(BUS)
        .args(&args)
        .env("DOTNET_ENVIRONMENT", "Production")
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let socket = dir.path().join("XStateNet.MessageBus");
    tokio::time::timeout(HANG, async {
        while UnixStream::connect(&socket).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the bus from the unit never listened");
}
