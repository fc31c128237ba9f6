//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use tesoro_plan::{parse_plan, AccumulationPlan, History, MiningPlan, Plan};
use time::Date;

/// The shared fixture (tests may read it; the product embeds its own copy).
pub fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/market/btc-daily.csv")
}

pub fn history() -> History {
    History::embedded().expect("embedded history parses")
}

/// (date, PriceUSD, HashRate, IssTotNtv, FeeTotNtv, BlkCnt) read from the fixture with plain
/// string splitting, independent of the crate's parser.
pub fn fixture_rows() -> Vec<(String, f64, f64, f64, f64, f64)> {
    let text = std::fs::read_to_string(fixture_path()).expect("fixture readable");
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f[1].is_empty() {
            continue;
        }
        let n = |i: usize| f[i].parse::<f64>().expect("number");
        out.push((f[0].to_string(), n(1), n(2), n(3), n(5), n(6)));
    }
    out
}

pub fn mining(text: &str) -> MiningPlan {
    match parse_plan(text, "test.toml", None).expect("valid plan") {
        Plan::Mining(m) => m,
        Plan::Accumulation(_) => panic!("expected a mining plan"),
    }
}

pub fn accumulation(text: &str) -> AccumulationPlan {
    match parse_plan(text, "test.toml", None).expect("valid plan") {
        Plan::Accumulation(a) => a,
        Plan::Mining(_) => panic!("expected an accumulation plan"),
    }
}

/// A simple mining plan in USD; `extra` is appended (e.g. a [costs] section).
pub fn mining_text(mw: f64, eff: f64, paid: f64, recovery: f64, affects: bool) -> String {
    format!(
        r#"
[plan]
kind = "mining"
name = "test"
start = 2021-01-01

[power]
capacity_mw = {mw}
mining_share_pct = 100
pue = 1.0
uptime_pct = 100

[[fleet]]
name = "m"
efficiency_j_per_th = {eff}
share_pct = 100
deployed = 2021-01-01

[tariff]
currency = "USD"
paid_per_kwh = {paid}
cost_recovery_per_kwh = {recovery}

[network]
plant_affects_difficulty = {affects}
"#
    )
}

pub fn d(s: &str) -> Date {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).expect("date")
}
