//! The lot sub-ledger: cost basis posted when the ledger is derived, read by reports.
//!
//! As accounting systems keep a sub-ledger beside the journal, [`post`] runs every
//! cost-basis engine (FIFO, LIFO, HIFO, average, specific identification; both fee rules) in
//! one pass over the classified movements, for every currency the store has prices or FX
//! rates for, and stores per (method, fee rule, currency, entity) one row per run of
//! transactions on one day: what they realized and the entity's open lots after them.
//! A gains report over [from, to] is then a sum of rows plus one open position per entity
//! (see [`pnl_posted`]), milliseconds instead of a pass over the history.
//!
//! The engines run over every entity and reports only filter by entity, so any scope is a
//! sum of per-entity rows. What the rows cannot answer exactly falls back to the streaming
//! path (which stays the reference, and proptests compare the two): a day `to` for which the
//! movements dated up to it are not a prefix of chain order (block times out of order
//! across midnight), and a currency the pass could not value from some day on (a missing
//! price: only days before it are posted). The engines run on last-known prices; from the
//! first transaction whose costs strict prices would not give identically, the rows answer
//! only reports that allow last-known prices.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use sqlx::Row;
use tesoro_core::classify::MatchTolerance;
use tesoro_core::lots::{Engine, FeeRule, Method, SpecificEngine, SpecificTx};
use tesoro_core::price::PriceBook;
use tesoro_core::report::{Pnl, PnlFold, RealizedSums};
use time::Date;

use crate::ledger::{corrupt, set_state};
use crate::reports::{ReportError, ReportResult};
use crate::specific::{stream_txs, TxRows};
use crate::{Store, StoreError};

/// What [`post`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PostOutcome {
    /// True when the sub-ledger was rebuilt; false when it was already current.
    pub posted: bool,
    /// Rows stored.
    pub rows: u64,
    /// Currencies posted, with the first day not posted for strict prices (a missing price)
    /// if any.
    pub currencies: Vec<(String, Option<String>)>,
}

const FEE_RULES: [FeeRule; 2] = [FeeRule::Realize, FeeRule::Capitalize];

fn fee_str(f: FeeRule) -> &'static str {
    match f {
        FeeRule::Realize => "realize",
        FeeRule::Capitalize => "capitalize",
    }
}

fn db(e: sqlx::Error) -> ReportError {
    ReportError::Store(StoreError::from(e))
}

enum Eng {
    Pools(Engine),
    Utxos(SpecificEngine),
}

/// One entity's row in the making.
#[derive(Clone)]
struct DayRow {
    seq: i64,
    day: i64,
    sums: RealizedSums,
    open: (u64, Decimal, u64),
    uncovered: u64,
}

struct Book {
    method: Method,
    fee_rule: FeeRule,
    eng: Eng,
    open_rows: BTreeMap<i64, DayRow>,
    done: Vec<(i64, DayRow)>,
}

impl Book {
    fn new(method: Method, fee_rule: FeeRule) -> Book {
        Book {
            method,
            fee_rule,
            eng: if method == Method::Specific {
                Eng::Utxos(SpecificEngine::new(fee_rule))
            } else {
                Eng::Pools(Engine::new(method, fee_rule))
            },
            open_rows: BTreeMap::new(),
            done: Vec::new(),
        }
    }

    /// Applies one transaction and updates the rows of the entities it touched.
    fn apply(
        &mut self,
        t: &TxRows,
        all: &[tesoro_core::lots::LotEntry],
        lot: &[tesoro_core::lots::LotEntry],
        seq: i64,
        day: i64,
    ) {
        let (Some(txid), Some(date)) = (t.txid, t.date) else {
            return;
        };
        let mut touched: BTreeSet<i64> = BTreeSet::new();
        let (realized, uncovered) = match &mut self.eng {
            Eng::Pools(e) => {
                if lot.is_empty() {
                    return;
                }
                e.apply_tx(lot);
                touched.extend(lot.iter().map(|x| x.entity));
                (std::mem::take(&mut e.realized), e.uncovered_sats)
            }
            Eng::Utxos(e) => {
                e.apply_tx(SpecificTx {
                    txid,
                    date,
                    spent: &t.spent,
                    created: &t.created,
                    entries: all,
                });
                touched.extend(all.iter().map(|x| x.entity));
                touched.extend(t.spent.iter().map(|x| x.1));
                touched.extend(t.created.iter().map(|x| x.1));
                (std::mem::take(&mut e.realized), e.uncovered_sats)
            }
        };
        for e in &touched {
            let open = match &self.eng {
                Eng::Pools(en) => en.pool_of(*e).map_or((0, Decimal::ZERO, 0), |p| p.totals()),
                Eng::Utxos(en) => en.held_by(*e),
            };
            let row = match self.open_rows.get_mut(e) {
                Some(r) if r.day == day => r,
                _ => {
                    let fresh = DayRow {
                        seq,
                        day,
                        sums: RealizedSums::default(),
                        open,
                        uncovered,
                    };
                    if let Some(old) = self.open_rows.insert(*e, fresh) {
                        self.done.push((*e, old));
                    }
                    match self.open_rows.get_mut(e) {
                        Some(r) => r,
                        None => continue,
                    }
                }
            };
            row.seq = seq;
            row.open = open;
            row.uncovered = uncovered;
        }
        for r in &realized {
            if let Some(row) = self.open_rows.get_mut(&r.entity) {
                row.sums.add(r);
            }
        }
    }
}

