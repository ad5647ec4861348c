//! Send-failure classification against a scripted SMTP server on 127.0.0.1, and the outbox.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::email::message::new_message_id;

/// What the scripted server does at one point of the session.
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// Sends this reply. A multi-line reply contains its own `\r\n` separators.
    Line(&'static str),
    /// Never replies, keeping the connection open.
    Stall,
    /// Closes the connection without replying.
    Close,
}

/// Replies used once each, in order, before falling back to the default reply.
#[derive(Debug, Default)]
struct Script {
    greeting: VecDeque<Reply>,
    auth: VecDeque<Reply>,
    rcpt: VecDeque<Reply>,
    end_of_data: VecDeque<Reply>,
    /// Closes the connection after accepting a message, as a server ending an idle session would.
    close_after_message: bool,
}

#[derive(Default)]
struct ServerState {
    script: Mutex<Script>,
    connections: AtomicUsize,
    messages: Mutex<Vec<String>>,
    commands: Mutex<Vec<String>>,
}

/// A minimal SMTP server speaking just enough for lettre: greeting, EHLO, AUTH, MAIL, RCPT, DATA,
/// NOOP, RSET and QUIT.
struct FakeSmtpServer {
    address: SocketAddr,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeSmtpServer {
    async fn start(script: Script) -> FakeSmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(ServerState {
            script: Mutex::new(script),
            ..ServerState::default()
        });

        let accept_state = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accept_state.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, Arc::clone(&accept_state)));
            }
        });
        FakeSmtpServer {
            address,
            state,
            task,
        }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.address.port())
    }

    fn mailer(&self) -> Mailer {
        Mailer::smtp(&self.url()).unwrap()
    }

    fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    fn messages(&self) -> Vec<String> {
        self.state.messages.lock().unwrap().clone()
    }

    fn commands(&self) -> Vec<String> {
        self.state.commands.lock().unwrap().clone()
    }
}

impl Drop for FakeSmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn next_reply(
    state: &ServerState,
    pick: fn(&mut Script) -> &mut VecDeque<Reply>,
    default: Reply,
) -> Reply {
    let mut script = state.script.lock().unwrap();
    pick(&mut script).pop_front().unwrap_or(default)
}

/// Sends `reply` and returns false when the session should end.
async fn answer(writer: &mut tokio::net::tcp::OwnedWriteHalf, reply: Reply) -> bool {
    match reply {
        Reply::Line(text) => writer
            .write_all(format!("{text}\r\n").as_bytes())
            .await
            .is_ok(),
        Reply::Stall => std::future::pending().await,
        Reply::Close => false,
    }
}

async fn serve(stream: TcpStream, state: Arc<ServerState>) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);

    let greeting = next_reply(
        &state,
        |s| &mut s.greeting,
        Reply::Line("220 fake.test ESMTP"),
    );
    if !answer(&mut writer, greeting).await {
        return;
    }

    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        state.commands.lock().unwrap().push(command.clone());
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();

        let reply = match verb.as_str() {
            "EHLO" => Reply::Line("250-fake.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME"),
            "AUTH" => next_reply(
                &state,
                |s| &mut s.auth,
                Reply::Line("235 2.7.0 Authentication successful"),
            ),
            "MAIL" | "NOOP" | "RSET" => Reply::Line("250 2.0.0 OK"),
            "RCPT" => next_reply(&state, |s| &mut s.rcpt, Reply::Line("250 2.1.5 OK")),
            "DATA" => {
                if !answer(
                    &mut writer,
                    Reply::Line("354 End data with <CR><LF>.<CR><LF>"),
                )
                .await
                {
                    return;
                }
                let Some(message) = read_message_data(&mut reader).await else {
                    return;
                };
                state.messages.lock().unwrap().push(message);
                let reply = next_reply(
                    &state,
                    |s| &mut s.end_of_data,
                    Reply::Line("250 2.0.0 Ok: queued as FAKE123"),
                );
                let close_after_message = state.script.lock().unwrap().close_after_message;
                if !answer(&mut writer, reply).await || close_after_message {
                    return;
                }
                continue;
            }
            "QUIT" => {
                let _ = answer(&mut writer, Reply::Line("221 2.0.0 Bye")).await;
                return;
            }
            _ => Reply::Line("500 5.5.2 Command not recognized"),
        };
        if !answer(&mut writer, reply).await {
            return;
        }
    }
}

/// Reads message data up to the line holding a single dot.
async fn read_message_data(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Option<String> {
    let mut message = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if line == ".\r\n" {
            return Some(message);
        }
        message.push_str(&line);
    }
}

