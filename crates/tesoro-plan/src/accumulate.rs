//! The accumulation model: buying rules under a fiscal-year budget cap, budget-neutral
//! funding (mining output, seizures, offsets), and a no-sale constraint.

use time::Date;

use crate::calendar::{self, Granularity};
use crate::error::{option_err, Result};
use crate::history::History;
use crate::mining::{MiningSchedule, ProjectionStart};
use crate::network::{self, BLOCKS_PER_DAY};
use crate::plan_file::{AccumulationPlan, Rule};

/// Per-day inputs that do not depend on price: action days, fiscal years, inflows.
#[derive(Debug, Clone)]
pub struct AccSchedule {
    /// Days.
    pub dates: Vec<Date>,
    /// Whether the rule acts that day.
    pub acts: Vec<bool>,
    /// Period number (1, 2, …) of action days, for value averaging.
    pub period_no: Vec<u32>,
    /// Fiscal year (start year) of each day.
    pub fiscal_year: Vec<i32>,
    /// BTC seized/forfeited and credited that day.
    pub seizure_btc: Vec<f64>,
    /// Budget-neutral money accruing that day, USD.
    pub offsets_usd: Vec<f64>,
    /// The funding mining plan's schedule, if any.
    pub mining: Option<MiningSchedule>,
    /// Share of mining output credited.
    pub mining_share: f64,
}

impl AccSchedule {
    /// Builds the schedule. `projection` spreads `seizures_btc_per_year` over the days.
    pub fn new(
        plan: &AccumulationPlan,
        dates: &[Date],
        heights: &[f64],
        projection: bool,
    ) -> AccSchedule {
        let mut k = 0u32;
        let mut acts = Vec::with_capacity(dates.len());
        let mut period_no = Vec::with_capacity(dates.len());
        for d in dates {
            let a = plan.every.acts_on(plan.start, *d);
            if a {
                k += 1;
            }
            acts.push(a);
            period_no.push(k);
        }
        let seizure_btc = dates
            .iter()
            .map(|d| {
                let dated: f64 = plan
                    .seizures
                    .iter()
                    .filter(|s| s.date == *d)
                    .map(|s| s.btc)
                    .sum();
                let spread = if projection && *d >= plan.start {
                    plan.seizures_btc_per_year / 365.25
                } else {
                    0.0
                };
                dated + spread
            })
            .collect();
        let offsets_usd = dates
            .iter()
            .map(|d| {
                if *d >= plan.start {
                    plan.offsets_usd_per_year / 365.25
                } else {
                    0.0
                }
            })
            .collect();
        AccSchedule {
            acts,
            period_no,
            fiscal_year: dates
                .iter()
                .map(|d| calendar::fiscal_year(*d, plan.fiscal_year_start_month))
                .collect(),
            seizure_btc,
            offsets_usd,
            mining: plan
                .mining
                .as_ref()
                .map(|m| MiningSchedule::new(m, dates, heights)),
            mining_share: plan.mining_share,
            dates: dates.to_vec(),
        }
    }
}

/// Running state of a programme.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct AccState {
    /// BTC held.
    pub holdings_btc: f64,
    /// BTC bought by the rule and still held (value averaging targets these).
    pub program_btc: f64,
    /// USD spent on purchases.
    pub spent_usd: f64,
    /// BTC bought.
    pub bought_btc: f64,
    /// USD received from sales.
    pub proceeds_usd: f64,
    /// BTC sold.
    pub sold_btc: f64,
    /// BTC credited from mining.
    pub mined_btc: f64,
    /// BTC credited from seizures.
    pub seized_btc: f64,
    /// Cost basis of the initial holdings, USD.
    pub initial_cost_usd: f64,
    fy: i32,
    /// USD spent in the current fiscal year.
    pub fy_spent_usd: f64,
    /// Budget-neutral money available, USD.
    pub fund_usd: f64,
    /// Highest price seen.
    pub price_high: f64,
    /// Highest holdings value seen.
    pub peak_value_usd: f64,
    /// Largest fall of holdings value from its peak (fraction).
    pub max_drawdown: f64,
    /// Days on which the budget cap or the funding limited a purchase.
    pub capped_days: u32,
}

