//! Typed configuration from environment variables, checked at start-up. A bad value stops the
//! process with a message that names the variable. Secrets are wrapped so `Debug` cannot show them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use duespark_jobs::backups::S3Location;
use secrecy::{ExposeSecret, SecretString};

/// `AWS_*` variables passed to the S3 client of backups: credentials, region, endpoint and HTTP.
const AWS_VARIABLES: [&str; 12] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ALLOW_HTTP",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
];

/// The kind of deployment. Production makes more variables required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// A variable that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn invalid(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

/// The process configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub database_url: Option<SecretString>,
    /// `None` in development when `SECRET_KEY` is unset; `duespark dev` then makes a local one.
    pub secret_key: Option<SecretString>,
    pub bind: SocketAddr,
    pub worker_metrics_bind: SocketAddr,
    pub log_format: LogFormat,
    /// Bearer token that `/metrics` scrapes must send (`METRICS_TOKEN`); open when unset.
    pub metrics_token: Option<SecretString>,
    /// Error tracking: Sentry's DSN (`SENTRY_DSN`); off when unset.
    pub sentry_dsn: Option<SecretString>,
    /// The sender address; each email shows the account's name with it.
    pub mail_from: String,
    pub smtp_url: Option<SecretString>,
    pub mail_rate_per_second: f64,
    pub outbox_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub default_timezone: chrono_tz::Tz,
    pub stripe_livemode: bool,
    /// SNS topics whose SES notifications are accepted (`SES_TOPIC_ARNS`, comma-separated).
    pub ses_topic_arns: Vec<String>,
    /// Extra hosts trusted to serve SNS signing certificates and subscription confirmations, for
    /// tests only (`SES_TRUSTED_CERT_HOSTS`); refused in production.
    pub ses_trusted_cert_hosts: Option<Vec<String>>,
    pub postmark_webhook_user: Option<String>,
    pub postmark_webhook_password: Option<SecretString>,
    pub postmark_server_id: Option<i64>,
    pub stripe_api_key: Option<SecretString>,
    pub stripe_api_base: url::Url,
    /// Stripe API calls per second for the whole deployment.
    pub stripe_rate_per_second: f64,
    /// Stripe webhook endpoint secrets, comma-separated in `STRIPE_WEBHOOK_SECRETS`.
    pub stripe_webhook_secrets: Vec<SecretString>,
    pub pg_bin_dir: Option<PathBuf>,
    /// Folder of local backups (`BACKUP_DIR`).
    pub backup_dir: PathBuf,
    /// Whether `BACKUP_DIR` was set: workers take the daily backup only then.
    pub backups_scheduled: bool,
    /// S3-compatible storage for backups (`BACKUP_S3_URL` with the `AWS_*` variables).
    pub backup_s3: Option<S3Location>,
    /// How long backups are kept in each location (`BACKUP_RETENTION_DAYS`).
    pub backup_retention_days: u32,
    /// The S3 secret key and session token, kept to redact them from error reports.
    pub aws_secrets: Vec<SecretString>,
    pub worker_replicas: u32,
    /// Per-queue concurrency from `WORKER_CONCURRENCY` (`reminders=8,payments=2`).
    pub worker_concurrency: BTreeMap<String, usize>,
    pub default_concurrency: usize,
    /// Whether workers LISTEN for new jobs; off behind PgBouncer in transaction mode, where
    /// they rely on polling alone.
    pub worker_listen: bool,
}

