//! `tesoro prices` and `tesoro fx`: daily BTC prices and FX rates from CSV files.

use anyhow::Context;
use serde::Serialize;
use tesoro_core::price::{parse_coinmetrics, parse_fx, parse_generic_prices};

use crate::output;
use crate::Globals;

/// `tesoro prices …`
#[derive(Debug, clap::Subcommand)]
pub enum PricesCmd {
    /// Import a price file: `coinmetrics FILE` (Coin Metrics community CSV, PriceUSD) or
    /// `generic FILE` (`date,price[,currency]`).
    Import {
        /// File format.
        #[arg(value_enum)]
        format: PriceFormat,
        /// The CSV file.
        file: std::path::PathBuf,
        /// Currency of rows without a currency column (generic format).
        #[arg(long, default_value = "USD")]
        currency: String,
    },
    /// Which price series are stored.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Price file formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PriceFormat {
    /// Coin Metrics community CSV (`time,PriceUSD,…`).
    Coinmetrics,
    /// `date,price[,currency]`.
    Generic,
}

/// `tesoro fx …`
#[derive(Debug, clap::Subcommand)]
pub enum FxCmd {
    /// Import daily FX rates: `date,rate[,quote[,base]]` (one base is worth `rate` quote).
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
        /// Quote currency of rows without one (e.g. PKR).
        #[arg(long)]
        quote: Option<String>,
        /// Base currency of rows without one.
        #[arg(long, default_value = "USD")]
        base: String,
    },
}

fn read(file: &std::path::Path) -> anyhow::Result<(String, String)> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {name}"))?;
    Ok((name, text))
}

/// `tesoro prices …`
pub async fn run(c: PricesCmd, g: &Globals) -> anyhow::Result<()> {
    match c {
        PricesCmd::Import {
            format,
            file,
            currency,
        } => {
            let (name, text) = read(&file)?;
            let (points, source) = match format {
                PriceFormat::Coinmetrics => (parse_coinmetrics(&name, &text)?, "coinmetrics"),
                PriceFormat::Generic => (parse_generic_prices(&name, &text, &currency)?, "generic"),
            };
            let store = g.open_store().await?;
            let o = store.import_prices(&points, source).await?;
            println!(
                "{name}: {} prices read, {} written, {} unchanged",
                points.len(),
                o.written,
                o.unchanged
            );
            Ok(())
        }
        PricesCmd::List { json } => {
            let store = g.open_store().await?;
            #[derive(Serialize)]
            struct S {
                currency: String,
                days: i64,
                first: String,
                last: String,
            }
            let rows: Vec<S> = store
                .price_summary()
                .await?
                .into_iter()
                .map(|(currency, days, first, last)| S {
                    currency,
                    days,
                    first,
                    last,
                })
                .collect();
            if json {
                return output::json(&rows);
            }
            let t = output::table(
                &["currency", "days", "first", "last"],
                rows.into_iter()
                    .map(|s| vec![s.currency, s.days.to_string(), s.first, s.last])
                    .collect(),
                &[1],
            );
            println!("{t}");
            Ok(())
        }
    }
}

/// `tesoro fx …`
pub async fn run_fx(c: FxCmd, g: &Globals) -> anyhow::Result<()> {
    match c {
        FxCmd::Import { file, quote, base } => {
            let (name, text) = read(&file)?;
            let points = parse_fx(&name, &text, quote.as_deref(), &base)?;
            let store = g.open_store().await?;
            let o = store.import_fx(&points, &name).await?;
            println!(
                "{name}: {} rates read, {} written, {} unchanged",
                points.len(),
                o.written,
                o.unchanged
            );
            Ok(())
        }
    }
}
