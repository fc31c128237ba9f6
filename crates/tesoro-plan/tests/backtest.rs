//! Backtests over the real Coin Metrics history.

mod common;
use common::*;
use tesoro_plan::accumulate;
use tesoro_plan::calendar::Granularity;
use tesoro_plan::mining;
use tesoro_plan::plan_file::{load_plan, Plan};

const ONE_BTC_A_DAY: &str = r#"
[plan]
kind = "accumulation"
name = "1 BTC a day"
start = 2022-11-17
[rule]
kind = "fixed_btc"
btc = 1
"#;

#[test]
fn one_btc_a_day_costs_the_sum_of_each_days_price() {
    let h = history();
    let plan = accumulation(ONE_BTC_A_DAY);
    let run = accumulate::backtest(&plan, &h, d("2022-11-17"), d("2025-07-17")).unwrap();
    // Independently: sum PriceUSD of the fixture for 2022-11-17 ..= 2025-07-17.
    let rows: Vec<_> = fixture_rows()
        .into_iter()
        .filter(|r| r.0.as_str() >= "2022-11-17" && r.0.as_str() <= "2025-07-17")
        .collect();
    let expected: f64 = rows.iter().map(|r| r.1).sum();
    assert_eq!(rows.len(), 974);
    let s = &run.summary;
    assert_eq!(s.days, 974);
    assert!(
        (s.spent_usd - expected).abs() / expected < 1e-12,
        "{} vs {expected}",
        s.spent_usd
    );
    assert!((s.bought_btc - 974.0).abs() < 1e-9);
    assert!((s.holdings_btc - 974.0).abs() < 1e-9);
    // Value on the last day at that day's price (119,501.66).
    let last_price = rows.last().unwrap().1;
    assert!((s.value_usd - 974.0 * last_price).abs() < 1e-3);
    assert!((s.average_price_usd.unwrap() - expected / 974.0).abs() < 1e-6);
    assert_eq!(s.sold_btc, 0.0);
    // The whole programme is above water at the end; it dipped below cost only early on.
    assert!(s.unrealised_usd > 0.0);
    assert!(s.max_drawdown > 0.0 && s.max_drawdown < 1.0);
}

#[test]
fn the_el_salvador_example_plan_is_the_same_programme() {
    let h = history();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plans/el-salvador-1btc-day.toml");
    let Plan::Accumulation(p) = load_plan(&path).unwrap() else {
        panic!("kind")
    };
    let a = accumulate::backtest(&p, &h, d("2022-11-17"), d("2025-07-17")).unwrap();
    let b = accumulate::backtest(
        &accumulation(ONE_BTC_A_DAY),
        &h,
        d("2022-11-17"),
        d("2025-07-17"),
    )
    .unwrap();
    assert_eq!(a.summary.spent_usd, b.summary.spent_usd);
}

fn capped(start_month: u8) -> String {
    format!(
        r#"
[plan]
kind = "accumulation"
name = "capped"
start = 2023-01-01
fiscal_year_start_month = {start_month}
[rule]
kind = "fixed_fiat"
usd = 1000
every = "day"
[budget]
cap_usd_per_fiscal_year = 100000
"#
    )
}

