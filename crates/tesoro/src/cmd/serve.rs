//! `tesoro serve`: the JSON API and the portal, optionally following a chain source.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use tesoro_chain::rpc::{default_cookie_path, RpcAuth};
use tesoro_chain::source::BlockSource;
use tesoro_server::sync_worker::SyncFuture;
use tesoro_server::{ServerConfig, SyncJob, SyncReport};
use tesoro_store::Store;

use crate::sync::SourceSpec;
use crate::Globals;

/// `tesoro serve`
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    bind: SocketAddr,
    /// Follow a chain source and keep the ledger current: core-dir:PATH (Bitcoin Core's
    /// blocks folder), rpc:http://HOST:PORT (a running Core) or esplora:URL. With several
    /// instances on one PostgreSQL database, only one of them syncs at a time.
    #[arg(long, value_name = "SOURCE")]
    sync_source: Option<String>,
    /// Core's cookie file for --sync-source rpc:URL (default: ~/.bitcoin/[<network>/].cookie).
    #[arg(long, value_name = "PATH")]
    rpc_cookie: Option<PathBuf>,
    /// Seconds between sync passes.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    sync_poll: f64,
    /// Mark the session cookie Secure (when a TLS proxy is in front).
    #[arg(long)]
    secure_cookies: bool,
    /// Take the client address from X-Forwarded-For (only behind a proxy you run).
    #[arg(long)]
    trust_forwarded: bool,
}

fn parse_source(
    s: &str,
    cookie: Option<&PathBuf>,
    network: bitcoin::Network,
) -> anyhow::Result<SourceSpec> {
    match s.split_once(':') {
        Some(("core-dir", path)) if !path.is_empty() => Ok(SourceSpec::CoreDir(PathBuf::from(path))),
        Some(("rpc", url)) if !url.is_empty() => {
            let cookie = match cookie {
                Some(c) => c.clone(),
                None => match default_cookie_path(network) {
                    Some(p) => p,
                    None => bail!("no HOME to find Core's cookie in: pass --rpc-cookie PATH"),
                },
            };
            Ok(SourceSpec::Node {
                url: url.to_string(),
                auth: RpcAuth::Cookie(cookie),
                rest: false,
            })
        }
        Some(("esplora", url)) if !url.is_empty() => Ok(SourceSpec::Esplora(url.to_string())),
        _ => bail!(
            "--sync-source {s:?} is not a source: use core-dir:PATH, rpc:http://HOST:PORT or esplora:URL"
        ),
    }
}

/// The CLI's sync pass, handed to the server's worker: the same code as `tesoro sync`.
struct CliSync {
    spec: SourceSpec,
    text: String,
    network: bitcoin::Network,
    source: tokio::sync::Mutex<Option<BlockSource>>,
}

impl SyncJob for CliSync {
    fn run_once<'a>(&'a self, store: &'a Store) -> SyncFuture<'a> {
        Box::pin(async move {
            let mut guard = self.source.lock().await;
            if guard.is_none() {
                *guard = Some(
                    crate::sync::open_source(&self.spec, self.network)
                        .map_err(|e| format!("{e:#}"))?,
                );
            }
            let Some(source) = guard.as_mut() else {
                return Err("no source".into());
            };
            let summary = crate::sync::sync_once(store, source, None)
                .await
                .map_err(|e| format!("{e:#}"))?;
            store
                .ledger_refresh()
                .await
                .map_err(|e| format!("ledger refresh: {e}"))?;
            Ok(SyncReport {
                tip_height: summary.tip_height,
                tip_hash: summary.tip_hash,
                blocks_scanned: summary.blocks_scanned,
            })
        })
    }

    fn describe(&self) -> String {
        self.text.clone()
    }
}

pub async fn run(a: ServeArgs, g: &Globals) -> anyhow::Result<()> {
    let resolved = crate::config::resolve(g.db.as_deref(), &g.config)?;
    let mut cfg = ServerConfig::new(resolved.url.clone(), a.bind);
    cfg.secure_cookies = a.secure_cookies;
    cfg.trust_forwarded = a.trust_forwarded;
    cfg.sync_poll = Duration::from_secs_f64(a.sync_poll.clamp(0.05, 3600.0));
    if let Some(src) = &a.sync_source {
        // Open once here so a wrong network or URL fails now, not in the log later.
        let store = Store::open(&resolved.url).await?;
        let network = store.network().0;
        store.close().await;
        cfg.sync = Some(Arc::new(CliSync {
            spec: parse_source(src, a.rpc_cookie.as_ref(), network)?,
            text: src.clone(),
            network,
            source: tokio::sync::Mutex::new(None),
        }));
    }
    let listener = tesoro_server::bind(a.bind).await?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line for the port when --bind ends in :0.
    eprintln!("tesoro: serving on http://{addr} (Ctrl-C stops)");
    tesoro_server::serve_bound(listener, cfg).await?;
    Ok(())
}
