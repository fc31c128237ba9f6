//! Movements: one transaction seen from one entity, derived from the chain index alone.
//!
//! A transaction touching watched wallets becomes one [`Movement`] per entity whose wallets it
//! touches. Each movement splits the entity's change of holdings into parts that always add up:
//!
//! ```text
//! received - sent = acquired + internal_in - internal_out - disposed - fee
//! ```
//!
//! The split is made per *state* (root entity): value entering the state from outside is
//! acquired, value leaving it is disposed, the fee is the state's when the state paid every
//! input, and everything else moved between the state's own wallets (internal). A transaction
//! between two states is an acquisition for one and a disposal for the other.
//!
//! Derivation is a pure function of the stored chain facts, sorted by (height, position in
//! block, txid, entity), so a reorg followed by a re-sync gives the same movements.

use std::collections::BTreeMap;

use bitcoin::{Address, Network, OutPoint, PublicKey, ScriptBuf, Transaction, Txid};
use serde::{Deserialize, Serialize};

/// Direction of a movement as the state sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Value entered the state from outside.
    Acquisition,
    /// Value moved between the state's own wallets.
    Internal,
    /// Value left the state.
    Disposal,
    /// Only a network fee left the state.
    Fee,
}

impl Class {
    /// The name used on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Acquisition => "acquisition",
            Class::Internal => "internal",
            Class::Disposal => "disposal",
            Class::Fee => "fee",
        }
    }
}

impl std::str::FromStr for Class {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "acquisition" => Ok(Class::Acquisition),
            "internal" => Ok(Class::Internal),
            "disposal" => Ok(Class::Disposal),
            "fee" => Ok(Class::Fee),
            other => Err(format!(
                "unknown class {other:?}: use acquisition, internal, disposal or fee"
            )),
        }
    }
}

/// What a movement is, within its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Bought (OTC desk, exchange).
    Purchase,
    /// Mining reward: a coinbase output or a pool payout.
    Mining,
    /// Seized or forfeited coins.
    Seizure,
    /// A gift to the state.
    Donation,
    /// Value entered from outside and nothing says why yet.
    UnclassifiedAcquisition,
    /// Several of an entity's coins merged into fewer.
    Consolidation,
    /// An entity's coins split into more outputs (e.g. capped addresses).
    Split,
    /// A move to cold storage inside one entity.
    ColdStorage,
    /// Between two agencies of one state.
    IntraState,
    /// Other move inside one entity.
    SelfTransfer,
    /// Sold.
    Sale,
    /// Paid for goods or services.
    Payment,
    /// Returned to victims (restitution of seized coins).
    ReturnToVictims,
    /// Value left and nothing says why yet.
    UnclassifiedDisposal,
    /// Only a fee was paid.
    Fee,
}

/// Every kind, for help texts and parsers.
pub const ALL_KINDS: [Kind; 15] = [
    Kind::Purchase,
    Kind::Mining,
    Kind::Seizure,
    Kind::Donation,
    Kind::UnclassifiedAcquisition,
    Kind::Consolidation,
    Kind::Split,
    Kind::ColdStorage,
    Kind::IntraState,
    Kind::SelfTransfer,
    Kind::Sale,
    Kind::Payment,
    Kind::ReturnToVictims,
    Kind::UnclassifiedDisposal,
    Kind::Fee,
];