#[test]
fn budget_cap_per_fiscal_year_july_to_june() {
    let h = history();
    let plan = accumulation(&capped(7));
    let run = accumulate::backtest(&plan, &h, d("2023-01-01"), d("2024-12-31")).unwrap();
    // FY2022-23 (from 2023-01-01), FY2023-24, FY2024-25 (to 2024-12-31): $100,000 each.
    let fy: Vec<(String, f64)> = run
        .fiscal_years
        .iter()
        .map(|p| (p.period.clone(), p.spent_usd))
        .collect();
    assert_eq!(fy.len(), 3);
    assert_eq!(fy[0].0, "FY2022-23");
    assert_eq!(fy[1].0, "FY2023-24");
    for (_, spent) in &fy {
        assert!((spent - 100_000.0).abs() < 1e-6, "{fy:?}");
    }
    // $1,000 a day exhausts the cap on day 100 (2023-04-10); nothing is bought again until
    // the fiscal year turns on 1 July.
    let day = |d| run.days.iter().find(|x| x.date == d).unwrap();
    assert!(day(d("2023-04-10")).spent_usd > 0.0);
    assert_eq!(day(d("2023-04-11")).spent_usd, 0.0);
    assert!(day(d("2023-04-11")).capped);
    assert_eq!(day(d("2023-06-30")).spent_usd, 0.0);
    assert!((day(d("2023-07-01")).spent_usd - 1000.0).abs() < 1e-9);
    assert_eq!(day(d("2023-06-30")).budget_left_usd, Some(0.0));
    assert!((run.summary.spent_usd - 300_000.0).abs() < 1e-6);

    // The same plan with calendar fiscal years spends $100,000 in 2023 and in 2024.
    let cal = accumulate::backtest(
        &accumulation(&capped(1)),
        &h,
        d("2023-01-01"),
        d("2024-12-31"),
    )
    .unwrap();
    assert!((cal.summary.spent_usd - 200_000.0).abs() < 1e-6);
    let years = accumulate::acc_periods(&cal.days, Granularity::Year, 1);
    assert_eq!(years.len(), 2);
}

#[test]
fn budget_neutral_funding_never_spends_more_than_the_offsets() {
    let h = history();
    let plan = accumulation(
        r#"
[plan]
kind = "accumulation"
name = "neutral"
start = 2024-01-01
[rule]
kind = "fixed_fiat"
usd = 5000000
every = "week"
[funding]
new_money = false
offsets_usd_per_year = 36525000
seizures = [ { date = 2024-06-01, btc = 100 } ]
[holdings]
initial_btc = 1000
"#,
    );
    let run = accumulate::backtest(&plan, &h, d("2024-01-01"), d("2024-12-31")).unwrap();
    let mut spent = 0.0;
    for (i, d) in run.days.iter().enumerate() {
        spent += d.spent_usd;
        // $100,000 accrues a day (36,525,000 / 365.25).
        assert!(spent <= 100_000.0 * (i + 1) as f64 + 1e-6, "day {}", d.date);
    }
    assert!(run.summary.capped_days > 0);
    assert!((run.summary.seized_btc - 100.0).abs() < 1e-12);
    let bought = run.summary.bought_btc;
    assert!((run.summary.holdings_btc - (1000.0 + 100.0 + bought)).abs() < 1e-9);
}

#[test]
fn value_averaging_sells_only_when_sales_are_allowed() {
    let h = history();
    let text = |no_sale: bool| {
        format!(
            "[plan]\nkind = \"accumulation\"\nname = \"va\"\nstart = 2023-01-01\n[rule]\nkind = \"value_averaging\"\ntarget_increase_usd = 100000\nevery = \"month\"\n[holdings]\nno_sale = {no_sale}\n"
        )
    };
    let strict = accumulate::backtest(
        &accumulation(&text(true)),
        &h,
        d("2023-01-01"),
        d("2024-12-31"),
    )
    .unwrap();
    let loose = accumulate::backtest(
        &accumulation(&text(false)),
        &h,
        d("2023-01-01"),
        d("2024-12-31"),
    )
    .unwrap();
    assert_eq!(strict.summary.sold_btc, 0.0);
    // 2023–2024 doubled the price more than once: value averaging would have sold.
    assert!(loose.summary.sold_btc > 0.0);
    // Buys happen only on the start's day of month.
    assert!(strict
        .days
        .iter()
        .filter(|d| d.bought_btc > 0.0)
        .all(|d| d.date.day() == 1));
}

