//! Plan files (TOML): the schema, its units, and validation into model types.
//!
//! Every number in a plan file carries its unit in its name (`_mw`, `_pct`, `_per_kwh`,
//! `_usd_per_th`, `_j_per_th` …). Validation names the offending field and says what is
//! accepted, so a ministry analyst can fix a file without reading code. See
//! `docs/planning.md` for the full reference and `plans/` for worked examples.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::{Date, Month};

use crate::error::{field_err, PlanError, Result};

/// ISO 4217 codes accepted for tariffs. Others are rejected so that a typo ("PRK") is caught.
pub const KNOWN_CURRENCIES: &[&str] = &[
    "USD", "PKR", "EUR", "GBP", "INR", "BTN", "CNY", "JPY", "CHF", "CAD", "AUD", "NZD", "BRL",
    "ARS", "MXN", "CLP", "COP", "PEN", "PYG", "BOB", "UYU", "NGN", "KES", "ZAR", "GHS", "ETB",
    "EGP", "TRY", "AED", "SAR", "QAR", "KWD", "OMR", "BHD", "JOD", "IQD", "IRR", "AFN", "KZT",
    "UZS", "KGS", "TJS", "TMT", "AZN", "GEL", "AMD", "RUB", "UAH", "IDR", "PHP", "THB", "VND",
    "MYR", "SGD", "HKD", "KRW", "BDT", "LKR", "NPR", "MMK", "LAK", "KHR", "MNT", "NOK", "SEK",
    "DKK", "ISK", "PLN", "CZK", "HUF", "RON", "XAF", "XOF",
];

