//! Numbers, ages, sizes and timestamps as the pages show them.

use chrono::{DateTime, Utc};
use duespark_queue::CappedCount;

/// Formats a whole number with thousands separators: `1234567` becomes `1,234,567`.
pub fn thousands(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        grouped.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Formats a capped count: exact below the cap, `10,000+` at it.
pub fn capped(count: CappedCount) -> String {
    if count.capped {
        format!("{}+", thousands(count.count))
    } else {
        thousands(count.count)
    }
}

/// Formats a duration in seconds with its two largest units: `45 s`, `3 min 12 s`, `2 h 5 min`,
/// `3 d 4 h`.
pub fn age(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (days, hours, minutes, secs) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes} min")
    } else if minutes > 0 {
        format!("{minutes} min {secs} s")
    } else {
        format!("{secs} s")
    }
}

/// Formats a time in UTC to the second, as `2026-12-05 09:30:00 UTC`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Formats an optional time; `None` becomes an empty string.
pub fn optional_timestamp(at: Option<DateTime<Utc>>) -> String {
    at.map(timestamp).unwrap_or_default()
}

/// Formats a size in bytes with binary units: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn bytes(size: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = size.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{size} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Shortens `text` to at most `max_chars` characters, ending with `…` when it was cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-12_345), "-12,345");
    }

    #[test]
    fn capped_counts_show_a_plus() {
        let exact = CappedCount {
            count: 42,
            capped: false,
        };
        let at_cap = CappedCount {
            count: 10_000,
            capped: true,
        };
        assert_eq!(capped(exact), "42");
        assert_eq!(capped(at_cap), "10,000+");
    }

    #[test]
    fn ages_use_two_units() {
        assert_eq!(age(0.4), "0 s");
        assert_eq!(age(45.0), "45 s");
        assert_eq!(age(192.0), "3 min 12 s");
        assert_eq!(age(7500.0), "2 h 5 min");
        assert_eq!(age(273_600.0), "3 d 4 h");
        assert_eq!(age(-3.0), "0 s");
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdefghij", 5), "abcd…");
    }
}
