//! # tesoro-plan
//!
//! Planning for a strategic Bitcoin reserve: **state mining plans** (MW → BTC, the fiscal cost
//! of a power subsidy, break-evens) and **accumulation plans** (fixed BTC or fiat, value
//! averaging, buy-the-dip, fiscal-year budget caps, budget-neutral funding, no sales),
//! backtested on real daily history and projected with seeded Monte Carlo.
//!
//! Design goals:
//! - **Numbers a ministry can defend**: every formula is written out in `docs/planning.md`,
//!   every input has a unit in its name, and every assumption of a run is returned with it.
//! - **Independent of the chain and the store**: the only input is a daily price/hashrate
//!   history (the Coin Metrics file is embedded; any file with the same columns works) and a
//!   plan file.
//! - **Reproducible and fast**: one ChaCha8 stream per path, so a seed gives the same
//!   percentiles on any number of threads; per-day work is precomputed once so a path-day is
//!   a few multiplications; memory is bounded by a fixed number of checkpoints per path.
//! - **No panics on bad input**: plan files, history files and options are validated with
//!   errors naming the file, line or field.
//!
//! One module per job: [`history`] (daily data), [`network`] (difficulty, subsidy, hashprice),
//! [`plan_file`] (TOML schema and validation), [`mining`], [`accumulate`], [`montecarlo`],
//! [`chart`] (SVG), [`calendar`] (fiscal years), [`error`].
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod accumulate;
pub mod calendar;
pub mod chart;
pub mod error;
pub mod history;
pub mod mining;
pub mod montecarlo;
pub mod network;
pub mod plan_file;

pub use error::{PlanError, Result};
pub use history::History;
pub use plan_file::{load_plan, parse_plan, AccumulationPlan, MiningPlan, Plan};
