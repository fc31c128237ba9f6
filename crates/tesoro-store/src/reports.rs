//! Ledger reports as library calls: holdings at a date or height, the accumulation test,
//! realized and unrealized gains per cost-basis method, and the classified movement list.
//!
//! Every surface (the CLI, the HTTP API) calls these and formats the result; none computes
//! figures of its own. Each function refreshes the derived movements first, so a report always
//! reflects the chain index as it is. Results are plain serializable structs whose field
//! names are part of the API (`/api/v1` serves them as JSON): add fields, never rename.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use tesoro_core::classify::{MatchTolerance, Record, RecordKind, RulesError, Source};
use tesoro_core::entity::EntityError;
use tesoro_core::lots::{Engine, FeeRule, LotEntry, Method};
use tesoro_core::movement::{date_of_unix, Class, Kind, Movement, ALL_KINDS};
use tesoro_core::price::{fmt_date, parse_date, round_money, value_of, PriceBook, PriceError};
use tesoro_core::report::{lot_entry, pool_totals, AccumulationFold, Pnl, PnlFold, RecordFiat};
use tesoro_core::{Entity, EntityCode};
use time::Date;

use crate::ledger::{corrupt, movement_row, txid_of, u32_of, u64_of, MOVEMENT_COLUMNS};
use crate::{Store, StoreError};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A price or FX rate is missing.
    #[error(transparent)]
    Price(#[from] PriceError),
    /// The stored rules file does not parse.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// An entity code is not valid.
    #[error(transparent)]
    Entity(#[from] EntityError),
    /// Nothing synced yet, and the report needs the tip's day.
    #[error("the chain index is empty: run `tesoro sync --source …` first")]
    EmptyChain,
    /// A height above the synced tip.
    #[error(
        "height {height} is above the synced tip {tip}: sync further or ask for a lower height"
    )]
    BeyondTip {
        /// Height asked for.
        height: u32,
        /// Synced tip.
        tip: u32,
    },
}

/// Result of a report call.
pub type ReportResult<T> = std::result::Result<T, ReportError>;

/// Options every report takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportOptions {
    /// How off-chain records are matched to movements without a txid.
    pub tolerance: MatchTolerance,
    /// Use the last known price or rate for a day without one (flagged in the result).
    pub allow_last_known: bool,
}

/// A point in the chain's history: the end of a UTC day, or a block height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// Everything in blocks whose time is on or before this day.
    Date(Date),
    /// Everything in blocks at or below this height.
    Height(u32),
}

impl std::str::FromStr for At {
    type Err = String;
    /// `2025-07-17` is a day, `850000` a height.
    fn from_str(s: &str) -> Result<At, String> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse::<u32>()
                .map(At::Height)
                .map_err(|_| format!("height {s:?} is too large"));
        }
        parse_date(s)
            .map(At::Date)
            .map_err(|e| format!("{e} (or give a block height)"))
    }
}

/// The entities of a report: one entity and everything below it, or all.
#[derive(Debug, Clone)]
pub struct ReportScope {
    /// Entity ids in scope.
    pub ids: BTreeSet<i64>,
    /// Codes in scope.
    pub codes: BTreeSet<String>,
    /// The entity asked for (`None`: all).
    pub entity: Option<EntityCode>,
    all: BTreeMap<i64, Entity>,
}

impl ReportScope {
    /// The code of an entity id (`#id` when unknown).
    pub fn code(&self, id: i64) -> String {
        self.all
            .get(&id)
            .map_or_else(|| format!("#{id}"), |e| e.code.as_str().to_string())
    }
}

