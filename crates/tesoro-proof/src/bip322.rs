//! BIP-322 signed messages: one address proves control by signing the challenge.
//!
//! Signatures come as base64, optionally with the `smp`/`ful` variant prefix of the
//! BIP-322 test vectors. Without a prefix the bytes tell: a full signature is a whole
//! transaction (`to_sign`), a simple one is only its witness stack. Proof-of-funds (`pof`)
//! signatures are refused here: funds are proven with a BIP-127 PSBT, checked at the block.

use base64::Engine;
use bitcoin::{Address, Transaction, Witness};
use tesoro_core::wallet::parse_address;
use tesoro_core::ChainNetwork;

use crate::error::ProofError;

/// The two BIP-322 signature formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The witness stack only (single-key segwit and taproot, P2WSH multisig).
    Simple,
    /// The whole `to_sign` transaction (any script, P2SH multisig and P2PKH included).
    Full,
}

impl Format {
    /// `simple` or `full`, as statements record it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Simple => "simple",
            Format::Full => "full",
        }
    }
}

/// The signature's bytes and their format, without checking them against anything.
pub fn decode(address: &str, signature: &str) -> Result<(Format, Vec<u8>), ProofError> {
    let malformed = |reason: String| ProofError::Malformed {
        address: address.to_string(),
        reason,
    };
    let text = signature.trim();
    let (hint, body) = if let Some(rest) = text.strip_prefix("smp") {
        (Some(Format::Simple), rest)
    } else if let Some(rest) = text.strip_prefix("ful") {
        (Some(Format::Full), rest)
    } else if text.starts_with("pof") {
        return Err(malformed(
            "a BIP-322 proof-of-funds signature; attach the funds as a BIP-127 PSBT (tesoro proof add --psbt FILE) instead".into(),
        ));
    } else {
        (None, text)
    };
    if body.is_empty() {
        return Err(malformed("the signature is empty".into()));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| malformed(format!("not base64 ({e})")))?;
    let is_tx = bitcoin::consensus::deserialize::<Transaction>(&bytes).is_ok();
    let is_witness = bitcoin::consensus::deserialize::<Witness>(&bytes).is_ok();
    let format = match hint {
        Some(Format::Full) if is_tx => Format::Full,
        Some(Format::Simple) if is_witness => Format::Simple,
        Some(f) => {
            return Err(malformed(format!(
                "marked {} but the bytes are not a {}",
                f.as_str(),
                if f == Format::Full {
                    "transaction"
                } else {
                    "witness stack"
                }
            )))
        }
        None if is_witness => Format::Simple,
        None if is_tx => Format::Full,
        None => {
            return Err(malformed(
                "the bytes are neither a witness stack (simple) nor a transaction (full)".into(),
            ))
        }
    };
    Ok((format, bytes))
}

/// Checks `signature` (base64) by `address` over `message`; returns its format.
pub fn verify(
    address: &str,
    network: ChainNetwork,
    message: &str,
    signature: &str,
) -> Result<Format, ProofError> {
    let watched = parse_address(address, "address", network).map_err(|e| ProofError::Address {
        address: address.chars().take(100).collect(),
        reason: e.to_string(),
    })?;
    let addr: Address = watched
        .address
        .parse::<Address<bitcoin::address::NetworkUnchecked>>()
        .map_err(|e| ProofError::Address {
            address: watched.address.clone(),
            reason: e.to_string(),
        })?
        .assume_checked();
    let (format, bytes) = decode(&watched.address, signature)?;
    let fail = |reason: String| ProofError::Bip322 {
        address: watched.address.clone(),
        reason,
    };
    let outcome = match format {
        Format::Simple => {
            let w: Witness = bitcoin::consensus::deserialize(&bytes)
                .map_err(|e| fail(format!("witness: {e}")))?;
            bip322::verify_simple(&addr, message, w)
        }
        Format::Full => {
            let tx: Transaction = bitcoin::consensus::deserialize(&bytes)
                .map_err(|e| fail(format!("transaction: {e}")))?;
            bip322::verify_full(&addr, message, tx)
        }
    };
    match outcome {
        Ok(bip322::Verification::Valid { .. }) => Ok(format),
        Ok(bip322::Verification::Inconclusive) => Err(fail(
            "inconclusive: this script cannot be checked by a BIP-322 validator".into(),
        )),
        Err(e) => {
            let mut reason = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                reason.push_str(": ");
                reason.push_str(&s.to_string());
                src = s.source();
            }
            Err(fail(reason))
        }
    }
}