impl Kind {
    /// The name used on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Purchase => "purchase",
            Kind::Mining => "mining",
            Kind::Seizure => "seizure",
            Kind::Donation => "donation",
            Kind::UnclassifiedAcquisition => "unclassified-acquisition",
            Kind::Consolidation => "consolidation",
            Kind::Split => "split",
            Kind::ColdStorage => "cold-storage",
            Kind::IntraState => "intra-state",
            Kind::SelfTransfer => "self-transfer",
            Kind::Sale => "sale",
            Kind::Payment => "payment",
            Kind::ReturnToVictims => "return-to-victims",
            Kind::UnclassifiedDisposal => "unclassified-disposal",
            Kind::Fee => "fee",
        }
    }

    /// The class this kind belongs to.
    pub fn class(self) -> Class {
        match self {
            Kind::Purchase
            | Kind::Mining
            | Kind::Seizure
            | Kind::Donation
            | Kind::UnclassifiedAcquisition => Class::Acquisition,
            Kind::Consolidation
            | Kind::Split
            | Kind::ColdStorage
            | Kind::IntraState
            | Kind::SelfTransfer => Class::Internal,
            Kind::Sale | Kind::Payment | Kind::ReturnToVictims | Kind::UnclassifiedDisposal => {
                Class::Disposal
            }
            Kind::Fee => Class::Fee,
        }
    }

    /// True for the "nothing says why" kinds, which reports list for review.
    pub fn is_unclassified(self) -> bool {
        matches!(
            self,
            Kind::UnclassifiedAcquisition | Kind::UnclassifiedDisposal
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase().replace('_', "-");
        let alias = match t.as_str() {
            "forfeiture" => Some(Kind::Seizure),
            "mining-reward" => Some(Kind::Mining),
            "return" => Some(Kind::ReturnToVictims),
            "cold" => Some(Kind::ColdStorage),
            _ => None,
        };
        if let Some(k) = alias {
            return Ok(k);
        }
        ALL_KINDS
            .iter()
            .copied()
            .find(|k| k.as_str() == t)
            .ok_or_else(|| {
                let names: Vec<&str> = ALL_KINDS.iter().map(|k| k.as_str()).collect();
                format!("unknown kind {s:?}: use one of {}", names.join(", "))
            })
    }
}

/// A watched output a transaction created, with its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedOutput {
    /// Output index in the transaction.
    pub vout: u32,
    /// Value in sats.
    pub value: u64,
    /// Wallet id.
    pub wallet: i64,
    /// Entity id of the wallet.
    pub entity: i64,
}

/// A watched output a transaction spent, with its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSpend {
    /// The outpoint spent.
    pub outpoint: OutPoint,
    /// Value in sats.
    pub value: u64,
    /// Wallet id.
    pub wallet: i64,
    /// Entity id of the wallet.
    pub entity: i64,
}

/// One transaction and what the chain index knows of it for the watched set.
#[derive(Debug, Clone)]
pub struct ChainTx {
    /// The transaction (decoded from the stored raw bytes).
    pub tx: Transaction,
    /// Its txid.
    pub txid: Txid,
    /// Block height.
    pub height: u32,
    /// Position in the block.
    pub tx_index: u32,
    /// Block time (Unix seconds).
    pub time: u32,
    /// Watched outputs it created.
    pub created: Vec<OwnedOutput>,
    /// Watched outputs it spent.
    pub spent: Vec<OwnedSpend>,
}

/// One transaction seen from one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// The transaction.
    pub txid: Txid,
    /// Entity id.
    pub entity: i64,
    /// Root entity id (the state).
    pub root: i64,
    /// Block height.
    pub height: u32,
    /// Position in the block.
    pub tx_index: u32,
    /// Block time (Unix seconds).
    pub time: u32,
    /// Sats the entity's wallets received in this transaction.
    pub received: u64,
    /// Sats of the entity's coins spent by this transaction.
    pub sent: u64,
    /// Part of `received` that came from outside the state.
    pub acquired: u64,
    /// Part of `sent` that left the state (to outside, fee excluded).
    pub disposed: u64,
    /// Part of `sent` paid as network fee.
    pub fee: u64,
    /// Part of `received` that came from the state's own coins (this or another entity's).
    pub internal_in: u64,
    /// Part of `sent` that stayed in the state.
    pub internal_out: u64,
    /// Number of the entity's coins spent.
    pub inputs: u32,
    /// Number of outputs paid to the entity.
    pub outputs: u32,
    /// Created by a coinbase transaction.
    pub coinbase: bool,
    /// The kind the chain alone suggests.
    pub chain_kind: Kind,
    /// Outside addresses involved: recovered senders of an acquisition (where the spending
    /// data reveals the script), receivers of a disposal. Sorted, deduplicated.
    pub counterparties: Vec<String>,
}

impl Movement {
    /// Net change of the entity's holdings in sats.
    pub fn net(&self) -> i64 {
        self.received as i64 - self.sent as i64
    }

    /// Net internal flow (positive when coins came from another entity of the state).
    pub fn internal_net(&self) -> i64 {
        self.internal_in as i64 - self.internal_out as i64
    }

    /// The UTC day of the block.
    pub fn date(&self) -> time::Date {
        date_of_unix(i64::from(self.time))
    }
}

/// The UTC day of a Unix time (1970-01-01 for an out-of-range value).
pub fn date_of_unix(t: i64) -> time::Date {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|d| d.date())
        .unwrap_or(time::Date::MIN)
}

