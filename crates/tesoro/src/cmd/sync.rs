//! `tesoro sync`: bring the chain index up to the source's tip.

use std::path::PathBuf;

use anyhow::bail;

use crate::output;
use crate::Globals;

/// `tesoro sync`
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Where blocks come from: core-dir:PATH (Bitcoin Core's blocks folder, read directly).
    #[arg(long, value_name = "SOURCE")]
    source: String,
    /// Stop at this height.
    #[arg(long)]
    to: Option<u32>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// A parsed `--source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Core's blocks dir.
    CoreDir(PathBuf),
}

/// Parses `core-dir:PATH`.
pub fn parse_source(s: &str) -> anyhow::Result<Source> {
    match s.split_once(':') {
        Some(("core-dir", path)) if !path.is_empty() => Ok(Source::CoreDir(PathBuf::from(path))),
        Some(("rpc", _)) | Some(("esplora", _)) => bail!(
            "--source {s}: the RPC/REST and Esplora sources are not in this build yet; read Core's blocks folder with --source core-dir:PATH"
        ),
        _ => bail!("--source {s:?} is not a source: use core-dir:PATH"),
    }
}

pub async fn run(args: SyncArgs, g: &Globals) -> anyhow::Result<()> {
    let source = parse_source(&args.source)?;
    let store = g.open_store().await?;
    let summary = match &source {
        Source::CoreDir(path) => crate::sync::sync_blocks_dir(&store, path, args.to).await?,
    };
    store.close().await;
    if args.json {
        return output::json(&summary);
    }
    let mb = summary.bytes_scanned as f64 / 1e6;
    let secs = summary.seconds.max(1e-9);
    println!(
        "synced to height {} ({}): {} blocks, {:.1} MB in {:.1} s ({:.0} blocks/s, {:.1} MB/s); {} outputs and {} spends found{}{}",
        summary.tip_height.map_or("-".into(), |h| h.to_string()),
        summary.tip_hash.as_deref().unwrap_or("no blocks"),
        summary.blocks_scanned,
        mb,
        summary.seconds,
        summary.blocks_scanned as f64 / secs,
        mb / secs,
        summary.outputs_found,
        summary.spends_found,
        if summary.blocks_undone > 0 {
            format!("; {} blocks undone after a reorg", summary.blocks_undone)
        } else {
            String::new()
        },
        if summary.wallets_caught_up > 0 {
            format!("; {} new wallets caught up", summary.wallets_caught_up)
        } else {
            String::new()
        }
    );
    Ok(())
}
