//! Policies: the office's own rules over the ledger, each violation with its evidence.
//!
//! Rules (a TOML file of `[[rule]]` tables, each naming an entity; the rule covers it and
//! everything below it):
//!
//! ```toml
//! [[rule]]
//! kind = "no-sale"              # any disposal: value leaving the state (US order, PK "never sold")
//! entity = "US"
//!
//! [[rule]]
//! kind = "cap-per-address"      # El Salvador's 500 BTC per address
//! entity = "SV"
//! max_btc = "500"
//!
//! [[rule]]
//! kind = "exposed-public-key"   # an address that has spent and still holds coins; P2TR and
//! entity = "SV"                 # P2PK show their key from the first deposit
//!
//! [[rule]]
//! kind = "outflow"              # more than max_btc leaving the entity within window_days
//! entity = "SV"
//! max_btc = "100"
//! window_days = 7
//!
//! [[rule]]
//! kind = "silent-wallet"        # a wallet with no movement for more than max_days
//! entity = "SV"
//! max_days = 365
//!
//! [[rule]]
//! kind = "no-net-accumulation"  # the IMF condition: acquisitions minus disposals and fees
//! entity = "SV"                 # over the period stay at or below max_btc (default 0);
//! from = "2025-01-31"           # internal transfers never count, and the acquisition kinds
//! exclude = ["seizure"]         # in `exclude` (default: seizure) are left out
//!
//! [[rule]]
//! kind = "unknown-counterparty" # a disposal paying an address that is neither in `known`
//! entity = "SV"                 # nor in the classification rules (`movements rules`)
//! known = ["bcrt1q..."]
//! ```
//!
//! Evaluation is pure: the caller gives the address histories, the classified flows and the
//! disposals up to the height checked. Each violation carries a stable [`Violation::id`]: a
//! hash of the rule, the entity, the height it started and the address and transaction that
//! started it (amounts left out, so a balance that keeps growing over a cap is one alert).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::movement::{Class, Kind};
use crate::price::{fmt_date, parse_date};

/// The acquisition kinds `no-net-accumulation` leaves out unless told otherwise: seized coins,
/// which the IMF condition on El Salvador excludes from "voluntary accumulation".
pub const DEFAULT_EXCLUDED: [&str; 1] = ["seizure"];

fn default_excluded() -> Vec<String> {
    DEFAULT_EXCLUDED.iter().map(|s| s.to_string()).collect()
}

/// A rule as written in the policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Rule {
    /// No disposal of any kind.
    NoSale {
        /// Entity code.
        entity: String,
    },
    /// No address above `max_btc`.
    CapPerAddress {
        /// Entity code.
        entity: String,
        /// Cap in BTC, decimal string.
        max_btc: String,
    },
    /// No coins at an address whose public key is on chain.
    ExposedPublicKey {
        /// Entity code.
        entity: String,
    },
    /// No more than `max_btc` leaving within `window_days`.
    Outflow {
        /// Entity code.
        entity: String,
        /// Threshold in BTC, decimal string.
        max_btc: String,
        /// Window length in days.
        window_days: u32,
    },
    /// No wallet silent for more than `max_days`.
    SilentWallet {
        /// Entity code.
        entity: String,
        /// Days.
        max_days: u32,
    },
    /// Acquisitions (kinds in `exclude` left out) minus disposals and fees within the period
    /// stay at or below `max_btc`. Internal transfers never count.
    NoNetAccumulation {
        /// Entity code.
        entity: String,
        /// First day counted (YYYY-MM-DD); default: the first movement.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Last day counted (YYYY-MM-DD); default: the day checked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// Acquisition kinds not counted (default: `["seizure"]`).
        #[serde(default = "default_excluded")]
        exclude: Vec<String>,
        /// Allowance in BTC (default 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_btc: Option<String>,
    },
    /// Every address a disposal pays is known: listed in `known` or in the classification
    /// rules' counterparties.
    UnknownCounterparty {
        /// Entity code.
        entity: String,
        /// Known addresses besides the classification rules' counterparties.
        #[serde(default)]
        known: Vec<String>,
    },
}

impl Rule {
    /// The entity the rule covers.
    pub fn entity(&self) -> &str {
        match self {
            Rule::NoSale { entity }
            | Rule::CapPerAddress { entity, .. }
            | Rule::ExposedPublicKey { entity }
            | Rule::Outflow { entity, .. }
            | Rule::SilentWallet { entity, .. }
            | Rule::NoNetAccumulation { entity, .. }
            | Rule::UnknownCounterparty { entity, .. } => entity,
        }
    }

