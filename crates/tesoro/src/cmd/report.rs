//! `tesoro report`: holdings valued in several currencies, gains per cost-basis method, and
//! the accumulation test (acquisitions vs internal transfers).

use std::collections::BTreeMap;

use anyhow::Context;
use rust_decimal::Decimal;
use serde::Serialize;
use tesoro_core::classify::RecordKind;
use tesoro_core::lots::{FeeRule, Method};
use tesoro_core::price::{fmt_date, parse_currency, round_money, value_of};
use tesoro_core::report::{accumulation, balances_at, pnl, Pnl};

use crate::cmd::holdings::btc;
use crate::cmd::movements::{load_ledger, opt_date, scope, ToleranceArgs};
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
        /// The day (YYYY-MM-DD; default: the synced tip's day).
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
        /// fifo, lifo, hifo, average, or all.
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

async fn tip_date(store: &tesoro_store::Store) -> anyhow::Result<time::Date> {
    let tip = store
        .chain_tip()
        .await?
        .context("the chain index is empty: run `tesoro sync --source …` first")?;
    Ok(tesoro_core::movement::date_of_unix(i64::from(tip.time)))
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
            let at = match opt_date("at", at.as_deref())? {
                Some(d) => d,
                None => tip_date(&store).await?,
            };
            let currencies = currency
                .iter()
                .map(|c| parse_currency(c).map_err(|e| anyhow::anyhow!("--currency: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let scope = scope(&store, common.entity.as_deref()).await?;
            let ledger = load_ledger(&store, common.tolerance.tolerance()).await?;
            let mut prices = store.price_book().await?;
            prices.allow_last_known = common.allow_last_known;
            let mut quotes = Vec::new();
            for c in &currencies {
                quotes.push(prices.btc_price(at, c)?);
            }
            let bal = balances_at(ledger.movements(), at);
            #[derive(Serialize)]
            struct Row {
                entity: String,
                source: &'static str,
                sats: u64,
                btc: String,
                values: BTreeMap<String, Decimal>,
            }
            let mut rows = Vec::new();
            let mut total: u64 = 0;
            for (e, sats) in &bal {
                if !scope.contains(e) || *sats <= 0 {
                    continue;
                }
                let sats = *sats as u64;
                total += sats;
                rows.push(Row {
                    entity: ledger.code(*e),
                    source: "chain",
                    sats,
                    btc: btc(sats),
                    values: currencies
                        .iter()
                        .zip(&quotes)
                        .map(|(c, q)| (c.clone(), round_money(value_of(sats, q.value))))
                        .collect(),
                });
            }
            // Custodial holdings: the latest record per (entity, custodian) at or before the day.
            let mut custodial: BTreeMap<(String, String), (time::Date, u64)> = BTreeMap::new();
            let scope_codes: Vec<String> = scope.iter().map(|id| ledger.code(*id)).collect();
            for r in &ledger.records {
                if r.kind != RecordKind::Custodial || r.date > at {
                    continue;
                }
                let e = r.entity.clone().unwrap_or_default();
                if common.entity.is_some() && !scope_codes.contains(&e) {
                    continue;
                }
                let k = (e, r.counterparty.clone().unwrap_or_default());
                if custodial.get(&k).is_none_or(|(d, _)| r.date >= *d) {
                    custodial.insert(k, (r.date, r.sats));
                }
            }
            let mut custodial_total = 0;
            for ((e, cust), (_, sats)) in &custodial {
                custodial_total += sats;
                rows.push(Row {
                    entity: if cust.is_empty() {
                        e.clone()
                    } else {
                        format!("{e} @ {cust}")
                    },
                    source: "custodial record",
                    sats: *sats,
                    btc: btc(*sats),
                    values: currencies
                        .iter()
                        .zip(&quotes)
                        .map(|(c, q)| (c.clone(), round_money(value_of(*sats, q.value))))
                        .collect(),
                });
            }
            #[derive(Serialize)]
            struct PriceUsed {
                currency: String,
                price: Decimal,
                from: String,
                stale: bool,
            }
            #[derive(Serialize)]
            struct Out {
                at: String,
                chain_sats: u64,
                custodial_sats: u64,
                prices: Vec<PriceUsed>,
                rows: Vec<Row>,
            }
            let out = Out {
                at: fmt_date(at),
                chain_sats: total,
                custodial_sats: custodial_total,
                prices: currencies
                    .iter()
                    .zip(&quotes)
                    .map(|(c, q)| PriceUsed {
                        currency: c.clone(),
                        price: q.value,
                        from: fmt_date(q.from),
                        stale: q.stale,
                    })
                    .collect(),
                rows,
            };
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
                    let mut v = vec![r.entity.clone(), r.source.to_string(), r.btc.clone()];
                    v.extend(
                        currencies
                            .iter()
                            .map(|c| r.values.get(c).map(|d| d.to_string()).unwrap_or_default()),
                    );
                    v
                })
                .collect();
            let mut tot = vec![
                "TOTAL".into(),
                "chain + custodial".into(),
                btc(total + custodial_total),
            ];
            tot.extend(
                quotes
                    .iter()
                    .map(|q| round_money(value_of(total + custodial_total, q.value)).to_string()),
            );
            table.push(tot);
            let right: Vec<usize> = (2..3 + currencies.len()).collect();
            print_rows(format, &header, table, &right);
            if format == Format::Table {
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
                Method::ALL.to_vec()
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
            let to = match opt_date("to", to.as_deref())? {
                Some(d) => d,
                None => tip_date(&store).await?,
            };
            let from = opt_date("from", from.as_deref())?.unwrap_or(time::Date::MIN);
            let scope = scope(&store, common.entity.as_deref()).await?;
            let ledger = load_ledger(&store, common.tolerance.tolerance()).await?;
            let mut prices = store.price_book().await?;
            prices.allow_last_known = common.allow_last_known;
            let mut out: Vec<Pnl> = Vec::new();
            for m in methods {
                out.push(pnl(
                    ledger.movements(),
                    &ledger.records,
                    &prices,
                    &currency,
                    m,
                    fee_rule,
                    &scope,
                    from,
                    to,
                )?);
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
                        if from == time::Date::MIN {
                            "start".into()
                        } else {
                            fmt_date(from)
                        },
                        fmt_date(to),
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
            let to = match opt_date("to", to.as_deref())? {
                Some(d) => d,
                None => tip_date(&store).await?,
            };
            let scope = scope(&store, common.entity.as_deref()).await?;
            let ledger = load_ledger(&store, common.tolerance.tolerance()).await?;
            // Default start: the first movement's day (the stock before it is zero).
            let first = ledger.movements().first().map_or(to, |c| c.movement.date());
            let from = opt_date("from", from.as_deref())?.unwrap_or(first.min(to));
            let r = accumulation(ledger.movements(), &scope, from, to);
            let format = common.format();
            if format == Format::Json {
                return output::json(&r);
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
