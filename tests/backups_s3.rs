//! Backups in S3-compatible storage against a real server (moto's, started per test): upload with
//! the sidecar, listing, verification of the downloaded object, retention in both locations, the
//! commands with `BACKUP_S3_URL`, and the backup jobs through the API.

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::{Duration as Age, Utc};
use common::s3::S3Server;
use duespark_jobs::backups::retention::apply_retention;
use duespark_jobs::backups::run::{backup_and_verify, verify_in_location, verify_newest};
use duespark_jobs::backups::{BackupSettings, CheckStatus, Location, S3Location, VerifyReport};
use sqlx::PgPool;

const PG_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

async fn seed(pool: &PgPool) {
    sqlx::raw_sql(
        r#"
        INSERT INTO accounts (id, name, sender_name, reply_to, timezone)
        VALUES ('acct-1', 'Acme', 'Acme Billing', 'billing@acme.test', 'UTC');
        INSERT INTO clients (id, account_id, name, email, email_key)
        VALUES ('client-1', 'acct-1', 'Initech', 'ap@initech.test', 'ap@initech.test');
        INSERT INTO invoices (id, account_id, client_id, number, amount_due, currency, issued_on, due_on, pay_url)
        VALUES ('inv-1', 'acct-1', 'client-1', 'A-1', 12500, 'usd', '2026-11-01', '2026-12-01', 'https://pay.test/1');
        INSERT INTO reminders (invoice_id, stage, status) VALUES ('inv-1', 'upcoming', 'sent');
        "#,
    )
    .execute(pool)
    .await
    .expect("seed rows insert");
}

fn settings(dir: &Path, s3: &S3Location) -> BackupSettings {
    let mut settings = BackupSettings::local(dir);
    settings.s3 = Some(s3.clone());
    settings.pg_bin_dir = Some(PG_BIN_DIR.into());
    settings
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn failed_check(report: &VerifyReport) -> (String, String) {
    let check = report.failed_check().expect("a check failed");
    (check.name.clone(), check.reason.clone().unwrap_or_default())
}

#[tokio::test]
async fn backup_is_uploaded_listed_and_verified_in_s3() {
    let server = S3Server::start();
    let s3 = server.location("duespark/prod");
    let (pool, url) = common::fresh_database().await;
    seed(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), &s3);

    let run = backup_and_verify(&pool, &url, &settings).await.unwrap();

    assert!(run.ok, "{run:#?}");
    let name = file_name(&run.backup.path);
    assert_eq!(run.uploaded.as_deref(), Some(s3.object_url(&name).as_str()));
    assert!(
        run.uploaded
            .as_deref()
            .unwrap()
            .starts_with("s3://backups-")
    );
    let listed = s3.list().await.unwrap();
    assert_eq!(listed.len(), 1, "the sidecar is not listed as a backup");
    assert_eq!(listed[0].name, name);
    assert_eq!(listed[0].size_bytes, run.backup.size_bytes);

    // The object and its sidecar are byte for byte the local files.
    let download = tempfile::tempdir().unwrap();
    let fetched = s3.download(&name, download.path()).await.unwrap();
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&run.backup.path).unwrap()
    );
    let sidecar = std::fs::read_to_string(download.path().join(format!("{name}.sha256"))).unwrap();
    assert_eq!(sidecar, format!("{}  {name}\n", run.backup.sha256));

    // One verification per location, each down to the restore.
    let locations: Vec<&str> = run
        .verifications
        .iter()
        .map(|report| report.location.as_str())
        .collect();
    assert_eq!(locations, ["local", "s3"]);
    for report in &run.verifications {
        assert!(report.ok, "{report:#?}");
        assert_eq!(report.checks[6].name, "restore");
        assert_eq!(report.checks[6].status, CheckStatus::Pass);
    }
    let recorded: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT location, backup_path, ok FROM backup_verifications ORDER BY location",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[1], ("s3".to_string(), s3.object_url(&name), true));
    let backups: i64 =
        sqlx::query_scalar("SELECT count(*) FROM backups WHERE location = 's3' AND path = $1")
            .bind(s3.object_url(&name))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(backups, 1);

    // Two verifications of S3 at once use their own download folder and scratch database.
    let (first, second) = tokio::join!(
        verify_newest(&pool, &url, &settings),
        verify_newest(&pool, &url, &settings)
    );
    for report in first.iter().chain(second.iter()) {
        assert!(report.ok, "{report:#?}");
    }
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".verify-"))
        .collect();
    assert!(leftovers.is_empty(), "download folders left: {leftovers:?}");
}

