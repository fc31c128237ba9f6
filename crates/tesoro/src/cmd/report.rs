//! `tesoro report`: holdings valued in several currencies, gains per cost-basis method, and
//! the accumulation test (acquisitions vs internal transfers).

use tesoro_core::lots::{FeeRule, Method};
use tesoro_core::price::{fmt_date, parse_currency, round_money, value_of};
use tesoro_core::report::Pnl;
use tesoro_core::EntityCode;
use tesoro_store::reports::{self, At, HoldingSource, ReportOptions};

use crate::cmd::holdings::btc;
use crate::cmd::movements::{opt_date, ToleranceArgs};
use crate::output;
use crate::Globals;

/// Output format of a report.
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned table.
    #[default]
    Table,
    /// CSV.
    Csv,
    /// JSON.
    Json,
}

/// Options every report takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Only this entity and everything below it.
    #[arg(long)]
    entity: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Same as --format json.
    #[arg(long)]
    json: bool,
    /// Use the last known price or rate for a day without one (flagged in the output).
    #[arg(long)]
    allow_last_known: bool,
    #[command(flatten)]
    tolerance: ToleranceArgs,
}

impl Common {
    fn entity(&self) -> anyhow::Result<Option<EntityCode>> {
        self.entity
            .as_deref()
            .map(|c| EntityCode::parse(c).map_err(|e| anyhow::anyhow!("--entity: {e}")))
            .transpose()
    }

    fn options(&self) -> ReportOptions {
        ReportOptions {
            tolerance: self.tolerance.tolerance(),
            allow_last_known: self.allow_last_known,
        }
    }

    fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format
        }
    }
}

