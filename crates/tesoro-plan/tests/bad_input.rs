//! Bad input is rejected with errors naming the field, file, line or date; never a panic.

mod common;
use common::*;
use proptest::prelude::*;
use tesoro_plan::montecarlo::McOptions;
use tesoro_plan::{accumulate, mining, parse_plan, History, Plan, PlanError};

fn field_of(text: &str) -> (String, String) {
    match parse_plan(text, "bad.toml", None) {
        Err(PlanError::Field { field, message, .. }) => (field, message),
        other => panic!("expected a field error, got {other:?}"),
    }
}

fn base() -> String {
    mining_text(2000.0, 17.5, 0.05, 0.08, true)
}

#[test]
fn impossible_mining_values_name_the_field() {
    let cases = [
        (
            "efficiency_j_per_th = 17.5",
            "efficiency_j_per_th = 0",
            "fleet[0].efficiency_j_per_th",
        ),
        (
            "efficiency_j_per_th = 17.5",
            "efficiency_j_per_th = -3",
            "fleet[0].efficiency_j_per_th",
        ),
        ("uptime_pct = 100", "uptime_pct = 120", "power.uptime_pct"),
        (
            "capacity_mw = 2000",
            "capacity_mw = -5",
            "power.capacity_mw",
        ),
        (
            "capacity_mw = 2000",
            "capacity_mw = nan",
            "power.capacity_mw",
        ),
        ("pue = 1.0", "pue = 0.8", "power.pue"),
        (
            "mining_share_pct = 100",
            "mining_share_pct = 0",
            "power.mining_share_pct",
        ),
        (
            "\nshare_pct = 100",
            "\nshare_pct = 150",
            "fleet[0].share_pct",
        ),
        (
            "paid_per_kwh = 0.05",
            "paid_per_kwh = -0.05",
            "tariff.paid_per_kwh",
        ),
        (
            "currency = \"USD\"",
            "currency = \"XYZ\"",
            "tariff.currency",
        ),
        (
            "currency = \"USD\"",
            "currency = \"PKR\"",
            "tariff.local_per_usd",
        ),
        (
            "deployed = 2021-01-01",
            "deployed = \"2021-02-30\"",
            "fleet[0].deployed",
        ),
        ("deployed = 2021-01-01", "deployed = 7", "fleet[0].deployed"),
        ("kind = \"mining\"", "kind = \"mine\"", "plan.kind"),
    ];
    for (from, to, field) in cases {
        let text = base().replacen(from, to, 1);
        let (f, msg) = field_of(&text);
        assert_eq!(f, field, "{to}: {msg}");
        assert!(!msg.is_empty());
    }
    let (_, msg) = field_of(&base().replace("currency = \"USD\"", "currency = \"XYZ\""));
    assert!(msg.contains("XYZ") && msg.contains("ISO 4217"), "{msg}");
}

#[test]
fn overlapping_generations_over_100_percent_are_rejected() {
    let text = base()
        + "\n[[fleet]]\nname = \"second\"\nefficiency_j_per_th = 15\nshare_pct = 50\ndeployed = 2022-01-01\n";
    let (f, msg) = field_of(&text);
    assert_eq!(f, "fleet");
    assert!(
        msg.contains("2022-01-01") && msg.contains("150.0 %"),
        "{msg}"
    );
}

