//! Monte Carlo projections over price and network hashrate.
//!
//! Two generators: a circular block bootstrap of historical daily log returns (default) that draws price
//! and difficulty returns *from the same historical days*, so their correlation (and the fees of
//! those days) is kept; and correlated geometric Brownian motion with parameters fitted to the
//! same window. Every path has its own ChaCha8 stream (`seed`, stream = path index), so results
//! do not depend on the number of threads. Memory is bounded: only ≤ 121 checkpoints per path
//! are kept (f32), never every day.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::{Date, Duration};

use crate::error::{option_err, Result};
use crate::history::History;
use crate::mining::ProjectionStart;

/// The percentiles reported.
pub const PERCENTILES: [f64; 5] = [5.0, 25.0, 50.0, 75.0, 95.0];

/// Path generator.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    /// Block bootstrap of daily log returns.
    Bootstrap {
        /// Days per block.
        block_days: usize,
    },
    /// Correlated GBM with fitted drift and volatility.
    Gbm,
}

/// Options of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct McOptions {
    /// Number of paths.
    pub paths: usize,
    /// Seed.
    pub seed: u64,
    /// Generator.
    pub method: Method,
    /// Days per path, counting the start day.
    pub days: usize,
    /// First day of the fitting window (default: first day of history).
    pub fit_from: Option<Date>,
    /// Last day of the fitting window (default: the projection's start day).
    pub fit_to: Option<Date>,
    /// Override of the price drift, fraction per year (returns are re-centred on it).
    pub price_drift: Option<f64>,
    /// Override of the network hashrate drift, fraction per year.
    pub hashrate_drift: Option<f64>,
    /// Constant fees per block (BTC) instead of the sampled days' fees.
    pub fees_per_block: Option<f64>,
    /// Worker threads (0 = one per core).
    pub threads: usize,
}

impl McOptions {
    /// Defaults: 10,000 paths, seed 7, bootstrap with 30-day blocks.
    pub fn new(days: usize) -> McOptions {
        McOptions {
            paths: 10_000,
            seed: 7,
            method: Method::Bootstrap { block_days: 30 },
            days,
            fit_from: None,
            fit_to: None,
            price_drift: None,
            hashrate_drift: None,
            fees_per_block: None,
            threads: 0,
        }
    }
}

/// Statistics of the fitting window.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FitInfo {
    /// First day of the window.
    pub from: Date,
    /// Last day.
    pub to: Date,
    /// Daily return pairs used.
    pub returns: usize,
    /// Mean price log return, annualised (×365), as growth %/year.
    pub price_drift_pct_per_year: f64,
    /// Price volatility, %/year (σ × √365).
    pub price_vol_pct_per_year: f64,
    /// Difficulty drift, %/year.
    pub hashrate_drift_pct_per_year: f64,
    /// Difficulty volatility, %/year.
    pub hashrate_vol_pct_per_year: f64,
    /// Correlation of daily price and difficulty log returns.
    pub correlation: f64,
    /// Mean fees per block, BTC.
    pub mean_fees_per_block: f64,
}

/// Fitted return data, ready to generate paths.
#[derive(Debug, Clone)]
pub struct Generator {
    method: Method,
    price_factor: Vec<f64>,
    diff_factor: Vec<f64>,
    fees: Vec<f64>,
    mu_p: f64,
    sd_p: f64,
    mu_d: f64,
    sd_d: f64,
    rho: f64,
    rho_c: f64,
    fee_const: Option<f64>,
    /// Statistics of the window.
    pub fit: FitInfo,
}

fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, v.sqrt())
}

