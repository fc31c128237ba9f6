//! Reports over classified movements: accumulation (the IMF test), holdings with valuation,
//! realized and unrealized gains per cost-basis method.
//!
//! Every report is a fold over movements in chain order; nothing here reads a database.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::Serialize;
use time::Date;

use crate::classify::{Classified, Record};
use crate::lots::{Engine, FeeRule, LotEntry, Method, RealizedKind};
use crate::movement::{Class, Kind};
use crate::price::{fmt_date, value_of, PriceBook, PriceError};

/// The accumulation report for a scope (a set of entities) and a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accumulation {
    /// First day (inclusive).
    pub from: String,
    /// Last day (inclusive).
    pub to: String,
    /// Holdings at the start of `from`.
    pub stock_start_sats: u64,
    /// Holdings at the end of `to`.
    pub stock_end_sats: u64,
    /// Acquisitions by kind.
    pub acquisitions: BTreeMap<String, u64>,
    /// Total acquisitions.
    pub acquired_sats: u64,
    /// Disposals by kind.
    pub disposals: BTreeMap<String, u64>,
    /// Total disposals.
    pub disposed_sats: u64,
    /// Fees paid.
    pub fee_sats: u64,
    /// Coins received from entities of the state outside the scope.
    pub intra_state_in_sats: u64,
    /// Coins sent to entities of the state outside the scope.
    pub intra_state_out_sats: u64,
    /// Coins moved between wallets inside the scope (consolidations, splits, cold storage).
    pub internal_moved_sats: u64,
    /// Number of internal movements inside the scope.
    pub internal_movements: u64,
    /// Acquisitions other than seizures, minus disposals and fees: the accumulation the IMF
    /// criterion looks at (internal transfers excluded by construction).
    pub net_accumulation_sats: i64,
    /// True when `net_accumulation_sats <= 0`.
    pub no_net_accumulation: bool,
    /// Movements in the period still unclassified (counted as acquisitions/disposals above).
    pub unclassified_movements: u64,
    /// stock_start + acquired − disposed − fees + intra-state in − out == stock_end.
    pub reconciles: bool,
}

/// Builds the accumulation report. `movements` are all classified movements in chain order;
/// `scope` the entity ids to count.
pub fn accumulation(
    movements: &[Classified],
    scope: &BTreeSet<i64>,
    from: Date,
    to: Date,
) -> Accumulation {
    let mut r = Accumulation {
        from: fmt_date(from),
        to: fmt_date(to),
        stock_start_sats: 0,
        stock_end_sats: 0,
        acquisitions: BTreeMap::new(),
        acquired_sats: 0,
        disposals: BTreeMap::new(),
        disposed_sats: 0,
        fee_sats: 0,
        intra_state_in_sats: 0,
        intra_state_out_sats: 0,
        internal_moved_sats: 0,
        internal_movements: 0,
        net_accumulation_sats: 0,
        no_net_accumulation: true,
        unclassified_movements: 0,
        reconciles: true,
    };
    let mut start: i64 = 0;
    let mut end: i64 = 0;
    let mut seized: u64 = 0;
    // Scope-level internal flow per transaction.
    let mut tx_internal: BTreeMap<(u32, u32, bitcoin::Txid), (i64, u64)> = BTreeMap::new();
    for c in movements {
        let m = &c.movement;
        if !scope.contains(&m.entity) {
            continue;
        }
        let d = m.date();
        if d > to {
            break;
        }
        if d < from {
            start += m.net();
            end += m.net();
            continue;
        }
        end += m.net();
        if m.acquired > 0 {
            let k = if c.kind.class() == Class::Acquisition {
                c.kind
            } else {
                Kind::UnclassifiedAcquisition
            };
            *r.acquisitions.entry(k.as_str().to_string()).or_default() += m.acquired;
            r.acquired_sats += m.acquired;
            if k == Kind::Seizure {
                seized += m.acquired;
            }
        }
        if m.disposed > 0 {
            let k = if c.kind.class() == Class::Disposal {
                c.kind
            } else {
                Kind::UnclassifiedDisposal
            };
            *r.disposals.entry(k.as_str().to_string()).or_default() += m.disposed;
            r.disposed_sats += m.disposed;
        }
        r.fee_sats += m.fee;
        if c.kind.is_unclassified() {
            r.unclassified_movements += 1;
        }
        if m.internal_in > 0 || m.internal_out > 0 {
            let e = tx_internal
                .entry((m.height, m.tx_index, m.txid))
                .or_default();
            e.0 += m.internal_net();
            e.1 += m.internal_out;
        }
    }
    for (net, out) in tx_internal.values() {
        if *net > 0 {
            r.intra_state_in_sats += *net as u64;
        } else {
            r.intra_state_out_sats += net.unsigned_abs();
        }
        let within = out.saturating_sub(if *net < 0 { net.unsigned_abs() } else { 0 });
        if within > 0 {
            r.internal_moved_sats += within;
            r.internal_movements += 1;
        }
    }
    r.stock_start_sats = start.max(0) as u64;
    r.stock_end_sats = end.max(0) as u64;
    r.net_accumulation_sats =
        (r.acquired_sats - seized) as i64 - r.disposed_sats as i64 - r.fee_sats as i64;
    r.no_net_accumulation = r.net_accumulation_sats <= 0;
    r.reconciles = start + r.acquired_sats as i64 - r.disposed_sats as i64 - r.fee_sats as i64
        + r.intra_state_in_sats as i64
        - r.intra_state_out_sats as i64
        == end;
    r
}