/// Resolves `entity` (and everything below it; all entities when `None`).
pub async fn scope(store: &Store, entity: Option<&EntityCode>) -> ReportResult<ReportScope> {
    let all = store.entities().await?;
    let codes: BTreeSet<String> = match entity {
        None => all.iter().map(|e| e.code.as_str().to_string()).collect(),
        Some(c) => store
            .entity_subtree(c)
            .await?
            .into_iter()
            .map(|c| c.as_str().to_string())
            .collect(),
    };
    let ids = all
        .iter()
        .filter(|e| codes.contains(e.code.as_str()))
        .map(|e| e.id)
        .collect();
    Ok(ReportScope {
        ids,
        codes,
        entity: entity.cloned(),
        all: all.into_iter().map(|e| (e.id, e)).collect(),
    })
}

/// Unix time of the start of `d` (UTC).
fn day_start(d: Date) -> i64 {
    d.midnight().assume_utc().unix_timestamp()
}

/// Unix time of the end of `d`: the start of the next day (exclusive bound).
fn day_after(d: Date) -> i64 {
    d.next_day().map_or(i64::MAX, day_start)
}

/// `entity_id IN (…)` for a scope (ids are integers from the store, never user text).
fn scope_sql(col: &str, ids: &BTreeSet<i64>) -> String {
    if ids.is_empty() {
        return "1 = 0".into();
    }
    let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    format!("{col} IN ({})", list.join(","))
}

/// `'k1','k2'` for the kinds of a class (our own constants).
fn kinds_sql(pred: impl Fn(Kind) -> bool) -> String {
    ALL_KINDS
        .iter()
        .filter(|k| pred(**k))
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

fn i64_col(r: &AnyRow, c: &str) -> ReportResult<i64> {
    Ok(r.try_get::<Option<i64>, _>(c)
        .map_err(StoreError::from)?
        .unwrap_or(0))
}

fn kind_col(r: &AnyRow, c: &str) -> ReportResult<Kind> {
    let k: String = r.try_get(c).map_err(StoreError::from)?;
    Ok(k.parse::<Kind>().map_err(corrupt)?)
}

/// Custodial records (`records add custodial`) dated on or before `day`.
async fn custodial_records(store: &Store, day: Date) -> ReportResult<Vec<Record>> {
    Ok(store
        .records_where("kind = 'custodial' AND day <= $1", &fmt_date(day))
        .await?)
}

/// The synced tip's day.
pub async fn tip_date(store: &Store) -> ReportResult<Date> {
    let tip = store.chain_tip().await?.ok_or(ReportError::EmptyChain)?;
    Ok(date_of_unix(i64::from(tip.time)))
}

/// A price used to value holdings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceUsed {
    /// Currency.
    pub currency: String,
    /// BTC price in it.
    pub price: Decimal,
    /// The day the price is from.
    pub from: String,
    /// True when it is the last known price, not the day's.
    pub stale: bool,
}

/// Where a holding is known from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldingSource {
    /// Verified on chain (the entity's wallets).
    Chain,
    /// An off-chain custodial record (`records add custodial`): not verifiable on chain.
    Custodial,
}

/// One line of the holdings report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldingRow {
    /// Entity code.
    pub entity: String,
    /// Chain or custodial.
    pub source: HoldingSource,
    /// The custodian (custodial rows).
    pub custodian: Option<String>,
    /// Day of the custodial record in force (custodial rows).
    pub as_of: Option<String>,
    /// Sats.
    pub sats: u64,
    /// Value per currency, rounded to cents.
    pub values: BTreeMap<String, Decimal>,
}

/// Holdings per entity at a date or height, valued in one or more currencies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holdings {
    /// The day (for a height: its block's day).
    pub at: String,
    /// The height asked for, when one was.
    pub height: Option<u32>,
    /// Sats verified on chain.
    pub chain_sats: u64,
    /// Sats in custodial records (off-chain; kept apart from `chain_sats`).
    pub custodial_sats: u64,
    /// Prices used, per currency.
    pub prices: Vec<PriceUsed>,
    /// Chain rows first (by entity), then custodial rows.
    pub rows: Vec<HoldingRow>,
}

impl Holdings {
    /// Chain and custodial together.
    pub fn total_sats(&self) -> u64 {
        self.chain_sats + self.custodial_sats
    }
}