impl Generator {
    /// Fits the generator on history between `opts.fit_from` and `opts.fit_to`
    /// (defaults: the first day, and `start`).
    pub fn fit(history: &History, start: Date, opts: &McOptions) -> Result<Generator> {
        let from = opts.fit_from.unwrap_or(history.first());
        let to = opts.fit_to.unwrap_or(start);
        history.index_of("--fit-from", from)?;
        history.index_of("--fit-to", to)?;
        if to <= from {
            return Err(option_err(
                "--fit-to",
                format!("{to} is not after --fit-from {from}"),
            ));
        }
        let days = history.days();
        let mut rp = Vec::new();
        let mut rd = Vec::new();
        let mut fees = Vec::new();
        for w in days.windows(2) {
            if w[0].date < from || w[1].date > to || w[1].date - w[0].date != Duration::days(1) {
                continue;
            }
            rp.push((w[1].price_usd / w[0].price_usd).ln());
            rd.push((w[1].difficulty() / w[0].difficulty()).ln());
            fees.push(w[1].fees_per_block());
        }
        if rp.len() < 60 {
            return Err(option_err(
                "--fit-from/--fit-to",
                format!(
                    "the fitting window has only {} daily returns; give at least 60 days",
                    rp.len()
                ),
            ));
        }
        if let Method::Bootstrap { block_days } = opts.method {
            if block_days == 0 || block_days > rp.len() {
                return Err(option_err(
                    "--block-days",
                    format!(
                        "must be between 1 and {} (the returns in the window), got {block_days}",
                        rp.len()
                    ),
                ));
            }
        }
        let (mp, sp) = mean_sd(&rp);
        let (md, sd) = mean_sd(&rd);
        let cov = rp
            .iter()
            .zip(&rd)
            .map(|(a, b)| (a - mp) * (b - md))
            .sum::<f64>()
            / (rp.len() as f64 - 1.0);
        let rho = if sp > 0.0 && sd > 0.0 {
            (cov / (sp * sd)).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let mean_fee = fees.iter().sum::<f64>() / fees.len() as f64;
        let fit = FitInfo {
            from,
            to,
            returns: rp.len(),
            price_drift_pct_per_year: ((mp * 365.0).exp() - 1.0) * 100.0,
            price_vol_pct_per_year: sp * 365f64.sqrt() * 100.0,
            hashrate_drift_pct_per_year: ((md * 365.0).exp() - 1.0) * 100.0,
            hashrate_vol_pct_per_year: sd * 365f64.sqrt() * 100.0,
            correlation: rho,
            mean_fees_per_block: mean_fee,
        };
        for (name, v) in [
            ("--price-drift", opts.price_drift),
            ("--hashrate-drift", opts.hashrate_drift),
        ] {
            if let Some(g) = v {
                if !(g.is_finite() && g > -0.99 && g < 10.0) {
                    return Err(option_err(
                        name,
                        format!("must be between -99 and 1000 %/year, got {}", g * 100.0),
                    ));
                }
            }
        }
        let target_p = opts.price_drift.map(|g| (1.0 + g).ln() / 365.0);
        let target_d = opts.hashrate_drift.map(|g| (1.0 + g).ln() / 365.0);
        let shift_p = target_p.map_or(0.0, |t| t - mp);
        let shift_d = target_d.map_or(0.0, |t| t - md);
        Ok(Generator {
            method: opts.method,
            price_factor: rp.iter().map(|r| (r + shift_p).exp()).collect(),
            diff_factor: rd.iter().map(|r| (r + shift_d).exp()).collect(),
            fees,
            mu_p: target_p.unwrap_or(mp),
            sd_p: sp,
            mu_d: target_d.unwrap_or(md),
            sd_d: sd,
            rho,
            rho_c: (1.0 - rho * rho).sqrt(),
            fee_const: opts.fees_per_block,
            fit,
        })
    }

    /// A path's own stream of (price factor, difficulty factor, fees per block) for each day.
    pub fn path(&self, seed: u64, path: u64) -> PathStream<'_> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(path);
        PathStream {
            g: self,
            rng,
            pos: 0,
            left: 0,
        }
    }
}

/// Day-by-day draws of one path.
#[derive(Debug)]
pub struct PathStream<'a> {
    g: &'a Generator,
    rng: ChaCha8Rng,
    pos: usize,
    left: usize,
}