#[test]
fn bad_accumulation_values_name_the_field() {
    let acc = "[plan]\nkind = \"accumulation\"\nname = \"a\"\nstart = 2023-01-01\n[rule]\nkind = \"fixed_btc\"\nbtc = 1\n";
    assert_eq!(field_of(&acc.replace("btc = 1", "btc = 0")).0, "rule.btc");
    assert_eq!(field_of(&acc.replace("btc = 1\n", "")).0, "rule.btc");
    assert_eq!(
        field_of(&acc.replace("fixed_btc", "buy_low")).0,
        "rule.kind"
    );
    assert_eq!(
        field_of(&(acc.to_string() + "every = \"fortnight\"\n")).0,
        "rule.every"
    );
    assert_eq!(
        field_of(&acc.replace(
            "start = 2023-01-01",
            "start = 2023-01-01\nfiscal_year_start_month = 13"
        ))
        .0,
        "plan.fiscal_year_start_month"
    );
    assert_eq!(
        field_of(&(acc.to_string() + "[budget]\ncap_usd_per_fiscal_year = -1\n")).0,
        "budget.cap_usd_per_fiscal_year"
    );
    assert_eq!(
        field_of(&(acc.to_string() + "[power]\ncapacity_mw = 1\nmining_share_pct = 1\n")).0,
        "power"
    );
    assert_eq!(
        field_of(&(acc.to_string() + "[funding]\nmining_plan = \"/nonexistent/x.toml\"\n")).0,
        "funding.mining_plan"
    );
}

#[test]
fn unknown_fields_and_broken_toml_are_syntax_errors_with_the_name_and_line() {
    let e = parse_plan(&base().replace("pue = 1.0", "peu = 1.0"), "bad.toml", None).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("bad.toml") && s.contains("peu") && s.contains("line"),
        "{s}"
    );
    // An impossible bare TOML date is caught by the TOML parser, with line and column.
    let e = parse_plan(
        &base().replace("deployed = 2021-01-01", "deployed = 2021-02-30"),
        "bad.toml",
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("line 17") && e.to_string().contains("2021-02-30"),
        "{e}"
    );
    let e = parse_plan("[plan\nkind=", "broken.toml", None).unwrap_err();
    assert!(matches!(e, PlanError::PlanSyntax { .. }));
}

#[test]
fn dates_outside_the_data_and_missing_days_are_named() {
    let h = history();
    let plan = mining(&base());
    match mining::backtest(&plan, &h, d("2019-01-01"), d("2020-12-31")) {
        Err(PlanError::DateOutsideData { date, first, .. }) => {
            assert_eq!(date, d("2019-01-01"));
            assert_eq!(first, d("2020-01-01"));
        }
        other => panic!("{other:?}"),
    }
    // 2025-12-30 is in the file but empty in the source.
    match mining::backtest(&plan, &h, d("2025-12-01"), d("2025-12-30")) {
        Err(PlanError::MissingDay { date, .. }) => assert_eq!(date, d("2025-12-30")),
        other => panic!("{other:?}"),
    }
    let e = mining::project(&plan, &h, d("2026-03-01"), 365).unwrap_err();
    assert!(
        e.to_string().contains("2026-03-01") && e.to_string().contains("--from"),
        "{e}"
    );
    let e = mining::backtest(&plan, &h, d("2024-02-01"), d("2024-01-01")).unwrap_err();
    assert!(e.to_string().contains("before"), "{e}");
}

