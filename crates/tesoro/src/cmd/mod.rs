//! One module per command group; each parses its arguments and calls the library.

pub mod alerts;
pub mod audit;
pub mod bundle;
pub mod check;
pub mod demo;
pub mod entity;
pub mod holdings;
pub mod init;
pub mod key;
pub mod movements;
pub mod partner;
pub mod plan;
pub mod policy;
pub mod prices;
pub mod proof;
pub mod records;
pub mod report;
pub mod serve;
pub mod statement;
pub mod sync;
pub mod user;
pub mod wallet;
