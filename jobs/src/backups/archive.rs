//! Reading the header of a `pg_dump` custom-format archive (`pg_dump -Fc`).
//!
//! This module classifies the first bytes of a backup file. Besides a readable archive, it recognises
//! an empty file, a plain SQL dump, a gzip wrapper, a file that is not an archive, an archive in
//! another format and an archive too new for the local `pg_restore`. It reads only the fixed part of the
//! header (up to the compression field) and never runs a PostgreSQL tool itself.
//!
//! Header layout, as `ReadHead` in PostgreSQL's `pg_backup_archiver.c` reads it: the magic `PGDMP`,
//! one byte each for the archive version major, minor and revision, `intSize`, `offSize` and the
//! format (1 custom, 3 tar, 5 directory), then the compression. Since archive 1.15 the compression
//! is one algorithm byte; before, it is an int (one sign byte and `intSize` little-endian bytes).

use std::fmt;

use serde::Serialize;

/// Number of leading bytes that [`parse_header`] needs at most: 11 fixed bytes plus an int of up to
/// 8 magnitude bytes.
pub const HEADER_PREFIX_LEN: usize = 11 + 1 + 8;

const MAGIC: &[u8; 5] = b"PGDMP";
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Archive format byte of a custom-format archive (`pg_dump -Fc`).
pub const FORMAT_CUSTOM: u8 = 1;

/// Version of the archive format, written by `pg_dump` in bytes 5 to 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ArchiveVersion {
    pub major: u8,
    pub minor: u8,
    pub revision: u8,
}

impl ArchiveVersion {
    pub const fn new(major: u8, minor: u8, revision: u8) -> Self {
        Self {
            major,
            minor,
            revision,
        }
    }
}

impl fmt::Display for ArchiveVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.revision)
    }
}

/// Compression field of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Archive 1.15 and later: 0 none, 1 gzip, 2 lz4, 3 zstd.
    Algorithm(u8),
    /// Archives before 1.15: the zlib compression level (0 none, -1 default, 1 to 9).
    Level(i64),
}

/// The fixed part of a custom-format archive header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ArchiveHeader {
    pub version: ArchiveVersion,
    /// Bytes per int magnitude (normally 4).
    pub int_size: u8,
    /// Bytes per file offset (normally 8).
    pub off_size: u8,
    /// Format byte: 1 custom, 3 tar, 5 directory.
    pub format: u8,
    pub compression: Compression,
}

/// Reasons why a file is not a custom-format archive that the local `pg_restore` can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the file is empty")]
    Empty,
    #[error(
        "the file is a plain SQL dump (it starts with `--`), not a custom-format archive; restore it with psql or dump again with `pg_dump -Fc`"
    )]
    PlainSql,
    #[error(
        "the file is gzip-compressed (it starts with 1f 8b); a custom-format archive is compressed inside and is never wrapped in gzip"
    )]
    Gzip,
    #[error("the file is not a pg_dump archive (missing the `PGDMP` magic)")]
    NotArchive,
    #[error("the archive header is truncated: {len} bytes, at least {needed} expected")]
    Truncated { len: usize, needed: usize },
    #[error("the archive header has invalid field sizes: intSize {int_size}, offSize {off_size}")]
    InvalidSizes { int_size: u8, off_size: u8 },
    #[error("the archive format is {} (byte {format}), expected custom (byte 1)", format_name(*.format))]
    NotCustom { format: u8 },
    #[error(
        "archive version {archive} is too new for this pg_restore (PostgreSQL {pg_restore_major} reads archives up to {supported}); verify with a pg_restore at least as new as the pg_dump that wrote the file"
    )]
    TooNew {
        archive: ArchiveVersion,
        supported: ArchiveVersion,
        pg_restore_major: u32,
    },
}

fn format_name(format: u8) -> &'static str {
    match format {
        0 => "unknown",
        1 => "custom",
        2 => "files",
        3 => "tar",
        4 => "null",
        5 => "directory",
        _ => "invalid",
    }
}