#[test]
fn history_files_with_gaps_or_garbage_are_reported_by_line_and_date() {
    let head = "time,PriceUSD,HashRate,IssTotNtv,IssTotUSD,FeeTotNtv,BlkCnt\n";
    let halving = "2024-04-19,64000,600000000,931.25,0,10,151\n";
    let ok = format!("{head}2024-04-18,63000,600000000,900,0,10,144\n{halving}2024-04-20,,,,,,\n2024-04-21,65000,600000000,450,0,10,144\n");
    let h = History::parse(&ok, "mine.csv").unwrap();
    assert_eq!(h.missing(), &[d("2024-04-20")]);
    let plan = mining(&base());
    match mining::backtest(&plan, &h, d("2024-04-18"), d("2024-04-21")) {
        Err(PlanError::MissingDay { date, .. }) => assert_eq!(date, d("2024-04-20")),
        other => panic!("{other:?}"),
    }
    let bad = format!("{head}2024-04-18,abc,600000000,900,0,10,144\n{halving}");
    let e = History::parse(&bad, "mine.csv").unwrap_err();
    assert!(
        e.to_string().contains("mine.csv, line 2") && e.to_string().contains("PriceUSD"),
        "{e}"
    );
    let e = History::parse("time,PriceUSD\n2024-01-01,1\n", "short.csv").unwrap_err();
    assert!(e.to_string().contains("HashRate"), "{e}");
    let e = History::parse(
        &format!("{head}{halving}2024-04-18,1,1,1,0,1,1\n"),
        "order.csv",
    )
    .unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    let e = History::from_path(std::path::Path::new("/nonexistent/h.csv")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/h.csv"), "{e}");
}

#[test]
fn bad_run_options_are_rejected() {
    let h = history();
    let plan = accumulation("[plan]\nkind = \"accumulation\"\nname = \"a\"\nstart = 2023-01-01\n[rule]\nkind = \"fixed_btc\"\nbtc = 1\n");
    let mut o = McOptions::new(100);
    o.paths = 0;
    let e = accumulate::monte_carlo(&plan, &h, d("2025-01-01"), &o, None).unwrap_err();
    assert!(e.to_string().contains("--paths"), "{e}");
    let mut o = McOptions::new(100);
    o.method = tesoro_plan::montecarlo::Method::Bootstrap { block_days: 0 };
    let e = accumulate::monte_carlo(&plan, &h, d("2025-01-01"), &o, None).unwrap_err();
    assert!(e.to_string().contains("--block-days"), "{e}");
    let mut o = McOptions::new(100);
    o.fit_from = Some(d("2025-01-01"));
    let e = accumulate::monte_carlo(&plan, &h, d("2025-01-10"), &o, None).unwrap_err();
    assert!(e.to_string().contains("at least 60"), "{e}");
}

fn num() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|v| format!("{v:?}").replace("inf", "inf").replace("NaN", "nan")),
        (-1000i64..100_000).prop_map(|v| v.to_string()),
        Just("\"text\"".to_string()),
        Just("2025-07-17".to_string()),
        Just("0".to_string()),
    ]
}

