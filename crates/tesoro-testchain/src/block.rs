//! Block assembly as a miner does it: transactions appended as bytes with their txid and
//! wtxid, then a coinbase with the BIP34 height and the witness commitment, the merkle root,
//! and a header ground to regtest proof of work.

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Txid, Witness,
};
use sha2::{Digest, Sha256};

/// Regtest's proof-of-work limit in compact form.
pub const REGTEST_BITS: u32 = 0x207f_ffff;

/// Double SHA-256 (txids, merkle nodes, block hashes) with the CPU's SHA extensions.
pub fn sha256d(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Sha256::digest(h.finalize()).into()
}

/// Regtest block subsidy: 50 BTC halving every 150 blocks.
pub fn subsidy(height: u32) -> u64 {
    let halvings = height / 150;
    if halvings >= 64 {
        0
    } else {
        (50 * 100_000_000u64) >> halvings
    }
}

/// Transactions of a block being built (coinbase comes last, goes first).
#[derive(Default)]
pub struct Assembly {
    body: Vec<u8>,
    txids: Vec<[u8; 32]>,
    wtxids: Vec<[u8; 32]>,
    /// Sum of fees of the transactions added.
    pub fees: u64,
}

/// A finished block.
pub struct Mined {
    /// The serialized block.
    pub bytes: Vec<u8>,
    /// Its hash.
    pub hash: BlockHash,
    /// Its coinbase txid.
    pub coinbase_txid: Txid,
    /// Values of the coinbase's payee outputs 0..n (together subsidy + fees).
    pub coinbase_values: Vec<u64>,
}

impl Assembly {
    /// Serialized size of the transactions added so far.
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// Number of transactions added so far (coinbase not counted).
    pub fn tx_count(&self) -> usize {
        self.txids.len()
    }

    /// Append a rust-bitcoin transaction paying `fee`; returns its txid.
    pub fn push_tx(&mut self, tx: &Transaction, fee: u64) -> Txid {
        let start = self.body.len();
        // Writing into a Vec cannot fail.
        let _ = bitcoin::consensus::Encodable::consensus_encode(tx, &mut self.body);
        let wtxid = sha256d(&[&self.body[start..]]);
        let txid = tx.compute_txid();
        self.txids.push(txid.to_byte_array());
        self.wtxids.push(wtxid);
        self.fees += fee;
        txid
    }

    /// Append raw transaction bytes whose ids the caller computed (background traffic).
    pub fn push_raw(&mut self, bytes: &[u8], txid: [u8; 32], wtxid: [u8; 32], fee: u64) {
        self.body.extend_from_slice(bytes);
        self.txids.push(txid);
        self.wtxids.push(wtxid);
        self.fees += fee;
    }

    /// Build the coinbase paying `payees` equal shares (the last one the remainder), the header
    /// on `prev` at `time`, and grind the nonce. `tag` goes into the coinbase script so sibling
    /// blocks of a fork differ.
    pub fn finish(
        self,
        height: u32,
        prev: BlockHash,
        time: u32,
        payees: &[ScriptBuf],
        tag: u32,
    ) -> Mined {
        let value = subsidy(height) + self.fees;
        let n = payees.len().max(1) as u64;
        let share = value / n;
        let values: Vec<u64> = (0..n)
            .map(|i| {
                if i + 1 == n {
                    value - share * (n - 1)
                } else {
                    share
                }
            })
            .collect();
        let mut outputs: Vec<TxOut> = payees
            .iter()
            .zip(&values)
            .map(|(s, v)| TxOut {
                value: Amount::from_sat(*v),
                script_pubkey: s.clone(),
            })
            .collect();
        // Witness root over wtxids with the coinbase's as zero; commitment per BIP141.
        let mut wt = Vec::with_capacity(self.wtxids.len() + 1);
        wt.push([0u8; 32]);
        wt.extend_from_slice(&self.wtxids);
        let witness_root = merkle_root(wt);
        let commitment = sha256d(&[&witness_root, &[0u8; 32]]);
        let mut commit_script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
        commit_script.extend_from_slice(&commitment);

        // BIP34: the height as the first push; then a tag push (also keeps the script >= 2
        // bytes for heights 1..16, whose height push is a single opcode).
        let script_sig = bitcoin::script::Builder::new()
            .push_int(i64::from(height))
            .push_slice(tag.to_le_bytes())
            .into_script();
        let mut witness = Witness::new();
        witness.push([0u8; 32]);
        let coinbase = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig,
                sequence: Sequence::MAX,
                witness,
            }],
            output: {
                outputs.push(TxOut {
                    value: Amount::ZERO,
                    script_pubkey: ScriptBuf::from_bytes(commit_script),
                });
                outputs
            },
        };
        let cb_bytes = bitcoin::consensus::serialize(&coinbase);
        let cb_txid = coinbase.compute_txid();
        let mut txids = Vec::with_capacity(self.txids.len() + 1);
        txids.push(cb_txid.to_byte_array());
        txids.extend_from_slice(&self.txids);
        let merkle = merkle_root(txids);

        let mut header = [0u8; 80];
        header[..4].copy_from_slice(&0x2000_0000u32.to_le_bytes());
        header[4..36].copy_from_slice(prev.as_byte_array());
        header[36..68].copy_from_slice(&merkle);
        header[68..72].copy_from_slice(&time.to_le_bytes());
        header[72..76].copy_from_slice(&REGTEST_BITS.to_le_bytes());
        let target = bitcoin::Target::from_compact(CompactTarget::from_consensus(REGTEST_BITS));
        let mut nonce = 0u32;
        let hash = loop {
            header[76..80].copy_from_slice(&nonce.to_le_bytes());
            let h = BlockHash::from_byte_array(sha256d(&[&header]));
            if target.is_met_by(h) {
                break h;
            }
            nonce = nonce.wrapping_add(1);
        };

        let n = self.txids.len() as u64 + 1;
        let mut bytes = Vec::with_capacity(80 + 9 + cb_bytes.len() + self.body.len());
        bytes.extend_from_slice(&header);
        write_varint(&mut bytes, n);
        bytes.extend_from_slice(&cb_bytes);
        bytes.extend_from_slice(&self.body);
        Mined {
            bytes,
            hash,
            coinbase_txid: cb_txid,
            coinbase_values: values,
        }
    }
}

/// Bitcoin merkle root (odd levels duplicate their last node).
pub fn merkle_root(mut level: Vec<[u8; 32]>) -> [u8; 32] {
    if level.is_empty() {
        return [0u8; 32];
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            let right = pair.get(1).unwrap_or(&pair[0]);
            next.push(sha256d(&[&pair[0], right]));
        }
        level = next;
    }
    level[0]
}

/// Bitcoin's CompactSize.
pub fn write_varint(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}
