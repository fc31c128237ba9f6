//! Background traffic of realistic shape, written straight to bytes for speed: a mix of
//! P2WPKH, P2TR, P2PKH, P2SH and P2WSH 2-of-3 multisig; mostly 1–3 inputs and 2 outputs, some
//! large consolidations and batch payouts, spending earlier background outputs (often in the
//! same block). Signatures are random bytes of the right shape: the scanner never verifies
//! them, and real ones would make generation a hundred times slower.

use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::block::{write_varint, Assembly};

/// Output type of a background coin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BgKind {
    /// Pay to witness pubkey hash.
    P2wpkh,
    /// Pay to taproot.
    P2tr,
    /// Pay to pubkey hash.
    P2pkh,
    /// Pay to script hash (2-of-3 multisig inside).
    P2sh,
    /// Pay to witness script hash (2-of-3 multisig inside).
    P2wsh,
}

/// A spendable background output.
#[derive(Debug, Clone, Copy)]
pub struct BgCoin {
    /// Creating txid (internal byte order).
    pub txid: [u8; 32],
    /// Output index.
    pub vout: u32,
    /// Value in sats.
    pub value: u64,
    /// Its script type.
    pub kind: BgKind,
}

fn pick_kind(rng: &mut ChaCha8Rng) -> BgKind {
    match rng.gen_range(0..100) {
        0..=44 => BgKind::P2wpkh,
        45..=74 => BgKind::P2tr,
        75..=84 => BgKind::P2pkh,
        85..=94 => BgKind::P2sh,
        _ => BgKind::P2wsh,
    }
}

fn write_script(out: &mut Vec<u8>, kind: BgKind, rng: &mut ChaCha8Rng) {
    let mut h = [0u8; 32];
    rng.fill_bytes(&mut h);
    match kind {
        BgKind::P2wpkh => {
            out.extend_from_slice(&[22, 0x00, 0x14]);
            out.extend_from_slice(&h[..20]);
        }
        BgKind::P2tr => {
            out.extend_from_slice(&[34, 0x51, 0x20]);
            out.extend_from_slice(&h);
        }
        BgKind::P2pkh => {
            out.extend_from_slice(&[25, 0x76, 0xa9, 0x14]);
            out.extend_from_slice(&h[..20]);
            out.extend_from_slice(&[0x88, 0xac]);
        }
        BgKind::P2sh => {
            out.extend_from_slice(&[23, 0xa9, 0x14]);
            out.extend_from_slice(&h[..20]);
            out.push(0x87);
        }
        BgKind::P2wsh => {
            out.extend_from_slice(&[34, 0x00, 0x20]);
            out.extend_from_slice(&h);
        }
    }
}

fn fake_sig(out: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    // DER shape, 72 bytes: 30 45 02 21 00 <r> 02 20 <s>, then SIGHASH_ALL.
    out.extend_from_slice(&[0x30, 0x45, 0x02, 0x21, 0x00]);
    let start = out.len();
    out.resize(start + 32, 0);
    rng.fill_bytes(&mut out[start..]);
    out[start] |= 0x80;
    out.extend_from_slice(&[0x02, 0x20]);
    let start = out.len();
    out.resize(start + 32, 0);
    rng.fill_bytes(&mut out[start..]);
    out[start] &= 0x7f;
    out.push(0x01);
}

fn fake_key(out: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    out.push(0x02 | (rng.next_u32() as u8 & 1));
    let start = out.len();
    out.resize(start + 32, 0);
    rng.fill_bytes(&mut out[start..]);
}

fn multisig_redeem(out: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    out.push(0x52);
    for _ in 0..3 {
        out.push(33);
        fake_key(out, rng);
    }
    out.extend_from_slice(&[0x53, 0xae]);
}

fn is_segwit(k: BgKind) -> bool {
    matches!(k, BgKind::P2wpkh | BgKind::P2tr | BgKind::P2wsh)
}

/// The background traffic generator with its pool of spendable coins.
#[derive(Clone)]
pub struct Background {
    /// Spendable coins.
    pub pool: Vec<BgCoin>,
    tx: Vec<u8>,
    tmp: Vec<u8>,
}

impl Background {
    /// An empty pool.
    pub fn new() -> Self {
        Self {
            pool: Vec::new(),
            tx: Vec::with_capacity(1 << 16),
            tmp: Vec::new(),
        }
    }

