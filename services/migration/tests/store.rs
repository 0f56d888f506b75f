#![allow(clippy::unwrap_used)]
//! The durable store: persistence across reopen, exactly-once, group commit, the outbox
//! and errors on unopenable paths.

use ipcspec_generated::migration::UserMigration;
use ipcspec_migration::store::{Effect, Outcome, Store, StoreError, UserUpdate};

fn in_progress() -> UserUpdate {
    UserUpdate {
        state: UserMigration::BackupInProgress,
        backup_id: Some("0f8fad5b-d9cb-469f-a165-70867728950e".into()),
        percent_complete: Some(42.5),
        bytes_transferred: Some(1 << 40),
        total_bytes: Some(3 << 40),
        delay_requested_until: None,
        escalated: true,
    }
}

#[tokio::test]
async fn state_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("migration.db");
    {
        let store = Store::open(&path).unwrap();
        let outcome = store
            .commit("alice", "m1", Effect::SetState(in_progress()))
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Applied);
        let delayed = UserUpdate {
            delay_requested_until: Some("2026-12-01T00:00:00Z".into()),
            ..UserUpdate::new(UserMigration::DelayRequested)
        };
        store
            .commit("bob", "m1", Effect::SetState(delayed))
            .await
            .unwrap();
        store
            .commit(
                "bob",
                "m2",
                Effect::OutboxPush {
                    message_json: r#"{"type":"BACKUP_REQUEST"}"#.into(),
                },
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
    assert_eq!(
        users[1].record.delay_requested_until.as_deref(),
        Some("2026-12-01T00:00:00Z")
    );
    assert!(store.user("carol").unwrap().is_none());
    let outbox = store.pending_outbox("bob").unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].1, r#"{"type":"BACKUP_REQUEST"}"#);
    // The handled ids survived too: a resend after the restart is a duplicate.
    let again = store
        .commit(
            "alice",
            "m1",
            Effect::SetState(UserUpdate::new(UserMigration::NotStarted)),
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
    let push = || Effect::OutboxPush {
        message_json: "{}".into(),
    };
    assert_eq!(
        store.commit("alice", "x", push()).await.unwrap(),
        Outcome::Applied
    );
    assert_eq!(
        store.commit("alice", "x", push()).await.unwrap(),
        Outcome::Duplicate
    );
    assert_eq!(store.pending_outbox("alice").unwrap().len(), 1);
    // The same message id from another user is another message.
    assert_eq!(
        store.commit("bob", "x", push()).await.unwrap(),
        Outcome::Applied
    );
    // Both requests are sent before either is answered, so they usually share a batch.
    let (a, b) = tokio::join!(
        store.commit("carol", "y", push()),
        store.commit("carol", "y", push())
    );
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| *o == Outcome::Duplicate);
    assert_eq!(outcomes, [Outcome::Applied, Outcome::Duplicate]);
    assert_eq!(store.pending_outbox("carol").unwrap().len(), 1);
    let stats = store.stats();
    assert_eq!((stats.applied, stats.duplicates, stats.failed), (3, 2, 0));
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
                        Effect::SetState(UserUpdate {
                            bytes_transferred: Some(i as u64),
                            ..UserUpdate::new(UserMigration::BackupInProgress)
                        }),
                        Effect::OutboxPush {
                            message_json: format!("{{\"n\":{i}}}"),
                        },
                    ]);
                    let outcome = store.commit(&user, format!("m{i}"), effect).await.unwrap();
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
        let bodies: Vec<_> = outbox.iter().map(|(_, json)| json.clone()).collect();
        let expected: Vec<_> = (0..PER_TASK).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert_eq!(bodies, expected);
    }
}

#[tokio::test]
async fn outbox_keeps_order_per_user_and_drops_delivered_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("m.db")).unwrap();
    for i in 0..5 {
        for user in ["alice", "bob"] {
            let message_json = format!(r#"{{"to":"{user}","n":{i}}}"#);
            store
                .commit(
                    user,
                    format!("push{i}"),
                    Effect::OutboxPush { message_json },
                )
                .await
                .unwrap();
        }
    }
    let alice = store.pending_outbox("alice").unwrap();
    let bodies: Vec<_> = alice.iter().map(|(_, j)| j.as_str()).collect();
    assert_eq!(
        bodies,
        (0..5)
            .map(|i| format!(r#"{{"to":"alice","n":{i}}}"#))
            .collect::<Vec<_>>()
    );
    assert!(alice.windows(2).all(|w| w[0].0 < w[1].0));

    // Alice's agent connected and received the first three.
    let through_seq = alice[2].0;
    store
        .commit(
            "alice",
            "delivered-1",
            Effect::OutboxDelivered { through_seq },
        )
        .await
        .unwrap();
    let rest = store.pending_outbox("alice").unwrap();
    assert_eq!(rest, alice[3..].to_vec());
    // Bob's queue is untouched, even entries with smaller sequence numbers.
    assert_eq!(store.pending_outbox("bob").unwrap().len(), 5);

    store
        .commit(
            "alice",
            "delivered-2",
            Effect::OutboxDelivered {
                through_seq: rest[1].0,
            },
        )
        .await
        .unwrap();
    assert!(store.pending_outbox("alice").unwrap().is_empty());
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