/// Holdings of each entity (sats) at the end of `at`, from movements.
pub fn balances_at(movements: &[Classified], at: Date) -> BTreeMap<i64, i64> {
    let mut b: BTreeMap<i64, i64> = BTreeMap::new();
    for c in movements {
        if c.movement.date() > at {
            break;
        }
        *b.entry(c.movement.entity).or_default() += c.movement.net();
    }
    b
}

/// Fiat amount of a record in `currency`, converted at the record's date.
fn record_fiat(
    r: &Record,
    currency: &str,
    prices: &PriceBook,
) -> Result<Option<Decimal>, PriceError> {
    let (Some(f), Some(c)) = (r.fiat, r.currency.as_deref()) else {
        return Ok(None);
    };
    let fx = prices.fx(r.date, c, currency)?;
    Ok(Some(f * fx.value))
}

/// Feeds classified movements (chain order) up to the end of `to` into a lot engine, with
/// costs and proceeds in `currency`: a matched record's fiat amount when there is one, else
/// the day's market value (flagged).
pub fn run_lots(
    movements: &[Classified],
    records: &[Record],
    prices: &PriceBook,
    currency: &str,
    method: Method,
    fee_rule: FeeRule,
    to: Date,
) -> Result<Engine, PriceError> {
    let mut engine = Engine::new(method, fee_rule);
    let mut group: Vec<LotEntry> = Vec::new();
    let mut i = 0;
    while i < movements.len() {
        let first = &movements[i].movement;
        if first.date() > to {
            break;
        }
        let mut j = i;
        group.clear();
        while j < movements.len() && movements[j].movement.txid == first.txid {
            let c = &movements[j];
            let m = &c.movement;
            let date = m.date();
            let rec = c.record.and_then(|ri| records.get(ri));
            let mut cost = Decimal::ZERO;
            let mut proceeds = Decimal::ZERO;
            let mut market = false;
            if m.acquired > 0 {
                match rec
                    .map(|r| record_fiat(r, currency, prices))
                    .transpose()?
                    .flatten()
                {
                    Some(f) if c.kind.class() == Class::Acquisition => cost = f,
                    _ => {
                        cost = value_of(m.acquired, prices.btc_price(date, currency)?.value);
                        market = true;
                    }
                }
            }
            if m.disposed > 0 {
                match rec
                    .map(|r| record_fiat(r, currency, prices))
                    .transpose()?
                    .flatten()
                {
                    Some(f) if c.kind.class() == Class::Disposal => proceeds = f,
                    _ => proceeds = value_of(m.disposed, prices.btc_price(date, currency)?.value),
                }
            }
            group.push(LotEntry {
                txid: m.txid,
                entity: m.entity,
                date,
                acquired: m.acquired,
                cost,
                market_priced: market,
                disposed: m.disposed,
                proceeds,
                fee: m.fee,
                internal_net: m.internal_net(),
            });
            j += 1;
        }
        engine.apply_tx(&group);
        i = j;
    }
    Ok(engine)
}

