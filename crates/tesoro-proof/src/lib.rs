//! tesoro-proof: proofs of control for tesoro statements, checked at the statement's block.
//!
//! Two kinds of proof, both over the statement's challenge message
//! ([`tesoro_core::statement::challenge_message`]), which names the institution, the day and
//! the pinned block:
//!
//! - **BIP-322** signed messages, one address each ([`bip322`]): simple and full formats;
//!   P2WPKH, P2SH-P2WPKH, P2WSH and P2SH multisig, P2TR key path, P2PKH.
//! - **BIP-127** proof-of-reserves transactions ([`bip127`]): a PSBT whose first input commits
//!   to the message and whose other inputs spend the reserve's outputs. Every input's script
//!   is run through Bitcoin Core's consensus library with *all* spent outputs (so taproot
//!   signatures are really checked; bdk-reserves 3.2.0 checks without them and accepts a
//!   forged P2TR input), each signature must commit to the commitment input, and the spent
//!   outputs must be unspent **at the pinned block** in the verifier's own chain
//!   ([`at_height`]), not merely at the tip.
//!
//! Design goals: the product never sees a private key (signers sign offline with their own
//! wallets; this crate only verifies); untrusted bytes never panic; the chain facts a proof
//! is checked against come from the caller (a store at creation, the verifier's own blocks
//! at verification), never from the proof itself.
#![warn(missing_docs)]

pub mod at_height;
pub mod bip127;
pub mod bip322;
pub mod check;
pub mod error;

pub use error::ProofError;