/// Minimum length of `SECRET_KEY`, in characters.
pub const MIN_SECRET_KEY_LEN: usize = 32;

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which returns a variable's value if set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let environment = match get("DUESPARK_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                return Err(invalid(
                    "DUESPARK_ENV",
                    format!("{other:?} is not development or production"),
                ));
            }
        };
        let production = environment == Environment::Production;

        let database_url = get("DATABASE_URL")
            .map(|url| parse_database_url(&url))
            .transpose()?;
        let secret_key = get("SECRET_KEY")
            .map(|key| parse_secret_key(&key))
            .transpose()?;
        if production && secret_key.is_none() {
            return Err(invalid(
                "SECRET_KEY",
                "is required in production (32 characters or more)",
            ));
        }
        if production && database_url.is_none() {
            return Err(invalid("DATABASE_URL", "is required in production"));
        }

        let log_format = match get("LOG_FORMAT").as_deref() {
            None if production => LogFormat::Json,
            None => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(other) => {
                return Err(invalid(
                    "LOG_FORMAT",
                    format!("{other:?} is not json or text"),
                ));
            }
        };

        let mail_from = match get("MAIL_FROM") {
            Some(value) => parse_mail_from(&value)?,
            None if production => return Err(invalid("MAIL_FROM", "is required in production")),
            None => "reminders@duespark.localhost".to_owned(),
        };
        let smtp_url = get("SMTP_URL")
            .map(|url| parse_smtp_url(&url))
            .transpose()?;

        let stripe_livemode = match get("STRIPE_LIVEMODE").as_deref() {
            Some("true") => true,
            Some("false") => false,
            None if production => {
                return Err(invalid(
                    "STRIPE_LIVEMODE",
                    "is required in production (true or false)",
                ));
            }
            None => false,
            Some(other) => {
                return Err(invalid(
                    "STRIPE_LIVEMODE",
                    format!("{other:?} is not true or false"),
                ));
            }
        };

        let stripe_webhook_secrets: Vec<SecretString> = get("STRIPE_WEBHOOK_SECRETS")
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|secret| !secret.is_empty())
                    .map(|secret| SecretString::from(secret.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let list = |value: Option<String>| -> Vec<String> {
            value
                .map(|value| {
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let ses_topic_arns = list(get("SES_TOPIC_ARNS"));
        let ses_trusted_cert_hosts = get("SES_TRUSTED_CERT_HOSTS").map(|value| list(Some(value)));
        if production && ses_trusted_cert_hosts.is_some() {
            return Err(invalid(
                "SES_TRUSTED_CERT_HOSTS",
                "is for tests only and must not be set in production",
            ));
        }
        let worker_listen = match get("WORKER_LISTEN").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(invalid(
                    "WORKER_LISTEN",
                    format!("{other:?} is not true or false"),
                ));
            }
        };
        let metrics_token = get("METRICS_TOKEN")
            .map(|token| {
                if token.trim().len() < 16 {
                    Err(invalid(
                        "METRICS_TOKEN",
                        "must be at least 16 characters; generate one with `openssl rand -hex 32`",
                    ))
                } else {
                    Ok(SecretString::from(token.trim().to_string()))
                }
            })
            .transpose()?;
        let sentry_dsn = get("SENTRY_DSN")
            .map(|dsn| parse_sentry_dsn(dsn.trim()))
            .transpose()?;
        let backup_s3 = get("BACKUP_S3_URL")
            .map(|url| {
                let aws: Vec<(String, String)> = AWS_VARIABLES
                    .iter()
                    .filter_map(|name| get(name).map(|value| ((*name).to_string(), value)))
                    .collect();
                S3Location::new(url.trim(), &aws)
                    .map_err(|message| invalid("BACKUP_S3_URL", message))
            })
            .transpose()?;
        let worker_concurrency = get("WORKER_CONCURRENCY")
            .map(|value| parse_concurrency(&value))
            .transpose()?
            .unwrap_or_default();

        Ok(Config {
            environment,
            database_url,
            secret_key,
            bind: parse(
                get("DUESPARK_BIND"),
                "DUESPARK_BIND",
                "127.0.0.1:8080",
                "a socket address such as 127.0.0.1:8080",
            )?,
            worker_metrics_bind: parse(
                get("WORKER_METRICS_BIND"),
                "WORKER_METRICS_BIND",
                "127.0.0.1:9464",
                "a socket address such as 127.0.0.1:9464",
            )?,
            log_format,
            mail_from,
            smtp_url,
            mail_rate_per_second: parse_positive(
                get("MAIL_RATE_PER_SECOND"),
                "MAIL_RATE_PER_SECOND",
                10.0,
            )?,
            outbox_dir: get("OUTBOX_DIR")
                .map_or_else(|| PathBuf::from("var/outbox"), PathBuf::from),
            templates_dir: get("TEMPLATES_DIR")
                .map_or_else(|| PathBuf::from("templates"), PathBuf::from),
            default_timezone: parse(
                get("DEFAULT_TIMEZONE"),
                "DEFAULT_TIMEZONE",
                "UTC",
                "an IANA time zone such as Europe/Berlin",
            )?,
            stripe_livemode,
            stripe_webhook_secrets,
            ses_topic_arns,
            ses_trusted_cert_hosts,
            postmark_webhook_user: get("POSTMARK_WEBHOOK_USER"),
            postmark_webhook_password: get("POSTMARK_WEBHOOK_PASSWORD").map(SecretString::from),
            postmark_server_id: get("POSTMARK_SERVER_ID")
                .map(|value| {
                    value.trim().parse::<i64>().map_err(|_| {
                        invalid(
                            "POSTMARK_SERVER_ID",
                            format!("{value:?} is not a whole number"),
                        )
                    })
                })
                .transpose()?,
            stripe_api_key: get("STRIPE_API_KEY").map(SecretString::from),
            stripe_api_base: parse_stripe_api_base(get("STRIPE_API_BASE"))?,
            stripe_rate_per_second: parse_positive(
                get("STRIPE_RATE_PER_SECOND"),
                "STRIPE_RATE_PER_SECOND",
                20.0,
            )?,
            pg_bin_dir: get("PG_BIN_DIR").map(PathBuf::from),
            backup_dir: get("BACKUP_DIR")
                .map_or_else(|| PathBuf::from("var/backups"), PathBuf::from),
            backups_scheduled: get("BACKUP_DIR").is_some(),
            backup_s3,
            aws_secrets: ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
                .iter()
                .filter_map(|name| get(name).map(SecretString::from))
                .collect(),
            metrics_token,
            sentry_dsn,
            backup_retention_days: parse(
                get("BACKUP_RETENTION_DAYS"),
                "BACKUP_RETENTION_DAYS",
                "30",
                "a whole number of days from 1 to 3650",
            )
            .and_then(|days: u32| {
                if (1..=3650).contains(&days) {
                    Ok(days)
                } else {
                    Err(invalid(
                        "BACKUP_RETENTION_DAYS",
                        format!("{days} is not a number of days from 1 to 3650"),
                    ))
                }
            })?,
            worker_replicas: parse(
                get("WORKER_REPLICAS"),
                "WORKER_REPLICAS",
                "1",
                "a whole number of 1 or more",
            )
            .and_then(|replicas: u32| {
                if replicas >= 1 {
                    Ok(replicas)
                } else {
                    Err(invalid("WORKER_REPLICAS", "must be 1 or more"))
                }
            })?,
            worker_concurrency,
            worker_listen,
            default_concurrency: parse(
                get("WORKER_DEFAULT_CONCURRENCY"),
                "WORKER_DEFAULT_CONCURRENCY",
                "4",
                "a whole number of 1 or more",
            )?,
        })
    }

    /// This process's share of the Stripe API rate limit.
    pub fn stripe_rate_per_process(&self) -> f64 {
        self.stripe_rate_per_second / f64::from(self.worker_replicas)
    }

    /// This process's share of the mail rate limit: the rate divided by `WORKER_REPLICAS`.
    pub fn mail_rate_per_process(&self) -> f64 {
        self.mail_rate_per_second / f64::from(self.worker_replicas)
    }

    /// Builds the error tracking settings when `SENTRY_DSN` is set, with every secret of this
    /// configuration to redact from events.
    pub fn error_tracking(&self) -> Option<crate::logging::ErrorTracking> {
        let dsn = self.sentry_dsn.as_ref()?.expose_secret().to_string();
        let mut secrets: Vec<String> = [
            &self.secret_key,
            &self.stripe_api_key,
            &self.postmark_webhook_password,
            &self.metrics_token,
        ]
        .into_iter()
        .flatten()
        .chain(&self.stripe_webhook_secrets)
        .chain(&self.aws_secrets)
        .map(|secret| secret.expose_secret().to_string())
        .collect();
        for url in [&self.database_url, &self.smtp_url].into_iter().flatten() {
            if let Ok(url) = url::Url::parse(url.expose_secret())
                && let Some(password) = url.password()
            {
                secrets.push(password.to_string());
                secrets.push(
                    percent_encoding::percent_decode_str(password)
                        .decode_utf8_lossy()
                        .into_owned(),
                );
            }
        }
        Some(crate::logging::ErrorTracking {
            dsn,
            environment: match self.environment {
                Environment::Development => "development",
                Environment::Production => "production",
            },
            secrets,
        })
    }

    /// Builds the backup settings of jobs and commands.
    pub fn backup_settings(&self) -> duespark_jobs::backups::BackupSettings {
        duespark_jobs::backups::BackupSettings {
            dir: self.backup_dir.clone(),
            s3: self.backup_s3.clone(),
            pg_bin_dir: self.pg_bin_dir.clone(),
            retention: std::time::Duration::from_secs(
                u64::from(self.backup_retention_days) * 24 * 3600,
            ),
            rpo: duespark_jobs::backups::DEFAULT_RPO,
        }
    }

    /// Builds the SES (SNS) settings for the API.
    pub fn sns_config(&self) -> duespark_jobs::bounces::sns::SnsConfig {
        duespark_jobs::bounces::sns::SnsConfig {
            topic_arns: self.ses_topic_arns.clone(),
            trusted_cert_hosts: self.ses_trusted_cert_hosts.clone(),
        }
    }

    /// Builds the Postmark webhook settings for the API.
    pub fn postmark_webhooks(&self) -> duespark_api::PostmarkWebhooks {
        duespark_api::PostmarkWebhooks {
            user: self.postmark_webhook_user.clone(),
            password: self
                .postmark_webhook_password
                .as_ref()
                .map(|password| password.expose_secret().to_owned()),
            server_id: self.postmark_server_id,
        }
    }

    /// Returns the Stripe webhook secrets in plain text, for the signature check.
    pub fn stripe_webhook_secrets(&self) -> Vec<String> {
        self.stripe_webhook_secrets
            .iter()
            .map(|secret| secret.expose_secret().to_owned())
            .collect()
    }

    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_ref().map(|url| url.expose_secret())
    }
}