#[test]
fn buy_the_dip_buys_only_in_drawdowns() {
    let h = history();
    let plan = accumulation(
        "[plan]\nkind = \"accumulation\"\nname = \"dip\"\nstart = 2021-01-01\n[rule]\nkind = \"buy_the_dip\"\nusd = 1000\ndrawdown_pct = 50\n",
    );
    let run = accumulate::backtest(&plan, &h, d("2021-01-01"), d("2023-12-31")).unwrap();
    let mut high = h
        .days()
        .iter()
        .filter(|x| x.date < d("2021-01-01"))
        .map(|d| d.price_usd)
        .fold(0.0, f64::max);
    for d in &run.days {
        high = f64::max(high, d.price_usd);
        assert_eq!(d.spent_usd > 0.0, d.price_usd <= 0.5 * high, "{}", d.date);
    }
    assert!(run.summary.bought_btc > 0.0);
}

#[test]
fn mining_backtest_2021_to_2025_matches_an_independent_daily_sum() {
    let h = history();
    let mut plan = mining(&mining_text(100.0, 25.0, 0.05, 0.07, false));
    plan.pool_fee = 0.02;
    let run = mining::backtest(&plan, &h, d("2021-01-01"), d("2025-12-29")).unwrap();
    // Independent: per day, 4 EH/s (100 MW / 25 J/TH) × 86400 / (D × 2^32) × reward × 0.98,
    // with reward per block from IssTotNtv/BlkCnt + FeeTotNtv/BlkCnt and D from HashRate.
    let two32 = 4_294_967_296.0;
    let mut btc = 0.0;
    let mut usd = 0.0;
    for r in fixture_rows()
        .iter()
        .filter(|r| r.0.as_str() >= "2021-01-01" && r.0.as_str() <= "2025-12-29")
    {
        let diff = r.2 * 1e12 * 86400.0 / (two32 * r.5);
        let b = 4e18 * 86400.0 / (diff * two32) * (r.3 + r.4) / r.5 * 0.98;
        btc += b;
        usd += b * r.1;
    }
    assert!(
        (run.total.btc_mined - btc).abs() / btc < 1e-9,
        "{} vs {btc}",
        run.total.btc_mined
    );
    assert!((run.total.revenue_usd - usd).abs() / usd < 1e-9);
    // Five years of 100 MW: 100 × 24 × 1,824 days MWh; subsidy $0.02/kWh on it.
    let days = run.days.len() as f64;
    assert!((run.total.energy_mwh - 2400.0 * days).abs() < 1e-6);
    assert!((run.total.subsidy_usd - 2_400_000.0 * 0.02 * days).abs() < 1e-3);
    // Break-evens are consistent with the totals.
    let t = &run.total;
    assert!((t.breakeven_btc_price_usd.unwrap() * t.btc_mined - t.elec_paid_usd).abs() < 1e-3);
    assert!(
        (t.breakeven_power_usd_per_kwh.unwrap() * t.energy_mwh * 1000.0 - t.revenue_usd).abs()
            < 1e-3
    );
    // Fiscal years sum to the total subsidy.
    let fy: f64 = run.fiscal_years.iter().map(|p| p.subsidy_usd).sum();
    assert!((fy - t.subsidy_usd).abs() < 1e-3);
}

#[test]
fn selling_to_cover_electricity_keeps_the_rest_for_the_reserve() {
    let h = history();
    let text = mining_text(100.0, 25.0, 0.05, 0.07, false)
        + "\n[reserve]\nsell_to_cover = \"electricity\"\n";
    let run = mining::backtest(&mining(&text), &h, d("2024-01-01"), d("2024-12-31")).unwrap();
    for d in &run.days {
        assert!((d.btc_sold + d.btc_to_reserve - d.btc_mined).abs() < 1e-12);
        let need = d.elec_paid_usd / d.price_usd;
        assert!((d.btc_sold - need.min(d.btc_mined)).abs() < 1e-12);
    }
    let keep = mining::backtest(
        &mining(
            &(mining_text(100.0, 25.0, 0.05, 0.07, false)
                + "\n[reserve]\nsell_to_cover = \"none\"\n"),
        ),
        &h,
        d("2024-01-01"),
        d("2024-12-31"),
    )
    .unwrap();
    assert_eq!(keep.total.btc_to_reserve, keep.total.btc_mined);
}

