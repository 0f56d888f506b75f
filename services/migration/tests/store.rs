#![allow(clippy::unwrap_used)]
//! The durable store: persistence across reopen, exactly-once per sender, group commit,
//! the journal, the outbox, operator commands and errors on unopenable paths.

use std::time::Duration;

use ipcspec_generated::migration::UserMigration;
use ipcspec_migration::store::{
    Effect, Origin, OutboxMessage, Outcome, Store, StoreError, UserUpdate,
};

fn in_progress() -> UserUpdate {
    UserUpdate {
        state: UserMigration::BackupInProgress,
        backup_id: Some("0f8fad5b-d9cb-469f-a165-70867728950e".into()),
        deadline: Some("2026-12-01T00:00:00Z".into()),
        delays_remaining: 2,
        max_delay_ms: Some(3 * 24 * 3600 * 1000),
        delay_request_id: None,
        delay_requested_until: None,
        percent_complete: Some(42.5),
        bytes_transferred: Some(1 << 40),
        total_bytes: Some(3 << 40),
        escalated: true,
    }
}

fn from(user: &str, id: &str) -> Origin {
    Origin::agent(user, "s1", id, "TEST")
}

fn set(user: &str, record: UserUpdate) -> Effect {
    Effect::SetState {
        user_id: user.into(),
        record,
    }
}

fn push(user: &str, id: &str, json: &str) -> Effect {
    Effect::OutboxPush(OutboxMessage {
        user_id: user.into(),
        message_id: id.into(),
        message_type: "BACKUP_REQUEST".into(),
        message_json: json.into(),
    })
}

#[tokio::test]
async fn state_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("migration.db");
    {
        let store = Store::open(&path).unwrap();
        let outcome = store
            .commit(from("alice", "m1"), set("alice", in_progress()))
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Applied);
        let delayed = UserUpdate {
            delay_requested_until: Some("2026-12-01T00:00:00Z".into()),
            delay_request_id: Some("d-1".into()),
            ..UserUpdate::new(UserMigration::DelayRequested)
        };
        store
            .commit(from("bob", "m1"), set("bob", delayed))
            .await
            .unwrap();
        store
            .commit(
                from("bob", "m2"),
                push("bob", "s-1", r#"{"type":"BACKUP_REQUEST"}"#),
            )
            .await
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let alice = store.user("alice").unwrap().unwrap();
    assert_eq!(alice.record, in_progress());
    assert!(alice.updated_at_ms > 0);
    let users = store.users().unwrap();
    let names: Vec<_> = users.iter().map(|u| u.user_id.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(users[1].record.state, UserMigration::DelayRequested);
    assert_eq!(users[1].record.delay_request_id.as_deref(), Some("d-1"));
    assert!(store.user("carol").unwrap().is_none());
    let outbox = store.pending_outbox("bob").unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].message_json, r#"{"type":"BACKUP_REQUEST"}"#);
    assert_eq!(outbox[0].message_id, "s-1");
    // The handled ids survived too: a resend after the restart is a duplicate.
    let again = store
        .commit(
            from("alice", "m1"),
            set("alice", UserUpdate::new(UserMigration::NotStarted)),
        )
        .await
        .unwrap();
    assert_eq!(again, Outcome::Duplicate);
    assert_eq!(
        store.user("alice").unwrap().unwrap().record.state,
        UserMigration::BackupInProgress
    );
}