    /// Add transactions to `asm` until its body reaches `target` bytes (or the pool runs dry).
    pub fn fill(&mut self, asm: &mut Assembly, target: usize, rng: &mut ChaCha8Rng) {
        let mut inputs: Vec<BgCoin> = Vec::new();
        while asm.body_len() < target && !self.pool.is_empty() {
            // Shape: keep the pool between ~2k and ~200k coins by leaning on batches or
            // consolidations when it drifts.
            let roll = rng.gen_range(0..100);
            let (n_in, n_out) = if self.pool.len() < 2_000 || (roll < 4) {
                (1, rng.gen_range(10..=50))
            } else if self.pool.len() > 200_000 || roll < 8 {
                (rng.gen_range(10..=60), 1)
            } else if roll < 13 {
                (1, 1)
            } else {
                let n_in = match rng.gen_range(0..100) {
                    0..=49 => 1,
                    50..=84 => 2,
                    _ => 3,
                };
                (n_in, 2)
            };
            inputs.clear();
            for _ in 0..n_in.min(self.pool.len()) {
                let i = rng.gen_range(0..self.pool.len());
                inputs.push(self.pool.swap_remove(i));
            }
            let total: u64 = inputs.iter().map(|c| c.value).sum();
            let fee = (150 * inputs.len() as u64 + 40 * n_out as u64 + 20) * 2;
            let n_out = if total < fee + 1_000 * n_out as u64 {
                1
            } else {
                n_out
            };
            let spend = total.saturating_sub(fee);
            let fee = total - spend;
            let (txid, wtxid) = self.write_tx(&inputs, n_out, spend, rng);
            asm.push_raw(&self.tx, txid, wtxid, fee);
        }
    }

    /// Serialize one transaction into `self.tx`, add its outputs to the pool, return ids.
    fn write_tx(
        &mut self,
        inputs: &[BgCoin],
        n_out: usize,
        spend: u64,
        rng: &mut ChaCha8Rng,
    ) -> ([u8; 32], [u8; 32]) {
        let segwit = inputs.iter().any(|c| is_segwit(c.kind));
        let tx = &mut self.tx;
        tx.clear();
        tx.extend_from_slice(&2u32.to_le_bytes());
        if segwit {
            tx.extend_from_slice(&[0x00, 0x01]);
        }
        let io_start = tx.len();
        write_varint(tx, inputs.len() as u64);
        for c in inputs {
            tx.extend_from_slice(&c.txid);
            tx.extend_from_slice(&c.vout.to_le_bytes());
            let tmp = &mut self.tmp;
            tmp.clear();
            match c.kind {
                BgKind::P2pkh => {
                    tmp.push(72);
                    fake_sig(tmp, rng);
                    tmp.push(33);
                    fake_key(tmp, rng);
                }
                BgKind::P2sh => {
                    tmp.push(0x00);
                    for _ in 0..2 {
                        tmp.push(72);
                        fake_sig(tmp, rng);
                    }
                    tmp.extend_from_slice(&[0x4c, 105]);
                    multisig_redeem(tmp, rng);
                }
                _ => {}
            }
            write_varint(tx, tmp.len() as u64);
            tx.extend_from_slice(tmp);
            tx.extend_from_slice(&0xffff_fffdu32.to_le_bytes());
        }
        write_varint(tx, n_out as u64);
        let mut outs: Vec<(u32, u64, BgKind)> = Vec::with_capacity(n_out);
        let mut left = spend;
        for i in 0..n_out {
            let value = if i + 1 == n_out {
                left
            } else {
                rng.gen_range(0..=left / 2)
            };
            left -= value;
            let kind = pick_kind(rng);
            tx.extend_from_slice(&value.to_le_bytes());
            write_script(tx, kind, rng);
            outs.push((i as u32, value, kind));
        }
        let io_end = tx.len();
        if segwit {
            for c in inputs {
                match c.kind {
                    BgKind::P2wpkh => {
                        tx.extend_from_slice(&[2, 72]);
                        fake_sig(tx, rng);
                        tx.push(33);
                        fake_key(tx, rng);
                    }
                    BgKind::P2tr => {
                        tx.extend_from_slice(&[1, 64]);
                        let s = tx.len();
                        tx.resize(s + 64, 0);
                        rng.fill_bytes(&mut tx[s..]);
                    }
                    BgKind::P2wsh => {
                        tx.extend_from_slice(&[4, 0]);
                        for _ in 0..2 {
                            tx.push(72);
                            fake_sig(tx, rng);
                        }
                        tx.push(105);
                        multisig_redeem(tx, rng);
                    }
                    _ => tx.push(0),
                }
            }
        }
        tx.extend_from_slice(&0u32.to_le_bytes());
        let end = tx.len();
        let txid: [u8; 32] = {
            let mut h = Sha256::new();
            h.update(&tx[..4]);
            h.update(&tx[io_start..io_end]);
            h.update(&tx[end - 4..]);
            Sha256::digest(h.finalize()).into()
        };
        let wtxid = if segwit {
            Sha256::digest(Sha256::digest(&tx[..])).into()
        } else {
            txid
        };
        for (vout, value, kind) in outs {
            self.pool.push(BgCoin {
                txid,
                vout,
                value,
                kind,
            });
        }
        (txid, wtxid)
    }
}

impl Default for Background {
    fn default() -> Self {
        Self::new()
    }
}