/// Splits `total` over `weights` proportionally, exactly: the rounding remainder goes to the
/// largest weights first (ties: earliest), so the parts always sum to `total`.
pub fn split_proportional(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    if sum == 0 {
        let mut out = vec![0; weights.len()];
        if let Some(first) = out.first_mut() {
            *first = total;
        }
        return out;
    }
    let mut out: Vec<u64> = weights
        .iter()
        .map(|w| (u128::from(total) * u128::from(*w) / sum) as u64)
        .collect();
    let mut rest = total - out.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| weights[*b].cmp(&weights[*a]).then(a.cmp(b)));
    let mut i = 0;
    while rest > 0 && !order.is_empty() {
        out[order[i % order.len()]] += 1;
        rest -= 1;
        i += 1;
    }
    out
}

/// The address that spent an input, when the spending data reveals it: P2PKH (key in the
/// scriptSig), P2WPKH (key in the witness), P2SH (redeem script), P2WSH (witness script).
/// Key-path P2TR spends reveal nothing and give `None`.
pub fn input_address(input: &bitcoin::TxIn, network: Network) -> Option<Address> {
    let w = &input.witness;
    let sig = &input.script_sig;
    if sig.is_empty() {
        if w.len() == 2 {
            let pk = PublicKey::from_slice(w.nth(1)?).ok()?;
            let cpk = bitcoin::CompressedPublicKey::try_from(pk).ok()?;
            return Some(Address::p2wpkh(&cpk, network));
        }
        if w.len() > 2 {
            let script = ScriptBuf::from_bytes(w.last()?.to_vec());
            if script.is_witness_program() || script.len() < 2 {
                return None;
            }
            return Some(Address::p2wsh(&script, network));
        }
        return None;
    }
    let pushes: Vec<Vec<u8>> = sig
        .instructions()
        .filter_map(|i| match i.ok()? {
            bitcoin::script::Instruction::PushBytes(b) => Some(b.as_bytes().to_vec()),
            _ => None,
        })
        .collect();
    let last = pushes.last()?;
    if w.is_empty() && pushes.len() == 2 {
        if let Ok(pk) = PublicKey::from_slice(last) {
            return Some(Address::p2pkh(pk, network));
        }
    }
    let redeem = ScriptBuf::from_bytes(last.clone());
    Address::p2sh(&redeem, network).ok()
}

/// Derives every movement of the given transactions. `root_of` maps an entity id to its
/// root (state) id. The result is sorted by (height, tx_index, txid, entity).
pub fn derive_movements(
    txs: &[ChainTx],
    root_of: &BTreeMap<i64, i64>,
    network: Network,
) -> Vec<Movement> {
    let mut out = Vec::new();
    for t in txs {
        derive_one(t, root_of, network, &mut out);
    }
    out.sort_by(|a, b| {
        (a.height, a.tx_index, a.txid, a.entity).cmp(&(b.height, b.tx_index, b.txid, b.entity))
    });
    out
}

#[derive(Default, Clone)]
struct Side {
    received: u64,
    sent: u64,
    inputs: u32,
    outputs: u32,
}

