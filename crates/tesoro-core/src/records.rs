//! Off-chain records from CSV: purchases, seizure orders, donations, sales.
//!
//! Columns (header required, any order, names case-insensitive):
//! `date, btc, fiat_amount, currency, counterparty, reference[, txid][, kind][, entity]`.
//! `btc` is a decimal with at most 8 places (converted to sats exactly); `fiat_amount` and
//! `currency` are optional together; `kind` defaults to the importer's `--kind`.

use rust_decimal::Decimal;

use crate::classify::{Record, RecordKind};
use crate::price::{parse_currency, parse_date, split_csv_line};

/// A bad records file, naming file, line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: line {line}, field {field}: {msg}")]
pub struct RecordError {
    /// File name.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Column.
    pub field: String,
    /// What is wrong.
    pub msg: String,
}

/// Parses a BTC amount (decimal, at most 8 places, positive) into sats.
pub fn parse_btc(s: &str) -> Result<u64, String> {
    let d: Decimal = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a BTC amount"))?;
    if d <= Decimal::ZERO {
        return Err(format!("{s:?} must be greater than zero"));
    }
    let sats = d * Decimal::from(100_000_000u64);
    if sats.fract() != Decimal::ZERO {
        return Err(format!("{s:?} has more than 8 decimal places"));
    }
    u64::try_from(sats).map_err(|_| format!("{s:?} is too large"))
}

/// Parses a records CSV.
pub fn parse_records(
    file: &str,
    text: &str,
    default_kind: RecordKind,
) -> Result<Vec<Record>, RecordError> {
    let err = |line: usize, field: &str, msg: String| RecordError {
        file: file.to_string(),
        line,
        field: field.to_string(),
        msg,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((hl, header)) = lines.next() else {
        return Err(err(1, "header", "empty file".into()));
    };
    let header: Vec<String> = split_csv_line(header)
        .into_iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let col = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
    let date_c =
        col(&["date", "day"]).ok_or_else(|| err(hl + 1, "date", "no date column".into()))?;
    let btc_c =
        col(&["btc", "amount_btc"]).ok_or_else(|| err(hl + 1, "btc", "no btc column".into()))?;
    let fiat_c = col(&["fiat_amount", "fiat"]);
    let cur_c = col(&["currency"]);
    let cp_c = col(&["counterparty", "custodian"]);
    let ref_c = col(&["reference", "ref"]);
    let txid_c = col(&["txid"]);
    let kind_c = col(&["kind"]);
    let ent_c = col(&["entity"]);
    let mut out = Vec::new();
    for (i, l) in lines {
        let line = i + 1;
        let f = split_csv_line(l);
        let get = |c: Option<usize>| {
            c.and_then(|c| f.get(c))
                .map(|s| s.as_str())
                .filter(|s| !s.is_empty())
        };
        let date = parse_date(get(Some(date_c)).unwrap_or("")).map_err(|m| err(line, "date", m))?;
        let sats = parse_btc(get(Some(btc_c)).unwrap_or("")).map_err(|m| err(line, "btc", m))?;
        let fiat = get(fiat_c)
            .map(|s| {
                s.parse::<Decimal>()
                    .map_err(|_| format!("{s:?} is not a decimal number"))
                    .and_then(|d| {
                        if d < Decimal::ZERO {
                            Err(format!("{s:?} is negative"))
                        } else {
                            Ok(d)
                        }
                    })
            })
            .transpose()
            .map_err(|m| err(line, "fiat_amount", m))?;
        let currency = get(cur_c)
            .map(parse_currency)
            .transpose()
            .map_err(|m| err(line, "currency", m))?;
        if fiat.is_some() && currency.is_none() {
            return Err(err(
                line,
                "currency",
                "a fiat amount needs a currency".into(),
            ));
        }
        let txid = get(txid_c)
            .map(|s| {
                s.parse::<bitcoin::Txid>()
                    .map_err(|_| format!("{s:?} is not a txid (64 hex digits)"))
            })
            .transpose()
            .map_err(|m| err(line, "txid", m))?;
        let kind = get(kind_c)
            .map(|s| s.parse::<RecordKind>())
            .transpose()
            .map_err(|m| err(line, "kind", m))?
            .unwrap_or(default_kind);
        let entity = get(ent_c)
            .map(|s| {
                crate::EntityCode::parse(s)
                    .map(|c| c.as_str().to_string())
                    .map_err(|e| e.to_string())
            })
            .transpose()
            .map_err(|m| err(line, "entity", m))?;
        out.push(Record {
            id: 0,
            kind,
            entity,
            date,
            sats,
            fiat,
            currency,
            counterparty: get(cp_c).map(str::to_string),
            reference: get(ref_c).map(str::to_string),
            txid,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btc_is_exact() {
        assert_eq!(parse_btc("1.5").unwrap(), 150_000_000);
        assert_eq!(parse_btc("0.00000001").unwrap(), 1);
        assert!(parse_btc("0.000000001").is_err());
        assert!(parse_btc("-1").is_err());
    }

    #[test]
    fn errors_name_line_and_field() {
        let t = "date,btc,fiat_amount,currency,counterparty,reference\n2025-01-01,1,100,USD,X,r1\n2025-01-02,x,1,USD,X,r2\n";
        let e = parse_records("p.csv", t, RecordKind::Purchase).unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.field, "btc");
    }
}