/// Custodial holdings in force at the end of `day`: the latest record per (entity,
/// custodian) at or before it, for entities in scope.
fn custodial_at(
    records: &[Record],
    scope: &ReportScope,
    day: Date,
) -> BTreeMap<(String, String), (Date, u64)> {
    let mut out: BTreeMap<(String, String), (Date, u64)> = BTreeMap::new();
    for r in records {
        if r.kind != RecordKind::Custodial || r.date > day {
            continue;
        }
        let e = r.entity.clone().unwrap_or_default();
        // A custodial record without an entity belongs to the whole office: only in the
        // unscoped report.
        if scope.entity.is_some() && !scope.codes.contains(&e) {
            continue;
        }
        let k = (e, r.counterparty.clone().unwrap_or_default());
        if out.get(&k).is_none_or(|(d, _)| r.date >= *d) {
            out.insert(k, (r.date, r.sats));
        }
    }
    out
}

/// Resolves `at` to (day, optional height), checking a height against the tip.
async fn resolve_at(store: &Store, at: Option<At>) -> ReportResult<(Date, Option<u32>)> {
    match at {
        None => Ok((tip_date(store).await?, None)),
        Some(At::Date(d)) => Ok((d, None)),
        Some(At::Height(h)) => {
            let tip = store.chain_tip().await?.ok_or(ReportError::EmptyChain)?;
            if h > tip.height {
                return Err(ReportError::BeyondTip {
                    height: h,
                    tip: tip.height,
                });
            }
            let day = match store.block_at(h).await? {
                Some(b) => date_of_unix(i64::from(b.time)),
                None => date_of_unix(i64::from(tip.time)),
            };
            Ok((day, Some(h)))
        }
    }
}

/// Holdings per entity (chain and custodial, kept apart) at the end of a day or at a height
/// (default: the synced tip's day), valued in `currencies`.
pub async fn holdings_at(
    store: &Store,
    at: Option<At>,
    entity: Option<&EntityCode>,
    currencies: &[String],
    opts: ReportOptions,
) -> ReportResult<Holdings> {
    let (day, height) = resolve_at(store, at).await?;
    let scope = scope(store, entity).await?;
    store.ledger_refresh().await?;
    let _ = opts.tolerance; // holdings do not depend on classification
    let mut prices = store.price_book().await?;
    prices.allow_last_known = opts.allow_last_known;
    let mut quotes = Vec::new();
    for c in currencies {
        quotes.push(prices.btc_price(day, c)?);
    }
    let values = |sats: u64| -> BTreeMap<String, Decimal> {
        currencies
            .iter()
            .zip(&quotes)
            .map(|(c, q)| (c.clone(), round_money(value_of(sats, q.value))))
            .collect()
    };
    // One aggregate in the database: the movements up to the day (or height), per entity.
    let cond = match height {
        Some(h) => format!("height <= {h}"),
        None => format!("time < {}", day_after(day)),
    };
    let bal: BTreeMap<i64, i64> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT entity_id, CAST(SUM(received) - SUM(sent) AS BIGINT) AS net \
         FROM ledger_movements WHERE {cond} GROUP BY entity_id"
    )))
    .fetch_all(store.pool())
    .await
    .map_err(StoreError::from)?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("entity_id").map_err(StoreError::from)?,
            i64_col(r, "net")?,
        ))
    })
    .collect::<ReportResult<_>>()?;
    let custodial = custodial_records(store, day).await?;
    let mut rows = Vec::new();
    let mut chain_sats = 0;
    let mut by_code: Vec<(String, u64)> = bal
        .iter()
        .filter(|(e, s)| scope.ids.contains(e) && **s > 0)
        .map(|(e, s)| (scope.code(*e), *s as u64))
        .collect();
    by_code.sort();
    for (code, sats) in by_code {
        chain_sats += sats;
        rows.push(HoldingRow {
            entity: code,
            source: HoldingSource::Chain,
            custodian: None,
            as_of: None,
            sats,
            values: values(sats),
        });
    }
    let mut custodial_sats = 0;
    for ((e, cust), (d, sats)) in custodial_at(&custodial, &scope, day) {
        custodial_sats += sats;
        rows.push(HoldingRow {
            entity: e,
            source: HoldingSource::Custodial,
            custodian: (!cust.is_empty()).then_some(cust),
            as_of: Some(fmt_date(d)),
            sats,
            values: values(sats),
        });
    }
    Ok(Holdings {
        at: fmt_date(day),
        height,
        chain_sats,
        custodial_sats,
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
    })
}