    /// The kind as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Rule::NoSale { .. } => "no-sale",
            Rule::CapPerAddress { .. } => "cap-per-address",
            Rule::ExposedPublicKey { .. } => "exposed-public-key",
            Rule::Outflow { .. } => "outflow",
            Rule::SilentWallet { .. } => "silent-wallet",
            Rule::NoNetAccumulation { .. } => "no-net-accumulation",
            Rule::UnknownCounterparty { .. } => "unknown-counterparty",
        }
    }

    /// The rule's name in output: its kind and parameters.
    pub fn name(&self) -> String {
        match self {
            Rule::NoSale { .. } => "no-sale".into(),
            Rule::CapPerAddress { max_btc, .. } => format!("cap-per-address {max_btc} BTC"),
            Rule::ExposedPublicKey { .. } => "exposed-public-key".into(),
            Rule::Outflow {
                max_btc,
                window_days,
                ..
            } => format!("outflow over {max_btc} BTC in {window_days} days"),
            Rule::SilentWallet { max_days, .. } => format!("silent-wallet over {max_days} days"),
            Rule::NoNetAccumulation {
                from,
                to,
                max_btc,
                exclude,
                ..
            } => {
                let mut s = "no-net-accumulation".to_string();
                if let Some(f) = from {
                    s.push_str(&format!(" from {f}"));
                }
                if let Some(t) = to {
                    s.push_str(&format!(" to {t}"));
                }
                if let Some(m) = max_btc {
                    s.push_str(&format!(" over {m} BTC"));
                }
                if !exclude.is_empty() {
                    s.push_str(&format!(" excluding {}", exclude.join(",")));
                }
                s
            }
            Rule::UnknownCounterparty { .. } => "unknown-counterparty".into(),
        }
    }

    /// Parameters in one line (`-` when none), for tables.
    pub fn params(&self) -> String {
        let name = self.name();
        match name.split_once(' ') {
            Some((_, rest)) => rest.to_string(),
            None => match self {
                Rule::UnknownCounterparty { known, .. } if !known.is_empty() => {
                    format!("{} known addresses", known.len())
                }
                _ => "-".into(),
            },
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default, rename = "rule")]
    rules: Vec<Rule>,
}

/// A policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct PolicyError {
    /// File name.
    pub file: String,
    /// What is wrong (TOML errors name line and column).
    pub reason: String,
}

/// Parses a BTC amount written as a decimal string into sats.
pub fn btc_to_sats(s: &str) -> Option<u64> {
    let t = s.trim();
    // Plain decimals only: no sign, exponent or separators.
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let d: rust_decimal::Decimal = t.parse().ok()?;
    if d.is_sign_negative() {
        return None;
    }
    let sats = d.checked_mul(rust_decimal::Decimal::from(100_000_000u64))?;
    if sats.fract() != rust_decimal::Decimal::ZERO {
        return None;
    }
    u64::try_from(sats).ok()
}

/// Reads and checks a policy file: every rule's amounts, days, dates and kinds.
pub fn parse_rules(file: &str, text: &str) -> Result<Vec<Rule>, PolicyError> {
    let err = |reason: String| PolicyError {
        file: file.to_string(),
        reason,
    };
    let parsed: PolicyFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
    for (i, r) in parsed.rules.iter().enumerate() {
        let n = i + 1;
        let at = format!("rule {n} ({})", r.kind());
        if r.entity().trim().is_empty() {
            return Err(err(format!("{at}: entity is empty")));
        }
        if let Rule::CapPerAddress { max_btc, .. } | Rule::Outflow { max_btc, .. } = r {
            if btc_to_sats(max_btc).is_none_or(|s| s == 0) {
                return Err(err(format!(
                    "{at}: max_btc {max_btc:?} must be a positive amount with at most 8 decimals"
                )));
            }
        }
        match r {
            Rule::Outflow { window_days: 0, .. } => {
                return Err(err(format!("{at}: window_days must be at least 1")));
            }
            Rule::SilentWallet { max_days: 0, .. } => {
                return Err(err(format!("{at}: max_days must be at least 1")));
            }
            Rule::NoNetAccumulation {
                from,
                to,
                exclude,
                max_btc,
                ..
            } => {
                let f = from
                    .as_deref()
                    .map(parse_date)
                    .transpose()
                    .map_err(|e| err(format!("{at}, from: {e}")))?;
                let t = to
                    .as_deref()
                    .map(parse_date)
                    .transpose()
                    .map_err(|e| err(format!("{at}, to: {e}")))?;
                if let (Some(f), Some(t)) = (f, t) {
                    if t < f {
                        return Err(err(format!("{at}: to {t} is before from {f}")));
                    }
                }
                if let Some(m) = max_btc {
                    if btc_to_sats(m).is_none() {
                        return Err(err(format!(
                            "{at}: max_btc {m:?} must be an amount with at most 8 decimals"
                        )));
                    }
                }
                for k in exclude {
                    let kind: Kind = k.parse().map_err(|e| err(format!("{at}, exclude: {e}")))?;
                    if kind.class() != Class::Acquisition {
                        return Err(err(format!(
                            "{at}, exclude: {kind} is not an acquisition kind (use purchase, mining, seizure, donation or unclassified-acquisition)"
                        )));
                    }
                }
            }
            Rule::UnknownCounterparty { known, .. } => {
                if let Some(a) = known.iter().find(|a| a.trim().is_empty()) {
                    return Err(err(format!("{at}, known: an empty address {a:?}")));
                }
            }
            _ => {}
        }
    }
    Ok(parsed.rules)
}

