//! Demo data for `duespark dev --seed`: one account with clients and invoices whose reminders are
//! already due, so the scheduler's first run sends emails within a minute.

use anyhow::Result;
use chrono::{Duration, Utc};
use duespark_jobs::domain::{
    AccountInput, ClientInput, InvoiceInput, upsert_account, upsert_client, upsert_invoice,
};
use sqlx::PgPool;

/// Upserts the demo rows; running it again changes nothing.
pub async fn load_demo_data(pool: &PgPool) -> Result<()> {
    let account = AccountInput {
        name: "Brightside Design Studio".to_owned(),
        sender_name: "Maya at Brightside".to_owned(),
        reply_to: "maya@brightside.example".to_owned(),
        timezone: "Europe/Berlin".to_owned(),
        reminders_paused: None,
    };
    upsert_account(pool, "demo-account", &account).await?;

    let clients = [
        ("demo-client-acme", "Acme Corp", "ap@acme.example"),
        (
            "demo-client-globex",
            "Globex GmbH",
            "billing@globex.example",
        ),
    ];
    for (id, name, email) in clients {
        let client = ClientInput {
            account_id: "demo-account".to_owned(),
            name: name.to_owned(),
            email: email.to_owned(),
            reminders_paused: None,
        };
        upsert_client(pool, id, &client).await?;
    }

    let today = Utc::now().date_naive();
    let invoices = [
        (
            "demo-inv-1001",
            "demo-client-acme",
            "INV-1001",
            125_000,
            "usd",
            5,
        ),
        (
            "demo-inv-1002",
            "demo-client-globex",
            "INV-1002",
            9_990,
            "eur",
            10,
        ),
        (
            "demo-inv-1003",
            "demo-client-acme",
            "INV-1003",
            5_000,
            "jpy",
            20,
        ),
        (
            "demo-inv-1004",
            "demo-client-globex",
            "INV-1004",
            48_000,
            "gbp",
            40,
        ),
    ];
    for (id, client_id, number, amount_due, currency, days_overdue) in invoices {
        let due_on = today - Duration::days(days_overdue);
        let invoice = InvoiceInput {
            account_id: "demo-account".to_owned(),
            client_id: client_id.to_owned(),
            number: number.to_owned(),
            amount_due,
            currency: currency.to_owned(),
            issued_on: (due_on - Duration::days(30)).to_string(),
            due_on: due_on.to_string(),
            pay_url: format!("https://pay.brightside.example/{number}"),
            status: None,
            reminders_paused: None,
            stripe_payment_intent_id: None,
            stripe_invoice_id: None,
            stripe_checkout_session_id: None,
        };
        upsert_invoice(pool, id, &invoice).await?;
    }
    Ok(())
}
