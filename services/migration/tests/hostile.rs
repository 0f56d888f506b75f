#![allow(clippy::unwrap_used)]
//! Peers that misbehave: impersonation, a frame that never completes, one connection
//! too many, malformed and unexpected messages. Each gets the catalogue's answer, and
//! the well-behaved agents next to them carry on.

mod common;

use std::time::Duration;

use common::{AgentProcess, HANG, Identity, ServiceProcess, agent_command, identities, shared_dir};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// A raw connection speaking the framing by hand.
struct Raw(UnixStream);

impl Raw {
    async fn connect(service: &ServiceProcess) -> Raw {
        Raw(UnixStream::connect(&service.socket).await.unwrap())
    }

    async fn send_bytes(&mut self, body: &[u8]) {
        let len = u32::try_from(body.len()).unwrap().to_le_bytes();
        self.0.write_all(&len).await.unwrap();
        self.0.write_all(body).await.unwrap();
    }

    async fn send(&mut self, id: &str, message_type: &str, payload: Value) {
        let envelope = json!({"id": id, "type": message_type,
            "timestamp": "2026-11-25T10:00:00Z", "payload": payload});
        self.send_bytes(envelope.to_string().as_bytes()).await;
    }

    /// The next frame, or `None` at end of stream.
    async fn recv(&mut self) -> Option<Value> {
        tokio::time::timeout(HANG, async {
            let mut len = [0_u8; 4];
            if self.0.read_exact(&mut len).await.is_err() {
                return None;
            }
            let mut body = vec![0_u8; u32::from_le_bytes(len) as usize];
            self.0.read_exact(&mut body).await.ok()?;
            Some(serde_json::from_slice(&body).unwrap())
        })
        .await
        .expect("no frame and no close")
    }

    /// The acknowledgment of `id` (skipping other frames).
    async fn ack_of(&mut self, id: &str) -> Value {
        loop {
            let frame = self
                .recv()
                .await
                .unwrap_or_else(|| panic!("closed before the ack of {id}"));
            if frame["type"] == "ACKNOWLEDGMENT" && frame["correlationId"] == id {
                return frame["payload"].clone();
            }
        }
    }

    /// The next frame that is not a HEARTBEAT (which may come at any time).
    async fn next_non_heartbeat(&mut self) -> Value {
        loop {
            let frame = self.recv().await.expect("closed instead of answering");
            if frame["type"] != "HEARTBEAT" {
                return frame;
            }
        }
    }

    /// Reads until the service closes the connection.
    async fn closed(&mut self) {
        while self.recv().await.is_some() {}
    }
}