impl PathStream<'_> {
    /// Next day's (price factor, difficulty factor, fees per block).
    #[inline(always)]
    pub fn next_day(&mut self) -> (f64, f64, f64) {
        match self.g.method {
            Method::Bootstrap { block_days } => self.next_bootstrap(block_days),
            Method::Gbm => self.next_gbm(),
        }
    }

    #[inline(always)]
    fn next_bootstrap(&mut self, block_days: usize) -> (f64, f64, f64) {
        let g = self.g;
        // Circular block bootstrap: a block may wrap from the last day of the window
        // to the first, so every historical day is drawn equally often (a plain
        // block bootstrap under-weights both ends and biases the drift).
        let n = g.price_factor.len();
        if self.left == 0 {
            self.pos = self.rng.gen_range(0..n);
            self.left = block_days;
        }
        let i = self.pos;
        self.pos = if i + 1 == n { 0 } else { i + 1 };
        self.left -= 1;
        (
            g.price_factor[i],
            g.diff_factor[i],
            g.fee_const.unwrap_or(g.fees[i]),
        )
    }

    #[inline(never)]
    fn next_gbm(&mut self) -> (f64, f64, f64) {
        let g = self.g;
        // Marsaglia's polar method: two independent standard normals.
        let (z1, z2) = loop {
            let u: f64 = self.rng.gen::<f64>() * 2.0 - 1.0;
            let v: f64 = self.rng.gen::<f64>() * 2.0 - 1.0;
            let q = u * u + v * v;
            if q > 0.0 && q < 1.0 {
                let m = (-2.0 * q.ln() / q).sqrt();
                break (u * m, v * m);
            }
        };
        let zd = g.rho * z1 + g.rho_c * z2;
        (
            (g.mu_p + g.sd_p * z1).exp(),
            (g.mu_d + g.sd_d * zd).exp(),
            g.fee_const.unwrap_or(g.fit.mean_fees_per_block),
        )
    }
}

/// A model evaluated along each path.
pub trait PathModel: Sync {
    /// Per-path state.
    type State;
    /// Names and units of the recorded series.
    fn series(&self) -> Vec<(&'static str, &'static str)>;
    /// A fresh state.
    fn init(&self) -> Self::State;
    /// Advances day `t` with that day's price, network difficulty and fees per block.
    fn step(
        &self,
        st: &mut Self::State,
        t: usize,
        price: f64,
        difficulty: f64,
        fees_per_block: f64,
    );
    /// Writes the recorded series (same order as [`PathModel::series`]).
    fn record(&self, st: &Self::State, price: f64, difficulty: f64, out: &mut [f32]);
}

/// One recorded series: percentiles per checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct McSeries {
    /// Name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// p5, p25, p50, p75, p95 at each checkpoint.
    pub percentiles: Vec<[f64; 5]>,
}

impl McSeries {
    /// Percentiles on the last day.
    pub fn last(&self) -> [f64; 5] {
        self.percentiles.last().copied().unwrap_or([0.0; 5])
    }
}

/// Result of a Monte Carlo run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct McResult {
    /// Options used.
    pub options: McOptions,
    /// Statistics of the fitting window.
    pub fit: FitInfo,
    /// First day.
    pub start: Date,
    /// Checkpoint days.
    pub dates: Vec<Date>,
    /// Recorded series.
    pub series: Vec<McSeries>,
}

impl McResult {
    /// Series by name.
    pub fn get(&self, name: &str) -> Option<&McSeries> {
        self.series.iter().find(|s| s.name == name)
    }
}

/// Checkpoint days (offsets from the start): about 120 evenly spaced, always the last day.
pub fn checkpoints(days: usize) -> Vec<usize> {
    let step = days.div_ceil(120).max(1);
    let mut c: Vec<usize> = (0..days).step_by(step).collect();
    if c.last() != Some(&(days - 1)) {
        c.push(days - 1);
    }
    c
}