/// Parses the fixed part of a custom-format header from the first bytes of a file.
///
/// Pass at least [`HEADER_PREFIX_LEN`] bytes when the file has them. The format must be custom, but
/// the version is not compared with any `pg_restore` here (see [`check_header`]).
pub fn parse_header(bytes: &[u8]) -> Result<ArchiveHeader, HeaderError> {
    if bytes.is_empty() {
        return Err(HeaderError::Empty);
    }
    if bytes.starts_with(&GZIP_MAGIC) {
        return Err(HeaderError::Gzip);
    }
    if bytes.starts_with(b"--") {
        return Err(HeaderError::PlainSql);
    }
    if !bytes.starts_with(MAGIC) {
        // A file shorter than the magic may still be a cut-off archive.
        if MAGIC.starts_with(bytes) {
            return Err(HeaderError::Truncated {
                len: bytes.len(),
                needed: 12,
            });
        }
        return Err(HeaderError::NotArchive);
    }

    let fixed = bytes.get(5..11).ok_or(HeaderError::Truncated {
        len: bytes.len(),
        needed: 12,
    })?;
    let version = ArchiveVersion::new(fixed[0], fixed[1], fixed[2]);
    let (int_size, off_size, format) = (fixed[3], fixed[4], fixed[5]);
    if !(1..=8).contains(&int_size) || !(1..=8).contains(&off_size) {
        return Err(HeaderError::InvalidSizes { int_size, off_size });
    }
    if format != FORMAT_CUSTOM {
        return Err(HeaderError::NotCustom { format });
    }

    let compression = parse_compression(bytes, version, int_size)?;
    Ok(ArchiveHeader {
        version,
        int_size,
        off_size,
        format,
        compression,
    })
}

fn parse_compression(
    bytes: &[u8],
    version: ArchiveVersion,
    int_size: u8,
) -> Result<Compression, HeaderError> {
    if version >= ArchiveVersion::new(1, 15, 0) {
        let algorithm = *bytes.get(11).ok_or(HeaderError::Truncated {
            len: bytes.len(),
            needed: 12,
        })?;
        return Ok(Compression::Algorithm(algorithm));
    }

    // An int: one sign byte (0 positive, 1 negative), then `int_size` magnitude bytes, little-endian.
    let needed = 12 + usize::from(int_size);
    let int_bytes = bytes.get(11..needed).ok_or(HeaderError::Truncated {
        len: bytes.len(),
        needed,
    })?;
    let magnitude = int_bytes[1..]
        .iter()
        .rev()
        .fold(0i64, |value, &byte| (value << 8) | i64::from(byte));
    let level = if int_bytes[0] == 0 {
        magnitude
    } else {
        -magnitude
    };
    Ok(Compression::Level(level))
}

/// Returns the newest archive version that `pg_restore` of the given PostgreSQL major version reads:
/// 1.14 for PostgreSQL 12 to 15, 1.15 for 16 and 1.16 for 17 and later.
///
/// NOTE: 17 and later are assumed to read at most 1.16. A future major that adds an archive version
/// will report newer archives as too new until this table is extended.
pub fn max_archive_version(pg_restore_major: u32) -> ArchiveVersion {
    match pg_restore_major {
        0..=11 => ArchiveVersion::new(1, 13, 0),
        12..=15 => ArchiveVersion::new(1, 14, 0),
        16 => ArchiveVersion::new(1, 15, 0),
        _ => ArchiveVersion::new(1, 16, 0),
    }
}

/// Parses the major version from `pg_restore --version` output such as
/// `pg_restore (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)`.
pub fn parse_pg_restore_major(version_output: &str) -> Option<u32> {
    let after_name = version_output.split(')').nth(1)?;
    let version = after_name.split_whitespace().next()?;
    let major = version.split(['.', 'b', 'r', 'd']).next()?;
    major.parse().ok()
}