/// Gains for a scope and period under one method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pnl {
    /// Method.
    pub method: Method,
    /// Currency.
    pub currency: String,
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
    /// Proceeds of disposals in the period.
    pub proceeds: Decimal,
    /// Cost basis of what was disposed of (fees included under the realize rule).
    pub cost_disposed: Decimal,
    /// Realized gain on disposals.
    pub realized_disposals: Decimal,
    /// Realized loss from fees (realize rule).
    pub realized_fees: Decimal,
    /// Total realized.
    pub realized: Decimal,
    /// Holdings at the end of the period.
    pub holding_sats: u64,
    /// Their remaining cost basis.
    pub holding_cost: Decimal,
    /// Their market value at the end of the period.
    pub holding_value: Decimal,
    /// Price used for the value.
    pub price: Decimal,
    /// The price was the last known one, not the day's.
    pub price_stale: bool,
    /// Value − cost.
    pub unrealized: Decimal,
    /// Sats in lots priced at market because no record gave their cost.
    pub market_priced_sats: u64,
    /// Sats taken that no lot covered (0 for a complete history).
    pub uncovered_sats: u64,
}

/// Realized and unrealized gains for `scope` in [from, to].
#[allow(clippy::too_many_arguments)]
pub fn pnl(
    movements: &[Classified],
    records: &[Record],
    prices: &PriceBook,
    currency: &str,
    method: Method,
    fee_rule: FeeRule,
    scope: &BTreeSet<i64>,
    from: Date,
    to: Date,
) -> Result<Pnl, PriceError> {
    let engine = run_lots(movements, records, prices, currency, method, fee_rule, to)?;
    let mut p = Pnl {
        method,
        currency: currency.to_string(),
        from: fmt_date(from),
        to: fmt_date(to),
        proceeds: Decimal::ZERO,
        cost_disposed: Decimal::ZERO,
        realized_disposals: Decimal::ZERO,
        realized_fees: Decimal::ZERO,
        realized: Decimal::ZERO,
        holding_sats: 0,
        holding_cost: Decimal::ZERO,
        holding_value: Decimal::ZERO,
        price: Decimal::ZERO,
        price_stale: false,
        unrealized: Decimal::ZERO,
        market_priced_sats: 0,
        uncovered_sats: engine.uncovered_sats,
    };
    for r in &engine.realized {
        if !scope.contains(&r.entity) || r.date < from || r.date > to {
            continue;
        }
        match r.kind {
            RealizedKind::Disposal => {
                p.proceeds += r.proceeds;
                p.cost_disposed += r.cost;
                p.realized_disposals += r.gain;
            }
            RealizedKind::Fee => p.realized_fees += r.gain,
        }
    }
    p.realized = p.realized_disposals + p.realized_fees;
    for (e, pool) in engine.pools() {
        if !scope.contains(e) {
            continue;
        }
        p.holding_sats += pool.sats();
        p.holding_cost += pool.cost();
        p.market_priced_sats += pool
            .lots()
            .iter()
            .filter(|l| l.market_priced)
            .map(|l| l.sats)
            .sum::<u64>();
    }
    if p.holding_sats > 0 {
        let q = prices.btc_price(to, currency)?;
        p.price = q.value;
        p.price_stale = q.stale;
        p.holding_value = value_of(p.holding_sats, q.value);
    }
    p.unrealized = p.holding_value - p.holding_cost;
    Ok(p)
}
