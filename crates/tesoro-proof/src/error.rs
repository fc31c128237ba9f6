//! Why a proof was refused, said so that the office knows which proof and what to do.

/// A proof that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The address does not parse or is for another network.
    #[error("address {address:?}: {reason}")]
    Address {
        /// The text given.
        address: String,
        /// Why.
        reason: String,
    },
    /// The signature text is not base64 of a BIP-322 witness or transaction.
    #[error("the BIP-322 signature for {address} is malformed: {reason}")]
    Malformed {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// The BIP-322 signature does not verify.
    #[error("the BIP-322 signature for {address} does not verify over the challenge: {reason}")]
    Bip322 {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// The PSBT is not a BIP-127 proof.
    #[error("not a BIP-127 proof-of-reserves PSBT: {0}")]
    Psbt(String),
    /// The commitment input does not commit to the challenge.
    #[error("the PSBT's first input does not commit to the challenge {message:?} (neither SHA-256 as BIP-127 says nor SHA-256d as bdk-reserves does)")]
    Commitment {
        /// The challenge expected.
        message: String,
    },
    /// An input's signature does not verify.
    #[error("input {input} ({outpoint}) of the proof-of-reserves PSBT does not verify: {reason}")]
    Script {
        /// Input index.
        input: usize,
        /// Its outpoint.
        outpoint: String,
        /// Why.
        reason: String,
    },
    /// An input spends an output that was not unspent at the pinned block.
    #[error("input {input} spends {outpoint}, which was not an unspent output{detail} at height {height}")]
    NotUnspent {
        /// Input index.
        input: usize,
        /// The outpoint.
        outpoint: String,
        /// Height checked.
        height: u32,
        /// More detail (the script or value the chain has).
        detail: String,
    },
    /// The chain source failed.
    #[error("cannot read the chain: {0}")]
    Chain(String),
}
