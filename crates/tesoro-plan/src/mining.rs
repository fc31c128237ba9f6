//! The mining model: MW → hashrate → BTC, with the cost of electricity at the paid and at the
//! cost-recovery tariff, the subsidy's fiscal cost, margins, hashprice and break-evens.
//!
//! The plant's expected BTC per day is `P × 86400 / (D × 2^32) × (subsidy + fees) × (1 − pool fee)`
//! with P its hashrate in H/s and D the difficulty it mines at. D is the network's difficulty plus
//! the plant's own hashrate as of the last retarget ([`network::lagged_plant_hashrate`]).

use time::{Date, Duration};

use crate::calendar::{self, Granularity};
use crate::error::{option_err, Result};
use crate::history::History;
use crate::network::{self, BLOCKS_PER_DAY, TWO_32};
use crate::plan_file::{MiningPlan, SellToCover};

/// What the plant does on a day, independent of price and network (power, hashrate, bills).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PlantDay {
    /// The day.
    pub date: Date,
    /// Mean plant hashrate over the day, TH/s.
    pub hashrate_ths: f64,
    /// Grid energy drawn, kWh (facility, i.e. including PUE overhead).
    pub energy_kwh: f64,
    /// Electricity bill at the paid tariff, USD.
    pub elec_paid_usd: f64,
    /// Electricity cost at the cost-recovery tariff, USD.
    pub elec_recovery_usd: f64,
    /// Subsidy (energy × tariff gap), local currency.
    pub subsidy_local: f64,
    /// Subsidy in USD.
    pub subsidy_usd: f64,
    /// Opex plus capex annuity, USD.
    pub fixed_usd: f64,
}

impl MiningPlan {
    /// Grid power allocated to mining, MW (capacity × mining share).
    pub fn mining_mw(&self) -> f64 {
        self.capacity_mw * self.mining_share
    }

    /// Power reaching the machines, MW (mining power / PUE).
    pub fn it_mw(&self) -> f64 {
        self.mining_mw() / self.pue
    }

    /// Share of the day the plant runs on `date` (uptime × hours not curtailed).
    pub fn running_fraction(&self, date: Date) -> f64 {
        if date < self.start {
            return 0.0;
        }
        let off: f64 = self
            .curtailment
            .iter()
            .filter(|s| s.contains(date))
            .map(|s| s.hours_off_per_day)
            .sum();
        self.uptime * (1.0 - off.min(24.0) / 24.0)
    }

    /// Local currency per USD on `date`.
    pub fn local_per_usd(&self, date: Date) -> f64 {
        let y = calendar::years_between(self.start, date).max(0.0);
        self.tariff.local_per_usd * (1.0 + self.tariff.local_depreciation_per_year).powf(y)
    }

    fn annuity_per_day(&self, principal: f64) -> f64 {
        let n = self.capex_lifetime_years;
        let r = self.financing_rate;
        let per_year = if r == 0.0 {
            principal / n
        } else {
            principal * r / (1.0 - (1.0 + r).powf(-n))
        };
        per_year / 365.0
    }

    /// Nameplate hashrate of generation `g`, TH/s.
    pub fn generation_ths(&self, g: usize) -> f64 {
        let gen = &self.fleet[g];
        gen.share * self.it_mw() * 1e6 / gen.efficiency_j_per_th
    }

    /// The same plan started on `start`: the start and every fleet date move by the same
    /// number of days (a backtest asks "what would this plant have produced from then?").
    pub fn rebased(&self, start: Date) -> Result<MiningPlan> {
        let shift = start - self.start;
        let mv = |d: Date| {
            d.checked_add(shift)
                .ok_or_else(|| option_err("--from", format!("cannot move {d} by {shift}")))
        };
        let mut p = self.clone();
        p.start = start;
        for g in &mut p.fleet {
            g.deployed = mv(g.deployed)?;
            g.retired = g.retired.map(mv).transpose()?;
        }
        Ok(p)
    }

