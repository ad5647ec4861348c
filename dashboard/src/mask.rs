//! Masking of secrets in what the dashboard shows: job payloads and error messages.
//!
//! A payload value is masked when its key looks like a secret (`password`, `secret`, `token`,
//! `api_key`, `authorization` and the like, in any case and with `_`, `-` or no separator), at any
//! depth. String values anywhere are masked when they look like a credential by themselves: Stripe
//! keys (`sk_`, `rk_`, `whsec_`), bearer tokens and JWTs. Error messages get the value rule.

use serde_json::{Map, Value};

/// The text that replaces a masked value.
pub const MASK: &str = "********";

/// Fragments of a key, lowercased with `_` and `-` removed, that mark its value as secret.
const SECRET_KEY_FRAGMENTS: [&str; 9] = [
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "privatekey",
    "credential",
    "signature",
];

/// Prefixes of credentials that are recognisable by their value.
const SECRET_VALUE_PREFIXES: [&str; 6] = [
    "sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_", "eyJ",
];

/// Returns a copy of `value` with every secret-looking value replaced by [`MASK`].
pub fn mask_secrets(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            let masked: Map<String, Value> = object
                .iter()
                .map(|(key, value)| {
                    let value = if is_secret_key(key) {
                        Value::String(MASK.to_owned())
                    } else {
                        mask_secrets(value)
                    };
                    (key.clone(), value)
                })
                .collect();
            Value::Object(masked)
        }
        Value::Array(items) => Value::Array(items.iter().map(mask_secrets).collect()),
        Value::String(text) => Value::String(mask_text(text)),
        other => other.clone(),
    }
}

/// Returns whether a key names a secret.
fn is_secret_key(key: &str) -> bool {
    let normalized: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_KEY_FRAGMENTS
        .iter()
        .any(|fragment| normalized.contains(fragment))
}

/// Replaces each whitespace-separated word of `text` that looks like a credential, and the word
/// after `Bearer`, with [`MASK`].
pub fn mask_text(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut after_bearer = false;
    for (index, word) in text.split(' ').enumerate() {
        if index > 0 {
            masked.push(' ');
        }
        if after_bearer && !word.is_empty() || looks_like_credential(word) {
            masked.push_str(MASK);
        } else {
            masked.push_str(word);
        }
        after_bearer = word.eq_ignore_ascii_case("bearer");
    }
    masked
}

fn looks_like_credential(word: &str) -> bool {
    let word = word.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | ';' | '(' | ')'));
    SECRET_VALUE_PREFIXES.iter().any(|prefix| {
        word.starts_with(prefix) && word.len() > prefix.len() + 8
            // A JWT is three dot-separated parts; "eyJ" alone is too common a start to mask.
            && (*prefix != "eyJ" || word.matches('.').count() == 2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keys_are_masked_at_any_depth() {
        let payload = json!({
            "invoice_id": "inv-1",
            "Password": "hunter2",
            "smtp": {"user": "mail", "PASSWORD": "x", "api-key": "k", "ApiKey": "k2"},
            "headers": [{"Authorization": "Basic abc"}, {"accept": "json"}],
            "client_secret": {"nested": "object"},
            "refresh_token": 42,
            "X-Signature": "sig",
        });
        let masked = mask_secrets(&payload);
        assert_eq!(masked["invoice_id"], "inv-1");
        assert_eq!(masked["Password"], MASK);
        assert_eq!(masked["smtp"]["user"], "mail");
        assert_eq!(masked["smtp"]["PASSWORD"], MASK);
        assert_eq!(masked["smtp"]["api-key"], MASK);
        assert_eq!(masked["smtp"]["ApiKey"], MASK);
        assert_eq!(masked["headers"][0]["Authorization"], MASK);
        assert_eq!(masked["headers"][1]["accept"], "json");
        assert_eq!(masked["client_secret"], MASK);
        assert_eq!(masked["refresh_token"], MASK);
        assert_eq!(masked["X-Signature"], MASK);
    }

    #[test]
    fn ordinary_keys_are_kept() {
        let payload = json!({"event_id": "evt_1", "email_event_id": 7, "stripe_checkout_session_id": "cs_1", "reminder_id": 3});
        assert_eq!(mask_secrets(&payload), payload);
    }

    #[test]
    fn credential_values_are_masked_under_any_key() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLWJ5dGVz";
        let payload = json!({"note": "sk_live_51HxAbCdEfGhIjKl", "list": ["whsec_abcdefghijklmnop", jwt, "plain"]});
        let masked = mask_secrets(&payload);
        assert_eq!(masked["note"], MASK);
        assert_eq!(masked["list"][0], MASK);
        assert_eq!(masked["list"][1], MASK);
        assert_eq!(masked["list"][2], "plain");
    }

    #[test]
    fn messages_lose_credentials_only() {
        assert_eq!(
            mask_text("request failed: Authorization: Bearer abc.def rejected"),
            format!("request failed: Authorization: Bearer {MASK} rejected")
        );
        assert_eq!(
            mask_text("Stripe rejected key \"sk_test_0123456789abc\", status 401"),
            format!("Stripe rejected key {MASK} status 401")
        );
        assert_eq!(mask_text("connection refused"), "connection refused");
        assert_eq!(mask_text("eyJ is a prefix"), "eyJ is a prefix");
    }
}
