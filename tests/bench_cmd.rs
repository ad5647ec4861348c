//! `duespark bench` as a command on a small scale: every figure is printed as one JSON line with
//! plausible values, the jobs it made are gone afterwards, and wrong options or a missing database
//! or templates folder stop it with a message that names the problem.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn bench(database_url: &str, args: &[&str]) -> std::process::Output {
    bench_in(&common::workspace_dir(), database_url, args)
}

/// Runs `duespark bench` with `directory` as its working directory.
fn bench_in(directory: &Path, database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_duespark"))
        .current_dir(directory)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("SECRET_KEY", common::SECRET_KEY)
        .env("RUST_LOG", "warn")
        .arg("bench")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn bench_prints_every_figure() {
    let (pool, url) = common::fresh_database().await;
    let output = bench(
        &url,
        &[
            "--json",
            "--jobs",
            "500",
            "--concurrency",
            "50",
            "--latency-samples",
            "5",
            "--http-requests",
            "200",
            "--http-clients",
            "4",
            "--backlog",
            "3000",
            "--backlog-drain",
            "500",
        ],
    );
    assert!(
        output.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    let names: Vec<&str> = figures
        .iter()
        .map(|figure| figure["figure"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "insert",
            "drain",
            "latency",
            "http",
            "backlog",
            "worker_memory"
        ]
    );
    for figure in &figures {
        assert_eq!(figure["system"], "duespark");
    }
    assert!(figures[0]["jobs_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(figures[1]["jobs"], 500);
    assert!(figures[2]["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(figures[2]["p99_ms"].as_f64().unwrap() >= figures[2]["p50_ms"].as_f64().unwrap());
    assert_eq!(figures[3]["requests"], 200);
    assert!(figures[3]["requests_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(figures[4]["waiting"], 3000);
    let rss = figures[5]["rss_mb"].as_f64().unwrap();
    assert!(rss > 1.0, "{rss}");
    assert!(rss < 500.0, "{rss}");

    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM duespark_queue.jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "the benchmark deletes its jobs");
}

#[tokio::test]
async fn bench_rejects_unknown_figure() {
    let (_pool, url) = common::fresh_database().await;
    let output = bench(&url, &["--measure", "drain,speed"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown figure \"speed\""), "{stderr}");
}

/// Returns the URL of a database that does not exist on the test server.
fn missing_database_url() -> String {
    let mut url = url::Url::parse(&std::env::var("DATABASE_URL").expect("DATABASE_URL is set"))
        .expect("DATABASE_URL is a URL");
    url.set_path("/duespark_no_such_database");
    url.to_string()
}

#[test]
fn bench_checks_options_before_connecting() {
    let output = bench(
        &missing_database_url(),
        &["--backlog", "10", "--backlog-drain", "20"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--backlog-drain must be between 1 and --backlog (10), got 20"),
        "{stderr}"
    );
    assert!(!stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn bench_outside_repository_names_templates() {
    let directory = tempfile::tempdir().unwrap();
    let output = bench_in(
        directory.path(),
        &missing_database_url(),
        &["--measure", "worker_memory"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Run from the repository root or set TEMPLATES_DIR"),
        "{stderr}"
    );
}

#[test]
fn missing_database_is_named_once() {
    let output = bench(&missing_database_url(), &["--measure", "drain"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let named = stderr
        .matches("database \"duespark_no_such_database\" does not exist")
        .count();
    assert_eq!(named, 1, "{stderr}");
    assert!(stderr.contains("createdb"), "{stderr}");
}