    /// Power, hashrate and bills on `date`.
    pub fn plant_day(&self, date: Date) -> PlantDay {
        let run = self.running_fraction(date);
        let mut share = 0.0;
        let mut ths = 0.0;
        let mut capex = 0.0;
        for (i, g) in self.fleet.iter().enumerate() {
            if g.active(date) {
                share += g.share;
                if run > 0.0 {
                    ths += self.generation_ths(i) * run;
                }
            }
            let amortised_until = g
                .deployed
                .checked_add(Duration::days(
                    (self.capex_lifetime_years * 365.25).round() as i64
                ))
                .unwrap_or(Date::MAX);
            if date >= self.start && date >= g.deployed && date < amortised_until {
                capex += self.annuity_per_day(g.capex_usd_per_th * self.generation_ths(i));
            }
        }
        let energy_kwh = self.mining_mw() * 1000.0 * 24.0 * run * share;
        let fx = self.local_per_usd(date);
        let paid_local = energy_kwh * self.tariff.paid_per_kwh;
        let recovery_local = energy_kwh * self.tariff.cost_recovery_per_kwh;
        let opex = if date >= self.start {
            self.opex_usd_per_mw_year * self.mining_mw() * share / 365.0
        } else {
            0.0
        };
        PlantDay {
            date,
            hashrate_ths: ths,
            energy_kwh,
            elec_paid_usd: paid_local / fx,
            elec_recovery_usd: recovery_local / fx,
            subsidy_local: recovery_local - paid_local,
            subsidy_usd: (recovery_local - paid_local) / fx,
            fixed_usd: opex + capex,
        }
    }
}

/// The network and market on one day, as the model sees them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkDay {
    /// The day.
    pub date: Date,
    /// USD per BTC.
    pub price_usd: f64,
    /// Difficulty without the plant.
    pub difficulty: f64,
    /// Mean fees per block, BTC.
    pub fees_per_block: f64,
    /// Height of the day's first block.
    pub height: f64,
    /// Blocks found that day (history) or 144 (projection).
    pub blocks: f64,
}

/// Everything precomputed for a horizon, so a day's result needs only price, difficulty and fees.
#[derive(Debug, Clone)]
pub struct MiningSchedule {
    /// Plant days.
    pub plant: Vec<PlantDay>,
    /// Difficulty added by the plant (lagged to retargets), per day.
    pub difficulty_add: Vec<f64>,
    /// Pool fee (fraction).
    pub pool_fee: f64,
    /// Sell-to-cover policy.
    pub sell: SellToCover,
    /// Per day: BTC per unit of (reward per block / difficulty), after pool fee:
    /// `hashrate × 10^12 × 86400 / 2^32 × (1 − pool fee)`.
    btc_factor: Vec<f64>,
    /// Per day: USD to raise by selling, under the sell policy.
    cover: Vec<f64>,
}

/// One day's flows from price, difficulty and fees.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flow {
    /// BTC mined net of pool fee.
    pub btc: f64,
    /// USD value of it.
    pub revenue_usd: f64,
    /// BTC sold to cover costs.
    pub sold_btc: f64,
    /// BTC kept for the reserve.
    pub reserve_btc: f64,
    /// Difficulty the plant mined at.
    pub difficulty: f64,
}

