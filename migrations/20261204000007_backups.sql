-- Local database backups and their verifications: one row per `pg_dump` archive written, with the
-- SHA-256 recorded at creation, and one row per verification run with the result of every check
-- (present, age, size, checksum, header, list, restore) as JSON.

CREATE TABLE backups (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Where the file is stored: 'local' for the backup folder; other locations come with uploads.
    location    text NOT NULL DEFAULT 'local',
    path        text NOT NULL,
    size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
    -- Lowercase hex SHA-256 of the file, as written to its `.sha256` sidecar.
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX backups_location_created_at_idx ON backups (location, created_at DESC);

CREATE TABLE backup_verifications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    backup_path  text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    ok           boolean NOT NULL,
    -- An array of {"name", "status" (pass, fail, skipped), "reason"} in the order the checks ran.
    checks       jsonb NOT NULL
);

CREATE INDEX backup_verifications_backup_path_idx ON backup_verifications (backup_path, started_at DESC);
