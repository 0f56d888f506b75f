#![allow(clippy::unwrap_used)]
//! The bus as a real process, with clients on real sockets: the seed's integration test,
//! ownership, bad input, a slow consumer, the connection limit, and 100 clients sending
//! 1,000 events each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

mod common;

use common::HANG;

struct BusProcess {
    _child: tokio::process::Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

async fn start(extra: &[&str]) -> BusProcess {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("XStateNet.MessageBus");
    let child = common::start_bus(&socket, extra).await;
    BusProcess {
        _child: child,
        socket,
        _dir: dir,
    }
}

struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn connect(socket: &Path) -> Client {
        let (read, writer) = UnixStream::connect(socket).await.unwrap().into_split();
        Client {
            reader: BufReader::new(read),
            writer,
        }
    }

    async fn raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    async fn send(&mut self, value: Value) {
        let mut line = value.to_string();
        line.push('\n');
        self.raw(line.as_bytes()).await;
    }

    async fn next(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = tokio::time::timeout(HANG, self.reader.read_line(&mut line))
            .await
            .expect("nothing from the bus")
            .unwrap();
        (n > 0).then(|| serde_json::from_str(&line).unwrap())
    }

    async fn register(&mut self, machine: &str) {
        self.send(
            json!({"Type": "Register", "Id": format!("reg-{machine}"), "Payload": {
            "MachineId": machine, "ProcessName": "test", "ProcessId": std::process::id(),
            "RegisteredAt": "2026-11-25T10:00:00Z"}}),
        )
        .await;
        let reply = self.next().await.unwrap();
        assert_eq!(reply["Type"], "Registered", "{reply}");
        assert_eq!(reply["CorrelationId"], format!("reg-{machine}"));
    }

