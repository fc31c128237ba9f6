//! Daily market and network history: price, hashrate, issuance, fees and block count.
//!
//! The default history is the Coin Metrics community file committed at
//! `data/market/btc-daily.csv`, embedded in the binary so that nothing outside the program is
//! needed at run time. Difficulty is not a column of that file; it follows from the others as
//! `D = HashRate[TH/s] × 10^12 × 86400 / (2^32 × BlkCnt)` (Coin Metrics computes HashRate from
//! mean difficulty and block count, so this reverses it).

use std::path::Path;

use time::{Date, Duration};

use crate::error::{PlanError, Result};
use crate::network::{self, TWO_32};

/// The committed Coin Metrics file (see `data/market/README.md` for attribution and licence).
pub const EMBEDDED_CSV: &str = include_str!("../../../data/market/btc-daily.csv");

/// One day of history with every value present.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Day {
    /// UTC day.
    pub date: Date,
    /// Reference price, USD per BTC.
    pub price_usd: f64,
    /// Mean network hashrate of the day, TH/s.
    pub hashrate_ths: f64,
    /// New BTC issued (block subsidies) that day.
    pub issuance_btc: f64,
    /// Transaction fees paid that day, BTC.
    pub fees_btc: f64,
    /// Blocks mined that day.
    pub blocks: f64,
    /// Height of the first block of the day (reconstructed, see [`History`]).
    pub height: f64,
}

impl Day {
    /// Mean difficulty of the day, derived from hashrate and block count.
    pub fn difficulty(&self) -> f64 {
        self.hashrate_ths * 1e12 * 86_400.0 / (TWO_32 * self.blocks)
    }

    /// Mean fees per block, BTC.
    pub fn fees_per_block(&self) -> f64 {
        self.fees_btc / self.blocks
    }

    /// Hashprice of the day in USD per PH/s per day (FACTS.md formula), with the subsidy
    /// from the reconstructed heights and the day's mean fees per block.
    pub fn hashprice(&self) -> f64 {
        let reward = network::mean_subsidy(self.height, self.blocks) + self.fees_per_block();
        network::hashprice_usd_per_ph_day(self.difficulty(), reward, self.price_usd)
    }
}

/// A loaded history: complete days in date order, plus the days that had no data.
#[derive(Debug, Clone)]
pub struct History {
    days: Vec<Day>,
    missing: Vec<Date>,
    source: String,
}

const REQUIRED: [&str; 6] = [
    "time",
    "PriceUSD",
    "HashRate",
    "IssTotNtv",
    "FeeTotNtv",
    "BlkCnt",
];

impl History {
    /// The embedded Coin Metrics history.
    pub fn embedded() -> Result<History> {
        History::parse(EMBEDDED_CSV, "embedded history (data/market/btc-daily.csv)")
    }

