//! Backups in S3-compatible storage (`BACKUP_S3_URL`): upload of a local backup with its sidecar,
//! listing, download for verification, and deletion.
//!
//! Objects keep the local names under the URL's prefix: `s3://bucket/prefix/duespark-<UTC>.dump`
//! and `<name>.sha256`. The sidecar is uploaded first, so a visible backup always has its checksum.
//! An S3 object appears only when its upload completes, so a listed backup is never partial.
//!
//! The settings come from `AWS_*` variables (credentials, region, endpoint, `AWS_ALLOW_HTTP`) as
//! the object_store crate reads them. Credentials never appear in messages: errors show the
//! bucket and the object name only.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;

use super::dump::sidecar_path;
use super::parse_name_timestamp;

/// Parsed `BACKUP_S3_URL` plus `AWS_*` settings, checked without any network call.
#[derive(Clone)]
pub struct S3Location {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: Option<ObjectPath>,
}

impl std::fmt::Debug for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Location({})", self.url())
    }
}

/// A backup object found by [`S3Location::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Backup {
    /// The object name without the prefix, such as `duespark-20261204T000000Z.dump`.
    pub name: String,
    pub size_bytes: u64,
    pub created_at: DateTime<Utc>,
}

/// A failed S3 operation, naming the object.
#[derive(Debug, thiserror::Error)]
#[error("{operation} {url} failed: {source}")]
pub struct S3Error {
    operation: &'static str,
    url: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl S3Location {
    /// Builds the location from `url` (`s3://bucket[/prefix]`) and `AWS_*` settings given as
    /// (variable name, value) pairs; unknown names are ignored.
    pub fn new(url: &str, aws_settings: &[(String, String)]) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|error| {
            format!("{url:?} is not a URL ({error}); expected s3://bucket/prefix")
        })?;
        if parsed.scheme() != "s3" {
            return Err(format!(
                "{url:?} must start with s3://, as in s3://bucket/prefix"
            ));
        }
        let bucket = parsed
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| format!("{url:?} names no bucket; expected s3://bucket/prefix"))?
            .to_string();
        let prefix = parsed.path().trim_matches('/');
        let prefix = (!prefix.is_empty())
            .then(|| ObjectPath::parse(prefix))
            .transpose()
            .map_err(|error| format!("{url:?} has an invalid prefix: {error}"))?;

        let mut builder = AmazonS3Builder::new().with_bucket_name(&bucket);
        for (name, value) in aws_settings {
            if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        let store = builder
            .build()
            .map_err(|error| format!("the S3 settings are invalid: {error}"))?;
        Ok(Self {
            store: Arc::new(store),
            bucket,
            prefix,
        })
    }

    /// Returns the location as a URL, `s3://bucket/prefix`, without credentials.
    pub fn url(&self) -> String {
        match &self.prefix {
            Some(prefix) => format!("s3://{}/{prefix}", self.bucket),
            None => format!("s3://{}", self.bucket),
        }
    }

    /// Returns the URL of one backup object, as recorded in `backups.path`.
    pub fn object_url(&self, name: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.object_path(name))
    }

    fn object_path(&self, name: &str) -> ObjectPath {
        match &self.prefix {
            Some(prefix) => prefix.clone().join(name),
            None => ObjectPath::from(name),
        }
    }

    fn error(
        &self,
        operation: &'static str,
        name: &str,
    ) -> impl FnOnce(object_store::Error) -> S3Error {
        let url = self.object_url(name);
        move |source| S3Error {
            operation,
            url,
            source: Box::new(source),
        }
    }

    /// Uploads `file` and its `.sha256` sidecar, the sidecar first. Large files go up in parts.
    pub async fn upload(&self, file: &Path) -> Result<String, S3Error> {
        let name = file_name(file);
        let sidecar_name = format!("{name}.sha256");
        let sidecar = tokio::fs::read(sidecar_path(file))
            .await
            .map_err(|source| S3Error {
                operation: "read the sidecar for",
                url: self.object_url(&sidecar_name),
                source: Box::new(source),
            })?;
        self.store
            .put(&self.object_path(&sidecar_name), PutPayload::from(sidecar))
            .await
            .map_err(self.error("upload", &sidecar_name))?;

        let io_error = |source: std::io::Error| S3Error {
            operation: "upload",
            url: self.object_url(&name),
            source: Box::new(source),
        };
        let mut reader = tokio::fs::File::open(file).await.map_err(io_error)?;
        let mut writer = BufWriter::new(self.store.clone(), self.object_path(&name));
        // On an error the writer is dropped unfinished. Its multipart upload never becomes an
        // object, and a bucket lifecycle rule for incomplete uploads removes its parts.
        tokio::io::copy(&mut reader, &mut writer)
            .await
            .map_err(io_error)?;
        writer.shutdown().await.map_err(io_error)?;
        Ok(self.object_url(&name))
    }

    /// Lists the backups under the prefix, oldest first. Other objects are ignored.
    pub async fn list(&self) -> Result<Vec<S3Backup>, S3Error> {
        let objects: Vec<object_store::ObjectMeta> = self
            .store
            .list(self.prefix.as_ref())
            .try_collect()
            .await
            .map_err(self.error("list", ""))?;
        let mut backups: Vec<S3Backup> = objects
            .into_iter()
            .filter_map(|object| {
                let name = object.location.filename()?.to_string();
                let created_at = parse_name_timestamp(&name)?;
                Some(S3Backup {
                    name,
                    size_bytes: object.size,
                    created_at,
                })
            })
            .collect();
        backups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(backups)
    }

    /// Downloads backup `name` and its sidecar into `dir`, keeping the names, and returns the
    /// local path of the backup.
    pub async fn download(&self, name: &str, dir: &Path) -> Result<std::path::PathBuf, S3Error> {
        let sidecar_name = format!("{name}.sha256");
        for object in [name, sidecar_name.as_str()] {
            let target = dir.join(object);
            let io_error = |source: std::io::Error| S3Error {
                operation: "download",
                url: self.object_url(object),
                source: Box::new(source),
            };
            let result = self
                .store
                .get(&self.object_path(object))
                .await
                .map_err(self.error("download", object))?;
            let mut output = tokio::fs::File::create(&target).await.map_err(io_error)?;
            let mut stream = result.into_stream();
            while let Some(chunk) = stream
                .try_next()
                .await
                .map_err(self.error("download", object))?
            {
                output.write_all(&chunk).await.map_err(io_error)?;
            }
            output.flush().await.map_err(io_error)?;
        }
        Ok(dir.join(name))
    }

    /// Deletes backup `name` and its sidecar; a missing object is not an error.
    pub async fn delete(&self, name: &str) -> Result<(), S3Error> {
        for object in [name.to_string(), format!("{name}.sha256")] {
            match self.store.delete(&self.object_path(&object)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(self.error("delete", &object)(error)),
            }
        }
        Ok(())
    }
}

