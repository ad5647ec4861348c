//! Bearer tokens: HS256 JWTs with `sub`, `exp` and a space-separated `scope` claim.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// A permission a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Upserts and enqueue.
    JobsWrite,
    JobsRead,
    DashboardRead,
    /// Job actions, backups and suppression changes.
    DashboardAdmin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::JobsWrite,
        Scope::JobsRead,
        Scope::DashboardRead,
        Scope::DashboardAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::JobsWrite => "jobs:write",
            Scope::JobsRead => "jobs:read",
            Scope::DashboardRead => "dashboard:read",
            Scope::DashboardAdmin => "dashboard:admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == value)
            .ok_or_else(|| format!("unknown scope {value:?}: use jobs:write, jobs:read, dashboard:read or dashboard:admin"))
    }
}

/// The claims of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// Space-separated scopes.
    pub scope: String,
}

impl Claims {
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scope
            .split(' ')
            .any(|granted| granted == scope.as_str())
    }

    /// Fails with 403 unless the token grants `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope.as_str()))
        }
    }
}

/// A token that could not be issued or verified.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(String);

/// Issues a token for `subject` with the given scopes, valid for `ttl`.
pub fn issue_token(
    secret_key: &[u8],
    subject: &str,
    scopes: &[Scope],
    ttl: Duration,
) -> Result<String, TokenError> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: subject.to_owned(),
        exp: now + ttl.as_secs(),
        scope: scopes
            .iter()
            .map(|scope| scope.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    };
    let key = EncodingKey::from_secret(secret_key)
        .map_err(|error| TokenError(format!("invalid signing key: {error}")))?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|error| TokenError(format!("failed to sign the token: {error}")))
}

/// Verifies a token's signature and expiry and returns its claims.
pub fn verify_token(secret_key: &[u8], token: &str) -> Result<Claims, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Tolerates 5 s of clock difference between the token's issuer and this server.
    validation.leeway = 5;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let key = DecodingKey::from_secret(secret_key)
        .map_err(|error| TokenError(format!("invalid signing key: {error}")))?;
    jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|error| {
            use jsonwebtoken::errors::ErrorKind;
            let reason = match error.kind() {
                ErrorKind::ExpiredSignature => "the token has expired; issue a new one",
                ErrorKind::InvalidSignature => "the token's signature does not match SECRET_KEY",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks the sub or exp claim",
                _ => "the token is not a valid HS256 JWT",
            };
            TokenError(reason.to_owned())
        })
}

/// Compares two secrets in time that depends on neither their contents nor their lengths, by
/// comparing their SHA-256 digests.
pub(crate) fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |difference, (x, y)| difference | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn token_round_trip() {
        let token = issue_token(
            KEY,
            "app",
            &[Scope::JobsWrite, Scope::JobsRead],
            Duration::from_secs(60),
        )
        .unwrap();
        let claims = verify_token(KEY, &token).unwrap();
        assert_eq!(claims.sub, "app");
        assert!(claims.has_scope(Scope::JobsWrite));
        assert!(!claims.has_scope(Scope::DashboardAdmin));
    }

    #[test]
    fn token_with_other_key_is_rejected() {
        let token = issue_token(KEY, "app", &[Scope::JobsRead], Duration::from_secs(60)).unwrap();
        assert!(verify_token(b"another key of thirty-two bytes!", &token).is_err());
    }
}
