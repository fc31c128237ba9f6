//! Figures as people read them: BTC with thousands separators, money with two decimals,
//! dates as YYYY-MM-DD.

use rust_decimal::Decimal;

/// Sats as BTC, all eight decimals, thousands grouped: `6,238.00000000`.
pub fn btc(sats: u64) -> String {
    format!(
        "{}.{:08}",
        group(&(sats / 100_000_000).to_string()),
        sats % 100_000_000
    )
}

/// Signed sats as BTC (`-1.50000000`).
pub fn btc_signed(sats: i64) -> String {
    if sats < 0 {
        format!("-{}", btc(sats.unsigned_abs()))
    } else {
        btc(sats as u64)
    }
}

/// Sats as BTC for a headline, rounded to whole BTC below a thousandth: `6,238.05`.
pub fn btc_short(sats: u64) -> String {
    let hundredths = (sats + 500_000) / 1_000_000;
    format!(
        "{}.{:02}",
        group(&(hundredths / 100).to_string()),
        hundredths % 100
    )
}

/// Money with two decimals and grouped thousands: `745,452,781.23`.
pub fn money(d: Decimal) -> String {
    let r = tesoro_core::price::round_money(d);
    let neg = r.is_sign_negative() && !r.is_zero();
    let s = r.abs().to_string();
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i.to_string(), format!("{f:0<2}")),
        None => (s.clone(), "00".to_string()),
    };
    format!(
        "{}{}.{}",
        if neg { "-" } else { "" },
        group(&int),
        &frac[..2]
    )
}

/// Money in millions for a headline: `745.45M`.
pub fn money_short(d: Decimal) -> String {
    let v = tesoro_core::price::round_money(d);
    let m = Decimal::from(1_000_000);
    let b = Decimal::from(1_000_000_000);
    if v.abs() >= b {
        format!("{}B", (v / b).round_dp(2))
    } else if v.abs() >= m {
        format!("{}M", (v / m).round_dp(2))
    } else {
        money(v)
    }
}

fn group(digits: &str) -> String {
    let n = digits.len();
    let mut out = String::with_capacity(n + n / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A Unix time's UTC day.
pub fn day(unix: u32) -> String {
    tesoro_core::price::fmt_date(tesoro_core::movement::date_of_unix(i64::from(unix)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn groups_and_rounds() {
        assert_eq!(btc(623_800_000_000), "6,238.00000000");
        assert_eq!(btc(1), "0.00000001");
        assert_eq!(btc_signed(-150_000_000), "-1.50000000");
        assert_eq!(btc_short(623_805_000_000), "6,238.05");
        assert_eq!(btc_short(0), "0.00");
        assert_eq!(
            money(Decimal::from_str("745452781.235").unwrap()),
            "745,452,781.24"
        );
        assert_eq!(money(Decimal::from_str("-12.5").unwrap()), "-12.50");
        assert_eq!(money(Decimal::ZERO), "0.00");
        assert_eq!(
            money_short(Decimal::from_str("745452781.23").unwrap()),
            "745.45M"
        );
        assert_eq!(
            money_short(Decimal::from_str("1234.5").unwrap()),
            "1,234.50"
        );
    }
}
