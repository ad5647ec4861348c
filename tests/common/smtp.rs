//! A real SMTP server process (aiosmtpd, `scripts/smtp_server.py`) that stores what it receives.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running SMTP server; killed when dropped.
pub struct SmtpServer {
    pub port: u16,
    child: Child,
    maildir: tempfile::TempDir,
}

/// A message as the server stored it.
pub struct ReceivedMessage {
    pub raw: Vec<u8>,
    pub rcpt_tos: Vec<String>,
}

impl ReceivedMessage {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("the message parses")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed()
            .header_raw(name)
            .map(|value| value.trim().to_owned())
    }

    /// Subject plus the text and HTML bodies, decoded.
    pub fn all_text(&self) -> String {
        let message = self.parsed();
        let mut text = message.subject().unwrap_or_default().to_owned();
        for index in 0..message.text_body_count() {
            text.push('\n');
            text.push_str(&message.body_text(index).unwrap_or_default());
        }
        for index in 0..message.html_body_count() {
            text.push('\n');
            text.push_str(&message.body_html(index).unwrap_or_default());
        }
        text
    }
}

/// Options of the server process.
#[derive(Default, Clone)]
pub struct SmtpOptions {
    /// Fixed port, or 0 for a free one.
    pub port: u16,
    /// Recipients matching this regex get `550` at RCPT.
    pub reject_rcpt: Option<String>,
    /// Fraction (0 to 1) of messages that get `451` after their data, chosen at random and not
    /// stored.
    pub tempfail_ratio: Option<f64>,
    /// Seed of that random choice; `None` gives a different sequence on every run.
    pub seed: Option<u64>,
}

impl SmtpServer {
    pub fn start(options: SmtpOptions) -> SmtpServer {
        let python = std::env::var("DUESPARK_TEST_PYTHON")
            .expect("DUESPARK_TEST_PYTHON is set by scripts/test.sh");
        let script = std::env::var("DUESPARK_TEST_SMTP_SERVER")
            .expect("DUESPARK_TEST_SMTP_SERVER is set by scripts/test.sh");
        let maildir = tempfile::tempdir().expect("temp dir");

        let mut command = Command::new(python);
        command
            .arg(script)
            .args(["--host", "127.0.0.1", "--port", &options.port.to_string()])
            .arg("--maildir")
            .arg(maildir.path())
            .stdout(Stdio::piped())
            // The server logs every message; keep that out of the test output, next to the mail.
            .stderr(
                std::fs::File::create(maildir.path().join("smtp_server.log")).expect("log file"),
            );
        if let Some(pattern) = &options.reject_rcpt {
            command.args(["--reject-rcpt", pattern]);
        }
        if let Some(ratio) = options.tempfail_ratio {
            command.args(["--tempfail-ratio", &ratio.to_string()]);
        }
        if let Some(seed) = options.seed {
            command.args(["--seed", &seed.to_string()]);
        }
        let mut child = command.spawn().expect("the SMTP server starts");

        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the SMTP server prints its port");
        let port = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the SMTP server: {line:?}"));
        SmtpServer {
            port,
            child,
            maildir,
        }
    }

    pub fn maildir(&self) -> &Path {
        self.maildir.path()
    }

    /// Reads the messages received so far, in arrival order.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        read_maildir(self.maildir.path())
    }

    /// Waits until at least `count` messages arrived, then returns all of them.
    pub async fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count || tokio::time::Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_maildir(dir: &Path) -> Vec<ReceivedMessage> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect()
        })
        .unwrap_or_default();
    paths.retain(|path| path.extension().is_some_and(|ext| ext == "eml"));
    paths.sort_by_key(|path| {
        path.file_stem()
            .and_then(|stem| stem.to_str())
            .and_then(|stem| stem.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });

    paths
        .into_iter()
        .map(|path| {
            let raw = std::fs::read(&path).expect("message file is readable");
            let envelope: serde_json::Value = std::fs::read(path.with_extension("json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default();
            let rcpt_tos = envelope["rcpt_tos"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|value| value.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            ReceivedMessage { raw, rcpt_tos }
        })
        .collect()
}
