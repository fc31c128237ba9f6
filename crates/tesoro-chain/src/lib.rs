//! tesoro-chain: where blocks come from and what in them belongs to the reserve.
//!
//! Job: read Bitcoin Core's blocks directory directly ([`blocksdir`]), keep the set of watched
//! scripts and unspent outpoints ([`watch`], with descriptor keychains extended on use through
//! [`derive`]), and walk raw blocks in height order to emit one
//! [`tesoro_core::chain::BlockDelta`] per block ([`scanner`]).
//!
//! Design goals:
//! - **Fast on a whole chain**: zero-copy walk of raw block bytes (bitcoin_slices), txids hashed
//!   only for transactions that touch the watch set, a BinaryFuse8 prefilter for huge watch
//!   sets, parallel parse with in-order apply, bounded memory whatever the chain length.
//! - **Untrusted bytes never panic**: every length is checked, every failure is a
//!   [`ChainError`] naming file, byte offset, height and hash; a block is applied whole or not
//!   at all.
//! - **One direction**: this crate knows nothing of the store or the ledger; it emits plain
//!   data types from `tesoro-core` that the store persists.
#![warn(missing_docs)]

pub mod blocksdir;
pub mod derive;
pub mod error;
pub mod esplora;
pub mod http;
pub mod rederive;
pub mod rpc;
pub mod scanner;
pub mod source;
pub mod watch;

pub use blocksdir::{BlocksDir, ChainIndex, IndexedBlock, RawBlock, XorKey};
pub use derive::DescriptorDeriver;
pub use error::{ChainError, Result};
pub use scanner::{ScanOptions, ScanStats, Scanner};
pub use watch::{Prefilter, ScriptDeriver, WatchSet};

/// Scan a Core blocks dir from `from_height` to its tip: index it, then scan with `watch`,
/// handing each block's delta to `sink` in height order. The one call `tesoro sync
/// --source core-dir:PATH` needs.
pub fn scan_blocks_dir<F, E>(
    dir: &BlocksDir,
    from_height: u32,
    watch: &mut WatchSet,
    options: ScanOptions,
    sink: F,
) -> Result<(ChainIndex, ScanStats)>
where
    F: FnMut(tesoro_core::chain::BlockDelta) -> std::result::Result<(), E>,
    E: std::fmt::Display,
{
    let index = dir.index()?;
    let stats = {
        let blocks = dir.pending_from(&index, from_height)?;
        Scanner::new(watch)
            .with_options(options)
            .scan(blocks, sink)?
    };
    Ok((index, stats))
}