// ---------------------------------------------------------------- raw (as written) schema

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    plan: RawHeader,
    power: Option<RawPower>,
    #[serde(default)]
    fleet: Vec<RawGeneration>,
    tariff: Option<RawTariff>,
    costs: Option<RawCosts>,
    reserve: Option<RawReserve>,
    network: Option<RawNetwork>,
    rule: Option<RawRule>,
    budget: Option<RawBudget>,
    funding: Option<RawFunding>,
    holdings: Option<RawHoldings>,
    projection: Option<RawProjection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    kind: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    start: toml::Value,
    #[serde(default)]
    fiscal_year_start_month: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPower {
    capacity_mw: f64,
    mining_share_pct: f64,
    #[serde(default = "one")]
    pue: f64,
    #[serde(default = "hundred")]
    uptime_pct: f64,
    #[serde(default)]
    curtailment: Vec<RawSeason>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeason {
    from: String,
    to: String,
    hours_off_per_day: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeneration {
    name: String,
    efficiency_j_per_th: f64,
    share_pct: f64,
    deployed: toml::Value,
    #[serde(default)]
    retired: Option<toml::Value>,
    #[serde(default)]
    capex_usd_per_th: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTariff {
    currency: String,
    paid_per_kwh: f64,
    cost_recovery_per_kwh: f64,
    #[serde(default)]
    local_per_usd: Option<f64>,
    #[serde(default)]
    local_depreciation_pct_per_year: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCosts {
    #[serde(default = "four")]
    capex_lifetime_years: f64,
    #[serde(default)]
    financing_rate_pct: f64,
    #[serde(default)]
    opex_usd_per_mw_year: f64,
    #[serde(default)]
    pool_fee_pct: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReserve {
    #[serde(default = "electricity")]
    sell_to_cover: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default = "yes")]
    plant_affects_difficulty: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    kind: String,
    #[serde(default)]
    btc: Option<f64>,
    #[serde(default)]
    usd: Option<f64>,
    #[serde(default)]
    every: Option<String>,
    #[serde(default)]
    target_increase_usd: Option<f64>,
    #[serde(default)]
    drawdown_pct: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    #[serde(default)]
    cap_usd_per_fiscal_year: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunding {
    #[serde(default = "yes")]
    new_money: bool,
    #[serde(default)]
    offsets_usd_per_year: f64,
    #[serde(default)]
    mining_plan: Option<String>,
    #[serde(default = "hundred")]
    mining_share_pct: f64,
    #[serde(default)]
    seizures: Vec<RawSeizure>,
    #[serde(default)]
    seizures_btc_per_year: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeizure {
    date: toml::Value,
    btc: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoldings {
    #[serde(default)]
    initial_btc: f64,
    #[serde(default)]
    initial_cost_usd: f64,
    #[serde(default = "yes")]
    no_sale: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProjection {
    #[serde(default)]
    price_usd: Option<f64>,
    #[serde(default)]
    price_growth_pct_per_year: f64,
    #[serde(default)]
    hashrate_growth_pct_per_year: Option<f64>,
    #[serde(default)]
    fees_btc_per_block: Option<f64>,
}

fn one() -> f64 {
    1.0
}
fn four() -> f64 {
    4.0
}
fn hundred() -> f64 {
    100.0
}
fn yes() -> bool {
    true
}
fn electricity() -> String {
    "electricity".into()
}

// ---------------------------------------------------------------- validated model types

/// A validated plan.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Plan {
    /// State mining.
    Mining(MiningPlan),
    /// A buying programme.
    Accumulation(AccumulationPlan),
}

impl Plan {
    /// The plan's name.
    pub fn name(&self) -> &str {
        match self {
            Plan::Mining(p) => &p.name,
            Plan::Accumulation(p) => &p.name,
        }
    }
    /// The plan's first day.
    pub fn start(&self) -> Date {
        match self {
            Plan::Mining(p) => p.start,
            Plan::Accumulation(p) => p.start,
        }
    }
}

/// A season (day-of-year window, wrapping over New Year if `from` > `to`) with hours off.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Season {
    /// First day (month, day), inclusive.
    pub from: (u8, u8),
    /// Last day (month, day), inclusive.
    pub to: (u8, u8),
    /// Hours per day the plant is off in this season (0–24).
    pub hours_off_per_day: f64,
}

impl Season {
    /// Whether `date` falls in the season.
    pub fn contains(&self, date: Date) -> bool {
        let md = (u8::from(date.month()), date.day());
        if self.from <= self.to {
            md >= self.from && md <= self.to
        } else {
            md >= self.from || md <= self.to
        }
    }
}

/// One ASIC generation of the fleet.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Generation {
    /// Model or label, e.g. "S21 XP".
    pub name: String,
    /// Efficiency, joules per terahash (= W per TH/s).
    pub efficiency_j_per_th: f64,
    /// Share of the mining IT power on this generation while deployed (0–1).
    pub share: f64,
    /// First day running.
    pub deployed: Date,
    /// First day no longer running, if any.
    pub retired: Option<Date>,
    /// Purchase price, USD per TH/s.
    pub capex_usd_per_th: f64,
}

impl Generation {
    /// Whether the generation runs on `date`.
    pub fn active(&self, date: Date) -> bool {
        date >= self.deployed && self.retired.is_none_or(|r| date < r)
    }
}

/// Electricity tariff.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tariff {
    /// ISO 4217 code of the tariff currency.
    pub currency: String,
    /// Tariff the plant pays, local currency per kWh.
    pub paid_per_kwh: f64,
    /// Cost-recovery tariff (what the power costs the system), local currency per kWh.
    pub cost_recovery_per_kwh: f64,
    /// Local currency units per USD on the plan's start date (1 for USD).
    pub local_per_usd: f64,
    /// Depreciation of the local currency against USD, fraction per year (0.05 = 5 %).
    pub local_depreciation_per_year: f64,
}

/// What part of the mined BTC is sold to pay costs (the rest reaches the reserve).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SellToCover {
    /// Keep everything; costs are paid from the budget.
    None,
    /// Sell enough each day to pay the electricity bill at the paid tariff.
    Electricity,
    /// Sell enough each day to pay electricity, opex and capex.
    AllCosts,
}

/// Price and network assumptions for deterministic projections.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Projection {
    /// Starting price (USD/BTC); default: the history's price on the first projected day.
    pub price_usd: Option<f64>,
    /// Price growth, fraction per year.
    pub price_growth_per_year: f64,
    /// Network hashrate growth, fraction per year; `None` = fitted to the last two years.
    pub hashrate_growth_per_year: Option<f64>,
    /// Fees per block, BTC; default: mean of the last 365 days of history.
    pub fees_btc_per_block: Option<f64>,
}

/// A validated mining plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MiningPlan {
    /// Name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// First day the plant runs.
    pub start: Date,
    /// First month of the fiscal year (1 = calendar year, 7 = July–June).
    pub fiscal_year_start_month: u8,
    /// Power allocated, MW.
    pub capacity_mw: f64,
    /// Share of it used for mining (0–1).
    pub mining_share: f64,
    /// Power usage effectiveness: facility power / IT power (≥ 1).
    pub pue: f64,
    /// Share of hours running outside curtailment (0–1).
    pub uptime: f64,
    /// Seasons with hours off.
    pub curtailment: Vec<Season>,
    /// ASIC generations.
    pub fleet: Vec<Generation>,
    /// Tariff.
    pub tariff: Tariff,
    /// Capex amortisation period, years.
    pub capex_lifetime_years: f64,
    /// Financing rate on capex, fraction per year.
    pub financing_rate: f64,
    /// Operating cost other than electricity, USD per MW of mining power per year.
    pub opex_usd_per_mw_year: f64,
    /// Pool fee, fraction of rewards.
    pub pool_fee: f64,
    /// What is sold to cover costs.
    pub sell_to_cover: SellToCover,
    /// Whether the plant's hashrate raises difficulty at the next retargets.
    pub plant_affects_difficulty: bool,
    /// Projection assumptions.
    pub projection: Projection,
}

