//! Currency exponents and English money formatting.
//!
//! Amounts are integer minor units plus a lowercase ISO 4217 code, as Stripe sends them. This module
//! owns the exponent table that converts minor units to whole units: 0 for zero-decimal currencies
//! such as JPY, 3 for three-decimal ones such as KWD and 2 for the rest. It never multiplies or
//! divides by a fixed 100. It does not convert between currencies.

use std::fmt::Write as _;

/// The error for a currency code missing from the exponent table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown currency {0:?}: expected a lowercase ISO 4217 code that Stripe supports, such as \"usd\""
)]
pub struct UnknownCurrency(pub String);

/// One row of the currency table: the lowercase ISO 4217 code, the number of decimal digits in the
/// minor unit, and the symbol that en-US text puts before the amount, if it has a well-known one.
struct Currency {
    code: &'static str,
    exponent: u32,
    symbol: Option<&'static str>,
}

const fn currency(code: &'static str, exponent: u32, symbol: Option<&'static str>) -> Currency {
    Currency {
        code,
        exponent,
        symbol,
    }
}

/// Currencies Stripe accepts for payments, sorted by code for binary search.
///
/// Exponents follow Stripe's API rather than ISO 4217 where the two differ, because invoice amounts
/// are compared with Stripe amounts in minor units. Stripe lists BIF, CLP, DJF, GNF, JPY, KMF, KRW,
/// MGA, PYG, RWF, UGX, VND, VUV, XAF, XOF and XPF as zero-decimal, and BHD, JOD, KWD, OMR and TND
/// as three-decimal. ISK is zero-decimal in ISO 4217 but two-decimal in Stripe's API (the decimals
/// must be 00), so it is 2 here, like HUF and TWD. Symbols are the en-US ones from Unicode CLDR;
/// currencies without one are written with their upper-case code and a space.
const CURRENCIES: &[Currency] = &[
    currency("aed", 2, None),
    currency("afn", 2, None),
    currency("all", 2, None),
    currency("amd", 2, None),
    currency("ang", 2, None),
    currency("aoa", 2, None),
    currency("ars", 2, None),
    currency("aud", 2, Some("A$")),
    currency("awg", 2, None),
    currency("azn", 2, None),
    currency("bam", 2, None),
    currency("bbd", 2, None),
    currency("bdt", 2, None),
    currency("bgn", 2, None),
    currency("bhd", 3, None),
    currency("bif", 0, None),
    currency("bmd", 2, None),
    currency("bnd", 2, None),
    currency("bob", 2, None),
    currency("brl", 2, Some("R$")),
    currency("bsd", 2, None),
    currency("bwp", 2, None),
    currency("byn", 2, None),
    currency("bzd", 2, None),
    currency("cad", 2, Some("CA$")),
    currency("cdf", 2, None),
    currency("chf", 2, None),
    currency("clp", 0, None),
    currency("cny", 2, Some("CN¥")),
    currency("cop", 2, None),
    currency("crc", 2, None),
    currency("cve", 2, None),
    currency("czk", 2, None),
    currency("djf", 0, None),
    currency("dkk", 2, None),
    currency("dop", 2, None),
    currency("dzd", 2, None),
    currency("egp", 2, None),
    currency("etb", 2, None),
    currency("eur", 2, Some("€")),
    currency("fjd", 2, None),
    currency("fkp", 2, None),
    currency("gbp", 2, Some("£")),
    currency("gel", 2, None),
    currency("ghs", 2, None),
    currency("gip", 2, None),
    currency("gmd", 2, None),
    currency("gnf", 0, None),
    currency("gtq", 2, None),
    currency("gyd", 2, None),
    currency("hkd", 2, Some("HK$")),
    currency("hnl", 2, None),
    currency("htg", 2, None),
    currency("huf", 2, None),
    currency("idr", 2, None),
    currency("ils", 2, Some("₪")),
    currency("inr", 2, Some("₹")),
    currency("isk", 2, None),
    currency("jmd", 2, None),
    currency("jod", 3, None),
    currency("jpy", 0, Some("¥")),
    currency("kes", 2, None),
    currency("kgs", 2, None),
    currency("khr", 2, None),
    currency("kmf", 0, None),
    currency("krw", 0, Some("₩")),
    currency("kwd", 3, None),
    currency("kyd", 2, None),
    currency("kzt", 2, None),
    currency("lak", 2, None),
    currency("lbp", 2, None),
    currency("lkr", 2, None),
    currency("lrd", 2, None),
    currency("lsl", 2, None),
    currency("mad", 2, None),
    currency("mdl", 2, None),
    currency("mga", 0, None),
    currency("mkd", 2, None),
    currency("mmk", 2, None),
    currency("mnt", 2, None),
    currency("mop", 2, None),
    currency("mur", 2, None),
    currency("mvr", 2, None),
    currency("mwk", 2, None),
    currency("mxn", 2, Some("MX$")),
    currency("myr", 2, None),
    currency("mzn", 2, None),
    currency("nad", 2, None),
    currency("ngn", 2, None),
    currency("nio", 2, None),
    currency("nok", 2, None),
    currency("npr", 2, None),
    currency("nzd", 2, Some("NZ$")),
    currency("omr", 3, None),
    currency("pab", 2, None),
    currency("pen", 2, None),
    currency("pgk", 2, None),
    currency("php", 2, Some("₱")),
    currency("pkr", 2, None),
    currency("pln", 2, None),
    currency("pyg", 0, None),
    currency("qar", 2, None),
    currency("ron", 2, None),
    currency("rsd", 2, None),
    currency("rub", 2, None),
    currency("rwf", 0, None),
    currency("sar", 2, None),
    currency("sbd", 2, None),
    currency("scr", 2, None),
    currency("sek", 2, None),
    currency("sgd", 2, None),
    currency("shp", 2, None),
    currency("sle", 2, None),
    currency("sos", 2, None),
    currency("srd", 2, None),
    currency("stn", 2, None),
    currency("szl", 2, None),
    currency("thb", 2, None),
    currency("tjs", 2, None),
    currency("tnd", 3, None),
    currency("top", 2, None),
    currency("try", 2, None),
    currency("ttd", 2, None),
    currency("twd", 2, Some("NT$")),
    currency("tzs", 2, None),
    currency("uah", 2, None),
    currency("ugx", 0, None),
    currency("usd", 2, Some("$")),
    currency("uyu", 2, None),
    currency("uzs", 2, None),
    currency("vnd", 0, Some("₫")),
    currency("vuv", 0, None),
    currency("wst", 2, None),
    currency("xaf", 0, None),
    currency("xcd", 2, Some("EC$")),
    currency("xof", 0, None),
    currency("xpf", 0, None),
    currency("yer", 2, None),
    currency("zar", 2, None),
    currency("zmw", 2, None),
];