/// One change of an address's balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressEvent {
    /// Block height.
    pub height: u32,
    /// Block time.
    pub time: u32,
    /// Transaction.
    pub txid: String,
    /// Sats in (positive) or out (negative).
    pub delta: i64,
}

/// An address with its history up to the height checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressHistory {
    /// Address (or `script:hex`).
    pub address: String,
    /// `ENTITY/wallet`.
    pub wallet: String,
    /// Whether the script shows a public key from the first deposit (P2TR, P2PK).
    pub key_in_script: bool,
    /// Events sorted by height.
    pub events: Vec<AddressEvent>,
}

/// An outside address a disposal paid, and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payee {
    /// Address (or `script:hex`).
    pub address: String,
    /// Sats paid to it.
    pub sats: u64,
}

/// A transaction that moved value out of the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposal {
    /// Transaction.
    pub txid: String,
    /// Block height.
    pub height: u32,
    /// Block time.
    pub time: u32,
    /// Sats that left the state (fee excluded).
    pub sats: u64,
    /// Outside addresses paid.
    pub to: Vec<Payee>,
}

/// One classified movement of an entity in the rule's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// Transaction.
    pub txid: String,
    /// Block height.
    pub height: u32,
    /// Block time.
    pub time: u32,
    /// Final kind (chain, rule, record or manual classification).
    pub kind: Kind,
    /// Sats that came from outside the state.
    pub acquired: u64,
    /// Sats that left the state.
    pub disposed: u64,
    /// Network fee the state paid.
    pub fee: u64,
    /// The entity's addresses that received coins in it.
    pub addresses: Vec<String>,
}

/// Everything a rule is evaluated over, for one entity's subtree, up to the height checked.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Address histories.
    pub addresses: &'a [AddressHistory],
    /// Disposals, one per transaction.
    pub disposals: &'a [Disposal],
    /// Classified movements in chain order.
    pub flows: &'a [Flow],
    /// Addresses named in the classification rules' counterparties.
    pub known_counterparties: &'a BTreeSet<String>,
    /// Block time of the height checked.
    pub now: u32,
}

/// One piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Address involved.
    pub address: Option<String>,
    /// Transaction involved.
    pub txid: Option<String>,
    /// Height.
    pub height: Option<u32>,
    /// Amount in sats.
    pub sats: Option<u64>,
}

/// A broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Stable identity (hex SHA-256 of rule, entity, start height, and the address and
    /// transaction that started it): the same violation seen again has the same id.
    pub id: String,
    /// Rule name.
    pub rule: String,
    /// Entity of the rule.
    pub entity: String,
    /// What is wrong, in a sentence.
    pub message: String,
    /// Height from which it holds.
    pub since_height: u32,
    /// Block time from which it holds.
    pub since_time: u32,
    /// `since_time` as RFC 3339 (UTC).
    pub since: String,
    /// Evidence; the first item is what started it.
    pub evidence: Vec<Evidence>,
}

impl Violation {
    fn new(
        rule: &Rule,
        message: String,
        since_height: u32,
        since_time: u32,
        evidence: Vec<Evidence>,
    ) -> Violation {
        let mut v = Violation {
            id: String::new(),
            rule: rule.name(),
            entity: rule.entity().to_string(),
            message,
            since_height,
            since_time,
            since: rfc3339(since_time),
            evidence,
        };
        v.id = violation_id(&v);
        v
    }
}

