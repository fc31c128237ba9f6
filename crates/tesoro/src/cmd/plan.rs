//! `tesoro plan`: mining and accumulation plans, backtested on real history and projected
//! with Monte Carlo. All logic lives in `tesoro-plan`; this module parses options, picks the
//! history, and prints tables (comfy-table), CSV or JSON, and SVG charts.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use tesoro_plan::accumulate::{self, AccRun};
use tesoro_plan::calendar::Granularity;
use tesoro_plan::chart;
use tesoro_plan::mining::{self, MiningRun};
use tesoro_plan::montecarlo::{McOptions, McResult, Method};
use tesoro_plan::{History, Plan};
use time::Date;

/// `tesoro plan …`
#[derive(Debug, clap::Args)]
pub struct PlanCmd {
    #[command(subcommand)]
    command: PlanSub,
}

#[derive(Debug, clap::Subcommand)]
enum PlanSub {
    /// Mining plan: MW → hashrate → BTC, electricity at paid and cost-recovery tariffs,
    /// subsidy (fiscal cost), margin, hashprice, break-evens. Projects by default;
    /// --backtest runs it over real history; --paths runs Monte Carlo.
    Mine(RunArgs),
    /// Accumulation plan: buying rule, budget cap, budget-neutral funding, no sales.
    Accumulate(RunArgs),
    /// Compare two or more plans side by side over the same dates.
    Compare(CompareArgs),
    /// Daily network hashprice (USD/PH/day) computed from the history.
    Hashprice(HashpriceArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MethodArg {
    /// Block bootstrap of historical daily returns (keeps the price–hashrate correlation).
    Bootstrap,
    /// Correlated geometric Brownian motion with fitted drift and volatility.
    Gbm,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ByArg {
    Day,
    Month,
    Year,
    FiscalYear,
}

impl From<ByArg> for Granularity {
    fn from(b: ByArg) -> Granularity {
        match b {
            ByArg::Day => Granularity::Day,
            ByArg::Month => Granularity::Month,
            ByArg::Year => Granularity::Year,
            ByArg::FiscalYear => Granularity::FiscalYear,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
struct OutputArgs {
    /// Print JSON instead of tables.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV instead of tables.
    #[arg(long)]
    csv: bool,
}

#[derive(Debug, Clone, clap::Args)]
struct CommonArgs {
    /// Run over real history instead of projecting forward.
    #[arg(long)]
    backtest: bool,
    /// First day (YYYY-MM-DD). Backtest default: the plan's start (a mining backtest from
    /// another day runs the plan as if started then). Projection default: the plan's start,
    /// or the last day of history if the start is later.
    #[arg(long, value_parser = parse_date)]
    from: Option<Date>,
    /// Last day of a backtest (YYYY-MM-DD; default: last day of history).
    #[arg(long, value_parser = parse_date)]
    to: Option<Date>,
    /// Projection horizon in years.
    #[arg(long, default_value_t = 5.0)]
    years: f64,
    /// Monte Carlo paths (projection only); without it the projection is deterministic.
    #[arg(long)]
    paths: Option<usize>,
    /// Monte Carlo seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Monte Carlo generator.
    #[arg(long, value_enum, default_value = "bootstrap")]
    method: MethodArg,
    /// Bootstrap block length, days.
    #[arg(long, default_value_t = 30)]
    block_days: usize,
    /// First day of the history window the Monte Carlo is fitted on (default: first day).
    #[arg(long, value_parser = parse_date)]
    fit_from: Option<Date>,
    /// Last day of the fitting window (default: the projection's first day).
    #[arg(long, value_parser = parse_date)]
    fit_to: Option<Date>,
    /// Re-centre simulated price returns on this growth, % per year (default: as fitted).
    #[arg(long, allow_hyphen_values = true)]
    price_drift: Option<f64>,
    /// Re-centre simulated network hashrate returns on this growth, % per year.
    #[arg(long, allow_hyphen_values = true)]
    hashrate_drift: Option<f64>,
    /// Daily history CSV (Coin Metrics columns) instead of the embedded one.
    #[arg(long)]
    history: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Plan file (TOML); see plans/ and docs/planning.md.
    plan: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
    /// Rows of the table / CSV: day, month, year or fiscal-year.
    #[arg(long, value_enum, default_value = "month")]
    by: ByArg,
    #[command(flatten)]
    out: OutputArgs,
    /// Write an SVG chart to this file.
    #[arg(long)]
    chart: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct CompareArgs {
    /// Plan files (two or more).
    #[arg(required = true, num_args = 2..)]
    plans: Vec<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, clap::Args)]
struct HashpriceArgs {
    /// First day (default: 30 days before the last day of history).
    #[arg(long, value_parser = parse_date)]
    from: Option<Date>,
    /// Last day (default: last day of history).
    #[arg(long, value_parser = parse_date)]
    to: Option<Date>,
    /// Daily history CSV instead of the embedded one.
    #[arg(long)]
    history: Option<PathBuf>,
    #[command(flatten)]
    out: OutputArgs,
}

fn parse_date(s: &str) -> Result<Date, String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), &fmt).map_err(|_| format!("`{s}` is not a date YYYY-MM-DD"))
}

/// Runs a `plan` subcommand.
pub fn run(cmd: PlanCmd) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    dispatch(cmd, &mut out)
}

fn dispatch(cmd: PlanCmd, out: &mut dyn Write) -> anyhow::Result<()> {
    match cmd.command {
        PlanSub::Mine(a) => run_plan(a, Kind::Mining, out),
        PlanSub::Accumulate(a) => run_plan(a, Kind::Accumulation, out),
        PlanSub::Compare(a) => compare(a, out),
        PlanSub::Hashprice(a) => hashprice(a, out),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Mining,
    Accumulation,
}

fn load_history(path: &Option<PathBuf>) -> anyhow::Result<History> {
    Ok(match path {
        Some(p) => History::from_path(p)?,
        None => History::embedded()?,
    })
}

/// What a run produced.
enum Outcome {
    Mining(Box<MiningRun>, u8),
    Accumulation(Box<AccRun>, u8),
    MonteCarlo(Box<McResult>, Kind, String),
}

fn mc_options(c: &CommonArgs, days: usize) -> anyhow::Result<McOptions> {
    let mut o = McOptions::new(days);
    o.paths = c.paths.unwrap_or(10_000);
    o.seed = c.seed;
    o.method = match c.method {
        MethodArg::Bootstrap => Method::Bootstrap {
            block_days: c.block_days,
        },
        MethodArg::Gbm => Method::Gbm,
    };
    o.fit_from = c.fit_from;
    o.fit_to = c.fit_to;
    o.price_drift = c.price_drift.map(|p| p / 100.0);
    o.hashrate_drift = c.hashrate_drift.map(|p| p / 100.0);
    Ok(o)
}

fn horizon_days(c: &CommonArgs) -> anyhow::Result<usize> {
    if !(c.years.is_finite() && c.years > 0.0 && c.years <= 100.0) {
        bail!(
            "option `--years`: must be more than 0 and at most 100, got {}",
            c.years
        );
    }
    Ok(((c.years * 365.0).round() as usize).max(2))
}

fn execute(plan: &Plan, c: &CommonArgs, history: &History) -> anyhow::Result<Outcome> {
    if c.backtest {
        if c.paths.is_some() {
            bail!("--paths is for projections; a backtest uses the one real history (drop --backtest or --paths)");
        }
        let from = c.from.unwrap_or(plan.start());
        let to = c.to.unwrap_or(history.last());
        return Ok(match plan {
            Plan::Mining(p) => {
                // A mining backtest asks what the plant would have produced had it started
                // on --from: the plan's dates move with it.
                let rebased = p.rebased(from)?;
                let mut run = mining::backtest(&rebased, history, from, to)?;
                if from != p.start {
                    run.assumptions.push((
                        "plan dates moved".into(),
                        format!("start {} → {from}, fleet dates by the same offset", p.start),
                    ));
                }
                Outcome::Mining(Box::new(run), p.fiscal_year_start_month)
            }
            Plan::Accumulation(p) => Outcome::Accumulation(
                Box::new(accumulate::backtest(p, history, from, to)?),
                p.fiscal_year_start_month,
            ),
        });
    }
    if c.to.is_some() {
        bail!("--to is for backtests (add --backtest); projections take --years");
    }
    let from = c.from.unwrap_or_else(|| plan.start().min(history.last()));
    let days = horizon_days(c)?;
    if c.paths.is_some() {
        let opts = mc_options(c, days)?;
        let bar = progress_bar(opts.paths, days);
        let cb = bar.as_ref().map(|b| {
            let b = b.clone();
            move |n: usize| b.set_position(n as u64)
        });
        let cb_ref: Option<&(dyn Fn(usize) + Sync)> =
            cb.as_ref().map(|f| f as &(dyn Fn(usize) + Sync));
        let (res, kind) = match plan {
            Plan::Mining(p) => (
                mining::monte_carlo(p, history, from, &opts, cb_ref)?,
                Kind::Mining,
            ),
            Plan::Accumulation(p) => (
                accumulate::monte_carlo(p, history, from, &opts, cb_ref)?,
                Kind::Accumulation,
            ),
        };
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        return Ok(Outcome::MonteCarlo(
            Box::new(res),
            kind,
            plan.name().to_string(),
        ));
    }
    Ok(match plan {
        Plan::Mining(p) => Outcome::Mining(
            Box::new(mining::project(p, history, from, days)?),
            p.fiscal_year_start_month,
        ),
        Plan::Accumulation(p) => Outcome::Accumulation(
            Box::new(accumulate::project(p, history, from, days)?),
            p.fiscal_year_start_month,
        ),
    })
}

fn progress_bar(paths: usize, days: usize) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || paths.saturating_mul(days) < 2_000_000 {
        return None;
    }
    let b = indicatif::ProgressBar::new(paths as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} Monte Carlo {bar:40} {pos}/{len} paths {elapsed}",
    ) {
        b.set_style(style);
    }
    Some(b)
}

fn run_plan(a: RunArgs, kind: Kind, out: &mut dyn Write) -> anyhow::Result<()> {
    let plan = tesoro_plan::load_plan(&a.plan)?;
    match (&plan, kind) {
        (Plan::Mining(_), Kind::Accumulation) => {
            bail!(
                "{} is a mining plan; run it with `tesoro plan mine`",
                a.plan.display()
            )
        }
        (Plan::Accumulation(_), Kind::Mining) => {
            bail!(
                "{} is an accumulation plan; run it with `tesoro plan accumulate`",
                a.plan.display()
            )
        }
        _ => {}
    }
    let history = load_history(&a.common.history)?;
    let outcome = execute(&plan, &a.common, &history)?;
    if let Some(path) = &a.chart {
        write_chart(&outcome, path)?;
    }
    let by: Granularity = a.by.into();
    match &outcome {
        Outcome::Mining(run, fy) => print_mining(run, by, *fy, &a.out, out),
        Outcome::Accumulation(run, fy) => print_accumulation(run, by, *fy, &a.out, out),
        Outcome::MonteCarlo(mc, k, name) => print_mc(mc, *k, name, &a.out, out),
    }?;
    if let Some(path) = &a.chart {
        if !a.out.json && !a.out.csv {
            writeln!(out, "chart written to {}", path.display())?;
        }
    }
    Ok(())
}

fn write_chart(o: &Outcome, path: &Path) -> anyhow::Result<()> {
    let (title, panels) = match o {
        Outcome::Mining(r, _) => (
            format!("{} — mining {}", r.plan, r.mode),
            chart::mining_panels(r),
        ),
        Outcome::Accumulation(r, _) => (
            format!("{} — accumulation {}", r.plan, r.mode),
            chart::accumulation_panels(r),
        ),
        Outcome::MonteCarlo(mc, k, name) => {
            let names: &[(&str, &str)] = match k {
                Kind::Mining => &[
                    ("reserve_value_usd", "Value of BTC reaching the reserve"),
                    ("reserve_btc", "BTC reaching the reserve"),
                    ("subsidy_usd", "Cumulative subsidy (fiscal cost)"),
                    ("margin_usd", "Cumulative margin at paid tariff"),
                ],
                Kind::Accumulation => &[
                    ("value_usd", "Value of holdings"),
                    ("holdings_btc", "Holdings"),
                    ("cost_usd", "Net cost"),
                ],
            };
            (
                format!(
                    "{name} — Monte Carlo, {} paths, seed {}",
                    mc.options.paths, mc.options.seed
                ),
                chart::fan_panels(mc, names),
            )
        }
    };
    chart::draw_svg(path, &title, &panels)?;
    Ok(())
}

// ------------------------------------------------------------------------ formatting

fn group(int: u128) -> String {
    let s = int.to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// 1234567.891 with `dp` decimals → "1,234,567.89".
fn num(v: f64, dp: usize) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    let s = format!("{:.*}", dp, v.abs());
    let (i, f) = s.split_once('.').map_or((s.as_str(), ""), |(i, f)| (i, f));
    let int: u128 = i.parse().unwrap_or(0);
    let sign = if v < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    if f.is_empty() {
        format!("{sign}{}", group(int))
    } else {
        format!("{sign}{}.{f}", group(int))
    }
}

fn usd(v: f64) -> String {
    num(v, 0)
}

fn opt(v: Option<f64>, dp: usize) -> String {
    v.map_or("—".into(), |x| num(x, dp))
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().map(Cell::new).collect::<Vec<_>>());
    t
}