/// The accumulation report with custodial stock beside the chain's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccumulationReport {
    /// The chain figures (see [`tesoro_core::report::Accumulation`]).
    #[serde(flatten)]
    pub chain: tesoro_core::report::Accumulation,
    /// Custodial holdings (off-chain records) in force at the start of the period.
    pub custodial_start_sats: u64,
    /// Custodial holdings in force at the end of the period.
    pub custodial_end_sats: u64,
    /// Chain + custodial at the start.
    pub total_start_sats: u64,
    /// Chain + custodial at the end.
    pub total_end_sats: u64,
}

/// The accumulation test for `entity` (and below) over [from, to] (defaults: the first
/// movement's day, the tip's day): stock at start and end, acquisitions by kind, disposals,
/// intra-state transfers, and whether "no net accumulation" holds. Custodial stock is
/// reported apart (it is not on chain, so it does not enter the reconciliation).
pub async fn accumulation(
    store: &Store,
    entity: Option<&EntityCode>,
    from: Option<Date>,
    to: Option<Date>,
    opts: ReportOptions,
) -> ReportResult<AccumulationReport> {
    let to = match to {
        Some(d) => d,
        None => tip_date(store).await?,
    };
    let scope = scope(store, entity).await?;
    store.ledger_classify(opts.tolerance).await?;
    // Default start: the first movement's day (the stock before it is zero).
    let from = match from {
        Some(d) => d,
        None => {
            let first: Option<i64> = sqlx::query("SELECT MIN(time) AS t FROM ledger_movements")
                .fetch_one(store.pool())
                .await
                .map_err(StoreError::from)?
                .try_get("t")
                .map_err(StoreError::from)?;
            first.map_or(to, date_of_unix).min(to)
        }
    };
    let chain = accumulation_sql(store, &scope.ids, from, to).await?;
    let before = from.previous_day().unwrap_or(Date::MIN);
    let custodial = custodial_records(store, to).await?;
    let sum = |m: BTreeMap<(String, String), (Date, u64)>| m.values().map(|v| v.1).sum::<u64>();
    let custodial_start_sats = sum(custodial_at(&custodial, &scope, before));
    let custodial_end_sats = sum(custodial_at(&custodial, &scope, to));
    Ok(AccumulationReport {
        total_start_sats: chain.stock_start_sats + custodial_start_sats,
        total_end_sats: chain.stock_end_sats + custodial_end_sats,
        chain,
        custodial_start_sats,
        custodial_end_sats,
    })
}