/// What happened on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AccFlow {
    /// BTC bought.
    pub bought_btc: f64,
    /// USD spent.
    pub spent_usd: f64,
    /// BTC sold.
    pub sold_btc: f64,
    /// BTC credited (mining + seizures).
    pub received_btc: f64,
    /// Whether the cap or funding limited the purchase.
    pub capped: bool,
}

impl AccState {
    /// Initial state; `price_high` is the highest price known before the first day.
    pub fn new(plan: &AccumulationPlan, price_high: f64) -> AccState {
        AccState {
            holdings_btc: plan.initial_btc,
            program_btc: 0.0,
            spent_usd: 0.0,
            bought_btc: 0.0,
            proceeds_usd: 0.0,
            sold_btc: 0.0,
            mined_btc: 0.0,
            seized_btc: 0.0,
            initial_cost_usd: plan.initial_cost_usd,
            fy: i32::MIN,
            fy_spent_usd: 0.0,
            fund_usd: 0.0,
            price_high,
            peak_value_usd: 0.0,
            max_drawdown: 0.0,
            capped_days: 0,
        }
    }

    /// Net cost: initial cost + purchases − sale proceeds, USD.
    pub fn cost_usd(&self) -> f64 {
        self.initial_cost_usd + self.spent_usd - self.proceeds_usd
    }

    /// Mean price paid per BTC bought.
    pub fn average_price(&self) -> Option<f64> {
        (self.bought_btc > 0.0).then(|| self.spent_usd / self.bought_btc)
    }

    /// Advances one day. `mined_btc` is the mining plan's reserve output that day (before the
    /// credited share is applied).
    #[inline]
    pub fn step(
        &mut self,
        plan: &AccumulationPlan,
        s: &AccSchedule,
        t: usize,
        price: f64,
        mined_btc: f64,
    ) -> AccFlow {
        let mut flow = AccFlow::default();
        if s.fiscal_year[t] != self.fy {
            self.fy = s.fiscal_year[t];
            self.fy_spent_usd = 0.0;
        }
        self.fund_usd += s.offsets_usd[t];
        if price > self.price_high {
            self.price_high = price;
        }
        let received = s.seizure_btc[t] + mined_btc * s.mining_share;
        self.seized_btc += s.seizure_btc[t];
        self.mined_btc += mined_btc * s.mining_share;
        self.holdings_btc += received;
        flow.received_btc = received;
        if s.acts[t] {
            let mut want = match plan.rule {
                Rule::FixedBtc { btc } => btc * price,
                Rule::FixedFiat { usd } => usd,
                Rule::ValueAveraging {
                    target_increase_usd,
                } => target_increase_usd * f64::from(s.period_no[t]) - self.program_btc * price,
                Rule::BuyTheDip { usd, drawdown } => {
                    if price <= (1.0 - drawdown) * self.price_high {
                        usd
                    } else {
                        0.0
                    }
                }
                Rule::None => 0.0,
            };
            if want < 0.0 {
                if !plan.no_sale {
                    let sell = (-want / price).min(self.program_btc);
                    self.program_btc -= sell;
                    self.holdings_btc -= sell;
                    self.sold_btc += sell;
                    self.proceeds_usd += sell * price;
                    flow.sold_btc = sell;
                }
                want = 0.0;
            }
            let mut allowed = want;
            if let Some(cap) = plan.cap_usd_per_fiscal_year {
                allowed = allowed.min((cap - self.fy_spent_usd).max(0.0));
            }
            if !plan.new_money {
                allowed = allowed.min(self.fund_usd.max(0.0));
            }
            if allowed < want * (1.0 - 1e-12) {
                flow.capped = true;
                self.capped_days += 1;
            }
            if allowed > 0.0 {
                let btc = allowed / price;
                self.bought_btc += btc;
                self.program_btc += btc;
                self.holdings_btc += btc;
                self.spent_usd += allowed;
                self.fy_spent_usd += allowed;
                if !plan.new_money {
                    self.fund_usd -= allowed;
                }
                flow.bought_btc = btc;
                flow.spent_usd = allowed;
            }
        }
        let value = self.holdings_btc * price;
        if value > self.peak_value_usd {
            self.peak_value_usd = value;
        } else if self.peak_value_usd > 0.0 {
            let dd = 1.0 - value / self.peak_value_usd;
            if dd > self.max_drawdown {
                self.max_drawdown = dd;
            }
        }
        flow
    }
}

