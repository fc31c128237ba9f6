//! BIP-127 proof-of-reserves transactions.
//!
//! A proof is a transaction that can never confirm: its first input (the *commitment
//! input*) spends output 0 of a transaction whose id is the hash of
//! `"Proof-of-Reserves: " + message`; its other inputs spend the reserve's coins, signed so
//! that every signature commits to the commitment input; one output pays exactly the sum of
//! the spent coins (no fee).
//!
//! BIP-127 says the hash is SHA-256. bdk-reserves 3.2.0 uses SHA-256d. Both are accepted and
//! the statement records which one (`commitment`), so a verifier sees it; any other
//! commitment is refused.
//!
//! Checks beyond bdk-reserves 3.2.0: every input runs through libbitcoinconsensus with all
//! spent outputs and the taproot flag (bdk-reserves passes no spent outputs, which disables
//! taproot checks, so a P2TR input with a garbage signature passes there); each signature must
//! commit to the commitment input (re-run with another commitment must fail); the spent
//! outputs are the verifier's (unspent at the pinned block in its own chain), never the
//! PSBT's claims.

use std::collections::HashMap;

use base64::Engine;
use bitcoin::hashes::{sha256, sha256d, Hash};
use bitcoin::psbt::Psbt;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Txid};

use crate::error::ProofError;

/// The prefix BIP-127 puts before the message.
pub const PREFIX: &str = "Proof-of-Reserves: ";

/// How the commitment input hashes the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commitment {
    /// SHA-256, as BIP-127 specifies.
    Sha256,
    /// SHA-256d, as bdk-reserves 3.2.0 does.
    Sha256d,
}

impl Commitment {
    /// `sha256` or `sha256d`, as statements record it.
    pub fn as_str(self) -> &'static str {
        match self {
            Commitment::Sha256 => "sha256",
            Commitment::Sha256d => "sha256d",
        }
    }

    /// The txid the commitment input spends for `message`.
    pub fn txid(self, message: &str) -> Txid {
        let data = format!("{PREFIX}{message}");
        let bytes = match self {
            Commitment::Sha256 => sha256::Hash::hash(data.as_bytes()).to_byte_array(),
            Commitment::Sha256d => sha256d::Hash::hash(data.as_bytes()).to_byte_array(),
        };
        Txid::from_byte_array(bytes)
    }
}

/// A parsed proof-of-reserves PSBT, structure checked, signatures not yet.
#[derive(Debug, Clone)]
pub struct ReservesPsbt {
    psbt: Psbt,
    tx: Transaction,
}

/// What a verified proof proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservesCheck {
    /// The commitment's hash.
    pub commitment: Commitment,
    /// The spent outputs, in input order (commitment input excluded), as the verifier's chain
    /// has them.
    pub inputs: Vec<(OutPoint, TxOut)>,
    /// Their sum in sats.
    pub sats: u64,
}

const FLAGS: u32 = bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT | bitcoinconsensus::VERIFY_TAPROOT;

fn bad(reason: impl Into<String>) -> ProofError {
    ProofError::Psbt(reason.into())
}

