//! Classification: what each movement is, from the chain, a rules file, off-chain records
//! and manual overrides, in that order of increasing precedence.
//!
//! 1. The chain: coinbase → mining; value between the state's own wallets → internal
//!    (consolidation, split, intra-state); otherwise unclassified acquisition or disposal.
//! 2. Rules (TOML): counterparty addresses → a kind (an exchange's address → purchase, a
//!    pool's payout address → mining).
//! 3. Off-chain records matched to the movement: by txid, else by amount and date within a
//!    tolerance. The record's kind wins over rules, and its fiat amount becomes the cost or
//!    proceeds.
//! 4. A manual override (`movements classify`), which carries a reason and is kept in history.
//!
//! A classification never changes a movement's class: an acquisition can only be given an
//! acquisition kind, and so on, because the class is a fact of the chain.
//!
//! Matching is independent of the order records were imported: records are matched in a
//! canonical order (date, amount, kind, reference, id-free fingerprint) against movements in
//! chain order.

use std::collections::{BTreeMap, HashMap, HashSet};

use bitcoin::Txid;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::movement::{Class, Kind, Movement};

/// A rules file that does not parse or says something impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {msg}")]
pub struct RulesError {
    /// File name.
    pub file: String,
    /// What is wrong.
    pub msg: String,
}

/// One counterparty rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterpartyRule {
    /// Display name (e.g. "Bitfinex", "Pool X payout").
    pub name: String,
    /// Addresses of the counterparty.
    pub addresses: Vec<String>,
    /// Kind of value coming from it (an acquisition kind).
    #[serde(default)]
    pub incoming: Option<String>,
    /// Kind of value going to it (a disposal kind).
    #[serde(default)]
    pub outgoing: Option<String>,
}

/// A rules file: `[[counterparty]]` tables.
///
/// ```toml
/// [[counterparty]]
/// name = "Bitfinex"
/// addresses = ["bc1q..."]
/// incoming = "purchase"
/// outgoing = "sale"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Counterparty rules.
    #[serde(default)]
    pub counterparty: Vec<CounterpartyRule>,
}

/// Rules compiled for lookup.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    incoming: HashMap<String, (Kind, String)>,
    outgoing: HashMap<String, (Kind, String)>,
}

impl Rules {
    /// Parses and checks a rules file.
    pub fn parse(file: &str, text: &str) -> Result<Rules, RulesError> {
        let err = |msg: String| RulesError {
            file: file.to_string(),
            msg,
        };
        let parsed: RulesFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut r = Rules::default();
        for (i, c) in parsed.counterparty.iter().enumerate() {
            let at = format!("counterparty #{} ({:?})", i + 1, c.name);
            if c.incoming.is_none() && c.outgoing.is_none() {
                return Err(err(format!("{at}: give incoming and/or outgoing")));
            }
            let inc = c
                .incoming
                .as_deref()
                .map(|k| {
                    kind_of_class(k, Class::Acquisition)
                        .map_err(|m| err(format!("{at}, incoming: {m}")))
                })
                .transpose()?;
            let out = c
                .outgoing
                .as_deref()
                .map(|k| {
                    kind_of_class(k, Class::Disposal)
                        .map_err(|m| err(format!("{at}, outgoing: {m}")))
                })
                .transpose()?;
            for a in &c.addresses {
                let a = a.trim().to_string();
                if let Some(k) = inc {
                    if r.incoming.insert(a.clone(), (k, c.name.clone())).is_some() {
                        return Err(err(format!("{at}: address {a} is listed twice")));
                    }
                }
                if let Some(k) = out {
                    if r.outgoing.insert(a.clone(), (k, c.name.clone())).is_some() {
                        return Err(err(format!("{at}: address {a} is listed twice")));
                    }
                }
            }
        }
        Ok(r)
    }

