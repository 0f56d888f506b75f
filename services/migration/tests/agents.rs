#![allow(clippy::unwrap_used)]
//! The service with many agents: every message type of the catalogue, both directions,
//! 50 agent processes at once, each running as a real user when the tests run as root.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{AgentProcess, ServiceProcess, identities, in_future, shared_dir};
use futures::future::join_all;
use serde_json::json;

const AGENTS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_agents_exchange_every_message_type_concurrently() {
    let dir = shared_dir();
    let service = ServiceProcess::start(
        dir.path(),
        &[
            "--heartbeat-seconds",
            "1",
            "--metrics-address",
            "127.0.0.1:0",
        ],
    )
    .await;
    let users = identities(17);
    eprintln!(
        "{AGENTS} agents as {} users: {:?}",
        users.len(),
        users.iter().map(|u| &u.name).collect::<Vec<_>>()
    );
    let mut agents: Vec<AgentProcess> = (0..AGENTS)
        .map(|i| {
            AgentProcess::spawn(
                &service.socket,
                &users[i % users.len()],
                &format!("session-{i}"),
                &["--heartbeat-seconds", "1", "run", "--stay"],
            )
        })
        .collect();
    // The first agent of each user drives the user's backup; every agent does the rest.
    let primary = |i: usize| i < users.len();

    // AGENT_STARTED is acknowledged, then CONFIGURATION_UPDATE and STATUS_UPDATE follow.
    join_all(agents.iter_mut().map(|a| async move {
        a.expect_type("CONFIGURATION_UPDATE").await;
        let status = a.expect_type("STATUS_UPDATE").await;
        assert_eq!(status["payload"]["userState"], "NOT_STARTED");
    }))
    .await;

    // The operator schedules the migration: BACKUP_REQUEST to every connected agent.
    let deadline = in_future(Duration::from_secs(24 * 3600));
    service
        .admin(&[
            "push",
            "--all",
            "request-backup",
            "--deadline",
            &deadline,
            "--delays-allowed",
            "1",
        ])
        .await;
    let backup_ids: Vec<String> = join_all(agents.iter_mut().map(|a| async move {
        let request = a.expect_type("BACKUP_REQUEST").await;
        assert_eq!(request["payload"]["reason"], "MIGRATION_SCHEDULED");
        request["payload"]["backupId"].as_str().unwrap().to_owned()
    }))
    .await;
    // One request per user, seen by every session of the user.
    let per_user: HashMap<&str, HashSet<&str>> =
        agents
            .iter()
            .zip(&backup_ids)
            .fold(HashMap::new(), |mut map, (a, id)| {
                map.entry(a.user.as_str()).or_default().insert(id.as_str());
                map
            });
    assert!(per_user.values().all(|ids| ids.len() == 1), "{per_user:?}");

    // Each user asks for a delay; the operator grants it.
    let later = in_future(Duration::from_secs(48 * 3600));
    join_all(
        agents
            .iter_mut()
            .zip(&backup_ids)
            .enumerate()
            .filter(|(i, _)| primary(*i))
            .map(|(_, (a, backup))| {
                let later = later.clone();
                async move {
                    a.call(
                        "delay-1",
                        "DELAY_REQUEST",
                        json!({"backupId": backup, "requestedDeadline": later, "reason": "WORKLOAD", "comment": "busy week"}),
                    )
                    .await;
                }
            }),
    )
    .await;
    for user in &users {
        service
            .admin(&[
                "push",
                "--user",
                &user.name,
                "decide-delay",
                "--grant",
                "--reason",
                "ok",
            ])
            .await;
    }
    join_all(
        agents
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| primary(*i))
            .map(|(_, a)| {
                let later = later.clone();
                async move {
                    let status = a
                        .expect("STATUS_UPDATE with a delay decision", |v| {
                            v["type"] == "STATUS_UPDATE"
                                && v["payload"]["delayDecision"].is_object()
                        })
                        .await;
                    let decision = &status["payload"]["delayDecision"];
                    assert_eq!(decision["granted"], true);
                    assert_eq!(decision["requestId"], "delay-1");
                    let extended = a
                        .expect("BACKUP_REQUEST DEADLINE_EXTENDED", |v| {
                            v["type"] == "BACKUP_REQUEST"
                                && v["payload"]["reason"] == "DEADLINE_EXTENDED"
                        })
                        .await;
                    assert_eq!(extended["payload"]["deadline"], later.as_str());
                    assert_eq!(extended["payload"]["delaysRemaining"], 0);
                }
            }),
    )
    .await;

    // The backup: started, progress, completed; then STATUS_UPDATE BACKUP_COMPLETED.
    join_all(
        agents
            .iter_mut()
            .zip(&backup_ids)
            .enumerate()
            .filter(|(i, _)| primary(*i))
            .map(|(_, (a, backup))| async move {
                a.call(
                    "start-1",
                    "BACKUP_STARTED",
                    json!({"backupId": backup, "estimatedTotalBytes": 3000}),
                )
                .await;
                for step in 1..=3_u64 {
                    a.call(
                        &format!("progress-{step}"),
                        "BACKUP_PROGRESS",
                        json!({"backupId": backup, "percentComplete": step as f64 * 33.3,
                               "bytesTransferred": step * 1000, "totalBytes": 3000}),
                    )
                    .await;
                }
                a.call(
                    "done-1",
                    "BACKUP_COMPLETED",
                    json!({"backupId": backup, "success": true, "bytesTransferred": 3000,
                           "duration": 60000, "backupLocation": "/srv/backups/x"}),
                )
                .await;
                a.expect("STATUS_UPDATE BACKUP_COMPLETED", |v| {
                    v["type"] == "STATUS_UPDATE" && v["payload"]["userState"] == "BACKUP_COMPLETED"
                })
                .await;
            }),
    )
    .await;

    // Every agent: USER_ACTION and ERROR_REPORT; a second BACKUP_STARTED is refused.
    join_all(agents.iter_mut().map(|a| async move {
        a.call(
            "action-1",
            "USER_ACTION",
            json!({"action": "STATUS_VIEWED", "details": {"screen": "main"}}),
        )
        .await;
        a.call(
            "error-1",
            "ERROR_REPORT",
            json!({"errorCode": "UI_ERROR", "message": "tray icon missing", "severity": "WARNING"}),
        )
        .await;
    }))
    .await;

    // The operator's notice and new settings reach every agent.
    service
        .admin(&[
            "push",
            "--all",
            "notify",
            "--level",
            "reminder",
            "--message",
            "thanks",
        ])
        .await;
    service
        .admin(&[
            "push",
            "--all",
            "configure",
            "--settings",
            r#"{"notificationsEnabled": false}"#,
        ])
        .await;
    join_all(agents.iter_mut().map(|a| async move {
        let notice = a.expect_type("ESCALATION_NOTICE").await;
        assert_eq!(notice["payload"]["level"], "REMINDER");
        let config = a
            .expect("the new settings", |v| {
                v["type"] == "CONFIGURATION_UPDATE"
                    && v["payload"]["settings"]["notificationsEnabled"] == false
            })
            .await;
        assert!(config["payload"]["configVersion"].as_u64().unwrap() > 0);
    }))
    .await;

    // Heartbeats flowed both ways (1 s intervals; the exchange above took longer).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = service.metrics().await;
    for direction in ["in", "out"] {
        let line = format!(
            "ipcspec_server_messages_by_type_total{{direction=\"{direction}\",message_type=\"HEARTBEAT\"}}"
        );
        let count: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in\n{metrics}"))
            .trim()
            .parse()
            .unwrap();
        assert!(count > 0, "{line} is 0");
    }

    // The database holds every user's completed backup and every agent's messages once.
    let status = service.admin(&["status", "--json"]).await;
    let states: Vec<serde_json::Value> = status
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(states.len(), users.len());
    for state in &states {
        assert_eq!(state["state"], "BACKUP_COMPLETED", "{state}");
        assert_eq!(state["pendingMessages"], 0, "{state}");
    }
    let journal = service.journal();
    let mut seen = HashSet::new();
    for (user, session, id, _) in &journal {
        assert!(
            seen.insert((user, session, id)),
            "handled twice: {user}/{session}/{id}"
        );
    }
    for (i, agent) in agents.iter().enumerate() {
        let mine: Vec<&str> = journal
            .iter()
            .filter(|(u, s, _, t)| {
                *u == agent.user
                    && *s == agent.session
                    && !matches!(t.as_str(), "AGENT_STARTED" | "ACKNOWLEDGMENT")
            })
            .map(|(_, _, id, _)| id.as_str())
            .collect();
        let expected: &[&str] = if primary(i) {
            &[
                "delay-1",
                "start-1",
                "progress-1",
                "progress-2",
                "progress-3",
                "done-1",
                "action-1",
                "error-1",
            ]
        } else {
            &["action-1", "error-1"]
        };
        assert_eq!(
            mine, expected,
            "journal of {}/{}",
            agent.user, agent.session
        );
    }

    // SHUTDOWN_REQUEST: every agent acknowledges and exits cleanly.
    service
        .admin(&["push", "--all", "shutdown", "--grace-seconds", "1"])
        .await;
    let exits = join_all(agents.iter_mut().map(|a| async move {
        a.expect_type("SHUTDOWN_REQUEST").await;
        a.wait().await
    }))
    .await;
    assert!(
        exits.iter().all(std::process::ExitStatus::success),
        "{exits:?}"
    );
}
