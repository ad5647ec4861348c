//! The main job on realistic input: hundreds of invoices in several currencies and time zones,
//! through the scheduler, the workers and a real SMTP server.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{Duration as Days, TimeZone, Utc};
use chrono_tz::Tz;
use common::smtp::SmtpOptions;
use common::{SmtpServer, TestApp, TestOptions, wait_until};
use duespark_jobs::reminders::schedule::stage_to_send;
use duespark_jobs::reminders::scheduler::run_scheduler;
use futures::StreamExt;
use serde_json::json;

const INVOICES: usize = 320;
const ZONES: [&str; 6] = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Europe/London",
    "Asia/Tokyo",
    "Australia/Sydney",
];
const CURRENCIES: [(&str, i64); 4] = [
    ("usd", 125_000),
    ("eur", 9_990),
    ("gbp", 48_050),
    ("jpy", 5_000),
];

#[tokio::test]
async fn hundreds_of_invoices_each_reminded_once() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    // A Wednesday, 12:00 UTC: some zones are past 09:00 today and some are not.
    let now = Utc.with_ymd_and_hms(2026, 3, 25, 12, 0, 0).unwrap();
    let app = TestApp::spawn(TestOptions {
        smtp_port: Some(smtp.port),
        now: Some(now),
        concurrency: 8,
        ..Default::default()
    })
    .await;

    for (index, zone) in ZONES.iter().enumerate() {
        let account = json!({"name": format!("Studio {index}"), "sender_name": format!("Owner {index}"), "reply_to": format!("owner{index}@studio.example"), "timezone": zone});
        assert_eq!(
            app.put(&format!("/v1/accounts/acct-{index}"), account)
                .await
                .0,
            201
        );
    }

    // Due dates from 40 days ago to 5 days ahead cover every stage and some not yet due.
    let today = now.date_naive();
    let mut expected_stages = 0;
    let mut specs = Vec::new();
    for index in 0..INVOICES {
        let zone_index = index % ZONES.len();
        let (currency, amount) = CURRENCIES[index % CURRENCIES.len()];
        let due_on = today + Days::days(5 - (index % 46) as i64);
        let tz: Tz = ZONES[zone_index].parse().unwrap();
        if stage_to_send(due_on, tz, now, &[]).is_some() {
            expected_stages += 1;
        }
        specs.push((index, zone_index, currency, amount, due_on));
    }
    assert!(
        expected_stages >= 250,
        "the data set has {expected_stages} due reminders"
    );

    let uploads = futures::stream::iter(specs.into_iter().map(|(index, zone_index, currency, amount, due_on)| {
        let app = &app;
        async move {
            let client = json!({"account_id": format!("acct-{zone_index}"), "name": format!("Client {index}"), "email": format!("client{index}@example.com")});
            assert_eq!(app.put(&format!("/v1/clients/client-{index}"), client).await.0, 201);
            let invoice = json!({
                "account_id": format!("acct-{zone_index}"), "client_id": format!("client-{index}"), "number": format!("INV-{index:04}"),
                "amount_due": amount, "currency": currency, "issued_on": (due_on - Days::days(30)).to_string(),
                "due_on": due_on.to_string(), "pay_url": format!("https://pay.example.com/{index}"),
            });
            let (status, body) = app.put(&format!("/v1/invoices/inv-{index}"), invoice).await;
            assert_eq!(status, 201, "{body}");
        }
    }));
    uploads.buffer_unordered(8).collect::<Vec<()>>().await;

    let run = run_scheduler(&app.ctx).await.unwrap();
    assert_eq!(run.reminders_enqueued, expected_stages);
    // A second run finds nothing new.
    assert_eq!(run_scheduler(&app.ctx).await.unwrap().reminders_enqueued, 0);

    let messages = smtp
        .wait_for_messages(expected_stages, Duration::from_secs(180))
        .await;
    assert_eq!(messages.len(), expected_stages);
    let settled = wait_until(Duration::from_secs(60), || async {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM reminders WHERE status NOT IN ('sent')")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        (open == 0).then_some(())
    })
    .await;
    assert!(settled.is_some(), "every reminder ends sent");

    // Nothing arrives late or twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), expected_stages);
    let recipients: BTreeSet<String> = messages
        .iter()
        .flat_map(|message| message.rcpt_tos.clone())
        .collect();
    assert_eq!(recipients.len(), expected_stages, "one email per invoice");
    let message_ids: BTreeSet<String> = messages
        .iter()
        .filter_map(|message| message.header("Message-ID"))
        .collect();
    assert_eq!(
        message_ids.len(),
        expected_stages,
        "every Message-ID is distinct"
    );

    let stored_ids: BTreeSet<String> =
        sqlx::query_scalar("SELECT message_id FROM reminders WHERE message_id IS NOT NULL")
            .fetch_all(&app.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(
        stored_ids, message_ids,
        "stored Message-IDs match the delivered ones"
    );
}