/// `tesoro report …`
#[derive(Debug, clap::Subcommand)]
pub enum ReportCmd {
    /// Holdings per entity at a date, valued in one or more currencies.
    Holdings {
        /// The day (YYYY-MM-DD) or a block height (default: the synced tip's day).
        #[arg(long)]
        at: Option<String>,
        /// Currencies, comma-separated.
        #[arg(long, default_value = "USD", value_delimiter = ',')]
        currency: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Realized and unrealized gains for a period under a cost-basis method.
    Pnl {
        /// First day.
        #[arg(long)]
        from: Option<String>,
        /// Last day (default: the synced tip's day).
        #[arg(long)]
        to: Option<String>,
        /// fifo, lifo, hifo, average, specific (the lots of the outpoints each transaction
        /// spends), or all.
        #[arg(long, default_value = "fifo")]
        method: String,
        /// Currency.
        #[arg(long, default_value = "USD")]
        currency: String,
        /// How fees are treated: realize (a loss) or capitalize (cost kept in the basis).
        #[arg(long, default_value = "realize")]
        fee_rule: String,
        #[command(flatten)]
        common: Common,
    },
    /// The accumulation test: stock at start and end, acquisitions by kind, disposals,
    /// internal transfers, and whether "no net accumulation" holds.
    Accumulation {
        /// First day.
        #[arg(long)]
        from: Option<String>,
        /// Last day (default: the synced tip's day).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn print_rows(format: Format, header: &[&str], rows: Vec<Vec<String>>, right: &[usize]) {
    match format {
        Format::Csv => {
            println!("{}", header.join(","));
            for r in rows {
                println!(
                    "{}",
                    r.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
                );
            }
        }
        _ => println!("{}", output::table(header, rows, right)),
    }
}

/// `tesoro report …`
pub async fn run(c: ReportCmd, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    match c {
        ReportCmd::Holdings {
            at,
            currency,
            common,
        } => {
            let at: Option<At> = at
                .as_deref()
                .map(|s| s.parse().map_err(|e: String| anyhow::anyhow!("--at: {e}")))
                .transpose()?;
            let currencies = currency
                .iter()
                .map(|c| parse_currency(c).map_err(|e| anyhow::anyhow!("--currency: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let entity = common.entity()?;
            let out =
                reports::holdings_at(&store, at, entity.as_ref(), &currencies, common.options())
                    .await?;
            let format = common.format();
            if format == Format::Json {
                return output::json(&out);
            }
            let mut header = vec!["entity", "source", "BTC"];
            header.extend(currencies.iter().map(|c| c.as_str()));
            let mut table: Vec<Vec<String>> = out
                .rows
                .iter()
                .map(|r| {
                    let (entity, source) = match r.source {
                        HoldingSource::Chain => (r.entity.clone(), "chain".to_string()),
                        HoldingSource::Custodial => (
                            match &r.custodian {
                                Some(c) => format!("{} @ {c}", r.entity),
                                None => r.entity.clone(),
                            },
                            format!(
                                "custodial record {}",
                                r.as_of.as_deref().unwrap_or_default()
                            ),
                        ),
                    };
                    let mut v = vec![entity, source, btc(r.sats)];
                    v.extend(
                        currencies
                            .iter()
                            .map(|c| r.values.get(c).map(|d| d.to_string()).unwrap_or_default()),
                    );
                    v
                })
                .collect();
            let total = out.total_sats();
            let mut tot = vec!["TOTAL".into(), "chain + custodial".into(), btc(total)];
            tot.extend(
                out.prices
                    .iter()
                    .map(|q| round_money(value_of(total, q.price)).to_string()),
            );
            table.push(tot);
            let right: Vec<usize> = (2..3 + currencies.len()).collect();
            print_rows(format, &header, table, &right);
            if format == Format::Table {
                if let Some(h) = out.height {
                    println!("at height {h} (block of {})", out.at);
                }
                for p in &out.prices {
                    println!(
                        "price {} {} from {}{}",
                        p.currency,
                        p.price,
                        p.from,
                        if p.stale {
                            " (LAST KNOWN: no price for the day)"
                        } else {
                            ""
                        }
                    );
                }
            }
            Ok(())
        }
        ReportCmd::Pnl {
            from,
            to,
            method,
            currency,
            fee_rule,
            common,
        } => {
            let methods: Vec<Method> = if method.eq_ignore_ascii_case("all") {
                let mut all = Method::ALL.to_vec();
                all.push(Method::Specific);
                all
            } else {
                vec![method
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!("--method: {e}"))?]
            };
            let fee_rule: FeeRule = fee_rule
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--fee-rule: {e}"))?;
            let currency =
                parse_currency(&currency).map_err(|e| anyhow::anyhow!("--currency: {e}"))?;
            let to = opt_date("to", to.as_deref())?;
            let from = opt_date("from", from.as_deref())?;
            let entity = common.entity()?;
            let mut out: Vec<Pnl> = Vec::new();
            for m in methods {
                out.push(
                    reports::pnl(
                        &store,
                        entity.as_ref(),
                        from,
                        to,
                        m,
                        fee_rule,
                        &currency,
                        common.options(),
                    )
                    .await?,
                );
            }
            let format = common.format();
            if format == Format::Json {
                return output::json(&out);
            }
            let rows = out
                .iter()
                .map(|p| {
                    vec![
                        p.method.as_str().to_string(),
                        round_money(p.proceeds).to_string(),
                        round_money(p.cost_disposed).to_string(),
                        round_money(p.realized_disposals).to_string(),
                        round_money(p.realized_fees).to_string(),
                        btc(p.holding_sats),
                        round_money(p.holding_cost).to_string(),
                        round_money(p.holding_value).to_string(),
                        round_money(p.unrealized).to_string(),
                        btc(p.market_priced_sats),
                    ]
                })
                .collect();
            print_rows(
                format,
                &[
                    "method",
                    "proceeds",
                    "cost disposed",
                    "realized",
                    "fees realized",
                    "held BTC",
                    "held cost",
                    "held value",
                    "unrealized",
                    "BTC at market cost",
                ],
                rows,
                &[1, 2, 3, 4, 5, 6, 7, 8, 9],
            );
            if format == Format::Table {
                if let Some(p) = out.first() {
                    println!(
                        "{} {} .. {}; fees: {:?}; value at {} {}{}",
                        currency,
                        from.map_or_else(|| "start".to_string(), fmt_date),
                        p.to,
                        fee_rule,
                        p.price,
                        currency,
                        if p.price_stale {
                            " (LAST KNOWN price)"
                        } else {
                            ""
                        }
                    );
                    if p.market_priced_sats > 0 {
                        println!("lots without a matched record are costed at the day's market price (flagged above)");
                    }
                }
            }
            Ok(())
        }
        ReportCmd::Accumulation { from, to, common } => {
            let to = opt_date("to", to.as_deref())?;
            let from = opt_date("from", from.as_deref())?;
            let entity = common.entity()?;
            let out =
                reports::accumulation(&store, entity.as_ref(), from, to, common.options()).await?;
            let r = &out.chain;
            let format = common.format();
            if format == Format::Json {
                return output::json(&out);
            }
            let mut rows: Vec<Vec<String>> =
                vec![vec!["stock at start".into(), btc(r.stock_start_sats)]];
            for (k, v) in &r.acquisitions {
                rows.push(vec![format!("+ acquisition: {k}"), btc(*v)]);
            }
            for (k, v) in &r.disposals {
                rows.push(vec![format!("- disposal: {k}"), btc(*v)]);
            }
            rows.push(vec!["- fees".into(), btc(r.fee_sats)]);
            rows.push(vec![
                "+ from other agencies of the state".into(),
                btc(r.intra_state_in_sats),
            ]);
            rows.push(vec![
                "- to other agencies of the state".into(),
                btc(r.intra_state_out_sats),
            ]);
            rows.push(vec!["stock at end".into(), btc(r.stock_end_sats)]);
            if out.custodial_start_sats > 0 || out.custodial_end_sats > 0 {
                rows.push(vec![
                    "custodial (off-chain records) at start".into(),
                    btc(out.custodial_start_sats),
                ]);
                rows.push(vec![
                    "custodial (off-chain records) at end".into(),
                    btc(out.custodial_end_sats),
                ]);
                rows.push(vec![
                    "total stock at start (chain + custodial)".into(),
                    btc(out.total_start_sats),
                ]);
                rows.push(vec![
                    "total stock at end (chain + custodial)".into(),
                    btc(out.total_end_sats),
                ]);
            }
            rows.push(vec![
                format!(
                    "internal moves inside scope ({} movements)",
                    r.internal_movements
                ),
                btc(r.internal_moved_sats),
            ]);
            let net = if r.net_accumulation_sats < 0 {
                format!("-{}", btc(r.net_accumulation_sats.unsigned_abs()))
            } else {
                btc(r.net_accumulation_sats as u64)
            };
            rows.push(vec![
                "net accumulation (excl. seizures and internal)".into(),
                net,
            ]);
            rows.push(vec![
                "no net accumulation".into(),
                if r.no_net_accumulation {
                    "HOLDS".into()
                } else {
                    "DOES NOT HOLD".into()
                },
            ]);
            rows.push(vec![
                "unclassified movements".into(),
                r.unclassified_movements.to_string(),
            ]);
            rows.push(vec!["reconciles".into(), r.reconciles.to_string()]);
            print_rows(format, &["item", "BTC"], rows, &[1]);
            if format == Format::Table {
                println!("period {} .. {}", r.from, r.to);
            }
            Ok(())
        }
    }
}
