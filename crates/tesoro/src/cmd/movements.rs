//! `tesoro movements`: every transaction seen from each entity, classified; manual
//! classification with a reason; the counterparty rules file.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};
use serde::Serialize;
use tesoro_core::classify::{
    check_override, classify, Classification, Classified, MatchTolerance, Record, Rules, Source,
};
use tesoro_core::movement::{Class, Kind};
use tesoro_core::price::{fmt_date, parse_date};
use tesoro_core::{Entity, EntityCode};
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

/// The ledger as reports need it: classified movements, records and entity names.
pub struct Ledger {
    /// Classification result.
    pub classification: Classification,
    /// All records, in store order (indices match `Classified::record`).
    pub records: Vec<Record>,
    /// Entities by id.
    pub entities: BTreeMap<i64, Entity>,
}

impl Ledger {
    /// The code of an entity id.
    pub fn code(&self, id: i64) -> String {
        self.entities
            .get(&id)
            .map_or_else(|| format!("#{id}"), |e| e.code.as_str().to_string())
    }

    /// Classified movements in chain order.
    pub fn movements(&self) -> &[Classified] {
        &self.classification.movements
    }
}

/// Entity ids of `code` and everything below it (all entities when `None`).
pub async fn scope(store: &Store, code: Option<&str>) -> anyhow::Result<BTreeSet<i64>> {
    let all = store.entities().await?;
    match code {
        None => Ok(all.iter().map(|e| e.id).collect()),
        Some(c) => {
            let c = EntityCode::parse(c)?;
            let codes = store.entity_subtree(&c).await?;
            Ok(all
                .iter()
                .filter(|e| codes.contains(&e.code))
                .map(|e| e.id)
                .collect())
        }
    }
}

/// Refreshes derived movements and classifies them.
pub async fn load_ledger(store: &Store, tol: MatchTolerance) -> anyhow::Result<Ledger> {
    store.ledger_refresh().await?;
    let movements = store.ledger_movements().await?;
    let records = store.records().await?;
    let overrides = store.overrides().await?;
    let rules = match store.ledger_rules().await? {
        Some(t) => Rules::parse("stored rules", &t)?,
        None => Rules::default(),
    };
    let all = store.entities().await?;
    let mut subtree_of: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for r in &records {
        if let Some(c) = &r.entity {
            if !subtree_of.contains_key(c) {
                let code = EntityCode::parse(c)?;
                let codes = store.entity_subtree(&code).await.unwrap_or_default();
                let ids = all
                    .iter()
                    .filter(|e| codes.contains(&e.code))
                    .map(|e| e.id)
                    .collect();
                subtree_of.insert(c.clone(), ids);
            }
        }
    }
    let may = |r: &Record, m: &tesoro_core::movement::Movement| match &r.entity {
        None => true,
        Some(c) => subtree_of.get(c).is_some_and(|s| s.contains(&m.entity)),
    };
    let classification = classify(movements, &rules, &records, &overrides, tol, &may);
    Ok(Ledger {
        classification,
        records,
        entities: all.into_iter().map(|e| (e.id, e)).collect(),
    })
}

/// Parses an optional `YYYY-MM-DD` option.
pub fn opt_date(name: &str, v: Option<&str>) -> anyhow::Result<Option<time::Date>> {
    v.map(|s| parse_date(s).map_err(|e| anyhow::anyhow!("--{name}: {e}")))
        .transpose()
}

#[derive(Serialize)]
struct MovementOut<'a> {
    txid: String,
    entity: String,
    date: String,
    height: u32,
    class: &'a str,
    kind: &'a str,
    source: Source,
    note: Option<String>,
    net_sats: i64,
    received_sats: u64,
    sent_sats: u64,
    acquired_sats: u64,
    disposed_sats: u64,
    fee_sats: u64,
    internal_in_sats: u64,
    internal_out_sats: u64,
    counterparties: &'a [String],
    record: Option<i64>,
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
            store.ledger_refresh().await?;
            let ms: Vec<_> = store
                .ledger_movements()
                .await?
                .into_iter()
                .filter(|m| m.txid == txid)
                .collect();
            if ms.is_empty() {
                bail!("no movement has txid {txid}: run `tesoro movements` to list them");
            }
            let m = match entity {
                Some(code) => {
                    let e = store.entity(&EntityCode::parse(&code)?).await?;
                    ms.into_iter().find(|m| m.entity == e.id).with_context(|| {
                        format!("transaction {txid} does not touch entity {code}")
                    })?
                }
                None if ms.len() == 1 => ms.into_iter().next().context("no movement")?,
                None => bail!("transaction {txid} touches several entities: pass --entity"),
            };
            check_override(kind, m.chain_kind.class()).map_err(|e| anyhow::anyhow!(e))?;
            store
                .add_override(&txid, m.entity, kind, reason.trim())
                .await?;
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
    let from = opt_date("from", a.from.as_deref())?;
    let to = opt_date("to", a.to.as_deref())?;
    let scope = scope(store, a.entity.as_deref()).await?;
    let ledger = load_ledger(store, a.tolerance.tolerance()).await?;
    let rows: Vec<MovementOut> = ledger
        .movements()
        .iter()
        .filter(|c| scope.contains(&c.movement.entity))
        .filter(|c| from.is_none_or(|f| c.movement.date() >= f))
        .filter(|c| to.is_none_or(|t| c.movement.date() <= t))
        .filter(|c| {
            class.is_none_or(|k| {
                c.kind.class() == k
                    || (k == Class::Fee
                        && c.movement.fee > 0
                        && c.kind.class() != Class::Disposal
                        && c.kind.class() != Class::Acquisition)
            })
        })
        .filter(|c| !a.unclassified || c.kind.is_unclassified())
        .map(|c| {
            let m = &c.movement;
            MovementOut {
                txid: m.txid.to_string(),
                entity: ledger.code(m.entity),
                date: fmt_date(m.date()),
                height: m.height,
                class: c.kind.class().as_str(),
                kind: c.kind.as_str(),
                source: c.source,
                note: c.note.clone(),
                net_sats: m.net(),
                received_sats: m.received,
                sent_sats: m.sent,
                acquired_sats: m.acquired,
                disposed_sats: m.disposed,
                fee_sats: m.fee,
                internal_in_sats: m.internal_in,
                internal_out_sats: m.internal_out,
                counterparties: &m.counterparties,
                record: c.record.and_then(|i| ledger.records.get(i)).map(|r| r.id),
            }
        })
        .collect();
    if a.json {
        return output::json(&rows);
    }
    let n = rows.len();
    let t = output::table(
        &[
            "date", "height", "entity", "txid", "class", "kind", "by", "net BTC", "fee BTC", "note",
        ],
        rows.into_iter()
            .map(|r| {
                vec![
                    r.date,
                    r.height.to_string(),
                    r.entity,
                    r.txid,
                    r.class.to_string(),
                    r.kind.to_string(),
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
    let unclassified = ledger
        .movements()
        .iter()
        .filter(|c| scope.contains(&c.movement.entity) && c.kind.is_unclassified())
        .count();
    println!("{n} movements; {unclassified} unclassified in scope; {} unmatched records (`tesoro records list --unmatched`)", ledger.classification.unmatched_records.len());
    Ok(())
}
