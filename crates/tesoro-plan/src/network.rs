//! Network arithmetic: difficulty ↔ hashrate, block subsidy by height, hashprice, retargets.

/// 2^32: the expected number of hashes per unit of difficulty.
pub const TWO_32: f64 = 4_294_967_296.0;
/// Blocks between halvings.
pub const HALVING_INTERVAL: u64 = 210_000;
/// Blocks between difficulty retargets.
pub const RETARGET_BLOCKS: f64 = 2016.0;
/// Target seconds per block.
pub const BLOCK_SECONDS: f64 = 600.0;
/// Blocks per day at the target spacing.
pub const BLOCKS_PER_DAY: f64 = 144.0;

/// Network hashrate in H/s implied by a difficulty: `H = D × 2^32 / 600`.
pub fn hashrate_from_difficulty(difficulty: f64) -> f64 {
    difficulty * TWO_32 / BLOCK_SECONDS
}

/// Difficulty at which a hashrate in H/s finds one block every 600 s.
pub fn difficulty_from_hashrate(hashrate_hs: f64) -> f64 {
    hashrate_hs * BLOCK_SECONDS / TWO_32
}

/// Block subsidy in BTC at `height` (50 BTC halved every 210,000 blocks, in whole satoshis).
pub fn subsidy_btc(height: u64) -> f64 {
    let halvings = height / HALVING_INTERVAL;
    if halvings >= 64 {
        return 0.0;
    }
    (5_000_000_000u64 >> halvings) as f64 / 1e8
}

/// Height of the next halving strictly after `height` (1,050,000 after 840,000 … 1,049,999).
pub fn next_halving(height: u64) -> u64 {
    (height / HALVING_INTERVAL + 1) * HALVING_INTERVAL
}

/// Mean subsidy per block over the `blocks` blocks starting at (fractional) `height`.
pub fn mean_subsidy(height: f64, blocks: f64) -> f64 {
    if blocks <= 0.0 {
        return subsidy_btc(height.max(0.0) as u64);
    }
    let start = height.max(0.0);
    let end = start + blocks;
    let boundary = next_halving(start as u64) as f64;
    if end <= boundary {
        return subsidy_btc(start as u64);
    }
    let before = boundary - start;
    (subsidy_btc(start as u64) * before + subsidy_btc(boundary as u64) * (blocks - before)) / blocks
}

/// Hashprice in USD per PH/s per day:
/// `1e15 × 86400 × reward_per_block × price / (difficulty × 2^32)`.
pub fn hashprice_usd_per_ph_day(difficulty: f64, reward_btc_per_block: f64, price_usd: f64) -> f64 {
    1e15 * 86_400.0 * reward_btc_per_block * price_usd / (difficulty * TWO_32)
}

/// Expected BTC per day from `hashrate_ths` TH/s at `difficulty`, before pool fees.
pub fn btc_per_day(hashrate_ths: f64, difficulty: f64, reward_btc_per_block: f64) -> f64 {
    hashrate_ths * 1e12 * 86_400.0 / (difficulty * TWO_32) * reward_btc_per_block
}

/// The plant's hashrate as the difficulty sees it: the network retargets every 2016 blocks to
/// the hashrate of the epoch just ended, so the plant's hashrate joins the difficulty only at
/// the next retarget after it is switched on. `heights[t]` is the height at the start of day t
/// and `plant_ths[t]` the plant's mean hashrate that day; returns, per day, the plant hashrate
/// (TH/s) contained in that day's difficulty.
pub fn lagged_plant_hashrate(heights: &[f64], plant_ths: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(plant_ths.len());
    let mut in_difficulty = 0.0;
    let mut sum = 0.0;
    let mut n = 0.0;
    for t in 0..plant_ths.len() {
        out.push(in_difficulty);
        sum += plant_ths[t];
        n += 1.0;
        let next = heights
            .get(t + 1)
            .copied()
            .unwrap_or(heights[t] + BLOCKS_PER_DAY);
        if (next / RETARGET_BLOCKS).floor() > (heights[t] / RETARGET_BLOCKS).floor() {
            in_difficulty = sum / n;
            sum = 0.0;
            n = 0.0;
        }
    }
    out
}

/// Annual growth (as a fraction, 0.3 = 30 %/year) of a positive series by least squares on
/// its logarithm, one value per day.
pub fn fitted_annual_growth(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if values.len() < 2 {
        return 0.0;
    }
    let (mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0);
    for (i, v) in values.iter().enumerate() {
        let x = i as f64;
        let y = v.ln();
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    let slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    (slope * 365.0).exp() - 1.0
}
