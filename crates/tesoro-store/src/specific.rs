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

/// Each wallet's entity, read once per pass ([`Store::wallet_entities`]).
type WalletEntities = HashMap<i64, i64>;

fn entity_of(wallets: &WalletEntities, r: &sqlx::any::AnyRow) -> ReportResult<i64> {
    let w: i64 = r.try_get("wallet_id").map_err(db)?;
    wallets.get(&w).copied().ok_or_else(|| {
        ReportError::Store(StoreError::Corrupt(format!(
            "output of wallet {w}, which does not exist"
        )))
    })
}

/// Watched outputs created and spent in heights `lo..=hi`, per transaction.
///
/// No join with `wallets`: SQLite then led with the wallet index and read every output of
/// each wallet for every window (53 s of a 55 s sub-ledger posting over 1M movements); on
/// the height indexes alone it reads only the window.
async fn outputs_in(
    store: &Store,
    wallets: &WalletEntities,
    lo: i64,
    hi: i64,
) -> ReportResult<(Outs, Spends)> {
    let mut created: Outs = HashMap::new();
    for r in sqlx::query(
        "SELECT txid, vout, value, wallet_id FROM outputs WHERE height >= $1 AND height <= $2",
    )
    .bind(lo)
    .bind(hi)
    .fetch_all(store.pool())
    .await
    .map_err(db)?
    {
        created.entry(txid_of(&r, "txid")?).or_default().push((
            u32_of(&r, "vout")?,
            entity_of(wallets, &r)?,
            u64_of(&r, "value")?,
        ));
    }
    let mut spent: Spends = HashMap::new();
    for r in sqlx::query(
        "SELECT spent_txid, txid, vout, value, wallet_id FROM outputs \
         WHERE spent_height >= $1 AND spent_height <= $2 AND spent_txid IS NOT NULL",
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
            entity_of(wallets, &r)?,
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

/// A matched record's fiat part, owned (see [`RecordFiat`]).
#[derive(Debug, Clone)]
pub(crate) struct OwnedRecordFiat {
    pub date: Date,
    pub fiat: rust_decimal::Decimal,
    pub currency: String,
}

impl OwnedRecordFiat {
    pub fn borrow(&self) -> RecordFiat<'_> {
        RecordFiat {
            date: self.date,
            fiat: self.fiat,
            currency: &self.currency,
        }
    }
}

/// One transaction as the lot engines need it: each entity's movement (with its final kind
/// and matched record), and the watched outputs it spends and creates.
#[derive(Debug, Default)]
pub(crate) struct TxRows {
    pub txid: Option<Txid>,
    pub date: Option<Date>,
    pub rows: Vec<(Movement, Kind, Option<OwnedRecordFiat>)>,
    pub created: Vec<(u32, i64, u64)>,
    pub spent: Vec<(OutPoint, i64, u64)>,
}

impl TxRows {
    /// Lot entries in `currency` (every movement, or only those that can change a lot).
    pub fn entries(
        &self,
        prices: &PriceBook,
        currency: &str,
        lot_changing_only: bool,
    ) -> Result<Vec<LotEntry>, tesoro_core::price::PriceError> {
        let mut out = Vec::with_capacity(self.rows.len());
        for (m, k, rec) in &self.rows {
            if lot_changing_only
                && !(m.acquired > 0
                    || m.disposed > 0
                    || m.fee > 0
                    || m.internal_in != m.internal_out)
            {
                continue;
            }
            out.push(lot_entry(
                m,
                *k,
                rec.as_ref().map(OwnedRecordFiat::borrow),
                prices,
                currency,
            )?);
        }
        Ok(out)
    }
}

const MOVEMENT_SELECT: &str = "SELECT m.txid, m.entity_id, m.height, m.tx_index, m.time, \
     m.acquired, m.disposed, m.fee, m.internal_in, m.internal_out, \
     COALESCE(m.kind, m.chain_kind) AS k, r.day AS rday, r.fiat AS rfiat, r.currency AS rcur \
     FROM ledger_movements m LEFT JOIN ledger_records r ON r.id = m.record_id";

/// Feeds every movement in blocks before `hi_time` (unix, exclusive), grouped per
/// transaction in chain order with the watched outputs it spends and creates, to `apply`.
/// Reads a window of whole heights at a time, so memory holds one window, never the history.
pub(crate) async fn stream_txs(
    store: &Store,
    hi_time: i64,
    mut apply: impl FnMut(&TxRows) -> ReportResult<()>,
) -> ReportResult<()> {
    let wallets = store.wallet_entities().await?;
    let mut lo: i64 = i64::MIN;
    loop {
        let page = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{MOVEMENT_SELECT} WHERE m.time < $1 AND m.height >= $2 \
             ORDER BY m.height, m.tx_index, m.txid, m.entity_id LIMIT $3"
        )))
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
            let all = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{MOVEMENT_SELECT} WHERE m.time < $1 AND m.height = $2 \
                 ORDER BY m.tx_index, m.txid, m.entity_id"
            )))
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
        let (mut created, mut spent) = outputs_in(store, &wallets, first_h, upto).await?;
        let mut group = TxRows::default();
        let mut key: Option<(u32, u32, Txid)> = None;
        let mut flush = |group: &mut TxRows| -> ReportResult<()> {
            if let Some(t) = group.txid {
                group.created = created.remove(&t).unwrap_or_default();
                group.spent = spent.remove(&t).unwrap_or_default();
                apply(group)?;
            }
            *group = TxRows::default();
            Ok(())
        };
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
            let rec = match (rday, rfiat, rcur) {
                (Some(d), Some(f), Some(c)) => Some(OwnedRecordFiat {
                    date: parse_date(&d).map_err(corrupt)?,
                    fiat: f.parse().map_err(|_| corrupt(format!("fiat {f:?}")))?,
                    currency: c,
                }),
                _ => None,
            };
            let k = (m.height, m.tx_index, m.txid);
            if key != Some(k) {
                flush(&mut group)?;
                key = Some(k);
                group.txid = Some(m.txid);
            }
            group.date = Some(m.date());
            group.rows.push((m, kind, rec));
        }
        flush(&mut group)?;
        if !full {
            break;
        }
        lo = upto + 1;
    }
    Ok(())
}

/// Gains under specific identification for the entities `scope` over [from, to], by
/// streaming the history (the reference for the lot sub-ledger, and its fallback).
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
    stream_txs(store, hi_time, |t| {
        let (Some(txid), Some(date)) = (t.txid, t.date) else {
            return Ok(());
        };
        let entries = t.entries(prices, currency, false)?;
        engine.apply_tx(SpecificTx {
            txid,
            date,
            spent: &t.spent,
            created: &t.created,
            entries: &entries,
        });
        for r in engine.realized.drain(..) {
            fold.realized(&r, scope);
        }
        Ok(())
    })
    .await?;
    let totals = engine.totals(|e| scope.contains(&e));
    Ok(fold.finish(engine.uncovered_sats, totals, prices)?)
}
