//! Schema migrations of the job store: the backend's tables plus our own attempt history.

use sqlx::PgPool;

use crate::QueueError;

/// Applies the backend's migrations (schema `apalis`) and ours (schema `duespark_queue`). Each set
/// keeps its own migration table, so they coexist with the application's migrations in `public`.
pub async fn migrate(pool: &PgPool) -> Result<(), QueueError> {
    apalis_postgres::PostgresStorage::<()>::setup(pool).await?;

    let mut migrator = sqlx::migrate!("./migrations");
    migrator.dangerous_set_table_name("duespark_queue._sqlx_migrations");
    migrator.create_schema("duespark_queue");
    migrator.run(pool).await?;
    Ok(())
}
