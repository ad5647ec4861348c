//! Backups against a real PostgreSQL server with the installed `pg_dump` and `pg_restore`: a good
//! backup verifies down to the restore, each kind of broken backup fails the check that names its
//! problem, and no scratch database outlives a verification.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use duespark_jobs::backups::{
    BackupFile, CheckStatus, DEFAULT_RPO, VerifyReport, create_backup, record_backup,
    record_verification, verify_backup, write_checksum_sidecar,
};
use sqlx::PgPool;

/// Serialises the tests that run the restore check, so that the check for leftover scratch
/// databases does not see the scratch database of another test that is still running.
static RESTORE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PG_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

fn pg_bin_dir() -> Option<&'static Path> {
    Some(Path::new(PG_BIN_DIR))
}

async fn seed(pool: &PgPool) {
    sqlx::raw_sql(
        r#"
        INSERT INTO accounts (id, name, sender_name, reply_to, timezone)
        VALUES ('acct-1', 'Acme', 'Acme Billing', 'billing@acme.test', 'UTC'),
               ('acct-2', 'Globex', 'Globex AR', 'ar@globex.test', 'Europe/Berlin');
        INSERT INTO clients (id, account_id, name, email, email_key)
        VALUES ('client-1', 'acct-1', 'Initech', 'ap@initech.test', 'ap@initech.test'),
               ('client-2', 'acct-2', 'Hooli', 'ap@hooli.test', 'ap@hooli.test');
        INSERT INTO invoices (id, account_id, client_id, number, amount_due, currency, issued_on, due_on, pay_url)
        VALUES ('inv-1', 'acct-1', 'client-1', 'A-1', 12500, 'usd', '2026-11-01', '2026-12-01', 'https://pay.test/1'),
               ('inv-2', 'acct-2', 'client-2', 'G-7', 990, 'eur', '2026-11-15', '2026-12-15', 'https://pay.test/2');
        INSERT INTO reminders (invoice_id, stage, status)
        VALUES ('inv-1', 'upcoming', 'sent'), ('inv-1', 'due', 'queued'), ('inv-2', 'upcoming', 'sent');
        "#,
    )
    .execute(pool)
    .await
    .expect("seed rows insert");
}

async fn seeded_backup() -> (PgPool, String, tempfile::TempDir, BackupFile) {
    let (pool, url) = common::fresh_database().await;
    seed(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let backup = create_backup(&url, dir.path(), pg_bin_dir())
        .await
        .expect("backup is written");
    (pool, url, dir, backup)
}

async fn verify(file: &Path, previous_size: Option<u64>, url: &str) -> VerifyReport {
    verify_backup(file, previous_size, url, pg_bin_dir(), DEFAULT_RPO).await
}

/// Asserts that the report failed at `check` and skipped every later check.
fn assert_fails_at(report: &VerifyReport, check: &str, reason_contains: &str) {
    assert!(!report.ok, "report should fail: {report:#?}");
    let failed = report.failed_check().expect("one check failed");
    assert_eq!(failed.name, check, "report: {report:#?}");
    let reason = failed.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains(reason_contains),
        "reason {reason:?} should contain {reason_contains:?}"
    );
    let position = report.checks.iter().position(|c| c.name == check).unwrap();
    for earlier in &report.checks[..position] {
        assert_eq!(earlier.status, CheckStatus::Pass, "check {}", earlier.name);
    }
    for later in &report.checks[position + 1..] {
        assert_eq!(later.status, CheckStatus::Skipped, "check {}", later.name);
    }
}

async fn scratch_databases(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(r"SELECT datname FROM pg_database WHERE datname LIKE 'duespark\_verify\_%'")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Copies the backup to `name` in the same folder with a fresh sidecar, then applies `change`.
async fn broken_copy(
    backup: &BackupFile,
    name: &str,
    change: impl FnOnce(&mut Vec<u8>),
) -> PathBuf {
    let path = backup.path.with_file_name(name);
    let mut bytes = std::fs::read(&backup.path).unwrap();
    change(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    write_checksum_sidecar(&path).await.unwrap();
    path
}

fn fresh_name(tag: &str) -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    format!("{tag}-duespark-{now}.dump")
}

#[tokio::test]
async fn good_backup_verifies_fully() {
    let _guard = RESTORE_LOCK.lock().await;
    let (pool, url, _dir, backup) = seeded_backup().await;

    let file_name = backup
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(file_name.starts_with("duespark-"), "name {file_name}");
    assert!(file_name.ends_with("Z.dump"), "name {file_name}");
    let sidecar = std::fs::read_to_string(format!("{}.sha256", backup.path.display())).unwrap();
    assert_eq!(sidecar, format!("{}  {file_name}\n", backup.sha256));
    assert_eq!(
        backup.size_bytes,
        std::fs::metadata(&backup.path).unwrap().len()
    );

    let report = verify(&backup.path, Some(backup.size_bytes), &url).await;

    assert!(report.ok, "report: {report:#?}");
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "present", "age", "size", "checksum", "header", "list", "restore"
        ]
    );
    assert!(report.checks.iter().all(|c| c.status == CheckStatus::Pass));
    assert!(scratch_databases(&pool).await.is_empty());
}

