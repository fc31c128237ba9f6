//! Holdings as the chain index sees them, at the tip or at any past height or date: balances
//! grouped per entity (rolled up the tree), per wallet or per address; unspent outputs; and
//! the transactions touching the reserve. The CLI (`balance`, `utxos`, `history`) and the
//! HTTP API both print what these return.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tesoro_core::chain::BlockMeta;
use tesoro_core::entity::{roll_up, tree_order};
use tesoro_core::wallet::script_address;
use tesoro_core::EntityCode;

use crate::{Result, Store, StoreError, WalletRow};

/// Which block a figure is taken at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The stored tip.
    Tip,
    /// A block height.
    Height(u32),
    /// The last block at or before the end of this UTC day.
    Date(time::Date),
}

impl At {
    /// Parses a height (`840000`) or a date (`2025-07-17`); `None` or empty is the tip.
    pub fn parse(s: Option<&str>) -> std::result::Result<At, String> {
        let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(At::Tip);
        };
        if s.chars().all(|c| c.is_ascii_digit()) {
            return s
                .parse()
                .map(At::Height)
                .map_err(|_| format!("{s:?} is not a block height"));
        }
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(s, &fmt)
            .map(At::Date)
            .map_err(|_| format!("{s:?}: give a block height or a date as YYYY-MM-DD"))
    }
}

/// How balances are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// Per entity, each with everything below it.
    Entity,
    /// Per wallet.
    Wallet,
    /// Per address.
    Address,
}

impl GroupBy {
    /// `entity`, `wallet` or `address`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Entity => "entity",
            GroupBy::Wallet => "wallet",
            GroupBy::Address => "address",
        }
    }
}

/// One line of a balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldingsGroup {
    /// Entity code, `ENTITY/wallet`, or address.
    pub key: String,
    /// Entity name, or the wallet of an address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sats.
    pub sats: u64,
    /// BTC, exact, eight decimals.
    pub btc: String,
    /// Unspent outputs.
    pub utxos: u64,
    /// Depth in the entity tree (by entity only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
}

/// A balance at one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holdings {
    /// Block height.
    pub height: u32,
    /// Block hash.
    pub hash: String,
    /// Block time (Unix seconds).
    pub block_time: u32,
    /// Block date (UTC).
    pub date: String,
    /// Grouping.
    pub by: GroupBy,
    /// Total sats.
    pub total_sats: u64,
    /// Total BTC.
    pub total_btc: String,
    /// Unspent outputs in total.
    pub utxo_count: u64,
    /// The lines.
    pub groups: Vec<HoldingsGroup>,
}

/// One unspent output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UtxoEntry {
    /// `txid:vout`.
    pub outpoint: String,
    /// `ENTITY/wallet`.
    pub wallet: String,
    /// Address, when the script has one.
    pub address: Option<String>,
    /// Sats.
    pub sats: u64,
    /// BTC.
    pub btc: String,
    /// Height of the block that created it.
    pub height: u32,
    /// From a coinbase.
    pub coinbase: bool,
    /// `keychain/index` for descriptor wallets.
    pub derivation: Option<String>,
}

/// One transaction as the reserve sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// Txid.
    pub txid: String,
    /// Height.
    pub height: u32,
    /// Date (UTC).
    pub date: String,
    /// Received by the wallets in scope.
    pub received_sats: u64,
    /// Spent from them.
    pub sent_sats: u64,
    /// Received minus spent.
    pub net_sats: i64,
}

/// Sats as BTC with all eight decimals, exact (no floats).
pub fn btc(sats: u64) -> String {
    format!("{}.{:08}", sats / 100_000_000, sats % 100_000_000)
}

/// A block time as a UTC date, `YYYY-MM-DD`.
pub fn date_of(time: u32) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::from(time))
        .map(|t| {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        })
        .unwrap_or_else(|_| "?".into())
}