fn rfc3339(t: u32) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::from(t))
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// The identity of a violation: hex SHA-256 of
/// `tesoro-alert/1\n{rule}\n{entity}\n{since_height}\n{address}\n{txid}\n`, address and txid
/// taken from the first evidence item (empty when absent).
pub fn violation_id(v: &Violation) -> String {
    use bitcoin::hashes::{sha256, Hash};
    let first = v.evidence.first();
    let text = format!(
        "tesoro-alert/1\n{}\n{}\n{}\n{}\n{}\n",
        v.rule,
        v.entity,
        v.since_height,
        first.and_then(|e| e.address.as_deref()).unwrap_or(""),
        first.and_then(|e| e.txid.as_deref()).unwrap_or(""),
    );
    let h = sha256::Hash::hash(text.as_bytes());
    bitcoin::hex::DisplayHex::to_lower_hex_string(&h.as_byte_array()[..])
}

fn ev(
    address: Option<&str>,
    txid: Option<&str>,
    height: Option<u32>,
    sats: Option<u64>,
) -> Evidence {
    Evidence {
        address: address.map(str::to_string),
        txid: txid.map(str::to_string),
        height,
        sats,
    }
}

/// Sats as a BTC decimal with 8 places.
pub fn btc(sats: u64) -> String {
    format!("{}.{:08}", sats / 100_000_000, sats % 100_000_000)
}

fn signed_btc(v: i64) -> String {
    if v < 0 {
        format!("-{}", btc(v.unsigned_abs()))
    } else {
        btc(v as u64)
    }
}

