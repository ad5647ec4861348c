//! SMTP delivery over lettre's connection API, with pooled connections and step-aware failures.
//!
//! lettre 0.11's `AsyncSmtpTransport` runs connecting, MAIL FROM, RCPT TO, DATA and the message
//! data inside one `send` call, and its errors do not name the failed step. A network error while
//! reading the greeting and one while waiting for the reply to the message data have the same
//! error kind. Its async transport also applies its timeout only to the TCP connect, and a send
//! cancelled by an outer timeout returns the half-used connection to its pool. So this module
//! drives the session step by step with lettre's public `AsyncSmtpConnection`, bounds every step
//! with a timeout, keeps its own small pool, and classifies each failure by the step it happened
//! in. The connection URL format and defaults match lettre's `from_url`.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;

use super::SendError;

/// The maximum number of idle connections kept for reuse, as in lettre's pool. Connections beyond
/// it are closed after their send.
const MAX_IDLE_CONNECTIONS: usize = 10;

/// A pooled connection idle for longer is closed instead of reused, because servers drop idle
/// sessions. Same as lettre's pool.
const MAX_IDLE_TIME: Duration = Duration::from_secs(60);

/// The error for an SMTP URL that cannot be used. Messages never contain the URL, which may hold a
/// password.
#[derive(Debug, thiserror::Error)]
pub enum SmtpUrlError {
    #[error("invalid SMTP URL: {0}")]
    Invalid(#[from] url::ParseError),

    #[error("invalid SMTP URL: no host")]
    MissingHost,

    #[error(
        "unsupported SMTP URL scheme {scheme:?} with tls={tls:?}: expected smtps://, smtp://?tls=required, smtp://?tls=opportunistic or smtp://"
    )]
    UnsupportedScheme { scheme: String, tls: Option<String> },

    #[error("invalid SMTP URL: the user name or password is not percent-encoded UTF-8")]
    InvalidCredentials,

    #[error("failed to set up TLS for SMTP host {host}: {source}")]
    Tls {
        host: String,
        #[source]
        source: SmtpError,
    },
}

/// The encryption of the connection.
enum TlsMode {
    /// No TLS at all.
    Plain,
    /// STARTTLS when the server offers it, plain text otherwise.
    Opportunistic(TlsParameters),
    /// STARTTLS, failing when the server does not offer it.
    Required(TlsParameters),
    /// TLS from the first byte (SMTPS).
    Implicit(TlsParameters),
}

impl TlsMode {
    fn name(&self) -> &'static str {
        match self {
            TlsMode::Plain => "none",
            TlsMode::Opportunistic(_) => "opportunistic STARTTLS",
            TlsMode::Required(_) => "required STARTTLS",
            TlsMode::Implicit(_) => "implicit TLS",
        }
    }
}

/// Connection settings parsed from the SMTP URL.
struct SmtpConfig {
    host: String,
    port: u16,
    tls: TlsMode,
    hello_name: ClientId,
    credentials: Option<Credentials>,
    step_timeout: Duration,
}

impl SmtpConfig {
    /// Parses a URL the way lettre 0.11's `from_url` does: the scheme and the `tls` query
    /// parameter choose the TLS mode and default port, a path sets the EHLO name, and credentials
    /// are used only when the URL has a password.
    fn from_url(url: &str, step_timeout: Duration) -> Result<SmtpConfig, SmtpUrlError> {
        let url = url::Url::parse(url)?;
        let host = url.host_str().ok_or(SmtpUrlError::MissingHost)?.to_owned();
        let tls_parameter = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());

        let tls_parameters = || {
            TlsParameters::new(host.clone()).map_err(|source| SmtpUrlError::Tls {
                host: host.clone(),
                source,
            })
        };
        let (tls, default_port) = match (url.scheme(), tls_parameter.as_deref()) {
            ("smtp", None) => (TlsMode::Plain, 25),
            ("smtp", Some("required")) => (TlsMode::Required(tls_parameters()?), 587),
            ("smtp", Some("opportunistic")) => (TlsMode::Opportunistic(tls_parameters()?), 587),
            ("smtps", _) => (TlsMode::Implicit(tls_parameters()?), 465),
            (scheme, tls) => {
                return Err(SmtpUrlError::UnsupportedScheme {
                    scheme: scheme.to_owned(),
                    tls: tls.map(str::to_owned),
                });
            }
        };