    /// Reads a history CSV with the Coin Metrics columns
    /// `time,PriceUSD,HashRate,IssTotNtv,FeeTotNtv,BlkCnt` (others are ignored).
    pub fn from_path(path: &Path) -> Result<History> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        History::parse(&text, &path.display().to_string())
    }

    /// Parses CSV text; `source_name` is used in error messages.
    pub fn parse(text: &str, source_name: &str) -> Result<History> {
        let herr = |line: u64, message: String| PlanError::History {
            source_name: source_name.to_string(),
            line,
            message,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers = rdr
            .headers()
            .map_err(|e| herr(1, format!("cannot read the header: {e}")))?
            .clone();
        let mut col = [0usize; 6];
        for (i, name) in REQUIRED.iter().enumerate() {
            col[i] = headers
                .iter()
                .position(|h| h.trim() == *name)
                .ok_or_else(|| {
                    herr(
                        1,
                        format!(
                            "missing column `{name}`; the file needs the columns {}",
                            REQUIRED.join(",")
                        ),
                    )
                })?;
        }
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        let mut days: Vec<Day> = Vec::new();
        let mut missing = Vec::new();
        let mut prev: Option<Date> = None;
        for (i, rec) in rdr.records().enumerate() {
            let line = i as u64 + 2;
            let rec = rec.map_err(|e| herr(line, format!("unreadable row: {e}")))?;
            let field = |k: usize| rec.get(col[k]).map(str::trim).unwrap_or("");
            let date = Date::parse(field(0), &fmt).map_err(|_| {
                herr(
                    line,
                    format!("column `time`: `{}` is not a date YYYY-MM-DD", field(0)),
                )
            })?;
            if let Some(p) = prev {
                if date <= p {
                    return Err(herr(
                        line,
                        format!("dates must increase: {date} comes after {p}; sort the file"),
                    ));
                }
                // Days absent from the file count as missing.
                let mut d = p + Duration::days(1);
                while d < date {
                    missing.push(d);
                    d += Duration::days(1);
                }
            }
            prev = Some(date);
            let mut vals = [0f64; 5];
            let mut empty = false;
            for k in 1..6 {
                let s = field(k);
                if s.is_empty() {
                    empty = true;
                    continue;
                }
                let v: f64 = s.parse().map_err(|_| {
                    herr(
                        line,
                        format!("column `{}`: `{s}` is not a number", REQUIRED[k]),
                    )
                })?;
                if !v.is_finite() || v < 0.0 {
                    return Err(herr(
                        line,
                        format!("column `{}`: {s} must be a finite number ≥ 0", REQUIRED[k]),
                    ));
                }
                vals[k - 1] = v;
            }
            let [price, hashrate, iss, fees, blocks] = vals;
            if empty || price <= 0.0 || hashrate <= 0.0 || blocks <= 0.0 {
                missing.push(date);
                continue;
            }
            days.push(Day {
                date,
                price_usd: price,
                hashrate_ths: hashrate,
                issuance_btc: iss,
                fees_btc: fees,
                blocks,
                height: 0.0,
            });
        }
        if days.len() < 2 {
            return Err(herr(
                1,
                "the history needs at least two days with data".into(),
            ));
        }
        let mut h = History {
            days,
            missing,
            source: source_name.to_string(),
        };
        h.reconstruct_heights()
            .map_err(|m| herr(1, m.to_string()))?;
        Ok(h)
    }

    /// Block heights are anchored on a halving day found in the data: on a day whose mean
    /// issuance per block lies between two subsidy levels, the number of blocks still paid
    /// at the old subsidy tells how far the day starts before the halving height. Heights of
    /// other days follow by adding or subtracting BlkCnt (144 per day with no data).
    fn reconstruct_heights(&mut self) -> std::result::Result<(), &'static str> {
        let mut anchor: Option<(usize, f64)> = None;
        for (i, d) in self.days.iter().enumerate() {
            let per_block = d.issuance_btc / d.blocks;
            for era in 1..33u32 {
                let old = 50.0 / f64::from(1u32 << (era - 1));
                let new = old / 2.0;
                if per_block < old - 1e-9 && per_block > new + 1e-9 {
                    // iss = old×n + new×(blocks−n)  ⇒  n = (iss − new×blocks) / (old − new)
                    let n = ((d.issuance_btc - new * d.blocks) / (old - new)).round();
                    anchor = Some((i, f64::from(era) * 210_000.0 - n));
                }
            }
        }
        let Some((ai, ah)) = anchor else {
            return Err("no halving day in the history (issuance per block between two subsidy levels), so block heights cannot be anchored; include 2020-05-11 or 2024-04-20");
        };
        self.days[ai].height = ah;
        for i in ai + 1..self.days.len() {
            let gap = (self.days[i].date - self.days[i - 1].date).whole_days() as f64 - 1.0;
            self.days[i].height = self.days[i - 1].height + self.days[i - 1].blocks + gap * 144.0;
        }
        for i in (0..ai).rev() {
            let gap = (self.days[i + 1].date - self.days[i].date).whole_days() as f64 - 1.0;
            self.days[i].height = self.days[i + 1].height - self.days[i].blocks - gap * 144.0;
        }
        Ok(())
    }

    /// Where the history came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// All complete days.
    pub fn days(&self) -> &[Day] {
        &self.days
    }

    /// Days inside the file's span that have no data.
    pub fn missing(&self) -> &[Date] {
        &self.missing
    }

    /// First day with data.
    pub fn first(&self) -> Date {
        self.days[0].date
    }

    /// Last day with data.
    pub fn last(&self) -> Date {
        self.days[self.days.len() - 1].date
    }

    /// Index of `date`; `field` names the option or plan field that asked for it.
    pub fn index_of(&self, field: &str, date: Date) -> Result<usize> {
        if date < self.first() || date > self.last() {
            return Err(PlanError::DateOutsideData {
                field: field.to_string(),
                date,
                first: self.first(),
                last: self.last(),
            });
        }
        self.days
            .binary_search_by_key(&date, |d| d.date)
            .map_err(|_| PlanError::MissingDay {
                field: field.to_string(),
                date,
            })
    }

    /// The day `date`.
    pub fn day(&self, field: &str, date: Date) -> Result<&Day> {
        Ok(&self.days[self.index_of(field, date)?])
    }

    /// Every day from `from` to `to` inclusive; fails naming the first day without data.
    pub fn range(&self, field: &str, from: Date, to: Date) -> Result<&[Day]> {
        if to < from {
            return Err(PlanError::Option {
                option: field.to_string(),
                message: format!("the end {to} is before the start {from}"),
            });
        }
        let a = self.index_of(&format!("{field} (start)"), from)?;
        if to > self.last() {
            // A missing trailing day (e.g. 2025-12-30) is reported as missing, not outside.
            if let Some(m) = self.missing.iter().find(|m| **m > self.last() && **m <= to) {
                return Err(PlanError::MissingDay {
                    field: field.to_string(),
                    date: *m,
                });
            }
        }
        let b = self.index_of(&format!("{field} (end)"), to)?;
        let slice = &self.days[a..=b];
        let want = (to - from).whole_days() as usize + 1;
        if slice.len() != want {
            let hole = slice
                .windows(2)
                .find(|w| (w[1].date - w[0].date).whole_days() != 1)
                .map(|w| w[0].date + Duration::days(1))
                .unwrap_or(from);
            return Err(PlanError::MissingDay {
                field: field.to_string(),
                date: hole,
            });
        }
        Ok(slice)
    }

    /// Highest price on any day up to and including index `i`.
    pub fn running_high(&self, i: usize) -> f64 {
        self.days[..=i]
            .iter()
            .map(|d| d.price_usd)
            .fold(0.0, f64::max)
    }
}