fn date_s() -> impl Strategy<Value = String> {
    prop_oneof![
        (2015i32..2035, 1u8..13, 1u8..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        Just("\"2025-02-30\"".to_string()),
        Just("9999-12-31".to_string()),
        Just("0001-01-01".to_string()),
        Just("\"soon\"".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn no_random_mining_plan_panics(
        v in proptest::collection::vec(num(), 14),
        start in date_s(), dep in date_s(),
        cur in prop_oneof![Just("USD"), Just("PKR"), Just("ZZZ"), Just("")],
        sell in prop_oneof![Just("none"), Just("electricity"), Just("all_costs"), Just("half")],
    ) {
        let text = format!(
            "[plan]\nkind = \"mining\"\nname = \"p\"\nstart = {start}\n[power]\ncapacity_mw = {}\nmining_share_pct = {}\npue = {}\nuptime_pct = {}\n[[power.curtailment]]\nfrom = \"06-01\"\nto = \"08-31\"\nhours_off_per_day = {}\n[[fleet]]\nname = \"a\"\nefficiency_j_per_th = {}\nshare_pct = {}\ndeployed = {dep}\ncapex_usd_per_th = {}\n[tariff]\ncurrency = \"{cur}\"\npaid_per_kwh = {}\ncost_recovery_per_kwh = {}\nlocal_per_usd = {}\n[costs]\ncapex_lifetime_years = {}\nfinancing_rate_pct = {}\npool_fee_pct = {}\n[reserve]\nsell_to_cover = \"{sell}\"\n",
            v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13]
        );
        if let Ok(Plan::Mining(p)) = parse_plan(&text, "random.toml", None) {
            let h = history();
            let _ = mining::backtest(&p, &h, d("2025-06-01"), d("2025-07-31"));
            let _ = mining::project(&p, &h, d("2025-07-17"), 60);
            let mut o = McOptions::new(30);
            o.paths = 3;
            let _ = mining::monte_carlo(&p, &h, d("2025-07-17"), &o, None);
        }
    }

    #[test]
    fn no_random_accumulation_plan_panics(
        v in proptest::collection::vec(num(), 8),
        start in date_s(),
        kind in prop_oneof![Just("fixed_btc"), Just("fixed_fiat"), Just("value_averaging"), Just("buy_the_dip"), Just("none"), Just("x")],
        every in prop_oneof![Just("day"), Just("week"), Just("month"), Just("year")],
        fy in -2i64..15, new_money in any::<bool>(), no_sale in any::<bool>(),
    ) {
        let text = format!(
            "[plan]\nkind = \"accumulation\"\nname = \"p\"\nstart = {start}\nfiscal_year_start_month = {fy}\n[rule]\nkind = \"{kind}\"\nbtc = {}\nusd = {}\ntarget_increase_usd = {}\ndrawdown_pct = {}\nevery = \"{every}\"\n[budget]\ncap_usd_per_fiscal_year = {}\n[funding]\nnew_money = {new_money}\noffsets_usd_per_year = {}\n[holdings]\ninitial_btc = {}\ninitial_cost_usd = {}\nno_sale = {no_sale}\n",
            v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
        );
        if let Ok(Plan::Accumulation(p)) = parse_plan(&text, "random.toml", None) {
            let h = history();
            let _ = accumulate::backtest(&p, &h, d("2022-01-01"), d("2022-06-30"));
            let _ = accumulate::project(&p, &h, d("2025-07-17"), 60);
            let mut o = McOptions::new(30);
            o.paths = 3;
            let _ = accumulate::monte_carlo(&p, &h, d("2025-07-17"), &o, None);
        }
    }

    #[test]
    fn no_random_text_panics(s in "\\PC{0,400}") {
        let _ = parse_plan(&s, "random.toml", None);
        let _ = History::parse(&s, "random.csv");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, .. ProptestConfig::default() })]

    /// Plans inside the accepted ranges always run and give finite numbers.
    #[test]
    fn plans_in_range_run_and_give_finite_numbers(
        mw in 0.1f64..5000.0, share in 0.1f64..100.0, pue in 1.0f64..3.0, up in 0.0f64..100.0,
        eff in 5.0f64..200.0, paid in 0.0f64..1.0, rec in 0.0f64..1.0, fee in 0.0f64..50.0,
        sell in prop_oneof![Just("none"), Just("electricity"), Just("all_costs")],
        start_off in 0i64..2000, rate in 0.0f64..30.0, capex in 0.0f64..100.0,
    ) {
        let start = d("2020-06-01") + time::Duration::days(start_off);
        let text = format!(
            "[plan]\nkind = \"mining\"\nname = \"p\"\nstart = {start}\n[power]\ncapacity_mw = {mw}\nmining_share_pct = {share}\npue = {pue}\nuptime_pct = {up}\n[[fleet]]\nname = \"a\"\nefficiency_j_per_th = {eff}\nshare_pct = 100\ndeployed = {start}\ncapex_usd_per_th = {capex}\n[tariff]\ncurrency = \"USD\"\npaid_per_kwh = {paid}\ncost_recovery_per_kwh = {rec}\n[costs]\nfinancing_rate_pct = {rate}\npool_fee_pct = {fee}\n[reserve]\nsell_to_cover = \"{sell}\"\n"
        );
        let Ok(Plan::Mining(p)) = parse_plan(&text, "p.toml", None) else {
            panic!("in-range plan rejected: {text}")
        };
        let h = history();
        let r = mining::backtest(&p, &h, d("2020-06-01"), d("2025-12-29")).unwrap();
        let t = &r.total;
        for v in [t.btc_mined, t.btc_to_reserve, t.revenue_usd, t.subsidy_usd, t.margin_usd, t.mean_hashprice] {
            prop_assert!(v.is_finite());
        }
        prop_assert!(t.btc_to_reserve <= t.btc_mined + 1e-9 && t.btc_to_reserve >= 0.0);
        let mut o = McOptions::new(200);
        o.paths = 4;
        let mc = mining::monte_carlo(&p, &h, d("2025-07-17"), &o, None).unwrap();
        prop_assert!(mc.series.iter().all(|s| s.percentiles.iter().flatten().all(|v| v.is_finite())));
    }
}
