//! One module per command group; each parses its arguments and calls the library.

pub mod entity;
pub mod holdings;
pub mod init;
pub mod plan;
pub mod sync;
pub mod wallet;
