//! Monte Carlo: reproducible with a seed, percentiles ordered, correlation kept.

mod common;
use common::*;
use tesoro_plan::montecarlo::{McOptions, Method};
use tesoro_plan::{accumulate, mining};

fn opts(paths: usize, days: usize, seed: u64) -> McOptions {
    let mut o = McOptions::new(days);
    o.paths = paths;
    o.seed = seed;
    o
}

const DCA: &str = "[plan]\nkind = \"accumulation\"\nname = \"dca\"\nstart = 2025-07-17\n[rule]\nkind = \"fixed_fiat\"\nusd = 1000000\nevery = \"week\"\n";

#[test]
fn same_seed_same_result_on_any_number_of_threads() {
    let h = history();
    let plan = accumulation(DCA);
    let mut a = opts(500, 730, 7);
    a.threads = 1;
    let mut b = a.clone();
    b.threads = 3;
    let ra = accumulate::monte_carlo(&plan, &h, d("2025-07-17"), &a, None).unwrap();
    let rb = accumulate::monte_carlo(&plan, &h, d("2025-07-17"), &b, None).unwrap();
    assert_eq!(ra.series, rb.series);
    let rc = accumulate::monte_carlo(&plan, &h, d("2025-07-17"), &opts(500, 730, 8), None).unwrap();
    assert_ne!(
        ra.get("value_usd").unwrap().last(),
        rc.get("value_usd").unwrap().last()
    );
}

#[test]
fn percentiles_are_ordered_for_every_series_and_day() {
    let h = history();
    let plan = mining(&mining_text(500.0, 17.5, 0.05, 0.08, true));
    for method in [Method::Bootstrap { block_days: 30 }, Method::Gbm] {
        let mut o = opts(400, 1000, 3);
        o.method = method;
        let r = mining::monte_carlo(&plan, &h, d("2024-01-01"), &o, None).unwrap();
        assert_eq!(r.dates.len(), r.series[0].percentiles.len());
        assert_eq!(
            *r.dates.last().unwrap(),
            d("2024-01-01") + time::Duration::days(999)
        );
        for s in &r.series {
            for p in &s.percentiles {
                assert!(p.windows(2).all(|w| w[0] <= w[1]), "{} {:?}", s.name, p);
                assert!(p.iter().all(|v| v.is_finite()));
            }
        }
        // Day 0 is the known start: no spread in price.
        let p0 = r.get("price_usd").unwrap().percentiles[0];
        assert_eq!(p0[0], p0[4]);
    }
}

#[test]
fn the_subsidy_does_not_depend_on_price_and_equals_the_deterministic_projection() {
    let h = history();
    let plan = mining(&mining_text(2000.0, 17.5, 0.05, 0.08, true));
    let r = mining::monte_carlo(&plan, &h, d("2025-07-17"), &opts(200, 365, 1), None).unwrap();
    let det = mining::project(&plan, &h, d("2025-07-17"), 365).unwrap();
    let s = r.get("subsidy_usd").unwrap().last();
    // 365 days × $480,000 × 3 (a $0.03/kWh gap on 48 GWh/day).
    assert!((det.total.subsidy_usd - 365.0 * 1_440_000.0).abs() < 1e-3);
    for v in s {
        assert!((v / det.total.subsidy_usd - 1.0).abs() < 1e-6, "{v}");
    }
}

#[test]
fn bootstrap_draws_price_and_hashrate_from_the_same_historical_day() {
    let h = history();
    let o = opts(1, 10, 11);
    let g = tesoro_plan::montecarlo::Generator::fit(&h, d("2025-07-17"), &o).unwrap();
    // Historical (price factor, difficulty factor) pairs.
    let days = h.days();
    let pairs: Vec<(f64, f64)> = days
        .windows(2)
        .filter(|w| w[1].date <= d("2025-07-17"))
        .map(|w| {
            (
                w[1].price_usd / w[0].price_usd,
                w[1].difficulty() / w[0].difficulty(),
            )
        })
        .collect();
    let mut s = g.path(11, 0);
    let mut xs = Vec::new();
    for _ in 0..20_000 {
        let (p, d, _) = s.next_day();
        assert!(
            pairs
                .iter()
                .any(|(a, b)| (a - p).abs() < 1e-12 && (b - d).abs() < 1e-12),
            "draw ({p}, {d}) is not a historical day"
        );
        xs.push((p.ln(), d.ln()));
    }
    // So the draws carry the historical price–hashrate correlation.
    let corr = correlation(&xs);
    assert!(
        (corr - g.fit.correlation).abs() < 0.06,
        "{corr} vs {}",
        g.fit.correlation
    );
}

