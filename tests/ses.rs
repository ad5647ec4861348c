//! SES notifications through SNS: signature, certificate URL and topic checks, subscription
//! confirmation, and the suppression policy per recipient. A local HTTP server replaces
//! AWS: it serves the test signing certificate and answers the SubscribeURL; the app trusts it
//! through the test-only host override.

mod common;

use std::sync::{Arc, Mutex};

use base64::Engine;
use common::{
    SES_TOPIC_ARN, TestApp, TestOptions, settle_email_events as settle, suppressions as suppressed,
};
use duespark_jobs::bounces::sns::{parse_envelope, string_to_sign};
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const TEST_KEY_PEM: &str = include_str!("../jobs/src/bounces/testdata/test-signing-key.pem");
const TEST_CERT_PEM: &str = include_str!("../jobs/src/bounces/testdata/test-signing-cert.pem");

/// The stand-in for AWS: serves the certificate and records SubscribeURL visits.
struct AwsStandIn {
    address: std::net::SocketAddr,
    confirmations: Arc<Mutex<Vec<String>>>,
}

async fn start_stand_in() -> AwsStandIn {
    let confirmations = Arc::new(Mutex::new(Vec::new()));
    let seen = confirmations.clone();
    let router = axum::Router::new()
        .route(
            "/SimpleNotificationService-0123abcd.pem",
            axum::routing::get(|| async { TEST_CERT_PEM }),
        )
        .route(
            "/",
            axum::routing::get(move |uri: axum::http::Uri| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(uri.to_string());
                    "<ConfirmSubscriptionResponse/>"
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    AwsStandIn {
        address,
        confirmations,
    }
}

impl AwsStandIn {
    fn cert_url(&self) -> String {
        format!(
            "http://{}/SimpleNotificationService-0123abcd.pem",
            self.address
        )
    }
}

/// Signs an SNS envelope (SignatureVersion 2) with the test key; returns the body.
fn signed(mut fields: Value) -> String {
    fields["Signature"] = json!("placeholder");
    let envelope = parse_envelope(fields.to_string().as_bytes()).unwrap();
    let digest = Sha256::digest(string_to_sign(&envelope).as_bytes());
    let key = RsaPrivateKey::from_pkcs8_pem(TEST_KEY_PEM).unwrap();
    let signature = key.sign(Pkcs1v15Sign::new::<Sha256>(), &digest).unwrap();
    fields["Signature"] = json!(base64::engine::general_purpose::STANDARD.encode(signature));
    fields.to_string()
}

fn notification(stand_in: &AwsStandIn, message_id: &str, message: &str) -> Value {
    json!({
        "Type": "Notification", "MessageId": message_id, "TopicArn": SES_TOPIC_ARN,
        "Subject": "Amazon SES Email Event Notification", "Message": message,
        "Timestamp": "2026-12-04T10:00:00.000Z", "SignatureVersion": "2", "SigningCertURL": stand_in.cert_url(),
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    })
}

fn bounce(bounce_type: &str, sub_type: &str, recipients: &[&str]) -> String {
    let recipients: Vec<Value> = recipients
        .iter()
        .map(|email| json!({"emailAddress": email, "status": "5.1.1"}))
        .collect();
    json!({
        "notificationType": "Bounce",
        "bounce": {"bounceType": bounce_type, "bounceSubType": sub_type, "bouncedRecipients": recipients, "timestamp": "2026-12-04T10:00:00.000Z", "feedbackId": "f1"},
        "mail": {"timestamp": "2026-12-04T09:59:00.000Z", "messageId": "ses-1", "source": "reminders@duespark.test", "destination": []}
    })
    .to_string()
}

async fn post(app: &TestApp, body: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/webhooks/ses"))
        .header("content-type", "text/plain; charset=UTF-8")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn subscription_confirmation_checks_the_host() {
    let stand_in = start_stand_in().await;
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    let subscribe_url = format!(
        "http://{}/?Action=ConfirmSubscription&TopicArn={SES_TOPIC_ARN}&Token=tok",
        stand_in.address
    );
    let confirmation = |message_id: &str, url: &str| {
        json!({
            "Type": "SubscriptionConfirmation", "MessageId": message_id, "TopicArn": SES_TOPIC_ARN, "Token": "tok",
            "Message": "You have chosen to subscribe", "SubscribeURL": url, "Timestamp": "2026-12-04T10:00:00.000Z",
            "SignatureVersion": "2", "SigningCertURL": stand_in.cert_url()
        })
    };

    let (status, body) = post(&app, &signed(confirmation("m-sub-1", &subscribe_url))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "subscription_confirmed");
    assert_eq!(
        stand_in.confirmations.lock().unwrap().len(),
        1,
        "the SubscribeURL was fetched once"
    );

    let foreign = format!(
        "http://169.254.169.254/?Action=ConfirmSubscription&TopicArn={SES_TOPIC_ARN}&Token=tok"
    );
    let (status, _) = post(&app, &signed(confirmation("m-sub-2", &foreign))).await;
    assert_eq!(status, 400, "a SubscribeURL on another host is refused");
    assert_eq!(
        stand_in.confirmations.lock().unwrap().len(),
        1,
        "nothing else was fetched"
    );
}

#[tokio::test]
async fn bad_envelopes_are_rejected_before_any_effect() {
    let stand_in = start_stand_in().await;
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    let message = bounce("Permanent", "General", &["gone@acme.example"]);

    for bad_url in [
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-0123abcd.pem",
        "http://s3.amazonaws.com/SimpleNotificationService-0123abcd.pem",
    ] {
        let mut fields = notification(&stand_in, "m-bad-url", &message);
        fields["SigningCertURL"] = json!(bad_url);
        let (status, _) = post(&app, &signed(fields)).await;
        assert_eq!(status, 400, "{bad_url}");
    }

    let tampered = signed(notification(&stand_in, "m-tampered", &message))
        .replace("gone@acme.example", "other@acme.example");
    assert_eq!(
        post(&app, &tampered).await.0,
        400,
        "a tampered message fails verification"
    );

    let mut wrong_topic = notification(&stand_in, "m-topic", &message);
    wrong_topic["TopicArn"] = json!("arn:aws:sns:us-east-1:123456789012:someone-else");
    assert_eq!(post(&app, &signed(wrong_topic)).await.0, 403);

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM email_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn bounces_and_complaints_apply_per_recipient() {
    let stand_in = start_stand_in().await;
    let app = TestApp::spawn(TestOptions::default()).await;

    let permanent = bounce(
        "Permanent",
        "General",
        &["one@acme.example", "\"Two\" <TWO@Acme.Example>"],
    );
    assert_eq!(
        post(&app, &signed(notification(&stand_in, "m-perm", &permanent)))
            .await
            .0,
        200
    );
    let transient = bounce("Transient", "General", &["three@acme.example"]);
    assert_eq!(
        post(
            &app,
            &signed(notification(&stand_in, "m-transient", &transient))
        )
        .await
        .0,
        200
    );
    let delivery = json!({"notificationType": "Delivery", "delivery": {"recipients": ["four@acme.example"]}, "mail": {}}).to_string();
    assert_eq!(
        post(
            &app,
            &signed(notification(&stand_in, "m-delivery", &delivery))
        )
        .await
        .0,
        200
    );
    let complaint = json!({"eventType": "Complaint", "complaint": {"complainedRecipients": [{"emailAddress": "five@acme.example"}], "complaintFeedbackType": "abuse"}, "mail": {}}).to_string();
    // Encoded twice, as some setups deliver it.
    let twice = serde_json::to_string(&complaint).unwrap();
    assert_eq!(
        post(
            &app,
            &signed(notification(&stand_in, "m-complaint", &twice))
        )
        .await
        .0,
        200
    );
    let (status, body) = post(
        &app,
        &signed(notification(&stand_in, "m-invalid", "this is not JSON")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["outcome"], "dead_letter");
    // SNS retries reuse the MessageId.
    let (_, body) = post(&app, &signed(notification(&stand_in, "m-perm", &permanent))).await;
    assert_eq!(body["outcome"], "duplicate");
    settle(&app).await;

    assert_eq!(suppressed(&app, "one@acme.example").await.len(), 1);
    assert_eq!(
        suppressed(&app, "two@acme.example").await.len(),
        1,
        "both recipients of the permanent bounce"
    );
    assert!(
        suppressed(&app, "three@acme.example").await.is_empty(),
        "a transient bounce changes nothing"
    );
    assert!(
        suppressed(&app, "four@acme.example").await.is_empty(),
        "a delivery changes nothing"
    );
    let complaint = suppressed(&app, "five@acme.example").await;
    assert_eq!(complaint.len(), 1);
    assert_eq!(complaint[0]["reason"], "complaint");

    let dead_letter: String =
        sqlx::query_scalar("SELECT status FROM email_events WHERE provider_event_id = 'm-invalid'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(dead_letter, "ignored");
}
