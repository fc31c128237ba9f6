//! `tesoro wallet`: watch-only wallets of descriptors or published addresses.

use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::Serialize;
use tesoro_core::secret::refuse_secret;
use tesoro_core::wallet::{address_file_items, script_address, DescriptorPair, DEFAULT_GAP_LIMIT};
use tesoro_core::{EntityCode, Keychain};
use tesoro_server::office::{self, WalletSpec};
use tesoro_store::{NewWalletKind, Store, WalletKind, WalletRow};

use crate::output;
use crate::Globals;

/// `tesoro wallet …`
#[derive(Debug, clap::Subcommand)]
pub enum WalletCmd {
    /// Add a watch-only wallet: a descriptor (pair) or a list of published addresses.
    Add(AddArgs),
    /// List wallets, of all entities or of one and everything below it.
    List {
        /// Only this entity and its agencies.
        #[arg(long)]
        entity: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a wallet: policy, script type, keys and their origins, gap limit.
    Show {
        /// Wallet name, or ENTITY/name.
        wallet: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Derive a wallet's addresses (or list a wallet's published addresses).
    Addresses {
        /// Wallet name, or ENTITY/name.
        wallet: String,
        /// First derivation index.
        #[arg(long, default_value_t = 0)]
        from: u32,
        /// How many addresses.
        #[arg(long, default_value_t = 20)]
        count: u32,
        /// Change addresses instead of receiving ones.
        #[arg(long)]
        change: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tesoro wallet add`
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("watch").required(true).args(["descriptor", "addresses", "addresses_file"])))]
pub struct AddArgs {
    /// Owning entity's code.
    #[arg(long)]
    entity: String,
    /// Wallet name, unique within the entity.
    #[arg(long)]
    name: String,
    /// Receiving descriptor with public keys only (xpub/tpub); a multipath <0;1> descriptor
    /// gives change too. The checksum is checked, or computed when missing.
    #[arg(long)]
    descriptor: Option<String>,
    /// Change descriptor.
    #[arg(long, requires = "descriptor")]
    change_descriptor: Option<String>,
    /// Unused addresses watched past the last used one.
    #[arg(long, requires = "descriptor")]
    gap_limit: Option<u32>,
    /// No coin of this wallet is older than this height.
    #[arg(long, requires = "descriptor")]
    birth_height: Option<u32>,
    /// Published addresses, comma-separated.
    #[arg(long, value_delimiter = ',')]
    addresses: Option<Vec<String>>,
    /// File of published addresses, one a line ('#' starts a comment).
    #[arg(long)]
    addresses_file: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct WalletOut<'a> {
    #[serde(flatten)]
    wallet: &'a WalletRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    descriptor: Option<tesoro_core::wallet::DescriptorInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    addresses: Option<Vec<tesoro_store::WalletAddressRow>>,
}

fn pair_of(store: &Store, w: &WalletRow) -> anyhow::Result<DescriptorPair> {
    let ext = w
        .external_descriptor
        .as_deref()
        .with_context(|| format!("wallet {} has no descriptor", w.full_name()))?;
    DescriptorPair::parse(ext, w.internal_descriptor.as_deref(), store.network()).with_context(
        || {
            format!(
                "stored descriptor of wallet {} no longer parses",
                w.full_name()
            )
        },
    )
}

fn summary(w: &WalletRow, info: Option<&tesoro_core::wallet::DescriptorInfo>) -> String {
    match (w.kind, info) {
        (WalletKind::Descriptor, Some(i)) => format!(
            "{}, {}{}",
            i.script_type,
            i.policy,
            if i.ranged {
                format!(", gap {}", w.gap_limit.unwrap_or(DEFAULT_GAP_LIMIT))
            } else {
                String::new()
            }
        ),
        (WalletKind::Descriptor, None) => "descriptor".into(),
        (WalletKind::Addresses, _) => format!(
            "{} published address{}",
            w.address_count,
            if w.address_count == 1 { "" } else { "es" }
        ),
    }
}

async fn add(a: AddArgs, g: &Globals) -> anyhow::Result<()> {
    // Parsing needs the database's network, so open first; nothing is written until the
    // whole input has been checked (by the same code the API and the portal use).
    let store = g.open_store().await?;
    let file_text;
    let spec = if let Some(desc) = &a.descriptor {
        WalletSpec::Descriptor {
            external: desc,
            change: a.change_descriptor.as_deref(),
            gap_limit: a.gap_limit,
            birth_height: a.birth_height,
        }
    } else if let Some(list) = &a.addresses {
        WalletSpec::Addresses(
            list.iter()
                .enumerate()
                .map(|(i, s)| (format!("--addresses item {}", i + 1), s.as_str()))
                .collect(),
        )
    } else if let Some(path) = &a.addresses_file {
        file_text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file_name = path.display().to_string();
        refuse_secret(&file_text, file_name.clone())?;
        WalletSpec::Addresses(address_file_items(&file_name, &file_text))
    } else {
        bail!("give --descriptor, --addresses or --addresses-file");
    };
    let checked = office::check_wallet(&store, &a.entity, &a.name, spec, None).await?;
    if checked.checksum_added && !a.json {
        if let NewWalletKind::Descriptor { external, .. } = &checked.new.kind {
            println!("descriptor checksum computed: {external}");
        }
    }
    let w = office::add_wallet(&store, &super::user::cli_actor(), &checked.new).await?;
    let info = match w.kind {
        WalletKind::Descriptor => Some(pair_of(&store, &w)?.info()),
        WalletKind::Addresses => None,
    };
    store.close().await;
    if a.json {
        output::json(&WalletOut {
            wallet: &w,
            descriptor: info,
            addresses: None,
        })?;
    } else {
        println!(
            "added wallet {}: {}",
            w.full_name(),
            summary(&w, info.as_ref())
        );
    }
    Ok(())
}

async fn list(entity: Option<String>, json: bool, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let under = entity.as_deref().map(EntityCode::parse).transpose()?;
    let wallets = store.wallets(under.as_ref()).await?;
    let mut out = Vec::with_capacity(wallets.len());
    for w in &wallets {
        let info = match w.kind {
            WalletKind::Descriptor => Some(pair_of(&store, w)?.info()),
            WalletKind::Addresses => None,
        };
        out.push((w, info));
    }
    store.close().await;
    if json {
        let v: Vec<WalletOut> = out
            .into_iter()
            .map(|(w, info)| WalletOut {
                wallet: w,
                descriptor: info,
                addresses: None,
            })
            .collect();
        return output::json(&v);
    }
    if out.is_empty() {
        println!("no wallets yet: tesoro wallet add --entity CODE --name NAME --descriptor … | --addresses …");
        return Ok(());
    }
    let rows = out
        .iter()
        .map(|(w, info)| {
            vec![
                w.entity.to_string(),
                w.name.clone(),
                match w.kind {
                    WalletKind::Descriptor => "descriptor".into(),
                    WalletKind::Addresses => "addresses".into(),
                },
                summary(w, info.as_ref()),
                w.birth_height.map(|h| h.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    println!(
        "{}",
        output::table(
            &["entity", "wallet", "kind", "watches", "birth"],
            rows,
            &[4]
        )
    );
    Ok(())
}

async fn show(reference: String, json: bool, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let w = store.wallet(&reference).await?;
    let (info, addresses) = match w.kind {
        WalletKind::Descriptor => (Some(pair_of(&store, &w)?.info()), None),
        WalletKind::Addresses => (None, Some(store.wallet_addresses(w.id).await?)),
    };
    store.close().await;
    if json {
        return output::json(&WalletOut {
            wallet: &w,
            descriptor: info,
            addresses,
        });
    }
    let mut rows = vec![
        ("wallet", w.full_name()),
        ("entity", w.entity.to_string()),
        (
            "kind",
            match w.kind {
                WalletKind::Descriptor => "descriptor (watch-only)".into(),
                WalletKind::Addresses => "published addresses (watch-only)".into(),
            },
        ),
    ];
    if let Some(i) = &info {
        rows.push(("script type", i.script_type.clone()));
        rows.push(("policy", i.policy.clone()));
        rows.push((
            "gap limit",
            if i.ranged {
                w.gap_limit.unwrap_or(DEFAULT_GAP_LIMIT).to_string()
            } else {
                "n/a (single script)".into()
            },
        ));
        rows.push((
            "birth height",
            w.birth_height
                .map(|h| h.to_string())
                .unwrap_or_else(|| "unknown (scan from genesis)".into()),
        ));
        rows.push(("receive descriptor", i.external.clone()));
        rows.push((
            "change descriptor",
            i.internal.clone().unwrap_or_else(|| "none".into()),
        ));
    }
    rows.push(("added", w.created_at.clone()));
    output::fields(rows);
    if let Some(i) = &info {
        let keys = i
            .keys
            .iter()
            .enumerate()
            .map(|(n, k)| {
                vec![
                    (n + 1).to_string(),
                    k.fingerprint.clone(),
                    k.origin_path.clone().unwrap_or_else(|| "-".into()),
                    k.key.clone(),
                ]
            })
            .collect();
        println!(
            "{}",
            output::table(&["#", "fingerprint", "origin", "key"], keys, &[0])
        );
    }
    if let Some(list) = &addresses {
        let rows = list
            .iter()
            .map(|a| vec![(a.position + 1).to_string(), a.address.clone()])
            .collect();
        println!("{}", output::table(&["#", "address"], rows, &[0]));
    }
    Ok(())
}

#[derive(Serialize)]
struct DerivedOut {
    keychain: &'static str,
    index: u32,
    address: Option<String>,
    script_pubkey: String,
}

async fn addresses(
    reference: String,
    from: u32,
    count: u32,
    change: bool,
    json: bool,
    g: &Globals,
) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let w = store.wallet(&reference).await?;
    let network = store.network();
    let out: Vec<DerivedOut> = match w.kind {
        WalletKind::Addresses => {
            if change {
                bail!(
                    "wallet {} is a list of published addresses: it has no change addresses",
                    w.full_name()
                );
            }
            store
                .wallet_addresses(w.id)
                .await?
                .into_iter()
                .skip(from as usize)
                .take(count as usize)
                .map(|a| DerivedOut {
                    keychain: "published",
                    index: a.position as u32,
                    address: Some(a.address),
                    script_pubkey: a.script_pubkey_hex,
                })
                .collect()
        }
        WalletKind::Descriptor => {
            let pair = pair_of(&store, &w)?;
            let keychain = if change {
                Keychain::Internal
            } else {
                Keychain::External
            };
            if change && pair.internal.is_none() {
                bail!("wallet {} has no change descriptor", w.full_name());
            }
            let end = from.checked_add(count).filter(|e| *e <= 1 << 31).with_context(|| {
                format!("--from {from} --count {count} goes past the last unhardened index (2^31 - 1)")
            })?;
            let indexes: Vec<u32> = if pair.is_ranged() {
                (from..end).collect()
            } else {
                vec![0]
            };
            let mut v = Vec::with_capacity(indexes.len());
            for i in indexes {
                let script = pair.script_at(keychain, i)?;
                v.push(DerivedOut {
                    keychain: keychain.as_str(),
                    index: i,
                    address: script_address(&script, network.0).map(|a| a.to_string()),
                    script_pubkey: script.to_hex_string(),
                });
            }
            v
        }
    };
    store.close().await;
    if json {
        return output::json(&out);
    }
    let rows = out
        .into_iter()
        .map(|d| {
            vec![
                d.index.to_string(),
                d.address.unwrap_or_else(|| "(no address form)".into()),
                d.script_pubkey,
            ]
        })
        .collect();
    println!(
        "{}",
        output::table(&["index", "address", "script_pubkey"], rows, &[0])
    );
    Ok(())
}

pub async fn run(cmd: WalletCmd, g: &Globals) -> anyhow::Result<()> {
    match cmd {
        WalletCmd::Add(a) => add(a, g).await,
        WalletCmd::List { entity, json } => list(entity, json, g).await,
        WalletCmd::Show { wallet, json } => show(wallet, json, g).await,
        WalletCmd::Addresses {
            wallet,
            from,
            count,
            change,
            json,
        } => addresses(wallet, from, count, change, json, g).await,
    }
}
