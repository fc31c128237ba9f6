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
    /// Day of the final tip (`YYYY-MM-DD`), an alternative to `tip_height`: the chain reaches
    /// at least the block of that day.
    #[serde(default)]
    pub tip_date: Option<String>,
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
    /// Named outside parties (an exchange, a mining pool, donors): unwatched addresses that
    /// pay (`receive … from`) or are paid (`send … to`), so a consumer can write counterparty
    /// rules for them.
    #[serde(default, rename = "party")]
    pub parties: Vec<PartySpec>,
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

/// An outside party: one P2WPKH address, derived from the seed and its name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartySpec {
    /// Unique name (among wallets, addresses and parties).
    pub name: String,
}

/// One scenario event. (`deny_unknown_fields` does not combine with `flatten`; the action's
/// own fields are checked by [`Action`].)
///
/// An event is placed by `height`, or by `date` (`YYYY-MM-DD`: the first block of that UTC
/// day, from `start_time` and `block_interval`). A dated event may repeat: every `every_days`
/// days up to and including `until`. Dated events are sorted into height order (stably, so
/// events of one day keep their order in the file); a scenario with dates has no reorgs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Height of the block that carries it (set from `date` when that is given).
    #[serde(default)]
    pub height: u32,
    /// Day of the block that carries it, instead of `height`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Repeat every this many days (with `date` and `until`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_days: Option<u32>,
    /// Last day of a repeated event (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
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
        /// The party that pays (default: the generator's faucet). The faucet funds the party
        /// in the same block, so the payment's input reveals the party's address.
        #[serde(default)]
        from: Option<String>,
    },
    /// A watched wallet or address pays outside (a sale, a payment); change goes back to it.
    Send {
        /// Wallet or address name.
        from: String,
        /// Amount in sats.
        amount_sat: u64,
        /// The party paid (default: a fresh outside address).
        #[serde(default)]
        to: Option<String>,
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
            .chain(self.parties.iter().map(|p| &p.name))
        {
            if !names.insert(n.clone()) {
                return Err(GenError::Invalid(format!("name {n:?} used twice")));
            }
        }
        for (i, e) in self.events.iter().enumerate() {
            if e.height == 0 && e.date.is_none() {
                return Err(GenError::Event {
                    event: i,
                    height: 0,
                    reason: "give a height (1 or more) or a date".into(),
                });
            }
        }
        // Small files are allowed so tests can span several; a block must still fit in one.
        if self.layout.max_file_size < 4096 {
            return Err(GenError::Invalid("layout.max_file_size below 4 KiB".into()));
        }
        Ok(())
    }

    /// Unix time of the block at `height` (as the generator stamps it, before any reorg).
    pub fn block_time(&self, height: u32) -> u64 {
        u64::from(self.start_time) + u64::from(height) * u64::from(self.block_interval)
    }

    /// Height of the first block of `date`'s UTC day. `what` names the field in errors.
    pub fn height_of_date(&self, date: &str, what: &str) -> Result<u32> {
        let day = parse_day(date).ok_or_else(|| {
            GenError::Invalid(format!("{what}: {date:?} is not a date (YYYY-MM-DD)"))
        })?;
        let start = day * 86_400;
        let interval = i64::from(self.block_interval.max(1));
        let first = i64::from(self.start_time);
        // Smallest h with first + h * interval >= start of the day.
        let h = (start - first + interval - 1).div_euclid(interval).max(1);
        let t = first + h * interval;
        if t >= start + 86_400 {
            return Err(GenError::Invalid(format!(
                "{what}: no block falls on {date} (blocks are {} s apart)",
                self.block_interval
            )));
        }
        u32::try_from(h)
            .map_err(|_| GenError::Invalid(format!("{what}: {date} is too far from start_time")))
    }

    /// The scenario with every dated event placed at its height and every repeated event
    /// expanded, in height order; `tip_date` becomes `tip_height`. Scenarios without dates
    /// come back unchanged.
    pub fn resolved(&self) -> Result<Scenario> {
        let dated = self.tip_date.is_some()
            || self
                .events
                .iter()
                .any(|e| e.date.is_some() || e.every_days.is_some() || e.until.is_some());
        if !dated {
            return Ok(self.clone());
        }
        let ev_err = |i: usize, e: &Event, reason: String| GenError::Event {
            event: i,
            height: e.height,
            reason,
        };
        let mut out = self.clone();
        if let Some(d) = &self.tip_date {
            out.tip_height = out.tip_height.max(self.height_of_date(d, "tip_date")?);
            out.tip_date = None;
        }
        let mut events = Vec::with_capacity(self.events.len());
        for (i, e) in self.events.iter().enumerate() {
            if matches!(e.action, Action::Reorg { .. }) {
                return Err(ev_err(
                    i,
                    e,
                    "a scenario with dated events cannot have reorgs (events are sorted by date)"
                        .into(),
                ));
            }
            let Some(date) = &e.date else {
                if e.every_days.is_some() || e.until.is_some() {
                    return Err(ev_err(i, e, "every_days and until need a date".into()));
                }
                events.push((e.height, i, e.clone()));
                continue;
            };
            if e.height != 0 {
                return Err(ev_err(i, e, "give height or date, not both".into()));
            }
            let first = self
                .height_of_date(date, &format!("event {i} date"))
                .map_err(|x| ev_err(i, e, x.to_string()))?;
            let mut one = e.clone();
            one.date = None;
            one.every_days = None;
            one.until = None;
            match (e.every_days, &e.until) {
                (None, None) => events.push((
                    first,
                    i,
                    Event {
                        height: first,
                        ..one
                    },
                )),
                (Some(every), Some(until)) if every > 0 => {
                    let d0 = parse_day(date).unwrap_or_default();
                    let d1 = parse_day(until).ok_or_else(|| {
                        ev_err(i, e, format!("until {until:?} is not a date (YYYY-MM-DD)"))
                    })?;
                    if d1 < d0 {
                        return Err(ev_err(i, e, format!("until {until} is before {date}")));
                    }
                    let mut d = d0;
                    while d <= d1 {
                        let h = self
                            .height_of_date(&fmt_day(d), &format!("event {i}"))
                            .map_err(|x| ev_err(i, e, x.to_string()))?;
                        events.push((
                            h,
                            i,
                            Event {
                                height: h,
                                ..one.clone()
                            },
                        ));
                        d += i64::from(every);
                    }
                }
                _ => {
                    return Err(ev_err(
                        i,
                        e,
                        "a repeated event needs every_days (at least 1) and until".into(),
                    ))
                }
            }
        }
        // Stable: events of one block keep the order of the file (and of the repetitions).
        events.sort_by_key(|(h, i, _)| (*h, *i));
        out.events = events.into_iter().map(|(_, _, e)| e).collect();
        Ok(out)
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian).
pub fn parse_day(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `YYYY-MM-DD` of a day number from [`parse_day`].
pub fn fmt_day(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2025-07-17"), Some(20_286));
        for d in [-1000, 0, 59, 365, 10_000, 20_286, 30_000] {
            assert_eq!(parse_day(&fmt_day(d)), Some(d));
        }
        assert_eq!(parse_day("2025-02-29"), None);
        assert_eq!(parse_day("2024-02-29"), Some(19_782));
    }

    #[test]
    fn dated_events_land_on_their_day_in_order() {
        let sc = Scenario::from_toml(
            r#"
seed = 1
start_time = 1609502400   # 2021-01-01 12:00 UTC is block 0
block_interval = 86400
tip_date = "2021-06-01"
[[address]]
name = "a"
kind = "wpkh"
[[event]]
date = "2021-05-03"
every_days = 2
until = "2021-05-07"
kind = "receive"
to = "a"
amount_sat = 1000
[[event]]
date = "2021-05-03"
kind = "send"
from = "a"
amount_sat = 1
[[event]]
height = 111
kind = "receive"
to = "a"
amount_sat = 5
"#,
        )
        .unwrap();
        let r = sc.resolved().unwrap();
        let hs: Vec<u32> = r.events.iter().map(|e| e.height).collect();
        assert_eq!(hs, vec![111, 122, 122, 124, 126]);
        assert!(matches!(r.events[2].action, Action::Send { .. }));
        assert_eq!(r.tip_height, 151);
        assert_eq!(sc.block_time(122), 1609502400 + 122 * 86400);
        assert_eq!(fmt_day(sc.block_time(122) as i64 / 86_400), "2021-05-03");
    }
}