fn me() -> Identity {
    identities(1).remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_impersonating_another_user_is_refused_and_logged() {
    let dir = shared_dir();
    let service = ServiceProcess::start(dir.path(), &[]).await;
    let users = identities(20);
    let me = me();
    // Root speaking for another user is refused like anyone.
    let victim = users
        .iter()
        .find(|u| u.name != me.name)
        .map_or("somebody-else", |u| u.name.as_str());
    let (code, stdout, stderr) = agent_command(
        &service.socket,
        &me,
        &[
            "--user",
            victim,
            "send",
            "user-action",
            r#"{"action":"STATUS_VIEWED"}"#,
        ],
    )
    .await;
    assert_eq!(code, Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("USER_MISMATCH"), "{stderr}");
    let ack: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(ack["payload"]["success"], false);
    assert_eq!(ack["payload"]["errorCode"], "USER_MISMATCH");
    service.wait_log("impersonation refused").await;
    assert!(
        service
            .log()
            .contains(&format!("claimed_user=\"{victim}\""))
    );

    // An unprivileged user claiming root (only when the tests can run as another uid).
    if let Some(other) = users.iter().find(|u| u.uid != 0 && u.uid != me.uid) {
        let (code, _, stderr) = agent_command(
            &service.socket,
            other,
            &[
                "--user",
                "root",
                "send",
                "user-action",
                r#"{"action":"STATUS_VIEWED"}"#,
            ],
        )
        .await;
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("USER_MISMATCH"), "{stderr}");
        // The same user speaking for itself is accepted.
        let (code, _, stderr) = agent_command(
            &service.socket,
            other,
            &["send", "user-action", r#"{"action":"STATUS_VIEWED"}"#],
        )
        .await;
        assert_eq!(code, Some(0), "{stderr}");
    }

    // A started agent whose later message names another user: refused, connection closed.
    let mut raw = Raw::connect(&service).await;
    raw.send(
        "s1",
        "AGENT_STARTED",
        json!({"userId": me.name, "version": "1.0.0", "sessionId": "raw"}),
    )
    .await;
    assert_eq!(raw.ack_of("s1").await["success"], true);
    raw.send(
        "u1",
        "USER_ACTION",
        json!({"userId": victim, "action": "STATUS_VIEWED"}),
    )
    .await;
    let ack = raw.ack_of("u1").await;
    assert_eq!(ack["errorCode"], "USER_MISMATCH", "{ack}");
    raw.closed().await;
    // Nothing of the refused messages reached the journal.
    assert!(service.journal().iter().all(|(_, _, id, _)| id != "u1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_frame_is_dropped_after_the_read_timeout_while_others_carry_on() {
    let dir = shared_dir();
    let service = ServiceProcess::start(
        dir.path(),
        &[
            "--frame-read-timeout-seconds",
            "1",
            "--metrics-address",
            "127.0.0.1:0",
        ],
    )
    .await;
    let me = me();
    let mut staller = Raw::connect(&service).await;
    // A prefix announcing 100 bytes, then 10 of them, then nothing.
    staller.0.write_all(&100_u32.to_le_bytes()).await.unwrap();
    staller.0.write_all(&[b'{'; 10]).await.unwrap();
    let mut agent = AgentProcess::spawn(&service.socket, &me, "steady", &["run", "--stay"]);
    agent.expect_type("STATUS_UPDATE").await;
    for i in 0..5 {
        agent
            .call(
                &format!("ok-{i}"),
                "USER_ACTION",
                json!({"action": "STATUS_VIEWED"}),
            )
            .await;
    }
    staller.closed().await;
    // The close is counted once the connection's task has finished, a moment after the
    // peer sees it.
    let counted = "ipcspec_server_connections_closed_total{reason=\"read_timeout\"} 1";
    let metrics = tokio::time::timeout(HANG, async {
        loop {
            let metrics = service.metrics().await;
            if metrics.contains(counted) {
                return metrics;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the read timeout was never counted");
    assert!(metrics.contains(counted));
    // The agent is still served after the staller is gone.
    agent
        .call("after", "USER_ACTION", json!({"action": "HELP_REQUESTED"}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_get_a_clear_refusal() {
    let dir = shared_dir();
    let service = ServiceProcess::start(dir.path(), &["--max-connections", "2"]).await;
    let me = me();
    let mut first = AgentProcess::spawn(&service.socket, &me, "one", &["run", "--stay"]);
    let mut second = AgentProcess::spawn(&service.socket, &me, "two", &["run", "--stay"]);
    first.expect_type("STATUS_UPDATE").await;
    second.expect_type("STATUS_UPDATE").await;
    let mut third = Raw::connect(&service).await;
    let refusal = third.recv().await.expect("no refusal frame");
    assert_eq!(refusal["type"], "ACKNOWLEDGMENT");
    assert_eq!(refusal["payload"]["success"], false);
    assert_eq!(refusal["payload"]["errorCode"], "TOO_MANY_CONNECTIONS");
    assert!(
        refusal["payload"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("2 connections"),
        "{refusal}"
    );
    assert!(refusal.get("correlationId").is_none());
    third.closed().await;
    first
        .call("a", "USER_ACTION", json!({"action": "STATUS_VIEWED"}))
        .await;
    second
        .call("b", "USER_ACTION", json!({"action": "STATUS_VIEWED"}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unexpected_messages_get_precise_acknowledgments() {
    let dir = shared_dir();
    let service = ServiceProcess::start(dir.path(), &[]).await;
    let me = me();
    let mut raw = Raw::connect(&service).await;

    // Before AGENT_STARTED.
    raw.send(
        "early",
        "USER_ACTION",
        json!({"userId": me.name, "action": "STATUS_VIEWED"}),
    )
    .await;
    assert_eq!(raw.ack_of("early").await["errorCode"], "AGENT_NOT_STARTED");
    raw.send(
        "s",
        "AGENT_STARTED",
        json!({"userId": me.name, "version": "1.0.0", "sessionId": "raw"}),
    )
    .await;
    assert_eq!(raw.ack_of("s").await["success"], true);

    let cases: Vec<(&str, &str, Value, &str, &str)> = vec![
        (
            "t1",
            "NO_SUCH_TYPE",
            json!({}),
            "UNKNOWN_MESSAGE_TYPE",
            "NO_SUCH_TYPE",
        ),
        (
            "t2",
            "BACKUP_REQUEST",
            json!({}),
            "UNKNOWN_MESSAGE_TYPE",
            "BACKUP_REQUEST",
        ),
        (
            "t3",
            "USER_ACTION",
            json!({"userId": me.name}),
            "INVALID_MESSAGE",
            "action",
        ),
        (
            "t4",
            "USER_ACTION",
            json!({"userId": me.name, "action": 5}),
            "INVALID_MESSAGE",
            "at `action`",
        ),
        (
            "t5",
            "USER_ACTION",
            json!({"userId": me.name, "action": "DANCING"}),
            "INVALID_MESSAGE",
            "DANCING",
        ),
        (
            "t6",
            "USER_ACTION",
            json!({"userId": me.name, "action": "STATUS_VIEWED", "extra": 1}),
            "INVALID_MESSAGE",
            "extra",
        ),
        (
            "t7",
            "USER_ACTION",
            json!({"userId": "x".repeat(40), "action": "STATUS_VIEWED"}),
            "INVALID_MESSAGE",
            "userId",
        ),
        (
            "t8",
            "BACKUP_PROGRESS",
            json!({"userId": me.name, "backupId": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "percentComplete": 10.0, "bytesTransferred": 1, "totalBytes": 10}),
            "INVALID_STATE",
            "not accepted in state NOT_STARTED",
        ),
        (
            "t9",
            "DELAY_REQUEST",
            json!({"userId": me.name, "backupId": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "requestedDeadline": "2030-01-01T00:00:00Z", "reason": "OTHER"}),
            "INVALID_STATE",
            "NOT_STARTED",
        ),
    ];
    for (id, message_type, payload, code, mentions) in &cases {
        raw.send(id, message_type, payload.clone()).await;
        let ack = raw.ack_of(id).await;
        assert_eq!(ack["success"], false, "{id}: {ack}");
        assert_eq!(ack["errorCode"], *code, "{id}: {ack}");
        let detail = ack["errorMessage"].as_str().unwrap();
        assert!(
            detail.contains(mentions),
            "{id}: {detail:?} should mention {mentions:?}"
        );
    }

    // An envelope whose id is readable but whose shape is wrong.
    raw.send_bytes(br#"{"id":"bad-env","type":"USER_ACTION","payload":{}}"#)
        .await;
    let ack = raw.ack_of("bad-env").await;
    assert_eq!(ack["errorCode"], "INVALID_MESSAGE");
    assert!(
        ack["errorMessage"].as_str().unwrap().contains("timestamp"),
        "{ack}"
    );

    // No readable id (invalid UTF-8, not JSON, not an object, no id, an id that is not a
    // MessageId, too deep to reach the id): each is answered with the catalogue's
    // answer to a frame it cannot attribute, in order, and the connection stays usable.
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let unattributable: [&[u8]; 7] = [
        &[0xff, 0xfe, 0x80, b'{'],
        b"{not json",
        b"{\"id\": ",
        b"[1, 2]",
        br#"{"type":"USER_ACTION","timestamp":"2026-11-25T10:00:00Z","payload":{}}"#,
        br#"{"id":"","type":"USER_ACTION","timestamp":"2026-11-25T10:00:00Z","payload":{}}"#,
        deep.as_bytes(),
    ];
    for frame in unattributable {
        raw.send_bytes(frame).await;
    }
    for frame in unattributable {
        let answer = raw.next_non_heartbeat().await;
        let shown = String::from_utf8_lossy(frame);
        assert_eq!(answer["type"], "ACKNOWLEDGMENT", "{shown}: {answer}");
        assert!(
            answer.get("correlationId").is_none(),
            "{shown}: no id to correlate: {answer}"
        );
        assert_eq!(answer["payload"]["success"], false, "{shown}: {answer}");
        assert_eq!(
            answer["payload"]["errorCode"], "INVALID_MESSAGE",
            "{shown}: {answer}"
        );
    }
    raw.send(
        "alive",
        "USER_ACTION",
        json!({"userId": me.name, "action": "STATUS_VIEWED"}),
    )
    .await;
    assert_eq!(raw.ack_of("alive").await["success"], true);

    // The same id again: DUPLICATE_MESSAGE, and handled once.
    raw.send(
        "alive",
        "USER_ACTION",
        json!({"userId": me.name, "action": "STATUS_VIEWED"}),
    )
    .await;
    assert_eq!(raw.ack_of("alive").await["errorCode"], "DUPLICATE_MESSAGE");
    let handled = service
        .journal()
        .iter()
        .filter(|(_, s, id, _)| s == "raw" && id == "alive")
        .count();
    assert_eq!(handled, 1);

    // An oversized length prefix closes that connection before anything is read; a
    // second connection is unaffected.
    let mut other = Raw::connect(&service).await;
    raw.0.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
    raw.closed().await;
    other
        .send(
            "o1",
            "AGENT_STARTED",
            json!({"userId": me.name, "version": "1.0.0", "sessionId": "other"}),
        )
        .await;
    assert_eq!(other.ack_of("o1").await["success"], true);
    // So does a zero length prefix (the catalogue's rule).
    other.0.write_all(&0_u32.to_le_bytes()).await.unwrap();
    other.closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_agent_version_is_refused_and_the_agent_does_not_retry() {
    let dir = shared_dir();
    let service = ServiceProcess::start(dir.path(), &["--min-agent-version", "2.0.0"]).await;
    let (code, _, stderr) = agent_command(
        &service.socket,
        &me(),
        &[
            "--agent-version",
            "1.9.9",
            "send",
            "user-action",
            r#"{"action":"STATUS_VIEWED"}"#,
        ],
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("UNSUPPORTED_AGENT_VERSION"), "{stderr}");
    let (code, _, stderr) = agent_command(
        &service.socket,
        &me(),
        &[
            "--agent-version",
            "2.0.1",
            "send",
            "user-action",
            r#"{"action":"STATUS_VIEWED"}"#,
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_tells_systemd_it_is_ready_and_stops_gracefully_on_sigterm() {
    let dir = shared_dir();
    let notify = dir.path().join("notify.sock");
    let listener = tokio::net::UnixDatagram::bind(&notify).unwrap();
    let socket = dir.path().join("ipc.sock");
    let mut child = tokio::process::Command::new(common::SERVICE)
        .arg("--socket")
        .arg(&socket)
        .arg("--db")
        .arg(dir.path().join("state.db"))
        .env("NOTIFY_SOCKET", &notify)
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut buf = vec![0_u8; 256];
    let n = tokio::time::timeout(HANG, listener.recv(&mut buf))
        .await
        .expect("no readiness notification")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim_end(), "READY=1");
    // Ready means accepting.
    UnixStream::connect(&socket).await.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let n = tokio::time::timeout(HANG, listener.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim_end(), "STOPPING=1");
    let status = tokio::time::timeout(HANG, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    // The socket file is gone with the listener.
    assert!(!socket.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_each_users_state_from_the_database() {
    let dir = shared_dir();
    let service = ServiceProcess::start(dir.path(), &[]).await;
    let me = me();
    let (code, _, stderr) = agent_command(
        &service.socket,
        &me,
        &["send", "user-action", r#"{"action":"STATUS_VIEWED"}"#],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    service
        .admin(&[
            "push",
            "--user",
            &me.name,
            "request-backup",
            "--deadline",
            "2031-01-01T00:00:00Z",
        ])
        .await;
    // The running service applies the command within a tick.
    let row = tokio::time::timeout(HANG, async {
        loop {
            let table = service.admin(&["status"]).await;
            if let Some(row) = table.lines().find(|l| l.starts_with(&me.name))
                && row.contains("BACKUP_REQUESTED")
            {
                return row.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the request was never applied");
    assert!(row.contains("2031-01-01T00:00:00Z"), "{row}");
    // The request waits in the outbox until an agent of the user acknowledges it.
    assert!(row.split_whitespace().any(|c| c == "1"), "{row}");
    let (code, stdout, _) = agent_command(
        &service.socket,
        &me,
        &["send", "user-action", r#"{"action":"STATUS_VIEWED"}"#],
    )
    .await;
    assert_eq!(code, Some(0));
    assert!(stdout.contains("\"BACKUP_REQUEST\""), "{stdout}");
    // And a missing database is a clear error, not an empty report.
    let output = tokio::process::Command::new(common::SERVICE)
        .args(["status", "--db"])
        .arg(dir.path().join("nope.db"))
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no database at"));
}
