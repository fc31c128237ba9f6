//! One module per command group; each parses its arguments and calls the library.

pub mod entity;
pub mod init;
pub mod plan;
pub mod wallet;
