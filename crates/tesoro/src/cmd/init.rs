//! `tesoro init`: create the database and the config file.

use std::path::Path;

use anyhow::{bail, Context};
use tesoro_core::ChainNetwork;
use tesoro_store::{InitOutcome, Store};

use crate::config::{self, Config, DatabaseConfig};
use crate::Globals;

/// `tesoro init`
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Network the database follows: mainnet, testnet4, testnet, signet or regtest.
    #[arg(long)]
    network: ChainNetwork,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: InitArgs, g: &Globals) -> anyhow::Result<()> {
    let config_path = g.config.as_path();
    let base = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or(std::env::current_dir().context("cannot read the current directory")?);
    // The URL written to the config stays as the user gave it (relative SQLite paths stay
    // relative, so the folder can be moved); the one opened now is absolute.
    let (config_url, open_url) = match &g.db {
        Some(url) => (url.clone(), config::absolutize_sqlite(url, &base)),
        None => {
            let url = format!("sqlite://{}", config::DEFAULT_DB_FILE);
            let abs = config::absolutize_sqlite(&url, &base);
            (url, abs)
        }
    };
    let existing = if config_path.exists() {
        let cfg = Config::load(config_path)?;
        if g.db.is_none() || cfg.database.url == config_url {
            Some(cfg)
        } else {
            bail!(
                "{} already exists and points at another database: remove it or pass --config NEW_FILE",
                config_path.display()
            );
        }
    } else {
        None
    };
    let open_url = match &existing {
        Some(cfg) => config::absolutize_sqlite(&cfg.database.url, &base),
        None => open_url,
    };
    let (store, outcome) = Store::init(&open_url, args.network).await?;
    if existing.is_none() {
        let cfg = Config {
            network: args.network.name().to_string(),
            database: DatabaseConfig { url: config_url },
        };
        cfg.save_new(config_path)?;
    }
    let created = outcome == InitOutcome::Created;
    if args.json {
        crate::output::json(&serde_json::json!({
            "created": created,
            "network": store.network().name(),
            "backend": store.backend().name(),
            "database": store.url(),
            "config": config_path.display().to_string(),
        }))?;
    } else if created {
        println!(
            "initialized a {} database for {} at {}\nconfig: {}",
            store.backend().name(),
            store.network(),
            store.url(),
            config_path.display()
        );
    } else {
        println!(
            "{} is already initialized for {}; nothing changed",
            store.url(),
            store.network()
        );
    }
    store.close().await;
    Ok(())
}