fn derive_one(
    t: &ChainTx,
    root_of: &BTreeMap<i64, i64>,
    network: Network,
    out: &mut Vec<Movement>,
) {
    let root = |e: i64| root_of.get(&e).copied().unwrap_or(e);
    let coinbase = t.tx.is_coinbase();
    // Per entity, grouped by root.
    let mut by_root: BTreeMap<i64, BTreeMap<i64, Side>> = BTreeMap::new();
    for c in &t.created {
        let s = by_root
            .entry(root(c.entity))
            .or_default()
            .entry(c.entity)
            .or_default();
        s.received += c.value;
        s.outputs += 1;
    }
    for sp in &t.spent {
        let s = by_root
            .entry(root(sp.entity))
            .or_default()
            .entry(sp.entity)
            .or_default();
        s.sent += sp.value;
        s.inputs += 1;
    }
    let total_out: u64 = t.tx.output.iter().map(|o| o.value.to_sat()).sum();
    let n_inputs = if coinbase { 0 } else { t.tx.input.len() };
    for (r, entities) in &by_root {
        let s_in: u64 = entities.values().map(|s| s.sent).sum();
        let s_out: u64 = entities.values().map(|s| s.received).sum();
        let state_inputs: usize = entities.values().map(|s| s.inputs as usize).sum();
        let pays_all = n_inputs > 0 && state_inputs == n_inputs;
        let (acq, disp, fee) = if pays_all {
            let fee = s_in.saturating_sub(total_out);
            let external_out = total_out.saturating_sub(s_out);
            (0u64, external_out.min(s_in - fee), fee)
        } else if s_in == 0 {
            (s_out, 0, 0)
        } else {
            (s_out.saturating_sub(s_in), s_in.saturating_sub(s_out), 0)
        };
        let ids: Vec<i64> = entities.keys().copied().collect();
        let sents: Vec<u64> = entities.values().map(|s| s.sent).collect();
        let recvs: Vec<u64> = entities.values().map(|s| s.received).collect();
        let acq_e = split_proportional(acq, &recvs);
        // Fee first, then the disposal over what each entity has left, so no entity is
        // charged more than it spent.
        let fee_e = split_proportional(fee, &sents);
        let left: Vec<u64> = sents.iter().zip(&fee_e).map(|(s, f)| s - f).collect();
        let disp_e = split_proportional(disp, &left);
        let cross_entity = {
            let senders = sents.iter().filter(|v| **v > 0).count();
            let receivers = recvs.iter().filter(|v| **v > 0).count();
            ids.len() > 1 && senders > 0 && receivers > 0
        };
        let senders_cp = counterparties_out(t, network);
        let receivers_cp = counterparties_in(t, network);
        for (i, (e, s)) in entities.iter().enumerate() {
            let acquired = acq_e[i];
            let disposed = disp_e[i];
            let fee = fee_e[i];
            let internal_in = s.received.saturating_sub(acquired);
            let internal_out = s.sent.saturating_sub(disposed + fee);
            let chain_kind = if coinbase && acquired > 0 {
                Kind::Mining
            } else if acquired > 0 {
                Kind::UnclassifiedAcquisition
            } else if disposed > 0 {
                Kind::UnclassifiedDisposal
            } else if cross_entity && internal_in != internal_out {
                Kind::IntraState
            } else if internal_out > 0 || internal_in > 0 {
                if s.inputs > s.outputs {
                    Kind::Consolidation
                } else if s.inputs < s.outputs {
                    Kind::Split
                } else {
                    Kind::SelfTransfer
                }
            } else {
                Kind::Fee
            };
            let counterparties = match chain_kind.class() {
                Class::Acquisition if !coinbase => receivers_cp.clone(),
                Class::Disposal => senders_cp.clone(),
                _ => Vec::new(),
            };
            out.push(Movement {
                txid: t.txid,
                entity: *e,
                root: *r,
                height: t.height,
                tx_index: t.tx_index,
                time: t.time,
                received: s.received,
                sent: s.sent,
                acquired,
                disposed,
                fee,
                internal_in,
                internal_out,
                inputs: s.inputs,
                outputs: s.outputs,
                coinbase,
                chain_kind,
                counterparties,
            });
        }
    }
}

/// Addresses of the outputs not paid to a watched wallet.
fn counterparties_out(t: &ChainTx, network: Network) -> Vec<String> {
    let mut v: Vec<String> =
        t.tx.output
            .iter()
            .enumerate()
            .filter(|(i, _)| !t.created.iter().any(|c| c.vout as usize == *i))
            .filter_map(|(_, o)| Address::from_script(&o.script_pubkey, network).ok())
            .map(|a| a.to_string())
            .collect();
    v.sort();
    v.dedup();
    v
}

/// Addresses recovered from the inputs not spending a watched coin.
fn counterparties_in(t: &ChainTx, network: Network) -> Vec<String> {
    if t.tx.is_coinbase() {
        return Vec::new();
    }
    let mut v: Vec<String> =
        t.tx.input
            .iter()
            .filter(|i| !t.spent.iter().any(|s| s.outpoint == i.previous_output))
            .filter_map(|i| input_address(i, network))
            .map(|a| a.to_string())
            .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportional_split_is_exact() {
        assert_eq!(split_proportional(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split_proportional(7, &[0, 5]), vec![0, 7]);
        assert_eq!(split_proportional(5, &[0, 0]), vec![5, 0]);
        assert_eq!(split_proportional(0, &[]), Vec::<u64>::new());
    }

    #[test]
    fn kinds_parse_back() {
        for k in ALL_KINDS {
            assert_eq!(k.as_str().parse::<Kind>().unwrap(), k);
        }
        assert_eq!("forfeiture".parse::<Kind>().unwrap(), Kind::Seizure);
        assert!("bought".parse::<Kind>().is_err());
    }
}