        let hello_name = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };

        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(
                percent_decode(url.username())?,
                percent_decode(password)?,
            )),
            None => None,
        };

        Ok(SmtpConfig {
            port: url.port().unwrap_or(default_port),
            host,
            tls,
            hello_name,
            credentials,
            step_timeout,
        })
    }
}

fn percent_decode(value: &str) -> Result<String, SmtpUrlError> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| SmtpUrlError::InvalidCredentials)
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.name())
            .field("authenticated", &self.credentials.is_some())
            .field("step_timeout", &self.step_timeout)
            .finish_non_exhaustive()
    }
}

/// The step of an SMTP session in which a send failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// TCP connect, TLS, greeting, EHLO, STARTTLS and AUTH, or checking a pooled connection.
    Connect,
    MailFrom,
    RcptTo,
    Data,
    /// Sending the message data and its terminating dot, and reading the final reply.
    MessageData,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connecting",
            Step::MailFrom => "MAIL FROM",
            Step::RcptTo => "RCPT TO",
            Step::Data => "DATA",
            Step::MessageData => "the message data",
        })
    }
}

/// A failed step and its cause.
#[derive(Debug)]
struct Failure {
    step: Step,
    cause: Cause,
}

#[derive(Debug)]
enum Cause {
    Smtp(SmtpError),
    TimedOut(Duration),
    /// The message needs an SMTP extension that the server does not offer.
    Unsupported(&'static str),
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Smtp(error) => write!(f, "{error}"),
            Cause::TimedOut(limit) => write!(f, "no reply within {} s", limit.as_secs_f64()),
            Cause::Unsupported(reason) => f.write_str(reason),
        }
    }
}

impl Failure {
    /// Classifies the failure for at-most-once delivery.
    ///
    /// | step | cause | result |
    /// |---|---|---|
    /// | any | 4xx reply | `Retryable` |
    /// | connecting (greeting, EHLO, STARTTLS, AUTH) | 5xx reply | `Retryable`, because nothing about this message was refused |
    /// | MAIL FROM, RCPT TO, DATA, message data | 5xx reply | `Rejected` |
    /// | connecting, MAIL FROM, RCPT TO, DATA | network, TLS, protocol error or timeout | `Retryable`, because no message data was sent |
    /// | message data | network or protocol error, or timeout | `Uncertain` |
    /// | any | the server lacks an extension the message needs | `Rejected` |
    fn classify(&self) -> SendError {
        let step = self.step;
        match &self.cause {
            Cause::Smtp(error) if error.status().is_some() => classify_reply(step, error),
            Cause::Unsupported(reason) => SendError::Rejected(format!("{reason} ({step})")),
            cause if step == Step::MessageData => {
                // NOTE: lettre's `message()` writes the data and reads the final reply in one call.
                // It reports a failed write and a failed read with the same error kind, so a
                // failure here cannot be placed before or after the terminating dot.
                SendError::Uncertain(format!(
                    "{cause} while sending {step}, so the server may have accepted the message"
                ))
            }
            cause => SendError::Retryable(format!(
                "{cause} while {}, before any message data was sent",
                describe_step_in_progress(step)
            )),
        }
    }
}

fn describe_step_in_progress(step: Step) -> String {
    match step {
        Step::Connect => "connecting to the SMTP server".to_owned(),
        step => format!("waiting for the reply to {step}"),
    }
}

/// Classifies a 4xx or 5xx reply, keeping the server's code and text in the message.
fn classify_reply(step: Step, error: &SmtpError) -> SendError {
    let code = error
        .status()
        .map(|code| code.to_string())
        .unwrap_or_default();
    let text = std::error::Error::source(error)
        .map(ToString::to_string)
        .unwrap_or_default();
    let reply = match step {
        Step::Connect => format!(
            "the SMTP server replied during connection setup (greeting, EHLO, STARTTLS or AUTH) with {code} {text}"
        ),
        step => format!("the SMTP server replied to {step} with {code} {text}"),
    };

    if error.is_transient() {
        SendError::Retryable(reply)
    } else if step == Step::Connect {
        SendError::Retryable(format!("{reply}, so no message was sent"))
    } else {
        SendError::Rejected(reply)
    }
}

/// An open connection waiting in the pool.
struct IdleConnection {
    connection: AsyncSmtpConnection,
    since: Instant,
}

