//! The restore procedure of docs/runbook.md, run by scripts/restore_drill.sh on a fresh
//! `duespark backup` archive, restores every row into a new PostgreSQL cluster.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::PgPool;

/// Tables whose row counts the drill prints, in its order.
const COUNTED_TABLES: [&str; 5] = [
    "accounts",
    "clients",
    "invoices",
    "reminders",
    "duespark_queue.jobs",
];

fn duespark(database_url: &str, backup_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_duespark"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("BACKUP_DIR", backup_dir)
        .env("SECRET_KEY", common::SECRET_KEY);
    command
}

fn restore_drill(backup_file: &Path) -> Output {
    Command::new(common::workspace_dir().join("scripts/restore_drill.sh"))
        .arg(backup_file)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DUESPARK_BIN", env!("CARGO_BIN_EXE_duespark"))
        .output()
        .expect("failed to start scripts/restore_drill.sh")
}

/// Inserts rows into every counted table: 2 accounts, 3 clients, 4 invoices, 5 reminders and
/// 6 jobs in several states.
async fn seed(pool: &PgPool) {
    sqlx::query(
        r#"
        INSERT INTO accounts (id, name, sender_name, reply_to, timezone) VALUES
            ('acct-1', 'Brightside', 'Maya Lin', 'maya@brightside.example', 'Europe/Berlin'),
            ('acct-2', 'Northwind', 'Sam Roe', 'sam@northwind.example', 'UTC')
        "#,
    )
    .execute(pool)
    .await
    .unwrap();

    sqlx::query(
        r#"
        INSERT INTO clients (id, account_id, name, email, email_key) VALUES
            ('client-1', 'acct-1', 'Acme Corp', 'ap@acme.example', 'ap@acme.example'),
            ('client-2', 'acct-1', 'Globex', 'billing@globex.example', 'billing@globex.example'),
            ('client-3', 'acct-2', 'Initech', 'ap@initech.example', 'ap@initech.example')
        "#,
    )
    .execute(pool)
    .await
    .unwrap();

    sqlx::query(
        r#"
        INSERT INTO invoices (id, account_id, client_id, number, amount_due, currency, issued_on,
                              due_on, pay_url, status)
        SELECT format('inv-%s', n), 'acct-1', 'client-1', format('INV-%s', 1000 + n), 12500 * n,
               'usd', DATE '2026-11-01', DATE '2026-12-01', format('https://pay.example.com/inv-%s', n),
               CASE WHEN n = 4 THEN 'paid' ELSE 'open' END
        FROM generate_series(1, 4) AS n
        "#,
    )
    .execute(pool)
    .await
    .unwrap();

    sqlx::query(
        r#"
        INSERT INTO reminders (invoice_id, stage, status, message_id) VALUES
            ('inv-1', 'upcoming', 'sent', '<r1@duespark.test>'),
            ('inv-1', 'due', 'sent', '<r2@duespark.test>'),
            ('inv-2', 'upcoming', 'queued', NULL),
            ('inv-3', 'upcoming', 'uncertain', '<r4@duespark.test>'),
            ('inv-4', 'upcoming', 'skipped', NULL)
        "#,
    )
    .execute(pool)
    .await
    .unwrap();

    sqlx::query(
        r#"
        INSERT INTO duespark_queue.jobs (queue, kind, payload, status, attempt, max_attempts, run_at,
                                         finished_at, errors)
        VALUES
            ('reminders', 'reminder.send', '{"reminder_id": 1}', 'done', 1, 8, now(), now(), '[]'),
            ('reminders', 'reminder.send', '{"reminder_id": 2}', 'done', 1, 8, now(), now(), '[]'),
            ('reminders', 'reminder.send', '{"reminder_id": 3}', 'pending', 0, 8, now(), NULL, '[]'),
            ('reminders', 'reminder.send', '{"reminder_id": 4}', 'dead', 8, 8, now(), now(),
             '[{"attempt": 8, "at": "2026-12-04T09:00:00Z", "worker": "w1", "message": "timed out"}]'),
            ('maintenance', 'noop', 'null', 'scheduled', 0, 3, now() + interval '1 day', NULL, '[]'),
            ('maintenance', 'noop', 'null', 'cancelled', 0, 3, now(), now(), '[]')
        "#,
    )
    .execute(pool)
    .await
    .unwrap();
}

async fn count_rows(pool: &PgPool) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for table in COUNTED_TABLES {
        let count: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(pool)
                .await
                .unwrap();
        counts.insert(table.to_owned(), count);
    }
    counts
}

/// Parses the drill's stdout: one `<table> <rows>` line per counted table.
fn parse_counts(stdout: &str) -> BTreeMap<String, i64> {
    stdout
        .lines()
        .map(|line| {
            let (table, count) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("unexpected drill output line {line:?}"));
            let count = count
                .parse()
                .unwrap_or_else(|_| panic!("unexpected row count in {line:?}"));
            (table.to_owned(), count)
        })
        .collect()
}

/// Runs `duespark backup` into `dir` and returns the path of the archive it wrote.
fn take_backup(database_url: &str, dir: &Path) -> PathBuf {
    let output = duespark(database_url, dir).arg("backup").output().unwrap();
    assert!(
        output.status.success(),
        "duespark backup failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut dumps: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "dump"))
        .collect();
    assert_eq!(
        dumps.len(),
        1,
        "one archive in {}: {dumps:?}",
        dir.display()
    );
    dumps.pop().unwrap()
}

#[tokio::test]
async fn restore_drill_restores_every_row() {
    let (pool, url) = common::fresh_database().await;
    seed(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let backup = take_backup(&url, dir.path());
    // Counted after the backup, because `duespark backup` records its own rows in other tables.
    let source = count_rows(&pool).await;

    let output = restore_drill(&backup);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the drill failed:\n{stderr}");
    let restored = parse_counts(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(
        restored.keys().collect::<Vec<_>>(),
        source.keys().collect::<Vec<_>>(),
        "the drill prints every counted table"
    );
    for table in COUNTED_TABLES {
        assert!(source[table] > 0, "the seed put rows into {table}");
        assert_eq!(
            restored[table], source[table],
            "rows of {table}: restored {} against {} in the source\n{stderr}",
            restored[table], source[table]
        );
    }
    assert!(
        stderr.contains("restore of") && stderr.contains("finished"),
        "the procedure ran to its last step:\n{stderr}"
    );
}

#[tokio::test]
async fn restore_drill_rejects_corrupted_backup() {
    let (pool, url) = common::fresh_database().await;
    seed(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let backup = take_backup(&url, dir.path());

    // One byte changed in the middle of the archive: the sidecar's checksum no longer matches.
    let mut bytes = std::fs::read(&backup).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&backup, &bytes).unwrap();

    let output = restore_drill(&backup);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the drill accepted a corrupted archive:\n{stderr}"
    );
    assert!(
        stderr.contains("FAILED"),
        "sha256sum reports the mismatch:\n{stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "no row counts after a failed restore: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}