/// One currency's books (every method and fee rule), and where valuing it stopped.
struct CurrencyBooks {
    currency: String,
    books: Vec<Book>,
    /// Set when a price was missing even allowing the last known one: the earliest day of
    /// any transaction not posted.
    stopped_at: Option<Date>,
    /// Set when a transaction's costs differ under strict prices (or fail): the earliest day
    /// from which the rows hold for last-known prices only.
    strict_stop: Option<Date>,
}

/// Dirty days: `to` days for which the movements dated up to them are not a prefix of chain
/// order, as merged inclusive intervals of Julian days.
fn parse_dirty(s: &str) -> Vec<(i64, i64)> {
    s.split(',')
        .filter_map(|p| {
            let (a, b) = p.split_once('-')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

/// Brings the lot sub-ledger up to date: classifies first (see
/// [`Store::ledger_classify`]), then, when the classification or the prices changed since the
/// last posting, runs every engine over the history once and replaces the rows, in one
/// transaction. Memory holds one window of movements and every engine's open lots.
pub async fn post(store: &Store, tol: MatchTolerance) -> ReportResult<PostOutcome> {
    store.ledger_classify(tol).await?;
    let fp = format!(
        "v1|{}|{}",
        store
            .ledger_state("classified_with")
            .await?
            .unwrap_or_default(),
        store.ledger_versions().await?.prices
    );
    if store.ledger_state("posted_with").await?.as_deref() == Some(fp.as_str()) {
        return Ok(PostOutcome::default());
    }
    // The engines run on last-known prices; where strict prices would give other costs (or
    // none), the rows are marked as holding for last-known prices only from that day on.
    let strict = store.price_book().await?;
    let mut prices = strict.clone();
    prices.allow_last_known = true;
    let mut currencies: BTreeSet<String> = prices.currencies().into_iter().collect();
    for r in sqlx::query("SELECT DISTINCT base, quote FROM fx_rates")
        .fetch_all(store.pool())
        .await
        .map_err(db)?
    {
        currencies.insert(r.try_get("base").map_err(db)?);
        currencies.insert(r.try_get("quote").map_err(db)?);
    }
    let mut all: Vec<CurrencyBooks> = currencies
        .into_iter()
        .map(|c| CurrencyBooks {
            currency: c,
            books: Method::ALL
                .iter()
                .chain(std::iter::once(&Method::Specific))
                .flat_map(|m| FEE_RULES.iter().map(move |f| Book::new(*m, *f)))
                .collect(),
            stopped_at: None,
            strict_stop: None,
        })
        .collect();
    let mut seq: i64 = 0;
    let mut max_day: Option<i64> = None;
    let mut dirty: Vec<(i64, i64)> = Vec::new();
    stream_txs(store, i64::MAX, |t| {
        let Some(date) = t.date else { return Ok(()) };
        seq += 1;
        let day = i64::from(date.to_julian_day());
        match max_day {
            Some(m) if day < m => dirty.push((day, m - 1)),
            Some(m) if m >= day => {}
            _ => max_day = Some(day),
        }
        for cb in &mut all {
            if let Some(s) = &mut cb.stopped_at {
                *s = (*s).min(date);
                continue;
            }
            let entries = match t.entries(&prices, &cb.currency, false) {
                Ok(e) => e,
                Err(_) => {
                    cb.stopped_at = Some(date);
                    continue;
                }
            };
            match &mut cb.strict_stop {
                Some(s) => *s = (*s).min(date),
                None => {
                    if t.entries(&strict, &cb.currency, false).ok().as_ref() != Some(&entries) {
                        cb.strict_stop = Some(date);
                    }
                }
            }
            let lot: Vec<_> = entries
                .iter()
                .filter(|e| e.acquired > 0 || e.disposed > 0 || e.fee > 0 || e.internal_net != 0)
                .cloned()
                .collect();
            for b in &mut cb.books {
                b.apply(t, &entries, &lot, seq, day);
            }
        }
        Ok(())
    })
    .await?;
    dirty.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (a, b) in dirty {
        match merged.last_mut() {
            Some(l) if a <= l.1 + 1 => l.1 = l.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let mut tx = store.begin_write().await?;
    if store.backend() == crate::Backend::Postgres {
        // Two reports posting at once: the second waits here, then finds the work done.
        sqlx::query("LOCK TABLE ledger_state IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let now = sqlx::query("SELECT value FROM ledger_state WHERE key = 'posted_with'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .map(|r| r.try_get::<String, _>("value"))
            .transpose()
            .map_err(db)?;
        if now.as_deref() == Some(fp.as_str()) {
            tx.rollback().await.map_err(db)?;
            return Ok(PostOutcome::default());
        }
    }
    sqlx::query("DELETE FROM ledger_lot_days")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let mut out = PostOutcome {
        posted: true,
        ..PostOutcome::default()
    };
    let mut state = Vec::new();
    for cb in &mut all {
        let mut rows: Vec<(&'static str, &'static str, i64, DayRow)> = Vec::new();
        for b in &mut cb.books {
            let (m, f) = (b.method.as_str(), fee_str(b.fee_rule));
            let open = std::mem::take(&mut b.open_rows);
            for (e, r) in b.done.drain(..).chain(open) {
                rows.push((m, f, e, r));
            }
        }
        out.rows += rows.len() as u64;
        write_rows(&mut tx, &cb.currency, &rows).await?;
        let day =
            |d: Option<Date>| d.map_or_else(|| "-".to_string(), |d| d.to_julian_day().to_string());
        let strict_stop = match (cb.strict_stop, cb.stopped_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        state.push(format!(
            "{}:{}:{}",
            cb.currency,
            day(cb.stopped_at),
            day(strict_stop)
        ));
        out.currencies.push((
            cb.currency.clone(),
            strict_stop.map(tesoro_core::price::fmt_date),
        ));
    }
    let dirty_s: Vec<String> = merged.iter().map(|(a, b)| format!("{a}-{b}")).collect();
    set_state(&mut tx, "lots_currencies", &state.join(",")).await?;
    set_state(&mut tx, "lots_dirty", &dirty_s.join(",")).await?;
    set_state(&mut tx, "posted_with", &fp).await?;
    tx.commit().await.map_err(db)?;
    if out.rows >= Store::BULK_ROWS {
        store.refresh_statistics(&["ledger_lot_days"]).await?;
    }
    Ok(out)
}

async fn write_rows(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    currency: &str,
    rows: &[(&'static str, &'static str, i64, DayRow)],
) -> ReportResult<()> {
    let big = |v: u64| i64::try_from(v).map_err(|_| corrupt(format!("{v} sats")));
    crate::sql::write_rows(
        tx,
        "INSERT INTO ledger_lot_days (method, fee_rule, currency, entity_id, seq, day, \
         proceeds, cost_disposed, realized_disposals, realized_fees, open_sats, open_cost, \
         market_sats, uncovered_sats) VALUES ",
        14,
        "",
        rows,
        |q, (m, f, e, r)| {
            Ok(q.bind(*m)
                .bind(*f)
                .bind(currency.to_string())
                .bind(*e)
                .bind(r.seq)
                .bind(r.day)
                .bind(r.sums.proceeds.to_string())
                .bind(r.sums.cost_disposed.to_string())
                .bind(r.sums.realized_disposals.to_string())
                .bind(r.sums.realized_fees.to_string())
                .bind(big(r.open.0)?)
                .bind(r.open.1.to_string())
                .bind(big(r.open.2)?)
                .bind(big(r.uncovered)?))
        },
    )
    .await?;
    Ok(())
}

fn dec(r: &sqlx::any::AnyRow, c: &str) -> ReportResult<Decimal> {
    let s: String = r.try_get(c).map_err(db)?;
    s.parse::<Decimal>()
        .map_err(|_| ReportError::Store(corrupt(format!("{c} {s:?} in the lot sub-ledger"))))
}

/// Gains from the posted sub-ledger (as it is: [`post`] first), or `None` when it cannot
/// answer exactly (then [`crate::reports::pnl`] streams). `scope`: the entities counted;
/// `entities`: every entity id (the uncovered count is the whole history's).
#[allow(clippy::too_many_arguments)]
pub async fn pnl_posted(
    store: &Store,
    scope: &BTreeSet<i64>,
    entities: &BTreeSet<i64>,
    from: Date,
    to: Date,
    method: Method,
    fee_rule: FeeRule,
    currency: &str,
    prices: &PriceBook,
) -> ReportResult<Option<Pnl>> {
    let to_day = i64::from(to.to_julian_day());
    let posted = store
        .ledger_state("lots_currencies")
        .await?
        .unwrap_or_default();
    // "CUR:<first day not posted>:<first day not posted for strict prices>", "-" for none.
    let stop = posted.split(',').find_map(|p| {
        let mut f = p.split(':');
        let (c, lk, st) = (f.next()?, f.next()?, f.next()?);
        let s = if prices.allow_last_known { lk } else { st };
        (c == currency).then(|| s.parse::<i64>().ok())
    });
    match stop {
        None => return Ok(None),
        Some(Some(s)) if to_day >= s => return Ok(None),
        _ => {}
    }
    let dirty = store.ledger_state("lots_dirty").await?.unwrap_or_default();
    if parse_dirty(&dirty)
        .iter()
        .any(|(a, b)| *a <= to_day && to_day <= *b)
    {
        return Ok(None);
    }
    let (m, f) = (method.as_str(), fee_str(fee_rule));
    let mut fold = PnlFold::new(method, currency, from, to);
    if from <= to {
        let lo = if from == Date::MIN {
            i64::MIN
        } else {
            i64::from(from.to_julian_day())
        };
        let ids: Vec<String> = scope.iter().map(|i| i.to_string()).collect();
        let in_scope = if ids.is_empty() {
            "1 = 0".to_string()
        } else {
            format!("entity_id IN ({})", ids.join(","))
        };
        let mut sums = RealizedSums::default();
        for r in sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT proceeds, cost_disposed, realized_disposals, realized_fees \
             FROM ledger_lot_days WHERE method = $1 AND fee_rule = $2 AND currency = $3 \
             AND day >= $4 AND day <= $5 AND {in_scope} \
             AND (proceeds <> '0' OR cost_disposed <> '0' OR realized_fees <> '0')"
        )))
        .bind(m)
        .bind(f)
        .bind(currency)
        .bind(lo)
        .bind(to_day)
        .fetch_all(store.pool())
        .await
        .map_err(db)?
        {
            sums.merge(&RealizedSums {
                proceeds: dec(&r, "proceeds")?,
                cost_disposed: dec(&r, "cost_disposed")?,
                realized_disposals: dec(&r, "realized_disposals")?,
                realized_fees: dec(&r, "realized_fees")?,
            });
        }
        fold.add_sums(&sums);
    }
    let mut held = (0u64, Decimal::ZERO, 0u64);
    let mut last: Option<(i64, u64)> = None;
    for e in entities {
        let Some(r) = sqlx::query(
            "SELECT seq, open_sats, open_cost, market_sats, uncovered_sats FROM ledger_lot_days \
             WHERE method = $1 AND fee_rule = $2 AND currency = $3 AND entity_id = $4 \
             AND day <= $5 ORDER BY seq DESC LIMIT 1",
        )
        .bind(m)
        .bind(f)
        .bind(currency)
        .bind(*e)
        .bind(to_day)
        .fetch_optional(store.pool())
        .await
        .map_err(db)?
        else {
            continue;
        };
        let seq: i64 = r.try_get("seq").map_err(db)?;
        let u = crate::ledger::u64_of(&r, "uncovered_sats")?;
        if last.is_none_or(|(s, _)| seq > s) {
            last = Some((seq, u));
        }
        if scope.contains(e) {
            held.0 += crate::ledger::u64_of(&r, "open_sats")?;
            held.1 += dec(&r, "open_cost")?;
            held.2 += crate::ledger::u64_of(&r, "market_sats")?;
        }
    }
    Ok(Some(fold.finish(last.map_or(0, |l| l.1), held, prices)?))
}
