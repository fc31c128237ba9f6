//! `tesoro movements`: every transaction seen from each entity, classified; manual
//! classification with a reason; the counterparty rules file.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde::Serialize;
use tesoro_core::classify::{MatchTolerance, Rules};
use tesoro_core::movement::{Class, Kind};
use tesoro_core::price::parse_date;
use tesoro_core::EntityCode;
use tesoro_server::office;
use tesoro_store::reports::{self, MovementFilter, ReportOptions};
use tesoro_store::Store;

use crate::cmd::holdings::btc;
use crate::output;
use crate::Globals;

/// `tesoro movements`
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MovementsArgs {
    #[command(subcommand)]
    cmd: Option<MovementsSub>,
    #[command(flatten)]
    list: ListArgs,
}

/// Filters of the movement list.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this entity and everything below it.
    #[arg(long)]
    entity: Option<String>,
    /// First day (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Last day (YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    /// Only this class: acquisition, internal, disposal or fee.
    #[arg(long)]
    class: Option<String>,
    /// Only movements still unclassified.
    #[arg(long)]
    unclassified: bool,
    #[command(flatten)]
    tolerance: ToleranceArgs,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// How records are matched to movements without a txid.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ToleranceArgs {
    /// Days either side of a record's date.
    #[arg(long, default_value_t = 3)]
    match_days: i64,
    /// Relative amount difference allowed, in basis points (50 = 0.5%).
    #[arg(long, default_value_t = 50)]
    match_bp: u64,
}

impl ToleranceArgs {
    /// As the core type.
    pub fn tolerance(self) -> MatchTolerance {
        MatchTolerance {
            days: self.match_days,
            amount_bp: self.match_bp,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum MovementsSub {
    /// Classify a movement by hand; the reason is kept in the history.
    Classify {
        /// Transaction id.
        txid: String,
        /// The kind (purchase, mining, seizure, donation, consolidation, split, cold-storage,
        /// intra-state, sale, payment, return-to-victims, …).
        #[arg(long = "as")]
        kind: String,
        /// Why (required; kept in the audit trail).
        #[arg(long)]
        reason: String,
        /// The entity, when the transaction touches several.
        #[arg(long)]
        entity: Option<String>,
    },
    /// Every manual classification ever made, oldest first.
    Overrides {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install a counterparty rules file (TOML; checked before it is stored).
    Rules {
        /// The rules file.
        file: std::path::PathBuf,
    },
}

/// Parses an optional `YYYY-MM-DD` option.
pub fn opt_date(name: &str, v: Option<&str>) -> anyhow::Result<Option<time::Date>> {
    v.map(|s| parse_date(s).map_err(|e| anyhow::anyhow!("--{name}: {e}")))
        .transpose()
}

fn signed_btc(v: i64) -> String {
    if v < 0 {
        format!("-{}", btc(v.unsigned_abs()))
    } else {
        btc(v as u64)
    }
}

/// `tesoro movements …`
pub async fn run(a: MovementsArgs, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    match a.cmd {
        None => list(a.list, &store).await,
        Some(MovementsSub::Classify {
            txid,
            kind,
            reason,
            entity,
        }) => {
            let txid: bitcoin::Txid = txid
                .parse()
                .with_context(|| format!("{txid:?} is not a txid (64 hex digits)"))?;
            let kind: Kind = kind
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--as: {e}"))?;
            if reason.trim().is_empty() {
                bail!("--reason must say why (it is kept in the audit trail)");
            }
            let entity = entity.as_deref().map(EntityCode::parse).transpose()?;
            let (m, code) = office::find_movement(&store, &txid, entity.as_ref())
                .await
                .map_err(|e| match e {
                    office::OfficeError::Invalid(m) if m.contains("several entities") => {
                        anyhow::anyhow!(
                            "transaction {txid} touches several entities: pass --entity"
                        )
                    }
                    other => other.into(),
                })?;
            office::classify(&store, &super::user::cli_actor(), &m, &code, kind, &reason).await?;
            println!("{txid}: classified as {kind}");
            Ok(())
        }
        Some(MovementsSub::Overrides { json }) => {
            let os = store.overrides().await?;
            let all: BTreeMap<i64, String> = store
                .entities()
                .await?
                .into_iter()
                .map(|e| (e.id, e.code.as_str().to_string()))
                .collect();
            #[derive(Serialize)]
            struct O {
                at: String,
                txid: String,
                entity: String,
                kind: String,
                reason: String,
            }
            let rows: Vec<O> = os
                .into_iter()
                .map(|o| O {
                    at: o.at,
                    txid: o.txid.to_string(),
                    entity: all.get(&o.entity).cloned().unwrap_or_default(),
                    kind: o.kind.to_string(),
                    reason: o.reason,
                })
                .collect();
            if json {
                return output::json(&rows);
            }
            let t = output::table(
                &["at", "txid", "entity", "kind", "reason"],
                rows.into_iter()
                    .map(|o| vec![o.at, o.txid, o.entity, o.kind, o.reason])
                    .collect(),
                &[],
            );
            println!("{t}");
            Ok(())
        }
        Some(MovementsSub::Rules { file }) => {
            let name = file.display().to_string();
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {name}"))?;
            Rules::parse(&name, &text)?;
            store.set_ledger_rules(&text).await?;
            println!("rules from {name} installed");
            Ok(())
        }
    }
}

async fn list(a: ListArgs, store: &Store) -> anyhow::Result<()> {
    let class: Option<Class> = a
        .class
        .as_deref()
        .map(|c| {
            c.parse()
                .map_err(|e: String| anyhow::anyhow!("--class: {e}"))
        })
        .transpose()?;
    let filter = MovementFilter {
        entity: a.entity.as_deref().map(EntityCode::parse).transpose()?,
        from: opt_date("from", a.from.as_deref())?,
        to: opt_date("to", a.to.as_deref())?,
        class,
        unclassified: a.unclassified,
    };
    let opts = ReportOptions {
        tolerance: a.tolerance.tolerance(),
        allow_last_known: false,
    };
    let out = reports::movements(store, &filter, opts).await?;
    if a.json {
        return output::json(&out.movements);
    }
    let n = out.movements.len();
    let t = output::table(
        &[
            "date", "height", "entity", "txid", "class", "kind", "by", "net BTC", "fee BTC", "note",
        ],
        out.movements
            .into_iter()
            .map(|r| {
                vec![
                    r.date,
                    r.height.to_string(),
                    r.entity,
                    r.txid,
                    r.class,
                    r.kind,
                    format!("{:?}", r.source).to_lowercase(),
                    signed_btc(r.net_sats),
                    btc(r.fee_sats),
                    r.note.unwrap_or_default(),
                ]
            })
            .collect(),
        &[1, 7, 8],
    );
    println!("{t}");
    println!(
        "{n} movements; {} unclassified in scope; {} unmatched records (`tesoro records list --unmatched`)",
        out.unclassified_in_scope, out.unmatched_records
    );
    Ok(())
}
