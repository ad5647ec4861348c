//! Start-up checks of the `duespark` binary: configuration and templates.

mod common;

use std::process::Command;

fn duespark() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_duespark"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn short_secret_key_stops_the_process() {
    let output = duespark()
        .args(["token", "--scope", "jobs:read"])
        .env("SECRET_KEY", "short")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SECRET_KEY"), "stderr: {stderr}");
}

#[test]
fn malformed_smtp_url_stops_the_process() {
    let output = duespark()
        .args(["token", "--scope", "jobs:read"])
        .env("SMTP_URL", "mail.example.com")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("SMTP_URL"));
}

#[test]
fn token_prints_only_the_token() {
    let output = duespark()
        .args([
            "token",
            "--scope",
            "jobs:write",
            "--scope",
            "jobs:read",
            "--ttl",
            "2h",
        ])
        .env("SECRET_KEY", common::SECRET_KEY)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.trim();
    assert_eq!(stdout.lines().count(), 1);
    assert_eq!(
        token.split('.').count(),
        3,
        "a JWT has three parts: {token}"
    );
}

#[tokio::test]
async fn unknown_template_variable_fails_startup() {
    let templates = tempfile::tempdir().unwrap();
    copy_dir(&common::workspace_dir().join("templates"), templates.path());
    let broken = templates.path().join("reminders/due.html.hbs");
    let original = std::fs::read_to_string(&broken).unwrap();
    std::fs::write(&broken, format!("{original}\n<p>{{{{amount_owed}}}}</p>\n")).unwrap();

    let (_pool, database_url) = common::fresh_database().await;
    let output = duespark()
        .arg("worker")
        .env("DATABASE_URL", &database_url)
        .env("TEMPLATES_DIR", templates.path())
        .env("WORKER_METRICS_BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("due.html.hbs"),
        "stderr names the template: {stderr}"
    );
    assert!(
        stderr.contains("amount_owed"),
        "stderr names the variable: {stderr}"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