#[tokio::test]
async fn broken_or_missing_s3_backups_fail_verification() {
    let server = S3Server::start();
    let s3 = server.location("nightly");
    let (pool, url) = common::fresh_database().await;
    seed(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), &s3);
    let location = Location::S3(s3.clone());

    // An empty bucket has nothing to verify.
    let report = verify_in_location(&pool, &url, &settings, &location, None).await;
    let (check, reason) = failed_check(&report);
    assert_eq!(check, "present");
    assert!(reason.contains("no backup found"), "{reason}");
    assert_eq!(report.location, "s3");

    // A backup changed after its checksum was written: one byte flipped before the upload.
    let written =
        duespark_jobs::backups::create_backup(&url, dir.path(), Some(Path::new(PG_BIN_DIR)))
            .await
            .unwrap();
    let tampered_dir = tempfile::tempdir().unwrap();
    let name = written.path.file_name().unwrap();
    let tampered = tampered_dir.path().join(name);
    let mut bytes = std::fs::read(&written.path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&tampered, bytes).unwrap();
    std::fs::copy(
        duespark_jobs::backups::dump::sidecar_path(&written.path),
        duespark_jobs::backups::dump::sidecar_path(&tampered),
    )
    .unwrap();
    s3.upload(&tampered).await.unwrap();

    let report = verify_in_location(&pool, &url, &settings, &location, None).await;
    let (check, reason) = failed_check(&report);
    assert_eq!(check, "checksum", "{report:#?}");
    assert!(reason.contains("SHA-256 mismatch"), "{reason}");
    assert_eq!(
        report.file.to_string_lossy(),
        s3.object_url(&name.to_string_lossy())
    );
    let recorded: (String, bool) =
        sqlx::query_as("SELECT location, ok FROM backup_verifications ORDER BY id DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(recorded, ("s3".to_string(), false));

    // Deleting removes it from the listing.
    s3.delete(&name.to_string_lossy()).await.unwrap();
    assert!(s3.list().await.unwrap().is_empty());
}

/// Copies `source` and its sidecar to `dir` under a name that says it was made `age` ago.
fn backdated_copy(source: &Path, dir: &Path, age: Age) -> String {
    let created = Utc::now() - age;
    let name = format!("duespark-{}.dump", created.format("%Y%m%dT%H%M%SZ"));
    std::fs::copy(source, dir.join(&name)).unwrap();
    let digest = std::fs::read_to_string(duespark_jobs::backups::dump::sidecar_path(source))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    std::fs::write(
        dir.join(format!("{name}.sha256")),
        format!("{digest}  {name}\n"),
    )
    .unwrap();
    name
}

async fn record_verification(pool: &PgPool, location: &Location, name: &str, ok: bool) {
    sqlx::query(
        "INSERT INTO backup_verifications (location, backup_path, started_at, finished_at, ok, checks)
         VALUES ($1, $2, now(), now(), $3, '[]')",
    )
    .bind(location.name())
    .bind(location.backup_path(name))
    .bind(ok)
    .execute(pool)
    .await
    .unwrap();
}

async fn names(location: &Location) -> Vec<String> {
    location
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|backup| backup.name)
        .collect()
}

#[tokio::test]
async fn retention_keeps_newest_verified_backup() {
    let server = S3Server::start();
    let s3 = server.location("retention");
    let (pool, url) = common::fresh_database().await;
    seed(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), &s3);
    let source_dir = tempfile::tempdir().unwrap();
    let source =
        duespark_jobs::backups::create_backup(&url, source_dir.path(), Some(Path::new(PG_BIN_DIR)))
            .await
            .unwrap();

    // 40 days old and verified; 35 days old, failed; 33 days old, never verified; 31 days old and
    // failed, the newest; 2 days old would be kept anyway but is left out to make the rule visible.
    let ages = [40, 35, 33, 31];
    let backups: Vec<String> = ages
        .iter()
        .map(|days| backdated_copy(&source.path, dir.path(), Age::days(*days)))
        .collect();
    for name in &backups {
        s3.upload(&dir.path().join(name)).await.unwrap();
    }
    let locations = settings.locations();
    for location in &locations {
        record_verification(&pool, location, &backups[0], true).await;
        record_verification(&pool, location, &backups[1], false).await;
        record_verification(&pool, location, &backups[3], false).await;
        assert_eq!(names(location).await, backups, "{}", location.name());
    }

    for location in &locations {
        let deleted = apply_retention(&pool, location, settings.retention, Utc::now())
            .await
            .unwrap();
        assert_eq!(deleted, [backups[1].clone(), backups[2].clone()]);
        assert_eq!(
            names(location).await,
            [backups[0].clone(), backups[3].clone()],
            "{}: the newest verified and the newest backup stay",
            location.name()
        );
    }
    assert!(!dir.path().join(format!("{}.sha256", backups[1])).exists());

    // A new verified backup replaces both: the next run deletes the old ones everywhere.
    let run = backup_and_verify(&pool, &url, &settings).await.unwrap();
    assert!(run.ok, "{run:#?}");
    let new_name = file_name(&run.backup.path);
    for location in &locations {
        assert_eq!(
            run.deleted[location.name()],
            [backups[0].clone(), backups[3].clone()]
        );
        assert_eq!(
            names(location).await,
            vec![new_name.clone()],
            "{}",
            location.name()
        );
    }
}