impl MiningSchedule {
    /// Builds the schedule for the given days and their block heights.
    pub fn new(plan: &MiningPlan, dates: &[Date], heights: &[f64]) -> MiningSchedule {
        let plant: Vec<PlantDay> = dates.iter().map(|d| plan.plant_day(*d)).collect();
        let difficulty_add = if plan.plant_affects_difficulty {
            let ths: Vec<f64> = plant.iter().map(|p| p.hashrate_ths).collect();
            network::lagged_plant_hashrate(heights, &ths)
                .into_iter()
                .map(|h| network::difficulty_from_hashrate(h * 1e12))
                .collect()
        } else {
            vec![0.0; dates.len()]
        };
        let btc_factor = plant
            .iter()
            .map(|p| p.hashrate_ths * 1e12 * 86_400.0 / TWO_32 * (1.0 - plan.pool_fee))
            .collect();
        let cover = plant
            .iter()
            .map(|p| match plan.sell_to_cover {
                SellToCover::None => 0.0,
                SellToCover::Electricity => p.elec_paid_usd,
                SellToCover::AllCosts => p.elec_paid_usd + p.fixed_usd,
            })
            .collect();
        MiningSchedule {
            plant,
            difficulty_add,
            pool_fee: plan.pool_fee,
            sell: plan.sell_to_cover,
            btc_factor,
            cover,
        }
    }

    /// USD to cover by selling on day `t` under the sell policy.
    #[inline]
    pub fn cover_usd(&self, t: usize) -> f64 {
        self.cover[t]
    }

    /// Flows on day `t` given the network difficulty (without the plant), reward per block
    /// (subsidy + fees) and price.
    #[inline]
    pub fn flow(&self, t: usize, net_difficulty: f64, reward_per_block: f64, price: f64) -> Flow {
        let difficulty = net_difficulty + self.difficulty_add[t];
        let btc = self.btc_factor[t] * reward_per_block / difficulty;
        let cover = self.cover[t];
        let sold = if cover > 0.0 {
            (cover / price).min(btc)
        } else {
            0.0
        };
        Flow {
            btc,
            revenue_usd: btc * price,
            sold_btc: sold,
            reserve_btc: btc - sold,
            difficulty,
        }
    }
}

/// One day of a mining run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MiningDay {
    /// The day.
    pub date: Date,
    /// Height of the day's first block.
    pub height: f64,
    /// USD per BTC.
    pub price_usd: f64,
    /// Network hashrate without the plant, EH/s.
    pub network_ehs: f64,
    /// Plant hashrate, EH/s.
    pub plant_ehs: f64,
    /// Plant share of the network including itself (0–1).
    pub share: f64,
    /// Difficulty the plant mined at (including its own lagged effect).
    pub difficulty: f64,
    /// Blocks the plant is expected to find.
    pub expected_blocks: f64,
    /// Subsidy + fees per block, BTC.
    pub reward_per_block: f64,
    /// BTC mined, net of pool fee.
    pub btc_mined: f64,
    /// USD value of it.
    pub revenue_usd: f64,
    /// Energy, MWh.
    pub energy_mwh: f64,
    /// Electricity at the paid tariff, USD.
    pub elec_paid_usd: f64,
    /// Electricity at the cost-recovery tariff, USD.
    pub elec_recovery_usd: f64,
    /// Subsidy, local currency.
    pub subsidy_local: f64,
    /// Subsidy, USD.
    pub subsidy_usd: f64,
    /// Opex + capex, USD.
    pub fixed_usd: f64,
    /// Revenue − electricity at the paid tariff − opex − capex, USD.
    pub margin_usd: f64,
    /// Margin with electricity at the cost-recovery tariff, USD.
    pub margin_at_recovery_usd: f64,
    /// Network hashprice, USD per PH/s per day.
    pub hashprice: f64,
    /// BTC sold to cover costs.
    pub btc_sold: f64,
    /// BTC reaching the reserve.
    pub btc_to_reserve: f64,
}

