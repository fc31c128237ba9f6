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
//! ```
//!
//! Evaluation is pure: the caller gives the address histories and the disposals up to the
//! height checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A rule as written in the policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
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
}

impl Rule {
    /// The entity the rule covers.
    pub fn entity(&self) -> &str {
        match self {
            Rule::NoSale { entity }
            | Rule::CapPerAddress { entity, .. }
            | Rule::ExposedPublicKey { entity }
            | Rule::Outflow { entity, .. }
            | Rule::SilentWallet { entity, .. } => entity,
        }
    }

    /// The rule's name in output.
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
    let d: rust_decimal::Decimal = s.trim().parse().ok()?;
    if d.is_sign_negative() {
        return None;
    }
    let sats = d * rust_decimal::Decimal::from(100_000_000u64);
    if sats.fract() != rust_decimal::Decimal::ZERO {
        return None;
    }
    u64::try_from(sats).ok()
}

/// Reads and checks a policy file.
pub fn parse_rules(file: &str, text: &str) -> Result<Vec<Rule>, PolicyError> {
    let err = |reason: String| PolicyError {
        file: file.to_string(),
        reason,
    };
    let parsed: PolicyFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
    for (i, r) in parsed.rules.iter().enumerate() {
        let n = i + 1;
        if let Rule::CapPerAddress { max_btc, .. } | Rule::Outflow { max_btc, .. } = r {
            if btc_to_sats(max_btc).is_none_or(|s| s == 0) {
                return Err(err(format!(
                    "rule {n} ({}): max_btc {max_btc:?} must be a positive amount with at most 8 decimals",
                    r.name()
                )));
            }
        }
        if let Rule::Outflow { window_days: 0, .. } = r {
            return Err(err(format!("rule {n}: window_days must be at least 1")));
        }
        if let Rule::SilentWallet { max_days: 0, .. } = r {
            return Err(err(format!("rule {n}: max_days must be at least 1")));
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
    pub to: Vec<String>,
}

/// One piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
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
    /// Evidence.
    pub evidence: Vec<Evidence>,
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

fn btc(sats: u64) -> String {
    format!("{}.{:08}", sats / 100_000_000, sats % 100_000_000)
}

/// Evaluates `rule` for one entity's subtree. `now` is the block time of the height checked.
pub fn evaluate(
    rule: &Rule,
    addresses: &[AddressHistory],
    disposals: &[Disposal],
    now: u32,
) -> Vec<Violation> {
    let entity = rule.entity().to_string();
    let mut out = Vec::new();
    match rule {
        Rule::NoSale { .. } => {
            for d in disposals {
                out.push(Violation {
                    rule: rule.name(),
                    entity: entity.clone(),
                    message: format!(
                        "{} BTC left the state in {} (to {})",
                        btc(d.sats),
                        d.txid,
                        if d.to.is_empty() {
                            "unknown scripts".into()
                        } else {
                            d.to.join(", ")
                        }
                    ),
                    since_height: d.height,
                    since_time: d.time,
                    evidence: vec![ev(
                        d.to.first().map(String::as_str),
                        Some(&d.txid),
                        Some(d.height),
                        Some(d.sats),
                    )],
                });
            }
        }
        Rule::CapPerAddress { max_btc, .. } => {
            let cap = btc_to_sats(max_btc).unwrap_or(u64::MAX);
            for a in addresses {
                let mut bal: i64 = 0;
                let mut above_since: Option<&AddressEvent> = None;
                for e in &a.events {
                    bal += e.delta;
                    if bal > cap as i64 {
                        if above_since.is_none() {
                            above_since = Some(e);
                        }
                    } else {
                        above_since = None;
                    }
                }
                if let Some(e) = above_since {
                    out.push(Violation {
                        rule: rule.name(),
                        entity: entity.clone(),
                        message: format!(
                            "{} holds {} BTC, over the cap of {max_btc} BTC",
                            a.address,
                            btc(bal as u64)
                        ),
                        since_height: e.height,
                        since_time: e.time,
                        evidence: vec![ev(
                            Some(&a.address),
                            Some(&e.txid),
                            Some(e.height),
                            Some(bal as u64),
                        )],
                    });
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
                    out.push(Violation {
                        rule: rule.name(),
                        entity: entity.clone(),
                        message: format!(
                            "{} still holds {} BTC and {why}",
                            a.address,
                            btc(bal as u64)
                        ),
                        since_height: e.height,
                        since_time: e.time,
                        evidence: vec![ev(
                            Some(&a.address),
                            Some(&e.txid),
                            Some(e.height),
                            Some(bal as u64),
                        )],
                    });
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
                    x.1 += e.delta;
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
                sum += outs[end].3;
                while u64::from(outs[end].1).saturating_sub(u64::from(outs[start].1)) >= window {
                    sum -= outs[start].3;
                    start += 1;
                }
                if sum > max {
                    out.push(Violation {
                        rule: rule.name(),
                        entity: entity.clone(),
                        message: format!(
                            "{} BTC left {entity} in {} transactions within {window_days} days, over {max_btc} BTC",
                            btc(sum),
                            end - start + 1
                        ),
                        since_height: outs[start].0,
                        since_time: outs[start].1,
                        evidence: outs[start..=end]
                            .iter()
                            .map(|(h, _, txid, s)| ev(None, Some(txid), Some(*h), Some(*s)))
                            .collect(),
                    });
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
                    out.push(Violation {
                        rule: rule.name(),
                        entity: entity.clone(),
                        message: format!(
                            "wallet {wallet} has not moved since height {} ({} days)",
                            e.height,
                            (now - e.time) / 86_400
                        ),
                        since_height: e.height,
                        since_time: e.time.saturating_add(limit as u32),
                        evidence: vec![ev(None, Some(&e.txid), Some(e.height), None)],
                    });
                }
            }
        }
    }
    out
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
        let v = evaluate(&r, &[a], &[], 0);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].since_height, 4, "back under at 3, over again from 4");
        assert_eq!(v[0].evidence[0].sats, Some(510 * BTC as u64));
        let b = addr("b", false, vec![e(1, "t1", 500 * BTC)]);
        assert!(
            evaluate(&r, &[b], &[], 0).is_empty(),
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
        let v = evaluate(&r, &[spent_and_holding, emptied, fresh, taproot], &[], 0);
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
        let v = evaluate(&r, &[a.clone(), b.clone()], &[], 0);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].evidence.len(), 2);
        // Far apart in time: no violation.
        let mut far = a;
        far.events[2].time += 2 * 86_400;
        assert!(evaluate(&r, &[far, b], &[], 0).is_empty());
    }

    #[test]
    fn silent_wallets_and_no_sale() {
        let r = Rule::SilentWallet {
            entity: "SV".into(),
            max_days: 30,
        };
        let a = addr("a", false, vec![e(1, "t1", 10)]);
        let now = 1_700_000_000 + 600 + 31 * 86_400;
        assert_eq!(evaluate(&r, std::slice::from_ref(&a), &[], now).len(), 1);
        assert!(evaluate(&r, &[a], &[], now - 2 * 86_400).is_empty());
        let ns = Rule::NoSale {
            entity: "US".into(),
        };
        let d = Disposal {
            txid: "s".into(),
            height: 9,
            time: 1,
            sats: 5,
            to: vec!["bc1qexchange".into()],
        };
        let v = evaluate(&ns, &[], &[d], 0);
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
}
