//! Lots and cost basis.
//!
//! Every acquisition becomes a lot (date, sats, fiat cost). Disposals take sats out of the
//! disposing entity's lots in the order the method says and realize a gain (proceeds − cost).
//! Internal transfers carry lots, with their original date and cost, from the sending
//! entity to the receiving one without realizing anything. Fees follow a [`FeeRule`].
//!
//! Methods: FIFO (oldest acquisition first), LIFO (newest first), HIFO (highest unit cost
//! first), average cost (one pool per entity; every sat costs the pool's average).
//!
//! Invariant (tested): after every transaction, an entity's lots sum to its holdings.
//!
//! Amounts: sats as `u64`, fiat as `Decimal`. When a lot is split the taken part's cost is
//! `cost × taken / sats` rounded to 10 decimals and the rest keeps the remainder, so cost is
//! never created or lost by splitting.

use std::collections::BTreeMap;

use bitcoin::Txid;
use rust_decimal::Decimal;
use serde::Serialize;
use time::Date;

/// A cost-basis method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// First in, first out.
    Fifo,
    /// Last in, first out.
    Lifo,
    /// Highest cost first.
    Hifo,
    /// Average cost.
    Average,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 4] = [Method::Fifo, Method::Lifo, Method::Hifo, Method::Average];

    /// Name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Fifo => "fifo",
            Method::Lifo => "lifo",
            Method::Hifo => "hifo",
            Method::Average => "average",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fifo" => Ok(Method::Fifo),
            "lifo" => Ok(Method::Lifo),
            "hifo" => Ok(Method::Hifo),
            "average" | "avg" => Ok(Method::Average),
            other => Err(format!(
                "unknown method {other:?}: use fifo, lifo, hifo or average"
            )),
        }
    }
}

/// How network fees paid by the state are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FeeRule {
    /// The fee's sats are disposed of for nothing: their cost is a realized loss. (Default:
    /// the fee is a real outflow of the reserve, and reports show it as such.)
    #[default]
    Realize,
    /// The fee's sats leave the lots but their cost stays in the basis: added to the cost of
    /// the same transaction's disposal when there is one, else to the lots the transaction
    /// carries to another entity, else to the entity's newest remaining lot.
    Capitalize,
}

impl std::str::FromStr for FeeRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "realize" => Ok(FeeRule::Realize),
            "capitalize" => Ok(FeeRule::Capitalize),
            other => Err(format!(
                "unknown fee rule {other:?}: use realize or capitalize"
            )),
        }
    }
}

/// A unit of cost basis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lot {
    /// Sequence number of the acquisition that created it (stable across splits).
    pub seq: u64,
    /// Day acquired.
    #[serde(serialize_with = "ser_date")]
    pub acquired: Date,
    /// Sats left in the lot.
    pub sats: u64,
    /// Fiat cost of those sats.
    pub cost: Decimal,
    /// True when the cost is the day's market price rather than a recorded amount.
    pub market_priced: bool,
}

fn ser_date<S: serde::Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::price::fmt_date(*d))
}

impl Lot {
    fn split_off(&mut self, take: u64) -> Lot {
        let part_cost = if take >= self.sats {
            self.cost
        } else {
            (self.cost * Decimal::from(take) / Decimal::from(self.sats)).round_dp(10)
        };
        let taken = Lot {
            seq: self.seq,
            acquired: self.acquired,
            sats: take.min(self.sats),
            cost: part_cost,
            market_priced: self.market_priced,
        };
        self.sats -= taken.sats;
        self.cost -= part_cost;
        taken
    }
}

type Key = (Decimal, i64, i64);

/// One entity's lots under one method.
#[derive(Debug, Clone)]
pub struct Pool {
    method: Method,
    lots: BTreeMap<Key, Lot>,
    avg: Option<Lot>,
}

impl Pool {
    /// An empty pool.
    pub fn new(method: Method) -> Pool {
        Pool {
            method,
            lots: BTreeMap::new(),
            avg: None,
        }
    }

