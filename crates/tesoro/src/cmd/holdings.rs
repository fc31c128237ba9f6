//! `tesoro balance`, `tesoro utxos`, `tesoro history`: the reserve as the chain index sees it,
//! at the tip or at any past height or date.

use anyhow::Context;
use tesoro_core::chain::BlockMeta;
use tesoro_core::EntityCode;
use tesoro_store::holdings::{At, GroupBy};
use tesoro_store::Store;

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
    let at_parsed = At::parse(at).map_err(|e| anyhow::anyhow!("--at {e}"))?;
    store
        .resolve_at(at_parsed)
        .await
        .with_context(|| format!("--at {}", at.unwrap_or("tip")))
}

fn entity_arg(entity: Option<&str>) -> anyhow::Result<Option<EntityCode>> {
    Ok(entity.map(EntityCode::parse).transpose()?)
}

/// Sats as BTC with all eight decimals, exact (no floats).
pub fn btc(sats: u64) -> String {
    tesoro_store::holdings::btc(sats)
}

pub async fn balance(a: BalanceArgs, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let block = resolve_at(&store, a.at.as_deref()).await?;
    let entity = entity_arg(a.entity.as_deref())?;
    let by = match a.by {
        By::Entity => GroupBy::Entity,
        By::Wallet => GroupBy::Wallet,
        By::Address => GroupBy::Address,
    };
    let out = store.holdings(entity.as_ref(), &block, by).await;
    store.close().await;
    let out = out?;
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
    println!("total: {} BTC in {} UTXOs", out.total_btc, out.utxo_count);
    Ok(())
}

pub async fn utxos(a: UtxosArgs, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let block = resolve_at(&store, a.at.as_deref()).await?;
    let entity = entity_arg(a.entity.as_deref())?;
    let rows = store.utxo_list(entity.as_ref(), &block).await;
    store.close().await;
    let rows = rows?;
    if a.json {
        return output::json(&rows);
    }
    println!(
        "unspent at height {} ({})",
        block.height,
        tesoro_store::holdings::date_of(block.time)
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

pub async fn history(a: HistoryArgs, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let entity = entity_arg(a.entity.as_deref())?;
    let rows = store
        .history_list(a.wallet.as_deref(), entity.as_ref())
        .await;
    store.close().await;
    let rows = rows?;
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