fn parse<T: FromStr>(
    value: Option<String>,
    variable: &'static str,
    default: &str,
    expected: &str,
) -> Result<T, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    value
        .trim()
        .parse()
        .map_err(|_| invalid(variable, format!("{value:?} is not {expected}")))
}

fn parse_positive(
    value: Option<String>,
    variable: &'static str,
    default: f64,
) -> Result<f64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        _ => Err(invalid(
            variable,
            format!("{value:?} is not a number greater than 0"),
        )),
    }
}

fn parse_database_url(value: &str) -> Result<SecretString, ConfigError> {
    let valid = url::Url::parse(value)
        .ok()
        .filter(|url| matches!(url.scheme(), "postgres" | "postgresql"))
        .and_then(|_| sqlx::postgres::PgConnectOptions::from_str(value).ok())
        .is_some();
    if !valid {
        return Err(invalid(
            "DATABASE_URL",
            "is not a URL of the form postgres://user:password@host:5432/database",
        ));
    }
    Ok(SecretString::from(value.to_owned()))
}

fn parse_sentry_dsn(value: &str) -> Result<SecretString, ConfigError> {
    let problem = match url::Url::parse(value) {
        Err(_) => Some("is not a URL"),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            Some("must be an http or https URL")
        }
        Ok(url) if url.username().is_empty() => Some("has no public key before the host"),
        Ok(url) if url.path().trim_matches('/').is_empty() => Some("has no project id in its path"),
        Ok(_) => None,
    };
    match problem {
        // The DSN contains its key, so the message does not repeat the value.
        Some(problem) => Err(invalid(
            "SENTRY_DSN",
            format!("{problem}; expected https://<key>@<host>/<project id>"),
        )),
        None => Ok(SecretString::from(value.to_string())),
    }
}