/// How often a rule acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    /// Every day.
    Day,
    /// Every 7 days from the start.
    Week,
    /// Once a month, on the start's day of month (or the month's last day).
    Month,
}

impl Every {
    /// Whether `date` is an action day for a programme starting on `start`.
    pub fn acts_on(self, start: Date, date: Date) -> bool {
        if date < start {
            return false;
        }
        match self {
            Every::Day => true,
            Every::Week => (date - start).whole_days() % 7 == 0,
            Every::Month => {
                let last = date.month().length(date.year());
                date.day() == start.day().min(last)
            }
        }
    }
}

/// A buying rule.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// Buy a fixed amount of BTC each period.
    FixedBtc {
        /// BTC per period.
        btc: f64,
    },
    /// Spend a fixed amount of USD each period.
    FixedFiat {
        /// USD per period.
        usd: f64,
    },
    /// Buy (or sell, if allowed) so the programme's coins are worth `k × target_increase_usd`
    /// after k periods.
    ValueAveraging {
        /// Target value increase per period, USD.
        target_increase_usd: f64,
    },
    /// Spend `usd` each period in which the price is at least `drawdown` below its running high.
    BuyTheDip {
        /// USD per period.
        usd: f64,
        /// Drawdown threshold (0.2 = 20 % below the high).
        drawdown: f64,
    },
    /// Buy nothing (holdings change only by mining and seizures).
    None,
}

/// A scheduled seizure or forfeiture credited to the reserve at no cost.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Seizure {
    /// Day credited.
    pub date: Date,
    /// BTC.
    pub btc: f64,
}

