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
    /// Specific identification: each acquired UTXO is a lot, and a transaction's inputs are
    /// the lots it uses (see [`SpecificEngine`]). Needs the outpoints, which [`Engine`] does
    /// not see; fed to [`Engine`] it behaves as FIFO.
    Specific,
}

impl Method {
    /// Every method over fungible pools ([`Engine`]); [`Method::Specific`] needs outpoints.
    pub const ALL: [Method; 4] = [Method::Fifo, Method::Lifo, Method::Hifo, Method::Average];

    /// Name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Fifo => "fifo",
            Method::Lifo => "lifo",
            Method::Hifo => "hifo",
            Method::Average => "average",
            Method::Specific => "specific",
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
            "specific" | "specific-id" => Ok(Method::Specific),
            other => Err(format!(
                "unknown method {other:?}: use fifo, lifo, hifo, average or specific"
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
    /// Unit cost (cost per sat) when acquired: HIFO's order. Pieces of a split lot keep it,
    /// so ordering never divides again.
    pub unit_cost: Decimal,
}

impl Lot {
    /// A new lot from an acquisition.
    pub fn new(seq: u64, acquired: Date, sats: u64, cost: Decimal, market_priced: bool) -> Lot {
        let unit_cost = if sats == 0 {
            Decimal::ZERO
        } else {
            cost / Decimal::from(sats)
        };
        Lot {
            seq,
            acquired,
            sats,
            cost,
            market_priced,
            unit_cost,
        }
    }
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
            unit_cost: self.unit_cost,
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
    /// (sats, cost, sats costed at market) of every lot held, kept as lots come and go so a
    /// sub-ledger can read them after every transaction without walking the lots.
    tot: (u64, Decimal, u64),
}

impl Pool {
    /// An empty pool.
    pub fn new(method: Method) -> Pool {
        Pool {
            method,
            lots: BTreeMap::new(),
            avg: None,
            tot: (0, Decimal::ZERO, 0),
        }
    }

    fn count_in(&mut self, l: &Lot) {
        self.tot.0 += l.sats;
        self.tot.1 += l.cost;
        if l.market_priced {
            self.tot.2 += l.sats;
        }
    }

    fn count_out(&mut self, l: &Lot) {
        self.tot.0 -= l.sats;
        self.tot.1 -= l.cost;
        if l.market_priced {
            self.tot.2 -= l.sats;
        }
    }

    /// (sats, cost, sats costed at market) of the pool, kept up to date as lots come and go
    /// (equal to ([`Pool::sats`], [`Pool::cost`], [`Pool::market_priced_sats`]); tested).
    pub fn totals(&self) -> (u64, Decimal, u64) {
        self.tot
    }

    fn key(&self, l: &Lot) -> Key {
        let day = i64::from(l.acquired.to_julian_day());
        match self.method {
            Method::Hifo => (l.unit_cost, -day, -(l.seq as i64)),
            _ => (Decimal::ZERO, day, l.seq as i64),
        }
    }

    /// Adds a lot (merging with a lot of the same acquisition already there).
    pub fn push(&mut self, lot: Lot) {
        if lot.sats == 0 && lot.cost.is_zero() {
            return;
        }
        if self.method == Method::Average {
            let merged = match self.avg.take() {
                Some(mut a) => {
                    self.count_out(&a);
                    a.sats += lot.sats;
                    a.cost += lot.cost;
                    a.acquired = a.acquired.min(lot.acquired);
                    a.market_priced |= lot.market_priced;
                    a
                }
                None => lot,
            };
            self.count_in(&merged);
            self.avg = Some(merged);
            return;
        }
        // Merge with a piece under the same key until the key is free: a merged piece's key
        // (HIFO: its unit cost) can equal another piece's, and an insert must never replace.
        let mut lot = lot;
        loop {
            let k = self.key(&lot);
            match self.lots.remove(&k) {
                Some(e) => {
                    self.count_out(&e);
                    lot = Lot {
                        sats: e.sats + lot.sats,
                        cost: e.cost + lot.cost,
                        market_priced: e.market_priced || lot.market_priced,
                        ..e
                    };
                }
                None => {
                    self.count_in(&lot);
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
            if let Some(mut a) = self.avg.take() {
                self.count_out(&a);
                let t = a.split_off(sats.min(a.sats));
                sats -= t.sats;
                out.push(t);
                if a.sats == 0 {
                    // Leftover cost of an emptied pool goes with the last piece taken.
                    if let Some(last) = out.last_mut() {
                        last.cost += a.cost;
                    }
                } else {
                    self.count_in(&a);
                    self.avg = Some(a);
                }
            }
            return (out, sats);
        }
        while sats > 0 {
            let entry = match self.method {
                Method::Fifo | Method::Specific => self.lots.pop_first(),
                _ => self.lots.pop_last(),
            };
            let Some((_, mut lot)) = entry else { break };
            self.count_out(&lot);
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
            self.tot.1 += cost;
            return true;
        }
        let newest = self
            .lots
            .iter()
            .max_by_key(|(_, l)| (l.acquired, l.seq))
            .map(|(k, _)| *k);
        match newest.and_then(|k| self.lots.remove(&k)) {
            Some(mut l) => {
                self.count_out(&l);
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
            Method::Fifo | Method::Specific => self.lots.values().cloned().collect(),
            _ => self.lots.values().rev().cloned().collect(),
        }
    }

    /// Total sats.
    pub fn sats(&self) -> u64 {
        self.avg.as_ref().map_or(0, |a| a.sats) + self.lots.values().map(|l| l.sats).sum::<u64>()
    }

    /// Sats in lots costed at the market price (no record gave their cost).
    pub fn market_priced_sats(&self) -> u64 {
        let a = self
            .avg
            .as_ref()
            .filter(|a| a.market_priced)
            .map_or(0, |a| a.sats);
        a + self
            .lots
            .values()
            .filter(|l| l.market_priced)
            .map(|l| l.sats)
            .sum::<u64>()
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
            let lot = Lot::new(self.seq, en.date, en.acquired, en.cost, en.market_priced);
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

/// The part of `total` that `part` of `whole` carries, rounded to 10 decimals.
fn share(total: Decimal, part: u64, whole: u64) -> Decimal {
    if whole == 0 || part >= whole {
        return total;
    }
    (total * Decimal::from(part) / Decimal::from(whole)).round_dp(10)
}

/// Cost basis held by one UTXO under specific identification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UtxoLot {
    /// Entity whose wallet holds it.
    pub entity: i64,
    /// Its value.
    pub sats: u64,
    /// Its cost basis.
    pub cost: Decimal,
    /// Earliest acquisition day of the coins in it.
    #[serde(serialize_with = "ser_date")]
    pub acquired: Date,
    /// Sats of it whose cost is a market price, not a recorded amount.
    pub market_priced_sats: u64,
}

/// One transaction as specific identification sees it: the watched outputs it spends and
/// creates, and each entity's movement figures.
#[derive(Debug, Clone, Copy)]
pub struct SpecificTx<'a> {
    /// The transaction.
    pub txid: Txid,
    /// Day of its block.
    pub date: Date,
    /// Watched outputs spent: outpoint, entity, value.
    pub spent: &'a [(bitcoin::OutPoint, i64, u64)],
    /// Watched outputs created: vout, entity, value.
    pub created: &'a [(u32, i64, u64)],
    /// Each entity's figures (as for [`Engine::apply_tx`]).
    pub entries: &'a [LotEntry],
}

#[derive(Default)]
struct Basis {
    cost: Decimal,
    market: u64,
    sats: u64,
    date: Option<Date>,
}

impl Basis {
    fn add(&mut self, cost: Decimal, sats: u64, market: u64, date: Date) {
        self.cost += cost;
        self.sats += sats;
        self.market += market;
        self.date = Some(self.date.map_or(date, |d| d.min(date)));
    }

    /// Takes `part` of `whole` sats' worth out of this basis (the last taker gets the rest).
    fn take(&mut self, part: u64, whole: u64) -> (Decimal, u64) {
        let c = share(self.cost, part, whole);
        let m = if whole == 0 {
            self.market
        } else {
            ((u128::from(self.market) * u128::from(part)) / u128::from(whole)) as u64
        };
        self.cost -= c;
        self.market -= m.min(self.market);
        (c, m)
    }
}

/// Specific identification on chain: every acquired UTXO is a lot, and a transaction uses the
/// lots of exactly the outpoints it spends. Per entity, the cost of its spent outpoints is
/// shared pro rata by value over what leaves them: the fee, the disposal, coins carried to
/// another entity of the state, and its own change; each created output then holds, pro rata
/// by value, its entity's share of change, carried coins and new acquisitions. Splits round
/// to 10 decimals and the last share takes the remainder, so cost is never created or lost.
#[derive(Debug, Clone)]
pub struct SpecificEngine {
    fee_rule: FeeRule,
    utxos: std::collections::HashMap<bitcoin::OutPoint, UtxoLot>,
    /// (sats, cost, sats costed at market) held per entity, kept as UTXOs come and go.
    held: BTreeMap<i64, (u64, Decimal, u64)>,
    /// Realized gains not yet taken (drain after each transaction to keep memory flat).
    pub realized: Vec<Realized>,
    /// Sats spent from outpoints that hold no lot (history started later).
    pub uncovered_sats: u64,
}

impl SpecificEngine {
    /// A new engine.
    pub fn new(fee_rule: FeeRule) -> SpecificEngine {
        SpecificEngine {
            fee_rule,
            utxos: std::collections::HashMap::new(),
            held: BTreeMap::new(),
            realized: Vec::new(),
            uncovered_sats: 0,
        }
    }

    /// The lot an unspent output holds.
    pub fn utxo(&self, op: &bitcoin::OutPoint) -> Option<&UtxoLot> {
        self.utxos.get(op)
    }

    /// (sats, cost, sats costed at market) held by entities `in_scope`.
    pub fn totals(&self, in_scope: impl Fn(i64) -> bool) -> (u64, Decimal, u64) {
        let mut t = (0u64, Decimal::ZERO, 0u64);
        for l in self.utxos.values().filter(|l| in_scope(l.entity)) {
            t.0 += l.sats;
            t.1 += l.cost;
            t.2 += l.market_priced_sats;
        }
        t
    }

    /// (sats, cost, sats costed at market) held by one entity, kept up to date as UTXOs
    /// come and go (equal to [`SpecificEngine::totals`] of that entity; tested).
    pub fn held_by(&self, entity: i64) -> (u64, Decimal, u64) {
        self.held
            .get(&entity)
            .copied()
            .unwrap_or((0, Decimal::ZERO, 0))
    }

    fn hold(&mut self, op: bitcoin::OutPoint, l: UtxoLot) {
        let h = self.held.entry(l.entity).or_insert((0, Decimal::ZERO, 0));
        h.0 += l.sats;
        h.1 += l.cost;
        h.2 += l.market_priced_sats;
        if let Some(old) = self.utxos.insert(op, l) {
            self.release(&old);
        }
    }

    fn release(&mut self, l: &UtxoLot) {
        if let Some(h) = self.held.get_mut(&l.entity) {
            h.0 -= l.sats;
            h.1 -= l.cost;
            h.2 -= l.market_priced_sats;
        }
    }

    /// Applies one transaction.
    pub fn apply_tx(&mut self, tx: SpecificTx<'_>) {
        let mut inputs: BTreeMap<i64, Basis> = BTreeMap::new();
        for (op, e, v) in tx.spent {
            let b = inputs.entry(*e).or_default();
            match self.utxos.remove(op) {
                Some(l) => {
                    self.release(&l);
                    b.add(l.cost, l.sats, l.market_priced_sats, l.acquired)
                }
                None => {
                    self.uncovered_sats += v;
                    b.add(Decimal::ZERO, *v, 0, tx.date);
                }
            }
        }
        let mut outputs: BTreeMap<i64, Basis> = BTreeMap::new();
        let mut bag = Basis::default();
        let mut leftover_fee: Vec<(i64, Decimal)> = Vec::new();
        for en in tx.entries {
            let Some(b) = inputs.get_mut(&en.entity) else {
                continue;
            };
            let whole = b.sats;
            let date = b.date.unwrap_or(tx.date);
            let out = en.internal_net.min(0).unsigned_abs();
            let (fee_cost, _) = b.take(en.fee.min(whole), whole);
            let left = whole - en.fee.min(whole);
            let (mut disp_cost, _) = b.take(en.disposed.min(left), left);
            let left = left - en.disposed.min(left);
            let (carry_cost, carry_market) = b.take(out.min(left), left);
            let mut carry_cost = carry_cost;
            let left = left - out.min(left);
            match self.fee_rule {
                FeeRule::Realize => {
                    if en.fee > 0 {
                        self.realized.push(Realized {
                            txid: tx.txid,
                            entity: en.entity,
                            date: tx.date,
                            kind: RealizedKind::Fee,
                            sats: en.fee,
                            proceeds: Decimal::ZERO,
                            cost: fee_cost,
                            gain: -fee_cost,
                        });
                    }
                }
                FeeRule::Capitalize => {
                    if en.disposed > 0 {
                        disp_cost += fee_cost;
                    } else if out > 0 {
                        carry_cost += fee_cost;
                    } else if left > 0 {
                        b.cost += fee_cost;
                    } else if !fee_cost.is_zero() {
                        leftover_fee.push((en.entity, fee_cost));
                    }
                }
            }
            if en.disposed > 0 {
                self.realized.push(Realized {
                    txid: tx.txid,
                    entity: en.entity,
                    date: tx.date,
                    kind: RealizedKind::Disposal,
                    sats: en.disposed,
                    proceeds: en.proceeds,
                    cost: disp_cost,
                    gain: en.proceeds - disp_cost,
                });
            }
            if out > 0 {
                bag.add(carry_cost, out, carry_market, date);
            }
            // What is left is the entity's change: it stays with the entity's new outputs.
            let (change_cost, change_market) = (b.cost, b.market);
            outputs
                .entry(en.entity)
                .or_default()
                .add(change_cost, left, change_market, date);
            b.cost = Decimal::ZERO;
            b.market = 0;
        }
        // Coins carried between entities, shared over the receivers by what each got.
        let receivers: u64 = tx
            .entries
            .iter()
            .map(|e| e.internal_net.max(0) as u64)
            .sum();
        let mut recv_left = receivers;
        let bag_date = bag.date.unwrap_or(tx.date);
        for en in tx.entries.iter().filter(|e| e.internal_net > 0) {
            let n = en.internal_net as u64;
            let (c, m) = bag.take(n, recv_left);
            recv_left -= n;
            outputs.entry(en.entity).or_default().add(c, n, m, bag_date);
        }
        // New acquisitions.
        for en in tx.entries.iter().filter(|e| e.acquired > 0) {
            let m = if en.market_priced { en.acquired } else { 0 };
            outputs
                .entry(en.entity)
                .or_default()
                .add(en.cost, en.acquired, m, tx.date);
        }
        // Each created output takes its entity's basis pro rata by value.
        let mut value_of_entity: BTreeMap<i64, u64> = BTreeMap::new();
        for (_, e, v) in tx.created {
            *value_of_entity.entry(*e).or_default() += v;
        }
        for (vout, e, v) in tx.created {
            let Some(b) = outputs.get_mut(e) else {
                self.hold(
                    bitcoin::OutPoint {
                        txid: tx.txid,
                        vout: *vout,
                    },
                    UtxoLot {
                        entity: *e,
                        sats: *v,
                        cost: Decimal::ZERO,
                        acquired: tx.date,
                        market_priced_sats: 0,
                    },
                );
                continue;
            };
            let whole = value_of_entity.get(e).copied().unwrap_or(*v);
            let (c, m) = b.take(*v, whole);
            if let Some(w) = value_of_entity.get_mut(e) {
                *w -= v;
            }
            self.hold(
                bitcoin::OutPoint {
                    txid: tx.txid,
                    vout: *vout,
                },
                UtxoLot {
                    entity: *e,
                    sats: *v,
                    cost: c,
                    acquired: b.date.unwrap_or(tx.date),
                    market_priced_sats: m.min(*v),
                },
            );
        }
        // Cost with no output to hold it (a fee under capitalize with nothing left, or an
        // entity that received nothing back): realized, so it is not lost.
        for (e, b) in &outputs {
            if !b.cost.is_zero() && !value_of_entity.contains_key(e) {
                leftover_fee.push((*e, b.cost));
            }
        }
        for (e, c) in leftover_fee {
            self.realized.push(Realized {
                txid: tx.txid,
                entity: e,
                date: tx.date,
                kind: RealizedKind::Fee,
                sats: 0,
                proceeds: Decimal::ZERO,
                cost: c,
                gain: -c,
            });
        }
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
        let mut l = Lot::new(1, d(1), 3, Decimal::from(10), false);
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

    fn op(n: u8, vout: u32) -> bitcoin::OutPoint {
        bitcoin::OutPoint {
            txid: Txid::from_byte_array([n; 32]),
            vout,
        }
    }

    fn entry(n: u8, entity: i64, day: u8) -> LotEntry {
        LotEntry {
            txid: Txid::from_byte_array([n; 32]),
            entity,
            date: d(day),
            acquired: 0,
            cost: Decimal::ZERO,
            market_priced: false,
            disposed: 0,
            proceeds: Decimal::ZERO,
            fee: 0,
            internal_net: 0,
        }
    }

    const BTC: u64 = 100_000_000;

    /// Hand-worked: UTXO A 1 BTC for 100 (day 1), B 1 BTC for 300 (day 2), C 1 BTC for 200
    /// (day 3). Day 4 sells 1.5 BTC for 600 spending B and C, 0.5 BTC change. The lots are
    /// the outpoints spent: cost 500 × 1.5/2 = 375, gain 225 (FIFO would say 250, LIFO 350,
    /// HIFO 400, average 300); the change keeps 125, A keeps 100.
    #[test]
    fn specific_identification_uses_the_outpoints_spent() {
        let mut e = SpecificEngine::new(FeeRule::Realize);
        for (n, day, cost) in [(1u8, 1u8, 100i64), (2, 2, 300), (3, 3, 200)] {
            e.apply_tx(SpecificTx {
                txid: Txid::from_byte_array([n; 32]),
                date: d(day),
                spent: &[],
                created: &[(0, 1, BTC)],
                entries: &[LotEntry {
                    acquired: BTC,
                    cost: Decimal::from(cost),
                    ..entry(n, 1, day)
                }],
            });
        }
        e.apply_tx(SpecificTx {
            txid: Txid::from_byte_array([4; 32]),
            date: d(4),
            spent: &[(op(2, 0), 1, BTC), (op(3, 0), 1, BTC)],
            created: &[(1, 1, BTC / 2)],
            entries: &[LotEntry {
                disposed: 3 * BTC / 2,
                proceeds: Decimal::from(600),
                ..entry(4, 1, 4)
            }],
        });
        assert_eq!(e.realized.len(), 1);
        assert_eq!(e.realized[0].cost, Decimal::from(375));
        assert_eq!(e.realized[0].gain, Decimal::from(225));
        let change = e.utxo(&op(4, 1)).unwrap();
        assert_eq!((change.sats, change.cost), (BTC / 2, Decimal::from(125)));
        assert_eq!(
            change.acquired,
            d(2),
            "the change keeps the older coins' day"
        );
        assert_eq!(e.utxo(&op(1, 0)).unwrap().cost, Decimal::from(100));
        assert_eq!(e.totals(|_| true), (3 * BTC / 2, Decimal::from(225), 0));
    }

    /// Day 5: entity 1 spends A (1 BTC, cost 100) to entity 2 (0.6 BTC) and itself (0.3999
    /// BTC) with a 0.0001 BTC fee. Realize: the fee costs 100 × 0.0001 = 0.01 (a realized
    /// loss); 0.6 BTC carry 60 to entity 2, the change keeps 39.99; nothing else realized.
    /// Capitalize: the fee's cost goes with the carried coins (60.01).
    #[test]
    fn specific_transfers_carry_the_spent_lots() {
        for (rule, carried, fee_loss) in [
            (FeeRule::Realize, Decimal::from(60), Decimal::new(-1, 2)),
            (FeeRule::Capitalize, Decimal::new(6001, 2), Decimal::ZERO),
        ] {
            let mut e = SpecificEngine::new(rule);
            e.apply_tx(SpecificTx {
                txid: Txid::from_byte_array([1; 32]),
                date: d(1),
                spent: &[],
                created: &[(0, 1, BTC)],
                entries: &[LotEntry {
                    acquired: BTC,
                    cost: Decimal::from(100),
                    ..entry(1, 1, 1)
                }],
            });
            let fee = 10_000;
            e.apply_tx(SpecificTx {
                txid: Txid::from_byte_array([5; 32]),
                date: d(5),
                spent: &[(op(1, 0), 1, BTC)],
                created: &[(0, 2, 60_000_000), (1, 1, 39_990_000)],
                entries: &[
                    LotEntry {
                        fee,
                        internal_net: -60_000_000,
                        ..entry(5, 1, 5)
                    },
                    LotEntry {
                        internal_net: 60_000_000,
                        ..entry(5, 2, 5)
                    },
                ],
            });
            let to2 = e.utxo(&op(5, 0)).unwrap();
            assert_eq!((to2.entity, to2.cost), (2, carried), "{rule:?}");
            assert_eq!(to2.acquired, d(1), "carried coins keep their day");
            assert_eq!(e.utxo(&op(5, 1)).unwrap().cost, Decimal::new(3999, 2));
            let loss: Decimal = e.realized.iter().map(|r| r.gain).sum();
            assert_eq!(loss, fee_loss, "{rule:?}");
            let (sats, cost, _) = e.totals(|_| true);
            assert_eq!(sats, BTC - fee);
            assert_eq!(cost - fee_loss, Decimal::from(100), "cost is conserved");
        }
    }
}
