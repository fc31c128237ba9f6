//! The scenario file (TOML). See the crate docs for the format and an example.

use serde::{Deserialize, Serialize};

use crate::error::{GenError, Result};
use crate::keys::Kind;

/// A whole scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Seed for every key and every random choice.
    pub seed: u64,
    /// Height of the final tip (more blocks are mined if events or a reorg need them).
    #[serde(default)]
    pub tip_height: u32,
    /// Blocks mined to the generator's faucet before anything else (coinbase maturity is 100,
    /// so events need at least 101).
    #[serde(default = "default_premine")]
    pub premine: u32,
    /// Time of block 1 (Unix seconds); each block adds `block_interval`.
    #[serde(default = "default_start_time")]
    pub start_time: u32,
    /// Seconds between blocks.
    #[serde(default = "default_interval")]
    pub block_interval: u32,
    /// Heights at which expected balances are written (the tip is always added).
    #[serde(default)]
    pub checkpoints: Vec<u32>,
    /// How blocks are laid out in the blk files.
    #[serde(default)]
    pub layout: Layout,
    /// Descriptor wallets the generator holds keys for.
    #[serde(default, rename = "wallet")]
    pub wallets: Vec<WalletSpec>,
    /// Bare (published) addresses the generator holds keys for.
    #[serde(default, rename = "address")]
    pub addresses: Vec<AddressSpec>,
    /// Events, in order.
    #[serde(default, rename = "event")]
    pub events: Vec<Event>,
    /// Optional background traffic.
    #[serde(default)]
    pub background: Option<Background>,
}

fn default_premine() -> u32 {
    110
}
fn default_start_time() -> u32 {
    1_700_000_000
}
fn default_interval() -> u32 {
    600
}

/// blk file layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Obfuscation key as 16 hex digits; `"random"` (from the seed, the default) or `"none"`.
    #[serde(default = "default_xor")]
    pub xor_key: String,
    /// Roll over to a new blk file when the next record would pass this size (Core: 128 MiB).
    #[serde(default = "default_max_file")]
    pub max_file_size: u64,
    /// Blocks are written up to this many positions away from mining order (0 = in order).
    #[serde(default = "default_window")]
    pub shuffle_window: usize,
    /// Pad the last file with zeros to a 16 MiB boundary as Core's preallocation does.
    #[serde(default = "default_true")]
    pub zero_tail: bool,
}

fn default_xor() -> String {
    "random".into()
}
fn default_max_file() -> u64 {
    128 * 1024 * 1024
}
fn default_window() -> usize {
    8
}
fn default_true() -> bool {
    true
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            xor_key: default_xor(),
            max_file_size: default_max_file(),
            shuffle_window: default_window(),
            zero_tail: true,
        }
    }
}

/// A descriptor wallet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletSpec {
    /// Unique name (also the owner name in expected.json).
    pub name: String,
    /// Script type.
    pub kind: Kind,
    /// Gap limit the watcher should use (recorded in expected.json).
    #[serde(default = "default_gap")]
    pub gap_limit: u32,
}

fn default_gap() -> u32 {
    20
}

/// A bare address.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressSpec {
    /// Unique name.
    pub name: String,
    /// Script type (single key, or 2-of-3 multisig for `sh-multi`/`wsh-multi`).
    pub kind: Kind,
}

/// One scenario event. (`deny_unknown_fields` does not combine with `flatten`; the action's
/// own fields are checked by [`Action`].)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Height of the block that carries it.
    pub height: u32,
    /// What happens.
    #[serde(flatten)]
    pub action: Action,
}

/// Event actions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// The faucet (outside world) pays a watched wallet or address: a purchase, a seizure.
    Receive {
        /// Wallet or address name.
        to: String,
        /// Amount in sats.
        amount_sat: u64,
        /// For wallets: the child index to pay (default: the next unused external index).
        #[serde(default)]
        index: Option<u32>,
    },
    /// A watched wallet or address pays outside (a sale, a payment); change goes back to it.
    Send {
        /// Wallet or address name.
        from: String,
        /// Amount in sats.
        amount_sat: u64,
    },
    /// Coins move between watched owners: a consolidation (no amount: sweep everything) or a
    /// split/move of an amount (change to the first source).
    Transfer {
        /// Source names.
        from: Vec<String>,
        /// Destination name.
        to: String,
        /// Amount in sats; absent = everything spendable.
        #[serde(default)]
        amount_sat: Option<u64>,
        /// Split the amount into this many equal outputs to `to` (default 1).
        #[serde(default)]
        outputs: Option<u32>,
    },
    /// This block's coinbase pays a watched owner (a mining payout).
    Coinbase {
        /// Wallet or address name.
        to: String,
    },
    /// The last `depth` blocks become stale; the chain continues at `height - depth` with the
    /// events that follow.
    Reorg {
        /// Number of blocks orphaned.
        depth: u32,
    },
}

/// Background traffic of realistic shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Background {
    /// First height with background traffic (default: premine + 1).
    #[serde(default)]
    pub from_height: Option<u32>,
    /// Serialized block size to fill to.
    #[serde(default = "default_block_bytes")]
    pub block_bytes: usize,
}

fn default_block_bytes() -> usize {
    1_500_000
}

impl Scenario {
    /// Parse a scenario from TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| GenError::Parse(e.to_string()))
    }

    /// The owner names (wallets then addresses), checked unique.
    pub fn validate(&self) -> Result<()> {
        let mut names = std::collections::BTreeSet::new();
        for n in self
            .wallets
            .iter()
            .map(|w| &w.name)
            .chain(self.addresses.iter().map(|a| &a.name))
        {
            if !names.insert(n.clone()) {
                return Err(GenError::Invalid(format!("name {n:?} used twice")));
            }
        }
        // Small files are allowed so tests can span several; a block must still fit in one.
        if self.layout.max_file_size < 4096 {
            return Err(GenError::Invalid("layout.max_file_size below 4 KiB".into()));
        }
        Ok(())
    }
}
