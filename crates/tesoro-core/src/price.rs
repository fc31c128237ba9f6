//! Daily BTC prices and FX rates, parsed from CSV text and looked up by date.
//!
//! A BTC price is stored per (day, currency). A currency without its own BTC series is
//! reached through an FX series: `rate` = units of the currency per one unit of the base
//! currency (e.g. PKR per USD) on that day. A missing day is an error naming the date and
//! currency, unless the caller allows the last known value, in which case the result says so.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;
use time::Date;

/// A bad price or FX input, naming file, line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// A CSV row that does not parse.
    #[error("{file}: line {line}, field {field}: {msg}")]
    BadRow {
        /// File name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// Column name.
        field: String,
        /// What is wrong.
        msg: String,
    },
    /// The file has no usable header.
    #[error("{file}: {msg}")]
    BadFile {
        /// File name.
        file: String,
        /// What is wrong.
        msg: String,
    },
    /// No price for that day.
    #[error("no BTC price in {currency} for {date}: import one (`tesoro prices import`), or allow the last known price (--allow-last-known)")]
    Missing {
        /// The day asked for.
        date: Date,
        /// The currency asked for.
        currency: String,
    },
    /// No FX rate for that day.
    #[error("no FX rate {base}->{quote} for {date}: import one (`tesoro fx import`), or allow the last known rate (--allow-last-known)")]
    MissingFx {
        /// The day asked for.
        date: Date,
        /// Base currency.
        base: String,
        /// Quote currency.
        quote: String,
    },
}

/// One parsed price row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PricePoint {
    /// The day.
    pub date: Date,
    /// ISO currency code, upper case.
    pub currency: String,
    /// Price of one BTC.
    pub price: Decimal,
}

/// One parsed FX row: one `base` is worth `rate` `quote`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FxPoint {
    /// The day.
    pub date: Date,
    /// Base currency (e.g. USD).
    pub base: String,
    /// Quote currency (e.g. PKR).
    pub quote: String,
    /// Units of quote per base.
    pub rate: Decimal,
}

/// Parses `YYYY-MM-DD` (a trailing `T…` time part is ignored).
pub fn parse_date(s: &str) -> Result<Date, String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = s.trim();
    let d = d.split(['T', ' ']).next().unwrap_or(d);
    Date::parse(d, &fmt).map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

/// Formats a day as `YYYY-MM-DD`.
pub fn fmt_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Parses a positive decimal amount (no exponent, no thousands separators).
pub fn parse_positive(s: &str) -> Result<Decimal, String> {
    let d: Decimal = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a decimal number"))?;
    if d <= Decimal::ZERO {
        return Err(format!("{s:?} must be greater than zero"));
    }
    Ok(d)
}

/// Checks a currency code: 3 to 5 ASCII letters, upper-cased.
pub fn parse_currency(s: &str) -> Result<String, String> {
    let c = s.trim().to_ascii_uppercase();
    if (3..=5).contains(&c.len()) && c.chars().all(|ch| ch.is_ascii_alphabetic()) {
        Ok(c)
    } else {
        Err(format!("{s:?} is not a currency code (e.g. USD, PKR)"))
    }
}

/// A tiny CSV splitter for the simple files these importers take (quoted fields allowed,
/// no embedded newlines). Returns the fields of one line.
pub fn split_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

fn header_index(header: &[String], names: &[&str]) -> Option<usize> {
    header
        .iter()
        .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
}

fn bad(file: &str, line: usize, field: &str, msg: String) -> PriceError {
    PriceError::BadRow {
        file: file.to_string(),
        line,
        field: field.to_string(),
        msg,
    }
}

/// Parses a Coin Metrics community CSV (`time,PriceUSD,...`). Rows with an empty PriceUSD are
/// skipped (early history has none); anything else that does not parse is an error.
pub fn parse_coinmetrics(file: &str, text: &str) -> Result<Vec<PricePoint>, PriceError> {
    let mut lines = text.lines().enumerate();
    let header = loop {
        match lines.next() {
            Some((_, l)) if l.trim().is_empty() => continue,
            Some((_, l)) => break split_csv_line(l),
            None => {
                return Err(PriceError::BadFile {
                    file: file.into(),
                    msg: "empty file".into(),
                })
            }
        }
    };
    let (Some(ti), Some(pi)) = (
        header_index(&header, &["time"]),
        header_index(&header, &["PriceUSD"]),
    ) else {
        return Err(PriceError::BadFile {
            file: file.into(),
            msg: "not a Coin Metrics file: the header needs the columns time and PriceUSD".into(),
        });
    };
    let mut out = Vec::new();
    for (i, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        let f = split_csv_line(l);
        let line = i + 1;
        let date =
            parse_date(f.get(ti).map_or("", |s| s)).map_err(|m| bad(file, line, "time", m))?;
        let raw = f.get(pi).map_or("", |s| s.as_str());
        if raw.is_empty() {
            continue;
        }
        let price = parse_positive(raw).map_err(|m| bad(file, line, "PriceUSD", m))?;
        out.push(PricePoint {
            date,
            currency: "USD".into(),
            price,
        });
    }
    Ok(out)
}

