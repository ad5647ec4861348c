//! `POST /webhooks/postmark` (HTTP Basic auth) and the suppression list for support:
//! `GET /v1/suppressions?email=` and `DELETE /v1/suppressions/{id}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use duespark_jobs::bounces::address::normalize;
use duespark_jobs::bounces::postmark::{PostmarkIntake, store_postmark};
use duespark_jobs::bounces::ses::store_ses;
use duespark_jobs::bounces::sns::{self, SnsMessage};
use duespark_jobs::bounces::suppression;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::auth::Scope;
use crate::extract::Auth;
use crate::{ApiError, AppState};

/// Checks `Authorization: Basic` against the configured user and password, comparing digests so
/// the time taken does not depend on where the values differ.
fn basic_auth_matches(headers: &HeaderMap, user: &str, password: &str) -> bool {
    use base64::Engine;
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    crate::auth::secrets_equal(format!("{user}:{password}").as_bytes(), &decoded)
}

pub async fn postmark(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let settings = &state.postmark;
    let (Some(user), Some(password)) = (&settings.user, &settings.password) else {
        warn!(
            "rejected a Postmark webhook: POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD are not set"
        );
        state.counters.webhook("postmark", "unauthorized");
        return Err(ApiError::Unauthorized(
            "Postmark webhooks are not configured on this server".to_owned(),
        ));
    };
    if !basic_auth_matches(&headers, user, password) {
        state.counters.webhook("postmark", "unauthorized");
        let mut response =
            ApiError::Unauthorized("invalid HTTP Basic credentials".to_owned()).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"postmark\"".parse().expect("a valid header"),
        );
        return Ok(response);
    }

    let record: Value = serde_json::from_slice(&body).map_err(|_| ApiError::BadRequest {
        code: "invalid_json",
        message: "the body is not JSON".to_owned(),
    })?;
    if !record.is_object() {
        return Err(ApiError::BadRequest {
            code: "invalid_record",
            message: "the body is not a Postmark record".to_owned(),
        });
    }
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    let outcome = store_postmark(&state.pool, &raw_body, &record, settings.server_id).await?;
    let word = match outcome {
        PostmarkIntake::Stored => "stored",
        PostmarkIntake::Duplicate => "duplicate",
        PostmarkIntake::Test => "test",
        PostmarkIntake::NotABounce => "ignored",
        PostmarkIntake::ForeignServer => "foreign_server",
    };
    state.counters.webhook("postmark", word);
    if outcome == PostmarkIntake::ForeignServer {
        // 403 also makes Postmark stop retrying.
        warn!(server_id = %record["ServerID"], "rejected a Postmark record of another server");
        return Ok((StatusCode::FORBIDDEN, Json(json!({"error": {"code": "foreign_server", "message": "the record's ServerID is not this server's POSTMARK_SERVER_ID"}}))).into_response());
    }
    info!(postmark.id = %record["ID"], outcome = word, "Postmark record received");
    Ok(Json(json!({ "received": true, "outcome": word })).into_response())
}

#[derive(Deserialize)]
pub struct SuppressionQuery {
    email: String,
}

/// `GET /v1/suppressions?email=` (admin): the active suppressions of an address.
pub async fn list_suppressions(
    State(state): State<AppState>,
    Auth(claims): Auth,
    crate::extract::ValidQuery(query): crate::extract::ValidQuery<SuppressionQuery>,
) -> Result<Json<Value>, ApiError> {
    claims.require(Scope::DashboardAdmin)?;
    let key = normalize(&query.email)
        .map_err(|error| ApiError::invalid("email", "invalid_email", error.to_string()))?;
    let suppressions = suppression::find(&state.pool, &key).await?;
    Ok(Json(
        json!({ "email": query.email, "suppressions": suppressions }),
    ))
}