/// The chain part of the accumulation report, as three aggregates in the database: the stock
/// before the period, the period's movements grouped by final kind, and the internal flow
/// per transaction (what crosses the scope's border vs what moves inside it). Same figures
/// as `tesoro_core::report::accumulation` (tested against it).
async fn accumulation_sql(
    store: &Store,
    ids: &BTreeSet<i64>,
    from: Date,
    to: Date,
) -> ReportResult<tesoro_core::report::Accumulation> {
    let in_scope = scope_sql("entity_id", ids);
    let lo = if from == Date::MIN {
        i64::MIN
    } else {
        day_start(from)
    };
    let hi = day_after(to);
    let db = |e: sqlx::Error| ReportError::Store(StoreError::from(e));
    let start = i64_col(
        &sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(SUM(received) - SUM(sent) AS BIGINT) AS n FROM ledger_movements \
             WHERE {in_scope} AND time < $1"
        )))
        .bind(lo)
        .fetch_one(store.pool())
        .await
        .map_err(db)?,
        "n",
    )?;
    let groups = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COALESCE(kind, chain_kind) AS k, CAST(SUM(acquired) AS BIGINT) AS a, \
         CAST(SUM(disposed) AS BIGINT) AS d, CAST(SUM(fee) AS BIGINT) AS f, \
         CAST(SUM(received) - SUM(sent) AS BIGINT) AS n, CAST(COUNT(*) AS BIGINT) AS c \
         FROM ledger_movements WHERE {in_scope} AND time >= $1 AND time < $2 \
         GROUP BY COALESCE(kind, chain_kind)"
    )))
    .bind(lo)
    .bind(hi)
    .fetch_all(store.pool())
    .await
    .map_err(db)?;
    let mut fold = AccumulationFold::new(from, to, start);
    for g in &groups {
        fold.add(
            kind_col(g, "k")?,
            i64_col(g, "a")?.max(0) as u64,
            i64_col(g, "d")?.max(0) as u64,
            i64_col(g, "f")?.max(0) as u64,
            i64_col(g, "n")?,
            i64_col(g, "c")?.max(0) as u64,
        );
    }
    // Per transaction: net internal flow into the scope (n) and internal outflow (o). What
    // crosses the border is intra-state in/out; the rest of the outflow stayed inside.
    let internal = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(COALESCE(SUM(CASE WHEN n > 0 THEN n ELSE 0 END), 0) AS BIGINT) AS ins, \
         CAST(COALESCE(SUM(CASE WHEN n < 0 THEN -n ELSE 0 END), 0) AS BIGINT) AS outs, \
         CAST(COALESCE(SUM(CASE WHEN w > 0 THEN w ELSE 0 END), 0) AS BIGINT) AS within, \
         CAST(COALESCE(SUM(CASE WHEN w > 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS moves \
         FROM (SELECT n, o - (CASE WHEN n < 0 THEN -n ELSE 0 END) AS w FROM \
           (SELECT SUM(internal_in) - SUM(internal_out) AS n, SUM(internal_out) AS o \
            FROM ledger_movements WHERE {in_scope} AND time >= $1 AND time < $2 \
            AND (internal_in > 0 OR internal_out > 0) GROUP BY txid) t) u"
    )))
    .bind(lo)
    .bind(hi)
    .fetch_one(store.pool())
    .await
    .map_err(db)?;
    fold.add_internal(
        i64_col(&internal, "ins")?.max(0) as u64,
        i64_col(&internal, "outs")?.max(0) as u64,
        i64_col(&internal, "within")?.max(0) as u64,
        i64_col(&internal, "moves")?.max(0) as u64,
    );
    Ok(fold.finish())
}

/// Realized and unrealized gains for `entity` (and below) over [from, to] (defaults: the
/// beginning, the tip's day) under `method`, in `currency`.
#[allow(clippy::too_many_arguments)]
pub async fn pnl(
    store: &Store,
    entity: Option<&EntityCode>,
    from: Option<Date>,
    to: Option<Date>,
    method: Method,
    fee_rule: FeeRule,
    currency: &str,
    opts: ReportOptions,
) -> ReportResult<Pnl> {
    let to = match to {
        Some(d) => d,
        None => tip_date(store).await?,
    };
    let from = from.unwrap_or(Date::MIN);
    let scope = scope(store, entity).await?;
    crate::sub_ledger::post(store, opts.tolerance).await?;
    let mut prices = store.price_book().await?;
    prices.allow_last_known = opts.allow_last_known;
    let entities: BTreeSet<i64> = scope.all.keys().copied().collect();
    if let Some(p) = crate::sub_ledger::pnl_posted(
        store, &scope.ids, &entities, from, to, method, fee_rule, currency, &prices,
    )
    .await?
    {
        return Ok(p);
    }
    pnl_streamed(
        store, &scope.ids, from, to, method, fee_rule, currency, &prices,
    )
    .await
}