#[test]
fn accumulation_funded_by_a_mining_plan_gets_its_reserve_share() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine.toml");
    std::fs::write(&mine, mining_text(100.0, 25.0, 0.05, 0.07, false)).unwrap();
    let acc = dir.path().join("acc.toml");
    std::fs::write(
        &acc,
        "[plan]\nkind = \"accumulation\"\nname = \"mined\"\nstart = 2024-01-01\n[rule]\nkind = \"none\"\n[funding]\nnew_money = false\nmining_plan = \"mine.toml\"\nmining_share_pct = 50\n",
    )
    .unwrap();
    let h = history();
    let Plan::Accumulation(p) = load_plan(&acc).unwrap() else {
        panic!("kind")
    };
    let a = accumulate::backtest(&p, &h, d("2024-01-01"), d("2024-12-31")).unwrap();
    let Plan::Mining(m) = load_plan(&mine).unwrap() else {
        panic!("kind")
    };
    let r = mining::backtest(&m, &h, d("2024-01-01"), d("2024-12-31")).unwrap();
    assert!((a.summary.mined_btc - 0.5 * r.total.btc_to_reserve).abs() < 1e-9);
    assert_eq!(a.summary.spent_usd, 0.0);
}

#[test]
fn the_embedded_history_is_a_byte_exact_copy_of_the_fixture() {
    let fixture = std::fs::read_to_string(fixture_path()).unwrap();
    assert_eq!(tesoro_plan::history::EMBEDDED_CSV, fixture);
    let h = history();
    assert_eq!(h.days().len(), 2190);
    assert_eq!(h.last(), d("2025-12-29"));
    // PROVENANCE.md spot value.
    assert_eq!(
        h.day("t", d("2025-07-17")).unwrap().price_usd,
        119_501.663770894
    );
}

#[test]
fn every_example_plan_loads_and_runs() {
    let h = history();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plans");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            n += 1;
            match load_plan(&path).unwrap_or_else(|e| panic!("{e}")) {
                Plan::Mining(p) => {
                    let r = mining::project(&p, &h, d("2025-07-17"), 365).unwrap();
                    assert!(r.total.btc_mined > 0.0);
                    if p.tariff.currency == "PKR" {
                        // Pakistan, 17 July (summer curtailment, 4 h off): 1,000 MW × 20 h ×
                        // 95 % uptime = 19,000 MWh; tariff gap PKR 34 − 23 = 11 per kWh.
                        let d0 = &r.days[0];
                        assert!((d0.energy_mwh - 19_000.0).abs() < 1e-6, "{}", d0.energy_mwh);
                        assert!((d0.subsidy_local - d0.energy_mwh * 1000.0 * 11.0).abs() < 1e-3);
                    }
                }
                Plan::Accumulation(p) => {
                    let to = d("2025-12-29");
                    let r = accumulate::backtest(&p, &h, p.start, to).unwrap();
                    assert!(r.summary.holdings_btc > 0.0);
                    if !p.new_money {
                        let accrued = p.offsets_usd_per_year / 365.25 * r.summary.days as f64;
                        assert!(r.summary.spent_usd <= accrued + 1e-6);
                    }
                }
            }
        }
    }
    assert_eq!(n, 3);
}

#[test]
fn a_rebased_plan_moves_its_fleet_dates_with_its_start() {
    let text = mining_text(100.0, 25.0, 0.05, 0.07, false).replace(
        "deployed = 2021-01-01\n",
        "deployed = 2021-01-01\nretired = 2022-01-01\n",
    );
    let p = mining(&text).rebased(d("2023-01-01")).unwrap();
    assert_eq!(p.start, d("2023-01-01"));
    assert_eq!(p.fleet[0].deployed, d("2023-01-01"));
    assert_eq!(p.fleet[0].retired, Some(d("2024-01-01")));
    let run = mining::backtest(&p, &history(), d("2023-06-01"), d("2024-02-01")).unwrap();
    let on = |d| run.days.iter().find(|x| x.date == d).unwrap().btc_mined;
    assert!(on(d("2023-12-31")) > 0.0);
    assert_eq!(on(d("2024-01-01")), 0.0);
}
