//! Chain data as the scanner emits it and the store persists it.
//!
//! These are plain data types with no IO and no knowledge of where blocks came from (a Core
//! blocks dir, RPC, Esplora): a source-side scanner fills them, the store writes them keyed by
//! block hash and outpoint. Keeping them here lets `tesoro-store` depend on `tesoro-core` only.
//!
//! One [`BlockDelta`] describes exactly what one block did to the watched set: the watched
//! outputs it created and the watched outputs it spent, with the transactions involved. A block
//! is applied whole or not at all, so a delta is the unit of idempotent apply and of reorg undo.

use bitcoin::{Amount, BlockHash, OutPoint, ScriptBuf, Txid};
use serde::{Deserialize, Serialize};

/// Who a watched script belongs to: an opaque id the registry assigns (a wallet or a published
/// address), plus where in the wallet's keychains the script was derived, if it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScriptOwner {
    /// The registry's id of the wallet or bare-address entry that watches this script.
    pub owner: u64,
    /// `Some` when the script was derived from a descriptor keychain.
    pub derivation: Option<Derivation>,
}

/// Position of a derived script inside a wallet: keychain number and child index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Derivation {
    /// Keychain number inside the wallet (by convention 0 = external/receive, 1 = internal/change).
    pub keychain: u32,
    /// Child index of the script inside the keychain (the `*` of the descriptor).
    pub index: u32,
}

impl ScriptOwner {
    /// A bare (non-derived) watched script, e.g. a published address.
    pub fn bare(owner: u64) -> Self {
        Self {
            owner,
            derivation: None,
        }
    }

    /// A script derived from keychain `keychain` of wallet `owner` at child `index`.
    pub fn derived(owner: u64, keychain: u32, index: u32) -> Self {
        Self {
            owner,
            derivation: Some(Derivation { keychain, index }),
        }
    }
}

/// A block's place in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Height in the best chain (genesis = 0).
    pub height: u32,
    /// Hash of this block's header.
    pub hash: BlockHash,
    /// Hash of the previous block's header (all zeros for genesis).
    pub prev_hash: BlockHash,
    /// Header timestamp (seconds since the Unix epoch, as the miner wrote it).
    pub time: u32,
}

/// An output paying a watched script, created in this block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WatchedOutput {
    /// The output's outpoint (creating txid, output index).
    pub outpoint: OutPoint,
    /// The output's value.
    pub value: Amount,
    /// The watched script it pays.
    pub script_pubkey: ScriptBuf,
    /// Whom the script belongs to.
    pub owner: ScriptOwner,
    /// True when created by the block's coinbase transaction (subject to 100-block maturity).
    pub coinbase: bool,
    /// Position of the creating transaction in the block (coinbase = 0).
    pub tx_index: u32,
}

/// A watched output spent in this block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WatchedSpend {
    /// The outpoint being spent.
    pub outpoint: OutPoint,
    /// The transaction spending it.
    pub txid: Txid,
    /// The input index of the spend inside `txid`.
    pub vin: u32,
    /// Position of the spending transaction in the block.
    pub tx_index: u32,
    /// Value of the spent output (known from the watched outpoint set or from prevout data).
    pub value: Amount,
    /// Whom the spent output belonged to.
    pub owner: ScriptOwner,
}

/// A transaction that touches the watched set (creates or spends a watched output).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxRecord {
    /// The transaction id.
    pub txid: Txid,
    /// Position of the transaction in the block (coinbase = 0).
    pub tx_index: u32,
    /// The full consensus serialization, witness included. Enough to recompute everything,
    /// including the fee once every prevout is known.
    #[serde(with = "hex_bytes")]
    pub raw: Vec<u8>,
}

/// What one block did to the watched set. Emitted once per block of the best chain, in height
/// order, including blocks that touch nothing (so the store can record the header chain).
///
/// Apply `created` before `spent`: a block can create a watched output and spend it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDelta {
    /// The block's header facts.
    pub meta: BlockMeta,
    /// Watched outputs created, in block order.
    pub created: Vec<WatchedOutput>,
    /// Watched outputs spent, in block order.
    pub spent: Vec<WatchedSpend>,
    /// Transactions that created or spent watched outputs, in block order, each once.
    pub txs: Vec<TxRecord>,
}

impl BlockDelta {
    /// A delta for a block that touches nothing watched.
    pub fn empty(meta: BlockMeta) -> Self {
        Self {
            meta,
            created: Vec::new(),
            spent: Vec::new(),
            txs: Vec::new(),
        }
    }

    /// True when the block neither created nor spent a watched output.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.spent.is_empty()
    }

    /// Net change of the watched balance for `owner` (all derivations) in this block, in sats.
    pub fn net_for_owner(&self, owner: u64) -> i128 {
        let inflow: i128 = self
            .created
            .iter()
            .filter(|o| o.owner.owner == owner)
            .map(|o| i128::from(o.value.to_sat()))
            .sum();
        let outflow: i128 = self
            .spent
            .iter()
            .filter(|s| s.owner.owner == owner)
            .map(|s| i128::from(s.value.to_sat()))
            .sum();
        inflow - outflow
    }
}

/// Hex (de)serialization for raw bytes so JSON stays readable and compact.
mod hex_bytes {
    use bitcoin::hex::{DisplayHex, FromHex};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&bytes.to_lower_hex_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        Vec::<u8>::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    #[test]
    fn delta_roundtrips_through_json_and_nets_per_owner() {
        let meta = BlockMeta {
            height: 7,
            hash: BlockHash::all_zeros(),
            prev_hash: BlockHash::all_zeros(),
            time: 1,
        };
        let op = OutPoint {
            txid: Txid::all_zeros(),
            vout: 1,
        };
        let delta = BlockDelta {
            meta,
            created: vec![WatchedOutput {
                outpoint: op,
                value: Amount::from_sat(5_000),
                script_pubkey: ScriptBuf::new(),
                owner: ScriptOwner::derived(3, 0, 9),
                coinbase: false,
                tx_index: 1,
            }],
            spent: vec![WatchedSpend {
                outpoint: op,
                txid: Txid::all_zeros(),
                vin: 0,
                tx_index: 2,
                value: Amount::from_sat(1_000),
                owner: ScriptOwner::bare(3),
            }],
            txs: vec![TxRecord {
                txid: Txid::all_zeros(),
                tx_index: 1,
                raw: vec![1, 2, 0xff],
            }],
        };
        let json = serde_json::to_string(&delta).expect("serialize");
        assert!(json.contains("\"0102ff\""));
        let back: BlockDelta = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, delta);
        assert_eq!(delta.net_for_owner(3), 4_000);
        assert_eq!(delta.net_for_owner(4), 0);
    }
}