/// [`pnl`] by streaming the whole history through the lot engine: the reference the lot
/// sub-ledger is tested against, and the path for what it does not hold (see
/// [`crate::sub_ledger`]). Does not classify first.
#[allow(clippy::too_many_arguments)]
pub async fn pnl_streamed(
    store: &Store,
    ids: &BTreeSet<i64>,
    from: Date,
    to: Date,
    method: Method,
    fee_rule: FeeRule,
    currency: &str,
    prices: &PriceBook,
) -> ReportResult<Pnl> {
    if method == Method::Specific {
        return crate::specific::pnl_specific(store, ids, from, to, fee_rule, currency, prices)
            .await;
    }
    let mut engine = Engine::new(method, fee_rule);
    let mut fold = PnlFold::new(method, currency, from, to);
    stream_lot_entries(store, to, currency, prices, |group| {
        engine.apply_tx(group);
        for r in engine.realized.drain(..) {
            fold.realized(&r, ids);
        }
    })
    .await?;
    Ok(fold.finish(engine.uncovered_sats, pool_totals(&engine, ids), prices)?)
}

/// Rows read per round trip when streaming movements in chain order.
const PAGE: i64 = 20_000;

/// Feeds every movement up to the end of `to` that can change a lot (an acquisition, a
/// disposal, a fee or a transfer between entities), grouped per transaction in chain order,
/// to `apply`, with costs and proceeds in `currency`. Reads pages of [`PAGE`] rows by key
/// (height, position, txid, entity), so memory does not grow with the history.
pub(crate) async fn stream_lot_entries(
    store: &Store,
    to: Date,
    currency: &str,
    prices: &PriceBook,
    mut apply: impl FnMut(&[LotEntry]),
) -> ReportResult<()> {
    let hi = day_after(to);
    let mut after: Option<(i64, i64, Vec<u8>, i64)> = None;
    let mut group: Vec<LotEntry> = Vec::new();
    let mut group_key: Option<(u32, u32, bitcoin::Txid)> = None;
    loop {
        let keyset = if after.is_some() {
            "AND (m.height > $2 OR (m.height = $2 AND (m.tx_index > $3 OR (m.tx_index = $3 AND \
             (m.txid > $4 OR (m.txid = $4 AND m.entity_id > $5))))))"
        } else {
            ""
        };
        let sql = format!(
            "SELECT m.txid, m.entity_id, m.height, m.tx_index, m.time, m.acquired, m.disposed, \
             m.fee, m.internal_in, m.internal_out, COALESCE(m.kind, m.chain_kind) AS k, \
             r.day AS rday, r.fiat AS rfiat, r.currency AS rcur \
             FROM ledger_movements m LEFT JOIN ledger_records r ON r.id = m.record_id \
             WHERE m.time < $1 \
             AND (m.acquired > 0 OR m.disposed > 0 OR m.fee > 0 OR m.internal_in <> m.internal_out) \
             {keyset} ORDER BY m.height, m.tx_index, m.txid, m.entity_id LIMIT {PAGE}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(hi);
        if let Some((h, i, t, e)) = &after {
            q = q.bind(*h).bind(*i).bind(t.clone()).bind(*e);
        }
        let rows = q.fetch_all(store.pool()).await.map_err(StoreError::from)?;
        for r in &rows {
            let m = Movement {
                txid: txid_of(r, "txid")?,
                entity: r.try_get("entity_id").map_err(StoreError::from)?,
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
            let kind = kind_col(r, "k")?;
            let rday: Option<String> = r.try_get("rday").map_err(StoreError::from)?;
            let rfiat: Option<String> = r.try_get("rfiat").map_err(StoreError::from)?;
            let rcur: Option<String> = r.try_get("rcur").map_err(StoreError::from)?;
            let rec = match (rday, rfiat, rcur.as_deref()) {
                (Some(d), Some(f), Some(c)) => Some(RecordFiat {
                    date: parse_date(&d).map_err(corrupt)?,
                    fiat: f
                        .parse::<Decimal>()
                        .map_err(|_| corrupt(format!("fiat {f:?}")))?,
                    currency: c,
                }),
                _ => None,
            };
            let key = (m.height, m.tx_index, m.txid);
            if group_key != Some(key) {
                if !group.is_empty() {
                    apply(&group);
                    group.clear();
                }
                group_key = Some(key);
            }
            group.push(lot_entry(&m, kind, rec, prices, currency)?);
        }
        match rows.last() {
            Some(r) if rows.len() as i64 == PAGE => {
                after = Some((
                    r.try_get("height").map_err(StoreError::from)?,
                    r.try_get("tx_index").map_err(StoreError::from)?,
                    r.try_get("txid").map_err(StoreError::from)?,
                    r.try_get("entity_id").map_err(StoreError::from)?,
                ));
            }
            _ => break,
        }
    }
    if !group.is_empty() {
        apply(&group);
    }
    Ok(())
}

/// Which movements to list.
#[derive(Debug, Clone, Default)]
pub struct MovementFilter {
    /// Only this entity and everything below it.
    pub entity: Option<EntityCode>,
    /// First day.
    pub from: Option<Date>,
    /// Last day.
    pub to: Option<Date>,
    /// Only this class (`fee` also lists fees paid by internal movements).
    pub class: Option<Class>,
    /// Only movements still unclassified.
    pub unclassified: bool,
}

/// One movement as surfaces show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MovementRow {
    /// Transaction id.
    pub txid: String,
    /// Entity code.
    pub entity: String,
    /// Day of the block.
    pub date: String,
    /// Block height.
    pub height: u32,
    /// Class.
    pub class: String,
    /// Kind.
    pub kind: String,
    /// Where the kind came from.
    pub source: Source,
    /// Rule name, override reason or record reference.
    pub note: Option<String>,
    /// received − sent.
    pub net_sats: i64,
    /// Received by the entity.
    pub received_sats: u64,
    /// Sent by the entity.
    pub sent_sats: u64,
    /// From outside the state.
    pub acquired_sats: u64,
    /// To outside the state.
    pub disposed_sats: u64,
    /// Fee paid.
    pub fee_sats: u64,
    /// From other wallets of the state.
    pub internal_in_sats: u64,
    /// To other wallets of the state.
    pub internal_out_sats: u64,
    /// Counterparty addresses.
    pub counterparties: Vec<String>,
    /// Id of the matched off-chain record.
    pub record: Option<i64>,
}

/// The movement list with the counts a reviewer needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MovementList {
    /// Movements matching the filter, in chain order.
    pub movements: Vec<MovementRow>,
    /// Unclassified movements in the entity scope (whatever the other filters).
    pub unclassified_in_scope: u64,
    /// Off-chain records (not custodial) that matched no movement.
    pub unmatched_records: u64,
}