/// Runs `model` on `opts.paths` paths from the state in `start` (date, price, difficulty,
/// fees per block on day 0). `progress` is called with the number of paths done.
pub fn run<M: PathModel>(
    model: &M,
    gen: &Generator,
    start: &ProjectionStart,
    opts: &McOptions,
    progress: Option<&(dyn Fn(usize) + Sync)>,
) -> Result<McResult> {
    let (price, difficulty, fees_per_block) =
        (start.price_usd, start.difficulty, start.fees_per_block);
    if opts.paths == 0 || opts.paths > 1_000_000 {
        return Err(option_err(
            "--paths",
            format!("must be between 1 and 1,000,000, got {}", opts.paths),
        ));
    }
    if opts.days < 2 || opts.days > 36_500 {
        return Err(option_err(
            "--years",
            format!(
                "the horizon must be 2 days to 100 years, got {} days",
                opts.days
            ),
        ));
    }
    let names = model.series();
    let ns = names.len();
    let cps = checkpoints(opts.days);
    let nc = cps.len();
    let stride = ns * nc;
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    }
    .clamp(1, opts.paths);
    let per = opts.paths.div_ceil(threads);
    let done = AtomicUsize::new(0);
    // Each thread keeps its own block laid out column by column ([series × checkpoint][path]),
    // so gathering a column for the percentiles is a contiguous copy.
    let blocks: Vec<(usize, Vec<f32>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|ti| {
                let cps = &cps;
                let done = &done;
                scope.spawn(move || {
                    let first = ti * per;
                    let n_local = per.min(opts.paths.saturating_sub(first));
                    let mut out = vec![0f32; n_local * stride];
                    let mut rec = vec![0f32; ns];
                    for k in 0..n_local {
                        let mut ps = gen.path(opts.seed, (first + k) as u64);
                        let mut st = model.init();
                        let (mut p, mut d, mut f) = (price, difficulty, fees_per_block);
                        let mut c = 0;
                        let mut next_cp = cps[0];
                        for t in 0..opts.days {
                            if t > 0 {
                                let (pf, df, fee) = ps.next_day();
                                p *= pf;
                                d *= df;
                                f = fee;
                            }
                            model.step(&mut st, t, p, d, f);
                            if t == next_cp {
                                model.record(&st, p, d, &mut rec);
                                for (s, v) in rec.iter().enumerate() {
                                    out[(s * nc + c) * n_local + k] = *v;
                                }
                                c += 1;
                                next_cp = cps.get(c).copied().unwrap_or(usize::MAX);
                            }
                        }
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if let Some(cb) = progress {
                            if n.is_multiple_of(64) || n == opts.paths {
                                cb(n);
                            }
                        }
                    }
                    (n_local, out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    // Percentiles of each column, the columns shared out over the same threads.
    let per_col = stride.div_ceil(threads);
    let cols: Vec<[f64; 5]> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|ti| {
                let blocks = &blocks;
                scope.spawn(move || {
                    let mut col = Vec::with_capacity(opts.paths);
                    let lo = (ti * per_col).min(stride);
                    let hi = ((ti + 1) * per_col).min(stride);
                    (lo..hi)
                        .map(|j| {
                            col.clear();
                            for (n, b) in blocks {
                                col.extend_from_slice(&b[j * n..(j + 1) * n]);
                            }
                            percentiles(&mut col)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let series = names
        .iter()
        .enumerate()
        .map(|(s, (name, unit))| McSeries {
            name: (*name).to_string(),
            unit: (*unit).to_string(),
            percentiles: cols[s * nc..(s + 1) * nc].to_vec(),
        })
        .collect();
    Ok(McResult {
        options: opts.clone(),
        fit: gen.fit,
        start: start.date,
        dates: cps
            .iter()
            .map(|c| start.date + Duration::days(*c as i64))
            .collect(),
        series,
    })
}

/// p5, p25, p50, p75, p95 of `v` (nearest rank on (n−1)·q; `v` is reordered).
pub fn percentiles(v: &mut [f32]) -> [f64; 5] {
    let n = v.len();
    let mut out = [0.0; 5];
    let mut lo = 0;
    for (i, q) in PERCENTILES.iter().enumerate() {
        let k = (((n - 1) as f64) * q / 100.0).round() as usize;
        let k = k.max(lo);
        let (_, x, _) = v[lo..].select_nth_unstable_by(k - lo, f32::total_cmp);
        out[i] = f64::from(*x);
        lo = k;
    }
    out
}