fn file_name(file: &Path) -> String {
    file.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".to_string(), "key".to_string()),
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                "s3cret-value".to_string(),
            ),
            ("AWS_REGION".to_string(), "eu-west-1".to_string()),
        ]
    }

    #[test]
    fn parses_bucket_and_prefix() {
        let location = S3Location::new("s3://backups/duespark/prod/", &settings()).unwrap();
        assert_eq!(location.url(), "s3://backups/duespark/prod");
        assert_eq!(
            location.object_url("duespark-20261204T000000Z.dump"),
            "s3://backups/duespark/prod/duespark-20261204T000000Z.dump"
        );
        let bare = S3Location::new("s3://backups", &settings()).unwrap();
        assert_eq!(bare.object_url("a.dump"), "s3://backups/a.dump");
    }

    #[test]
    fn rejects_other_schemes_and_missing_bucket() {
        assert!(
            S3Location::new("https://backups/x", &settings())
                .unwrap_err()
                .contains("s3://")
        );
        assert!(S3Location::new("s3:///x", &settings()).is_err());
        assert!(S3Location::new("not a url", &settings()).is_err());
    }

    #[test]
    fn debug_output_hides_credentials() {
        let location = S3Location::new("s3://backups/p", &settings()).unwrap();
        let shown = format!("{location:?}");
        assert!(!shown.contains("s3cret-value"), "{shown}");
    }
}
