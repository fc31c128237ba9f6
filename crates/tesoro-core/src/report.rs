//! Reports over classified movements: accumulation (the IMF test), holdings with valuation,
//! realized and unrealized gains per cost-basis method.
//!
//! Every report is a fold over movements in chain order; nothing here reads a database.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::Serialize;
use time::Date;

use crate::classify::{Classified, Record};
use crate::lots::{Engine, FeeRule, LotEntry, Method, Realized, RealizedKind};
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
            // Block times are not strictly monotonic: a later block may carry an earlier
            // day, so filter rather than stop (the SQL reports filter the same way).
            continue;
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

/// Holdings of each entity (sats) at the end of `at`, from movements: every movement in a
/// block whose day is `at` or earlier.
pub fn balances_at(movements: &[Classified], at: Date) -> BTreeMap<i64, i64> {
    let mut b: BTreeMap<i64, i64> = BTreeMap::new();
    for c in movements {
        if c.movement.date() <= at {
            *b.entry(c.movement.entity).or_default() += c.movement.net();
        }
    }
    b
}

/// What a matched record says a movement cost or fetched: its day, fiat amount and currency.
#[derive(Debug, Clone, Copy)]
pub struct RecordFiat<'a> {
    /// The record's day (FX is taken at it).
    pub date: Date,
    /// Fiat amount.
    pub fiat: Decimal,
    /// Its currency.
    pub currency: &'a str,
}

impl<'a> RecordFiat<'a> {
    /// The fiat part of a record, if it has one.
    pub fn of(r: &'a Record) -> Option<RecordFiat<'a>> {
        Some(RecordFiat {
            date: r.date,
            fiat: r.fiat?,
            currency: r.currency.as_deref()?,
        })
    }

    /// The amount in `currency`, converted at the record's date.
    pub fn in_currency(&self, currency: &str, prices: &PriceBook) -> Result<Decimal, PriceError> {
        Ok(self.fiat * prices.fx(self.date, self.currency, currency)?.value)
    }
}

/// Cost and proceeds of one movement in `currency`: a matched record's fiat amount when the
/// movement's kind is of the record's side (acquisition cost, disposal proceeds), else the
/// day's market value (an acquisition so costed is flagged `market_priced`).
#[allow(clippy::too_many_arguments)]
pub fn lot_entry(
    m: &crate::movement::Movement,
    kind: Kind,
    record: Option<RecordFiat<'_>>,
    prices: &PriceBook,
    currency: &str,
) -> Result<LotEntry, PriceError> {
    let date = m.date();
    let mut cost = Decimal::ZERO;
    let mut proceeds = Decimal::ZERO;
    let mut market = false;
    if m.acquired > 0 {
        match record {
            Some(r) if kind.class() == Class::Acquisition => {
                cost = r.in_currency(currency, prices)?
            }
            _ => {
                cost = value_of(m.acquired, prices.btc_price(date, currency)?.value);
                market = true;
            }
        }
    }
    if m.disposed > 0 {
        proceeds = match record {
            Some(r) if kind.class() == Class::Disposal => r.in_currency(currency, prices)?,
            _ => value_of(m.disposed, prices.btc_price(date, currency)?.value),
        };
    }
    Ok(LotEntry {
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
    })
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
        let mut j = i;
        group.clear();
        while j < movements.len() && movements[j].movement.txid == first.txid {
            let c = &movements[j];
            if c.movement.date() <= to {
                let rec = c
                    .record
                    .and_then(|ri| records.get(ri))
                    .and_then(RecordFiat::of);
                group.push(lot_entry(&c.movement, c.kind, rec, prices, currency)?);
            }
            j += 1;
        }
        if !group.is_empty() {
            engine.apply_tx(&group);
        }
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
    let mut engine = run_lots(movements, records, prices, currency, method, fee_rule, to)?;
    let mut fold = PnlFold::new(method, currency, from, to);
    for r in engine.realized.drain(..) {
        fold.realized(&r, scope);
    }
    fold.finish(engine.uncovered_sats, pool_totals(&engine, scope), prices)
}

/// Holdings of a scope at the end of a lot run: (sats, cost, sats costed at market).
pub fn pool_totals(engine: &Engine, scope: &BTreeSet<i64>) -> (u64, Decimal, u64) {
    let mut t = (0u64, Decimal::ZERO, 0u64);
    for (e, pool) in engine.pools() {
        if !scope.contains(e) {
            continue;
        }
        t.0 += pool.sats();
        t.1 += pool.cost();
        t.2 += pool.market_priced_sats();
    }
    t
}

/// Folds realized gains into a [`Pnl`] as a lot engine produces them (so a long history
/// needs no list of every realization), then values the holdings at the end.
#[derive(Debug, Clone)]
pub struct PnlFold {
    p: Pnl,
    from: Date,
    to: Date,
}

impl PnlFold {
    /// An empty report for [from, to].
    pub fn new(method: Method, currency: &str, from: Date, to: Date) -> PnlFold {
        PnlFold {
            p: Pnl {
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
                uncovered_sats: 0,
            },
            from,
            to,
        }
    }

    /// Counts one realization when it is in scope and in the period.
    pub fn realized(&mut self, r: &Realized, scope: &BTreeSet<i64>) {
        if !scope.contains(&r.entity) || r.date < self.from || r.date > self.to {
            return;
        }
        match r.kind {
            RealizedKind::Disposal => {
                self.p.proceeds += r.proceeds;
                self.p.cost_disposed += r.cost;
                self.p.realized_disposals += r.gain;
            }
            RealizedKind::Fee => self.p.realized_fees += r.gain,
        }
    }

    /// The report, with holdings `(sats, cost, sats costed at market)` valued at `to`.
    pub fn finish(
        self,
        uncovered_sats: u64,
        holdings: (u64, Decimal, u64),
        prices: &PriceBook,
    ) -> Result<Pnl, PriceError> {
        let mut p = self.p;
        p.uncovered_sats = uncovered_sats;
        p.realized = p.realized_disposals + p.realized_fees;
        (p.holding_sats, p.holding_cost, p.market_priced_sats) = holdings;
        if p.holding_sats > 0 {
            let q = prices.btc_price(self.to, &p.currency)?;
            p.price = q.value;
            p.price_stale = q.stale;
            p.holding_value = value_of(p.holding_sats, q.value);
        }
        p.unrealized = p.holding_value - p.holding_cost;
        Ok(p)
    }
}