/// A validated accumulation plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccumulationPlan {
    /// Name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// First day of the programme.
    pub start: Date,
    /// First month of the fiscal year (1 = calendar, 7 = July–June).
    pub fiscal_year_start_month: u8,
    /// Buying rule.
    pub rule: Rule,
    /// Period of the rule.
    pub every: Every,
    /// Cap on USD spent per fiscal year.
    pub cap_usd_per_fiscal_year: Option<f64>,
    /// Whether purchases may use new money; if false, only `offsets_usd_per_year` is spent.
    pub new_money: bool,
    /// Budget-neutral money that accrues each year (USD), spent only when `new_money` is false.
    pub offsets_usd_per_year: f64,
    /// A mining plan whose reserve output is credited.
    pub mining: Option<Box<MiningPlan>>,
    /// Share of that plan's reserve output credited (0–1).
    pub mining_share: f64,
    /// Dated seizures.
    pub seizures: Vec<Seizure>,
    /// Seizures per year in projections (spread evenly over days), BTC.
    pub seizures_btc_per_year: f64,
    /// BTC held on the start day.
    pub initial_btc: f64,
    /// Cost basis of those, USD.
    pub initial_cost_usd: f64,
    /// Whether sales are forbidden.
    pub no_sale: bool,
    /// Projection assumptions.
    pub projection: Projection,
}

// ---------------------------------------------------------------- loading and validation

/// Reads and validates a plan file.
pub fn load_plan(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_plan(&text, &path.display().to_string(), path.parent())
}

