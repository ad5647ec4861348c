//! The reminder scheduler against PostgreSQL with an injected clock.

mod common;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use common::{TestApp, TestOptions};
use duespark_jobs::reminders::scheduler::run_scheduler;

/// 2026-03-04 is a Wednesday.
const DUE_WEDNESDAY: &str = "2026-03-04";

async fn recorded_stages(app: &TestApp, invoice_id: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT stage FROM reminders WHERE invoice_id = $1 ORDER BY send_at")
        .bind(invoice_id)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

fn local(tz: Tz, date: &str, hour: u32, minute: u32) -> DateTime<Utc> {
    let date: NaiveDate = date.parse().unwrap();
    tz.from_local_datetime(&date.and_hms_opt(hour, minute, 0).unwrap())
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

async fn app_at(now: DateTime<Utc>) -> TestApp {
    TestApp::spawn(TestOptions {
        workers: false,
        now: Some(now),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn nine_am_in_three_time_zones() {
    let app = app_at(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()).await;
    // East to west, so the clock only moves forward.
    let zones = [
        ("tokyo", "Asia/Tokyo"),
        ("berlin", "Europe/Berlin"),
        ("ny", "America/New_York"),
    ];
    for (prefix, zone) in zones {
        app.seed_invoice(prefix, 10_000, "usd", DUE_WEDNESDAY, zone)
            .await;
    }
    let clock = app.clock.clone().unwrap();

    for (prefix, zone) in zones {
        let tz: Tz = zone.parse().unwrap();
        let invoice_id = format!("{prefix}-inv");

        // One minute before 09:00 local on the due day, the `upcoming` stage (3 days before) is the latest due.
        clock.set(local(tz, DUE_WEDNESDAY, 8, 59));
        run_scheduler(&app.ctx).await.unwrap();
        assert_eq!(
            recorded_stages(&app, &invoice_id).await,
            vec!["upcoming"],
            "{zone} before 09:00"
        );

        clock.set(local(tz, DUE_WEDNESDAY, 9, 0));
        run_scheduler(&app.ctx).await.unwrap();
        assert_eq!(
            recorded_stages(&app, &invoice_id).await,
            vec!["upcoming", "due"],
            "{zone} at 09:00"
        );
    }
}

#[tokio::test]
async fn every_stage_boundary() {
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let app = app_at(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()).await;
    let invoice_id = app
        .seed_invoice("stages", 10_000, "eur", DUE_WEDNESDAY, "Europe/Berlin")
        .await;
    let clock = app.clock.clone().unwrap();

    // Stage days: upcoming Sunday 03-01 moves to Monday 03-02; due 03-04; overdue_3 Saturday 03-07
    // moves to Monday 03-09; overdue_7 03-11; overdue_14 03-18; final Friday 04-03.
    let boundaries = [
        ("2026-03-02", "upcoming"),
        ("2026-03-04", "due"),
        ("2026-03-09", "overdue_3"),
        ("2026-03-11", "overdue_7"),
        ("2026-03-18", "overdue_14"),
        ("2026-04-03", "final"),
    ];
    let mut expected: Vec<String> = Vec::new();
    for (day, stage) in boundaries {
        clock.set(local(tz, day, 8, 59));
        run_scheduler(&app.ctx).await.unwrap();
        assert_eq!(
            recorded_stages(&app, &invoice_id).await,
            expected,
            "one minute before {stage}"
        );

        clock.set(local(tz, day, 9, 0));
        run_scheduler(&app.ctx).await.unwrap();
        expected.push(stage.to_owned());
        assert_eq!(
            recorded_stages(&app, &invoice_id).await,
            expected,
            "at {stage}"
        );
    }

    let send_at: DateTime<Utc> = sqlx::query_scalar(
        "SELECT send_at FROM reminders WHERE invoice_id = $1 AND stage = 'overdue_3'",
    )
    .bind(&invoice_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        send_at,
        local(tz, "2026-03-09", 9, 0),
        "a Saturday stage moves to Monday 09:00"
    );
}

#[tokio::test]
async fn weekend_stage_waits_for_monday() {
    let tz: Tz = "America/New_York".parse().unwrap();
    // Due on Saturday 2026-03-07: the `due` reminder goes out on Monday 2026-03-09 at 09:00.
    let app = app_at(local(tz, "2026-03-07", 10, 0)).await;
    let invoice_id = app
        .seed_invoice("weekend", 10_000, "usd", "2026-03-07", "America/New_York")
        .await;
    let clock = app.clock.clone().unwrap();

    run_scheduler(&app.ctx).await.unwrap();
    assert_eq!(
        recorded_stages(&app, &invoice_id).await,
        vec!["upcoming"],
        "Saturday: only the earlier stage"
    );

    clock.set(local(tz, "2026-03-08", 12, 0));
    run_scheduler(&app.ctx).await.unwrap();
    assert_eq!(
        recorded_stages(&app, &invoice_id).await,
        vec!["upcoming"],
        "Sunday: nothing new"
    );

    clock.set(local(tz, "2026-03-09", 9, 0));
    run_scheduler(&app.ctx).await.unwrap();
    assert_eq!(
        recorded_stages(&app, &invoice_id).await,
        vec!["upcoming", "due"],
        "Monday 09:00"
    );
}

#[tokio::test]
async fn late_invoice_gets_only_latest_stage() {
    let tz: Tz = "Asia/Tokyo".parse().unwrap();
    // 20 days after the due date, overdue_14 is the latest due stage.
    let app = app_at(local(tz, "2026-03-24", 10, 0)).await;
    let invoice_id = app
        .seed_invoice("late", 500_000, "jpy", DUE_WEDNESDAY, "Asia/Tokyo")
        .await;

    run_scheduler(&app.ctx).await.unwrap();
    assert_eq!(recorded_stages(&app, &invoice_id).await, vec!["overdue_14"]);
}

#[tokio::test]
async fn repeated_and_concurrent_runs_enqueue_once() {
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let app = app_at(local(tz, "2026-03-24", 10, 0)).await;
    let mut invoices = Vec::new();
    for index in 0..20 {
        invoices.push(
            app.seed_invoice(
                &format!("conc{index}"),
                10_000,
                "eur",
                DUE_WEDNESDAY,
                "Europe/Berlin",
            )
            .await,
        );
    }

    let (first, second) = tokio::join!(run_scheduler(&app.ctx), run_scheduler(&app.ctx));
    let enqueued = first.unwrap().reminders_enqueued + second.unwrap().reminders_enqueued;
    assert_eq!(enqueued, 20);

    let again = run_scheduler(&app.ctx).await.unwrap();
    assert!(again.ran);
    assert_eq!(again.reminders_enqueued, 0);

    let reminders: i64 = sqlx::query_scalar("SELECT count(*) FROM reminders")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(reminders, 20);
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM duespark_queue.jobs WHERE queue = 'reminders'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(jobs, 20, "one job per reminder");
}
