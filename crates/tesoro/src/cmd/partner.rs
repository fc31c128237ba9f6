//! `tesoro partner`: the partner offices whose signed bundles this office accepts.

use std::path::PathBuf;

use crate::cmd::key::{load_verifying_key, public_hex};
use crate::output;
use crate::Globals;

/// `tesoro partner …`
#[derive(Debug, clap::Subcommand)]
pub enum PartnerCmd {
    /// Add a partner by its public key (the `.pub` file its `tesoro key generate` wrote, or
    /// 64 hex digits). Confirm the key with the partner over a second channel first.
    Add {
        /// The partner's name, e.g. "Pakistan Crypto Council".
        name: String,
        /// Its public key file.
        #[arg(long)]
        key: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every partner.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(c: PartnerCmd, g: &Globals) -> anyhow::Result<()> {
    match c {
        PartnerCmd::Add { name, key, json } => {
            let k = load_verifying_key(&key)?;
            let store = g.open_store().await?;
            let p = store.add_partner(&name, &public_hex(&k)).await;
            store.close().await;
            let p = p?;
            if json {
                output::json(&p)?;
            } else {
                println!(
                    "partner {:?} added with key {}: bundles it signs can now be imported",
                    p.name, p.public_key
                );
            }
        }
        PartnerCmd::List { json } => {
            let store = g.open_store().await?;
            let ps = store.partners().await;
            store.close().await;
            let ps = ps?;
            if json {
                output::json(&ps)?;
            } else {
                let rows = ps
                    .iter()
                    .map(|p| vec![p.name.clone(), p.public_key.clone(), p.added_at.clone()])
                    .collect();
                println!(
                    "{}",
                    output::table(&["partner", "public key", "added"], rows, &[])
                );
            }
        }
    }
    Ok(())
}
