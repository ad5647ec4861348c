//! `duespark backup` and `duespark verify-backup` as commands, with real pg_dump and pg_restore.

mod common;

use std::process::Command;

fn duespark(database_url: &str, backup_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_duespark"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("BACKUP_DIR", backup_dir)
        .env("SECRET_KEY", common::SECRET_KEY);
    command
}

#[tokio::test]
async fn backup_then_verify_from_the_command_line() {
    let (pool, url) = common::fresh_database().await;
    sqlx::query("INSERT INTO accounts (id, name, sender_name, reply_to, timezone) VALUES ('a1', 'Studio', 'Maya', 'maya@studio.example', 'UTC')")
        .execute(&pool)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let output = duespark(&url, dir.path()).arg("backup").output().unwrap();
    assert!(
        output.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the report is JSON");
    assert_eq!(report["ok"], true, "{report}");

    let output = duespark(&url, dir.path())
        .arg("verify-backup")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "verify-backup failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let verifications: i64 =
        sqlx::query_scalar("SELECT count(*) FROM backup_verifications WHERE ok")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(verifications, 2, "both runs are recorded");

    // A truncated copy fails and names its check.
    let dump = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "dump"))
        .unwrap();
    let bytes = std::fs::read(&dump).unwrap();
    let broken = dir.path().join("broken.dump");
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    let output = duespark(&url, dir.path())
        .arg("verify-backup")
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("check"),
        "the failure names its check: {stderr}"
    );
}

#[tokio::test]
async fn backup_through_the_api_shows_in_metrics() {
    use duespark_api::Scope;
    let app = common::TestApp::spawn(common::TestOptions::default()).await;
    app.seed_invoice("backup", 1_000, "usd", "2026-04-10", "UTC")
        .await;

    let admin = app.token(&[Scope::DashboardAdmin, Scope::JobsRead]);
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
        .wait_for_job(
            body["job_id"].as_str().unwrap(),
            std::time::Duration::from_secs(60),
        )
        .await;
    assert_eq!(job["status"], "done", "{job}");

    let metrics = app.metrics().await;
    for series in [
        "duespark_backup_last_success_timestamp_seconds{location=\"local\"}",
        "duespark_backup_last_verified_timestamp_seconds{location=\"local\"}",
        "duespark_backup_newest_size_bytes{location=\"local\"}",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }

    let response = app
        .http
        .post(app.url("/v1/backups"))
        .bearer_auth(app.write_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "backups need the admin scope");
}
