//! Errors of the job store.

/// A failure of a job store operation.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("database error in the job store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("failed to run the job store migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// The failure of a group commit, shared by every job of the group.
    #[error("{0}")]
    Grouped(std::sync::Arc<QueueError>),
}