#[tokio::test]
async fn backup_and_verification_are_recorded() {
    let _guard = RESTORE_LOCK.lock().await;
    let (pool, url, _dir, backup) = seeded_backup().await;
    let report = verify(&backup.path, None, &url).await;

    let backup_id = record_backup(&pool, "local", &backup.path.to_string_lossy(), &backup)
        .await
        .unwrap();
    let verification_id = record_verification(&pool, &report).await.unwrap();

    let (sha256, size): (String, i64) =
        sqlx::query_as("SELECT sha256, size_bytes FROM backups WHERE id = $1")
            .bind(backup_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(sha256, backup.sha256);
    assert_eq!(size as u64, backup.size_bytes);
    let (ok, checks): (bool, serde_json::Value) =
        sqlx::query_as("SELECT ok, checks FROM backup_verifications WHERE id = $1")
            .bind(verification_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(ok);
    assert_eq!(checks[6]["name"], "restore");
    assert_eq!(checks[6]["status"], "pass");
}

#[tokio::test]
async fn password_is_not_shown_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let url = "postgres://nobody:hunter2-secret@127.0.0.1:1/none";
    let error = create_backup(url, dir.path(), pg_bin_dir())
        .await
        .expect_err("no server listens on port 1");
    let message = format!("{error} {error:?}");
    assert!(!message.contains("hunter2-secret"), "message: {message}");
}

#[tokio::test]
async fn truncated_backup_fails_checksum() {
    let (_pool, url, _dir, backup) = seeded_backup().await;
    let path = backup.path.with_file_name(fresh_name("truncated"));
    let bytes = std::fs::read(&backup.path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::copy(
        format!("{}.sha256", backup.path.display()),
        format!("{}.sha256", path.display()),
    )
    .unwrap();

    let report = verify(&path, None, &url).await;

    assert_fails_at(&report, "checksum", "SHA-256 mismatch");
}

/// The TOC comes first and contains the SQL definition of every object, so in a dump of a few rows it
/// fills most of the file and cutting the last quarter already breaks `pg_restore --list`.
#[tokio::test]
async fn truncated_backup_with_matching_checksum_fails_list() {
    let (_pool, url, _dir, backup) = seeded_backup().await;
    let path = broken_copy(&backup, &fresh_name("cut"), |bytes| {
        bytes.truncate(bytes.len() * 3 / 4)
    })
    .await;

    let report = verify(&path, None, &url).await;

    assert_fails_at(&report, "list", "end of file");
}

#[tokio::test]
async fn flipped_byte_fails_checksum() {
    let (_pool, url, _dir, backup) = seeded_backup().await;
    let path = backup.path.with_file_name(fresh_name("flipped"));
    let mut bytes = std::fs::read(&backup.path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    std::fs::copy(
        format!("{}.sha256", backup.path.display()),
        format!("{}.sha256", path.display()),
    )
    .unwrap();

    let report = verify(&path, None, &url).await;

    assert_fails_at(&report, "checksum", "SHA-256 mismatch");
}

#[tokio::test]
async fn sidecar_mismatch_fails_checksum() {
    let (_pool, url, _dir, backup) = seeded_backup().await;
    let name = backup
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    std::fs::write(
        format!("{}.sha256", backup.path.display()),
        format!("{}  {name}\n", "0".repeat(64)),
    )
    .unwrap();

    let report = verify(&backup.path, None, &url).await;

    assert_fails_at(&report, "checksum", "SHA-256 mismatch");
}

#[tokio::test]
async fn missing_sidecar_fails_checksum() {
    let (_pool, url, _dir, backup) = seeded_backup().await;
    std::fs::remove_file(format!("{}.sha256", backup.path.display())).unwrap();

    let report = verify(&backup.path, None, &url).await;

    assert_fails_at(&report, "checksum", "cannot read checksum file");
}

#[tokio::test]
async fn empty_file_fails_present() {
    let (_pool, url, _dir, backup) = seeded_backup().await;
    let path = broken_copy(&backup, &fresh_name("empty"), Vec::clear).await;

    let report = verify(&path, None, &url).await;

    assert_fails_at(&report, "present", "is empty");
}

#[tokio::test]
async fn missing_file_fails_present() {
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("DATABASE_URL").unwrap();

    let report = verify(
        &dir.path().join("duespark-20261204T000000Z.dump"),
        None,
        &url,
    )
    .await;

    assert_fails_at(&report, "present", "cannot read");
}

#[tokio::test]
async fn plain_sql_dump_fails_header() {
    let (_pool, url, dir, _backup) = seeded_backup().await;
    let path = dir.path().join(fresh_name("plain"));
    let status = std::process::Command::new(Path::new(PG_BIN_DIR).join("pg_dump"))
        .args(["--format=plain", "--file"])
        .arg(&path)
        .arg("--dbname")
        .arg(&url)
        .status()
        .unwrap();
    assert!(status.success());
    write_checksum_sidecar(&path).await.unwrap();

    let report = verify(&path, None, &url).await;

    assert_fails_at(&report, "header", "plain SQL dump");
}

#[tokio::test]
async fn gzip_wrapped_dump_fails_header() {
    let (_pool, url, _dir, backup) = seeded_backup().await;
    let path = backup.path.with_file_name(fresh_name("gzip"));
    let output = std::process::Command::new("gzip")
        .arg("--stdout")
        .arg(&backup.path)
        .output()
        .expect("gzip is installed");
    assert!(output.status.success());
    std::fs::write(&path, output.stdout).unwrap();
    write_checksum_sidecar(&path).await.unwrap();

    let report = verify(&path, None, &url).await;

    assert_fails_at(&report, "header", "gzip");
}

#[tokio::test]
async fn newer_archive_version_fails_header() {
    let (_pool, url, _dir, backup) = seeded_backup().await;
    let path = broken_copy(&backup, &fresh_name("newer"), |bytes| bytes[6] = 16).await;

    let report = verify(&path, None, &url).await;

    assert_fails_at(&report, "header", "too new for this pg_restore");
}

#[tokio::test]
async fn backup_older_than_rpo_fails_age() {
    let (_pool, url, _dir, backup) = seeded_backup().await;
    let path = broken_copy(&backup, "duespark-20200101T000000Z.dump", |_| {}).await;

    let report = verify(&path, None, &url).await;

    assert_fails_at(&report, "age", "older than the RPO");
}

#[tokio::test]
async fn unnamed_backup_uses_modification_time() {
    let (_pool, url, _dir, backup) = seeded_backup().await;
    let path = broken_copy(&backup, "copy.dump", |_| {}).await;
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 60 * 60);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();

    let report = verify(&path, None, &url).await;

    assert_fails_at(&report, "age", "older than the RPO");
}

#[tokio::test]
async fn much_smaller_backup_fails_size() {
    let (_pool, url, _dir, backup) = seeded_backup().await;

    let report = verify(&backup.path, Some(backup.size_bytes * 3), &url).await;

    assert_fails_at(&report, "size", "less than half");
}

#[tokio::test]
async fn scratch_database_is_dropped_when_restore_fails() {
    let _guard = RESTORE_LOCK.lock().await;
    let (pool, url) = common::fresh_database().await;
    seed(&pool).await;
    // The CHECK constraint on accounts reads reminders. pg_dump writes it inside CREATE TABLE
    // accounts, and pg_restore loads accounts before reminders, so the restore violates it.
    sqlx::raw_sql(
        r#"
        CREATE FUNCTION public.reminders_exist() RETURNS boolean
            LANGUAGE sql AS $$ SELECT EXISTS (SELECT 1 FROM public.reminders) $$;
        ALTER TABLE accounts ADD CONSTRAINT accounts_need_reminders CHECK (public.reminders_exist());
        "#,
    )
    .execute(&pool)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backup = create_backup(&url, dir.path(), pg_bin_dir()).await.unwrap();

    let report = verify(&backup.path, None, &url).await;

    assert_fails_at(&report, "restore", "accounts_need_reminders");
    assert!(scratch_databases(&pool).await.is_empty());
}

#[tokio::test]
async fn restore_fails_when_live_has_rows_backup_lacks() {
    let _guard = RESTORE_LOCK.lock().await;
    let (pool, url) = common::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let backup = create_backup(&url, dir.path(), pg_bin_dir()).await.unwrap();
    seed(&pool).await;

    let report = verify(&backup.path, None, &url).await;

    assert_fails_at(&report, "restore", "restored table accounts is empty");
    assert!(scratch_databases(&pool).await.is_empty());
}

#[tokio::test]
async fn concurrent_verifications_both_pass() {
    let _guard = RESTORE_LOCK.lock().await;
    let (pool, url, _dir, backup) = seeded_backup().await;

    let (first, second) = tokio::join!(
        verify(&backup.path, None, &url),
        verify(&backup.path, None, &url)
    );

    assert!(first.ok, "first report: {first:#?}");
    assert!(second.ok, "second report: {second:#?}");
    assert!(scratch_databases(&pool).await.is_empty());
}

#[tokio::test]
async fn hung_pg_dump_is_stopped_at_its_timeout() {
    // A stand-in pg_dump that never finishes, as one blocked on a lock would: the real program
    // cannot be made to hang on demand.
    let bin = tempfile::tempdir().unwrap();
    let fake = bin.path().join("pg_dump");
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let started = std::time::Instant::now();
    let error = duespark_jobs::backups::create_backup_within(
        "postgres://postgres@127.0.0.1:5432/postgres",
        dir.path(),
        Some(bin.path()),
        Duration::from_secs(1),
    )
    .await
    .expect_err("the dump times out");

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        error.to_string().contains("did not finish within 1 s"),
        "{error}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "no partial or final file is left: {left:?}"
    );
}