    fn key(&self, l: &Lot) -> Key {
        let day = i64::from(l.acquired.to_julian_day());
        match self.method {
            Method::Hifo => {
                let unit = if l.sats == 0 {
                    Decimal::ZERO
                } else {
                    l.cost / Decimal::from(l.sats)
                };
                (unit, -day, -(l.seq as i64))
            }
            _ => (Decimal::ZERO, day, l.seq as i64),
        }
    }

    /// Adds a lot (merging with a lot of the same acquisition already there).
    pub fn push(&mut self, lot: Lot) {
        if lot.sats == 0 && lot.cost.is_zero() {
            return;
        }
        if self.method == Method::Average {
            match &mut self.avg {
                Some(a) => {
                    a.sats += lot.sats;
                    a.cost += lot.cost;
                    a.acquired = a.acquired.min(lot.acquired);
                    a.market_priced |= lot.market_priced;
                }
                None => self.avg = Some(lot),
            }
            return;
        }
        // Merge with a piece under the same key until the key is free: a merged piece's key
        // (HIFO: its unit cost) can equal another piece's, and an insert must never replace.
        let mut lot = lot;
        loop {
            let k = self.key(&lot);
            match self.lots.remove(&k) {
                Some(e) => {
                    lot = Lot {
                        sats: e.sats + lot.sats,
                        cost: e.cost + lot.cost,
                        market_priced: e.market_priced || lot.market_priced,
                        ..e
                    };
                }
                None => {
                    self.lots.insert(k, lot);
                    return;
                }
            }
        }
    }

    /// Takes `sats` out in the method's order. Returns the lots taken and the sats that no
    /// lot covered (0 when the books are complete).
    pub fn take(&mut self, mut sats: u64) -> (Vec<Lot>, u64) {
        let mut out = Vec::new();
        if self.method == Method::Average {
            if let Some(a) = &mut self.avg {
                let t = a.split_off(sats.min(a.sats));
                sats -= t.sats;
                out.push(t);
                if a.sats == 0 {
                    // Leftover cost of an emptied pool goes with the last piece taken.
                    if let Some(last) = out.last_mut() {
                        last.cost += a.cost;
                    }
                    self.avg = None;
                }
            }
            return (out, sats);
        }
        while sats > 0 {
            let entry = match self.method {
                Method::Fifo => self.lots.pop_first(),
                _ => self.lots.pop_last(),
            };
            let Some((_, mut lot)) = entry else { break };
            if lot.sats <= sats {
                sats -= lot.sats;
                out.push(lot);
            } else {
                let t = lot.split_off(sats);
                sats = 0;
                out.push(t);
                self.push(lot);
            }
        }
        (out, sats)
    }

    /// Adds cost without sats to the newest lot (see [`FeeRule::Capitalize`]). Returns false
    /// when the pool is empty.
    pub fn add_cost(&mut self, cost: Decimal) -> bool {
        if let Some(a) = &mut self.avg {
            a.cost += cost;
            return true;
        }
        let newest = self
            .lots
            .iter()
            .max_by_key(|(_, l)| (l.acquired, l.seq))
            .map(|(k, _)| *k);
        match newest.and_then(|k| self.lots.remove(&k)) {
            Some(mut l) => {
                l.cost += cost;
                self.push(l);
                true
            }
            None => false,
        }
    }

    /// The lots, in the method's order of taking.
    pub fn lots(&self) -> Vec<Lot> {
        if let Some(a) = &self.avg {
            return vec![a.clone()];
        }
        match self.method {
            Method::Fifo => self.lots.values().cloned().collect(),
            _ => self.lots.values().rev().cloned().collect(),
        }
    }

    /// Total sats.
    pub fn sats(&self) -> u64 {
        self.avg.as_ref().map_or(0, |a| a.sats) + self.lots.values().map(|l| l.sats).sum::<u64>()
    }

    /// Total cost.
    pub fn cost(&self) -> Decimal {
        self.avg.as_ref().map_or(Decimal::ZERO, |a| a.cost)
            + self.lots.values().map(|l| l.cost).sum::<Decimal>()
    }
}