/// Parses the header and checks that `pg_restore` of major version `pg_restore_major` can read it.
pub fn check_header(bytes: &[u8], pg_restore_major: u32) -> Result<ArchiveHeader, HeaderError> {
    let header = parse_header(bytes)?;
    let supported = max_archive_version(pg_restore_major);
    if header.version > supported {
        return Err(HeaderError::TooNew {
            archive: header.version,
            supported,
            pg_restore_major,
        });
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a header prefix as `pg_dump` writes it, with a compression int for archives before 1.15.
    fn header(minor: u8, format: u8) -> Vec<u8> {
        let mut bytes = b"PGDMP".to_vec();
        bytes.extend([1, minor, 0, 4, 8, format]);
        if minor >= 15 {
            bytes.push(0);
        } else {
            bytes.extend([1, 1, 0, 0, 0]);
        }
        bytes
    }

    #[test]
    fn parses_archive_1_14_header() {
        let parsed = parse_header(&header(14, 1)).unwrap();
        assert_eq!(parsed.version, ArchiveVersion::new(1, 14, 0));
        assert_eq!(parsed.int_size, 4);
        assert_eq!(parsed.off_size, 8);
        assert_eq!(parsed.format, FORMAT_CUSTOM);
        assert_eq!(parsed.compression, Compression::Level(-1));
    }

    #[test]
    fn parses_archive_1_16_compression_byte() {
        let mut bytes = header(16, 1);
        bytes[11] = 3;
        let parsed = parse_header(&bytes).unwrap();
        assert_eq!(parsed.compression, Compression::Algorithm(3));
    }

    #[test]
    fn classifies_non_archives() {
        assert_eq!(parse_header(b""), Err(HeaderError::Empty));
        assert_eq!(
            parse_header(b"--\n-- PostgreSQL database dump\n"),
            Err(HeaderError::PlainSql)
        );
        assert_eq!(
            parse_header(&[0x1f, 0x8b, 8, 0, 0, 0]),
            Err(HeaderError::Gzip)
        );
        assert_eq!(parse_header(b"hello world"), Err(HeaderError::NotArchive));
    }

    #[test]
    fn rejects_truncated_header() {
        assert!(matches!(
            parse_header(b"PGD"),
            Err(HeaderError::Truncated { .. })
        ));
        assert!(matches!(
            parse_header(b"PGDMP\x01\x0e"),
            Err(HeaderError::Truncated { .. })
        ));
        let full = header(14, 1);
        assert!(matches!(
            parse_header(&full[..13]),
            Err(HeaderError::Truncated { .. })
        ));
    }

    #[test]
    fn rejects_tar_and_directory_formats() {
        assert_eq!(
            parse_header(&header(14, 3)),
            Err(HeaderError::NotCustom { format: 3 })
        );
        assert_eq!(
            parse_header(&header(14, 5)),
            Err(HeaderError::NotCustom { format: 5 })
        );
    }

    #[test]
    fn rejects_invalid_int_size() {
        let mut bytes = header(14, 1);
        bytes[8] = 0;
        assert!(matches!(
            parse_header(&bytes),
            Err(HeaderError::InvalidSizes { .. })
        ));
    }

    #[test]
    fn reports_newer_archive_as_too_new() {
        let error = check_header(&header(16, 1), 15).unwrap_err();
        assert_eq!(
            error,
            HeaderError::TooNew {
                archive: ArchiveVersion::new(1, 16, 0),
                supported: ArchiveVersion::new(1, 14, 0),
                pg_restore_major: 15,
            }
        );
        assert!(error.to_string().contains("too new for this pg_restore"));
    }

    #[test]
    fn accepts_archive_up_to_supported_version() {
        assert!(check_header(&header(14, 1), 15).is_ok());
        assert!(check_header(&header(15, 1), 16).is_ok());
        assert!(check_header(&header(16, 1), 17).is_ok());
        assert!(check_header(&header(15, 1), 15).is_err());
    }

    #[test]
    fn maps_pg_major_to_archive_version() {
        assert_eq!(max_archive_version(12), ArchiveVersion::new(1, 14, 0));
        assert_eq!(max_archive_version(15), ArchiveVersion::new(1, 14, 0));
        assert_eq!(max_archive_version(16), ArchiveVersion::new(1, 15, 0));
        assert_eq!(max_archive_version(18), ArchiveVersion::new(1, 16, 0));
    }

    #[test]
    fn parses_pg_restore_version_output() {
        assert_eq!(
            parse_pg_restore_major("pg_restore (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(
            parse_pg_restore_major("pg_restore (PostgreSQL) 17.2"),
            Some(17)
        );
        assert_eq!(
            parse_pg_restore_major("pg_restore (PostgreSQL) 18beta1"),
            Some(18)
        );
        assert_eq!(parse_pg_restore_major("garbage"), None);
    }
}
