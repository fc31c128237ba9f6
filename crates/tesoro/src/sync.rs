//! Sync: blocks from a source, through the scanner, into the store.
//!
//! Resumable by construction: the store applies whole batches of blocks in one transaction
//! and refuses what does not link, so a sync killed at any moment is simply run again. On
//! start the stored tip is compared with the source's best chain; a fork is undone to the
//! last common block before scanning on. Wallets added after earlier syncs are caught up
//! from their birth height first.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use tesoro_chain::{BlocksDir, ChainIndex, ScanOptions, Scanner, WatchSet};
use tesoro_core::chain::{BlockDelta, ScriptOwner};
use tesoro_core::wallet::DescriptorPair;
use tesoro_core::Keychain;
use tesoro_store::{Store, WalletKind, WalletRow};

/// What a sync did, for the one-line summary.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SyncSummary {
    /// Height of the stored tip afterwards.
    pub tip_height: Option<u32>,
    /// Hash of the stored tip afterwards.
    pub tip_hash: Option<String>,
    /// Blocks scanned in this run (catch-up scans included).
    pub blocks_scanned: u64,
    /// Bytes of block data walked.
    pub bytes_scanned: u64,
    /// Watched outputs found.
    pub outputs_found: u64,
    /// Watched outputs seen spent.
    pub spends_found: u64,
    /// Blocks undone because the source's chain forked from the stored one.
    pub blocks_undone: u32,
    /// Wallets caught up from their birth height.
    pub wallets_caught_up: usize,
    /// Seconds taken.
    pub seconds: f64,
}

/// Builds the watch set of `wallets`, with their unspent outputs from the store.
async fn watch_set(store: &Store, wallets: &[WalletRow]) -> anyhow::Result<WatchSet> {
    let network = store.network();
    let mut ws = WatchSet::new();
    let last_used: std::collections::HashMap<(i64, u32), u32> = store
        .last_used_indexes()
        .await?
        .into_iter()
        .map(|(w, k, i)| ((w, k), i))
        .collect();
    let mut bare = Vec::new();
    for w in wallets {
        let owner = u64::try_from(w.id).context("negative wallet id")?;
        match w.kind {
            WalletKind::Descriptor => {
                let ext = w
                    .external_descriptor
                    .as_deref()
                    .with_context(|| format!("wallet {} has no descriptor", w.full_name()))?;
                let pair = DescriptorPair::parse(ext, w.internal_descriptor.as_deref(), network)
                    .with_context(|| {
                        format!("stored descriptor of {} no longer parses", w.full_name())
                    })?;
                let gap = w
                    .gap_limit
                    .unwrap_or(tesoro_core::wallet::DEFAULT_GAP_LIMIT);
                for (k, kc) in [(0u32, Keychain::External), (1u32, Keychain::Internal)] {
                    if pair.keychain(kc).is_none() {
                        continue;
                    }
                    if pair.is_ranged() {
                        let p = pair.clone();
                        ws.add_keychain(
                            owner,
                            k,
                            Box::new(move |i: u32| p.script_at(kc, i).map_err(|e| e.to_string())),
                            gap,
                            last_used.get(&(w.id, k)).copied(),
                        )?;
                    } else {
                        let script = pair.script_at(kc, 0)?;
                        bare.push((script, ScriptOwner::derived(owner, k, 0)));
                    }
                }
            }
            WalletKind::Addresses => {
                for a in store.wallet_addresses(w.id).await? {
                    let bytes = bitcoin::hex::FromHex::from_hex(&a.script_pubkey_hex)
                        .map_err(|e| anyhow::anyhow!("stored script of {}: {e}", a.address))?;
                    bare.push((
                        bitcoin::ScriptBuf::from_bytes(bytes),
                        ScriptOwner::bare(owner),
                    ));
                }
            }
        }
    }
    ws.add_scripts(bare);
    let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
    for u in store.utxos_at(None, Some(&ids)).await? {
        let owner = u64::try_from(u.wallet_id).context("negative wallet id")?;
        let o = match u.derivation {
            Some((k, i)) => ScriptOwner::derived(owner, k, i),
            None => ScriptOwner::bare(owner),
        };
        ws.add_outpoint(u.outpoint, u.value, o);
    }
    Ok(ws)
}

/// Finds the highest stored block that the source's chain also has, undoing every stored
/// block above it. Returns the number of blocks undone.
async fn undo_fork(store: &Store, index: &ChainIndex) -> anyhow::Result<u32> {
    let Some(tip) = store.chain_tip().await? else {
        return Ok(0);
    };
    let start = store.chain_start().await?.map_or(0, |b| b.height);
    let mut h = tip.height;
    loop {
        let stored = store.block_at(h).await?;
        let same = match (stored, index.get(h)) {
            (Some(s), Some(b)) => s.hash == b.hash,
            _ => false,
        };
        if same {
            return Ok(store.rollback_to(Some(h)).await?);
        }
        if h == start {
            tracing::warn!("no stored block is on the source's chain: rescanning from scratch");
            return Ok(store.rollback_to(None).await?);
        }
        h -= 1;
    }
}