impl ReservesPsbt {
    /// Reads a PSBT from its binary form or from base64 text (whitespace ignored).
    pub fn parse(data: &[u8]) -> Result<Self, ProofError> {
        let bytes = if data.starts_with(b"psbt\xff") {
            data.to_vec()
        } else {
            let text: Vec<u8> = data
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            if text.is_empty() {
                return Err(bad("the file is empty"));
            }
            base64::engine::general_purpose::STANDARD
                .decode(&text)
                .map_err(|e| bad(format!("neither a binary PSBT nor base64 ({e})")))?
        };
        let psbt = Psbt::deserialize(&bytes).map_err(|e| bad(format!("PSBT: {e}")))?;
        let utx = &psbt.unsigned_tx;
        if utx.input.len() < 2 || psbt.inputs.len() != utx.input.len() {
            return Err(bad(format!(
                "{} inputs: a proof has the commitment input and at least one coin",
                utx.input.len()
            )));
        }
        if utx.output.len() != 1 || psbt.outputs.len() != 1 {
            return Err(bad(format!(
                "{} outputs: a proof has exactly one",
                utx.output.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, inp) in utx.input.iter().enumerate() {
            if !seen.insert(inp.previous_output) {
                return Err(bad(format!(
                    "input {i} spends {} a second time",
                    inp.previous_output
                )));
            }
        }
        let mut tx = utx.clone();
        for (i, (txin, pin)) in tx.input.iter_mut().zip(&psbt.inputs).enumerate() {
            if i > 0 && pin.final_script_sig.is_none() && pin.final_script_witness.is_none() {
                return Err(bad(format!(
                    "input {i} ({}) is not signed (no final scriptSig or witness): finalize the PSBT",
                    txin.previous_output
                )));
            }
            txin.script_sig = pin.final_script_sig.clone().unwrap_or_default();
            txin.witness = pin.final_script_witness.clone().unwrap_or_default();
        }
        Ok(Self { psbt, tx })
    }

    /// The PSBT as base64, for statements.
    pub fn to_base64(&self) -> String {
        encode(&self.psbt)
    }

    /// The PSBT as read.
    pub fn psbt(&self) -> &Psbt {
        &self.psbt
    }

    /// The outpoints of the reserve's coins (every input but the commitment input).
    pub fn outpoints(&self) -> Vec<OutPoint> {
        self.tx
            .input
            .iter()
            .skip(1)
            .map(|i| i.previous_output)
            .collect()
    }

    /// The scripts the PSBT claims its coins pay (from `witness_utxo`, or the output of a
    /// `non_witness_utxo` whose txid matches), so a verifier knows what to look for in its
    /// chain. `None` where the PSBT says nothing usable.
    pub fn claimed_scripts(&self) -> Vec<Option<ScriptBuf>> {
        self.tx
            .input
            .iter()
            .zip(&self.psbt.inputs)
            .skip(1)
            .map(|(txin, pin)| {
                if let Some(o) = &pin.witness_utxo {
                    return Some(o.script_pubkey.clone());
                }
                let prev = pin.non_witness_utxo.as_ref()?;
                if prev.compute_txid() != txin.previous_output.txid {
                    return None;
                }
                prev.output
                    .get(txin.previous_output.vout as usize)
                    .map(|o| o.script_pubkey.clone())
            })
            .collect()
    }

    /// Which hash of `message` the commitment input carries, if either.
    pub fn commitment(&self, message: &str) -> Option<Commitment> {
        let op = self.tx.input[0].previous_output;
        if op.vout != 0 {
            return None;
        }
        [Commitment::Sha256, Commitment::Sha256d]
            .into_iter()
            .find(|c| c.txid(message) == op.txid)
    }

    /// Verifies the proof over `message` against `unspent`: the outputs unspent at `height`
    /// in the verifier's chain (at least those this proof spends).
    pub fn verify(
        &self,
        message: &str,
        unspent: &HashMap<OutPoint, TxOut>,
        height: u32,
    ) -> Result<ReservesCheck, ProofError> {
        let commitment = self
            .commitment(message)
            .ok_or_else(|| ProofError::Commitment {
                message: message.to_string(),
            })?;
        let claimed = self.claimed_scripts();
        let mut inputs = Vec::with_capacity(self.tx.input.len() - 1);
        let mut sats: u64 = 0;
        for (i, txin) in self.tx.input.iter().enumerate().skip(1) {
            let op = txin.previous_output;
            let Some(out) = unspent.get(&op) else {
                let detail = match claimed.get(i - 1).cloned().flatten() {
                    Some(s) => format!(" paying {}", script_text(&s)),
                    None => String::new(),
                };
                return Err(ProofError::NotUnspent {
                    input: i,
                    outpoint: op.to_string(),
                    height,
                    detail,
                });
            };
            sats = sats
                .checked_add(out.value.to_sat())
                .ok_or_else(|| bad("the inputs' sum overflows"))?;
            inputs.push((op, out.clone()));
        }
        if self.tx.output[0].value != Amount::from_sat(sats) {
            return Err(bad(format!(
                "the output pays {} sats but the coins sum to {sats}: BIP-127 wants exactly the sum (no fee)",
                self.tx.output[0].value.to_sat()
            )));
        }
        // The commitment input spends nothing real; its "spent output" is what the signer was
        // shown (bdk-reserves: 0 sats to OP_TRUE), and taproot sighashes commit to it.
        let first = self.psbt.inputs[0].witness_utxo.clone().unwrap_or(TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::new(),
        });
        if first.value != Amount::ZERO {
            return Err(bad(format!(
                "the commitment input claims {} sats; it must be worth 0",
                first.value.to_sat()
            )));
        }
        let mut spent: Vec<TxOut> = vec![first];
        spent.extend(inputs.iter().map(|(_, o)| o.clone()));
        run_scripts(&self.tx, &spent, |i, reason| ProofError::Script {
            input: i,
            outpoint: self.tx.input[i].previous_output.to_string(),
            reason,
        })?;
        // Each signature must bind the commitment: with another commitment txid every input
        // must fail (SIGHASH_ANYONECANPAY or NONE-style signatures would still pass).
        let mut other = self.tx.clone();
        other.input[0].previous_output.txid = Txid::from_byte_array(
            sha256::Hash::hash(other.input[0].previous_output.txid.as_ref()).to_byte_array(),
        );
        let ser = bitcoin::consensus::serialize(&other);
        let utxos = as_utxos(&spent);
        for (i, prev) in spent.iter().enumerate().skip(1) {
            if verify_input(prev, &ser, &utxos, i).is_ok() {
                return Err(ProofError::Script {
                    input: i,
                    outpoint: other.input[i].previous_output.to_string(),
                    reason: "its signature does not commit to the commitment input (sign with SIGHASH_ALL)".into(),
                });
            }
        }
        Ok(ReservesCheck {
            commitment,
            inputs,
            sats,
        })
    }

    /// The transaction with its final scripts, as the consensus check runs it.
    pub fn transaction(&self) -> &Transaction {
        &self.tx
    }
}

/// A PSBT as base64 (BIP-174's text form).
pub fn encode(psbt: &Psbt) -> String {
    base64::engine::general_purpose::STANDARD.encode(psbt.serialize())
}

fn script_text(s: &ScriptBuf) -> String {
    bitcoin::hex::DisplayHex::to_lower_hex_string(s.as_bytes())
}

fn as_utxos(spent: &[TxOut]) -> Vec<bitcoinconsensus::Utxo> {
    // The pointers borrow `spent`, which outlives every use of the returned vector (both
    // stay in the caller's frame); libbitcoinconsensus only reads them during the call.
    spent
        .iter()
        .map(|o| bitcoinconsensus::Utxo {
            script_pubkey: o.script_pubkey.as_bytes().as_ptr(),
            script_pubkey_len: o.script_pubkey.len() as u32,
            value: o.value.to_sat() as i64,
        })
        .collect()
}

fn verify_input(
    prev: &TxOut,
    tx_bytes: &[u8],
    utxos: &[bitcoinconsensus::Utxo],
    i: usize,
) -> Result<(), bitcoinconsensus::Error> {
    bitcoinconsensus::verify_with_flags(
        prev.script_pubkey.as_bytes(),
        prev.value.to_sat(),
        tx_bytes,
        Some(utxos),
        i,
        FLAGS,
    )
}

/// Runs every input but the first through libbitcoinconsensus with all spent outputs.
fn run_scripts(
    tx: &Transaction,
    spent: &[TxOut],
    err: impl Fn(usize, String) -> ProofError,
) -> Result<(), ProofError> {
    let ser = bitcoin::consensus::serialize(tx);
    let utxos = as_utxos(spent);
    for (i, prev) in spent.iter().enumerate().skip(1) {
        if let Err(e) = verify_input(prev, &ser, &utxos, i) {
            let reason = match e {
                bitcoinconsensus::Error::ERR_SCRIPT => {
                    "script evaluation failed (missing or invalid signature)".to_string()
                }
                other => other.to_string(),
            };
            return Err(err(i, reason));
        }
    }
    Ok(())
}