/// One day of an accumulation run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct AccDay {
    /// The day.
    pub date: Date,
    /// USD per BTC.
    pub price_usd: f64,
    /// BTC bought.
    pub bought_btc: f64,
    /// USD spent.
    pub spent_usd: f64,
    /// BTC sold.
    pub sold_btc: f64,
    /// BTC credited from mining and seizures.
    pub received_btc: f64,
    /// BTC held at the end of the day.
    pub holdings_btc: f64,
    /// Net cost so far, USD.
    pub cost_usd: f64,
    /// Value of holdings, USD.
    pub value_usd: f64,
    /// Mean price paid so far, USD/BTC.
    pub average_price_usd: Option<f64>,
    /// Value − cost, USD.
    pub unrealised_usd: f64,
    /// Fall of holdings value from its peak so far (fraction).
    pub drawdown: f64,
    /// Budget left in the fiscal year, USD (if capped).
    pub budget_left_usd: Option<f64>,
    /// Whether the cap or funding limited the purchase.
    pub capped: bool,
}

/// Totals over a period of an accumulation run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AccPeriod {
    /// Period label.
    pub period: String,
    /// First day.
    pub from: Date,
    /// Last day.
    pub to: Date,
    /// BTC bought.
    pub bought_btc: f64,
    /// USD spent.
    pub spent_usd: f64,
    /// Mean price paid in the period.
    pub average_price_usd: Option<f64>,
    /// BTC credited (mining + seizures).
    pub received_btc: f64,
    /// BTC sold.
    pub sold_btc: f64,
    /// Holdings at the end.
    pub holdings_btc: f64,
    /// Net cost at the end.
    pub cost_usd: f64,
    /// Value at the end.
    pub value_usd: f64,
    /// Days limited by budget or funding.
    pub capped_days: u32,
}

/// Summary of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AccSummary {
    /// First day.
    pub from: Date,
    /// Last day.
    pub to: Date,
    /// Days.
    pub days: u32,
    /// BTC bought.
    pub bought_btc: f64,
    /// USD spent on purchases.
    pub spent_usd: f64,
    /// Mean price paid.
    pub average_price_usd: Option<f64>,
    /// BTC credited from mining.
    pub mined_btc: f64,
    /// BTC credited from seizures.
    pub seized_btc: f64,
    /// BTC sold.
    pub sold_btc: f64,
    /// Holdings at the end.
    pub holdings_btc: f64,
    /// Net cost at the end (initial cost + purchases − proceeds).
    pub cost_usd: f64,
    /// Value at the end.
    pub value_usd: f64,
    /// Value − cost.
    pub unrealised_usd: f64,
    /// Largest fall of holdings value from its peak (fraction).
    pub max_drawdown: f64,
    /// Lowest value − cost on any day.
    pub worst_unrealised_usd: f64,
    /// Days on which the cap or funding limited a purchase.
    pub capped_days: u32,
}

/// An accumulation backtest or deterministic projection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccRun {
    /// Plan name.
    pub plan: String,
    /// "backtest" or "projection".
    pub mode: String,
    /// Assumptions used.
    pub assumptions: Vec<(String, String)>,
    /// Every day.
    pub days: Vec<AccDay>,
    /// Totals.
    pub summary: AccSummary,
    /// Per fiscal year.
    pub fiscal_years: Vec<AccPeriod>,
}

