//! Retention of backups (`BACKUP_RETENTION_DAYS`, 30 by default) in each location: backups older
//! than the retention period are deleted, except the newest verified one and the newest one.
//! Without a verified backup, an old backup is still better than none.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::location::{Location, StoredBackup};

/// Default retention period.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Returns the backups to delete: created before `cutoff`, and neither the newest backup nor the
/// one named `newest_verified`. `backups` may come in any order.
pub fn select_expired<'a>(
    backups: &'a [StoredBackup],
    newest_verified: Option<&str>,
    cutoff: DateTime<Utc>,
) -> Vec<&'a StoredBackup> {
    let newest = backups.iter().map(|backup| &backup.name).max();
    backups
        .iter()
        .filter(|backup| backup.created_at < cutoff)
        .filter(|backup| Some(&backup.name) != newest)
        .filter(|backup| Some(backup.name.as_str()) != newest_verified)
        .collect()
}

/// Applies retention to one location and returns the names deleted. A failed deletion stops the
/// run with its reason; the next run tries again.
pub async fn apply_retention(
    pool: &PgPool,
    location: &Location,
    retention: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<String>, String> {
    let backups = location.list().await?;
    let newest_verified = newest_verified(pool, location, &backups).await?;
    let cutoff = now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);

    let mut deleted = Vec::new();
    for backup in select_expired(&backups, newest_verified.as_deref(), cutoff) {
        location.delete(&backup.name).await?;
        tracing::info!(
            location = location.name(),
            backup = %location.backup_path(&backup.name),
            created_at = %backup.created_at,
            "deleted a backup past its retention period"
        );
        deleted.push(backup.name.clone());
    }
    location
        .delete_stale_partials(Duration::from_secs(24 * 3600))
        .await;
    Ok(deleted)
}

/// Returns the name of the newest backup in `backups` with a passed verification.
async fn newest_verified(
    pool: &PgPool,
    location: &Location,
    backups: &[StoredBackup],
) -> Result<Option<String>, String> {
    let paths: Vec<String> = backups
        .iter()
        .map(|backup| location.backup_path(&backup.name))
        .collect();
    let verified: Vec<String> = sqlx::query_scalar(
        r#"
        SELECT DISTINCT backup_path FROM backup_verifications
        WHERE location = $1 AND ok AND backup_path = ANY($2)
        "#,
    )
    .bind(location.name())
    .bind(&paths)
    .fetch_all(pool)
    .await
    .map_err(|error| format!("cannot read the verified backups: {error}"))?;
    Ok(backups
        .iter()
        .filter(|backup| verified.contains(&location.backup_path(&backup.name)))
        .map(|backup| backup.name.clone())
        .max())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn backup(day: u32) -> StoredBackup {
        let created_at = Utc.with_ymd_and_hms(2026, 11, day, 0, 0, 0).unwrap();
        StoredBackup {
            name: format!("duespark-{}.dump", created_at.format("%Y%m%dT%H%M%SZ")),
            size_bytes: 100,
            created_at,
        }
    }

    fn names(selected: Vec<&StoredBackup>) -> Vec<u32> {
        use chrono::Datelike;
        selected
            .iter()
            .map(|backup| backup.created_at.day())
            .collect()
    }

    #[test]
    fn deletes_backups_older_than_the_cutoff() {
        let backups: Vec<_> = (1..=5).map(backup).collect();
        let cutoff = Utc.with_ymd_and_hms(2026, 11, 3, 12, 0, 0).unwrap();
        let verified = backups[4].name.clone();
        assert_eq!(
            names(select_expired(&backups, Some(&verified), cutoff)),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn keeps_the_newest_verified_backup_even_when_old() {
        let backups: Vec<_> = (1..=5).map(backup).collect();
        let cutoff = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let verified = backups[1].name.clone();
        // Day 5 is kept as the newest, day 2 as the newest verified.
        assert_eq!(
            names(select_expired(&backups, Some(&verified), cutoff)),
            vec![1, 3, 4]
        );
    }

    #[test]
    fn keeps_the_newest_backup_without_any_verified() {
        let backups: Vec<_> = [3, 1, 2].into_iter().map(backup).collect();
        let cutoff = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(names(select_expired(&backups, None, cutoff)), vec![1, 2]);
    }

    #[test]
    fn deletes_nothing_in_an_empty_location() {
        assert!(select_expired(&[], None, Utc::now()).is_empty());
    }
}
