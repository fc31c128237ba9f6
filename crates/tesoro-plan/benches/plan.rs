//! Planning benchmarks (a plain bench binary that prints figures; run with
//! `cargo bench -p tesoro-plan --bench plan`).
//!
//! - Monte Carlo, 10,000 paths × 3,650 days, for a mining plan and an accumulation plan
//!   (target: under 1 s each on the 2-core machine, memory bounded);
//! - 5-year backtests (target: under 50 ms).

use std::time::Instant;

use tesoro_plan::montecarlo::{checkpoints, McOptions, Method};
use tesoro_plan::{accumulate, mining, parse_plan, History, Plan};
use time::macros::date;

const MINING: &str = include_str!("../../../plans/pakistan-2000mw.toml");
const ACCUMULATION: &str = include_str!("../../../plans/el-salvador-1btc-day.toml");

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, f64) {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            std::hint::black_box(f());
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[0], t[t.len() / 2])
}

fn main() {
    let h = History::embedded().expect("history");
    let Ok(Plan::Mining(mp)) = parse_plan(MINING, "pakistan-2000mw.toml", None) else {
        panic!("mining plan")
    };
    let Ok(Plan::Accumulation(ap)) = parse_plan(ACCUMULATION, "el-salvador-1btc-day.toml", None)
    else {
        panic!("accumulation plan")
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("# tesoro-plan benchmarks ({cores} cores visible)");
    let days = 3650;
    let from = date!(2025 - 07 - 17);
    for (label, method) in [
        ("bootstrap (default)", Method::Bootstrap { block_days: 30 }),
        ("GBM", Method::Gbm),
    ] {
        let mut o = McOptions::new(days);
        o.method = method;
        let (min, med) = time(5, || {
            mining::monte_carlo(&mp, &h, from, &o, None).expect("mc")
        });
        println!(
            "mining MC, {label}: {} paths × {days} days = {:.1}M path-days: min {:.3} s, median {:.3} s",
            o.paths,
            (o.paths * days) as f64 / 1e6,
            min,
            med
        );
        let (min, med) = time(5, || {
            accumulate::monte_carlo(&ap, &h, from, &o, None).expect("mc")
        });
        println!(
            "accumulation MC, {label}: {} paths × {days} days: min {:.3} s, median {:.3} s",
            o.paths, min, med
        );
    }
    let cps = checkpoints(days).len();
    println!(
        "MC result buffer: 10,000 paths × {cps} checkpoints × 8 series × 4 B = {:.1} MiB (independent of days)",
        (10_000 * cps * 8 * 4) as f64 / (1024.0 * 1024.0)
    );
    let (min, med) = time(21, || {
        mining::backtest(&mp, &h, date!(2021 - 01 - 01), date!(2025 - 12 - 29)).expect("bt")
    });
    println!(
        "mining backtest 2021-01-01 … 2025-12-29 (1,824 days): min {:.2} ms, median {:.2} ms",
        min * 1e3,
        med * 1e3
    );
    let (min, med) = time(21, || {
        accumulate::backtest(&ap, &h, date!(2021 - 01 - 01), date!(2025 - 12 - 29)).expect("bt")
    });
    println!(
        "accumulation backtest 2021-01-01 … 2025-12-29 (1,824 days): min {:.2} ms, median {:.2} ms",
        min * 1e3,
        med * 1e3
    );
    let (min, med) = time(21, || History::embedded().expect("history"));
    println!(
        "parse embedded history (2,191 rows): min {:.2} ms, median {:.2} ms",
        min * 1e3,
        med * 1e3
    );
    if let Some(m) = peak_rss_mib() {
        println!("peak resident memory of this process: {m:.1} MiB");
    }
}