fn run_days(
    plan: &AccumulationPlan,
    sched: &AccSchedule,
    price_high: f64,
    mut net: impl FnMut(usize) -> (f64, f64, f64),
) -> (Vec<AccDay>, AccState, f64) {
    let mut st = AccState::new(plan, price_high);
    let mut out = Vec::with_capacity(sched.dates.len());
    let mut worst = f64::INFINITY;
    for t in 0..sched.dates.len() {
        // (price, network difficulty, reward per block)
        let (price, diff, reward) = net(t);
        let mined = match &sched.mining {
            Some(m) => m.flow(t, diff, reward, price).reserve_btc,
            None => 0.0,
        };
        let f = st.step(plan, sched, t, price, mined);
        let value = st.holdings_btc * price;
        let unreal = value - st.cost_usd();
        worst = worst.min(unreal);
        out.push(AccDay {
            date: sched.dates[t],
            price_usd: price,
            bought_btc: f.bought_btc,
            spent_usd: f.spent_usd,
            sold_btc: f.sold_btc,
            received_btc: f.received_btc,
            holdings_btc: st.holdings_btc,
            cost_usd: st.cost_usd(),
            value_usd: value,
            average_price_usd: st.average_price(),
            unrealised_usd: unreal,
            drawdown: if st.peak_value_usd > 0.0 {
                1.0 - value / st.peak_value_usd
            } else {
                0.0
            },
            budget_left_usd: plan
                .cap_usd_per_fiscal_year
                .map(|c| (c - st.fy_spent_usd).max(0.0)),
            capped: f.capped,
        });
    }
    (out, st, worst)
}

/// Sums days into periods.
pub fn acc_periods(days: &[AccDay], by: Granularity, fiscal_start_month: u8) -> Vec<AccPeriod> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < days.len() {
        let label = calendar::period_label(days[i].date, by, fiscal_start_month);
        let mut j = i;
        while j < days.len()
            && calendar::period_label(days[j].date, by, fiscal_start_month) == label
        {
            j += 1;
        }
        let d = &days[i..j];
        let last = d[d.len() - 1];
        let bought: f64 = d.iter().map(|x| x.bought_btc).sum();
        let spent: f64 = d.iter().map(|x| x.spent_usd).sum();
        out.push(AccPeriod {
            period: label,
            from: d[0].date,
            to: last.date,
            bought_btc: bought,
            spent_usd: spent,
            average_price_usd: (bought > 0.0).then(|| spent / bought),
            received_btc: d.iter().map(|x| x.received_btc).sum(),
            sold_btc: d.iter().map(|x| x.sold_btc).sum(),
            holdings_btc: last.holdings_btc,
            cost_usd: last.cost_usd,
            value_usd: last.value_usd,
            capped_days: d.iter().filter(|x| x.capped).count() as u32,
        });
        i = j;
    }
    out
}

fn finish(
    plan: &AccumulationPlan,
    mode: &str,
    assumptions: Vec<(String, String)>,
    days: Vec<AccDay>,
    st: AccState,
    worst: f64,
) -> Result<AccRun> {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Err(option_err("--from/--to", "the range has no days"));
    };
    let summary = AccSummary {
        from: first.date,
        to: last.date,
        days: days.len() as u32,
        bought_btc: st.bought_btc,
        spent_usd: st.spent_usd,
        average_price_usd: st.average_price(),
        mined_btc: st.mined_btc,
        seized_btc: st.seized_btc,
        sold_btc: st.sold_btc,
        holdings_btc: st.holdings_btc,
        cost_usd: st.cost_usd(),
        value_usd: last.value_usd,
        unrealised_usd: last.unrealised_usd,
        max_drawdown: st.max_drawdown,
        worst_unrealised_usd: worst,
        capped_days: st.capped_days,
    };
    Ok(AccRun {
        plan: plan.name.clone(),
        mode: mode.into(),
        assumptions,
        fiscal_years: acc_periods(&days, Granularity::FiscalYear, plan.fiscal_year_start_month),
        days,
        summary,
    })
}

/// The programme over real history, `from` to `to` inclusive.
pub fn backtest(
    plan: &AccumulationPlan,
    history: &History,
    from: Date,
    to: Date,
) -> Result<AccRun> {
    let days = history.range("--from/--to", from, to)?;
    let i0 = history.index_of("--from", from)?;
    let high = if i0 > 0 {
        history.running_high(i0 - 1)
    } else {
        0.0
    };
    let dates: Vec<Date> = days.iter().map(|d| d.date).collect();
    let heights: Vec<f64> = days.iter().map(|d| d.height).collect();
    let sched = AccSchedule::new(plan, &dates, &heights, false);
    let (out, st, worst) = run_days(plan, &sched, high, |t| {
        let d = &days[t];
        let reward = network::mean_subsidy(d.height, d.blocks) + d.fees_per_block();
        (d.price_usd, d.difficulty(), reward)
    });
    finish(
        plan,
        "backtest",
        vec![("history".into(), history.source().to_string())],
        out,
        st,
        worst,
    )
}

