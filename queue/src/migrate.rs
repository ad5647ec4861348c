//! Schema migrations of the job store (schema `duespark_queue`).

use sqlx::PgPool;

use crate::QueueError;

/// Applies the job store's migrations. They keep their own migration table, so they coexist with
/// the application's migrations in `public`. Migrations applied by a newer release are accepted,
/// so the previous binary still starts after an expand migration (rollback).
pub async fn migrate(pool: &PgPool) -> Result<(), QueueError> {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator.dangerous_set_table_name("duespark_queue._sqlx_migrations");
    migrator.create_schema("duespark_queue");
    migrator.run(pool).await?;
    Ok(())
}
