//! The `UserMigration` machine through the real `migration-service`: every transition the
//! catalogue declares that the other suites do not take (`agents.rs` takes the request,
//! delay, decision, start and completion), the progress timeout with a short configured
//! time, and BACKUP_REQUEST's `maxDelay`. Each test has its own database, so the one
//! user the tests can run agents as starts at NOT_STARTED every time. No assertion is
//! about time: a test waits for the message that follows the event.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{AgentProcess, Identity, ServiceProcess, identities, in_future, shared_dir};
use ipcspec_generated::migration::UserMigration;
use serde_json::{Value, json};

fn me() -> Identity {
    identities(1).remove(0)
}

/// A started agent that has seen its CONFIGURATION_UPDATE and STATUS_UPDATE.
async fn agent(service: &ServiceProcess, session: &str) -> AgentProcess {
    let mut agent = AgentProcess::spawn(&service.socket, &me(), session, &["run", "--stay"]);
    agent.expect_type("CONFIGURATION_UPDATE").await;
    agent.expect_type("STATUS_UPDATE").await;
    agent
}

async fn request_backup(service: &ServiceProcess, deadline: &str, extra: &[&str]) {
    let me = me();
    let mut args = vec![
        "push",
        "--user",
        &me.name,
        "request-backup",
        "--deadline",
        deadline,
    ];
    args.extend_from_slice(extra);
    service.admin(&args).await;
}

async fn state(service: &ServiceProcess) -> String {
    let me = me();
    let status = service.admin(&["status", "--json"]).await;
    status
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["userId"] == me.name.as_str())
        .map(|v| v["state"].as_str().unwrap().to_owned())
        .unwrap()
}

fn status_in(state: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == "STATUS_UPDATE" && v["payload"]["userState"] == state
}

async fn start(agent: &mut AgentProcess, id: &str, backup: &str) {
    agent
        .call(id, "BACKUP_STARTED", json!({"backupId": backup}))
        .await;
}

async fn fail(agent: &mut AgentProcess, id: &str, backup: &str) {
    agent
        .call(
            id,
            "BACKUP_COMPLETED",
            json!({"backupId": backup, "success": false, "bytesTransferred": 10,
                   "duration": 1000, "errorMessage": "disk full"}),
        )
        .await;
}

async fn an_unrequested_backup_that_fails_returns_to_not_started_and_the_next_completes(
    log: &Path,
) {
    let dir = shared_dir();
    let service = ServiceProcess::start_logged(dir.path(), &[], log).await;
    let mut agent = agent(&service, "unasked").await;
    // NOT_STARTED --receive BACKUP_STARTED--> BACKUP_IN_PROGRESS
    let own = "0f8fad5b-d9cb-469f-a165-70867728950e";
    start(&mut agent, "s1", own).await;
    assert_eq!(state(&service).await, "BACKUP_IN_PROGRESS");
    // A second start is not what BACKUP_IN_PROGRESS receives: the machine says so.
    agent
        .send("s2", "BACKUP_STARTED", json!({"backupId": own}))
        .await;
    let refused = agent.ack_of("s2").await;
    assert_eq!(refused["errorCode"], "INVALID_STATE", "{refused}");
    assert!(
        refused["errorMessage"]
            .as_str()
            .unwrap()
            .contains("BACKUP_PROGRESS"),
        "names what the state receives: {refused}"
    );
    // BACKUP_IN_PROGRESS --event unrequestedBackupFailed--> NOT_STARTED
    fail(&mut agent, "f1", own).await;
    agent
        .expect("STATUS_UPDATE NOT_STARTED", status_in("NOT_STARTED"))
        .await;
    assert_eq!(state(&service).await, "NOT_STARTED");
    // BACKUP_IN_PROGRESS --receive BACKUP_COMPLETED--> BACKUP_COMPLETED
    let again = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    start(&mut agent, "s3", again).await;
    agent
        .call(
            "c1",
            "BACKUP_COMPLETED",
            json!({"backupId": again, "success": true, "bytesTransferred": 10, "duration": 1000}),
        )
        .await;
    agent
        .expect(
            "STATUS_UPDATE BACKUP_COMPLETED",
            status_in("BACKUP_COMPLETED"),
        )
        .await;
}

