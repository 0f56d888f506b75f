//! Operator commands against the real `migration-service`: a command is marked applied
//! only once every user's part of it was applied, and a part that failed is retried
//! without applying the others twice.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{ServiceProcess, shared_dir};
use ipcspec_generated::migration::UserMigration;
use ipcspec_migration::{Effect, Origin, Store, UserUpdate};

/// Whether operator command `seq` is marked applied in the database.
fn applied(db: &std::path::Path, seq: i64) -> bool {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row(
        "SELECT applied_at IS NOT NULL FROM commands WHERE seq = ?1",
        [seq],
        |row| row.get(0),
    )
    .unwrap()
}

/// `(user, message type)` of every outbox entry, in order.
fn outbox(db: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = conn
        .prepare("SELECT user_id, message_type FROM outbox ORDER BY seq")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn state_of(service: &ServiceProcess, user: &str) -> String {
    let status = service.admin(&["status", "--json"]).await;
    status
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["userId"] == user)
        .map(|v| v["state"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn a_command_that_fails_for_one_user_stays_pending_until_it_is_applied_to_all() {
    let dir = shared_dir();
    let db = dir.path().join("state.db");
    // Two users the service knows, both NOT_STARTED.
    {
        let store = Store::open(&db).unwrap();
        for user in ["alice", "bob"] {
            let effect = Effect::SetState {
                user_id: user.into(),
                record: UserUpdate::new(UserMigration::INITIAL),
            };
            let origin = Origin::agent(user, "setup", "setup-1", "AGENT_STARTED");
            store.commit(origin, effect).await.unwrap();
        }
    }
    // A real failure in the real database: any change to bob's record is refused.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse_bob BEFORE UPDATE ON users WHEN NEW.user_id = 'bob'
         BEGIN SELECT RAISE(ABORT, 'injected failure for bob'); END;",
    )
    .unwrap();

    let service = ServiceProcess::start(dir.path(), &[]).await;
    service
        .admin(&[
            "push",
            "--all",
            "request-backup",
            "--deadline",
            "2031-01-01T00:00:00Z",
        ])
        .await;
    service
        .wait_log("operator command not marked applied: it failed for some users")
        .await;
    assert!(
        !applied(&db, 1),
        "a command that failed for bob is not done"
    );
    assert_eq!(state_of(&service, "alice").await, "BACKUP_REQUESTED");
    assert_eq!(state_of(&service, "bob").await, "NOT_STARTED");

    // The failure goes away: the retry applies bob's part, and alice's not again.
    conn.execute_batch("DROP TRIGGER refuse_bob;").unwrap();
    service.wait_log("operator command applied").await;
    assert!(applied(&db, 1));
    assert_eq!(state_of(&service, "bob").await, "BACKUP_REQUESTED");
    assert_eq!(
        outbox(&db),
        [
            ("alice".to_owned(), "BACKUP_REQUEST".to_owned()),
            ("bob".to_owned(), "BACKUP_REQUEST".to_owned()),
        ],
        "each user got the request exactly once"
    );
}
