//! Wiring of the dashboard: its state, built from the API's, with a token verifier that applies
//! the API's own rules for signatures, expiry and scopes.

use chrono::DateTime;
use duespark_dashboard::{Access, DashboardState, VerifiedToken};

use crate::AppState;
use crate::auth::{Claims, Scope, verify_token};

/// Builds the dashboard's state from the API's.
pub fn state(app: &AppState) -> DashboardState {
    let key = app.secret_key.clone();
    let verifier = move |token: &str| {
        let claims = verify_token(&key, token).map_err(|error| error.to_string())?;
        Ok(verified(claims))
    };
    DashboardState::new(
        app.pool.clone(),
        app.store.clone(),
        verifier,
        app.secure_cookies,
    )
}

/// Maps verified claims to what the dashboard needs; `dashboard:admin` includes reading.
fn verified(claims: Claims) -> VerifiedToken {
    let access = if claims.has_scope(Scope::DashboardAdmin) {
        Some(Access::Admin)
    } else if claims.has_scope(Scope::DashboardRead) {
        Some(Access::Read)
    } else {
        None
    };
    VerifiedToken {
        expires_at: i64::try_from(claims.exp)
            .ok()
            .and_then(|exp| DateTime::from_timestamp(exp, 0))
            .unwrap_or(DateTime::<chrono::Utc>::MAX_UTC),
        subject: claims.sub,
        access,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scope: &str) -> Claims {
        Claims {
            sub: "ops".into(),
            exp: 1_900_000_000,
            scope: scope.into(),
        }
    }

    #[test]
    fn dashboard_scopes_map_to_access() {
        assert_eq!(
            verified(claims("dashboard:admin")).access,
            Some(Access::Admin)
        );
        assert_eq!(
            verified(claims("jobs:read dashboard:read")).access,
            Some(Access::Read)
        );
        assert_eq!(
            verified(claims("dashboard:read dashboard:admin")).access,
            Some(Access::Admin)
        );
        assert_eq!(verified(claims("jobs:read jobs:write")).access, None);
    }

    #[test]
    fn expiry_is_kept() {
        let token = verified(claims("dashboard:read"));
        assert_eq!(token.expires_at.timestamp(), 1_900_000_000);
        assert_eq!(token.subject, "ops");
    }
}