/// One entity's part of one transaction, as the lot engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotEntry {
    /// The transaction.
    pub txid: Txid,
    /// Entity id.
    pub entity: i64,
    /// Day of the block.
    pub date: Date,
    /// Sats acquired from outside.
    pub acquired: u64,
    /// Their cost.
    pub cost: Decimal,
    /// Cost is the market price, not a recorded amount.
    pub market_priced: bool,
    /// Sats disposed of.
    pub disposed: u64,
    /// Proceeds of the disposal.
    pub proceeds: Decimal,
    /// Fee sats paid.
    pub fee: u64,
    /// Net internal flow (positive: coins came from another entity of the state).
    pub internal_net: i64,
}

/// Why a gain was realized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RealizedKind {
    /// A disposal.
    Disposal,
    /// A fee under [`FeeRule::Realize`].
    Fee,
}

/// A realized gain or loss.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Realized {
    /// The transaction.
    pub txid: Txid,
    /// Entity id.
    pub entity: i64,
    /// Day.
    #[serde(serialize_with = "ser_date")]
    pub date: Date,
    /// Disposal or fee.
    pub kind: RealizedKind,
    /// Sats.
    pub sats: u64,
    /// Proceeds.
    pub proceeds: Decimal,
    /// Cost basis of the sats.
    pub cost: Decimal,
    /// Proceeds − cost.
    pub gain: Decimal,
}

/// The lot engine: one pool per entity, fed transaction by transaction in chain order.
#[derive(Debug, Clone)]
pub struct Engine {
    method: Method,
    fee_rule: FeeRule,
    pools: BTreeMap<i64, Pool>,
    seq: u64,
    /// Realized gains so far, in order.
    pub realized: Vec<Realized>,
    /// Sats taken that no lot covered (0 when the history is complete).
    pub uncovered_sats: u64,
}

impl Engine {
    /// A new engine.
    pub fn new(method: Method, fee_rule: FeeRule) -> Engine {
        Engine {
            method,
            fee_rule,
            pools: BTreeMap::new(),
            seq: 0,
            realized: Vec::new(),
            uncovered_sats: 0,
        }
    }

    fn pool(&mut self, e: i64) -> &mut Pool {
        let m = self.method;
        self.pools.entry(e).or_insert_with(|| Pool::new(m))
    }

    fn take(&mut self, e: i64, sats: u64) -> Vec<Lot> {
        let (lots, short) = self.pool(e).take(sats);
        self.uncovered_sats += short;
        lots
    }

