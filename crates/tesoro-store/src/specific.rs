//! Specific identification from the chain index: each acquired UTXO is a lot, and a
//! transaction uses the lots of the outpoints it actually spends.
//!
//! Movements are read in chain order a window of heights at a time, with the watched outputs
//! created and spent in the same heights, and fed to `tesoro_core::lots::SpecificEngine`.
//! Memory holds one window and the open UTXOs (the lots), never the whole history.

use std::collections::{BTreeSet, HashMap};

use bitcoin::{OutPoint, Txid};
use sqlx::Row;
use tesoro_core::lots::{FeeRule, LotEntry, Method, SpecificEngine, SpecificTx};
use tesoro_core::movement::{Kind, Movement};
use tesoro_core::price::{parse_date, PriceBook};
use tesoro_core::report::{lot_entry, Pnl, PnlFold, RecordFiat};
use time::Date;

use crate::ledger::{corrupt, txid_of, u32_of, u64_of};
use crate::reports::{ReportError, ReportResult};
use crate::{Store, StoreError};

/// Movement rows read per window (a window ends at a height boundary).
const PAGE: i64 = 20_000;

fn db(e: sqlx::Error) -> ReportError {
    ReportError::Store(StoreError::from(e))
}

type Outs = HashMap<Txid, Vec<(u32, i64, u64)>>;
type Spends = HashMap<Txid, Vec<(OutPoint, i64, u64)>>;

/// Watched outputs created and spent in heights `lo..=hi`, per transaction.
async fn outputs_in(store: &Store, lo: i64, hi: i64) -> ReportResult<(Outs, Spends)> {
    let mut created: Outs = HashMap::new();
    for r in sqlx::query(
        "SELECT o.txid, o.vout, o.value, w.entity_id FROM outputs o \
         JOIN wallets w ON w.id = o.wallet_id WHERE o.height >= $1 AND o.height <= $2",
    )
    .bind(lo)
    .bind(hi)
    .fetch_all(store.pool())
    .await
    .map_err(db)?
    {
        created.entry(txid_of(&r, "txid")?).or_default().push((
            u32_of(&r, "vout")?,
            r.try_get("entity_id").map_err(db)?,
            u64_of(&r, "value")?,
        ));
    }
    let mut spent: Spends = HashMap::new();
    for r in sqlx::query(
        "SELECT o.spent_txid, o.txid, o.vout, o.value, w.entity_id FROM outputs o \
         JOIN wallets w ON w.id = o.wallet_id \
         WHERE o.spent_height >= $1 AND o.spent_height <= $2 AND o.spent_txid IS NOT NULL",
    )
    .bind(lo)
    .bind(hi)
    .fetch_all(store.pool())
    .await
    .map_err(db)?
    {
        spent.entry(txid_of(&r, "spent_txid")?).or_default().push((
            OutPoint {
                txid: txid_of(&r, "txid")?,
                vout: u32_of(&r, "vout")?,
            },
            r.try_get("entity_id").map_err(db)?,
            u64_of(&r, "value")?,
        ));
    }
    for v in created.values_mut() {
        v.sort_unstable();
    }
    for v in spent.values_mut() {
        v.sort_unstable();
    }
    Ok((created, spent))
}

