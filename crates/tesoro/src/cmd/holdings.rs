//! `tesoro balance`, `tesoro utxos`, `tesoro history`: the reserve as the chain index sees it,
//! at the tip or at any past height or date.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context};
use serde::Serialize;
use tesoro_core::chain::BlockMeta;
use tesoro_core::entity::{roll_up, tree_order};
use tesoro_core::wallet::script_address;
use tesoro_core::EntityCode;
use tesoro_store::{Store, WalletRow};

use crate::output;
use crate::Globals;

/// `--by` for `tesoro balance`.
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum By {
    /// Per entity, with everything below it.
    Entity,
    /// Per wallet.
    Wallet,
    /// Per address.
    Address,
}

/// `tesoro balance`
#[derive(Debug, clap::Args)]
pub struct BalanceArgs {
    /// Only this entity and everything below it.
    #[arg(long)]
    entity: Option<String>,
    /// A block height, or a date (YYYY-MM-DD: the last block at or before the end of that UTC day).
    #[arg(long)]
    at: Option<String>,
    /// How to group.
    #[arg(long, value_enum, default_value = "entity")]
    by: By,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// `tesoro utxos`
#[derive(Debug, clap::Args)]
pub struct UtxosArgs {
    /// Only this entity and everything below it.
    #[arg(long)]
    entity: Option<String>,
    /// A block height or a date (YYYY-MM-DD).
    #[arg(long)]
    at: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// `tesoro history`
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Only this wallet (name or ENTITY/name).
    #[arg(long)]
    wallet: Option<String>,
    /// Only this entity and everything below it.
    #[arg(long)]
    entity: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// Resolves `--at` to a stored block: the tip, a height, or the last block of a UTC day.
pub async fn resolve_at(store: &Store, at: Option<&str>) -> anyhow::Result<BlockMeta> {
    let tip = store
        .chain_tip()
        .await?
        .context("the chain index is empty: run `tesoro sync --source …` first")?;
    let Some(at) = at else { return Ok(tip) };
    let start = store.chain_start().await?.map_or(0, |b| b.height);
    if at.chars().all(|c| c.is_ascii_digit()) {
        let h: u32 = at
            .parse()
            .with_context(|| format!("--at {at}: not a height"))?;
        if h > tip.height {
            bail!(
                "--at {h} is past the synced tip {}: run `tesoro sync` first",
                tip.height
            );
        }
        if h < start {
            bail!("--at {h} is before the first indexed block {start}: the index starts at the earliest wallet birth height");
        }
        return store
            .block_at(h)
            .await?
            .with_context(|| format!("block {h} is missing from the index"));
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(at, &fmt)
        .with_context(|| format!("--at {at:?}: give a block height or a date as YYYY-MM-DD"))?;
    let end = date
        .with_hms(23, 59, 59)
        .map_err(|e| anyhow::anyhow!("--at {at}: {e}"))?
        .assume_utc()
        .unix_timestamp();
    let b = store.block_at_or_before_time(end).await?.with_context(|| {
        format!(
            "no indexed block is at or before the end of {at}: the index starts at height {start}"
        )
    })?;
    Ok(b)
}

async fn wallets_in_scope(store: &Store, entity: Option<&str>) -> anyhow::Result<Vec<WalletRow>> {
    let code = entity.map(EntityCode::parse).transpose()?;
    Ok(store.wallets(code.as_ref()).await?)
}

/// Sats as BTC with all eight decimals, exact (no floats).
pub fn btc(sats: u64) -> String {
    format!("{}.{:08}", sats / 100_000_000, sats % 100_000_000)
}

fn date_of(time: u32) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::from(time))
        .map(|t| {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        })
        .unwrap_or_else(|_| "?".into())
}

#[derive(Serialize)]
struct Group {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    sats: u64,
    btc: String,
    utxos: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    depth: Option<usize>,
}

#[derive(Serialize)]
struct BalanceOut {
    height: u32,
    hash: String,
    block_time: u32,
    date: String,
    by: &'static str,
    total_sats: u64,
    total_btc: String,
    groups: Vec<Group>,
}

pub async fn balance(a: BalanceArgs, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let block = resolve_at(&store, a.at.as_deref()).await?;
    let wallets = wallets_in_scope(&store, a.entity.as_deref()).await?;
    let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
    let utxos = store.utxos_at(Some(block.height), Some(&ids)).await?;
    let by_id: HashMap<i64, &WalletRow> = wallets.iter().map(|w| (w.id, w)).collect();
    let network = store.network().0;
    let total: u64 = utxos.iter().map(|u| u.value.to_sat()).sum();
    let groups: Vec<Group> = match a.by {
        By::Wallet => {
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
                .map(|(k, (s, n))| Group {
                    key: k,
                    name: None,
                    sats: s,
                    btc: btc(s),
                    utxos: n,
                    depth: None,
                })
                .collect()
        }
        By::Address => {
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
                .map(|((addr, w), (s, n))| Group {
                    key: addr,
                    name: Some(w),
                    sats: s,
                    btc: btc(s),
                    utxos: n,
                    depth: None,
                })
                .collect()
        }
        By::Entity => {
            let entities = store.entities().await?;
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
            let scope: Option<Vec<EntityCode>> = match &a.entity {
                Some(c) => Some(store.entity_subtree(&EntityCode::parse(c)?).await?),
                None => None,
            };
            tree_order(&entities)
                .into_iter()
                .filter(|r| scope.as_ref().is_none_or(|s| s.contains(&r.entity.code)))
                .map(|r| {
                    let code = r.entity.code.as_str();
                    let s = rolled_sats.get(code).copied().unwrap_or_default();
                    let n = rolled_utxos.get(code).copied().unwrap_or_default();
                    Group {
                        key: r.entity.code.to_string(),
                        name: Some(r.entity.name.clone()),
                        sats: s,
                        btc: btc(s),
                        utxos: n,
                        depth: Some(r.depth),
                    }
                })
                .collect()
        }
    };
    store.close().await;
    let out = BalanceOut {
        height: block.height,
        hash: block.hash.to_string(),
        block_time: block.time,
        date: date_of(block.time),
        by: match a.by {
            By::Entity => "entity",
            By::Wallet => "wallet",
            By::Address => "address",
        },
        total_sats: total,
        total_btc: btc(total),
        groups,
    };
    if a.json {
        return output::json(&out);
    }
    println!(
        "holdings at height {} ({}, {})",
        out.height, out.date, out.hash
    );
    let (head, rows): (Vec<&str>, Vec<Vec<String>>) = match a.by {
        By::Entity => (
            vec!["entity", "name", "BTC (with agencies below)", "utxos"],
            out.groups
                .iter()
                .map(|g| {
                    let indent = match g.depth {
                        Some(d) if d > 0 => format!("{}└ ", "  ".repeat(d - 1)),
                        _ => String::new(),
                    };
                    vec![
                        format!("{indent}{}", g.key),
                        g.name.clone().unwrap_or_default(),
                        g.btc.clone(),
                        g.utxos.to_string(),
                    ]
                })
                .collect(),
        ),
        By::Wallet => (
            vec!["wallet", "BTC", "utxos"],
            out.groups
                .iter()
                .map(|g| vec![g.key.clone(), g.btc.clone(), g.utxos.to_string()])
                .collect(),
        ),
        By::Address => (
            vec!["address", "wallet", "BTC", "utxos"],
            out.groups
                .iter()
                .map(|g| {
                    vec![
                        g.key.clone(),
                        g.name.clone().unwrap_or_default(),
                        g.btc.clone(),
                        g.utxos.to_string(),
                    ]
                })
                .collect(),
        ),
    };
    let right: Vec<usize> = (head.len() - 2..head.len()).collect();
    println!("{}", output::table(&head, rows, &right));
    println!("total: {} BTC in {} UTXOs", out.total_btc, utxos.len());
    Ok(())
}

#[derive(Serialize)]
struct UtxoOut {
    outpoint: String,
    wallet: String,
    address: Option<String>,
    sats: u64,
    btc: String,
    height: u32,
    coinbase: bool,
    derivation: Option<String>,
}

pub async fn utxos(a: UtxosArgs, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let block = resolve_at(&store, a.at.as_deref()).await?;
    let wallets = wallets_in_scope(&store, a.entity.as_deref()).await?;
    let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
    let by_id: HashMap<i64, &WalletRow> = wallets.iter().map(|w| (w.id, w)).collect();
    let network = store.network().0;
    let rows: Vec<UtxoOut> = store
        .utxos_at(Some(block.height), Some(&ids))
        .await?
        .into_iter()
        .map(|u| UtxoOut {
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
        .collect();
    store.close().await;
    if a.json {
        return output::json(&rows);
    }
    println!(
        "unspent at height {} ({})",
        block.height,
        date_of(block.time)
    );
    let table = rows
        .iter()
        .map(|r| {
            vec![
                r.outpoint.clone(),
                r.wallet.clone(),
                r.address.clone().unwrap_or_else(|| "-".into()),
                r.btc.clone(),
                r.height.to_string(),
            ]
        })
        .collect();
    println!(
        "{}",
        output::table(
            &["outpoint", "wallet", "address", "BTC", "height"],
            table,
            &[3, 4]
        )
    );
    Ok(())
}

#[derive(Serialize)]
struct HistoryOut {
    txid: String,
    height: u32,
    date: String,
    received_sats: u64,
    sent_sats: u64,
    net_sats: i64,
}

pub async fn history(a: HistoryArgs, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let ids: Vec<i64> = match &a.wallet {
        Some(w) => vec![store.wallet(w).await?.id],
        None => wallets_in_scope(&store, a.entity.as_deref())
            .await?
            .iter()
            .map(|w| w.id)
            .collect(),
    };
    let rows: Vec<HistoryOut> = store
        .history(Some(&ids))
        .await?
        .into_iter()
        .map(|t| HistoryOut {
            txid: t.txid.to_string(),
            height: t.height,
            date: date_of(t.time),
            received_sats: t.received,
            sent_sats: t.sent,
            net_sats: t.received as i64 - t.sent as i64,
        })
        .collect();
    store.close().await;
    if a.json {
        return output::json(&rows);
    }
    let signed = |n: i64| {
        let s = btc(n.unsigned_abs());
        if n < 0 {
            format!("-{s}")
        } else {
            format!("+{s}")
        }
    };
    let table = rows
        .iter()
        .map(|r| {
            vec![
                r.date.clone(),
                r.height.to_string(),
                r.txid.clone(),
                btc(r.received_sats),
                btc(r.sent_sats),
                signed(r.net_sats),
            ]
        })
        .collect();
    println!(
        "{}",
        output::table(
            &["date", "height", "txid", "received", "sent", "net"],
            table,
            &[1, 3, 4, 5]
        )
    );
    Ok(())
}
