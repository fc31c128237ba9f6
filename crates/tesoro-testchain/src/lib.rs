//! tesoro-testchain: a deterministic regtest chain generator. A scenario file (TOML) becomes a
//! Bitcoin Core `blocks/` directory written exactly as Core writes it, plus `expected.json`
//! with the balances the scenario implies, computed from the generator's own UTXO book, so
//! scanner tests compare against numbers that no scanner produced.
//!
//! Design goals:
//! - **Core's file format, warts included**: `blkNNNNN.dat` records with the regtest magic,
//!   roll-over at 128 MiB, a non-zero `xor.dat` key, blocks out of mining order, stale blocks
//!   of a reorg left in the files, the zero tail of the last (preallocated) file.
//! - **Valid blocks**: BIP34 height in the coinbase, witness commitment, merkle root, regtest
//!   proof of work (nBits `0x207fffff`, nonce ground). Scenario transactions carry real
//!   signatures from keys derived from the seed; background traffic has signatures of the
//!   right shape but random bytes (generation speed matters more there).
//! - **Deterministic**: the same scenario and seed give byte-identical files.
//! - **Watch-only outward**: only public descriptors (tpub) leave the generator.
//!
//! # Scenario format
//!
//! ```toml
//! seed = 7                 # every key and random choice derives from it
//! tip_height = 200         # final height (more blocks are mined if events or a reorg need them)
//! premine = 110            # blocks mined to the generator's faucet first (coinbase maturity 100)
//! start_time = 1700000000  # time of block 0 + height * block_interval
//! block_interval = 600
//! checkpoints = [120, 150] # heights with expected balances (the tip is always added)
//!
//! [layout]                 # all optional
//! xor_key = "random"       # "random" (from the seed), "none", or 16 hex digits
//! max_file_size = 134217728
//! shuffle_window = 8       # blocks written up to this many places out of order
//! zero_tail = true         # last file padded with raw zeros to 16 MiB, like Core
//!
//! [[wallet]]               # a descriptor wallet; kinds: wpkh, tr, pkh, sh-wpkh, wsh-multi, sh-multi
//! name = "treasury"
//! kind = "wsh-multi"       # 2-of-3 sortedmulti
//! gap_limit = 20
//!
//! [[address]]              # a bare published address (same kinds; multisig kinds are 2-of-3)
//! name = "published"
//! kind = "sh-multi"
//!
//! [[party]]                # an outside party with its own address (an exchange, a pool)
//! name = "exchange"
//!
//! [[event]]                # the faucet (outside world) pays a watched owner
//! height = 111
//! kind = "receive"
//! to = "treasury"
//! amount_sat = 150000000
//! index = 30               # optional, wallets only: pay this child index
//! from = "exchange"        # optional: the party pays (the faucet funds it in the same block)
//!
//! [[event]]                # a watched owner pays outside; change to its internal keychain
//! height = 112
//! kind = "send"
//! from = "treasury"
//! amount_sat = 20000000
//! to = "exchange"          # optional: pay the party (default: a fresh outside address)
//!
//! [[event]]                # by date instead of height: the block of that UTC day; repeats
//! date = "2022-11-17"      # every `every_days` until `until` (inclusive)
//! every_days = 1
//! until = "2022-12-31"
//! kind = "receive"
//! to = "treasury"
//! amount_sat = 100000000
//!
//! [[event]]                # between watched owners: sweep (no amount) or move an amount
//! height = 113
//! kind = "transfer"
//! from = ["published", "treasury"]
//! to = "cold"
//! outputs = 3              # optional: split into this many outputs
//!
//! [[event]]                # this block's coinbase pays a watched owner (several: equal shares)
//! height = 114
//! kind = "coinbase"
//! to = "mining"
//!
//! [[event]]                # blocks height-depth .. height-1 become stale with their events;
//! height = 118             # the chain continues at height-depth with the events listed next
//! kind = "reorg"
//! depth = 2
//!
//! [background]             # optional traffic of realistic shape for benchmarks
//! from_height = 111
//! block_bytes = 1500000
//! ```
//!
//! Events are listed in height order; several at one height go into that block in order.
//! Dated events (and `tip_date = "YYYY-MM-DD"`) are placed from `start_time` and
//! `block_interval` and sorted into height order, keeping the file's order within a block; a
//! scenario with dates has no reorgs.
//! Balances in `expected.json` count every unspent output of the owner, immature coinbase
//! outputs included.
//!
//! # Use
//!
//! ```no_run
//! let scenario = tesoro_testchain::Scenario::from_toml(&std::fs::read_to_string("s.toml")?)?;
//! let out = tesoro_testchain::generate(&scenario, std::path::Path::new("/tmp/chain"))?;
//! println!("{} blocks, tip {}", out.expected.blocks_written, out.expected.tip_hash);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod background;
pub mod block;
pub mod error;
pub mod esplora_server;
pub mod generate;
pub mod keys;
pub mod scenario;
pub mod writer;

pub use error::{GenError, Result};
pub use generate::{generate, Checkpoint, Expected, ExpectedAddress, ExpectedWallet, Generated};
pub use keys::Kind;
pub use scenario::{Action, Background, Event, Layout, PartySpec, Scenario};