/// Gains under specific identification for the entities `scope` over [from, to].
#[allow(clippy::too_many_arguments)]
pub(crate) async fn pnl_specific(
    store: &Store,
    scope: &BTreeSet<i64>,
    from: Date,
    to: Date,
    fee_rule: FeeRule,
    currency: &str,
    prices: &PriceBook,
) -> ReportResult<Pnl> {
    let hi_time = to
        .next_day()
        .map_or(i64::MAX, |d| d.midnight().assume_utc().unix_timestamp());
    let mut engine = SpecificEngine::new(fee_rule);
    let mut fold = PnlFold::new(Method::Specific, currency, from, to);
    let mut lo: i64 = i64::MIN;
    loop {
        let page = sqlx::query(
            "SELECT m.txid, m.entity_id, m.height, m.tx_index, m.time, m.acquired, m.disposed, \
             m.fee, m.internal_in, m.internal_out, COALESCE(m.kind, m.chain_kind) AS k, \
             r.day AS rday, r.fiat AS rfiat, r.currency AS rcur \
             FROM ledger_movements m LEFT JOIN ledger_records r ON r.id = m.record_id \
             WHERE m.time < $1 AND m.height >= $2 \
             ORDER BY m.height, m.tx_index, m.txid, m.entity_id LIMIT $3",
        )
        .bind(hi_time)
        .bind(lo)
        .bind(PAGE)
        .fetch_all(store.pool())
        .await
        .map_err(db)?;
        let Some(last) = page.last() else { break };
        let first_h: i64 = page[0].try_get("height").map_err(db)?;
        let last_h: i64 = last.try_get("height").map_err(db)?;
        let full = page.len() as i64 == PAGE;
        // A full page may end inside a height: keep only whole heights, unless the page is a
        // single height, which is then read whole.
        let (rows, upto) = if !full {
            (page, last_h)
        } else if first_h == last_h {
            let all = sqlx::query(
                "SELECT m.txid, m.entity_id, m.height, m.tx_index, m.time, m.acquired, \
                 m.disposed, m.fee, m.internal_in, m.internal_out, \
                 COALESCE(m.kind, m.chain_kind) AS k, r.day AS rday, r.fiat AS rfiat, \
                 r.currency AS rcur FROM ledger_movements m \
                 LEFT JOIN ledger_records r ON r.id = m.record_id \
                 WHERE m.time < $1 AND m.height = $2 \
                 ORDER BY m.tx_index, m.txid, m.entity_id",
            )
            .bind(hi_time)
            .bind(first_h)
            .fetch_all(store.pool())
            .await
            .map_err(db)?;
            (all, first_h)
        } else {
            let mut p = page;
            let mut keep = p.len();
            while keep > 0 && p[keep - 1].try_get::<i64, _>("height").map_err(db)? == last_h {
                keep -= 1;
            }
            p.truncate(keep);
            (p, last_h - 1)
        };
        let (created, spent) = outputs_in(store, first_h, upto).await?;
        let mut group: Vec<LotEntry> = Vec::new();
        let mut key: Option<(u32, u32, Txid)> = None;
        let mut flush = |group: &mut Vec<LotEntry>, txid: Txid, date: Date| {
            if group.is_empty() {
                return;
            }
            let none_c = Vec::new();
            let none_s = Vec::new();
            engine.apply_tx(SpecificTx {
                txid,
                date,
                spent: spent.get(&txid).unwrap_or(&none_s),
                created: created.get(&txid).unwrap_or(&none_c),
                entries: group,
            });
            for r in engine.realized.drain(..) {
                fold.realized(&r, scope);
            }
            group.clear();
        };
        let mut last_date = Date::MIN;
        for r in &rows {
            let m = Movement {
                txid: txid_of(r, "txid")?,
                entity: r.try_get("entity_id").map_err(db)?,
                root: 0,
                height: u32_of(r, "height")?,
                tx_index: u32_of(r, "tx_index")?,
                time: u32_of(r, "time")?,
                received: 0,
                sent: 0,
                acquired: u64_of(r, "acquired")?,
                disposed: u64_of(r, "disposed")?,
                fee: u64_of(r, "fee")?,
                internal_in: u64_of(r, "internal_in")?,
                internal_out: u64_of(r, "internal_out")?,
                inputs: 0,
                outputs: 0,
                coinbase: false,
                chain_kind: Kind::Fee,
                counterparties: Vec::new(),
            };
            let k: String = r.try_get("k").map_err(db)?;
            let kind = k.parse::<Kind>().map_err(corrupt)?;
            let rday: Option<String> = r.try_get("rday").map_err(db)?;
            let rfiat: Option<String> = r.try_get("rfiat").map_err(db)?;
            let rcur: Option<String> = r.try_get("rcur").map_err(db)?;
            let rec = match (rday, rfiat, rcur.as_deref()) {
                (Some(d), Some(f), Some(c)) => Some(RecordFiat {
                    date: parse_date(&d).map_err(corrupt)?,
                    fiat: f.parse().map_err(|_| corrupt(format!("fiat {f:?}")))?,
                    currency: c,
                }),
                _ => None,
            };
            let k = (m.height, m.tx_index, m.txid);
            if key != Some(k) {
                if let Some((_, _, t)) = key {
                    flush(&mut group, t, last_date);
                }
                key = Some(k);
            }
            last_date = m.date();
            group.push(lot_entry(&m, kind, rec, prices, currency)?);
        }
        if let Some((_, _, t)) = key {
            flush(&mut group, t, last_date);
        }
        if !full {
            break;
        }
        lo = upto + 1;
    }
    let totals = engine.totals(|e| scope.contains(&e));
    Ok(fold.finish(engine.uncovered_sats, totals, prices)?)
}
