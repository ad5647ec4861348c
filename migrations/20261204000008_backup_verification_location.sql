-- Verifications per location: the newest backup in each location (the backup folder, S3) is
-- verified on its own, and retention keeps the newest verified backup of each location.

ALTER TABLE backup_verifications ADD COLUMN location text NOT NULL DEFAULT 'local';

UPDATE backup_verifications v SET location = b.location
FROM backups b
WHERE b.path = v.backup_path AND b.location <> v.location;

CREATE INDEX backup_verifications_location_ok_idx
    ON backup_verifications (location, finished_at DESC) WHERE ok;