fn mining_day(s: &MiningSchedule, t: usize, n: &NetworkDay) -> MiningDay {
    let p = &s.plant[t];
    let reward = network::mean_subsidy(n.height, n.blocks) + n.fees_per_block;
    let f = s.flow(t, n.difficulty, reward, n.price_usd);
    let net_ths = network::hashrate_from_difficulty(n.difficulty) / 1e12;
    let margin = f.revenue_usd - p.elec_paid_usd - p.fixed_usd;
    MiningDay {
        date: n.date,
        height: n.height,
        price_usd: n.price_usd,
        network_ehs: net_ths / 1e6,
        plant_ehs: p.hashrate_ths / 1e6,
        share: p.hashrate_ths / (net_ths + p.hashrate_ths),
        difficulty: f.difficulty,
        expected_blocks: p.hashrate_ths * 1e12 * 86_400.0 / (f.difficulty * TWO_32),
        reward_per_block: reward,
        btc_mined: f.btc,
        revenue_usd: f.revenue_usd,
        energy_mwh: p.energy_kwh / 1000.0,
        elec_paid_usd: p.elec_paid_usd,
        elec_recovery_usd: p.elec_recovery_usd,
        subsidy_local: p.subsidy_local,
        subsidy_usd: p.subsidy_usd,
        fixed_usd: p.fixed_usd,
        margin_usd: margin,
        margin_at_recovery_usd: f.revenue_usd - p.elec_recovery_usd - p.fixed_usd,
        hashprice: network::hashprice_usd_per_ph_day(f.difficulty, reward, n.price_usd),
        btc_sold: f.sold_btc,
        btc_to_reserve: f.reserve_btc,
    }
}

/// Totals over a period of a mining run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MiningPeriod {
    /// Period label (date, month, year or fiscal year).
    pub period: String,
    /// First day.
    pub from: Date,
    /// Last day.
    pub to: Date,
    /// Days.
    pub days: u32,
    /// Mean plant share of the network.
    pub mean_share: f64,
    /// Mean plant hashrate, EH/s.
    pub mean_plant_ehs: f64,
    /// Blocks expected.
    pub expected_blocks: f64,
    /// BTC mined.
    pub btc_mined: f64,
    /// BTC sold to cover costs.
    pub btc_sold: f64,
    /// BTC to the reserve.
    pub btc_to_reserve: f64,
    /// Revenue, USD.
    pub revenue_usd: f64,
    /// Energy, MWh.
    pub energy_mwh: f64,
    /// Electricity at the paid tariff, USD.
    pub elec_paid_usd: f64,
    /// Electricity at the cost-recovery tariff, USD.
    pub elec_recovery_usd: f64,
    /// Subsidy (fiscal cost), local currency.
    pub subsidy_local: f64,
    /// Subsidy, USD.
    pub subsidy_usd: f64,
    /// Opex + capex, USD.
    pub fixed_usd: f64,
    /// Margin at the paid tariff, USD.
    pub margin_usd: f64,
    /// Margin at the cost-recovery tariff, USD.
    pub margin_at_recovery_usd: f64,
    /// Mean hashprice, USD/PH/day.
    pub mean_hashprice: f64,
    /// Power price at which the period breaks even, USD/kWh.
    pub breakeven_power_usd_per_kwh: Option<f64>,
    /// BTC price at which the period breaks even (paid tariff), USD/BTC.
    pub breakeven_btc_price_usd: Option<f64>,
    /// Mean BTC price, USD.
    pub mean_price_usd: f64,
    /// Value of the BTC sent to the reserve in the period at the last day's price, USD.
    pub reserve_value_usd: f64,
}

/// Sums days into periods.
pub fn mining_periods(
    days: &[MiningDay],
    by: Granularity,
    fiscal_start_month: u8,
) -> Vec<MiningPeriod> {
    let mut out: Vec<MiningPeriod> = Vec::new();
    let mut i = 0;
    while i < days.len() {
        let label = calendar::period_label(days[i].date, by, fiscal_start_month);
        let mut j = i;
        while j < days.len()
            && calendar::period_label(days[j].date, by, fiscal_start_month) == label
        {
            j += 1;
        }
        out.push(sum_period(label, &days[i..j]));
        i = j;
    }
    out
}

/// Totals over all days.
pub fn mining_total(days: &[MiningDay]) -> Option<MiningPeriod> {
    if days.is_empty() {
        return None;
    }
    Some(sum_period("total".into(), days))
}

