//! tesoro-core: the domain of a strategic Bitcoin reserve, as types and pure logic.
//!
//! Entities (a state and its agencies), watch-only wallets (descriptors and bare
//! addresses), the networks they live on, and the refusal of private key material.
//! Later: movements, classification, lots, valuation, policies and statements.
//!
//! Design goals: no IO (no files, network or database here, so every rule is testable in
//! isolation); untrusted text never panics and errors never echo secrets; rust-bitcoin and
//! miniscript types at the edges, so figures are sats and scripts, never floats or strings.
#![warn(missing_docs)]

pub mod bundle;
pub mod canonical;
pub mod chain;
pub mod classify;
pub mod derive;
pub mod entity;
pub mod lots;
pub mod movement;
pub mod network;
pub mod policy;
pub mod price;
pub mod records;
pub mod report;
pub mod secret;
pub mod statement;
pub mod wallet;

pub use entity::{Entity, EntityCode};
pub use network::ChainNetwork;
pub use wallet::{DescriptorPair, Keychain, WatchedAddress};