fn find_currency(code: &str) -> Option<&'static Currency> {
    CURRENCIES
        .binary_search_by(|row| row.code.cmp(code))
        .ok()
        .map(|index| &CURRENCIES[index])
}

/// Returns the number of decimal digits in the minor unit of a lowercase ISO 4217 code, or `None`
/// for a code that is not in the table (upper-case input included).
pub fn currency_exponent(code: &str) -> Option<u32> {
    find_currency(code).map(|row| row.exponent)
}

/// Formats an amount in minor units as en-US text: `$1,250.00`, `¥5,000`, `KWD 1.500`.
///
/// The whole units are grouped in thousands with commas and the minor units follow a point, with
/// as many digits as the currency's exponent. A negative amount gets a leading minus sign.
pub fn format_amount(minor_units: i64, currency: &str) -> Result<String, UnknownCurrency> {
    let row = find_currency(currency).ok_or_else(|| UnknownCurrency(currency.to_owned()))?;

    let magnitude = minor_units.unsigned_abs();
    let divisor = 10_u64.pow(row.exponent);
    let whole = magnitude / divisor;
    let fraction = magnitude % divisor;

    let mut text = String::new();
    if minor_units < 0 {
        text.push('-');
    }
    match row.symbol {
        Some(symbol) => text.push_str(symbol),
        None => {
            text.push_str(&row.code.to_ascii_uppercase());
            text.push(' ');
        }
    }
    text.push_str(&group_thousands(whole));
    if row.exponent > 0 {
        let width = row.exponent as usize;
        write!(text, ".{fraction:0width$}").expect("writing to a String cannot fail");
    }
    Ok(text)
}