/// SMTP delivery with a pool of open connections.
pub(super) struct SmtpMailer {
    config: SmtpConfig,
    idle: Mutex<Vec<IdleConnection>>,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    pub(super) fn from_url(url: &str, step_timeout: Duration) -> Result<SmtpMailer, SmtpUrlError> {
        Ok(SmtpMailer {
            config: SmtpConfig::from_url(url, step_timeout)?,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `message` on a pooled or new connection and classifies any failure.
    pub(super) async fn send(&self, message: &Message, message_id: &str) -> Result<(), SendError> {
        let mut connection = self.checkout().await.map_err(|failure| {
            tracing::debug!(message_id, error = %failure.cause, "failed to connect to the SMTP server");
            failure.classify()
        })?;

        match self
            .transact(&mut connection, message.envelope(), &message.formatted())
            .await
        {
            Ok(reply) => {
                tracing::debug!(
                    message_id,
                    smtp.reply = %describe_response(&reply),
                    "SMTP server accepted the message"
                );
                self.check_in(connection);
                Ok(())
            }
            Err(failure) => {
                tracing::debug!(
                    message_id,
                    step = %failure.step,
                    error = %failure.cause,
                    "SMTP send failed"
                );
                self.discard(connection, &failure).await;
                Err(failure.classify())
            }
        }
    }

    /// Runs MAIL FROM, RCPT TO, DATA and the message data, each bounded by the step timeout.
    async fn transact(
        &self,
        connection: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        body: &[u8],
    ) -> Result<Response, Failure> {
        let limit = self.config.step_timeout;

        // Addresses are ASCII because `OutgoingEmail::to_message` converts domains to punycode
        // and rejects non-ASCII local parts, so SMTPUTF8 is never needed. lettre encodes bodies as
        // 7bit, quoted-printable or base64, so this check is a safeguard.
        let mut mail_parameters = Vec::new();
        if !body.is_ascii() {
            if !connection
                .server_info()
                .supports_feature(Extension::EightBitMime)
            {
                return Err(Failure {
                    step: Step::MailFrom,
                    cause: Cause::Unsupported(
                        "the message contains non-ASCII bytes but the server does not offer 8BITMIME",
                    ),
                });
            }
            mail_parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }

        let mail = Mail::new(envelope.from().cloned(), mail_parameters);
        within(limit, Step::MailFrom, connection.command(mail)).await?;
        for recipient in envelope.to() {
            let rcpt = Rcpt::new(recipient.clone(), Vec::new());
            within(limit, Step::RcptTo, connection.command(rcpt)).await?;
        }
        within(limit, Step::Data, connection.command(Data)).await?;
        within(limit, Step::MessageData, connection.message(body)).await
    }

    /// Takes a live pooled connection, or opens a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, Failure> {
        while let Some(idle) = self.take_idle() {
            if idle.since.elapsed() > MAX_IDLE_TIME {
                tracing::debug!("closing an SMTP connection that was idle too long");
                continue;
            }
            let mut connection = idle.connection;
            let alive = tokio::time::timeout(self.config.step_timeout, connection.test_connected())
                .await
                .unwrap_or(false);
            if alive {
                return Ok(connection);
            }
            tracing::debug!("dropping a pooled SMTP connection that failed NOOP");
        }

        within(self.config.step_timeout, Step::Connect, self.connect()).await
    }

    fn take_idle(&self) -> Option<IdleConnection> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// Opens a connection: TCP (and TLS for SMTPS), greeting and EHLO, then STARTTLS and AUTH as
    /// configured. lettre bounds only the TCP connect with the timeout given here.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        let config = &self.config;
        let implicit_tls = match &config.tls {
            TlsMode::Implicit(parameters) => Some(parameters.clone()),
            _ => None,
        };
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (config.host.as_str(), config.port),
            Some(config.step_timeout),
            &config.hello_name,
            implicit_tls,
            None,
        )
        .await?;

        match &config.tls {
            TlsMode::Required(parameters) => {
                connection
                    .starttls(parameters.clone(), &config.hello_name)
                    .await?;
            }
            TlsMode::Opportunistic(parameters) if connection.can_starttls() => {
                connection
                    .starttls(parameters.clone(), &config.hello_name)
                    .await?;
            }
            _ => {}
        }

        if let Some(credentials) = &config.credentials {
            connection.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(connection)
    }

    /// Returns a connection to the pool after a successful send, or closes it when the pool is
    /// full.
    fn check_in(&self, connection: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(IdleConnection {
                connection,
                since: Instant::now(),
            });
        }
    }

