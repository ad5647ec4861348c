//! The outbox: emails written as `.eml` files instead of being sent.
//!
//! Each email becomes one file named `<UTC timestamp>-<UUID>.eml`. The file is written under a
//! hidden temporary name and then renamed, so no `.eml` file in the directory is ever partly
//! written.

use std::io;
use std::path::{Path, PathBuf};

use lettre::Message;

#[derive(Debug)]
pub(super) struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub(super) fn new(dir: PathBuf) -> Outbox {
        Outbox { dir }
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `message` to a new file in the outbox and returns its path.
    pub(super) async fn write(&self, message: &Message) -> io::Result<PathBuf> {
        tokio::fs::create_dir_all(&self.dir).await?;

        let name = format!(
            "{}-{}.eml",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
            uuid::Uuid::new_v4().simple()
        );
        let path = self.dir.join(&name);
        let temporary_path = self.dir.join(format!(".{name}.tmp"));

        tokio::fs::write(&temporary_path, message.formatted()).await?;
        if let Err(error) = tokio::fs::rename(&temporary_path, &path).await {
            // The rename error is the one to report, because a leftover temporary file is harmless.
            let _ = tokio::fs::remove_file(&temporary_path).await;
            return Err(error);
        }
        Ok(path)
    }
}
