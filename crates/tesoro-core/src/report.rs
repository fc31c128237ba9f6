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

/// The accumulation arithmetic, fed either movement by movement ([`accumulation`]) or with
/// aggregates a database computed (`tesoro_store::reports`): one place decides how kinds are
/// bucketed, what counts as net accumulation and whether the figures reconcile.
#[derive(Debug, Clone)]
pub struct AccumulationFold {
    r: Accumulation,
    start: i64,
    end: i64,
    seized: u64,
}

impl AccumulationFold {
    /// An empty report for [from, to] starting from `stock_start` sats.
    pub fn new(from: Date, to: Date, stock_start: i64) -> AccumulationFold {
        AccumulationFold {
            r: Accumulation {
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
            },
            start: stock_start,
            end: stock_start,
            seized: 0,
        }
    }

    /// Counts `count` movements of the period whose final kind is `kind`, with their summed
    /// acquired, disposed, fee and net (received − sent) sats.
    pub fn add(
        &mut self,
        kind: Kind,
        acquired: u64,
        disposed: u64,
        fee: u64,
        net: i64,
        count: u64,
    ) {
        let r = &mut self.r;
        self.end += net;
        if acquired > 0 {
            let k = if kind.class() == Class::Acquisition {
                kind
            } else {
                Kind::UnclassifiedAcquisition
            };
            *r.acquisitions.entry(k.as_str().to_string()).or_default() += acquired;
            r.acquired_sats += acquired;
            if k == Kind::Seizure {
                self.seized += acquired;
            }
        }
        if disposed > 0 {
            let k = if kind.class() == Class::Disposal {
                kind
            } else {
                Kind::UnclassifiedDisposal
            };
            *r.disposals.entry(k.as_str().to_string()).or_default() += disposed;
            r.disposed_sats += disposed;
        }
        r.fee_sats += fee;
        if kind.is_unclassified() {
            r.unclassified_movements += count;
        }
    }

    /// Counts internal flow: sats that came in from (`ins`) or went out to (`outs`) entities
    /// of the state outside the scope, and sats moved inside it (`within`, by `moves`
    /// transactions).
    pub fn add_internal(&mut self, ins: u64, outs: u64, within: u64, moves: u64) {
        self.r.intra_state_in_sats += ins;
        self.r.intra_state_out_sats += outs;
        self.r.internal_moved_sats += within;
        self.r.internal_movements += moves;
    }

    /// Counts one transaction's internal flow in the scope: net flow into it and sats sent
    /// by its entities to other wallets of the state.
    pub fn add_tx_internal(&mut self, net: i64, out: u64) {
        let (ins, outs) = if net > 0 {
            (net as u64, 0)
        } else {
            (0, net.unsigned_abs())
        };
        let within = out.saturating_sub(outs);
        self.add_internal(ins, outs, within, u64::from(within > 0));
    }

    /// The report.
    pub fn finish(self) -> Accumulation {
        let mut r = self.r;
        let (start, end) = (self.start, self.end);
        r.stock_start_sats = start.max(0) as u64;
        r.stock_end_sats = end.max(0) as u64;
        r.net_accumulation_sats =
            (r.acquired_sats - self.seized) as i64 - r.disposed_sats as i64 - r.fee_sats as i64;
        r.no_net_accumulation = r.net_accumulation_sats <= 0;
        r.reconciles = start + r.acquired_sats as i64 - r.disposed_sats as i64 - r.fee_sats as i64
            + r.intra_state_in_sats as i64
            - r.intra_state_out_sats as i64
            == end;
        r
    }
}

/// Builds the accumulation report. `movements` are all classified movements in chain order;
/// `scope` the entity ids to count.
pub fn accumulation(
    movements: &[Classified],
    scope: &BTreeSet<i64>,
    from: Date,
    to: Date,
) -> Accumulation {
    let start: i64 = movements
        .iter()
        .filter(|c| {
            let d = c.movement.date();
            scope.contains(&c.movement.entity) && d < from && d <= to
        })
        .map(|c| c.movement.net())
        .sum();
    let mut f = AccumulationFold::new(from, to, start);
    // Scope-level internal flow per transaction.
    let mut tx_internal: BTreeMap<(u32, u32, bitcoin::Txid), (i64, u64)> = BTreeMap::new();
    for c in movements {
        let m = &c.movement;
        let d = m.date();
        // Block times are not strictly monotonic: a later block may carry an earlier day, so
        // filter rather than stop (the SQL reports filter the same way).
        if !scope.contains(&m.entity) || d > to || d < from {
            continue;
        }
        f.add(c.kind, m.acquired, m.disposed, m.fee, m.net(), 1);
        if m.internal_in > 0 || m.internal_out > 0 {
            let e = tx_internal
                .entry((m.height, m.tx_index, m.txid))
                .or_default();
            e.0 += m.internal_net();
            e.1 += m.internal_out;
        }
    }
    for (net, out) in tx_internal.values() {
        f.add_tx_internal(*net, *out);
    }
    f.finish()
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
    // Kept to 10 decimals, as lot splits are: every later sum of costs and proceeds then
    // fits rust_decimal's 28 digits exactly, so totals do not depend on the order of adding
    // (a running total and a fresh sum agree to the last digit).
    let (cost, proceeds) = (cost.round_dp(10), proceeds.round_dp(10));
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

    /// Counts realizations already summed (a lot sub-ledger's rows in scope and period).
    pub fn add_sums(&mut self, s: &RealizedSums) {
        self.p.proceeds += s.proceeds;
        self.p.cost_disposed += s.cost_disposed;
        self.p.realized_disposals += s.realized_disposals;
        self.p.realized_fees += s.realized_fees;
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
        // Same figures print the same whichever way they were summed (a running total keeps
        // the largest scale it ever saw; a fresh sum only that of its terms).
        for d in [
            &mut p.proceeds,
            &mut p.cost_disposed,
            &mut p.realized_disposals,
            &mut p.realized_fees,
            &mut p.realized,
            &mut p.holding_cost,
            &mut p.holding_value,
            &mut p.price,
            &mut p.unrealized,
        ] {
            *d = d.normalize();
        }
        Ok(p)
    }
}

/// Realizations summed as [`PnlFold`] counts them: disposals' proceeds, cost and gain, and
/// fees' gain (a loss).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RealizedSums {
    /// Proceeds of disposals.
    pub proceeds: Decimal,
    /// Cost basis of disposals.
    pub cost_disposed: Decimal,
    /// Gain on disposals.
    pub realized_disposals: Decimal,
    /// Gain (loss) from fees.
    pub realized_fees: Decimal,
}

impl RealizedSums {
    /// Counts one realization.
    pub fn add(&mut self, r: &Realized) {
        match r.kind {
            RealizedKind::Disposal => {
                self.proceeds += r.proceeds;
                self.cost_disposed += r.cost;
                self.realized_disposals += r.gain;
            }
            RealizedKind::Fee => self.realized_fees += r.gain,
        }
    }

    /// Adds other sums.
    pub fn merge(&mut self, o: &RealizedSums) {
        self.proceeds += o.proceeds;
        self.cost_disposed += o.cost_disposed;
        self.realized_disposals += o.realized_disposals;
        self.realized_fees += o.realized_fees;
    }

    /// True when nothing was realized.
    pub fn is_zero(&self) -> bool {
        self.proceeds.is_zero()
            && self.cost_disposed.is_zero()
            && self.realized_disposals.is_zero()
            && self.realized_fees.is_zero()
    }
}