fn sum_period(period: String, d: &[MiningDay]) -> MiningPeriod {
    let n = d.len() as f64;
    let s = |f: fn(&MiningDay) -> f64| d.iter().map(f).sum::<f64>();
    let btc = s(|x| x.btc_mined);
    let energy_kwh = s(|x| x.energy_mwh) * 1000.0;
    let revenue = s(|x| x.revenue_usd);
    let elec = s(|x| x.elec_paid_usd);
    let fixed = s(|x| x.fixed_usd);
    let reserve = s(|x| x.btc_to_reserve);
    let last = d[d.len() - 1];
    MiningPeriod {
        period,
        from: d[0].date,
        to: last.date,
        days: d.len() as u32,
        mean_share: s(|x| x.share) / n,
        mean_plant_ehs: s(|x| x.plant_ehs) / n,
        expected_blocks: s(|x| x.expected_blocks),
        btc_mined: btc,
        btc_sold: s(|x| x.btc_sold),
        btc_to_reserve: reserve,
        revenue_usd: revenue,
        energy_mwh: energy_kwh / 1000.0,
        elec_paid_usd: elec,
        elec_recovery_usd: s(|x| x.elec_recovery_usd),
        subsidy_local: s(|x| x.subsidy_local),
        subsidy_usd: s(|x| x.subsidy_usd),
        fixed_usd: fixed,
        margin_usd: s(|x| x.margin_usd),
        margin_at_recovery_usd: s(|x| x.margin_at_recovery_usd),
        mean_hashprice: s(|x| x.hashprice) / n,
        breakeven_power_usd_per_kwh: (energy_kwh > 0.0).then(|| (revenue - fixed) / energy_kwh),
        breakeven_btc_price_usd: (btc > 0.0).then(|| (elec + fixed) / btc),
        mean_price_usd: s(|x| x.price_usd) / n,
        reserve_value_usd: reserve * last.price_usd,
    }
}

/// A mining backtest or deterministic projection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MiningRun {
    /// Plan name.
    pub plan: String,
    /// "backtest" or "projection".
    pub mode: String,
    /// Assumptions used (for projections: price, growth, fees; for backtests: the history).
    pub assumptions: Vec<(String, String)>,
    /// Tariff currency.
    pub currency: String,
    /// Every day.
    pub days: Vec<MiningDay>,
    /// Totals.
    pub total: MiningPeriod,
    /// Per fiscal year (the subsidy's fiscal cost per year).
    pub fiscal_years: Vec<MiningPeriod>,
}

/// What the plan would have produced over real history, `from` to `to` inclusive.
pub fn backtest(plan: &MiningPlan, history: &History, from: Date, to: Date) -> Result<MiningRun> {
    let days = history.range("--from/--to", from, to)?;
    let dates: Vec<Date> = days.iter().map(|d| d.date).collect();
    let heights: Vec<f64> = days.iter().map(|d| d.height).collect();
    let sched = MiningSchedule::new(plan, &dates, &heights);
    let out: Vec<MiningDay> = days
        .iter()
        .enumerate()
        .map(|(t, d)| {
            mining_day(
                &sched,
                t,
                &NetworkDay {
                    date: d.date,
                    price_usd: d.price_usd,
                    difficulty: d.difficulty(),
                    fees_per_block: d.fees_per_block(),
                    height: d.height,
                    blocks: d.blocks,
                },
            )
        })
        .collect();
    finish(
        plan,
        "backtest",
        vec![("history".into(), history.source().to_string())],
        out,
    )
}

fn finish(
    plan: &MiningPlan,
    mode: &str,
    assumptions: Vec<(String, String)>,
    days: Vec<MiningDay>,
) -> Result<MiningRun> {
    let total =
        mining_total(&days).ok_or_else(|| option_err("--from/--to", "the range has no days"))?;
    Ok(MiningRun {
        plan: plan.name.clone(),
        mode: mode.into(),
        assumptions,
        currency: plan.tariff.currency.clone(),
        fiscal_years: mining_periods(&days, Granularity::FiscalYear, plan.fiscal_year_start_month),
        days,
        total,
    })
}

