//! `tesoro sync`: bring the chain index up to the source's tip, once or following it.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::bail;
use tesoro_chain::rpc::{default_cookie_path, RpcAuth};

use crate::output;
use crate::sync::{SourceSpec, SyncSummary};
use crate::Globals;

/// `tesoro sync`
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Where blocks come from: core-dir:PATH (Bitcoin Core's blocks folder, read directly) or
    /// rpc:http://HOST:PORT (a running Bitcoin Core, over JSON-RPC; add --rest for REST blocks)
    /// or esplora:http://HOST[:PORT][/api] (an Esplora server: per-script history).
    #[arg(long, value_name = "SOURCE")]
    source: String,
    /// Core's cookie file (default: ~/.bitcoin/[<network>/].cookie).
    #[arg(long, value_name = "PATH", conflicts_with = "rpc_user")]
    rpc_cookie: Option<PathBuf>,
    /// RPC user (with --rpc-password-file).
    #[arg(long, value_name = "USER", requires = "rpc_password_file")]
    rpc_user: Option<String>,
    /// File whose first line is the RPC password.
    #[arg(long, value_name = "FILE", requires = "rpc_user")]
    rpc_password_file: Option<PathBuf>,
    /// Fetch blocks over Core's REST interface (bitcoind -rest): faster than getblock over RPC.
    #[arg(long)]
    rest: bool,
    /// Stop at this height.
    #[arg(long)]
    to: Option<u32>,
    /// Keep following the source's tip (reorgs included) until Ctrl-C.
    #[arg(long, conflicts_with = "to")]
    follow: bool,
    /// Seconds between polls of the tip with --follow.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    poll: f64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Parses `core-dir:PATH` or `rpc:URL` with the RPC options.
fn parse_source(a: &SyncArgs, network: bitcoin::Network) -> anyhow::Result<SourceSpec> {
    let s = a.source.as_str();
    match s.split_once(':') {
        Some(("core-dir", path)) if !path.is_empty() => {
            if a.rest || a.rpc_cookie.is_some() || a.rpc_user.is_some() {
                bail!("--rest, --rpc-cookie and --rpc-user go with --source rpc:URL, not core-dir");
            }
            Ok(SourceSpec::CoreDir(PathBuf::from(path)))
        }
        Some(("rpc", url)) if !url.is_empty() => {
            let auth = match (&a.rpc_user, &a.rpc_password_file, &a.rpc_cookie) {
                (Some(user), Some(file), _) => RpcAuth::UserPasswordFile {
                    user: user.clone(),
                    password_file: file.clone(),
                },
                (_, _, Some(cookie)) => RpcAuth::Cookie(cookie.clone()),
                _ => match default_cookie_path(network) {
                    Some(p) => RpcAuth::Cookie(p),
                    None => bail!("no HOME to find Core's cookie in: pass --rpc-cookie PATH"),
                },
            };
            Ok(SourceSpec::Node {
                url: url.to_string(),
                auth,
                rest: a.rest,
            })
        }
        Some(("esplora", url)) if !url.is_empty() => {
            if a.rest || a.rpc_cookie.is_some() || a.rpc_user.is_some() {
                bail!("--rest, --rpc-cookie and --rpc-user go with --source rpc:URL, not esplora");
            }
            Ok(SourceSpec::Esplora(url.to_string()))
        }
        _ => bail!(
            "--source {s:?} is not a source: use core-dir:PATH, rpc:http://HOST:PORT (Bitcoin Core) or esplora:http://HOST[:PORT][/api]"
        ),
    }
}

pub async fn run(args: SyncArgs, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let network = store.network().0;
    let spec = parse_source(&args, network)?;
    let mut source = crate::sync::open_source(&spec, network)?;
    if !args.follow {
        let summary = crate::sync::sync_once(&store, &mut source, args.to).await;
        store.close().await;
        return print(&summary?, args.json);
    }
    // Follow: Ctrl-C sets the stop flag; a scan in progress stores what it has and stops.
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            crate::sync::STOP.store(true, Ordering::Relaxed);
        }
    });
    let poll = Duration::from_secs_f64(args.poll.clamp(0.05, 3600.0));
    let mut last_tip: Option<String> = None;
    let result = loop {
        if crate::sync::STOP.load(Ordering::Relaxed) {
            break Ok(());
        }
        match crate::sync::sync_once(&store, &mut source, None).await {
            Ok(summary) => {
                if summary.tip_hash != last_tip || summary.blocks_undone > 0 {
                    print(&summary, args.json)?;
                    last_tip = summary.tip_hash.clone();
                }
            }
            Err(e) if e.downcast_ref::<crate::sync::Interrupted>().is_some() => break Ok(()),
            Err(e) => {
                if crate::sync::STOP.load(Ordering::Relaxed) {
                    break Ok(());
                }
                // A node restarting or briefly unreachable: say so and keep following.
                eprintln!("sync: {e:#}; retrying in {:.0} s", poll.as_secs_f64());
            }
        }
        let deadline = tokio::time::Instant::now() + poll;
        while tokio::time::Instant::now() < deadline && !crate::sync::STOP.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50).min(poll)).await;
        }
    };
    let tip = store.chain_tip().await;
    store.close().await;
    if let Ok(Some(t)) = tip {
        eprintln!("stopped following at height {} ({})", t.height, t.hash);
    }
    result
}

fn print(summary: &SyncSummary, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(summary);
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
