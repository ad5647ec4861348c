//! Writing a backup: `pg_dump -Fc` into a local folder, made durable and named atomically, with a
//! SHA-256 sidecar recorded at creation time.
//!
//! A file named `duespark-<UTC %Y%m%dT%H%M%SZ>.dump` is always complete: `pg_dump` writes to a
//! hidden temporary name, the file and the folder are fsynced, and only then the final name is
//! linked. The sidecar `<name>.sha256` contains `<hex>  <name>\n` (the `sha256sum` format) and is
//! written the same way.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{BackupError, DatabaseUrl, find_tool, format_name_timestamp, output_within};

/// Maximum run time of `pg_dump`: half the RTO of 4 hours, so a hung dump cannot block the job.
pub const DUMP_TIMEOUT: Duration = Duration::from_secs(2 * 3600);

/// A backup file written by [`create_backup`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupFile {
    pub path: PathBuf,
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the file, also stored in the sidecar.
    pub sha256: String,
    /// Creation time, as in the file name (whole seconds, UTC).
    pub created_at: DateTime<Utc>,
}

/// Dumps the database at `database_url` into `dir` and writes its checksum sidecar.
///
/// `pg_dump` is taken from `pg_bin_dir` when it contains one, otherwise from `PATH`. Fails with
/// [`BackupError::AlreadyExists`] rather than overwrite a backup created in the same second, and
/// with [`BackupError::TimedOut`] when `pg_dump` runs longer than [`DUMP_TIMEOUT`].
pub async fn create_backup(
    database_url: &str,
    dir: &Path,
    pg_bin_dir: Option<&Path>,
) -> Result<BackupFile, BackupError> {
    create_backup_within(database_url, dir, pg_bin_dir, DUMP_TIMEOUT).await
}

/// [`create_backup`] with another limit on the time `pg_dump` may run.
pub async fn create_backup_within(
    database_url: &str,
    dir: &Path,
    pg_bin_dir: Option<&Path>,
    timeout: Duration,
) -> Result<BackupFile, BackupError> {
    let url = DatabaseUrl::parse(database_url)?;
    let created_at = Utc::now().trunc_subsecs(0);
    let name = format!("duespark-{}.dump", format_name_timestamp(created_at));
    let final_path = dir.join(&name);
    let temp_path = dir.join(format!(".{name}.{}.partial", std::process::id()));
    tracing::info!(database = %url.redacted(), path = %final_path.display(), "backup started");

    if let Err(error) = run_pg_dump(&url, &temp_path, pg_bin_dir, timeout).await {
        let _ = tokio::fs::remove_file(&temp_path).await;
        tracing::error!(database = %url.redacted(), error = %error, "backup failed");
        return Err(error);
    }

    let published = publish(&temp_path, &final_path).await;
    let _ = tokio::fs::remove_file(&temp_path).await;
    published?;

    let sha256 = write_checksum_sidecar(&final_path).await?;
    let size_bytes = tokio::fs::metadata(&final_path)
        .await
        .map_err(BackupError::io(&final_path))?
        .len();
    tracing::info!(path = %final_path.display(), size_bytes, sha256 = %sha256, "backup written");

    Ok(BackupFile {
        path: final_path,
        size_bytes,
        sha256,
        created_at,
    })
}

async fn run_pg_dump(
    url: &DatabaseUrl,
    output: &Path,
    pg_bin_dir: Option<&Path>,
    timeout: Duration,
) -> Result<(), BackupError> {
    let program = find_tool("pg_dump", pg_bin_dir);
    let mut command = url.command(&program);
    command
        .arg("--format=custom")
        .arg("--file")
        .arg(output)
        .arg("--dbname")
        .arg(url.dbname_argument());
    let result = output_within(&mut command, timeout)
        .await
        .map_err(|source| BackupError::ToolNotFound {
            tool: program.display().to_string(),
            source,
        })?
        .ok_or_else(|| BackupError::TimedOut {
            tool: "pg_dump".to_string(),
            timeout,
        })?;
    if !result.status.success() {
        return Err(BackupError::ToolFailed {
            tool: "pg_dump".to_string(),
            status: result.status,
            stderr: url.scrub(String::from_utf8_lossy(&result.stderr).trim()),
        });
    }
    Ok(())
}

/// Fsyncs `temp_path` and links it to `final_path`, failing when `final_path` exists, then fsyncs
/// the folder so that the new name survives a crash.
async fn publish(temp_path: &Path, final_path: &Path) -> Result<(), BackupError> {
    let temp_path = temp_path.to_path_buf();
    let final_path = final_path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        sync_file(&temp_path)?;
        // A hard link fails atomically when the target exists, where a rename would replace it.
        std::fs::hard_link(&temp_path, &final_path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                BackupError::AlreadyExists(final_path.clone())
            } else {
                BackupError::Io {
                    path: final_path.clone(),
                    source,
                }
            }
        })?;
        sync_parent_dir(&final_path)
    })
    .await
    .expect("the publish task does not panic")
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(BackupError::io(path))
}

fn sync_parent_dir(path: &Path) -> Result<(), BackupError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    sync_file(dir)
}

/// Computes the SHA-256 of `file` and writes the sidecar `<file>.sha256` (`<hex>  <name>\n`) via a
/// temporary file and a rename; returns the hex digest.
pub async fn write_checksum_sidecar(file: &Path) -> Result<String, BackupError> {
    let sha256 = sha256_file(file).await?;
    let name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sidecar = sidecar_path(file);
    let temp = sidecar.with_extension(format!("sha256.{}.partial", std::process::id()));
    let contents = format!("{sha256}  {name}\n");

    let (temp_clone, sidecar_clone) = (temp.clone(), sidecar.clone());
    tokio::task::spawn_blocking(move || {
        std::fs::write(&temp_clone, contents).map_err(BackupError::io(&temp_clone))?;
        sync_file(&temp_clone)?;
        std::fs::rename(&temp_clone, &sidecar_clone).map_err(BackupError::io(&sidecar_clone))?;
        sync_parent_dir(&sidecar_clone)
    })
    .await
    .expect("the sidecar task does not panic")
    .inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })?;
    Ok(sha256)
}

/// Returns the path of the checksum sidecar of `file`: the same name with `.sha256` appended.
pub fn sidecar_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_os_string();
    name.push(".sha256");
    PathBuf::from(name)
}

/// Computes the lowercase hex SHA-256 of a file, reading it in 1 MiB blocks.
pub async fn sha256_file(path: &Path) -> Result<String, BackupError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path).map_err(BackupError::io(&path))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let read = file.read(&mut buffer).map_err(BackupError::io(&path))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        Ok(hex::encode(hasher.finalize()))
    })
    .await
    .expect("the hashing task does not panic")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_sidecar_in_sha256sum_format() {
        let dir =
            std::env::temp_dir().join(format!("duespark-backups-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("duespark-20261204T000000Z.dump");
        std::fs::write(&file, b"abc").unwrap();

        let digest = write_checksum_sidecar(&file).await.unwrap();

        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let sidecar = std::fs::read_to_string(sidecar_path(&file)).unwrap();
        assert_eq!(
            sidecar,
            format!("{digest}  duespark-20261204T000000Z.dump\n")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
