//! The places backups are kept: the local backup folder and, when configured, S3-compatible
//! storage. Each location lists its backups by the UTC timestamp in their names, and retention and
//! verification work on each location separately.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::dump::sidecar_path;
use super::parse_name_timestamp;
use super::s3::S3Location;

/// A backup location.
#[derive(Debug, Clone)]
pub enum Location {
    /// The local backup folder (`BACKUP_DIR`).
    Local(PathBuf),
    /// S3-compatible storage (`BACKUP_S3_URL`).
    S3(S3Location),
}

/// One backup found in a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackup {
    /// The file or object name, such as `duespark-20261204T000000Z.dump`.
    pub name: String,
    pub size_bytes: u64,
    /// From the name; copies and uploads keep it, where they reset modification times.
    pub created_at: DateTime<Utc>,
}

impl Location {
    /// Returns the location's name in the database and in metrics: `local` or `s3`.
    pub fn name(&self) -> &'static str {
        match self {
            Location::Local(_) => "local",
            Location::S3(_) => "s3",
        }
    }

    /// Returns where backup `name` is, as recorded in `backups.path`: a file path or an `s3://` URL.
    pub fn backup_path(&self, name: &str) -> String {
        match self {
            Location::Local(dir) => dir.join(name).to_string_lossy().into_owned(),
            Location::S3(s3) => s3.object_url(name),
        }
    }

    /// Describes the location for messages: the folder or `s3://bucket/prefix`.
    pub fn describe(&self) -> String {
        match self {
            Location::Local(dir) => dir.display().to_string(),
            Location::S3(s3) => s3.url(),
        }
    }

    /// Lists the backups, oldest first. A missing local folder counts as empty.
    pub async fn list(&self) -> Result<Vec<StoredBackup>, String> {
        match self {
            Location::Local(dir) => list_local(dir).await,
            Location::S3(s3) => Ok(s3
                .list()
                .await
                .map_err(|error| error.to_string())?
                .into_iter()
                .map(|object| StoredBackup {
                    name: object.name,
                    size_bytes: object.size_bytes,
                    created_at: object.created_at,
                })
                .collect()),
        }
    }

    /// Deletes backup `name` and its sidecar.
    pub async fn delete(&self, name: &str) -> Result<(), String> {
        match self {
            Location::Local(dir) => {
                let file = dir.join(name);
                for path in [sidecar_path(&file), file] {
                    match tokio::fs::remove_file(&path).await {
                        Ok(()) => {}
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                        Err(error) => {
                            return Err(format!("cannot delete {}: {error}", path.display()));
                        }
                    }
                }
                Ok(())
            }
            Location::S3(s3) => s3.delete(name).await.map_err(|error| error.to_string()),
        }
    }

    /// Deletes temporary files that an interrupted backup left in the local folder, once older
    /// than `min_age`. Returns how many were deleted.
    pub async fn delete_stale_partials(&self, min_age: Duration) -> usize {
        let Location::Local(dir) = self else {
            return 0;
        };
        let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
            return 0;
        };
        let mut deleted = 0;
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with('.') && name.ends_with(".partial")) {
                continue;
            }
            let old_enough = entry
                .metadata()
                .await
                .and_then(|metadata| metadata.modified())
                .is_ok_and(|modified| modified.elapsed().unwrap_or_default() >= min_age);
            if old_enough && tokio::fs::remove_file(entry.path()).await.is_ok() {
                deleted += 1;
            }
        }
        deleted
    }
}

async fn list_local(dir: &Path) -> Result<Vec<StoredBackup>, String> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(format!("cannot read {}: {error}", dir.display())),
    };
    let mut backups = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|error| format!("cannot read {}: {error}", dir.display()))?
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(created_at) = parse_name_timestamp(&name) else {
            continue;
        };
        let size_bytes = entry
            .metadata()
            .await
            .map(|metadata| metadata.len())
            .unwrap_or(0);
        backups.push(StoredBackup {
            name,
            size_bytes,
            created_at,
        });
    }
    backups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(backups)
}
