#![allow(clippy::unwrap_used)]
//! Kill -9 the service in the middle of 10,000 messages and start it again: every agent
//! reconnects and resends what was not acknowledged, and the database shows every
//! message handled exactly once, in order, per sender.

mod common;

use std::time::Duration;

use common::{AgentProcess, HANG, ServiceProcess, identities, shared_dir};
use futures::future::join_all;

const AGENTS: usize = 10;
const PER_AGENT: usize = 1_000;
/// Messages each agent writes before the crash; the rest follow the restart.
const BEFORE_CRASH: usize = 600;

fn line(i: usize) -> String {
    format!(
        r#"{{"id":"m{i:05}","type":"USER_ACTION","payload":{{"action":"STATUS_VIEWED","details":{{"n":"{i}"}}}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_stream_loses_nothing_and_handles_nothing_twice() {
    let dir = shared_dir();
    let mut service = ServiceProcess::start(dir.path(), &[]).await;
    let users = identities(AGENTS);
    let mut agents: Vec<AgentProcess> = (0..AGENTS)
        .map(|i| {
            AgentProcess::spawn(
                &service.socket,
                &users[i % users.len()],
                &format!("crash-{i}"),
                &["run"],
            )
        })
        .collect();
    join_all(agents.iter_mut().map(|a| a.expect_type("STATUS_UPDATE"))).await;

    // Every agent streams its first messages; the service dies while they are in flight.
    join_all(agents.iter_mut().map(|a| async move {
        for i in 0..BEFORE_CRASH {
            a.write_line(&line(i)).await;
        }
    }))
    .await;
    let total = AGENTS * PER_AGENT;
    let handled_at_kill = tokio::time::timeout(HANG, async {
        loop {
            let handled = user_actions(&service);
            if handled >= AGENTS * BEFORE_CRASH / 4 {
                return handled;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the service handled nothing");
    service.kill9();
    eprintln!("killed with {handled_at_kill} of {total} messages handled");
    assert!(
        handled_at_kill < total,
        "the stream was over before the kill"
    );

    // Start again on the same socket (the dead one's file is stale) and database.
    service.restart().await;
    join_all(agents.iter_mut().map(|a| async move {
        for i in BEFORE_CRASH..PER_AGENT {
            a.write_line(&line(i)).await;
        }
        a.close_stdin();
        let status = a.wait().await;
        assert!(
            status.success(),
            "agent {}/{} exited {status}: {}",
            a.user,
            a.session,
            a.stderr()
        );
    }))
    .await;

    // Each agent announced itself again after the restart.
    let started_after = service.log().matches("agent started").count();
    assert!(
        started_after >= AGENTS,
        "only {started_after} agents reconnected:\n{}",
        service.log()
    );
    let journal = service.journal();
    let expected: Vec<String> = (0..PER_AGENT).map(|i| format!("m{i:05}")).collect();
    for agent in &agents {
        let mine: Vec<String> = journal
            .iter()
            .filter(|(u, s, _, t)| *u == agent.user && *s == agent.session && t == "USER_ACTION")
            .map(|(_, _, id, _)| id.clone())
            .collect();
        assert_eq!(
            mine.len(),
            PER_AGENT,
            "{}/{}: {} handled",
            agent.user,
            agent.session,
            mine.len()
        );
        assert_eq!(
            mine, expected,
            "{}/{}: lost, repeated or reordered",
            agent.user, agent.session
        );
    }
    assert_eq!(user_actions(&service), total);
    service.stop().await;
}

fn user_actions(service: &ServiceProcess) -> usize {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        &service.db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    conn.query_row(
        "SELECT count(*) FROM handled WHERE message_type = 'USER_ACTION'",
        [],
        |row| row.get::<_, i64>(0),
    )
    .map_or(0, |n| usize::try_from(n).unwrap_or(0))
}