impl Store {
    /// The stored block `at` names; a clear error when it is outside the index.
    pub async fn resolve_at(&self, at: At) -> Result<BlockMeta> {
        let tip = self.chain_tip().await?.ok_or_else(|| {
            StoreError::NotFound(
                "the chain index is empty: run `tesoro sync --source …` first".into(),
            )
        })?;
        let start = self.chain_start().await?.map_or(0, |b| b.height);
        match at {
            At::Tip => Ok(tip),
            At::Height(h) => {
                if h > tip.height {
                    return Err(StoreError::NotFound(format!(
                        "height {h} is past the synced tip {}: sync first",
                        tip.height
                    )));
                }
                if h < start {
                    return Err(StoreError::NotFound(format!(
                        "height {h} is before the first indexed block {start}: the index starts at the earliest wallet birth height"
                    )));
                }
                self.block_at(h).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!("block {h} is missing from the index"))
                })
            }
            At::Date(d) => {
                let end = d
                    .with_hms(23, 59, 59)
                    .map_err(|e| StoreError::NotFound(format!("{d}: {e}")))?
                    .assume_utc()
                    .unix_timestamp();
                self.block_at_or_before_time(end).await?.ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "no indexed block is at or before the end of {d}: the index starts at height {start}"
                    ))
                })
            }
        }
    }

    /// Holdings at `block` of `entity` and everything below it (or of everything).
    pub async fn holdings(
        &self,
        entity: Option<&EntityCode>,
        block: &BlockMeta,
        by: GroupBy,
    ) -> Result<Holdings> {
        let wallets = self.wallets(entity).await?;
        let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
        let utxos = self.utxos_at(Some(block.height), Some(&ids)).await?;
        let by_id: HashMap<i64, &WalletRow> = wallets.iter().map(|w| (w.id, w)).collect();
        let network = self.network().0;
        let total: u64 = utxos.iter().map(|u| u.value.to_sat()).sum();
        let group = |key: String, name: Option<String>, sats: u64, n: u64, depth| HoldingsGroup {
            key,
            name,
            sats,
            btc: btc(sats),
            utxos: n,
            depth,
        };
        let groups: Vec<HoldingsGroup> = match by {
            GroupBy::Wallet => {
                let mut m: BTreeMap<String, (u64, u64)> =
                    wallets.iter().map(|w| (w.full_name(), (0, 0))).collect();
                for u in &utxos {
                    if let Some(w) = by_id.get(&u.wallet_id) {
                        let e = m.entry(w.full_name()).or_default();
                        e.0 += u.value.to_sat();
                        e.1 += 1;
                    }
                }
                m.into_iter()
                    .map(|(k, (s, n))| group(k, None, s, n, None))
                    .collect()
            }
            GroupBy::Address => {
                let mut m: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
                for u in &utxos {
                    let addr = script_address(&u.script_pubkey, network)
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| format!("script:{}", u.script_pubkey.to_hex_string()));
                    let w = by_id
                        .get(&u.wallet_id)
                        .map(|w| w.full_name())
                        .unwrap_or_default();
                    let e = m.entry((addr, w)).or_default();
                    e.0 += u.value.to_sat();
                    e.1 += 1;
                }
                m.into_iter()
                    .map(|((addr, w), (s, n))| group(addr, Some(w), s, n, None))
                    .collect()
            }
            GroupBy::Entity => {
                let entities = self.entities().await?;
                let mut own_sats: BTreeMap<String, u64> = BTreeMap::new();
                let mut own_utxos: BTreeMap<String, u64> = BTreeMap::new();
                for u in &utxos {
                    if let Some(w) = by_id.get(&u.wallet_id) {
                        *own_sats.entry(w.entity.to_string()).or_default() += u.value.to_sat();
                        *own_utxos.entry(w.entity.to_string()).or_default() += 1;
                    }
                }
                // Each entity's own holdings count for every ancestor too.
                let parent: BTreeMap<String, Option<String>> = entities
                    .iter()
                    .map(|e| (e.code.to_string(), e.parent.as_ref().map(|p| p.to_string())))
                    .collect();
                let rolled_sats = roll_up(&own_sats, &parent);
                let rolled_utxos = roll_up(&own_utxos, &parent);
                let scope: Option<Vec<EntityCode>> = match entity {
                    Some(c) => Some(self.entity_subtree(c).await?),
                    None => None,
                };
                tree_order(&entities)
                    .into_iter()
                    .filter(|r| scope.as_ref().is_none_or(|s| s.contains(&r.entity.code)))
                    .map(|r| {
                        let code = r.entity.code.as_str();
                        group(
                            r.entity.code.to_string(),
                            Some(r.entity.name.clone()),
                            rolled_sats.get(code).copied().unwrap_or_default(),
                            rolled_utxos.get(code).copied().unwrap_or_default(),
                            Some(r.depth),
                        )
                    })
                    .collect()
            }
        };
        Ok(Holdings {
            height: block.height,
            hash: block.hash.to_string(),
            block_time: block.time,
            date: date_of(block.time),
            by,
            total_sats: total,
            total_btc: btc(total),
            utxo_count: utxos.len() as u64,
            groups,
        })
    }

    /// Unspent outputs at `block` of `entity` and everything below it (or of everything).
    pub async fn utxo_list(
        &self,
        entity: Option<&EntityCode>,
        block: &BlockMeta,
    ) -> Result<Vec<UtxoEntry>> {
        let wallets = self.wallets(entity).await?;
        let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
        let by_id: HashMap<i64, &WalletRow> = wallets.iter().map(|w| (w.id, w)).collect();
        let network = self.network().0;
        Ok(self
            .utxos_at(Some(block.height), Some(&ids))
            .await?
            .into_iter()
            .map(|u| UtxoEntry {
                outpoint: u.outpoint.to_string(),
                wallet: by_id
                    .get(&u.wallet_id)
                    .map(|w| w.full_name())
                    .unwrap_or_default(),
                address: script_address(&u.script_pubkey, network).map(|a| a.to_string()),
                sats: u.value.to_sat(),
                btc: btc(u.value.to_sat()),
                height: u.height,
                coinbase: u.coinbase,
                derivation: u.derivation.map(|(k, i)| format!("{k}/{i}")),
            })
            .collect())
    }

    /// Transactions touching one wallet (`ENTITY/name` or name), or the wallets of `entity`
    /// and everything below it, or every wallet.
    pub async fn history_list(
        &self,
        wallet: Option<&str>,
        entity: Option<&EntityCode>,
    ) -> Result<Vec<HistoryEntry>> {
        let ids: Vec<i64> = match wallet {
            Some(w) => vec![self.wallet(w).await?.id],
            None => self.wallets(entity).await?.iter().map(|w| w.id).collect(),
        };
        Ok(self
            .history(Some(&ids))
            .await?
            .into_iter()
            .map(|t| HistoryEntry {
                txid: t.txid.to_string(),
                height: t.height,
                date: date_of(t.time),
                received_sats: t.received,
                sent_sats: t.sent,
                net_sats: t.received as i64 - t.sent as i64,
            })
            .collect())
    }
}