/// `DELETE /v1/suppressions/{id}` (admin): 204, or 409 for a complaint or an entry that cannot be
/// reactivated.
pub async fn delete_suppression(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    claims.require(Scope::DashboardAdmin)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("suppression {id:?} not found")))?;
    suppression::delete(&state.pool, id).await?;
    info!(suppression.id = id, subject = %claims.sub, "suppression deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /webhooks/ses`: an SNS delivery (sent as `text/plain`). The signature, signing
/// certificate URL and topic are verified before anything is stored or fetched.
pub async fn ses(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let settings = &state.ses;
    let message = match sns::verify(&body, &settings.config, &settings.certs).await {
        Ok(message) => message,
        Err(error) if error.is_forbidden() => {
            state.counters.webhook("ses", "forbidden_topic");
            warn!(%error, "rejected an SNS message of a topic not in SES_TOPIC_ARNS");
            return Err(ApiError::Forbidden("an allowed SNS topic"));
        }
        Err(error) if error.is_transient() => {
            warn!(%error, "could not fetch the SNS signing certificate; SNS will retry");
            return Ok((StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": {"code": "certificate_unavailable", "message": error.to_string()}}))).into_response());
        }
        Err(error) => {
            state.counters.webhook("ses", "invalid_signature");
            warn!(%error, "rejected an SNS message that failed verification");
            return Err(ApiError::BadRequest {
                code: "invalid_signature",
                message: error.to_string(),
            });
        }
    };

    let outcome = match message {
        SnsMessage::SubscriptionConfirmation {
            message_id,
            topic_arn,
            subscribe_url,
        } => {
            confirm_subscription(&state, &subscribe_url).await?;
            store_ses(
                &state.pool,
                &message_id,
                "SubscriptionConfirmation",
                &String::from_utf8_lossy(&body),
                Some(("processed", "subscription confirmed")),
            )
            .await?;
            info!(%topic_arn, "SNS subscription confirmed");
            "subscription_confirmed"
        }
        SnsMessage::UnsubscribeConfirmation {
            message_id,
            topic_arn,
        } => {
            store_ses(
                &state.pool,
                &message_id,
                "UnsubscribeConfirmation",
                &String::from_utf8_lossy(&body),
                Some(("processed", "unsubscribed; not re-subscribed automatically")),
            )
            .await?;
            warn!(%topic_arn, "SNS reports the SES subscription was removed; bounces no longer arrive until it is subscribed again");
            "unsubscribed"
        }
        SnsMessage::Notification {
            message_id,
            ses: Some(notification),
            ..
        } => {
            let record_type = notification["notificationType"]
                .as_str()
                .or(notification["eventType"].as_str())
                .unwrap_or("Unknown")
                .to_owned();
            let created = store_ses(
                &state.pool,
                &message_id,
                &record_type,
                &notification.to_string(),
                None,
            )
            .await?;
            if created { "stored" } else { "duplicate" }
        }
        SnsMessage::Notification {
            message_id,
            ses: None,
            raw_message,
            ..
        } => {
            // SNS would resend the same bytes, so this is kept as a dead letter and acknowledged.
            warn!(sns.message_id = %message_id, "SNS notification whose Message is not a JSON object; kept as a dead letter");
            store_ses(
                &state.pool,
                &message_id,
                "Invalid",
                &raw_message,
                Some(("ignored", "Message is not a JSON object")),
            )
            .await?;
            "dead_letter"
        }
    };
    state.counters.webhook("ses", outcome);
    Ok(Json(json!({ "received": true, "outcome": outcome })).into_response())
}

/// Confirms an SNS subscription by fetching its SubscribeURL once, following no redirect.
async fn confirm_subscription(state: &AppState, url: &url::Url) -> Result<(), ApiError> {
    let response = state
        .ses
        .http
        .get(url.clone())
        .send()
        .await
        .map_err(|error| {
            warn!(%error, "fetching the SNS SubscribeURL failed");
            ApiError::BadRequest {
                code: "confirmation_failed",
                message: "the subscription could not be confirmed; SNS will resend it".to_owned(),
            }
        })?;
    if !response.status().is_success() {
        warn!(status = %response.status(), "the SNS SubscribeURL returned an error status");
        return Err(ApiError::BadRequest {
            code: "confirmation_failed",
            message: format!("the SubscribeURL returned status {}", response.status()),
        });
    }
    Ok(())
}