fn parse_stripe_api_base(value: Option<String>) -> Result<url::Url, ConfigError> {
    let value = value.unwrap_or_else(|| "https://api.stripe.com".to_owned());
    url::Url::parse(&value)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
        .ok_or_else(|| {
            invalid(
                "STRIPE_API_BASE",
                format!("{value:?} is not an http or https URL such as https://api.stripe.com"),
            )
        })
}

fn parse_secret_key(value: &str) -> Result<SecretString, ConfigError> {
    if value.chars().count() < MIN_SECRET_KEY_LEN {
        return Err(invalid(
            "SECRET_KEY",
            format!(
                "must be at least {MIN_SECRET_KEY_LEN} characters; generate one with `openssl rand -hex 32`"
            ),
        ));
    }
    Ok(SecretString::from(value.to_owned()))
}

fn parse_smtp_url(value: &str) -> Result<SecretString, ConfigError> {
    let valid = url::Url::parse(value).ok().filter(|url| {
        matches!(url.scheme(), "smtp" | "smtps")
            && url.host_str().is_some_and(|host| !host.is_empty())
    });
    if valid.is_none() {
        return Err(invalid(
            "SMTP_URL",
            "is not a URL of the form smtp://user:password@host:587?tls=required or smtps://host:465",
        ));
    }
    Ok(SecretString::from(value.to_owned()))
}

/// Accepts `address` or `Name <address>`; only the address is kept, because each email shows the
/// account's own sender name.
fn parse_mail_from(value: &str) -> Result<String, ConfigError> {
    let address = match (value.find('<'), value.rfind('>')) {
        (Some(start), Some(end)) if start < end => value[start + 1..end].trim(),
        _ => value.trim(),
    };
    if lettre::Address::from_str(address).is_err() {
        return Err(invalid(
            "MAIL_FROM",
            format!("{value:?} is not an email address such as reminders@example.com"),
        ));
    }
    Ok(address.to_owned())
}