    /// Closes the connection of a failed send. After a reply the session is still in step, so it
    /// ends with QUIT. After a timeout or network error the socket is closed without QUIT.
    async fn discard(&self, mut connection: AsyncSmtpConnection, failure: &Failure) {
        if matches!(&failure.cause, Cause::Smtp(error) if error.status().is_some()) {
            let _ = tokio::time::timeout(self.config.step_timeout, connection.abort()).await;
        }
    }
}

/// Runs one step with a time limit, tagging any failure with the step.
async fn within<T>(
    limit: Duration,
    step: Step,
    future: impl Future<Output = Result<T, SmtpError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Failure {
            step,
            cause: Cause::Smtp(error),
        }),
        Err(_) => Err(Failure {
            step,
            cause: Cause::TimedOut(limit),
        }),
    }
}

fn describe_response(response: &Response) -> String {
    let lines: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), lines.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> SmtpConfig {
        SmtpConfig::from_url(url, Duration::from_secs(30)).unwrap()
    }

    #[test]
    fn url_with_required_tls_defaults_to_port_587() {
        let config = config("smtp://user:pass@mail.example.com?tls=required");
        assert_eq!(config.host, "mail.example.com");
        assert_eq!(config.port, 587);
        assert!(matches!(config.tls, TlsMode::Required(_)));
        assert!(config.credentials.is_some());
    }

    #[test]
    fn url_with_explicit_port_keeps_it() {
        let config = config("smtp://user:pass@mail.example.com:2525?tls=required");
        assert_eq!(config.port, 2525);
    }

    #[test]
    fn smtps_url_uses_implicit_tls_on_port_465() {
        let config = config("smtps://user:pass@mail.example.com");
        assert_eq!(config.port, 465);
        assert!(matches!(config.tls, TlsMode::Implicit(_)));
    }

    #[test]
    fn opportunistic_tls_url_uses_port_587() {
        let config = config("smtp://mail.example.com?tls=opportunistic");
        assert_eq!(config.port, 587);
        assert!(matches!(config.tls, TlsMode::Opportunistic(_)));
    }

    #[test]
    fn plain_url_uses_port_25_without_credentials() {
        let config = config("smtp://mail.example.com");
        assert_eq!(config.port, 25);
        assert!(matches!(config.tls, TlsMode::Plain));
        assert!(config.credentials.is_none());
    }

    #[test]
    fn url_path_sets_ehlo_name() {
        let config = config("smtp://mail.example.com/worker.duespark.example");
        assert_eq!(
            config.hello_name,
            ClientId::Domain("worker.duespark.example".to_owned())
        );
    }

    #[test]
    fn url_credentials_are_percent_decoded() {
        let config = config("smtp://user%40example.com:p%40ss%2Fword@mail.example.com");
        let expected = Credentials::new("user@example.com".to_owned(), "p@ss/word".to_owned());
        assert_eq!(config.credentials, Some(expected));
    }

    #[test]
    fn unsupported_scheme_is_rejected() {
        let error =
            SmtpConfig::from_url("http://mail.example.com", Duration::from_secs(1)).unwrap_err();
        assert!(
            matches!(&error, SmtpUrlError::UnsupportedScheme { scheme, .. } if scheme == "http"),
            "{error:?}"
        );
    }

    #[test]
    fn unknown_tls_value_is_rejected() {
        let error =
            SmtpConfig::from_url("smtp://mail.example.com?tls=always", Duration::from_secs(1))
                .unwrap_err();
        assert!(
            matches!(&error, SmtpUrlError::UnsupportedScheme { tls: Some(tls), .. } if tls == "always"),
            "{error:?}"
        );
    }

    #[test]
    fn url_errors_do_not_show_the_password() {
        for url in [
            "smtp://user:s3cret@mail.example.com?tls=never",
            "ftp://user:s3cret@mail.example.com",
            "smtp://user:s3cret%ff@mail.example.com",
            "smtp://user:s3cret@[::1",
        ] {
            let error = SmtpConfig::from_url(url, Duration::from_secs(1)).unwrap_err();
            assert!(!error.to_string().contains("s3cret"), "{url}: {error}");
            assert!(!format!("{error:?}").contains("s3cret"), "{url}: {error:?}");
        }
    }

    #[test]
    fn debug_hides_credentials() {
        let mailer = SmtpMailer::from_url(
            "smtp://postmaster:s3cret@mail.example.com?tls=required",
            Duration::from_secs(30),
        )
        .unwrap();

        let debug = format!("{mailer:?}");

        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("mail.example.com"), "{debug}");
        assert!(debug.contains("authenticated: true"), "{debug}");
    }
}