/// The data rows of a `date,value[,…]` CSV: blank lines, `#` comments and a leading `date`
/// header are skipped; each row comes with its 1-based line number, its fields, its date and
/// its positive value (named `value_field` in errors).
fn dated_rows<'a>(
    file: &'a str,
    text: &'a str,
    value_field: &'static str,
) -> impl Iterator<Item = Result<(usize, Vec<String>, Date, Decimal), PriceError>> + 'a {
    let mut first = true;
    text.lines().enumerate().filter_map(move |(i, l)| {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            return None;
        }
        let f = split_csv_line(l);
        let line = i + 1;
        let header = first && f.first().is_some_and(|h| h.eq_ignore_ascii_case("date"));
        first = false;
        if header {
            return None;
        }
        let row = (|| {
            let date =
                parse_date(f.first().map_or("", |s| s)).map_err(|m| bad(file, line, "date", m))?;
            let value = parse_positive(f.get(1).map_or("", |s| s))
                .map_err(|m| bad(file, line, value_field, m))?;
            Ok((line, f, date, value))
        })();
        Some(row)
    })
}

/// Parses a generic `date,price[,currency]` CSV (header optional). Rows without a currency
/// column take `default_currency`.
pub fn parse_generic_prices(
    file: &str,
    text: &str,
    default_currency: &str,
) -> Result<Vec<PricePoint>, PriceError> {
    let default_currency = parse_currency(default_currency).map_err(|m| PriceError::BadFile {
        file: file.into(),
        msg: m,
    })?;
    let mut out = Vec::new();
    for row in dated_rows(file, text, "price") {
        let (line, f, date, price) = row?;
        let currency = match f.get(2).filter(|c| !c.is_empty()) {
            Some(c) => parse_currency(c).map_err(|m| bad(file, line, "currency", m))?,
            None => default_currency.clone(),
        };
        out.push(PricePoint {
            date,
            currency,
            price,
        });
    }
    Ok(out)
}

/// Parses an FX CSV `date,rate[,quote[,base]]` (header optional): one base (default USD) is
/// worth `rate` quote. Rows without a quote column take `default_quote`.
pub fn parse_fx(
    file: &str,
    text: &str,
    default_quote: Option<&str>,
    default_base: &str,
) -> Result<Vec<FxPoint>, PriceError> {
    let base0 = parse_currency(default_base).map_err(|m| PriceError::BadFile {
        file: file.into(),
        msg: m,
    })?;
    let quote0 =
        default_quote
            .map(parse_currency)
            .transpose()
            .map_err(|m| PriceError::BadFile {
                file: file.into(),
                msg: m,
            })?;
    let mut out = Vec::new();
    for row in dated_rows(file, text, "rate") {
        let (line, f, date, rate) = row?;
        let quote = match f.get(2).filter(|c| !c.is_empty()) {
            Some(c) => parse_currency(c).map_err(|m| bad(file, line, "quote", m))?,
            None => quote0.clone().ok_or_else(|| {
                bad(
                    file,
                    line,
                    "quote",
                    "no quote currency: add a third column or pass --quote".into(),
                )
            })?,
        };
        let base = match f.get(3).filter(|c| !c.is_empty()) {
            Some(c) => parse_currency(c).map_err(|m| bad(file, line, "base", m))?,
            None => base0.clone(),
        };
        out.push(FxPoint {
            date,
            base,
            quote,
            rate,
        });
    }
    Ok(out)
}

/// A price looked up for a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quote {
    /// The value.
    pub value: Decimal,
    /// The day the value is from (earlier than asked when the last known value was used).
    #[serde(serialize_with = "ser_date")]
    pub from: Date,
    /// True when the asked day had no value and the last known one was used.
    pub stale: bool,
}

fn ser_date<S: serde::Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_date(*d))
}

/// BTC price series per currency and FX series, in memory.
#[derive(Debug, Clone, Default)]
pub struct PriceBook {
    btc: BTreeMap<String, BTreeMap<Date, Decimal>>,
    fx: BTreeMap<(String, String), BTreeMap<Date, Decimal>>,
    /// Use the last known value for a missing day (and flag it) instead of failing.
    pub allow_last_known: bool,
}