/// Deterministic projection with the plan's constant-growth assumptions.
pub fn project(
    plan: &AccumulationPlan,
    history: &History,
    from: Date,
    days: usize,
) -> Result<AccRun> {
    if days == 0 {
        return Err(option_err(
            "--years",
            "the projection needs at least one day",
        ));
    }
    let st0 = ProjectionStart::from_history(history, from, &plan.projection)?;
    let (dates, heights) = st0.calendar(days);
    let i0 = history.index_of("--from", from)?;
    let high = if i0 > 0 {
        history.running_high(i0 - 1)
    } else {
        0.0
    };
    let sched = AccSchedule::new(plan, &dates, &heights, true);
    let gp = (1.0 + st0.price_growth).ln() / 365.0;
    let gh = (1.0 + st0.hashrate_growth).ln() / 365.0;
    let (out, st, worst) = run_days(plan, &sched, high, |t| {
        let tf = t as f64;
        let reward = network::mean_subsidy(heights[t], BLOCKS_PER_DAY) + st0.fees_per_block;
        (
            st0.price_usd * (gp * tf).exp(),
            st0.difficulty * (gh * tf).exp(),
            reward,
        )
    });
    finish(plan, "projection", st0.describe(), out, st, worst)
}

/// The accumulation model on Monte Carlo paths.
#[derive(Debug, Clone)]
pub struct AccPaths<'a> {
    plan: &'a AccumulationPlan,
    sched: AccSchedule,
    subsidy: Vec<f64>,
    price_high: f64,
}

impl<'a> AccPaths<'a> {
    /// Prepares the plan for `days` days from `start`; `price_high` is the high before it.
    pub fn new(
        plan: &'a AccumulationPlan,
        start: &ProjectionStart,
        days: usize,
        price_high: f64,
    ) -> AccPaths<'a> {
        let (dates, heights) = start.calendar(days);
        AccPaths {
            plan,
            sched: AccSchedule::new(plan, &dates, &heights, true),
            subsidy: heights
                .iter()
                .map(|h| network::mean_subsidy(*h, BLOCKS_PER_DAY))
                .collect(),
            price_high,
        }
    }
}

impl crate::montecarlo::PathModel for AccPaths<'_> {
    type State = AccState;

    fn series(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("holdings_btc", "BTC"),
            ("value_usd", "USD"),
            ("cost_usd", "USD"),
            ("bought_btc", "BTC"),
            ("price_usd", "USD/BTC"),
        ]
    }

    fn init(&self) -> AccState {
        AccState::new(self.plan, self.price_high)
    }

    #[inline]
    fn step(&self, st: &mut AccState, t: usize, price: f64, difficulty: f64, fees: f64) {
        let mined = match &self.sched.mining {
            Some(m) => {
                m.flow(t, difficulty, self.subsidy[t] + fees, price)
                    .reserve_btc
            }
            None => 0.0,
        };
        st.step(self.plan, &self.sched, t, price, mined);
    }

    fn record(&self, st: &AccState, price: f64, _difficulty: f64, out: &mut [f32]) {
        let vals = [
            st.holdings_btc,
            st.holdings_btc * price,
            st.cost_usd(),
            st.bought_btc,
            price,
        ];
        for (o, v) in out.iter_mut().zip(vals) {
            *o = v as f32;
        }
    }
}

/// Monte Carlo projection of an accumulation plan from `from` (a day of history).
pub fn monte_carlo(
    plan: &AccumulationPlan,
    history: &History,
    from: Date,
    opts: &crate::montecarlo::McOptions,
    progress: Option<&(dyn Fn(usize) + Sync)>,
) -> Result<crate::montecarlo::McResult> {
    let st = ProjectionStart::from_history(history, from, &plan.projection)?;
    let gen = crate::montecarlo::Generator::fit(history, from, opts)?;
    let i0 = history.index_of("--from", from)?;
    let high = if i0 > 0 {
        history.running_high(i0 - 1)
    } else {
        0.0
    };
    let model = AccPaths::new(plan, &st, opts.days.max(1), high);
    crate::montecarlo::run(&model, &gen, &st, opts, progress)
}