fn right(t: &mut Table, from: usize) {
    let n = t.column_count();
    for i in from..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn kv_table(rows: &[(String, String)]) -> Table {
    let mut t = table(&["", ""]);
    for (k, v) in rows {
        t.add_row(vec![k.clone(), v.clone()]);
    }
    right(&mut t, 1);
    t
}

fn csv_line(out: &mut dyn Write, cells: &[String]) -> std::io::Result<()> {
    let esc: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect();
    writeln!(out, "{}", esc.join(","))
}

// ------------------------------------------------------------------------ mining output

fn print_mining(
    run: &MiningRun,
    by: Granularity,
    fy: u8,
    o: &OutputArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let periods = mining::mining_periods(&run.days, by, fy);
    if o.json {
        let v = serde_json::json!({
            "plan": run.plan, "mode": run.mode, "assumptions": run.assumptions,
            "currency": run.currency, "total": run.total, "fiscal_years": run.fiscal_years,
            "by": by, "periods": periods,
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    let cur = &run.currency;
    if o.csv {
        csv_line(
            out,
            &[
                "period",
                "from",
                "to",
                "days",
                "mean_share",
                "expected_blocks",
                "btc_mined",
                "btc_sold",
                "btc_to_reserve",
                "revenue_usd",
                "energy_mwh",
                "elec_paid_usd",
                "elec_recovery_usd",
                &format!("subsidy_{}", cur.to_lowercase()),
                "subsidy_usd",
                "opex_capex_usd",
                "margin_usd",
                "margin_at_recovery_usd",
                "mean_hashprice_usd_ph_day",
                "breakeven_power_usd_kwh",
                "breakeven_btc_price_usd",
                "mean_price_usd",
            ]
            .map(String::from),
        )?;
        for p in &periods {
            csv_line(
                out,
                &[
                    p.period.clone(),
                    p.from.to_string(),
                    p.to.to_string(),
                    p.days.to_string(),
                    format!("{:.6}", p.mean_share),
                    format!("{:.4}", p.expected_blocks),
                    format!("{:.8}", p.btc_mined),
                    format!("{:.8}", p.btc_sold),
                    format!("{:.8}", p.btc_to_reserve),
                    format!("{:.2}", p.revenue_usd),
                    format!("{:.3}", p.energy_mwh),
                    format!("{:.2}", p.elec_paid_usd),
                    format!("{:.2}", p.elec_recovery_usd),
                    format!("{:.2}", p.subsidy_local),
                    format!("{:.2}", p.subsidy_usd),
                    format!("{:.2}", p.fixed_usd),
                    format!("{:.2}", p.margin_usd),
                    format!("{:.2}", p.margin_at_recovery_usd),
                    format!("{:.4}", p.mean_hashprice),
                    p.breakeven_power_usd_per_kwh
                        .map_or(String::new(), |x| format!("{x:.5}")),
                    p.breakeven_btc_price_usd
                        .map_or(String::new(), |x| format!("{x:.2}")),
                    format!("{:.2}", p.mean_price_usd),
                ],
            )?;
        }
        return Ok(());
    }
    let t = &run.total;
    writeln!(
        out,
        "{} — mining {} {} … {} ({} days)",
        run.plan, run.mode, t.from, t.to, t.days
    )?;
    writeln!(out, "{}", kv_table(&run.assumptions))?;
    let mut tb = table(&[
        "period",
        "share %",
        "BTC mined",
        "BTC to reserve",
        "revenue USD",
        "electricity USD (paid)",
        &format!("subsidy {cur}"),
        "subsidy USD",
        "margin USD",
        "hashprice $/PH/d",
    ]);
    for p in &periods {
        tb.add_row(vec![
            p.period.clone(),
            num(p.mean_share * 100.0, 2),
            num(p.btc_mined, 2),
            num(p.btc_to_reserve, 2),
            usd(p.revenue_usd),
            usd(p.elec_paid_usd),
            num(p.subsidy_local, 0),
            usd(p.subsidy_usd),
            usd(p.margin_usd),
            num(p.mean_hashprice, 2),
        ]);
    }
    right(&mut tb, 1);
    writeln!(out, "{tb}")?;
    let rows = vec![
        ("energy (GWh)".to_string(), num(t.energy_mwh / 1000.0, 1)),
        (
            "mean plant hashrate (EH/s)".into(),
            num(t.mean_plant_ehs, 2),
        ),
        (
            "mean share of network (%)".into(),
            num(t.mean_share * 100.0, 3),
        ),
        ("blocks expected".into(), num(t.expected_blocks, 1)),
        ("BTC mined (after pool fee)".into(), num(t.btc_mined, 4)),
        ("BTC sold to cover costs".into(), num(t.btc_sold, 4)),
        ("BTC reaching the reserve".into(), num(t.btc_to_reserve, 4)),
        ("revenue (USD)".into(), usd(t.revenue_usd)),
        (
            "electricity at paid tariff (USD)".into(),
            usd(t.elec_paid_usd),
        ),
        (
            "electricity at cost-recovery tariff (USD)".into(),
            usd(t.elec_recovery_usd),
        ),
        (
            format!("subsidy = energy × tariff gap ({cur})"),
            num(t.subsidy_local, 0),
        ),
        (
            "subsidy = energy × tariff gap (USD)".into(),
            usd(t.subsidy_usd),
        ),
        ("opex + capex (USD)".into(), usd(t.fixed_usd)),
        ("margin at paid tariff (USD)".into(), usd(t.margin_usd)),
        (
            "margin at cost-recovery tariff (USD)".into(),
            usd(t.margin_at_recovery_usd),
        ),
        (
            "mean hashprice (USD/PH/day)".into(),
            num(t.mean_hashprice, 2),
        ),
        (
            "break-even power price (USD/kWh)".into(),
            opt(t.breakeven_power_usd_per_kwh, 4),
        ),
        (
            "break-even BTC price (USD)".into(),
            opt(t.breakeven_btc_price_usd, 0),
        ),
        (
            "reserve BTC valued on the last day (USD)".into(),
            usd(t.reserve_value_usd),
        ),
    ];
    writeln!(out, "Totals\n{}", kv_table(&rows))?;
    let mut fyt = table(&[
        "fiscal year",
        "energy GWh",
        &format!("subsidy {cur}"),
        "subsidy USD",
        "BTC to reserve",
        "margin USD",
    ]);
    for p in &run.fiscal_years {
        fyt.add_row(vec![
            p.period.clone(),
            num(p.energy_mwh / 1000.0, 1),
            num(p.subsidy_local, 0),
            usd(p.subsidy_usd),
            num(p.btc_to_reserve, 2),
            usd(p.margin_usd),
        ]);
    }
    right(&mut fyt, 1);
    writeln!(out, "Fiscal cost of the subsidy by fiscal year\n{fyt}")?;
    Ok(())
}

// ------------------------------------------------------------------------ accumulation output

fn print_accumulation(
    run: &AccRun,
    by: Granularity,
    fy: u8,
    o: &OutputArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let periods = accumulate::acc_periods(&run.days, by, fy);
    if o.json {
        let v = serde_json::json!({
            "plan": run.plan, "mode": run.mode, "assumptions": run.assumptions,
            "summary": run.summary, "fiscal_years": run.fiscal_years, "by": by, "periods": periods,
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    if o.csv {
        csv_line(
            out,
            &[
                "period",
                "from",
                "to",
                "bought_btc",
                "spent_usd",
                "average_price_usd",
                "received_btc",
                "sold_btc",
                "holdings_btc",
                "cost_usd",
                "value_usd",
                "capped_days",
            ]
            .map(String::from),
        )?;
        for p in &periods {
            csv_line(
                out,
                &[
                    p.period.clone(),
                    p.from.to_string(),
                    p.to.to_string(),
                    format!("{:.8}", p.bought_btc),
                    format!("{:.2}", p.spent_usd),
                    p.average_price_usd
                        .map_or(String::new(), |x| format!("{x:.2}")),
                    format!("{:.8}", p.received_btc),
                    format!("{:.8}", p.sold_btc),
                    format!("{:.8}", p.holdings_btc),
                    format!("{:.2}", p.cost_usd),
                    format!("{:.2}", p.value_usd),
                    p.capped_days.to_string(),
                ],
            )?;
        }
        return Ok(());
    }
    let s = &run.summary;
    writeln!(
        out,
        "{} — accumulation {} {} … {} ({} days)",
        run.plan, run.mode, s.from, s.to, s.days
    )?;
    writeln!(out, "{}", kv_table(&run.assumptions))?;
    let mut tb = table(&[
        "period",
        "BTC bought",
        "USD spent",
        "avg price",
        "BTC received",
        "holdings BTC",
        "net cost USD",
        "value USD",
        "capped days",
    ]);
    for p in &periods {
        tb.add_row(vec![
            p.period.clone(),
            num(p.bought_btc, 4),
            usd(p.spent_usd),
            opt(p.average_price_usd, 0),
            num(p.received_btc, 4),
            num(p.holdings_btc, 4),
            usd(p.cost_usd),
            usd(p.value_usd),
            p.capped_days.to_string(),
        ]);
    }
    right(&mut tb, 1);
    writeln!(out, "{tb}")?;
    let rows = vec![
        ("BTC bought".to_string(), num(s.bought_btc, 4)),
        ("USD spent".into(), usd(s.spent_usd)),
        (
            "average price paid (USD/BTC)".into(),
            opt(s.average_price_usd, 2),
        ),
        ("BTC from mining".into(), num(s.mined_btc, 4)),
        ("BTC from seizures".into(), num(s.seized_btc, 4)),
        ("BTC sold".into(), num(s.sold_btc, 4)),
        ("holdings at the end (BTC)".into(), num(s.holdings_btc, 4)),
        ("net cost (USD)".into(), usd(s.cost_usd)),
        ("value at the end (USD)".into(), usd(s.value_usd)),
        ("unrealised gain (USD)".into(), usd(s.unrealised_usd)),
        ("worst unrealised (USD)".into(), usd(s.worst_unrealised_usd)),
        (
            "max drawdown of holdings value (%)".into(),
            num(s.max_drawdown * 100.0, 1),
        ),
        (
            "days limited by budget or funding".into(),
            s.capped_days.to_string(),
        ),
    ];
    writeln!(out, "Totals\n{}", kv_table(&rows))?;
    Ok(())
}

// ------------------------------------------------------------------------ Monte Carlo output

fn print_mc(
    mc: &McResult,
    kind: Kind,
    name: &str,
    o: &OutputArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if o.json {
        let v = serde_json::json!({ "plan": name, "kind": match kind { Kind::Mining => "mining", Kind::Accumulation => "accumulation" }, "monte_carlo": mc });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    if o.csv {
        csv_line(
            out,
            &["date", "series", "unit", "p5", "p25", "p50", "p75", "p95"].map(String::from),
        )?;
        for s in &mc.series {
            for (d, p) in mc.dates.iter().zip(&s.percentiles) {
                csv_line(
                    out,
                    &[
                        d.to_string(),
                        s.name.clone(),
                        s.unit.clone(),
                        format!("{:.6}", p[0]),
                        format!("{:.6}", p[1]),
                        format!("{:.6}", p[2]),
                        format!("{:.6}", p[3]),
                        format!("{:.6}", p[4]),
                    ],
                )?;
            }
        }
        return Ok(());
    }
    let method = match mc.options.method {
        Method::Bootstrap { block_days } => {
            format!("block bootstrap of daily log returns ({block_days}-day blocks)")
        }
        Method::Gbm => "correlated GBM with fitted parameters".into(),
    };
    let last = mc.dates.last().copied().unwrap_or(mc.start);
    writeln!(
        out,
        "{name} — Monte Carlo {} … {}, {} paths, seed {}",
        mc.start, last, mc.options.paths, mc.options.seed
    )?;
    let f = &mc.fit;
    let rows = vec![
        ("method".to_string(), method),
        (
            "fitted on".into(),
            format!("{} … {} ({} daily returns)", f.from, f.to, f.returns),
        ),
        (
            "historical price drift / volatility (%/yr)".into(),
            format!(
                "{:.1} / {:.1}",
                f.price_drift_pct_per_year, f.price_vol_pct_per_year
            ),
        ),
        (
            "historical hashrate drift / volatility (%/yr)".into(),
            format!(
                "{:.1} / {:.1}",
                f.hashrate_drift_pct_per_year, f.hashrate_vol_pct_per_year
            ),
        ),
        (
            "price–hashrate daily correlation".into(),
            format!("{:.3}", f.correlation),
        ),
        (
            "price drift used (%/yr)".into(),
            mc.options
                .price_drift
                .map_or("as fitted".into(), |d| format!("{:.1}", d * 100.0)),
        ),
        (
            "hashrate drift used (%/yr)".into(),
            mc.options
                .hashrate_drift
                .map_or("as fitted".into(), |d| format!("{:.1}", d * 100.0)),
        ),
    ];
    writeln!(out, "{}", kv_table(&rows))?;
    let mut tb = table(&["on the last day", "unit", "p5", "p25", "p50", "p75", "p95"]);
    for s in &mc.series {
        let p = s.last();
        let dp = if s.unit == "BTC" || s.unit == "EH/s" {
            2
        } else {
            0
        };
        tb.add_row(vec![
            s.name.clone(),
            s.unit.clone(),
            num(p[0], dp),
            num(p[1], dp),
            num(p[2], dp),
            num(p[3], dp),
            num(p[4], dp),
        ]);
    }
    right(&mut tb, 2);
    writeln!(out, "{tb}")?;
    let (hold, val) = match kind {
        Kind::Mining => ("reserve_btc", "reserve_value_usd"),
        Kind::Accumulation => ("holdings_btc", "value_usd"),
    };
    if let (Some(h), Some(v)) = (mc.get(hold), mc.get(val)) {
        let mut yt = table(&[
            "date",
            "BTC p5",
            "BTC p50",
            "BTC p95",
            "value USD p5",
            "value USD p50",
            "value USD p95",
        ]);
        let mut next_year = mc.start.year() + 1;
        for (i, d) in mc.dates.iter().enumerate() {
            if d.year() >= next_year || i + 1 == mc.dates.len() {
                next_year = d.year() + 1;
                let (a, b) = (h.percentiles[i], v.percentiles[i]);
                yt.add_row(vec![
                    d.to_string(),
                    num(a[0], 2),
                    num(a[2], 2),
                    num(a[4], 2),
                    usd(b[0]),
                    usd(b[2]),
                    usd(b[4]),
                ]);
            }
        }
        right(&mut yt, 1);
        writeln!(out, "By year\n{yt}")?;
    }
    Ok(())
}

// ------------------------------------------------------------------------ compare

#[derive(Debug, serde::Serialize)]
struct Headline {
    plan: String,
    file: String,
    kind: &'static str,
    from: Date,
    to: Date,
    btc_acquired: f64,
    holdings_btc: f64,
    cost_usd: f64,
    value_usd: f64,
    cost_per_btc_usd: Option<f64>,
    subsidy_usd: f64,
    /// Monte Carlo only: p5 and p95 of holdings and value.
    holdings_p5_p95: Option<(f64, f64)>,
    value_p5_p95: Option<(f64, f64)>,
}

/// One row of the comparison table: how to show a plan's figure.
type HeadlineCell = Box<dyn Fn(&Headline) -> String>;

fn compare(a: CompareArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let history = load_history(&a.common.history)?;
    let mut heads = Vec::new();
    for path in &a.plans {
        let plan = tesoro_plan::load_plan(path)?;
        let o = execute(&plan, &a.common, &history)
            .with_context(|| format!("running {}", path.display()))?;
        let file = path.display().to_string();
        heads.push(match o {
            Outcome::Mining(r, _) => {
                let t = &r.total;
                Headline {
                    plan: r.plan.clone(),
                    file,
                    kind: "mining",
                    from: t.from,
                    to: t.to,
                    btc_acquired: t.btc_to_reserve,
                    holdings_btc: t.btc_to_reserve,
                    cost_usd: t.elec_paid_usd + t.fixed_usd,
                    value_usd: t.reserve_value_usd,
                    cost_per_btc_usd: t.breakeven_btc_price_usd,
                    subsidy_usd: t.subsidy_usd,
                    holdings_p5_p95: None,
                    value_p5_p95: None,
                }
            }
            Outcome::Accumulation(r, _) => {
                let s = &r.summary;
                Headline {
                    plan: r.plan.clone(),
                    file,
                    kind: "accumulation",
                    from: s.from,
                    to: s.to,
                    btc_acquired: s.bought_btc + s.mined_btc + s.seized_btc,
                    holdings_btc: s.holdings_btc,
                    cost_usd: s.cost_usd,
                    value_usd: s.value_usd,
                    cost_per_btc_usd: s.average_price_usd,
                    subsidy_usd: 0.0,
                    holdings_p5_p95: None,
                    value_p5_p95: None,
                }
            }
            Outcome::MonteCarlo(mc, k, name) => {
                let (hn, vn) = match k {
                    Kind::Mining => ("reserve_btc", "reserve_value_usd"),
                    Kind::Accumulation => ("holdings_btc", "value_usd"),
                };
                let g = |n: &str| mc.get(n).map(|s| s.last()).unwrap_or([f64::NAN; 5]);
                let (h, v, c, s) = (g(hn), g(vn), g("cost_usd"), g("subsidy_usd"));
                Headline {
                    plan: name,
                    file,
                    kind: if k == Kind::Mining {
                        "mining"
                    } else {
                        "accumulation"
                    },
                    from: mc.start,
                    to: mc.dates.last().copied().unwrap_or(mc.start),
                    btc_acquired: h[2],
                    holdings_btc: h[2],
                    cost_usd: c[2],
                    value_usd: v[2],
                    cost_per_btc_usd: None,
                    subsidy_usd: if s[2].is_nan() { 0.0 } else { s[2] },
                    holdings_p5_p95: Some((h[0], h[4])),
                    value_p5_p95: Some((v[0], v[4])),
                }
            }
        });
    }
    if a.out.json {
        serde_json::to_writer_pretty(&mut *out, &heads)?;
        writeln!(out)?;
        return Ok(());
    }
    let rows: Vec<(&str, HeadlineCell)> = vec![
        ("file", Box::new(|h| h.file.clone())),
        ("kind", Box::new(|h| h.kind.to_string())),
        ("from", Box::new(|h| h.from.to_string())),
        ("to", Box::new(|h| h.to.to_string())),
        ("BTC acquired", Box::new(|h| num(h.btc_acquired, 2))),
        (
            "holdings at end (BTC)",
            Box::new(|h| num(h.holdings_btc, 2)),
        ),
        ("cost (USD)", Box::new(|h| usd(h.cost_usd))),
        ("value at end (USD)", Box::new(|h| usd(h.value_usd))),
        (
            "cost per BTC (USD)",
            Box::new(|h| opt(h.cost_per_btc_usd, 0)),
        ),
        ("power subsidy (USD)", Box::new(|h| usd(h.subsidy_usd))),
        (
            "holdings p5 – p95 (BTC)",
            Box::new(|h| {
                h.holdings_p5_p95.map_or("—".into(), |(a, b)| {
                    format!("{} – {}", num(a, 2), num(b, 2))
                })
            }),
        ),
        (
            "value p5 – p95 (USD)",
            Box::new(|h| {
                h.value_p5_p95
                    .map_or("—".into(), |(a, b)| format!("{} – {}", usd(a), usd(b)))
            }),
        ),
    ];
    if a.out.csv {
        let mut head = vec!["metric".to_string()];
        head.extend(heads.iter().map(|h| h.plan.clone()));
        csv_line(out, &head)?;
        for (name, f) in &rows {
            let mut line = vec![name.to_string()];
            line.extend(heads.iter().map(|h| f(h).replace(',', "")));
            csv_line(out, &line)?;
        }
        return Ok(());
    }
    let mut header = vec!["".to_string()];
    header.extend(heads.iter().map(|h| h.plan.clone()));
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header);
    for (name, f) in &rows {
        let mut line = vec![name.to_string()];
        line.extend(heads.iter().map(f));
        t.add_row(line);
    }
    right(&mut t, 1);
    writeln!(out, "{t}")?;
    writeln!(out, "Mining: cost = electricity at the paid tariff + opex + capex; cost per BTC = break-even BTC price; holdings = BTC reaching the reserve.")?;
    Ok(())
}

// ------------------------------------------------------------------------ hashprice

fn hashprice(a: HashpriceArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let history = load_history(&a.history)?;
    let to = a.to.unwrap_or(history.last());
    let from = a
        .from
        .unwrap_or_else(|| to.checked_sub(time::Duration::days(29)).unwrap_or(to));
    let days = history.range("--from/--to", from, to)?;
    if a.out.json {
        let rows: Vec<_> = days
            .iter()
            .map(|d| serde_json::json!({
                "date": d.date.to_string(), "price_usd": d.price_usd, "difficulty": d.difficulty(),
                "network_ehs": d.hashrate_ths / 1e6, "fees_btc_per_block": d.fees_per_block(),
                "hashprice_usd_per_ph_day": d.hashprice(),
            }))
            .collect();
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    if a.out.csv {
        csv_line(
            out,
            &[
                "date",
                "price_usd",
                "difficulty",
                "network_ehs",
                "fees_btc_per_block",
                "hashprice_usd_per_ph_day",
            ]
            .map(String::from),
        )?;
        for d in days {
            csv_line(
                out,
                &[
                    d.date.to_string(),
                    format!("{:.2}", d.price_usd),
                    format!("{:.0}", d.difficulty()),
                    format!("{:.3}", d.hashrate_ths / 1e6),
                    format!("{:.6}", d.fees_per_block()),
                    format!("{:.4}", d.hashprice()),
                ],
            )?;
        }
        return Ok(());
    }
    let mut t = table(&[
        "date",
        "price USD",
        "difficulty (T)",
        "network EH/s",
        "fees BTC/block",
        "hashprice $/PH/day",
    ]);
    for d in days {
        t.add_row(vec![
            d.date.to_string(),
            num(d.price_usd, 0),
            num(d.difficulty() / 1e12, 2),
            num(d.hashrate_ths / 1e6, 1),
            num(d.fees_per_block(), 4),
            num(d.hashprice(), 2),
        ]);
    }
    right(&mut t, 1);
    writeln!(out, "{t}")?;
    writeln!(out, "hashprice = 1e15 × 86400 × (subsidy + fees per block) × price / (difficulty × 2^32); difficulty = HashRate × 1e12 × 86400 / (2^32 × BlkCnt)")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct TestCli {
        #[command(flatten)]
        cmd: PlanCmd,
    }

    fn plans(name: &str) -> String {
        format!("{}/../../plans/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    fn exec(args: &[&str]) -> anyhow::Result<String> {
        let mut argv = vec!["plan"];
        argv.extend_from_slice(args);
        let cli = TestCli::try_parse_from(argv)?;
        let mut buf = Vec::new();
        dispatch(cli.cmd, &mut buf)?;
        Ok(String::from_utf8(buf)?)
    }

    #[test]
    fn mining_backtest_json_has_totals_and_fiscal_years() {
        let p = plans("pakistan-2000mw.toml");
        let out = exec(&[
            "mine",
            "--backtest",
            &p,
            "--from",
            "2025-07-17",
            "--to",
            "2025-12-29",
            "--json",
        ])
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["mode"], "backtest");
        assert_eq!(v["currency"], "PKR");
        assert!(v["total"]["btc_mined"].as_f64().unwrap() > 0.0);
        assert_eq!(v["fiscal_years"][0]["period"], "FY2025-26");
        assert_eq!(v["periods"].as_array().unwrap().len(), 6);
    }

    #[test]
    fn accumulation_backtest_csv_and_table() {
        let p = plans("el-salvador-1btc-day.toml");
        let csv = exec(&[
            "accumulate",
            &p,
            "--backtest",
            "--to",
            "2025-07-17",
            "--by",
            "year",
            "--csv",
        ])
        .unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("period,from,to,bought_btc"));
        assert_eq!(lines.len(), 5);
        assert!(lines[1].starts_with("2022,2022-11-17,2022-12-31,45.0"));
        let table = exec(&["accumulate", &p, "--backtest", "--to", "2025-07-17"]).unwrap();
        assert!(table.contains("974.0000") && table.contains("average price paid"));
    }

    #[test]
    fn monte_carlo_json_is_seeded_and_ordered() {
        let p = plans("el-salvador-1btc-day.toml");
        let args = [
            "accumulate",
            p.as_str(),
            "--from",
            "2025-07-17",
            "--years",
            "1",
            "--paths",
            "200",
            "--seed",
            "3",
            "--json",
        ];
        let a = exec(&args).unwrap();
        assert_eq!(a, exec(&args).unwrap());
        let v: serde_json::Value = serde_json::from_str(&a).unwrap();
        for s in v["monte_carlo"]["series"].as_array().unwrap() {
            for p in s["percentiles"].as_array().unwrap() {
                let p: Vec<f64> = p
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect();
                assert!(p.windows(2).all(|w| w[0] <= w[1]));
            }
        }
    }

    #[test]
    fn chart_compare_and_hashprice() {
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("out.svg");
        let p = plans("pakistan-2000mw.toml");
        exec(&[
            "mine",
            &p,
            "--years",
            "1",
            "--paths",
            "100",
            "--chart",
            svg.to_str().unwrap(),
            "--csv",
        ])
        .unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
        let out = exec(&[
            "compare",
            &p,
            &plans("us-budget-neutral.toml"),
            "--from",
            "2025-07-17",
            "--years",
            "1",
            "--json",
        ])
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        let out = exec(&[
            "hashprice",
            "--from",
            "2024-07-04",
            "--to",
            "2024-07-04",
            "--json",
        ])
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let hp = v[0]["hashprice_usd_per_ph_day"].as_f64().unwrap();
        assert!((hp - 44.84).abs() < 0.2, "{hp}");
    }

    #[test]
    fn misuse_gets_clear_errors() {
        let p = plans("pakistan-2000mw.toml");
        // The example: what the plan would have produced from 2021.
        let out = exec(&[
            "mine",
            "--backtest",
            &p,
            "--from",
            "2021-01-01",
            "--to",
            "2025-12-29",
            "--json",
        ])
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["total"]["days"], 1824);
        assert!(v["periods"][0]["btc_mined"].as_f64().unwrap() > 0.0);
        assert!(out.contains("plan dates moved"));
        let e = exec(&["mine", &p, "--backtest", "--paths", "10"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--paths"), "{e}");
        let e = exec(&["accumulate", &p]).unwrap_err().to_string();
        assert!(e.contains("tesoro plan mine"), "{e}");
        let e = exec(&["mine", &p, "--to", "2025-01-01"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--backtest"), "{e}");
        let e = exec(&["mine", &p, "--backtest", "--from", "2019-01-01"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("2019-01-01") && e.contains("outside"), "{e}");
        let e = exec(&["mine", &p, "--years", "0"]).unwrap_err().to_string();
        assert!(e.contains("--years"), "{e}");
        let e = exec(&["mine", "/nonexistent/plan.toml"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/plan.toml"), "{e}");
        assert!(exec(&["mine", &p, "--from", "2025-13-01"]).is_err());
    }
}
