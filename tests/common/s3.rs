//! A real S3-compatible server for tests: moto's server (`python -m moto.server`, installed in the
//! test venv by scripts/test.sh) on a free port of 127.0.0.1, with one bucket per test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use duespark_jobs::backups::S3Location;

/// A running moto server; killed when dropped.
pub struct S3Server {
    pub port: u16,
    child: Child,
    _log_dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts the server and waits until it responds to HTTP requests.
    pub fn start() -> S3Server {
        let python = std::env::var("DUESPARK_TEST_PYTHON")
            .expect("DUESPARK_TEST_PYTHON is set by scripts/test.sh");
        let port = free_port();
        let log_dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(log_dir.path().join("moto.log")).expect("log file");
        let child = Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("moto's server starts; scripts/test.sh installs moto[server] in the venv");
        let mut server = S3Server {
            port,
            child,
            _log_dir: log_dir,
        };
        server.wait_until_ready(Duration::from_secs(30));
        server
    }

    fn wait_until_ready(&mut self, timeout: Duration) {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("moto's server exited with {status}");
            }
            if self.request("GET", "/").is_ok_and(|status| status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "moto's server did not answer on port {} within {timeout:?}",
            self.port
        );
    }

    /// Sends a bodyless request and returns the status code.
    fn request(&self, method: &str, path: &str) -> std::io::Result<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status line in {response:?}")))
    }

    /// Creates a bucket with a random name and returns it.
    pub fn create_bucket(&self) -> String {
        let bucket = format!(
            "backups-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let status = self
            .request("PUT", &format!("/{bucket}"))
            .expect("moto answers");
        assert_eq!(status, 200, "bucket {bucket} is created");
        bucket
    }

    /// Returns the `AWS_*` settings that point a client at this server.
    pub fn aws_settings(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "test-access-key".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test-secret-key".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    /// Creates a bucket and returns a location in it under `prefix`.
    pub fn location(&self, prefix: &str) -> S3Location {
        let url = format!("s3://{}/{prefix}", self.create_bucket());
        S3Location::new(&url, &self.aws_settings()).expect("the S3 settings are valid")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}