#[tokio::test]
async fn a_repeated_message_is_a_duplicate_and_not_applied_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("m.db")).unwrap();
    let p = |user: &str, n: u32| push(user, &format!("out-{n}"), "{}");
    assert_eq!(
        store
            .commit(from("alice", "x"), p("alice", 1))
            .await
            .unwrap(),
        Outcome::Applied
    );
    assert_eq!(
        store
            .commit(from("alice", "x"), p("alice", 2))
            .await
            .unwrap(),
        Outcome::Duplicate
    );
    assert_eq!(store.pending_outbox("alice").unwrap().len(), 1);
    // The same message id from another user, or another session of the same user, is
    // another message.
    assert_eq!(
        store.commit(from("bob", "x"), p("bob", 1)).await.unwrap(),
        Outcome::Applied
    );
    assert_eq!(
        store
            .commit(Origin::agent("alice", "s2", "x", "TEST"), p("alice", 3))
            .await
            .unwrap(),
        Outcome::Applied
    );
    // Both requests are sent before either is answered, so they usually share a batch.
    let (a, b) = tokio::join!(
        store.commit(from("carol", "y"), p("carol", 1)),
        store.commit(from("carol", "y"), p("carol", 2))
    );
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| *o == Outcome::Duplicate);
    assert_eq!(outcomes, [Outcome::Applied, Outcome::Duplicate]);
    assert_eq!(store.pending_outbox("carol").unwrap().len(), 1);
    let stats = store.stats();
    assert_eq!((stats.applied, stats.duplicates, stats.failed), (4, 2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_commits_apply_exactly_once_in_fewer_transactions() {
    const TASKS: usize = 50;
    const PER_TASK: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("m.db")).unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let user = format!("user{t}");
                for i in 0..PER_TASK {
                    let effect = Effect::All(vec![
                        set(
                            &user,
                            UserUpdate {
                                bytes_transferred: Some(i as u64),
                                ..UserUpdate::new(UserMigration::BackupInProgress)
                            },
                        ),
                        push(&user, &format!("o{i}"), &format!("{{\"n\":{i}}}")),
                    ]);
                    let outcome = store
                        .commit(from(&user, &format!("m{i}")), effect)
                        .await
                        .unwrap();
                    assert_eq!(outcome, Outcome::Applied);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let commits = (TASKS * PER_TASK) as u64;
    let stats = store.stats();
    eprintln!("{commits} commits in {} transactions", stats.transactions);
    assert_eq!(stats.applied, commits);
    assert_eq!((stats.duplicates, stats.failed), (0, 0));
    assert!(
        stats.transactions < commits,
        "no batching: {} transactions for {commits} commits",
        stats.transactions
    );
    let users = store.users().unwrap();
    assert_eq!(users.len(), TASKS);
    for user in &users {
        assert_eq!(user.record.bytes_transferred, Some(PER_TASK as u64 - 1));
        let outbox = store.pending_outbox(&user.user_id).unwrap();
        let bodies: Vec<_> = outbox.iter().map(|e| e.message_json.clone()).collect();
        let expected: Vec<_> = (0..PER_TASK).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert_eq!(bodies, expected);
        // The journal holds every message of the sender, in the order it was handled.
        let journal: Vec<_> = store
            .handled(Some((&user.user_id, "s1")))
            .unwrap()
            .into_iter()
            .map(|h| h.message_id)
            .collect();
        let sent: Vec<_> = (0..PER_TASK).map(|i| format!("m{i}")).collect();
        assert_eq!(journal, sent);
    }
}

#[tokio::test]
async fn outbox_keeps_order_per_user_and_drops_acknowledged_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("m.db")).unwrap();
    for i in 0..5 {
        for user in ["alice", "bob"] {
            let json = format!(r#"{{"to":"{user}","n":{i}}}"#);
            store
                .commit(
                    Origin::command(i64::from(i) * 2 + i64::from(user == "bob")),
                    push(user, &format!("out-{i}"), &json),
                )
                .await
                .unwrap();
        }
    }
    let alice = store.pending_outbox("alice").unwrap();
    let bodies: Vec<_> = alice.iter().map(|e| e.message_json.as_str()).collect();
    assert_eq!(
        bodies,
        (0..5)
            .map(|i| format!(r#"{{"to":"alice","n":{i}}}"#))
            .collect::<Vec<_>>()
    );
    assert!(alice.windows(2).all(|w| w[0].seq < w[1].seq));

    // Alice's agent acknowledged the second one.
    store
        .commit(
            from("alice", "ack-1"),
            Effect::OutboxDelivered {
                user_id: "alice".into(),
                message_id: "out-1".into(),
            },
        )
        .await
        .unwrap();
    let rest: Vec<_> = store
        .pending_outbox("alice")
        .unwrap()
        .into_iter()
        .map(|e| e.message_id)
        .collect();
    assert_eq!(rest, ["out-0", "out-2", "out-3", "out-4"]);
    // Bob's queue is untouched, though his messages have the same ids.
    assert_eq!(store.pending_outbox("bob").unwrap().len(), 5);
    assert_eq!(store.outbox().unwrap().len(), 9);
}

#[tokio::test]
async fn commands_wait_until_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let store = Store::open(&path).unwrap();
    let first = Store::enqueue_command(&path, "a", Some("alice"), r#"{"a":1}"#).unwrap();
    let second = Store::enqueue_command(&path, "b", None, r#"{"b":2}"#).unwrap();
    assert!(first < second);
    let pending = store.pending_commands().unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].target.as_deref(), Some("alice"));
    assert_eq!(pending[1].target, None);
    let applied = store
        .commit(
            Origin::command(first),
            Effect::CommandApplied { seq: first },
        )
        .await
        .unwrap();
    assert_eq!(applied, Outcome::Applied);
    let again = store
        .commit(
            Origin::command(first),
            Effect::CommandApplied { seq: first },
        )
        .await
        .unwrap();
    assert_eq!(again, Outcome::Duplicate);
    let pending = store.pending_commands().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].seq, second);
    assert_eq!(
        store.latest_applied_command("a").unwrap(),
        Some((first, r#"{"a":1}"#.to_owned()))
    );
    assert_eq!(store.latest_applied_command("b").unwrap(), None);
}

#[tokio::test]
async fn pruning_keeps_the_dedupe_window_of_every_sender() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("m.db")).unwrap();
    let window = ipcspec_migration::store::DEDUPE_WINDOW as usize;
    for i in 0..window + 10 {
        store
            .commit(from("alice", &format!("m{i}")), Effect::Nothing)
            .await
            .unwrap();
    }
    store
        .commit(from("bob", "only"), Effect::Nothing)
        .await
        .unwrap();
    // Everything is older than zero seconds, but the newest ids of each sender stay.
    let removed = store.prune_handled(Duration::ZERO).unwrap();
    assert_eq!(removed, 10);
    assert_eq!(store.handled(Some(("alice", "s1"))).unwrap().len(), window);
    assert_eq!(store.handled(Some(("bob", "s1"))).unwrap().len(), 1);
    // A recent id is still recognised.
    let newest = format!("m{}", window + 9);
    assert_eq!(
        store
            .commit(from("alice", &newest), Effect::Nothing)
            .await
            .unwrap(),
        Outcome::Duplicate
    );
}

#[test]
fn an_unopenable_path_is_a_clear_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();

    let garbage = dir.path().join("not-a-database.db");
    std::fs::write(&garbage, vec![0x5a_u8; 8192]).unwrap();
    let error = Store::open(&garbage).unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&garbage.display().to_string()),
        "{message}"
    );
    assert!(message.contains("not a database"), "{message}");

    let missing_dir = dir.path().join("no/such/dir/m.db");
    let message = Store::open(&missing_dir).unwrap_err().to_string();
    assert!(
        message.contains(&missing_dir.display().to_string()),
        "{message}"
    );

    let a_directory = dir.path();
    let message = Store::open(a_directory).unwrap_err().to_string();
    assert!(
        message.contains(&a_directory.display().to_string()),
        "{message}"
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    drop(Store::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let error = Store::open(&path).unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaTooNew { found: 99, .. }),
        "{error:?}"
    );
}