fn parse_concurrency(value: &str) -> Result<BTreeMap<String, usize>, ConfigError> {
    let mut map = BTreeMap::new();
    for pair in value
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let parsed = pair.split_once('=').and_then(|(queue, count)| {
            Some((
                queue.trim().to_owned(),
                count
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|count| *count > 0)?,
            ))
        });
        let Some((queue, count)) = parsed else {
            return Err(invalid(
                "WORKER_CONCURRENCY",
                format!("{pair:?} is not of the form queue=N with N of 1 or more"),
            ));
        };
        map.insert(queue, count);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn development_defaults() {
        let config = config(&[]).unwrap();
        assert_eq!(config.environment, Environment::Development);
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.worker_metrics_bind.to_string(), "127.0.0.1:9464");
        assert!(config.smtp_url.is_none());
    }

    #[test]
    fn backup_settings_are_checked() {
        let defaults = config(&[]).unwrap();
        assert_eq!(defaults.backup_retention_days, 30);
        assert!(defaults.backup_s3.is_none());

        for days in ["0", "3651", "thirty"] {
            let error = config(&[("BACKUP_RETENTION_DAYS", days)]).unwrap_err();
            assert_eq!(error.variable, "BACKUP_RETENTION_DAYS", "{days}");
        }
        for url in ["https://bucket/x", "s3://", "bucket/prefix"] {
            let error = config(&[("BACKUP_S3_URL", url)]).unwrap_err();
            assert_eq!(error.variable, "BACKUP_S3_URL", "{url}");
        }

        let with_s3 = config(&[
            ("BACKUP_S3_URL", "s3://backups/duespark"),
            ("AWS_SECRET_ACCESS_KEY", "never-shown-secret"),
            ("AWS_ACCESS_KEY_ID", "key"),
            ("AWS_REGION", "eu-west-1"),
        ])
        .unwrap();
        let settings = with_s3.backup_settings();
        assert_eq!(settings.s3.as_ref().unwrap().url(), "s3://backups/duespark");
        assert!(!format!("{with_s3:?} {settings:?}").contains("never-shown-secret"));
    }

    #[test]
    fn short_secret_key_names_the_variable() {
        let error = config(&[("SECRET_KEY", "too-short")]).unwrap_err();
        assert_eq!(error.variable, "SECRET_KEY");
    }

    #[test]
    fn malformed_urls_name_the_variable() {
        assert_eq!(
            config(&[("DATABASE_URL", "mysql://localhost/db")])
                .unwrap_err()
                .variable,
            "DATABASE_URL"
        );
        assert_eq!(
            config(&[("DATABASE_URL", "not a url")])
                .unwrap_err()
                .variable,
            "DATABASE_URL"
        );
        assert_eq!(
            config(&[("SMTP_URL", "http://mail.example.com")])
                .unwrap_err()
                .variable,
            "SMTP_URL"
        );
    }

    #[test]
    fn unknown_time_zone_names_the_variable() {
        assert_eq!(
            config(&[("DEFAULT_TIMEZONE", "Mars/Olympus")])
                .unwrap_err()
                .variable,
            "DEFAULT_TIMEZONE"
        );
    }

    #[test]
    fn production_requires_secrets() {
        let error = config(&[("DUESPARK_ENV", "production")]).unwrap_err();
        assert_eq!(error.variable, "SECRET_KEY");
    }

    #[test]
    fn secrets_are_hidden_from_debug() {
        let config = config(&[
            ("SECRET_KEY", "a-very-secret-key-of-32-characters!!"),
            (
                "SMTP_URL",
                "smtp://user:hunter2hunter2@mail.example.com:587",
            ),
        ])
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("a-very-secret-key"));
        assert!(!printed.contains("hunter2hunter2"));
    }

    #[test]
    fn worker_concurrency_parses() {
        let config = config(&[("WORKER_CONCURRENCY", "reminders=8, payments=2")]).unwrap();
        assert_eq!(config.worker_concurrency.get("reminders"), Some(&8));
        assert!(super::parse_concurrency("reminders=0").is_err());
    }

    #[test]
    fn worker_listen_parses() {
        assert!(config(&[]).unwrap().worker_listen);
        assert!(!config(&[("WORKER_LISTEN", "false")]).unwrap().worker_listen);
        assert_eq!(
            config(&[("WORKER_LISTEN", "no")]).unwrap_err().variable,
            "WORKER_LISTEN"
        );
    }

    #[test]
    fn mail_from_keeps_the_address() {
        assert_eq!(
            parse_mail_from("DueSpark <reminders@example.com>").unwrap(),
            "reminders@example.com"
        );
        assert!(parse_mail_from("nobody").is_err());
    }
}