/// Starting state and trend assumptions of a projection.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ProjectionStart {
    /// First projected day (a day of history).
    pub date: Date,
    /// Price on it, USD.
    pub price_usd: f64,
    /// Network difficulty on it.
    pub difficulty: f64,
    /// Height of its first block.
    pub height: f64,
    /// Fees per block assumed, BTC.
    pub fees_per_block: f64,
    /// Price growth per year (fraction).
    pub price_growth: f64,
    /// Network hashrate growth per year (fraction).
    pub hashrate_growth: f64,
}

impl ProjectionStart {
    /// Takes the state on `from` from history, with the plan's projection assumptions
    /// (unset ones: fees = mean of the last 365 days, hashrate growth fitted to the last 730 days).
    pub fn from_history(
        history: &History,
        from: Date,
        proj: &crate::plan_file::Projection,
    ) -> Result<ProjectionStart> {
        let i = history.index_of("--from", from)?;
        let d = history.days()[i];
        let lo365 = i.saturating_sub(364);
        let recent = &history.days()[lo365..=i];
        let fees = proj.fees_btc_per_block.unwrap_or_else(|| {
            recent.iter().map(|x| x.fees_btc).sum::<f64>()
                / recent.iter().map(|x| x.blocks).sum::<f64>()
        });
        let growth = proj.hashrate_growth_per_year.unwrap_or_else(|| {
            let diffs: Vec<f64> = history.days()[i.saturating_sub(729)..=i]
                .iter()
                .map(|x| x.difficulty())
                .collect();
            network::fitted_annual_growth(&diffs)
        });
        Ok(ProjectionStart {
            date: from,
            price_usd: proj.price_usd.unwrap_or(d.price_usd),
            difficulty: d.difficulty(),
            height: d.height,
            fees_per_block: fees,
            price_growth: proj.price_growth_per_year,
            hashrate_growth: growth,
        })
    }

    /// Dates and heights of `days` projected days (144 blocks a day).
    pub fn calendar(&self, days: usize) -> (Vec<Date>, Vec<f64>) {
        let dates = (0..days)
            .map(|t| self.date + Duration::days(t as i64))
            .collect();
        let heights = (0..days)
            .map(|t| self.height + BLOCKS_PER_DAY * t as f64)
            .collect();
        (dates, heights)
    }

    /// Human-readable assumptions.
    pub fn describe(&self) -> Vec<(String, String)> {
        vec![
            ("start".into(), self.date.to_string()),
            (
                "start price (USD/BTC)".into(),
                format!("{:.2}", self.price_usd),
            ),
            (
                "price growth (%/year)".into(),
                format!("{:.1}", self.price_growth * 100.0),
            ),
            (
                "start difficulty".into(),
                format!("{:.4e}", self.difficulty),
            ),
            (
                "network hashrate growth (%/year)".into(),
                format!("{:.1}", self.hashrate_growth * 100.0),
            ),
            (
                "fees per block (BTC)".into(),
                format!("{:.4}", self.fees_per_block),
            ),
            ("start height".into(), format!("{:.0}", self.height)),
        ]
    }
}