#[tokio::test]
async fn commands_use_s3_location() {
    let server = S3Server::start();
    let bucket = server.create_bucket();
    let (pool, url) = common::fresh_database().await;
    seed(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let duespark = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_duespark"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &url)
            .env("SECRET_KEY", common::SECRET_KEY)
            .env("BACKUP_DIR", dir.path())
            .env("PG_BIN_DIR", PG_BIN_DIR)
            .env("BACKUP_S3_URL", format!("s3://{bucket}/cli"))
            .envs(server.aws_settings())
            .args(args);
        command.output().unwrap()
    };

    let output = duespark(&["backup"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "backup failed: {stderr}");
    assert!(!stderr.contains("test-secret-key"), "{stderr}");
    let run: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(run["ok"], true, "{run}");
    let uploaded = run["uploaded"].as_str().unwrap().to_string();
    assert!(
        uploaded.starts_with(&format!("s3://{bucket}/cli/duespark-")),
        "{uploaded}"
    );

    let output = duespark(&["verify-backup", &uploaded]);
    assert!(
        output.status.success(),
        "verify-backup failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verifications"][0]["location"], "s3", "{report}");
    assert_eq!(report["verifications"][0]["file"], uploaded.as_str());

    // Without a path, the newest backup of each location.
    let output = duespark(&["verify-backup"]);
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["verifications"].as_array().unwrap().len(),
        2,
        "{report}"
    );

    // A URL outside BACKUP_S3_URL is refused with a message naming it.
    let output = duespark(&[
        "verify-backup",
        "s3://elsewhere/duespark-20261204T000000Z.dump",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a backup under"));

    // A malformed BACKUP_S3_URL stops the command naming the variable.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_duespark"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &url)
        .env("SECRET_KEY", common::SECRET_KEY)
        .env("BACKUP_S3_URL", "https://bucket.example/backups")
        .arg("verify-backup")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("BACKUP_S3_URL"));
}

#[tokio::test]
async fn backup_and_verification_jobs_cover_both_locations() {
    use duespark_api::Scope;
    let server = S3Server::start();
    let app = common::TestApp::spawn(common::TestOptions {
        backup_s3: Some(server.location("jobs")),
        ..common::TestOptions::default()
    })
    .await;
    app.seed_invoice("backup", 1_000, "usd", "2026-04-10", "UTC")
        .await;
    let admin = app.token(&[Scope::DashboardAdmin, Scope::JobsRead, Scope::JobsWrite]);

    let response = app
        .http
        .post(app.url("/v1/backups"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    let job = app
        .wait_for_job(body["job_id"].as_str().unwrap(), Duration::from_secs(90))
        .await;
    assert_eq!(job["status"], "done", "{job}");

    // The daily verification, enqueued by hand here.
    let response = app
        .http
        .post(app.url("/v1/jobs"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"queue": "backups", "kind": "backup.verify", "payload": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let body: serde_json::Value = response.json().await.unwrap();
    let job = app
        .wait_for_job(body["id"].as_str().unwrap(), Duration::from_secs(90))
        .await;
    assert_eq!(job["status"], "done", "{job}");

    let verified: Vec<(String, i64)> = sqlx::query_as(
        "SELECT location, count(*) FROM backup_verifications WHERE ok GROUP BY location ORDER BY location",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(verified, [("local".to_string(), 2), ("s3".to_string(), 2)]);

    let metrics = app.metrics().await;
    for series in [
        "duespark_backup_last_success_timestamp_seconds{location=\"s3\"}",
        "duespark_backup_last_verified_timestamp_seconds{location=\"s3\"}",
        "duespark_backup_newest_size_bytes{location=\"s3\"}",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
}