/// Parses and validates plan text. `file` is used in messages; `base_dir` resolves
/// `funding.mining_plan` (relative paths).
pub fn parse_plan(text: &str, file: &str, base_dir: Option<&Path>) -> Result<Plan> {
    let raw: RawPlan = toml::from_str(text).map_err(|e| PlanError::PlanSyntax {
        file: file.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let v = Validator { file };
    match raw.plan.kind.as_str() {
        "mining" => Ok(Plan::Mining(v.mining(raw)?)),
        "accumulation" => Ok(Plan::Accumulation(v.accumulation(raw, base_dir)?)),
        other => Err(v.err(
            "plan.kind",
            format!("`{other}` is not a plan kind; use \"mining\" or \"accumulation\""),
        )),
    }
}

struct Validator<'a> {
    file: &'a str,
}

impl Validator<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> PlanError {
        field_err(self.file, field, message)
    }

    fn finite(&self, field: &str, v: f64) -> Result<f64> {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.err(field, format!("{v} is not a finite number")))
        }
    }

    fn positive(&self, field: &str, v: f64, unit: &str) -> Result<f64> {
        if self.finite(field, v)? > 0.0 {
            Ok(v)
        } else {
            Err(self.err(field, format!("must be greater than 0 {unit} (got {v})")))
        }
    }

    fn non_negative(&self, field: &str, v: f64, unit: &str) -> Result<f64> {
        if self.finite(field, v)? >= 0.0 {
            Ok(v)
        } else {
            Err(self.err(field, format!("must be 0 {unit} or more (got {v})")))
        }
    }

    fn between(&self, field: &str, v: f64, lo: f64, hi: f64, unit: &str) -> Result<f64> {
        if self.finite(field, v)? >= lo && v <= hi {
            Ok(v)
        } else {
            Err(self.err(
                field,
                format!("must be between {lo} and {hi} {unit} (got {v})"),
            ))
        }
    }

    fn pct(&self, field: &str, v: f64) -> Result<f64> {
        Ok(self.between(field, v, 0.0, 100.0, "%")? / 100.0)
    }

    fn date(&self, field: &str, v: &toml::Value) -> Result<Date> {
        let s = match v {
            toml::Value::Datetime(dt) => match (dt.date, dt.time) {
                (Some(d), None) => format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
                _ => {
                    return Err(self.err(field, "give a date without time, e.g. 2025-07-17"));
                }
            },
            toml::Value::String(s) => s.clone(),
            other => {
                return Err(self.err(
                    field,
                    format!(
                        "expected a date like 2025-07-17, found {}",
                        other.type_str()
                    ),
                ))
            }
        };
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        Date::parse(&s, &fmt)
            .map_err(|_| self.err(field, format!("`{s}` is not a valid date YYYY-MM-DD")))
    }

    fn month_day(&self, field: &str, s: &str) -> Result<(u8, u8)> {
        let bad = || {
            self.err(
                field,
                format!("`{s}` is not a day of the year MM-DD, e.g. \"06-01\""),
            )
        };
        let (m, d) = s.split_once('-').ok_or_else(bad)?;
        let m: u8 = m.parse().map_err(|_| bad())?;
        let d: u8 = d.parse().map_err(|_| bad())?;
        let month = Month::try_from(m).map_err(|_| bad())?;
        if d == 0 || d > month.length(2024) {
            return Err(bad());
        }
        Ok((m, d))
    }

    fn fiscal_month(&self, v: Option<i64>) -> Result<u8> {
        match v {
            None => Ok(1),
            Some(m) if (1..=12).contains(&m) => Ok(m as u8),
            Some(m) => Err(self.err(
                "plan.fiscal_year_start_month",
                format!("must be a month 1–12 (1 = calendar year, 7 = July–June), got {m}"),
            )),
        }
    }

    fn projection(&self, p: Option<RawProjection>) -> Result<Projection> {
        let p = p.unwrap_or(RawProjection {
            price_usd: None,
            price_growth_pct_per_year: 0.0,
            hashrate_growth_pct_per_year: None,
            fees_btc_per_block: None,
        });
        if let Some(x) = p.price_usd {
            self.positive("projection.price_usd", x, "USD/BTC")?;
        }
        self.between(
            "projection.price_growth_pct_per_year",
            p.price_growth_pct_per_year,
            -99.0,
            1000.0,
            "% per year",
        )?;
        if let Some(g) = p.hashrate_growth_pct_per_year {
            self.between(
                "projection.hashrate_growth_pct_per_year",
                g,
                -99.0,
                1000.0,
                "% per year",
            )?;
        }
        if let Some(f) = p.fees_btc_per_block {
            self.between("projection.fees_btc_per_block", f, 0.0, 100.0, "BTC")?;
        }
        Ok(Projection {
            price_usd: p.price_usd,
            price_growth_per_year: p.price_growth_pct_per_year / 100.0,
            hashrate_growth_per_year: p.hashrate_growth_pct_per_year.map(|g| g / 100.0),
            fees_btc_per_block: p.fees_btc_per_block,
        })
    }

    fn reject_sections(&self, kind: &str, present: &[(&str, bool)]) -> Result<()> {
        for (name, is) in present {
            if *is {
                return Err(self.err(
                    name,
                    format!("section [{name}] does not belong in a {kind} plan; remove it or change plan.kind"),
                ));
            }
        }
        Ok(())
    }

    fn mining(&self, raw: RawPlan) -> Result<MiningPlan> {
        self.reject_sections(
            "mining",
            &[
                ("rule", raw.rule.is_some()),
                ("budget", raw.budget.is_some()),
                ("funding", raw.funding.is_some()),
                ("holdings", raw.holdings.is_some()),
            ],
        )?;
        let start = self.date("plan.start", &raw.plan.start)?;
        let fy = self.fiscal_month(raw.plan.fiscal_year_start_month)?;
        let power = raw
            .power
            .ok_or_else(|| self.err("power", "a mining plan needs a [power] section"))?;
        let capacity_mw = self.positive("power.capacity_mw", power.capacity_mw, "MW")?;
        if capacity_mw > 1_000_000.0 {
            return Err(self.err(
                "power.capacity_mw",
                format!("{capacity_mw} MW is not a plausible allocation (over 1 TW)"),
            ));
        }
        let mining_share = self.pct("power.mining_share_pct", power.mining_share_pct)?;
        if mining_share == 0.0 {
            return Err(self.err("power.mining_share_pct", "must be greater than 0 %"));
        }
        let pue = self.between(
            "power.pue",
            power.pue,
            1.0,
            3.0,
            "(facility power / IT power)",
        )?;
        let uptime = self.pct("power.uptime_pct", power.uptime_pct)?;
        let mut curtailment = Vec::new();
        for (i, s) in power.curtailment.iter().enumerate() {
            let f = |k: &str| format!("power.curtailment[{i}].{k}");
            curtailment.push(Season {
                from: self.month_day(&f("from"), &s.from)?,
                to: self.month_day(&f("to"), &s.to)?,
                hours_off_per_day: self.between(
                    &f("hours_off_per_day"),
                    s.hours_off_per_day,
                    0.0,
                    24.0,
                    "hours",
                )?,
            });
        }
        if raw.fleet.is_empty() {
            return Err(self.err(
                "fleet",
                "a mining plan needs at least one [[fleet]] generation",
            ));
        }
        let mut fleet = Vec::new();
        for (i, g) in raw.fleet.iter().enumerate() {
            let f = |k: &str| format!("fleet[{i}].{k}");
            let eff = self.positive(&f("efficiency_j_per_th"), g.efficiency_j_per_th, "J/TH")?;
            if !(5.0..=200.0).contains(&eff) {
                return Err(self.err(
                    &f("efficiency_j_per_th"),
                    format!("{eff} J/TH is not a real ASIC (2025 machines are about 12–25 J/TH, old ones up to 100)"),
                ));
            }
            let share = self.pct(&f("share_pct"), g.share_pct)?;
            let deployed = self.date(&f("deployed"), &g.deployed)?;
            let retired = g
                .retired
                .as_ref()
                .map(|r| self.date(&f("retired"), r))
                .transpose()?;
            if let Some(r) = retired {
                if r <= deployed {
                    return Err(self.err(
                        &f("retired"),
                        format!("{r} is not after deployed {deployed}"),
                    ));
                }
            }
            fleet.push(Generation {
                name: g.name.clone(),
                efficiency_j_per_th: eff,
                share,
                deployed,
                retired,
                capex_usd_per_th: self.non_negative(
                    &f("capex_usd_per_th"),
                    g.capex_usd_per_th,
                    "USD/TH",
                )?,
            });
        }
        // The shares of generations running at the same time may not exceed 100 %.
        for g in &fleet {
            let total: f64 = fleet
                .iter()
                .filter(|o| o.active(g.deployed))
                .map(|o| o.share)
                .sum();
            if total > 1.0 + 1e-9 {
                return Err(self.err(
                    "fleet",
                    format!(
                        "on {} the running generations use {:.1} % of the mining power; shares of generations running at the same time must add up to 100 % or less (set `retired` on the older one)",
                        g.deployed,
                        total * 100.0
                    ),
                ));
            }
        }
        let t = raw
            .tariff
            .ok_or_else(|| self.err("tariff", "a mining plan needs a [tariff] section"))?;
        let currency = t.currency.trim().to_ascii_uppercase();
        if !KNOWN_CURRENCIES.contains(&currency.as_str()) {
            return Err(self.err(
                "tariff.currency",
                format!(
                    "unknown currency `{}`; use an ISO 4217 code such as USD or PKR",
                    t.currency
                ),
            ));
        }
        let local_per_usd = if currency == "USD" {
            match t.local_per_usd {
                Some(x) if (x - 1.0).abs() > 1e-12 => {
                    return Err(self.err(
                        "tariff.local_per_usd",
                        format!("must be 1 (or absent) when the currency is USD, got {x}"),
                    ))
                }
                _ => 1.0,
            }
        } else {
            let x = t.local_per_usd.ok_or_else(|| {
                self.err(
                    "tariff.local_per_usd",
                    format!(
                        "the tariff is in {currency}; give the exchange rate in {currency} per USD"
                    ),
                )
            })?;
            self.positive("tariff.local_per_usd", x, &format!("{currency} per USD"))?
        };
        let unit = format!("{currency}/kWh");
        let paid = self.non_negative("tariff.paid_per_kwh", t.paid_per_kwh, &unit)?;
        let recovery = self.non_negative(
            "tariff.cost_recovery_per_kwh",
            t.cost_recovery_per_kwh,
            &unit,
        )?;
        let dep = self.between(
            "tariff.local_depreciation_pct_per_year",
            t.local_depreciation_pct_per_year,
            -50.0,
            500.0,
            "% per year",
        )?;
        let costs = raw.costs.unwrap_or(RawCosts {
            capex_lifetime_years: 4.0,
            financing_rate_pct: 0.0,
            opex_usd_per_mw_year: 0.0,
            pool_fee_pct: 0.0,
        });
        let lifetime = self.between(
            "costs.capex_lifetime_years",
            costs.capex_lifetime_years,
            0.25,
            30.0,
            "years",
        )?;
        let rate = self.between(
            "costs.financing_rate_pct",
            costs.financing_rate_pct,
            0.0,
            100.0,
            "% per year",
        )? / 100.0;
        let opex = self.non_negative(
            "costs.opex_usd_per_mw_year",
            costs.opex_usd_per_mw_year,
            "USD per MW-year",
        )?;
        let pool_fee =
            self.between("costs.pool_fee_pct", costs.pool_fee_pct, 0.0, 50.0, "%")? / 100.0;
        let sell = match raw
            .reserve
            .map(|r| r.sell_to_cover)
            .unwrap_or_else(electricity)
            .as_str()
        {
            "none" => SellToCover::None,
            "electricity" => SellToCover::Electricity,
            "all_costs" => SellToCover::AllCosts,
            other => {
                return Err(self.err(
                    "reserve.sell_to_cover",
                    format!(
                        "`{other}` is not accepted; use \"none\", \"electricity\" or \"all_costs\""
                    ),
                ))
            }
        };
        Ok(MiningPlan {
            name: raw.plan.name,
            description: raw.plan.description,
            start,
            fiscal_year_start_month: fy,
            capacity_mw,
            mining_share,
            pue,
            uptime,
            curtailment,
            fleet,
            tariff: Tariff {
                currency,
                paid_per_kwh: paid,
                cost_recovery_per_kwh: recovery,
                local_per_usd,
                local_depreciation_per_year: dep / 100.0,
            },
            capex_lifetime_years: lifetime,
            financing_rate: rate,
            opex_usd_per_mw_year: opex,
            pool_fee,
            sell_to_cover: sell,
            plant_affects_difficulty: raw.network.is_none_or(|n| n.plant_affects_difficulty),
            projection: self.projection(raw.projection)?,
        })
    }

    fn accumulation(&self, raw: RawPlan, base_dir: Option<&Path>) -> Result<AccumulationPlan> {
        self.reject_sections(
            "accumulation",
            &[
                ("power", raw.power.is_some()),
                ("fleet", !raw.fleet.is_empty()),
                ("tariff", raw.tariff.is_some()),
                ("costs", raw.costs.is_some()),
                ("reserve", raw.reserve.is_some()),
                ("network", raw.network.is_some()),
            ],
        )?;
        let start = self.date("plan.start", &raw.plan.start)?;
        let fy = self.fiscal_month(raw.plan.fiscal_year_start_month)?;
        let r = raw
            .rule
            .ok_or_else(|| self.err("rule", "an accumulation plan needs a [rule] section (kind = \"fixed_btc\", \"fixed_fiat\", \"value_averaging\", \"buy_the_dip\" or \"none\")"))?;
        let need = |v: Option<f64>, field: &str| -> Result<f64> {
            v.ok_or_else(|| self.err(field, format!("rule kind `{}` needs `{field}`", r.kind)))
        };
        let rule = match r.kind.as_str() {
            "fixed_btc" => Rule::FixedBtc {
                btc: self.positive("rule.btc", need(r.btc, "rule.btc")?, "BTC")?,
            },
            "fixed_fiat" => Rule::FixedFiat {
                usd: self.positive("rule.usd", need(r.usd, "rule.usd")?, "USD")?,
            },
            "value_averaging" => Rule::ValueAveraging {
                target_increase_usd: self.positive(
                    "rule.target_increase_usd",
                    need(r.target_increase_usd, "rule.target_increase_usd")?,
                    "USD",
                )?,
            },
            "buy_the_dip" => {
                let dd = need(r.drawdown_pct, "rule.drawdown_pct")?;
                let dd = self.between("rule.drawdown_pct", dd, 0.0, 99.0, "%")? / 100.0;
                Rule::BuyTheDip {
                    usd: self.positive("rule.usd", need(r.usd, "rule.usd")?, "USD")?,
                    drawdown: dd,
                }
            }
            "none" => Rule::None,
            other => {
                return Err(self.err(
                    "rule.kind",
                    format!("`{other}` is not a rule; use fixed_btc, fixed_fiat, value_averaging, buy_the_dip or none"),
                ))
            }
        };
        let every = match r.every.as_deref().unwrap_or("day") {
            "day" => Every::Day,
            "week" => Every::Week,
            "month" => Every::Month,
            other => {
                return Err(self.err(
                    "rule.every",
                    format!("`{other}` is not a period; use day, week or month"),
                ))
            }
        };
        let cap = raw
            .budget
            .and_then(|b| b.cap_usd_per_fiscal_year)
            .map(|c| self.non_negative("budget.cap_usd_per_fiscal_year", c, "USD"))
            .transpose()?;
        let funding = raw.funding.unwrap_or(RawFunding {
            new_money: true,
            offsets_usd_per_year: 0.0,
            mining_plan: None,
            mining_share_pct: 100.0,
            seizures: Vec::new(),
            seizures_btc_per_year: 0.0,
        });
        let offsets = self.non_negative(
            "funding.offsets_usd_per_year",
            funding.offsets_usd_per_year,
            "USD",
        )?;
        let mining_share = self.pct("funding.mining_share_pct", funding.mining_share_pct)?;
        let mining = match &funding.mining_plan {
            None => None,
            Some(rel) => {
                let path: PathBuf = match base_dir {
                    Some(b) => b.join(rel),
                    None => PathBuf::from(rel),
                };
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    self.err(
                        "funding.mining_plan",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                match parse_plan(&text, &path.display().to_string(), path.parent())? {
                    Plan::Mining(m) => Some(Box::new(m)),
                    Plan::Accumulation(_) => {
                        return Err(self.err(
                            "funding.mining_plan",
                            format!(
                                "{} is an accumulation plan; point to a mining plan",
                                path.display()
                            ),
                        ))
                    }
                }
            }
        };
        let mut seizures = Vec::new();
        for (i, s) in funding.seizures.iter().enumerate() {
            seizures.push(Seizure {
                date: self.date(&format!("funding.seizures[{i}].date"), &s.date)?,
                btc: self.non_negative(&format!("funding.seizures[{i}].btc"), s.btc, "BTC")?,
            });
        }
        let per_year = self.between(
            "funding.seizures_btc_per_year",
            funding.seizures_btc_per_year,
            0.0,
            21e6,
            "BTC",
        )?;
        let h = raw.holdings.unwrap_or(RawHoldings {
            initial_btc: 0.0,
            initial_cost_usd: 0.0,
            no_sale: true,
        });
        Ok(AccumulationPlan {
            name: raw.plan.name,
            description: raw.plan.description,
            start,
            fiscal_year_start_month: fy,
            rule,
            every,
            cap_usd_per_fiscal_year: cap,
            new_money: funding.new_money,
            offsets_usd_per_year: offsets,
            mining,
            mining_share,
            seizures,
            seizures_btc_per_year: per_year,
            initial_btc: self.between("holdings.initial_btc", h.initial_btc, 0.0, 21e6, "BTC")?,
            initial_cost_usd: self.non_negative(
                "holdings.initial_cost_usd",
                h.initial_cost_usd,
                "USD",
            )?,
            no_sale: h.no_sale,
            projection: self.projection(raw.projection)?,
        })
    }
}