impl PriceBook {
    /// Adds a BTC price.
    pub fn add_price(&mut self, date: Date, currency: &str, price: Decimal) {
        self.btc
            .entry(currency.to_string())
            .or_default()
            .insert(date, price);
    }

    /// Adds an FX rate (one `base` is worth `rate` `quote`).
    pub fn add_fx(&mut self, date: Date, base: &str, quote: &str, rate: Decimal) {
        self.fx
            .entry((base.to_string(), quote.to_string()))
            .or_default()
            .insert(date, rate);
    }

    /// Currencies with a BTC series of their own.
    pub fn currencies(&self) -> Vec<String> {
        self.btc.keys().cloned().collect()
    }

    fn lookup(&self, series: Option<&BTreeMap<Date, Decimal>>, date: Date) -> Option<Quote> {
        let s = series?;
        if let Some(v) = s.get(&date) {
            return Some(Quote {
                value: *v,
                from: date,
                stale: false,
            });
        }
        if self.allow_last_known {
            return s.range(..date).next_back().map(|(d, v)| Quote {
                value: *v,
                from: *d,
                stale: true,
            });
        }
        None
    }

    /// Units of `quote` per one `base` on `date` (1 when equal; the inverse series works too).
    pub fn fx(&self, date: Date, base: &str, quote: &str) -> Result<Quote, PriceError> {
        if base == quote {
            return Ok(Quote {
                value: Decimal::ONE,
                from: date,
                stale: false,
            });
        }
        if let Some(q) = self.lookup(self.fx.get(&(base.to_string(), quote.to_string())), date) {
            return Ok(q);
        }
        if let Some(q) = self.lookup(self.fx.get(&(quote.to_string(), base.to_string())), date) {
            if !q.value.is_zero() {
                return Ok(Quote {
                    value: Decimal::ONE / q.value,
                    ..q
                });
            }
        }
        Err(PriceError::MissingFx {
            date,
            base: base.into(),
            quote: quote.into(),
        })
    }

    /// Price of one BTC in `currency` on `date`: the currency's own series, else the USD
    /// series times the USD→currency rate.
    pub fn btc_price(&self, date: Date, currency: &str) -> Result<Quote, PriceError> {
        if let Some(q) = self.lookup(self.btc.get(currency), date) {
            return Ok(q);
        }
        if currency != "USD" && !self.btc.contains_key(currency) {
            if let Some(usd) = self.lookup(self.btc.get("USD"), date) {
                let fx = self.fx(date, "USD", currency)?;
                return Ok(Quote {
                    value: usd.value * fx.value,
                    from: usd.from.min(fx.from),
                    stale: usd.stale || fx.stale,
                });
            }
        }
        Err(PriceError::Missing {
            date,
            currency: currency.into(),
        })
    }
}

/// Value of `sats` at `price` per BTC.
pub fn value_of(sats: u64, price: Decimal) -> Decimal {
    Decimal::from(sats) * price / Decimal::from(100_000_000u64)
}

/// Rounds money for display and reports: 2 decimals, half away from zero.
pub fn round_money(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_rows_and_errors_name_line_and_field() {
        let p = parse_generic_prices(
            "p.csv",
            "date,price\n2025-01-01,100.5\n2025-01-02,101,PKR\n",
            "usd",
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].currency, "PKR");
        let e = parse_generic_prices("p.csv", "2025-01-01,1\n2025-01-02,abc\n", "USD").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.csv: line 2, field price: \"abc\" is not a decimal number"
        );
        let e = parse_generic_prices("p.csv", "2025-13-01,1\n", "USD").unwrap_err();
        assert!(e.to_string().contains("line 1, field date"), "{e}");
    }

    #[test]
    fn missing_day_is_an_error_unless_last_known_allowed() {
        let mut b = PriceBook::default();
        let d1 = Date::from_calendar_date(2025, time::Month::January, 1).unwrap();
        let d3 = Date::from_calendar_date(2025, time::Month::January, 3).unwrap();
        b.add_price(d1, "USD", Decimal::from(100));
        let e = b.btc_price(d3, "USD").unwrap_err();
        assert!(e.to_string().contains("2025-01-03"), "{e}");
        b.allow_last_known = true;
        let q = b.btc_price(d3, "USD").unwrap();
        assert!(q.stale);
        assert_eq!(q.from, d1);
        b.add_fx(d1, "USD", "PKR", Decimal::from(280));
        let q = b.btc_price(d1, "PKR").unwrap();
        assert_eq!(q.value, Decimal::from(28000));
        assert!(!q.stale);
    }
}