    /// The kind and counterparty name a rule gives a movement, if any rule applies.
    pub fn apply(&self, m: &Movement) -> Option<(Kind, String)> {
        let map = match m.chain_kind.class() {
            Class::Acquisition if !m.coinbase => &self.incoming,
            Class::Disposal => &self.outgoing,
            _ => return None,
        };
        m.counterparties.iter().find_map(|a| map.get(a).cloned())
    }
}

fn kind_of_class(s: &str, class: Class) -> Result<Kind, String> {
    let k: Kind = s.parse()?;
    if k.class() != class {
        return Err(format!("{k} is not an {} kind", class.as_str()));
    }
    Ok(k)
}

/// What an off-chain record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// A purchase.
    Purchase,
    /// A seizure or forfeiture order.
    Seizure,
    /// A donation received.
    Donation,
    /// A mining payout.
    Mining,
    /// A sale.
    Sale,
    /// A payment made.
    Payment,
    /// Coins returned to victims.
    ReturnToVictims,
    /// Holdings at a custodian, not visible on chain.
    Custodial,
}

impl RecordKind {
    /// The movement kind a matched record gives (`None` for custodial holdings).
    pub fn movement_kind(self) -> Option<Kind> {
        Some(match self {
            RecordKind::Purchase => Kind::Purchase,
            RecordKind::Seizure => Kind::Seizure,
            RecordKind::Donation => Kind::Donation,
            RecordKind::Mining => Kind::Mining,
            RecordKind::Sale => Kind::Sale,
            RecordKind::Payment => Kind::Payment,
            RecordKind::ReturnToVictims => Kind::ReturnToVictims,
            RecordKind::Custodial => return None,
        })
    }

    /// Name on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Purchase => "purchase",
            RecordKind::Seizure => "seizure",
            RecordKind::Donation => "donation",
            RecordKind::Mining => "mining",
            RecordKind::Sale => "sale",
            RecordKind::Payment => "payment",
            RecordKind::ReturnToVictims => "return-to-victims",
            RecordKind::Custodial => "custodial",
        }
    }
}

impl std::str::FromStr for RecordKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "purchase" => RecordKind::Purchase,
            "seizure" | "forfeiture" => RecordKind::Seizure,
            "donation" => RecordKind::Donation,
            "mining" => RecordKind::Mining,
            "sale" => RecordKind::Sale,
            "payment" => RecordKind::Payment,
            "return-to-victims" | "return" => RecordKind::ReturnToVictims,
            "custodial" => RecordKind::Custodial,
            other => {
                return Err(format!(
                    "unknown record kind {other:?}: use purchase, seizure, donation, mining, sale, payment, return-to-victims or custodial"
                ))
            }
        })
    }
}

/// An off-chain record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Store id (not used for matching).
    pub id: i64,
    /// What it records.
    pub kind: RecordKind,
    /// Entity code it belongs to, if given.
    pub entity: Option<String>,
    /// The day.
    #[serde(with = "date_str")]
    pub date: Date,
    /// Amount in sats.
    pub sats: u64,
    /// Fiat paid or received.
    pub fiat: Option<Decimal>,
    /// Currency of `fiat`.
    pub currency: Option<String>,
    /// Counterparty or custodian.
    pub counterparty: Option<String>,
    /// Reference (order number, court case).
    pub reference: Option<String>,
    /// Transaction id, when known.
    pub txid: Option<Txid>,
}

mod date_str {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(d: &time::Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::price::fmt_date(*d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<time::Date, D::Error> {
        let s = String::deserialize(d)?;
        crate::price::parse_date(&s).map_err(serde::de::Error::custom)
    }
}

impl Record {
    /// A key that identifies the record's content (not its id), for idempotent import and
    /// canonical ordering.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}",
            crate::price::fmt_date(self.date),
            self.kind.as_str(),
            self.sats,
            self.entity.as_deref().unwrap_or(""),
            self.fiat
                .map(|f| f.normalize().to_string())
                .unwrap_or_default(),
            self.currency.as_deref().unwrap_or(""),
            self.counterparty.as_deref().unwrap_or(""),
            self.reference.as_deref().unwrap_or(""),
            self.txid.map(|t| t.to_string()).unwrap_or_default(),
        )
    }
}