/// Classified movements matching `filter`, in chain order.
pub async fn movements(
    store: &Store,
    filter: &MovementFilter,
    opts: ReportOptions,
) -> ReportResult<MovementList> {
    let scope = scope(store, filter.entity.as_ref()).await?;
    store.ledger_classify(opts.tolerance).await?;
    let db = |e: sqlx::Error| ReportError::Store(StoreError::from(e));
    let eff = "COALESCE(kind, chain_kind)";
    let unclassified = kinds_sql(|k| k.is_unclassified());
    let mut cond = vec![scope_sql("entity_id", &scope.ids)];
    if let Some(f) = filter.from {
        cond.push(format!("time >= {}", day_start(f)));
    }
    if let Some(t) = filter.to {
        cond.push(format!("time < {}", day_after(t)));
    }
    if let Some(k) = filter.class {
        let of_class = kinds_sql(|x| x.class() == k);
        cond.push(if k == Class::Fee {
            // Fees paid by internal movements are fees too.
            let priced = kinds_sql(|x| matches!(x.class(), Class::Acquisition | Class::Disposal));
            format!("({eff} IN ({of_class}) OR (fee > 0 AND {eff} NOT IN ({priced})))")
        } else {
            format!("{eff} IN ({of_class})")
        });
    }
    if filter.unclassified {
        cond.push(format!("{eff} IN ({unclassified})"));
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MOVEMENT_COLUMNS}, kind, source, note, record_id FROM ledger_movements \
         WHERE {} ORDER BY height, tx_index, txid, entity_id",
        cond.join(" AND ")
    )))
    .fetch_all(store.pool())
    .await
    .map_err(db)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let m = movement_row(r)?;
        let kind: Option<String> = r.try_get("kind").map_err(db)?;
        let kind = match kind {
            Some(k) => k.parse::<Kind>().map_err(corrupt)?,
            None => m.chain_kind,
        };
        let source: Option<String> = r.try_get("source").map_err(db)?;
        let source = match source {
            Some(s) => s.parse::<Source>().map_err(corrupt)?,
            None => Source::Chain,
        };
        out.push(MovementRow {
            txid: m.txid.to_string(),
            entity: scope.code(m.entity),
            date: fmt_date(m.date()),
            height: m.height,
            class: kind.class().as_str().to_string(),
            kind: kind.as_str().to_string(),
            source,
            note: r.try_get("note").map_err(db)?,
            net_sats: m.net(),
            received_sats: m.received,
            sent_sats: m.sent,
            acquired_sats: m.acquired,
            disposed_sats: m.disposed,
            fee_sats: m.fee,
            internal_in_sats: m.internal_in,
            internal_out_sats: m.internal_out,
            counterparties: m.counterparties,
            record: r.try_get("record_id").map_err(db)?,
        });
    }
    let unclassified_in_scope = i64_col(
        &sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ledger_movements WHERE {} AND {eff} IN ({unclassified})",
            scope_sql("entity_id", &scope.ids)
        )))
        .fetch_one(store.pool())
        .await
        .map_err(db)?,
        "n",
    )?
    .max(0) as u64;
    let unmatched_records = i64_col(
        &sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ledger_records WHERE kind <> 'custodial' \
             AND id NOT IN (SELECT record_id FROM ledger_movements WHERE record_id IS NOT NULL)",
        )
        .fetch_one(store.pool())
        .await
        .map_err(db)?,
        "n",
    )?
    .max(0) as u64;
    Ok(MovementList {
        movements: out,
        unclassified_in_scope,
        unmatched_records,
    })
}