/// Evaluates `rule` for one entity's subtree.
pub fn evaluate(rule: &Rule, input: &Inputs<'_>) -> Vec<Violation> {
    let entity = rule.entity().to_string();
    let addresses = input.addresses;
    let disposals = input.disposals;
    let now = input.now;
    let mut out = Vec::new();
    match rule {
        Rule::NoSale { .. } => {
            for d in disposals {
                let to: Vec<&str> = d.to.iter().map(|p| p.address.as_str()).collect();
                out.push(Violation::new(
                    rule,
                    format!(
                        "{} BTC left the state in {} (to {})",
                        btc(d.sats),
                        d.txid,
                        if to.is_empty() {
                            "unknown scripts".into()
                        } else {
                            to.join(", ")
                        }
                    ),
                    d.height,
                    d.time,
                    vec![ev(
                        to.first().copied(),
                        Some(&d.txid),
                        Some(d.height),
                        Some(d.sats),
                    )],
                ));
            }
        }
        Rule::CapPerAddress { max_btc, .. } => {
            let cap = btc_to_sats(max_btc).unwrap_or(u64::MAX);
            for a in addresses {
                let mut bal: i64 = 0;
                let mut above_since: Option<&AddressEvent> = None;
                for e in &a.events {
                    bal = bal.saturating_add(e.delta);
                    if bal > i64::try_from(cap).unwrap_or(i64::MAX) {
                        if above_since.is_none() {
                            above_since = Some(e);
                        }
                    } else {
                        above_since = None;
                    }
                }
                if let Some(e) = above_since {
                    out.push(Violation::new(
                        rule,
                        format!(
                            "{} holds {} BTC, over the cap of {max_btc} BTC",
                            a.address,
                            signed_btc(bal)
                        ),
                        e.height,
                        e.time,
                        vec![ev(
                            Some(&a.address),
                            Some(&e.txid),
                            Some(e.height),
                            Some(bal.max(0) as u64),
                        )],
                    ));
                }
            }
        }
        Rule::ExposedPublicKey { .. } => {
            for a in addresses {
                let bal: i64 = a.events.iter().map(|e| e.delta).sum();
                if bal <= 0 {
                    continue;
                }
                let first_spend = a.events.iter().find(|e| e.delta < 0);
                let (since, why) = match (first_spend, a.key_in_script) {
                    (Some(s), _) => (
                        Some(s),
                        format!("spent in {}, which put its public key on chain", s.txid),
                    ),
                    (None, true) => (
                        a.events.first(),
                        "its output script itself is a public key (P2TR/P2PK)".to_string(),
                    ),
                    (None, false) => (None, String::new()),
                };
                if let Some(e) = since {
                    out.push(Violation::new(
                        rule,
                        format!(
                            "{} still holds {} BTC and {why}",
                            a.address,
                            btc(bal as u64)
                        ),
                        e.height,
                        e.time,
                        vec![ev(
                            Some(&a.address),
                            Some(&e.txid),
                            Some(e.height),
                            Some(bal as u64),
                        )],
                    ));
                }
            }
        }
        Rule::Outflow {
            max_btc,
            window_days,
            ..
        } => {
            let max = btc_to_sats(max_btc).unwrap_or(u64::MAX);
            // Net flow per transaction across the entity's addresses: a move between its own
            // addresses nets to zero (less the fee).
            let mut per_tx: BTreeMap<(u32, String), (u32, i64)> = BTreeMap::new();
            for a in addresses {
                for e in &a.events {
                    let x = per_tx
                        .entry((e.height, e.txid.clone()))
                        .or_insert((e.time, 0));
                    x.1 = x.1.saturating_add(e.delta);
                }
            }
            let outs: Vec<(u32, u32, String, u64)> = per_tx
                .into_iter()
                .filter(|(_, (_, net))| *net < 0)
                .map(|((h, txid), (t, net))| (h, t, txid, net.unsigned_abs()))
                .collect();
            let window = u64::from(*window_days) * 86_400;
            let mut start = 0;
            let mut sum: u64 = 0;
            for end in 0..outs.len() {
                sum = sum.saturating_add(outs[end].3);
                while start < end
                    && u64::from(outs[end].1).saturating_sub(u64::from(outs[start].1)) >= window
                {
                    sum -= outs[start].3;
                    start += 1;
                }
                if sum > max {
                    out.push(Violation::new(
                        rule,
                        format!(
                            "{} BTC left {entity} in {} transactions within {window_days} days, over {max_btc} BTC",
                            btc(sum),
                            end - start + 1
                        ),
                        outs[start].0,
                        outs[start].1,
                        outs[start..=end]
                            .iter()
                            .map(|(h, _, txid, s)| ev(None, Some(txid), Some(*h), Some(*s)))
                            .collect(),
                    ));
                    // One violation per burst: start afresh after it.
                    start = end + 1;
                    sum = 0;
                }
            }
        }
        Rule::SilentWallet { max_days, .. } => {
            let mut last: BTreeMap<&str, &AddressEvent> = BTreeMap::new();
            for a in addresses {
                if let Some(e) = a.events.iter().max_by_key(|e| (e.time, e.height)) {
                    let slot = last.entry(a.wallet.as_str()).or_insert(e);
                    if (e.time, e.height) > (slot.time, slot.height) {
                        *slot = e;
                    }
                }
            }
            let limit = u64::from(*max_days) * 86_400;
            for (wallet, e) in last {
                if u64::from(now).saturating_sub(u64::from(e.time)) > limit {
                    out.push(Violation::new(
                        rule,
                        format!(
                            "wallet {wallet} has not moved since height {} ({} days)",
                            e.height,
                            now.saturating_sub(e.time) / 86_400
                        ),
                        e.height,
                        u32::try_from(u64::from(e.time).saturating_add(limit)).unwrap_or(u32::MAX),
                        vec![ev(None, Some(&e.txid), Some(e.height), None)],
                    ));
                }
            }
        }
        Rule::NoNetAccumulation {
            from,
            to,
            exclude,
            max_btc,
            ..
        } => {
            out.extend(net_accumulation(
                rule,
                input,
                from.as_deref(),
                to.as_deref(),
                exclude,
                max_btc.as_deref(),
            ));
        }
        Rule::UnknownCounterparty { known, .. } => {
            let own: BTreeSet<&str> = known.iter().map(|a| a.trim()).collect();
            let is_known = |a: &str| own.contains(a) || input.known_counterparties.contains(a);
            for d in disposals {
                if d.to.is_empty() {
                    out.push(Violation::new(
                        rule,
                        format!(
                            "{} BTC left the state in {} to scripts with no address",
                            btc(d.sats),
                            d.txid
                        ),
                        d.height,
                        d.time,
                        vec![ev(None, Some(&d.txid), Some(d.height), Some(d.sats))],
                    ));
                }
                for p in d.to.iter().filter(|p| !is_known(&p.address)) {
                    out.push(Violation::new(
                        rule,
                        format!(
                            "{} BTC paid to {}, which no counterparty rule or known list names, in {}",
                            btc(p.sats),
                            p.address,
                            d.txid
                        ),
                        d.height,
                        d.time,
                        vec![ev(
                            Some(&p.address),
                            Some(&d.txid),
                            Some(d.height),
                            Some(p.sats),
                        )],
                    ));
                }
            }
        }
    }
    out
}