/// How close a record must be to a movement to match without a txid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchTolerance {
    /// Days either side of the record's date.
    pub days: i64,
    /// Relative amount difference allowed, in basis points (1/100 of a percent).
    pub amount_bp: u64,
}

impl Default for MatchTolerance {
    fn default() -> Self {
        MatchTolerance {
            days: 3,
            amount_bp: 50,
        }
    }
}

/// A manual classification, newest wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// The transaction.
    pub txid: Txid,
    /// The entity id.
    pub entity: i64,
    /// The kind given.
    pub kind: Kind,
    /// Why.
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
}

/// Where a movement's kind came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The chain alone.
    Chain,
    /// A rule.
    Rule,
    /// A matched off-chain record.
    Record,
    /// A manual override.
    Manual,
}

impl Source {
    /// The name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Chain => "chain",
            Source::Rule => "rule",
            Source::Record => "record",
            Source::Manual => "manual",
        }
    }
}

impl std::str::FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "chain" => Ok(Source::Chain),
            "rule" => Ok(Source::Rule),
            "record" => Ok(Source::Record),
            "manual" => Ok(Source::Manual),
            other => Err(format!("unknown classification source {other:?}")),
        }
    }
}

/// A movement with its final classification.
#[derive(Debug, Clone, Serialize)]
pub struct Classified {
    /// The movement.
    pub movement: Movement,
    /// Final kind.
    pub kind: Kind,
    /// Where it came from.
    pub source: Source,
    /// Rule counterparty name, override reason or record reference.
    pub note: Option<String>,
    /// Index into the records slice of the matched record.
    pub record: Option<usize>,
}

/// The outcome of classifying a ledger.
#[derive(Debug, Clone)]
pub struct Classification {
    /// Every movement, in chain order.
    pub movements: Vec<Classified>,
    /// Indices of records (not custodial) that matched no movement.
    pub unmatched_records: Vec<usize>,
}

/// The effective class of a movement: the one its amounts say.
pub fn movement_class(m: &Movement) -> Class {
    m.chain_kind.class()
}

fn abs_diff_days(a: Date, b: Date) -> i64 {
    (a - b).whole_days().abs()
}