fn email() -> OutgoingEmail {
    OutgoingEmail {
        from_address: "reminders@duespark.example".to_owned(),
        from_name: "Maya Lopez".to_owned(),
        reply_to: "maya@studio-lumen.example".to_owned(),
        to_name: "Acme Corp".to_owned(),
        to_address: "ap@acme.example".to_owned(),
        subject: "Reminder: invoice INV-1042 for $1,250.00 is due today".to_owned(),
        html: "<p>Hi Acme Corp,</p>".to_owned(),
        text: "Hi Acme Corp,".to_owned(),
        message_id: new_message_id("reminders@duespark.example"),
        metadata: vec![
            ("invoice_id".to_owned(), "inv_123".to_owned()),
            ("account_id".to_owned(), "acc_456".to_owned()),
        ],
    }
}

/// Returns an address on 127.0.0.1 where nothing listens.
async fn closed_port_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn retryable(result: Result<(), SendError>) -> String {
    match result {
        Err(SendError::Retryable(message)) => message,
        other => panic!("expected Retryable, got {other:?}"),
    }
}

fn rejected(result: Result<(), SendError>) -> String {
    match result {
        Err(SendError::Rejected(message)) => message,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

fn uncertain(result: Result<(), SendError>) -> String {
    match result {
        Err(SendError::Uncertain(message)) => message,
        other => panic!("expected Uncertain, got {other:?}"),
    }
}

#[tokio::test]
async fn accepted_message_is_delivered_with_headers() {
    let server = FakeSmtpServer::start(Script::default()).await;
    let email = email();

    server.mailer().send(&email).await.unwrap();

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].contains(&format!("Message-ID: {}", email.message_id)),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("X-PM-Metadata-invoice_id: inv_123"));
    let commands = server.commands();
    assert!(
        commands.contains(&"MAIL FROM:<reminders@duespark.example>".to_owned()),
        "{commands:?}"
    );
    assert!(
        commands.contains(&"RCPT TO:<ap@acme.example>".to_owned()),
        "{commands:?}"
    );
}