async fn a_failure_before_the_deadline_is_retried_with_a_new_backup_id(log: &Path) {
    let dir = shared_dir();
    let service = ServiceProcess::start_logged(dir.path(), &[], log).await;
    let mut agent = agent(&service, "failing").await;
    request_backup(&service, &in_future(Duration::from_secs(24 * 3600)), &[]).await;
    let request = agent.expect_type("BACKUP_REQUEST").await;
    let first = request["payload"]["backupId"].as_str().unwrap().to_owned();
    start(&mut agent, "s1", &first).await;
    // BACKUP_IN_PROGRESS --event backupFailed--> BACKUP_REQUESTED, with a new backup id.
    fail(&mut agent, "f1", &first).await;
    let retry = agent
        .expect("the retry", |v| {
            v["type"] == "BACKUP_REQUEST" && v["payload"]["reason"] == "RETRY_AFTER_FAILURE"
        })
        .await;
    let second = retry["payload"]["backupId"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_eq!(state(&service).await, "BACKUP_REQUESTED");
    // The retry's own id starts the next attempt, which may fail again.
    start(&mut agent, "s2", &second).await;
    fail(&mut agent, "f2", &second).await;
    agent
        .expect("the second retry", |v| {
            v["type"] == "BACKUP_REQUEST" && v["payload"]["backupId"] != second.as_str()
        })
        .await;
}

async fn deadlines_pass_in_backup_requested_delay_requested_and_during_a_backup(log: &Path) {
    let dir = shared_dir();
    let service = ServiceProcess::start_logged(dir.path(), &[], log).await;
    let mut agent = agent(&service, "late").await;
    // A deadline a few seconds ahead: the delay request below is answered long before.
    let deadline = in_future(Duration::from_secs(4));
    request_backup(&service, &deadline, &["--delays-allowed", "2"]).await;
    let request = agent.expect_type("BACKUP_REQUEST").await;
    let backup = request["payload"]["backupId"].as_str().unwrap().to_owned();
    // BACKUP_REQUESTED --receive DELAY_REQUEST--> DELAY_REQUESTED
    agent
        .call(
            "d1",
            "DELAY_REQUEST",
            json!({"backupId": backup, "requestedDeadline": in_future(Duration::from_secs(3600)),
                   "reason": "WORKLOAD"}),
        )
        .await;
    // DELAY_REQUESTED --event deadlinePassed--> ESCALATED (no decision came in time).
    let notice = agent.expect_type("ESCALATION_NOTICE").await;
    assert_eq!(notice["payload"]["level"], "IT_ESCALATED");
    assert_eq!(state(&service).await, "ESCALATED");
    // ESCALATED --receive BACKUP_STARTED--> BACKUP_IN_PROGRESS
    start(&mut agent, "s1", &backup).await;
    // BACKUP_IN_PROGRESS --event backupFailedAfterDeadline--> ESCALATED
    fail(&mut agent, "f1", &backup).await;
    agent
        .expect("STATUS_UPDATE ESCALATED", status_in("ESCALATED"))
        .await;
    assert_eq!(state(&service).await, "ESCALATED");

    // A second service and database: BACKUP_REQUESTED --event deadlinePassed--> ESCALATED,
    // and DELAY_REQUESTED --receive BACKUP_STARTED--> BACKUP_IN_PROGRESS.
    let dir = shared_dir();
    let service = ServiceProcess::start_logged(dir.path(), &[], log).await;
    let mut agent = AgentProcess::spawn(&service.socket, &me(), "late-2", &["run", "--stay"]);
    agent.expect_type("STATUS_UPDATE").await;
    request_backup(&service, &in_future(Duration::from_secs(2)), &[]).await;
    agent.expect_type("BACKUP_REQUEST").await;
    let notice = agent.expect_type("ESCALATION_NOTICE").await;
    assert_eq!(notice["payload"]["reason"], "DEADLINE_PASSED");
    assert_eq!(state(&service).await, "ESCALATED");

    let dir = shared_dir();
    let service = ServiceProcess::start_logged(dir.path(), &[], log).await;
    let mut agent = AgentProcess::spawn(&service.socket, &me(), "eager", &["run", "--stay"]);
    agent.expect_type("STATUS_UPDATE").await;
    request_backup(
        &service,
        &in_future(Duration::from_secs(24 * 3600)),
        &["--delays-allowed", "1"],
    )
    .await;
    let request = agent.expect_type("BACKUP_REQUEST").await;
    let backup = request["payload"]["backupId"].as_str().unwrap().to_owned();
    agent
        .call(
            "d1",
            "DELAY_REQUEST",
            json!({"backupId": backup, "requestedDeadline": in_future(Duration::from_secs(48 * 3600)),
                   "reason": "ABSENCE"}),
        )
        .await;
    start(&mut agent, "s1", &backup).await;
    assert_eq!(state(&service).await, "BACKUP_IN_PROGRESS");
}

async fn a_backup_without_progress_for_the_configured_time_is_abandoned_and_requested_again(
    log: &Path,
) {
    let dir = shared_dir();
    let service =
        ServiceProcess::start_logged(dir.path(), &["--backup-progress-timeout-seconds", "1"], log)
            .await;
    let mut agent = agent(&service, "silent").await;
    request_backup(&service, &in_future(Duration::from_secs(24 * 3600)), &[]).await;
    let request = agent.expect_type("BACKUP_REQUEST").await;
    let first = request["payload"]["backupId"].as_str().unwrap().to_owned();
    start(&mut agent, "s1", &first).await;
    // No BACKUP_PROGRESS follows: BACKUP_IN_PROGRESS --event backupFailed--> BACKUP_REQUESTED.
    let retry = agent
        .expect("the request after the abandoned backup", |v| {
            v["type"] == "BACKUP_REQUEST" && v["payload"]["reason"] == "RETRY_AFTER_FAILURE"
        })
        .await;
    assert_ne!(retry["payload"]["backupId"], first.as_str());
    assert_eq!(state(&service).await, "BACKUP_REQUESTED");
    service
        .wait_log("no progress from the running backup: abandoned")
        .await;
    // The abandoned backup's late progress is not the running backup any more.
    agent
        .send(
            "p-late",
            "BACKUP_PROGRESS",
            json!({"backupId": first, "percentComplete": 50.0, "bytesTransferred": 5,
                   "totalBytes": 10}),
        )
        .await;
    let late = agent.ack_of("p-late").await;
    assert_eq!(late["errorCode"], "INVALID_STATE", "{late}");
}

async fn max_delay_bounds_a_delay_request_and_every_backup_request_repeats_it(log: &Path) {
    let dir = shared_dir();
    let service = ServiceProcess::start_logged(dir.path(), &[], log).await;
    let mut agent = agent(&service, "bounded").await;
    let deadline = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        + time::Duration::days(1);
    let at = |offset: time::Duration| {
        (deadline + offset)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    request_backup(
        &service,
        &at(time::Duration::ZERO),
        &["--delays-allowed", "2", "--max-delay-seconds", "3600"],
    )
    .await;
    let request = agent.expect_type("BACKUP_REQUEST").await;
    assert_eq!(request["payload"]["maxDelay"], 3_600_000, "{request}");
    let backup = request["payload"]["backupId"].as_str().unwrap().to_owned();
    // More than maxDelay after the deadline: DELAY_NOT_ALLOWED.
    agent
        .send(
            "too-far",
            "DELAY_REQUEST",
            json!({"backupId": backup, "requestedDeadline": at(time::Duration::seconds(3601)),
                   "reason": "WORKLOAD"}),
        )
        .await;
    let refused = agent.ack_of("too-far").await;
    assert_eq!(refused["errorCode"], "DELAY_NOT_ALLOWED", "{refused}");
    assert!(
        refused["errorMessage"]
            .as_str()
            .unwrap()
            .contains("maxDelay"),
        "{refused}"
    );
    // Exactly maxDelay is allowed.
    agent
        .call(
            "at-most",
            "DELAY_REQUEST",
            json!({"backupId": backup, "requestedDeadline": at(time::Duration::seconds(3600)),
                   "reason": "WORKLOAD"}),
        )
        .await;
    // The granted delay's BACKUP_REQUEST repeats maxDelay, and so does the one resent to
    // an agent that connects later.
    let me = me();
    service
        .admin(&["push", "--user", &me.name, "decide-delay", "--grant"])
        .await;
    let extended = agent
        .expect("the extended request", |v| {
            v["type"] == "BACKUP_REQUEST" && v["payload"]["reason"] == "DEADLINE_EXTENDED"
        })
        .await;
    assert_eq!(extended["payload"]["maxDelay"], 3_600_000, "{extended}");
    let mut later = AgentProcess::spawn(&service.socket, &me, "later", &["run", "--stay"]);
    let resent = later.expect_type("BACKUP_REQUEST").await;
    assert_eq!(resent["payload"]["maxDelay"], 3_600_000, "{resent}");
}

/// The scenarios above, one after the other, with one transition log: together they take
/// every transition the catalogue declares for `UserMigration` (written by the generated
/// machine itself), and nothing else.
#[tokio::test]
async fn every_user_migration_transition_is_taken_by_the_service() {
    let logs = shared_dir();
    let log = logs.path().join("transitions.log");
    an_unrequested_backup_that_fails_returns_to_not_started_and_the_next_completes(&log).await;
    a_failure_before_the_deadline_is_retried_with_a_new_backup_id(&log).await;
    deadlines_pass_in_backup_requested_delay_requested_and_during_a_backup(&log).await;
    a_backup_without_progress_for_the_configured_time_is_abandoned_and_requested_again(&log).await;
    max_delay_bounds_a_delay_request_and_every_backup_request_repeats_it(&log).await;
    let taken: BTreeSet<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("UserMigration:"))
        .map(str::to_owned)
        .collect();
    let declared: BTreeSet<String> = UserMigration::TABLE.log_lines().into_iter().collect();
    let missing: Vec<_> = declared.difference(&taken).collect();
    assert!(
        missing.is_empty(),
        "transitions no scenario takes: {missing:#?}"
    );
    let undeclared: Vec<_> = taken.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "transitions the catalogue does not declare: {undeclared:#?}"
    );
}
