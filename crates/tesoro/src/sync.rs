//! Sync: blocks from a source, through the scanner, into the store.
//!
//! Resumable by construction: the store applies whole batches of blocks in one transaction
//! and refuses what does not link, so a sync killed at any moment is simply run again. On
//! start the stored tip is compared with the source's best chain; a fork is undone to the
//! last common block before scanning on. Wallets added after earlier syncs are caught up
//! from their birth height first.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use tesoro_chain::rpc::{CoreRpc, RpcAuth};
use tesoro_chain::source::{BlockSource, SourceError};
use tesoro_chain::{Scanner, WatchSet};
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
                        let d = pair.deriver(kc)?;
                        ws.add_keychain(
                            owner,
                            k,
                            Box::new(move |i: u32| d.script_at(i).map_err(|e| e.to_string())),
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

/// Scripts whose Esplora history decides which blocks to fetch whole: bare scripts (and
/// unranged descriptors), and ranged keychains with their gap limits.
#[allow(clippy::type_complexity)]
async fn scripts_to_discover(
    store: &Store,
    wallets: &[WalletRow],
) -> anyhow::Result<(
    Vec<bitcoin::ScriptBuf>,
    Vec<(DescriptorPair, Keychain, u32)>,
)> {
    let network = store.network();
    let mut fixed = Vec::new();
    let mut keychains = Vec::new();
    for w in wallets {
        match w.kind {
            WalletKind::Descriptor => {
                let ext = w
                    .external_descriptor
                    .as_deref()
                    .with_context(|| format!("wallet {} has no descriptor", w.full_name()))?;
                let pair = DescriptorPair::parse(ext, w.internal_descriptor.as_deref(), network)?;
                let gap = w
                    .gap_limit
                    .unwrap_or(tesoro_core::wallet::DEFAULT_GAP_LIMIT);
                for kc in [Keychain::External, Keychain::Internal] {
                    if pair.keychain(kc).is_none() {
                        continue;
                    }
                    if pair.is_ranged() {
                        keychains.push((pair.clone(), kc, gap));
                    } else {
                        fixed.push(pair.script_at(kc, 0)?);
                    }
                }
            }
            WalletKind::Addresses => {
                for a in store.wallet_addresses(w.id).await? {
                    let bytes = bitcoin::hex::FromHex::from_hex(&a.script_pubkey_hex)
                        .map_err(|e| anyhow::anyhow!("stored script of {}: {e}", a.address))?;
                    fixed.push(bitcoin::ScriptBuf::from_bytes(bytes));
                }
            }
        }
    }
    Ok((fixed, keychains))
}

/// Finds the highest stored block that the source's chain also has, undoing every stored
/// block above it. Returns the number of blocks undone.
async fn undo_fork(store: &Store, source: &BlockSource) -> anyhow::Result<u32> {
    let Some(tip) = store.chain_tip().await? else {
        return Ok(0);
    };
    let start = store.chain_start().await?.map_or(0, |b| b.height);
    let mut h = tip.height;
    loop {
        let stored = store.block_at(h).await?;
        let theirs = tokio::task::block_in_place(|| source.hash_at(h))?;
        let same = match (stored, theirs) {
            (Some(s), Some(b)) => s.hash == b,
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
    // {msg} is "HEIGHT, N MB/s": the byte rate comes from the scanner's counter.
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

/// Headers are fetched from the source this many blocks at a time, so a whole-chain sync
/// from a node neither waits for every header first nor holds them all.
const HEADER_CHUNK: u32 = 10_000;

/// Set by Ctrl-C in `--follow` mode: the scan stops after the block it is on, with every
/// block before it stored.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Scans the source's best chain from `from` to `to` (inclusive) for `wallets` and applies
/// each batch.
#[allow(clippy::too_many_arguments)]
async fn scan_range(
    store: &Store,
    source: &BlockSource,
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
    if let BlockSource::Esplora {
        client, interest, ..
    } = source
    {
        let (fixed, keychains) = scripts_to_discover(store, wallets).await?;
        tokio::task::block_in_place(|| -> anyhow::Result<()> {
            interest.clear();
            let keep = |items: Vec<tesoro_chain::esplora::HistoryItem>| {
                items
                    .into_iter()
                    .filter(|i| i.height >= from && i.height <= to)
                    .collect::<Vec<_>>()
            };
            for script in &fixed {
                interest.add(&keep(client.history(script)?));
            }
            // Each keychain up to `gap` unused scripts past the last one with history, as the
            // scanner will extend it when it sees them used.
            for (pair, kc, gap) in &keychains {
                let (mut i, mut unused) = (0u32, 0u32);
                while unused < *gap {
                    let script = pair.script_at(*kc, i)?;
                    let items = client.history(&script)?;
                    if items.is_empty() {
                        unused += 1;
                    } else {
                        unused = 0;
                        interest.add(&keep(items));
                    }
                    i += 1;
                }
            }
            Ok(())
        })
        .map_err(|e| e.context(format!("reading script histories from {}", client.url())))?;
    }
    let stats = tokio::task::block_in_place(|| -> anyhow::Result<tesoro_chain::ScanStats> {
        let mut total = tesoro_chain::ScanStats::default();
        let bytes_done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut scanner = Scanner::new(&mut ws)
            .with_options(source.scan_options())
            .with_byte_counter(bytes_done.clone());
        let mut batch: Vec<BlockDelta> = Vec::new();
        let mut last_flush = Instant::now();
        let mut chunk_from = from;
        while chunk_from <= to {
            let chunk_to = to.min(chunk_from.saturating_add(HEADER_CHUNK - 1));
            let headers = source.headers(chunk_from, chunk_to)?;
            if headers.is_empty() {
                bail!(
                    "{} has no block at height {chunk_from} any more (its chain got shorter); run sync again",
                    source.name()
                );
            }
            let blocks = source.blocks(&headers)?;
            let stats = scanner.scan(blocks, |delta: BlockDelta| -> anyhow::Result<()> {
                let mb = bytes_done.load(Ordering::Relaxed) as f64 / 1e6;
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                pb.set_message(format!("{}, {:.0} MB/s", delta.meta.height, mb / secs));
                pb.inc(1);
                let watched = !delta.is_empty();
                batch.push(delta);
                // Few blocks per transaction while watched coins move, many while nothing
                // does: bounded memory, and little lost to a kill.
                let stop = STOP.load(Ordering::Relaxed);
                let full = stop
                    || batch.len() >= 2_000
                    || (watched && batch.iter().filter(|d| !d.is_empty()).count() >= 256)
                    || last_flush.elapsed() > Duration::from_secs(2);
                if full {
                    let applied = handle.block_on(store.apply_blocks_for(&batch, &ids));
                    batch.clear();
                    applied?;
                    last_flush = Instant::now();
                }
                if stop {
                    bail!("interrupted");
                }
                Ok(())
            });
            // Whatever happened, what was scanned whole is stored.
            if !batch.is_empty() {
                handle.block_on(store.apply_blocks_for(&batch, &ids))?;
                batch.clear();
            }
            let stats = stats.map_err(|e| {
                if STOP.load(Ordering::Relaxed) {
                    anyhow::anyhow!(Interrupted)
                } else {
                    anyhow::Error::new(e).context(format!("syncing from {}", source.name()))
                }
            })?;
            total.blocks += stats.blocks;
            total.bytes += stats.bytes;
            total.created += stats.created;
            total.spent += stats.spent;
            let Some(next) = chunk_to.checked_add(1) else {
                break;
            };
            chunk_from = next;
        }
        Ok(total)
    });
    pb.finish_and_clear();
    let stats = stats?;
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

/// The scan was stopped by Ctrl-C (in `--follow`); what was scanned is stored.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by Ctrl-C; every block before this point is stored, run sync again to go on")]
pub struct Interrupted;

/// Opens the source `--source` names and checks it serves the database's network.
pub fn open_source(spec: &SourceSpec, network: bitcoin::Network) -> anyhow::Result<BlockSource> {
    match spec {
        SourceSpec::CoreDir(path) => {
            let src = tokio::task::block_in_place(|| BlockSource::core_dir(path, network))
                .with_context(|| format!("cannot read the blocks dir {}", path.display()))?;
            Ok(src)
        }
        SourceSpec::Node { url, auth, rest } => {
            let rpc = CoreRpc::new(url, auth, *rest)?;
            Ok(tokio::task::block_in_place(|| {
                BlockSource::node(rpc, network)
            })?)
        }
        SourceSpec::Esplora(url) => Ok(tokio::task::block_in_place(|| {
            BlockSource::esplora(url, network)
        })?),
    }
}

/// Where blocks come from, as `--source` and its options say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// Core's blocks dir.
    CoreDir(PathBuf),
    /// A Core node over RPC (blocks over REST when `rest`).
    Node {
        /// `http://host:port`.
        url: String,
        /// Cookie or user and password file.
        auth: RpcAuth,
        /// Fetch blocks over REST.
        rest: bool,
    },
    /// An Esplora server's API root.
    Esplora(String),
}

/// One sync pass: undo a fork, catch up late wallets, scan to the source's tip (or `to`).
/// A node whose chain moves while headers are read is asked again, up to three times.
pub async fn sync_once(
    store: &Store,
    source: &mut BlockSource,
    to: Option<u32>,
) -> anyhow::Result<SyncSummary> {
    let mut tries = 0;
    loop {
        tries += 1;
        match sync_pass(store, source, to).await {
            Err(e) if tries < 3 && is_transient(&e) => {
                tracing::info!("{e:#}; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            r => return r,
        }
    }
}

fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<SourceError>()
            .is_some_and(SourceError::is_transient)
            || matches!(
                c.downcast_ref::<tesoro_chain::rpc::RpcError>(),
                Some(tesoro_chain::rpc::RpcError::ChainMoved { .. })
            )
    })
}

async fn sync_pass(
    store: &Store,
    source: &mut BlockSource,
    to: Option<u32>,
) -> anyhow::Result<SyncSummary> {
    let started = Instant::now();
    let mut summary = SyncSummary::default();
    tokio::task::block_in_place(|| source.refresh())
        .with_context(|| format!("cannot read {}", source.name()))?;
    let source = &*source;
    let source_tip = tokio::task::block_in_place(|| source.tip_height())?;
    let target = to.map_or(source_tip, |t| t.min(source_tip));
    summary.blocks_undone = undo_fork(store, source).await?;

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
                    source,
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
    scan_range(store, source, &wallets, from, target, "sync", &mut summary).await?;
    let written = summary.blocks_scanned + summary.outputs_found + summary.spends_found;
    if written >= Store::BULK_ROWS {
        store
            .refresh_statistics(&[])
            .await
            .context("cannot refresh the database's planner statistics after the sync")?;
    }
    let tip = store.chain_tip().await?;
    summary.tip_height = tip.map(|t| t.height);
    summary.tip_hash = tip.map(|t| t.hash.to_string());
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
