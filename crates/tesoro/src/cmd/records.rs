//! `tesoro records`: off-chain records (purchases, seizure orders, custodial holdings) that
//! classification matches to movements.

use anyhow::Context;
use tesoro_core::classify::{Record, RecordKind};
use tesoro_core::price::{fmt_date, parse_currency, parse_date};
use tesoro_core::records::{parse_btc, parse_records};
use tesoro_core::EntityCode;

use crate::cmd::holdings::btc;
use crate::cmd::movements::ToleranceArgs;
use crate::output;
use crate::Globals;
use tesoro_store::reports::{self, RecordMatch, ReportOptions};

/// `tesoro records …`
#[derive(Debug, clap::Subcommand)]
pub enum RecordsCmd {
    /// Import a CSV: date, btc, fiat_amount, currency, counterparty, reference[, txid][, kind][, entity].
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
        /// Kind of rows without a kind column.
        #[arg(long, default_value = "purchase")]
        kind: String,
    },
    /// Add one record: `add KIND --btc … --date …` (custodial: `--custodian … --as-of …`).
    Add {
        /// purchase, seizure, donation, mining, sale, payment, return-to-victims, custodial.
        kind: String,
        /// Entity code.
        #[arg(long)]
        entity: Option<String>,
        /// Amount in BTC.
        #[arg(long)]
        btc: String,
        /// The day (YYYY-MM-DD).
        #[arg(long, alias = "as-of")]
        date: String,
        /// Counterparty or custodian.
        #[arg(long, alias = "custodian")]
        counterparty: Option<String>,
        /// Fiat amount.
        #[arg(long)]
        fiat: Option<String>,
        /// Currency of the fiat amount.
        #[arg(long)]
        currency: Option<String>,
        /// Reference.
        #[arg(long)]
        reference: Option<String>,
        /// Transaction id.
        #[arg(long)]
        txid: Option<String>,
    },
    /// List records and what they matched.
    List {
        /// Only records that matched no movement.
        #[arg(long)]
        unmatched: bool,
        #[command(flatten)]
        tolerance: ToleranceArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tesoro records …`
pub async fn run(c: RecordsCmd, g: &Globals) -> anyhow::Result<()> {
    match c {
        RecordsCmd::Import { file, kind } => {
            let kind: RecordKind = kind
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--kind: {e}"))?;
            let name = file.display().to_string();
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {name}"))?;
            let records = parse_records(&name, &text, kind)?;
            let store = g.open_store().await?;
            let o = tesoro_server::office::import_records(
                &store,
                &super::user::cli_actor(),
                &records,
                &name,
            )
            .await?;
            println!(
                "{name}: {} records read, {} new, {} already there",
                records.len(),
                o.written,
                o.unchanged
            );
            Ok(())
        }
        RecordsCmd::Add {
            kind,
            entity,
            btc: amount,
            date,
            counterparty,
            fiat,
            currency,
            reference,
            txid,
        } => {
            let kind: RecordKind = kind.parse().map_err(|e: String| anyhow::anyhow!("{e}"))?;
            let store = g.open_store().await?;
            let entity = match entity {
                Some(c) => Some(
                    store
                        .entity(&EntityCode::parse(&c)?)
                        .await?
                        .code
                        .as_str()
                        .to_string(),
                ),
                None => None,
            };
            let fiat = fiat
                .map(|f| {
                    tesoro_core::price::parse_positive(&f)
                        .map_err(|e| anyhow::anyhow!("--fiat: {e}"))
                })
                .transpose()?;
            let currency = currency
                .map(|c| parse_currency(&c).map_err(|e| anyhow::anyhow!("--currency: {e}")))
                .transpose()?;
            if fiat.is_some() != currency.is_some() {
                anyhow::bail!("--fiat and --currency go together");
            }
            let r = Record {
                id: 0,
                kind,
                entity,
                date: parse_date(&date).map_err(|e| anyhow::anyhow!("--date: {e}"))?,
                sats: parse_btc(&amount).map_err(|e| anyhow::anyhow!("--btc: {e}"))?,
                fiat,
                currency,
                counterparty,
                reference,
                txid: txid
                    .map(|t| {
                        t.parse::<bitcoin::Txid>()
                            .with_context(|| format!("--txid {t:?} is not a txid"))
                    })
                    .transpose()?,
            };
            let o = tesoro_server::office::import_records(
                &store,
                &super::user::cli_actor(),
                std::slice::from_ref(&r),
                "manual",
            )
            .await?;
            if o.written == 1 {
                println!(
                    "{} record of {} BTC on {} added",
                    kind.as_str(),
                    btc(r.sats),
                    fmt_date(r.date)
                );
            } else {
                println!("the same record is already there; nothing added");
            }
            Ok(())
        }
        RecordsCmd::List {
            unmatched,
            tolerance,
            json,
        } => {
            let store = g.open_store().await?;
            let opts = ReportOptions {
                tolerance: tolerance.tolerance(),
                allow_last_known: false,
            };
            let rows: Vec<RecordMatch> = reports::records_matched(&store, opts)
                .await?
                .into_iter()
                .filter(|m| {
                    !unmatched
                        || (m.record.kind != RecordKind::Custodial && m.matched_txid.is_none())
                })
                .collect();
            if json {
                return output::json(&rows);
            }
            let t = output::table(
                &[
                    "id",
                    "date",
                    "kind",
                    "entity",
                    "BTC",
                    "fiat",
                    "counterparty",
                    "reference",
                    "matched",
                ],
                rows.iter()
                    .map(|o| {
                        let r = &o.record;
                        vec![
                            r.id.to_string(),
                            fmt_date(r.date),
                            r.kind.as_str().to_string(),
                            r.entity.clone().unwrap_or_default(),
                            btc(r.sats),
                            match (&r.fiat, &r.currency) {
                                (Some(f), Some(c)) => format!("{f} {c}"),
                                _ => String::new(),
                            },
                            r.counterparty.clone().unwrap_or_default(),
                            r.reference.clone().unwrap_or_default(),
                            match (&o.matched_txid, r.kind) {
                                (Some(t), _) => t.clone(),
                                (None, RecordKind::Custodial) => "(off-chain holding)".into(),
                                (None, _) => "UNMATCHED".into(),
                            },
                        ]
                    })
                    .collect(),
                &[0, 4],
            );
            println!("{t}");
            Ok(())
        }
    }
}