    async fn event(&mut self, from: &str, to: &str, name: &str, payload: Value) {
        self.send(
            json!({"Type": "SendEvent", "Payload": {"SourceMachineId": from,
            "TargetMachineId": to, "EventName": name, "Payload": payload,
            "Timestamp": "2026-11-25T10:00:00Z"}}),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_integration_test() {
    let bus = start(&[]).await;
    let mut one = Client::connect(&bus.socket).await;
    let mut two = Client::connect(&bus.socket).await;
    one.register("machine-1").await;
    two.register("machine-2").await;
    one.event(
        "machine-1",
        "machine-2",
        "TEST_EVENT",
        json!({"Data": "Hello"}),
    )
    .await;
    let received = two.next().await.unwrap();
    assert_eq!(received["Type"], "EventReceived");
    assert_eq!(received["Payload"]["EventName"], "TEST_EVENT");
    assert_eq!(received["Payload"]["SourceMachineId"], "machine-1");
    assert_eq!(received["Payload"]["TargetMachineId"], "machine-2");
    assert_eq!(received["Payload"]["Payload"], json!({"Data": "Hello"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_ids_belong_to_the_connection_that_registered_them() {
    let bus = start(&[]).await;
    let mut owner = Client::connect(&bus.socket).await;
    let mut other = Client::connect(&bus.socket).await;
    owner.register("machine-1").await;
    other.register("machine-2").await;

    // Hijack: registering a live id from another connection.
    other
        .send(
            json!({"Type": "Register", "Id": "h", "Payload": {"MachineId": "machine-1",
            "ProcessName": "thief", "ProcessId": 1, "RegisteredAt": "2026-11-25T10:00:00Z"}}),
        )
        .await;
    let error = other.next().await.unwrap();
    assert_eq!(
        error["Payload"]["ErrorCode"], "MACHINE_ALREADY_REGISTERED",
        "{error}"
    );
    assert_eq!(error["Payload"]["MachineId"], "machine-1");
    assert_eq!(error["CorrelationId"], "h");

    // Spoof: sending as a machine of another connection.
    other
        .event("machine-1", "machine-2", "SPOOF", json!({}))
        .await;
    let error = other.next().await.unwrap();
    assert_eq!(
        error["Payload"]["ErrorCode"], "SOURCE_NOT_REGISTERED",
        "{error}"
    );
    assert_eq!(error["Payload"]["MachineId"], "machine-1");

    // The owner's machine still works both ways.
    other
        .event("machine-2", "machine-1", "HELLO", json!({"n": 1}))
        .await;
    assert_eq!(owner.next().await.unwrap()["Payload"]["EventName"], "HELLO");

    // Killed: its machines disappear at once.
    drop(owner);
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        other
            .send(json!({"Type": "GetHealth", "Id": "h", "Payload": {}}))
            .await;
        let health = other.next().await.unwrap();
        if health["Payload"]["RegisteredMachines"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "machine-1 never went away"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    other
        .event("machine-2", "machine-1", "ANYONE", json!({}))
        .await;
    let reply = other.next().await.unwrap();
    assert_eq!(reply["Payload"]["ErrorCode"], "UNKNOWN_TARGET", "{reply}");
    assert_eq!(reply["Payload"]["TargetMachineId"], "machine-1");
    // ...so another process may take the id.
    let mut newcomer = Client::connect(&bus.socket).await;
    newcomer.register("machine-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_get_errors_naming_the_problem_and_the_connection_goes_on() {
    let bus = start(&[]).await;
    let mut client = Client::connect(&bus.socket).await;
    let mut bystander = Client::connect(&bus.socket).await;
    bystander.register("calm").await;

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json\n".to_vec(), "INVALID_JSON"),
        (b"\xff\xfe\n".to_vec(), "INVALID_UTF8"),
        ([vec![b'x'; 1024 * 1024 + 10], b"\n".to_vec()].concat(), "LINE_TOO_LONG"),
        (b"{\"Type\":\"EventReceived\",\"Payload\":{}}\n".to_vec(), "UNKNOWN_TYPE"),
        (b"{\"Type\":\"Bogus\",\"Payload\":{}}\n".to_vec(), "UNKNOWN_TYPE"),
        (
            b"{\"Type\":\"SendEvent\",\"Payload\":{\"SourceMachineId\":\"a\",\"EventName\":\"E\",\"Timestamp\":\"2026-11-25T10:00:00Z\"}}\n".to_vec(),
            "MISSING_FIELD",
        ),
        (
            b"{\"Type\":\"Register\",\"Payload\":{\"MachineId\":\"has spaces\",\"ProcessName\":\"p\",\"ProcessId\":1,\"RegisteredAt\":\"2026-11-25T10:00:00Z\"}}\n".to_vec(),
            "INVALID_FIELD",
        ),
    ];
    for (line, code) in cases {
        client.raw(&line).await;
        let error = client.next().await.expect("closed instead of an Error");
        assert_eq!(error["Type"], "Error", "{error}");
        assert_eq!(error["Payload"]["ErrorCode"], code, "{error}");
        assert!(!error["Payload"]["Message"].as_str().unwrap().is_empty());
    }
    // A missing field is named.
    client
        .raw(b"{\"Type\":\"SendEvent\",\"Payload\":{\"SourceMachineId\":\"a\",\"EventName\":\"E\",\"Timestamp\":\"2026-11-25T10:00:00Z\"}}\n")
        .await;
    let error = client.next().await.unwrap();
    assert_eq!(error["Payload"]["Field"], "TargetMachineId", "{error}");

    // Still served, and so is everyone else.
    client.register("after-the-storm").await;
    // Events between registered machines that break the catalogue are refused, not
    // routed, and a malformed source is reported as malformed before as unregistered.
    let event = |payload: &str| format!("{{\"Type\":\"SendEvent\",\"Payload\":{payload}}}\n");
    let refused = [
        (
            event(
                r#"{"SourceMachineId":"after-the-storm","TargetMachineId":"calm","EventName":"not a name","Timestamp":"2026-11-25T10:00:00Z"}"#,
            ),
            "EventName",
        ),
        (
            event(
                r#"{"SourceMachineId":"after-the-storm","TargetMachineId":"calm","EventName":"E","Timestamp":"yesterday"}"#,
            ),
            "Timestamp",
        ),
        (
            event(
                r#"{"SourceMachineId":"has spaces","TargetMachineId":"calm","EventName":"E","Timestamp":"2026-11-25T10:00:00Z"}"#,
            ),
            "SourceMachineId",
        ),
        (
            event(
                r#"{"SourceMachineId":"after-the-storm","TargetMachineId":"calm","EventName":"E","Payload":1,"Payload":2,"Timestamp":"2026-11-25T10:00:00Z"}"#,
            ),
            "",
        ),
    ];
    // Nesting: the envelope is level 1, its payload 2, so the event's own payload may
    // nest 62 more levels (64 in all) and not one more.
    let nested = |levels: usize| {
        event(&format!(
            r#"{{"SourceMachineId":"after-the-storm","TargetMachineId":"calm","EventName":"DEEP","Payload":{}1{},"Timestamp":"2026-11-25T10:00:00Z"}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        ))
    };
    client.raw(nested(63).as_bytes()).await;
    let error = client.next().await.expect("closed instead of an Error");
    assert_eq!(error["Payload"]["ErrorCode"], "INVALID_JSON", "{error}");
    assert!(error["CorrelationId"].is_null(), "{error}");
    client.raw(nested(62).as_bytes()).await;
    let deep = bystander.next().await.unwrap();
    assert_eq!(deep["Payload"]["EventName"], "DEEP", "{deep}");
    for (line, field) in refused {
        client.raw(line.as_bytes()).await;
        let error = client.next().await.expect("closed instead of an Error");
        assert_eq!(
            error["Payload"]["ErrorCode"], "INVALID_FIELD",
            "{line}: {error}"
        );
        if !field.is_empty() {
            assert_eq!(error["Payload"]["Field"], field, "{line}: {error}");
        }
    }
    client
        .event("after-the-storm", "calm", "FINE", json!({}))
        .await;
    assert_eq!(
        bystander.next().await.unwrap()["Payload"]["EventName"],
        "FINE"
    );
    // Health and metrics answer with the request's Id.
    client
        .send(json!({"Type": "GetHealth", "Id": "h1", "Payload": {}}))
        .await;
    let health = client.next().await.unwrap();
    assert_eq!(health["Type"], "HealthStatus");
    assert_eq!(health["CorrelationId"], "h1");
    assert_eq!(health["Payload"]["RegisteredMachines"], 2);
    client
        .send(json!({"Type": "GetMetrics", "Id": "m1", "Payload": {}}))
        .await;
    let metrics = client.next().await.unwrap();
    assert_eq!(metrics["Type"], "PerformanceMetrics");
    assert!(metrics["Payload"]["PeakConnections"].as_u64().unwrap() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_is_disconnected_and_others_carry_on() {
    let bus = start(&["--max-pending-bytes", "16384"]).await;
    let mut sender = Client::connect(&bus.socket).await;
    let mut slow = Client::connect(&bus.socket).await;
    let mut fast = Client::connect(&bus.socket).await;
    sender.register("sender").await;
    slow.register("slow").await;
    fast.register("fast").await;
    // `slow` never reads again. Flood it until the bus gives up on it.
    let payload = json!({"Blob": "y".repeat(8 * 1024)});
    let mut refused = None;
    for n in 0..100_000 {
        sender
            .event("sender", "slow", "FLOOD", payload.clone())
            .await;
        if n % 64 == 0 {
            sender
                .event("sender", "fast", "TICK", json!({"n": n}))
                .await;
            // Drain what came back so far without waiting.
            while let Ok(Ok(read)) = tokio::time::timeout(Duration::from_millis(1), async {
                let mut line = String::new();
                sender.reader.read_line(&mut line).await.map(|_| line)
            })
            .await
            {
                let value: Value = serde_json::from_str(&read).unwrap();
                if value["Payload"]["ErrorCode"] == "SLOW_CONSUMER" {
                    refused = Some(value);
                }
            }
            if refused.is_some() {
                break;
            }
        }
    }
    let refused = refused.expect("the slow consumer was never disconnected");
    assert_eq!(refused["Payload"]["TargetMachineId"], "slow");
    // The fast consumer got its ticks and is still served.
    assert_eq!(fast.next().await.unwrap()["Payload"]["EventName"], "TICK");
    sender.event("sender", "fast", "STILL", json!({})).await;
    loop {
        let value = fast.next().await.unwrap();
        if value["Payload"]["EventName"] == "STILL" {
            break;
        }
    }
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_refused_clearly() {
    let bus = start(&["--max-connections", "2"]).await;
    let mut a = Client::connect(&bus.socket).await;
    let _b = Client::connect(&bus.socket).await;
    a.register("a").await;
    let mut c = Client::connect(&bus.socket).await;
    let refusal = c.next().await.unwrap();
    assert_eq!(
        refusal["Payload"]["ErrorCode"], "CONNECTION_LIMIT",
        "{refusal}"
    );
    assert!(c.next().await.is_none(), "closed after the refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_clients_exchange_a_hundred_thousand_events_exactly_once_in_order() {
    const CLIENTS: usize = 100;
    const EVENTS: usize = 1_000;
    let bus = start(&["--max-connections", "200"]).await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let mut client = Client::connect(&bus.socket).await;
        client.register(&format!("m{i}")).await;
        clients.push(client);
    }
    // Client i sends to i+1, i+7 and i+31 in turn (several senders per receiver).
    let targets = |i: usize, n: usize| [1, 7, 31][n % 3] + i;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            tokio::spawn(async move {
                let Client { mut reader, mut writer } = client;
                let send = tokio::spawn(async move {
                    let mut batch = String::new();
                    for n in 0..EVENTS {
                        let to = targets(i, n) % CLIENTS;
                        let line = json!({"Type": "SendEvent", "Payload": {"SourceMachineId": format!("m{i}"),
                            "TargetMachineId": format!("m{to}"), "EventName": "SEQ",
                            "Payload": {"n": n}, "Timestamp": "2026-11-25T10:00:00Z"}});
                        batch.push_str(&line.to_string());
                        batch.push('\n');
                        if batch.len() > 32 * 1024 || n + 1 == EVENTS {
                            writer.write_all(batch.as_bytes()).await.unwrap();
                            batch.clear();
                        }
                    }
                    writer
                });
                // Expected: from each sender j that targets i, every n with targets(j, n) == i.
                let expected: usize = (0..CLIENTS)
                    .map(|j| (0..EVENTS).filter(|&n| targets(j, n) % CLIENTS == i).count())
                    .sum();
                let mut last: HashMap<String, i64> = HashMap::new();
                let mut received = 0;
                while received < expected {
                    let mut line = String::new();
                    let n = tokio::time::timeout(HANG, reader.read_line(&mut line)).await.unwrap().unwrap();
                    assert!(n > 0, "m{i}: closed after {received} of {expected}");
                    let value: Value = serde_json::from_str(&line).unwrap();
                    assert_eq!(value["Type"], "EventReceived", "m{i}: {value}");
                    let from = value["Payload"]["SourceMachineId"].as_str().unwrap().to_owned();
                    let seq = value["Payload"]["Payload"]["n"].as_i64().unwrap();
                    let previous = last.insert(from.clone(), seq).unwrap_or(-1);
                    assert!(seq > previous, "m{i}: {from} sent {seq} after {previous}");
                    received += 1;
                }
                let writer = send.await.unwrap();
                (received, writer)
            })
        })
        .collect();
    let mut total = 0;
    let mut keep = Vec::new();
    for task in tasks {
        let (received, writer) = task.await.unwrap();
        total += received;
        keep.push(writer);
    }
    assert_eq!(total, CLIENTS * EVENTS);
}