#[test]
fn gbm_correlation_and_drift_match_the_fit_and_overrides() {
    let h = history();
    let mut o = opts(1, 10, 5);
    o.method = Method::Gbm;
    o.price_drift = Some(0.0);
    let g = tesoro_plan::montecarlo::Generator::fit(&h, d("2025-07-17"), &o).unwrap();
    let mut s = g.path(5, 0);
    let xs: Vec<(f64, f64)> = (0..200_000)
        .map(|_| {
            let (p, d, _) = s.next_day();
            (p.ln(), d.ln())
        })
        .collect();
    let mean_p = xs.iter().map(|x| x.0).sum::<f64>() / xs.len() as f64;
    let sd_p = (xs.iter().map(|x| (x.0 - mean_p).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
    // Drift overridden to 0 %/year; volatility as fitted.
    assert!(mean_p.abs() < 4.0 * sd_p / (xs.len() as f64).sqrt());
    let vol = sd_p * 365f64.sqrt() * 100.0;
    assert!((vol - g.fit.price_vol_pct_per_year).abs() / g.fit.price_vol_pct_per_year < 0.02);
    assert!((correlation(&xs) - g.fit.correlation).abs() < 0.01);
}

#[test]
fn zero_drift_keeps_the_median_price_and_a_fiat_plan_costs_the_same_in_every_path() {
    // With the price drift forced to 0 the median price after a year stays near the start
    // price; a fixed-fiat programme spends the same on every path.
    let h = history();
    let plan = accumulation(DCA);
    let mut o = opts(2000, 365, 9);
    o.method = Method::Gbm;
    o.price_drift = Some(0.0);
    let r = accumulate::monte_carlo(&plan, &h, d("2025-07-17"), &o, None).unwrap();
    let p50 = r.get("price_usd").unwrap().last()[2];
    assert!((p50 / 119_501.66 - 1.0).abs() < 0.06, "{p50}");
    let cost = r.get("cost_usd").unwrap().last();
    // 53 weekly buys of $1M (day 0 included), in every path.
    assert!((cost[0] - 53e6).abs() < 1.0 && (cost[4] - 53e6).abs() < 1.0);
}

fn correlation(xs: &[(f64, f64)]) -> f64 {
    let n = xs.len() as f64;
    let (ma, mb) = (
        xs.iter().map(|x| x.0).sum::<f64>() / n,
        xs.iter().map(|x| x.1).sum::<f64>() / n,
    );
    let cov = xs.iter().map(|x| (x.0 - ma) * (x.1 - mb)).sum::<f64>();
    let va = xs.iter().map(|x| (x.0 - ma).powi(2)).sum::<f64>();
    let vb = xs.iter().map(|x| (x.1 - mb).powi(2)).sum::<f64>();
    cov / (va * vb).sqrt()
}

#[test]
fn bootstrap_re_centred_on_zero_drift_has_no_drift_over_ten_years() {
    // Every historical day must be drawn equally often, or the first and last weeks of the
    // window (both strongly up in this history) are under-weighted and a "0 %" drift turns
    // into about −3 %/year. The circular bootstrap avoids that.
    let h = history();
    let mut o = McOptions::new(10);
    o.price_drift = Some(0.0);
    let g = tesoro_plan::montecarlo::Generator::fit(&h, d("2025-07-17"), &o).unwrap();
    let sums: Vec<f64> = (0..4000u64)
        .map(|p| {
            let mut s = g.path(7, p);
            (0..3649).map(|_| s.next_day().0.ln()).sum::<f64>()
        })
        .collect();
    let n = sums.len() as f64;
    let mean = sums.iter().sum::<f64>() / n;
    let sd = (sums.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(
        mean.abs() < 4.0 * sd / n.sqrt(),
        "mean 10-year log return {mean}, sd {sd}"
    );
}