/// Deterministic projection: price and network hashrate grow at constant annual rates.
pub fn project(plan: &MiningPlan, history: &History, from: Date, days: usize) -> Result<MiningRun> {
    if days == 0 {
        return Err(option_err(
            "--years",
            "the projection needs at least one day",
        ));
    }
    let st = ProjectionStart::from_history(history, from, &plan.projection)?;
    let (dates, heights) = st.calendar(days);
    let sched = MiningSchedule::new(plan, &dates, &heights);
    let gp = (1.0 + st.price_growth).ln() / 365.0;
    let gh = (1.0 + st.hashrate_growth).ln() / 365.0;
    let out = (0..days)
        .map(|t| {
            let tf = t as f64;
            mining_day(
                &sched,
                t,
                &NetworkDay {
                    date: dates[t],
                    price_usd: st.price_usd * (gp * tf).exp(),
                    difficulty: st.difficulty * (gh * tf).exp(),
                    fees_per_block: st.fees_per_block,
                    height: heights[t],
                    blocks: BLOCKS_PER_DAY,
                },
            )
        })
        .collect();
    finish(plan, "projection", st.describe(), out)
}

/// The mining model on Monte Carlo paths.
#[derive(Debug, Clone)]
pub struct MiningPaths {
    sched: MiningSchedule,
    subsidy: Vec<f64>,
    cost: Vec<f64>,
    subsidy_usd: Vec<f64>,
}

/// Per-path running totals of [`MiningPaths`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MiningPathState {
    reserve: f64,
    mined: f64,
    cost: f64,
    subsidy: f64,
    margin: f64,
}

impl MiningPaths {
    /// Prepares the plan for `days` days from `start`.
    pub fn new(plan: &MiningPlan, start: &ProjectionStart, days: usize) -> MiningPaths {
        let (dates, heights) = start.calendar(days);
        let sched = MiningSchedule::new(plan, &dates, &heights);
        MiningPaths {
            cost: sched
                .plant
                .iter()
                .map(|p| p.elec_paid_usd + p.fixed_usd)
                .collect(),
            subsidy_usd: sched.plant.iter().map(|p| p.subsidy_usd).collect(),
            sched,
            subsidy: heights
                .iter()
                .map(|h| network::mean_subsidy(*h, BLOCKS_PER_DAY))
                .collect(),
        }
    }
}

impl crate::montecarlo::PathModel for MiningPaths {
    type State = MiningPathState;

    fn series(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("reserve_btc", "BTC"),
            ("reserve_value_usd", "USD"),
            ("btc_mined", "BTC"),
            ("cost_usd", "USD"),
            ("subsidy_usd", "USD"),
            ("margin_usd", "USD"),
            ("price_usd", "USD/BTC"),
            ("network_ehs", "EH/s"),
        ]
    }

    fn init(&self) -> MiningPathState {
        MiningPathState::default()
    }

    #[inline]
    fn step(&self, st: &mut MiningPathState, t: usize, price: f64, difficulty: f64, fees: f64) {
        let f = self
            .sched
            .flow(t, difficulty, self.subsidy[t] + fees, price);
        let cost = self.cost[t];
        st.reserve += f.reserve_btc;
        st.mined += f.btc;
        st.cost += cost;
        st.subsidy += self.subsidy_usd[t];
        st.margin += f.revenue_usd - cost;
    }

    fn record(&self, st: &MiningPathState, price: f64, difficulty: f64, out: &mut [f32]) {
        let vals = [
            st.reserve,
            st.reserve * price,
            st.mined,
            st.cost,
            st.subsidy,
            st.margin,
            price,
            network::hashrate_from_difficulty(difficulty) / 1e18,
        ];
        for (o, v) in out.iter_mut().zip(vals) {
            *o = v as f32;
        }
    }
}

/// Monte Carlo projection of a mining plan from `from` (a day of history).
pub fn monte_carlo(
    plan: &MiningPlan,
    history: &History,
    from: Date,
    opts: &crate::montecarlo::McOptions,
    progress: Option<&(dyn Fn(usize) + Sync)>,
) -> Result<crate::montecarlo::McResult> {
    let st = ProjectionStart::from_history(history, from, &plan.projection)?;
    let gen = crate::montecarlo::Generator::fit(history, from, opts)?;
    let model = MiningPaths::new(plan, &st, opts.days.max(1));
    crate::montecarlo::run(&model, &gen, &st, opts, progress)
}
