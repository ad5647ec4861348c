//! Login sessions. A session id is 256 random bits, kept by the browser in an `HttpOnly`,
//! `SameSite=Strict` cookie that is `Secure` outside development. The database stores only the
//! id's SHA-256, with the token's subject, its dashboard scope and the session's CSRF token. A
//! session ends at logout, after [`MAX_SESSION_AGE`], or when the login token expires, whichever
//! comes first.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::error::DashboardError;
use crate::{Access, DashboardState, VerifiedToken, csrf};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "duespark_dashboard_session";
/// Maximum age of a session, however long the login token stays valid.
pub const MAX_SESSION_AGE: Duration = Duration::hours(8);

/// A logged-in person.
#[derive(Debug, Clone)]
pub struct Session {
    id_hash: String,
    pub subject: String,
    pub access: Access,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.access == Access::Admin
    }

    /// Fails with 403 unless the form carries this session's CSRF token.
    pub fn check_csrf(&self, submitted: Option<&str>) -> Result<(), DashboardError> {
        if csrf::tokens_match(&self.csrf_token, submitted) {
            Ok(())
        } else {
            Err(DashboardError::CsrfRejected)
        }
    }

    /// Fails with 403 unless the session has `dashboard:admin`.
    pub fn require_admin(&self) -> Result<(), DashboardError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(DashboardError::Forbidden(format!(
                "this action needs the dashboard:admin scope, and {} logged in with {}",
                self.subject,
                self.access.scope()
            )))
        }
    }
}

/// Creates a session for a verified token with dashboard access; returns the session id for the
/// cookie and the session. Expired sessions of everyone are deleted on the way.
pub async fn create(
    state: &DashboardState,
    token: &VerifiedToken,
    access: Access,
) -> Result<(String, Session), DashboardError> {
    let id = csrf::new_token();
    let session = Session {
        id_hash: hash_id(&id),
        subject: token.subject.clone(),
        access,
        csrf_token: csrf::new_token(),
        expires_at: expiry(Utc::now(), token.expires_at),
    };

    sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= now()")
        .execute(state.pool())
        .await?;
    sqlx::query(
        r#"
        INSERT INTO dashboard_sessions (id_hash, subject, scope, csrf_token, expires_at)
        VALUES ($1, $2, $3, $4, $5)
        "#,
    )
    .bind(&session.id_hash)
    .bind(&session.subject)
    .bind(access.scope())
    .bind(&session.csrf_token)
    .bind(session.expires_at)
    .execute(state.pool())
    .await?;
    Ok((id, session))
}

/// Ends a session.
pub async fn delete(state: &DashboardState, session: &Session) -> Result<(), DashboardError> {
    sqlx::query("DELETE FROM dashboard_sessions WHERE id_hash = $1")
        .bind(&session.id_hash)
        .execute(state.pool())
        .await?;
    Ok(())
}

/// Reads the session whose id the request's cookie carries, if it exists and has not expired.
async fn load(
    state: &DashboardState,
    headers: &HeaderMap,
) -> Result<Option<Session>, DashboardError> {
    let Some(id) = read_cookie(headers, SESSION_COOKIE).filter(|id| csrf::is_well_formed(id))
    else {
        return Ok(None);
    };
    let row: Option<(String, String, String, DateTime<Utc>)> = sqlx::query_as(
        r#"
        SELECT subject, scope, csrf_token, expires_at
        FROM dashboard_sessions
        WHERE id_hash = $1 AND expires_at > now()
        "#,
    )
    .bind(hash_id(id))
    .fetch_optional(state.pool())
    .await?;
    Ok(row.and_then(|(subject, scope, csrf_token, expires_at)| {
        Some(Session {
            id_hash: hash_id(id),
            subject,
            access: Access::from_scope(&scope)?,
            csrf_token,
            expires_at,
        })
    }))
}

impl FromRequestParts<DashboardState> for Session {
    type Rejection = DashboardError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, Self::Rejection> {
        load(state, &parts.headers)
            .await?
            .ok_or(DashboardError::LoginRequired {
                redirect: parts.method == Method::GET,
            })
    }
}

/// Returns when a session that starts at `now` ends: after [`MAX_SESSION_AGE`], or earlier when
/// the login token expires first.
fn expiry(now: DateTime<Utc>, token_expires_at: DateTime<Utc>) -> DateTime<Utc> {
    (now + MAX_SESSION_AGE).min(token_expires_at)
}

fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Reads a cookie's value from the request's `Cookie` headers.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Builds a `Set-Cookie` value that the browser keeps for `max_age` and sends only to
/// `path`, never to scripts or other sites. A zero `max_age` deletes the cookie.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: Duration, secure: bool) -> String {
    let mut cookie = format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict",
        max_age.num_seconds().max(0)
    );
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

impl DashboardState {
    /// Builds the session cookie for a new session.
    pub(crate) fn session_cookie(&self, id: &str, session: &Session) -> String {
        set_cookie(
            SESSION_COOKIE,
            id,
            "/dashboard",
            session.expires_at - Utc::now(),
            self.inner.secure_cookies,
        )
    }

    /// Builds a `Set-Cookie` value that deletes the session cookie.
    pub(crate) fn clear_session_cookie(&self) -> String {
        set_cookie(
            SESSION_COOKIE,
            "",
            "/dashboard",
            Duration::zero(),
            self.inner.secure_cookies,
        )
    }

    pub(crate) fn secure_cookies(&self) -> bool {
        self.inner.secure_cookies
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn session_cookie_attributes() {
        let cookie = set_cookie(
            SESSION_COOKIE,
            "abc",
            "/dashboard",
            Duration::hours(1),
            true,
        );
        assert_eq!(
            cookie,
            "duespark_dashboard_session=abc; Path=/dashboard; Max-Age=3600; HttpOnly; SameSite=Strict; Secure"
        );
    }

    #[test]
    fn development_cookie_lacks_secure() {
        let cookie = set_cookie(
            SESSION_COOKIE,
            "abc",
            "/dashboard",
            Duration::hours(1),
            false,
        );
        assert!(!cookie.contains("Secure"), "{cookie}");
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    }

    #[test]
    fn expired_max_age_is_zero() {
        let cookie = set_cookie(
            SESSION_COOKIE,
            "",
            "/dashboard",
            Duration::seconds(-5),
            false,
        );
        assert!(cookie.contains("Max-Age=0;"), "{cookie}");
    }

    #[test]
    fn cookie_is_read_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; duespark_dashboard_session=abc123"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("other=1"));
        assert_eq!(read_cookie(&headers, SESSION_COOKIE), Some("abc123"));
        assert_eq!(read_cookie(&headers, "other"), Some("1"));
        assert_eq!(read_cookie(&headers, "missing"), None);
    }

    #[test]
    fn session_ends_with_the_token() {
        let now = Utc::now();
        let soon = now + Duration::minutes(30);
        assert_eq!(expiry(now, soon), soon);
        let much_later = now + Duration::days(30);
        assert_eq!(expiry(now, much_later), now + MAX_SESSION_AGE);
    }

    #[test]
    fn stored_hash_differs_from_the_id() {
        let id = csrf::new_token();
        let hash = hash_id(&id);
        assert_ne!(hash, id);
        assert!(csrf::is_well_formed(&hash));
    }
}