#[tokio::test]
async fn rcpt_550_is_rejected_with_reply() {
    let server = FakeSmtpServer::start(Script {
        rcpt: [Reply::Line(
            "550 5.1.1 <ap@acme.example>: Recipient address rejected: User unknown",
        )]
        .into(),
        ..Script::default()
    })
    .await;

    let message = rejected(server.mailer().send(&email()).await);

    assert!(message.contains("550"), "{message}");
    assert!(message.contains("User unknown"), "{message}");
    assert!(message.contains("RCPT TO"), "{message}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn rcpt_451_is_retryable_with_reply() {
    let server = FakeSmtpServer::start(Script {
        rcpt: [Reply::Line("451 4.7.1 Greylisted, try again later")].into(),
        ..Script::default()
    })
    .await;

    let message = retryable(server.mailer().send(&email()).await);

    assert!(message.contains("451"), "{message}");
    assert!(message.contains("Greylisted"), "{message}");
}

#[tokio::test]
async fn end_of_data_554_is_rejected() {
    let server = FakeSmtpServer::start(Script {
        end_of_data: [Reply::Line("554 5.7.1 Message rejected as spam")].into(),
        ..Script::default()
    })
    .await;

    let message = rejected(server.mailer().send(&email()).await);

    assert!(message.contains("554"), "{message}");
    assert!(message.contains("the message data"), "{message}");
}

#[tokio::test]
async fn end_of_data_452_is_retryable() {
    let server = FakeSmtpServer::start(Script {
        end_of_data: [Reply::Line("452 4.3.1 Insufficient system storage")].into(),
        ..Script::default()
    })
    .await;

    let message = retryable(server.mailer().send(&email()).await);

    assert!(message.contains("452"), "{message}");
}

#[tokio::test]
async fn throttling_454_is_retryable() {
    let server = FakeSmtpServer::start(Script {
        rcpt: [Reply::Line(
            "454 Throttling failure: Maximum sending rate exceeded.",
        )]
        .into(),
        ..Script::default()
    })
    .await;

    let message = retryable(server.mailer().send(&email()).await);

    assert!(message.contains("454"), "{message}");
}

#[tokio::test]
async fn connection_closed_after_data_is_uncertain() {
    let server = FakeSmtpServer::start(Script {
        end_of_data: [Reply::Close].into(),
        ..Script::default()
    })
    .await;

    let message = uncertain(server.mailer().send(&email()).await);

    assert!(message.contains("the message data"), "{message}");
    assert_eq!(server.messages().len(), 1, "the server received the data");
}

#[tokio::test]
async fn timeout_after_data_is_uncertain() {
    let server = FakeSmtpServer::start(Script {
        end_of_data: [Reply::Stall].into(),
        ..Script::default()
    })
    .await;
    let mailer = Mailer::smtp_with_timeout(&server.url(), Duration::from_millis(300)).unwrap();

    let message = uncertain(mailer.send(&email()).await);

    assert!(message.contains("no reply within"), "{message}");
}

#[tokio::test]
async fn timeout_before_data_is_retryable() {
    let server = FakeSmtpServer::start(Script {
        rcpt: [Reply::Stall].into(),
        ..Script::default()
    })
    .await;
    let mailer = Mailer::smtp_with_timeout(&server.url(), Duration::from_millis(300)).unwrap();

    let message = retryable(mailer.send(&email()).await);

    assert!(message.contains("RCPT TO"), "{message}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn connection_closed_before_data_is_retryable() {
    let server = FakeSmtpServer::start(Script {
        rcpt: [Reply::Close].into(),
        ..Script::default()
    })
    .await;

    retryable(server.mailer().send(&email()).await);
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let address = closed_port_address().await;
    let mailer = Mailer::smtp(&format!("smtp://127.0.0.1:{}", address.port())).unwrap();

    let message = retryable(mailer.send(&email()).await);

    assert!(message.contains("connecting"), "{message}");
}

#[tokio::test]
async fn greeting_421_is_retryable() {
    let server = FakeSmtpServer::start(Script {
        greeting: [Reply::Line(
            "421 4.3.2 Service not available, closing channel",
        )]
        .into(),
        ..Script::default()
    })
    .await;

    let message = retryable(server.mailer().send(&email()).await);

    assert!(message.contains("421"), "{message}");
}

#[tokio::test]
async fn greeting_never_sent_is_retryable() {
    let server = FakeSmtpServer::start(Script {
        greeting: [Reply::Close].into(),
        ..Script::default()
    })
    .await;

    let message = retryable(server.mailer().send(&email()).await);

    assert!(message.contains("connecting"), "{message}");
}

#[tokio::test]
async fn auth_535_is_retryable_and_hides_password() {
    let server = FakeSmtpServer::start(Script {
        auth: [Reply::Line("535 5.7.8 Authentication credentials invalid")].into(),
        ..Script::default()
    })
    .await;
    let url = format!(
        "smtp://postmaster:s3cret-pass@127.0.0.1:{}",
        server.address.port()
    );
    let mailer = Mailer::smtp(&url).unwrap();

    let message = retryable(mailer.send(&email()).await);

    assert!(message.contains("535"), "{message}");
    assert!(!message.contains("s3cret-pass"), "{message}");
    assert!(!format!("{mailer:?}").contains("s3cret-pass"));
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn pooled_connection_is_reused() {
    let server = FakeSmtpServer::start(Script::default()).await;
    let mailer = server.mailer();

    mailer.send(&email()).await.unwrap();
    mailer.send(&email()).await.unwrap();

    assert_eq!(server.messages().len(), 2);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn failed_send_does_not_reuse_connection() {
    let server = FakeSmtpServer::start(Script {
        rcpt: [Reply::Line("451 4.3.0 Try again")].into(),
        ..Script::default()
    })
    .await;
    let mailer = server.mailer();

    retryable(mailer.send(&email()).await);
    mailer.send(&email()).await.unwrap();

    assert_eq!(server.messages().len(), 1);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn pooled_connection_closed_by_server_is_replaced() {
    let server = FakeSmtpServer::start(Script {
        close_after_message: true,
        ..Script::default()
    })
    .await;
    let mailer = server.mailer();

    mailer.send(&email()).await.unwrap();
    mailer.send(&email()).await.unwrap();

    assert_eq!(server.messages().len(), 2);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn invalid_email_is_rejected_without_connecting() {
    let server = FakeSmtpServer::start(Script::default()).await;
    let mut email = email();
    email.subject = "Hello\r\nBcc: someone@evil.example".to_owned();

    let message = rejected(server.mailer().send(&email).await);

    assert!(message.contains("subject"), "{message}");
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn outbox_writes_one_eml_with_message_id() {
    let dir = std::env::temp_dir()
        .join(format!("duespark-outbox-{}", uuid::Uuid::new_v4()))
        .join("outbox");
    let mailer = Mailer::outbox(dir.clone());
    let email = email();

    mailer.send(&email).await.unwrap();

    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with(".eml"), "{names:?}");
    assert!(!names[0].starts_with('.'), "{names:?}");
    let contents = std::fs::read_to_string(dir.join(&names[0])).unwrap();
    assert!(
        contents.contains(&format!("Message-ID: {}", email.message_id)),
        "{contents}"
    );
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

#[test]
fn mailer_and_send_future_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}

    assert_send_sync::<Mailer>();
    let mailer = Mailer::outbox(std::env::temp_dir());
    let email = email();
    let send = mailer.send(&email);
    assert_send(&send);
}