/// Classifies every movement. `movements` must be in chain order; `records` in any order;
/// `overrides` newest last (only the newest per (txid, entity) counts); `entity_code` maps
/// entity ids to codes, `in_scope(record_entity, movement_entity)` says whether a record
/// naming an entity may match a movement of another (e.g. a child agency).
pub fn classify(
    movements: Vec<Movement>,
    rules: &Rules,
    records: &[Record],
    overrides: &[Override],
    tolerance: MatchTolerance,
    record_may_match: &dyn Fn(&Record, &Movement) -> bool,
) -> Classification {
    // Records in canonical order, independent of import order.
    let mut order: Vec<usize> = (0..records.len())
        .filter(|i| records[*i].kind != RecordKind::Custodial)
        .collect();
    order.sort_by_cached_key(|i| records[*i].fingerprint());
    let mut matched: HashMap<usize, usize> = HashMap::new(); // movement -> record
    let mut used: HashSet<usize> = HashSet::new();
    let mut by_txid: HashMap<Txid, Vec<usize>> = HashMap::new();
    for (i, m) in movements.iter().enumerate() {
        by_txid.entry(m.txid).or_default().push(i);
    }
    let mut by_date: BTreeMap<Date, Vec<usize>> = BTreeMap::new();
    for (i, m) in movements.iter().enumerate() {
        if matches!(m.chain_kind.class(), Class::Acquisition | Class::Disposal) {
            by_date.entry(m.date()).or_default().push(i);
        }
    }
    let class_ok = |r: &Record, m: &Movement| {
        r.kind
            .movement_kind()
            .is_some_and(|k| k.class() == m.chain_kind.class())
    };
    let amount_of = |m: &Movement| match m.chain_kind.class() {
        Class::Acquisition => m.acquired,
        _ => m.disposed,
    };
    // Pass 1: txid.
    for &ri in &order {
        let r = &records[ri];
        let Some(t) = r.txid else { continue };
        if let Some(cands) = by_txid.get(&t) {
            if let Some(&mi) = cands.iter().find(|&&mi| {
                !matched.contains_key(&mi)
                    && class_ok(r, &movements[mi])
                    && record_may_match(r, &movements[mi])
            }) {
                matched.insert(mi, ri);
                used.insert(ri);
            }
        }
    }
    // Pass 2: amount and date.
    for &ri in &order {
        if used.contains(&ri) {
            continue;
        }
        let r = &records[ri];
        if r.txid.is_some() {
            continue; // a record naming a txid matches that transaction or nothing
        }
        let lo = r.date - time::Duration::days(tolerance.days);
        let hi = r.date + time::Duration::days(tolerance.days);
        let mut best: Option<((i64, u64, usize), usize)> = None;
        for (_, ms) in by_date.range(lo..=hi) {
            for &mi in ms {
                let m = &movements[mi];
                if matched.contains_key(&mi) || !class_ok(r, m) || !record_may_match(r, m) {
                    continue;
                }
                let amt = amount_of(m);
                let diff = amt.abs_diff(r.sats);
                if u128::from(diff) * 10_000 > u128::from(r.sats) * u128::from(tolerance.amount_bp)
                {
                    continue;
                }
                let key = (abs_diff_days(m.date(), r.date), diff, mi);
                if best.is_none_or(|(b, _)| key < b) {
                    best = Some((key, mi));
                }
            }
        }
        if let Some((_, mi)) = best {
            matched.insert(mi, ri);
            used.insert(ri);
        }
    }
    let mut latest: HashMap<(Txid, i64), &Override> = HashMap::new();
    for o in overrides {
        latest.insert((o.txid, o.entity), o);
    }
    let movements: Vec<Classified> = movements
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let rec = matched.get(&i).copied();
            let (kind, source, note) = if let Some(o) = latest
                .get(&(m.txid, m.entity))
                .filter(|o| o.kind.class() == m.chain_kind.class())
            {
                (o.kind, Source::Manual, Some(o.reason.clone()))
            } else if let Some(k) = rec.and_then(|ri| records[ri].kind.movement_kind()) {
                (
                    k,
                    Source::Record,
                    rec.and_then(|ri| records[ri].reference.clone()),
                )
            } else if let Some((k, name)) = rules.apply(&m) {
                (k, Source::Rule, Some(name))
            } else {
                (m.chain_kind, Source::Chain, None)
            };
            Classified {
                movement: m,
                kind,
                source,
                note,
                record: rec,
            }
        })
        .collect();
    let mut unmatched: Vec<usize> = order.into_iter().filter(|i| !used.contains(i)).collect();
    unmatched.sort_by_cached_key(|i| records[*i].fingerprint());
    Classification {
        movements,
        unmatched_records: unmatched,
    }
}

/// Checks that `kind` may be given to a movement of class `class`, with a message that says
/// what to do otherwise.
pub fn check_override(kind: Kind, class: Class) -> Result<(), String> {
    if kind.class() == class {
        return Ok(());
    }
    let hint = match (class, kind.class()) {
        (Class::Acquisition, Class::Internal) => {
            ": the coins came from outside the registered wallets; if they came from another state wallet, register that wallet and sync"
        }
        (Class::Internal, Class::Acquisition) => {
            ": the coins came from the state's own wallets, which is not an acquisition"
        }
        _ => "",
    };
    Err(format!(
        "this movement is a {} on chain; {kind} is a {} kind{hint}",
        class.as_str(),
        kind.class().as_str()
    ))
}