/// An off-chain record and the movement it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordMatch {
    /// The record.
    #[serde(flatten)]
    pub record: Record,
    /// Transaction it matched.
    pub matched_txid: Option<String>,
    /// Entity of that movement.
    pub matched_entity: Option<String>,
}

/// Every off-chain record with the movement it matched (custodial records never match).
pub async fn records_matched(store: &Store, opts: ReportOptions) -> ReportResult<Vec<RecordMatch>> {
    let scope = scope(store, None).await?;
    store.ledger_classify(opts.tolerance).await?;
    let db = |e: sqlx::Error| ReportError::Store(StoreError::from(e));
    let mut matched: BTreeMap<i64, (String, String)> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT record_id, txid, entity_id FROM ledger_movements WHERE record_id IS NOT NULL",
    )
    .fetch_all(store.pool())
    .await
    .map_err(db)?
    {
        let id: i64 = r.try_get("record_id").map_err(db)?;
        let e: i64 = r.try_get("entity_id").map_err(db)?;
        matched.insert(id, (txid_of(&r, "txid")?.to_string(), scope.code(e)));
    }
    Ok(store
        .records()
        .await?
        .into_iter()
        .map(|record| {
            let m = matched.remove(&record.id);
            RecordMatch {
                record,
                matched_txid: m.as_ref().map(|m| m.0.clone()),
                matched_entity: m.map(|m| m.1),
            }
        })
        .collect())
}
