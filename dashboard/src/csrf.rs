//! CSRF protection. Every session has a random synchronizer token that each form posts back as
//! `csrf_token`. The login form has no session yet, so it compares its field with a double-submit
//! cookie. Both cookies are `SameSite=Strict` as well.

use subtle::ConstantTimeEq;

/// Name of the cookie that carries the login form's token.
pub const LOGIN_COOKIE: &str = "duespark_dashboard_login";

/// Makes a new token: 256 random bits in lowercase hex.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Returns whether `value` has the form of a token from [`new_token`].
pub fn is_well_formed(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// Compares the token a form sent with the expected one in constant time. A missing or empty
/// token never matches.
pub fn tokens_match(expected: &str, submitted: Option<&str>) -> bool {
    let Some(submitted) = submitted else {
        return false;
    };
    if expected.is_empty() || submitted.len() != expected.len() {
        return false;
    }
    expected.as_bytes().ct_eq(submitted.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_are_well_formed_and_distinct() {
        let (first, second) = (new_token(), new_token());
        assert!(is_well_formed(&first), "{first}");
        assert_ne!(first, second);
    }

    #[test]
    fn malformed_tokens_are_detected() {
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&"A".repeat(64)));
        assert!(!is_well_formed(&"a".repeat(63)));
    }

    #[test]
    fn token_comparison() {
        let expected = new_token();
        assert!(tokens_match(&expected, Some(&expected)));
        assert!(!tokens_match(&expected, None));
        assert!(!tokens_match(&expected, Some("")));
        assert!(!tokens_match(&expected, Some(&expected[..63])));
        assert!(!tokens_match(&expected, Some(&new_token())));
        assert!(!tokens_match("", Some("")));
    }
}
