//! Checking every proof attached to a statement against one set of chain facts: the
//! office's store when the statement is made, the verifier's own blocks when it is checked.

use std::collections::{BTreeSet, HashMap};

use bitcoin::{Address, OutPoint, ScriptBuf, TxOut};
use serde::Serialize;
use tesoro_core::statement::{Proof, Statement};
use tesoro_core::ChainNetwork;

use crate::bip127::ReservesPsbt;
use crate::error::ProofError;

/// The outcome of one proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProofOutcome {
    /// Position in the statement's `proofs`.
    pub index: usize,
    /// `bip322` or `bip127`.
    pub kind: &'static str,
    /// The address (BIP-322) or the number of coins (BIP-127).
    pub subject: String,
    /// Sats it proves (BIP-127; BIP-322 proves control, not an amount: 0).
    pub sats: u64,
    /// Valid.
    pub ok: bool,
    /// Why not, or what was checked.
    pub detail: String,
    /// Addresses it proves control of (empty when not valid).
    #[serde(skip)]
    pub addresses: Vec<String>,
}

/// Scripts whose outputs a verifier must look up to check the statement's BIP-127 proofs
/// (what the PSBTs claim they spend; the chain then says what really was there).
pub fn scripts_needed(st: &Statement) -> Vec<ScriptBuf> {
    let mut out = BTreeSet::new();
    for p in &st.proofs {
        if let Proof::Bip127 { psbt, .. } = p {
            if let Ok(r) = ReservesPsbt::parse(psbt.as_bytes()) {
                out.extend(r.claimed_scripts().into_iter().flatten());
            }
        }
    }
    out.into_iter().collect()
}

/// Checks one BIP-127 PSBT over `message` at `height`; on success returns what it proves.
pub fn check_bip127(
    psbt: &ReservesPsbt,
    message: &str,
    unspent: &HashMap<OutPoint, TxOut>,
    height: u32,
    network: ChainNetwork,
) -> Result<(crate::bip127::ReservesCheck, Vec<String>), ProofError> {
    let c = psbt.verify(message, unspent, height)?;
    let addrs: BTreeSet<String> = c
        .inputs
        .iter()
        .filter_map(|(_, o)| Address::from_script(&o.script_pubkey, network.0).ok())
        .map(|a| a.to_string())
        .collect();
    Ok((c, addrs.into_iter().collect()))
}

/// Checks every proof of `st` with `unspent` (outputs unspent at the statement's height, at
/// least those paying [`scripts_needed`]).
pub fn check_proofs(
    st: &Statement,
    network: ChainNetwork,
    unspent: &HashMap<OutPoint, TxOut>,
) -> Vec<ProofOutcome> {
    let message = st.expected_challenge();
    st.proofs
        .iter()
        .enumerate()
        .map(|(index, p)| match p {
            Proof::Bip322 {
                address,
                format,
                signature,
            } => {
                let r = crate::bip322::verify(address, network, &message, signature);
                let (ok, detail) = match r {
                    Ok(f) if f.as_str() == format => (true, format!("BIP-322 {format} signature valid")),
                    Ok(f) => (
                        false,
                        format!("recorded as {format} but the signature is {}", f.as_str()),
                    ),
                    Err(e) => (false, e.to_string()),
                };
                ProofOutcome {
                    index,
                    kind: "bip322",
                    subject: address.clone(),
                    sats: 0,
                    ok,
                    detail,
                    addresses: if ok { vec![address.clone()] } else { vec![] },
                }
            }
            Proof::Bip127 {
                psbt,
                commitment,
                outpoints,
                sats,
            } => {
                let subject = format!("{} coins", outpoints.len());
                let fail = |detail: String| ProofOutcome {
                    index,
                    kind: "bip127",
                    subject: subject.clone(),
                    sats: *sats,
                    ok: false,
                    detail,
                    addresses: vec![],
                };
                let parsed = match ReservesPsbt::parse(psbt.as_bytes()) {
                    Ok(p) => p,
                    Err(e) => return fail(e.to_string()),
                };
                match check_bip127(&parsed, &message, unspent, st.block.height, network) {
                    Err(e) => fail(e.to_string()),
                    Ok((c, addrs)) => {
                        let ops: Vec<String> =
                            c.inputs.iter().map(|(o, _)| o.to_string()).collect();
                        if c.commitment.as_str() != commitment {
                            fail(format!(
                                "recorded commitment {commitment} but the PSBT uses {}",
                                c.commitment.as_str()
                            ))
                        } else if &ops != outpoints || c.sats != *sats {
                            fail(format!(
                                "the statement records {} sats in {:?}, the PSBT proves {} sats in {:?}",
                                sats, outpoints, c.sats, ops
                            ))
                        } else {
                            ProofOutcome {
                                index,
                                kind: "bip127",
                                subject,
                                sats: c.sats,
                                ok: true,
                                detail: format!(
                                    "BIP-127 proof valid ({} commitment), every coin unspent at height {}",
                                    c.commitment.as_str(),
                                    st.block.height
                                ),
                                addresses: addrs,
                            }
                        }
                    }
                }
            }
        })
        .collect()
}

/// Listed addresses marked `verified` that no valid proof covers.
pub fn unproven_verified(st: &Statement, outcomes: &[ProofOutcome]) -> Vec<String> {
    let ok: BTreeSet<&str> = outcomes
        .iter()
        .filter(|o| o.ok)
        .flat_map(|o| o.addresses.iter().map(String::as_str))
        .collect();
    st.addresses
        .iter()
        .filter(|a| a.tier == tesoro_core::statement::Tier::Verified)
        .filter(|a| !ok.contains(a.address.as_str()))
        .map(|a| a.address.clone())
        .collect()
}