fn progress_bar(total: u64, label: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() || total == 0 {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] height {msg} {pos}/{len} blocks {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_prefix(label.to_string());
    pb
}

/// Scans `index` from `from` to `to` (inclusive) for `wallets` and applies each batch.
#[allow(clippy::too_many_arguments)]
async fn scan_range(
    store: &Store,
    dir: &BlocksDir,
    index: &ChainIndex,
    wallets: &[WalletRow],
    from: u32,
    to: u32,
    label: &str,
    summary: &mut SyncSummary,
) -> anyhow::Result<()> {
    if from > to {
        return Ok(());
    }
    let mut ws = watch_set(store, wallets).await?;
    let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
    let pb = progress_bar(u64::from(to - from) + 1, label);
    let handle = tokio::runtime::Handle::current();
    let started = Instant::now();
    let stats = tokio::task::block_in_place(|| -> anyhow::Result<tesoro_chain::ScanStats> {
        let mut batch: Vec<BlockDelta> = Vec::new();
        let mut last_flush = Instant::now();
        let mut bytes = 0u64;
        let pending = dir
            .pending_from(index, from)?
            .take_while(|b| b.block().height <= to);
        let stats = Scanner::new(&mut ws)
            .with_options(ScanOptions::default())
            .scan(pending, |delta: BlockDelta| -> anyhow::Result<()> {
                pb.set_message(delta.meta.height.to_string());
                pb.inc(1);
                let watched = !delta.is_empty();
                batch.push(delta);
                // Few blocks per transaction while watched coins move, many while nothing
                // does: bounded memory, and little lost to a kill.
                let full = batch.len() >= 2_000
                    || (watched && batch.iter().filter(|d| !d.is_empty()).count() >= 256)
                    || last_flush.elapsed() > Duration::from_secs(2);
                if full {
                    handle.block_on(store.apply_blocks_for(&batch, &ids))?;
                    batch.clear();
                    last_flush = Instant::now();
                }
                Ok(())
            })?;
        if !batch.is_empty() {
            handle.block_on(store.apply_blocks_for(&batch, &ids))?;
        }
        bytes += stats.bytes;
        let _ = bytes;
        Ok(stats)
    })?;
    pb.finish_and_clear();
    tracing::info!(
        blocks = stats.blocks,
        mb_per_s = stats.bytes as f64 / 1e6 / started.elapsed().as_secs_f64().max(1e-9),
        "{label} done"
    );
    summary.blocks_scanned += stats.blocks;
    summary.bytes_scanned += stats.bytes;
    summary.outputs_found += stats.created;
    summary.spends_found += stats.spent;
    Ok(())
}

/// `tesoro sync --source core-dir:PATH [--to H]`.
pub async fn sync_blocks_dir(
    store: &Store,
    path: &Path,
    to: Option<u32>,
) -> anyhow::Result<SyncSummary> {
    let started = Instant::now();
    let mut summary = SyncSummary::default();
    let network = store.network();
    let dir = tokio::task::block_in_place(|| BlocksDir::open(path, network.0))
        .with_context(|| format!("cannot read the blocks dir {}", path.display()))?;
    let index = tokio::task::block_in_place(|| dir.index())
        .with_context(|| format!("cannot index the blocks in {}", path.display()))?;
    if index.is_empty() {
        bail!(
            "{} holds no {} blocks: is it the right folder (Core's <datadir>/blocks, or <datadir>/{}/blocks)?",
            path.display(),
            network,
            network
        );
    }
    let source_tip = index.tip_height();
    let target = to.map_or(source_tip, |t| t.min(source_tip));
    summary.blocks_undone = undo_fork(store, &index).await?;

    let wallets = store.wallets(None).await?;
    let synced = store.wallet_sync_heights().await?;
    let tip = store.chain_tip().await?;
    let birth = |w: &WalletRow| w.birth_height.unwrap_or(0);
    if let Some(tip) = tip {
        let lagging: Vec<WalletRow> = wallets
            .iter()
            .filter(|w| synced.get(&w.id) != Some(&tip.height))
            .cloned()
            .collect();
        if !lagging.is_empty() {
            let start = store.chain_start().await?.map_or(0, |b| b.height);
            let from = lagging.iter().map(birth).min().unwrap_or(0);
            if from < start {
                // The index does not reach back to this wallet's birth: scan everything again
                // from the earliest birth, so every wallet sees the same blocks.
                tracing::warn!(
                    from,
                    start,
                    "a wallet is older than the indexed chain: rescanning from its birth height"
                );
                summary.blocks_undone += store.rollback_to(None).await?;
            } else {
                summary.wallets_caught_up = lagging.len();
                let from = lagging
                    .iter()
                    .map(|w| synced.get(&w.id).map_or(birth(w), |s| s + 1).max(start))
                    .min()
                    .unwrap_or(start);
                scan_range(
                    store,
                    &dir,
                    &index,
                    &lagging,
                    from,
                    tip.height,
                    "catch-up",
                    &mut summary,
                )
                .await?;
            }
        }
    }
    let from = match store.chain_tip().await? {
        Some(t) => t.height + 1,
        None => wallets.iter().map(birth).min().unwrap_or(0),
    };
    scan_range(
        store,
        &dir,
        &index,
        &wallets,
        from,
        target,
        "sync",
        &mut summary,
    )
    .await?;
    let tip = store.chain_tip().await?;
    summary.tip_height = tip.map(|t| t.height);
    summary.tip_hash = tip.map(|t| t.hash.to_string());
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