/// Writes `value` with a comma between each group of three digits, counted from the right.
fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        let remaining = digits.len() - index;
        if index > 0 && remaining.is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_lowercase() {
        for pair in CURRENCIES.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} must sort before {}",
                pair[0].code,
                pair[1].code
            );
        }
        for row in CURRENCIES {
            assert_eq!(row.code.len(), 3, "{}", row.code);
            assert!(
                row.code.bytes().all(|byte| byte.is_ascii_lowercase()),
                "{}",
                row.code
            );
        }
    }

    #[test]
    fn exponent_of_two_decimal_currencies() {
        for code in [
            "usd", "eur", "gbp", "cad", "aud", "chf", "inr", "isk", "huf", "twd",
        ] {
            assert_eq!(currency_exponent(code), Some(2), "{code}");
        }
    }

    #[test]
    fn exponent_of_zero_decimal_currencies() {
        let zero_decimal = [
            "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
            "vuv", "xaf", "xof", "xpf",
        ];
        for code in zero_decimal {
            assert_eq!(currency_exponent(code), Some(0), "{code}");
        }
    }

    #[test]
    fn exponent_of_three_decimal_currencies() {
        for code in ["bhd", "jod", "kwd", "omr", "tnd"] {
            assert_eq!(currency_exponent(code), Some(3), "{code}");
        }
    }

    #[test]
    fn exponent_of_unknown_codes_is_none() {
        assert_eq!(currency_exponent("xyz"), None);
        assert_eq!(currency_exponent("USD"), None);
        assert_eq!(currency_exponent(""), None);
        assert_eq!(currency_exponent("usdollar"), None);
    }

    #[test]
    fn format_usd_groups_thousands() {
        assert_eq!(format_amount(125_000, "usd").unwrap(), "$1,250.00");
    }

    #[test]
    fn format_eur_below_one_thousand() {
        assert_eq!(format_amount(9_990, "eur").unwrap(), "€99.90");
    }

    #[test]
    fn format_gbp_uses_pound_sign() {
        assert_eq!(format_amount(123_456_789, "gbp").unwrap(), "£1,234,567.89");
    }

    #[test]
    fn format_jpy_has_no_decimals() {
        assert_eq!(format_amount(5_000, "jpy").unwrap(), "¥5,000");
    }

    #[test]
    fn format_kwd_uses_code_and_three_decimals() {
        assert_eq!(format_amount(1_500, "kwd").unwrap(), "KWD 1.500");
    }

    #[test]
    fn format_currency_without_symbol_uses_code() {
        assert_eq!(format_amount(250_075, "chf").unwrap(), "CHF 2,500.75");
        assert_eq!(format_amount(1_000_000, "xof").unwrap(), "XOF 1,000,000");
    }

    #[test]
    fn format_small_amounts_pad_minor_units() {
        assert_eq!(format_amount(5, "usd").unwrap(), "$0.05");
        assert_eq!(format_amount(0, "usd").unwrap(), "$0.00");
        assert_eq!(format_amount(7, "kwd").unwrap(), "KWD 0.007");
    }

    #[test]
    fn format_negative_amount_has_leading_minus() {
        assert_eq!(format_amount(-125_000, "usd").unwrap(), "-$1,250.00");
        assert_eq!(format_amount(-1_500, "kwd").unwrap(), "-KWD 1.500");
    }

    #[test]
    fn format_extreme_amounts_do_not_overflow() {
        assert_eq!(
            format_amount(i64::MIN, "usd").unwrap(),
            "-$92,233,720,368,547,758.08"
        );
        assert_eq!(
            format_amount(i64::MAX, "jpy").unwrap(),
            "¥9,223,372,036,854,775,807"
        );
    }

    #[test]
    fn format_unknown_currency_is_an_error() {
        assert_eq!(
            format_amount(100, "xyz"),
            Err(UnknownCurrency("xyz".to_owned()))
        );
        assert!(format_amount(100, "USD").is_err());
    }
}
