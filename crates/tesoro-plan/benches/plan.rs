//! Planning benchmarks (a plain bench binary that prints figures; run with
//! `cargo bench -p tesoro-plan --bench plan`).
//!
//! - Monte Carlo, 10,000 paths × 3,650 days, for a mining plan and an accumulation plan
//!   (target: under 1 s each on the 2-core machine, memory bounded);
//! - 5-year backtests (target: under 50 ms).

use std::time::Instant;

use tesoro_plan::montecarlo::{checkpoints, McOptions, Method};
use tesoro_plan::{accumulate, mining, parse_plan, History, Plan};
use time::Date;

fn d(s: &str) -> Date {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).expect("date")
}

const MINING: &str = include_str!("../../../plans/pakistan-2000mw.toml");
const ACCUMULATION: &str = include_str!("../../../plans/el-salvador-1btc-day.toml");

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU seconds (user + system) used by this process so far, from /proc (Linux).
fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name: state is field 3; utime and stime are 14 and 15.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(11) + tick(12)) / 100.0
}

/// (min wall s, median wall s, median CPU s) over `runs` runs.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, f64, f64) {
    let mut t: Vec<(f64, f64)> = (0..runs)
        .map(|_| {
            let c = cpu_seconds();
            let s = Instant::now();
            std::hint::black_box(f());
            (s.elapsed().as_secs_f64(), cpu_seconds() - c)
        })
        .collect();
    t.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut cpu: Vec<f64> = t.iter().map(|x| x.1).collect();
    cpu.sort_by(f64::total_cmp);
    (t[0].0, t[t.len() / 2].0, cpu[cpu.len() / 2])
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
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
    let from = d("2025-07-17");
    for (label, method) in [
        ("bootstrap (default)", Method::Bootstrap { block_days: 30 }),
        ("GBM", Method::Gbm),
    ] {
        let mut o = McOptions::new(days);
        o.method = method;
        let (min, med, cpu) = time(5, || {
            mining::monte_carlo(&mp, &h, from, &o, None).expect("mc")
        });
        println!(
            "mining MC, {label}: {} paths × {days} days = {:.1}M path-days: wall min {min:.3} s, median {med:.3} s; CPU {cpu:.2} s (load {})",
            o.paths,
            (o.paths * days) as f64 / 1e6,
            load()
        );
        let (min, med, cpu) = time(5, || {
            accumulate::monte_carlo(&ap, &h, from, &o, None).expect("mc")
        });
        println!(
            "accumulation MC, {label}: {} paths × {days} days: wall min {min:.3} s, median {med:.3} s; CPU {cpu:.2} s (load {})",
            o.paths,
            load()
        );
    }
    let cps = checkpoints(days).len();
    println!(
        "MC result buffer: 10,000 paths × {cps} checkpoints × 8 series × 4 B = {:.1} MiB (independent of days)",
        (10_000 * cps * 8 * 4) as f64 / (1024.0 * 1024.0)
    );
    let (min, med, _) = time(21, || {
        mining::backtest(&mp, &h, d("2021-01-01"), d("2025-12-29")).expect("bt")
    });
    println!(
        "mining backtest 2021-01-01 … 2025-12-29 (1,824 days): min {:.2} ms, median {:.2} ms",
        min * 1e3,
        med * 1e3
    );
    let (min, med, _) = time(21, || {
        accumulate::backtest(&ap, &h, d("2021-01-01"), d("2025-12-29")).expect("bt")
    });
    println!(
        "accumulation backtest 2021-01-01 … 2025-12-29 (1,824 days): min {:.2} ms, median {:.2} ms",
        min * 1e3,
        med * 1e3
    );
    let (min, med, _) = time(21, || History::embedded().expect("history"));
    println!(
        "parse embedded history (2,191 rows): min {:.2} ms, median {:.2} ms",
        min * 1e3,
        med * 1e3
    );
    if let Some(m) = peak_rss_mib() {
        println!("peak resident memory of this process: {m:.1} MiB");
    }
}
