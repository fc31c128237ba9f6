//! Errors of the chain layer. Each names what went wrong and where (file, byte offset, height,
//! block hash) so an operator can look at the exact bytes; none of them is ever a panic.

use std::path::PathBuf;

use bitcoin::{BlockHash, Network};

/// Everything that can go wrong reading a blocks dir or scanning blocks.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// An IO error on a named file.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The directory holds no `blk*.dat` file.
    #[error("no blk*.dat files in {dir} (is this Bitcoin Core's blocks directory?)")]
    NoBlockFiles {
        /// The directory searched.
        dir: PathBuf,
    },

    /// `xor.dat` exists but is not 8 bytes long.
    #[error("{path} is {len} bytes long; Bitcoin Core writes an 8-byte key")]
    BadXorKey {
        /// Path of xor.dat.
        path: PathBuf,
        /// Its length.
        len: u64,
    },

    /// A record starts with the magic of another network.
    #[error(
        "{file} at byte {offset}: record has the {found} magic, but the blocks dir was opened as \
         {expected}; pick the matching network (--network) or the right directory"
    )]
    WrongNetwork {
        /// The blk file.
        file: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// The network whose magic was found.
        found: Network,
        /// The network expected.
        expected: Network,
    },

    /// The chain found does not start at the expected network's genesis block.
    #[error(
        "the best chain in {dir} starts at {found} but the {network} genesis block is {expected}; \
         wrong network or an incomplete (pruned) blocks dir"
    )]
    GenesisMismatch {
        /// The blocks dir.
        dir: PathBuf,
        /// The network expected.
        network: Network,
        /// The expected genesis hash.
        expected: BlockHash,
        /// The first block of the best chain found.
        found: BlockHash,
    },

    /// A record is damaged in a way that is not the normal zero tail or a truncated last record.
    #[error("{file} at byte {offset}: corrupt record: {reason}")]
    CorruptRecord {
        /// The blk file.
        file: PathBuf,
        /// Byte offset of the record (of its magic).
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// A block's bytes could not be parsed.
    #[error("block {hash} at height {height} ({location}): cannot parse: {reason}")]
    BadBlock {
        /// Height in the best chain.
        height: u32,
        /// Block hash (from the header index).
        hash: BlockHash,
        /// Where it was read from (file and offset, or another source's name).
        location: String,
        /// Parser's complaint.
        reason: String,
    },

    /// A block read back does not hash to what the header index said.
    #[error("{file} at byte {offset}: block at height {height} hashes to {found}, index says {expected}; the file changed while reading")]
    BlockChanged {
        /// The blk file.
        file: PathBuf,
        /// Byte offset of the block data.
        offset: u64,
        /// Height in the best chain.
        height: u32,
        /// Hash the index recorded.
        expected: BlockHash,
        /// Hash of the bytes read now.
        found: BlockHash,
    },

    /// A height past the tip was asked for.
    #[error("height {height} is past the tip at {tip}")]
    HeightPastTip {
        /// Height asked for.
        height: u32,
        /// Tip height.
        tip: u32,
    },

    /// A descriptor keychain could not derive a script.
    #[error("cannot derive script {index} of keychain {keychain} of owner {owner}: {reason}")]
    Derive {
        /// Owner id of the wallet.
        owner: u64,
        /// Keychain number.
        keychain: u32,
        /// Child index.
        index: u32,
        /// Why.
        reason: String,
    },

    /// A descriptor was refused (private key material, wildcard missing, unparsable).
    #[error("descriptor refused: {0}")]
    Descriptor(String),

    /// Prevout data handed to the scanner does not match the block's inputs.
    #[error("block {hash} at height {height}: {reason}")]
    Prevouts {
        /// Height of the block.
        height: u32,
        /// Block hash.
        hash: BlockHash,
        /// What does not match.
        reason: String,
    },

    /// The consumer of block deltas failed; scanning stopped before the next block.
    #[error("block sink failed at height {height}: {reason}")]
    Sink {
        /// Height of the block whose delta was refused.
        height: u32,
        /// The sink's error text.
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = ChainError> = std::result::Result<T, E>;

impl ChainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ChainError::Io {
            path: path.into(),
            source,
        }
    }
}