    /// Applies one transaction's entries (every entity it touches).
    pub fn apply_tx(&mut self, entries: &[LotEntry]) {
        let mut bag: Vec<Lot> = Vec::new();
        let mut pending_fee_cost: Vec<(i64, Decimal)> = Vec::new();
        // Fees.
        for en in entries.iter().filter(|e| e.fee > 0) {
            let lots = self.take(en.entity, en.fee);
            let cost: Decimal = lots.iter().map(|l| l.cost).sum();
            match self.fee_rule {
                FeeRule::Realize => self.realized.push(Realized {
                    txid: en.txid,
                    entity: en.entity,
                    date: en.date,
                    kind: RealizedKind::Fee,
                    sats: en.fee,
                    proceeds: Decimal::ZERO,
                    cost,
                    gain: -cost,
                }),
                FeeRule::Capitalize => pending_fee_cost.push((en.entity, cost)),
            }
        }
        // Disposals.
        for en in entries.iter().filter(|e| e.disposed > 0) {
            let lots = self.take(en.entity, en.disposed);
            let mut cost: Decimal = lots.iter().map(|l| l.cost).sum();
            if let Some(p) = pending_fee_cost.iter_mut().find(|(e, _)| *e == en.entity) {
                cost += p.1;
                p.1 = Decimal::ZERO;
            }
            self.realized.push(Realized {
                txid: en.txid,
                entity: en.entity,
                date: en.date,
                kind: RealizedKind::Disposal,
                sats: en.disposed,
                proceeds: en.proceeds,
                cost,
                gain: en.proceeds - cost,
            });
        }
        // Internal transfers out, into the bag.
        for en in entries.iter().filter(|e| e.internal_net < 0) {
            let lots = self.take(en.entity, en.internal_net.unsigned_abs());
            bag.extend(lots);
            if let Some(p) = pending_fee_cost.iter_mut().find(|(e, _)| *e == en.entity) {
                if let Some(first) = bag.last_mut() {
                    first.cost += p.1;
                    p.1 = Decimal::ZERO;
                }
            }
        }
        // Fee cost with nowhere else to go stays with the entity.
        for (e, c) in pending_fee_cost {
            if c.is_zero() {
                continue;
            }
            if !self.pool(e).add_cost(c) {
                let date = entries.first().map_or(Date::MIN, |x| x.date);
                let txid = entries.first().map(|x| x.txid);
                if let Some(txid) = txid {
                    self.realized.push(Realized {
                        txid,
                        entity: e,
                        date,
                        kind: RealizedKind::Fee,
                        sats: 0,
                        proceeds: Decimal::ZERO,
                        cost: c,
                        gain: -c,
                    });
                }
            }
        }
        // Internal transfers in, filled from the bag in order.
        bag.reverse();
        for en in entries.iter().filter(|e| e.internal_net > 0) {
            let mut need = en.internal_net as u64;
            while need > 0 {
                let Some(mut lot) = bag.pop() else { break };
                if lot.sats <= need {
                    need -= lot.sats;
                    self.pool(en.entity).push(lot);
                } else {
                    let t = lot.split_off(need);
                    need = 0;
                    self.pool(en.entity).push(t);
                    bag.push(lot);
                }
            }
            self.uncovered_sats += need;
        }
        // Leftover cost in the bag (rounding, or fee cost on zero-sat pieces).
        let left: Decimal = bag.iter().map(|l| l.cost).sum();
        if !left.is_zero() {
            if let Some(en) = entries.iter().find(|e| e.internal_net > 0) {
                let e = en.entity;
                self.pool(e).add_cost(left);
            }
        }
        // Acquisitions.
        for en in entries.iter().filter(|e| e.acquired > 0) {
            self.seq += 1;
            let lot = Lot {
                seq: self.seq,
                acquired: en.date,
                sats: en.acquired,
                cost: en.cost,
                market_priced: en.market_priced,
            };
            self.pool(en.entity).push(lot);
        }
    }

    /// The entity's pool, if it ever held anything.
    pub fn pool_of(&self, entity: i64) -> Option<&Pool> {
        self.pools.get(&entity)
    }

    /// Every pool by entity id.
    pub fn pools(&self) -> &BTreeMap<i64, Pool> {
        &self.pools
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn d(day: u8) -> Date {
        Date::from_calendar_date(2025, time::Month::January, day).unwrap()
    }

    #[test]
    fn split_keeps_cost() {
        let mut l = Lot {
            seq: 1,
            acquired: d(1),
            sats: 3,
            cost: Decimal::from(10),
            market_priced: false,
        };
        let t = l.split_off(1);
        assert_eq!(t.cost + l.cost, Decimal::from(10));
        assert_eq!(t.sats + l.sats, 3);
    }

    #[test]
    fn fifo_engine_basic() {
        let mut e = Engine::new(Method::Fifo, FeeRule::Realize);
        let txid = Txid::all_zeros();
        let acq = |day, sats, cost: i64| LotEntry {
            txid,
            entity: 1,
            date: d(day),
            acquired: sats,
            cost: Decimal::from(cost),
            market_priced: false,
            disposed: 0,
            proceeds: Decimal::ZERO,
            fee: 0,
            internal_net: 0,
        };
        e.apply_tx(&[acq(1, 100, 1000)]);
        e.apply_tx(&[acq(2, 100, 2000)]);
        e.apply_tx(&[LotEntry {
            disposed: 150,
            proceeds: Decimal::from(4500),
            ..acq(3, 0, 0)
        }]);
        assert_eq!(e.realized[0].cost, Decimal::from(2000));
        assert_eq!(e.realized[0].gain, Decimal::from(2500));
        assert_eq!(e.pool_of(1).unwrap().sats(), 50);
    }
}