fn net_accumulation(
    rule: &Rule,
    input: &Inputs<'_>,
    from: Option<&str>,
    to: Option<&str>,
    exclude: &[String],
    max_btc: Option<&str>,
) -> Option<Violation> {
    let from = from.and_then(|s| parse_date(s).ok());
    let to = to.and_then(|s| parse_date(s).ok());
    let allowance = i64::try_from(max_btc.and_then(btc_to_sats).unwrap_or(0)).unwrap_or(i64::MAX);
    let excluded: BTreeSet<Kind> = exclude.iter().filter_map(|k| k.parse().ok()).collect();
    let mut net: i64 = 0;
    let (mut acquired, mut left_out, mut disposed, mut fees) = (0u64, 0u64, 0u64, 0u64);
    // Counted acquisitions per transaction, in chain order: the evidence.
    let mut counted: Vec<(u32, u32, String, u64, Option<String>)> = Vec::new();
    let mut above_since: Option<usize> = None;
    let mut first_day = None;
    let mut last_day = None;
    for f in input.flows {
        let day = crate::movement::date_of_unix(i64::from(f.time));
        if from.is_some_and(|d| day < d) || to.is_some_and(|d| day > d) {
            continue;
        }
        first_day.get_or_insert(day);
        last_day = Some(day);
        if f.acquired > 0 {
            let kind = if f.kind.class() == Class::Acquisition {
                f.kind
            } else {
                Kind::UnclassifiedAcquisition
            };
            if excluded.contains(&kind) {
                left_out = left_out.saturating_add(f.acquired);
            } else {
                acquired = acquired.saturating_add(f.acquired);
                net = net.saturating_add(i64::try_from(f.acquired).unwrap_or(i64::MAX));
                match counted.last_mut() {
                    Some(c) if c.2 == f.txid => c.3 = c.3.saturating_add(f.acquired),
                    _ => counted.push((
                        f.height,
                        f.time,
                        f.txid.clone(),
                        f.acquired,
                        f.addresses.first().cloned(),
                    )),
                }
            }
        }
        disposed = disposed.saturating_add(f.disposed);
        fees = fees.saturating_add(f.fee);
        net = net
            .saturating_sub(i64::try_from(f.disposed).unwrap_or(i64::MAX))
            .saturating_sub(i64::try_from(f.fee).unwrap_or(i64::MAX));
        if net > allowance {
            if above_since.is_none() {
                above_since = counted.len().checked_sub(1);
            }
        } else {
            above_since = None;
        }
    }
    let start = above_since?;
    let (h, t, _, _, _) = counted.get(start)?.clone();
    let period = match (from.or(first_day), to.or(last_day)) {
        (Some(a), Some(b)) => format!("{} to {}", fmt_date(a), fmt_date(b)),
        _ => "the period".into(),
    };
    let excluded_names: Vec<&str> = excluded.iter().map(|k| k.as_str()).collect();
    Some(Violation::new(
        rule,
        format!(
            "{} BTC net accumulation from {period}: acquired {} BTC (not counting {} BTC of {}), disposed {} BTC, fees {} BTC; allowed {} BTC",
            signed_btc(net),
            btc(acquired),
            btc(left_out),
            if excluded_names.is_empty() { "nothing".to_string() } else { excluded_names.join(", ") },
            btc(disposed),
            btc(fees),
            btc(allowance.max(0) as u64),
        ),
        h,
        t,
        counted[start..]
            .iter()
            .map(|(h, _, txid, s, a)| ev(a.as_deref(), Some(txid), Some(*h), Some(*s)))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(height: u32, txid: &str, delta: i64) -> AddressEvent {
        AddressEvent {
            height,
            time: 1_700_000_000 + height * 600,
            txid: txid.into(),
            delta,
        }
    }

    fn addr(name: &str, key_in_script: bool, events: Vec<AddressEvent>) -> AddressHistory {
        AddressHistory {
            address: name.into(),
            wallet: format!("SV/{name}"),
            key_in_script,
            events,
        }
    }

    const BTC: i64 = 100_000_000;

    fn run(
        rule: &Rule,
        addresses: &[AddressHistory],
        disposals: &[Disposal],
        now: u32,
    ) -> Vec<Violation> {
        let known = BTreeSet::new();
        evaluate(
            rule,
            &Inputs {
                addresses,
                disposals,
                flows: &[],
                known_counterparties: &known,
                now,
            },
        )
    }

    #[test]
    fn cap_names_the_address_and_when_it_went_over() {
        let r = Rule::CapPerAddress {
            entity: "SV".into(),
            max_btc: "500".into(),
        };
        let a = addr(
            "a",
            false,
            vec![
                e(1, "t1", 400 * BTC),
                e(2, "t2", 200 * BTC),
                e(3, "t3", -150 * BTC),
                e(4, "t4", 60 * BTC),
            ],
        );
        let v = run(&r, &[a], &[], 0);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].since_height, 4, "back under at 3, over again from 4");
        assert_eq!(v[0].evidence[0].sats, Some(510 * BTC as u64));
        let b = addr("b", false, vec![e(1, "t1", 500 * BTC)]);
        assert!(
            run(&r, &[b], &[], 0).is_empty(),
            "exactly at the cap is allowed"
        );
    }

    #[test]
    fn exposed_keys() {
        let r = Rule::ExposedPublicKey {
            entity: "SV".into(),
        };
        let spent_and_holding = addr("p2sh", false, vec![e(1, "t1", 10), e(2, "t2", -4)]);
        let emptied = addr("empty", false, vec![e(1, "t1", 10), e(2, "t2", -10)]);
        let fresh = addr("fresh", false, vec![e(1, "t1", 10)]);
        let taproot = addr("tr", true, vec![e(5, "t5", 10)]);
        let v = run(&r, &[spent_and_holding, emptied, fresh, taproot], &[], 0);
        let names: Vec<_> = v
            .iter()
            .map(|x| x.evidence[0].address.clone().unwrap())
            .collect();
        assert_eq!(names, vec!["p2sh", "tr"]);
        assert_eq!(v[0].since_height, 2);
        assert_eq!(v[1].since_height, 5);
    }

    #[test]
    fn outflow_in_a_window_but_not_internal_moves() {
        let r = Rule::Outflow {
            entity: "SV".into(),
            max_btc: "100".into(),
            window_days: 1,
        };
        // 60 + 50 BTC out within a few blocks: over 100. An internal move nets to zero.
        let a = addr(
            "a",
            false,
            vec![
                e(1, "in", 300 * BTC),
                e(2, "o1", -60 * BTC),
                e(3, "o2", -50 * BTC),
                e(4, "mv", -100 * BTC),
            ],
        );
        let b = addr("b", false, vec![e(4, "mv", 100 * BTC)]);
        let v = run(&r, &[a.clone(), b.clone()], &[], 0);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].evidence.len(), 2);
        // Far apart in time: no violation.
        let mut far = a;
        far.events[2].time += 2 * 86_400;
        assert!(run(&r, &[far, b], &[], 0).is_empty());
    }

    #[test]
    fn silent_wallets_and_no_sale() {
        let r = Rule::SilentWallet {
            entity: "SV".into(),
            max_days: 30,
        };
        let a = addr("a", false, vec![e(1, "t1", 10)]);
        let now = 1_700_000_000 + 600 + 31 * 86_400;
        assert_eq!(run(&r, std::slice::from_ref(&a), &[], now).len(), 1);
        assert!(run(&r, &[a], &[], now - 2 * 86_400).is_empty());
        let ns = Rule::NoSale {
            entity: "US".into(),
        };
        let d = Disposal {
            txid: "s".into(),
            height: 9,
            time: 1,
            sats: 5,
            to: vec![Payee {
                address: "bc1qexchange".into(),
                sats: 5,
            }],
        };
        let v = run(&ns, &[], &[d], 0);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("bc1qexchange"));
    }

    #[test]
    fn bad_files_name_the_rule() {
        let e = parse_rules(
            "p.toml",
            "[[rule]]\nkind = \"cap-per-address\"\nentity = \"SV\"\nmax_btc = \"-1\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("rule 1"), "{e}");
        let e = parse_rules("p.toml", "[[rule]]\nkind = \"nope\"\nentity = \"SV\"\n").unwrap_err();
        assert!(e.to_string().contains("p.toml"), "{e}");
        assert_eq!(btc_to_sats("500"), Some(50_000_000_000));
        assert_eq!(btc_to_sats("0.000000001"), None);
    }

    fn flow(height: u32, txid: &str, kind: Kind, acquired: u64, disposed: u64) -> Flow {
        Flow {
            txid: txid.into(),
            height,
            time: 1_700_000_000 + height * 86_400,
            kind,
            acquired,
            disposed,
            fee: 0,
            addresses: vec![format!("addr-{txid}")],
        }
    }

    fn accumulation_rule(exclude: &[&str]) -> Rule {
        Rule::NoNetAccumulation {
            entity: "SV".into(),
            from: None,
            to: None,
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            max_btc: None,
        }
    }

    fn run_flows(rule: &Rule, flows: &[Flow]) -> Vec<Violation> {
        let known = BTreeSet::new();
        evaluate(
            rule,
            &Inputs {
                addresses: &[],
                disposals: &[],
                flows,
                known_counterparties: &known,
                now: 0,
            },
        )
    }

    #[test]
    fn net_accumulation_leaves_out_seizures_and_internal_moves() {
        let b = BTC as u64;
        let flows = vec![
            flow(1, "seized", Kind::Seizure, 5 * b, 0),
            flow(2, "consolidate", Kind::Consolidation, 0, 0),
            flow(3, "bought", Kind::Purchase, 2 * b, 0),
            flow(4, "sold", Kind::Sale, 0, b),
            flow(5, "bought2", Kind::Purchase, b, 0),
        ];
        let v = run_flows(&accumulation_rule(&["seizure"]), &flows);
        assert_eq!(v.len(), 1);
        // Net +1 BTC from height 3 on (2 bought, 1 sold, 1 bought): over zero since 3.
        assert_eq!(v[0].since_height, 3);
        assert!(
            v[0].message.starts_with("2.00000000 BTC net"),
            "{}",
            v[0].message
        );
        let txids: Vec<_> = v[0]
            .evidence
            .iter()
            .map(|e| e.txid.clone().unwrap())
            .collect();
        assert_eq!(txids, vec!["bought", "bought2"]);
        // Counting seizures too (exclude nothing): over from the seizure on.
        let v = run_flows(&accumulation_rule(&[]), &flows);
        assert_eq!(v[0].since_height, 1);
        // Only seizures and internal moves: no violation.
        assert!(run_flows(&accumulation_rule(&["seizure"]), &flows[..2]).is_empty());
        // A sale that brings the net back to zero ends the violation.
        let mut even = flows[..4].to_vec();
        even.push(flow(6, "sold2", Kind::Sale, 0, b));
        assert!(run_flows(&accumulation_rule(&["seizure"]), &even).is_empty());
        // The same violation seen twice has the same id; a new start gives a new id.
        let a = run_flows(&accumulation_rule(&["seizure"]), &flows);
        let mut more = flows.clone();
        more.push(flow(7, "bought3", Kind::Purchase, b, 0));
        let b2 = run_flows(&accumulation_rule(&["seizure"]), &more);
        assert_eq!(a[0].id, b2[0].id, "growing evidence keeps the id");
    }

    #[test]
    fn unknown_counterparties_name_the_address_and_amount() {
        let r = Rule::UnknownCounterparty {
            entity: "SV".into(),
            known: vec!["bc1qknown".into()],
        };
        let d = Disposal {
            txid: "pay".into(),
            height: 7,
            time: 1,
            sats: 30,
            to: vec![
                Payee {
                    address: "bc1qknown".into(),
                    sats: 10,
                },
                Payee {
                    address: "bc1qrules".into(),
                    sats: 5,
                },
                Payee {
                    address: "bc1qstranger".into(),
                    sats: 15,
                },
            ],
        };
        let known: BTreeSet<String> = ["bc1qrules".to_string()].into();
        let v = evaluate(
            &r,
            &Inputs {
                addresses: &[],
                disposals: &[d],
                flows: &[],
                known_counterparties: &known,
                now: 0,
            },
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].evidence[0].address.as_deref(), Some("bc1qstranger"));
        assert_eq!(v[0].evidence[0].sats, Some(15));
        assert_eq!(v[0].since_height, 7);
    }

    #[test]
    fn new_rules_parse_and_check_their_fields() {
        let rules = parse_rules(
            "p.toml",
            "[[rule]]\nkind = \"no-net-accumulation\"\nentity = \"SV\"\nfrom = \"2025-01-31\"\n\n[[rule]]\nkind = \"unknown-counterparty\"\nentity = \"SV\"\nknown = [\"x\"]\n",
        )
        .unwrap();
        assert_eq!(
            rules[0],
            Rule::NoNetAccumulation {
                entity: "SV".into(),
                from: Some("2025-01-31".into()),
                to: None,
                exclude: vec!["seizure".into()],
                max_btc: None,
            },
            "seizures are excluded unless the file says otherwise"
        );
        for (body, want) in [
            ("from = \"2025-13-01\"", "from"),
            ("exclude = [\"sale\"]", "not an acquisition kind"),
            ("exclude = [\"nonsense\"]", "unknown kind"),
            ("from = \"2025-02-01\"\nto = \"2025-01-01\"", "before"),
            ("max_btc = \"1e3\"", "max_btc"),
            ("colour = \"red\"", "colour"),
        ] {
            let text =
                format!("[[rule]]\nkind = \"no-net-accumulation\"\nentity = \"SV\"\n{body}\n");
            let e = parse_rules("p.toml", &text).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("p.toml"), "{body}: {e}");
        }
    }

    proptest::proptest! {
        /// Any text, and any truncation of a valid file, gives rules or an error naming the
        /// file: never a panic.
        #[test]
        fn rule_files_never_panic(text in "\\PC{0,300}", cut in 0usize..400) {
            let _ = parse_rules("p.toml", &text);
            let good = "[[rule]]\nkind = \"no-net-accumulation\"\nentity = \"SV\"\nfrom = \"2025-01-31\"\nexclude = [\"seizure\", \"donation\"]\nmax_btc = \"1.5\"\n[[rule]]\nkind = \"outflow\"\nentity = \"SV\"\nmax_btc = \"100\"\nwindow_days = 7\n";
            let cut = cut.min(good.len());
            if let Err(e) = parse_rules("p.toml", &good[..cut]) {
                proptest::prop_assert!(e.to_string().starts_with("p.toml: "));
            }
        }
    }
}
