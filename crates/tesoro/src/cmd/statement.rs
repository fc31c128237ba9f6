//! `tesoro statement create|verify`: signed holdings at a pinned block, and their independent
//! re-derivation from the verifier's own node.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, Context};
use rust_decimal::Decimal;
use serde::Serialize;
use tesoro_core::entity::{roll_up, tree_order};
use tesoro_core::statement::{
    EntityTotal, PinnedBlock, SignedStatement, Software, Statement, StatementAddress,
    StatementUtxo, Tier, Valuation, FORMAT,
};
use tesoro_core::wallet::{parse_address, script_address};
use tesoro_core::{ChainNetwork, EntityCode};

use crate::cmd::holdings::{btc, resolve_at};
use crate::cmd::key::{load_signing_key, load_verifying_key, public_hex};
use crate::output;
use crate::Globals;

/// `tesoro statement …`
#[derive(Debug, clap::Subcommand)]
pub enum StatementCmd {
    /// Make and sign a statement of holdings at a block.
    Create(CreateArgs),
    /// Check a statement's signature and re-derive every listed balance from a chain source.
    Verify(VerifyArgs),
}

/// `tesoro statement create`
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Block height or date (YYYY-MM-DD: last block of that UTC day); default the synced tip.
    #[arg(long)]
    at: Option<String>,
    /// The entity the statement covers, with everything below it (default: the only root).
    #[arg(long)]
    entity: Option<String>,
    /// Wallets whose addresses are counted but not listed (name or ENTITY/name; repeatable).
    #[arg(long = "private")]
    private: Vec<String>,
    /// A price to value the holdings with, as CURRENCY=PRICE (repeatable), e.g. USD=119501.66.
    #[arg(long = "price")]
    prices: Vec<String>,
    /// Day of the prices (default: the block's UTC day).
    #[arg(long)]
    price_date: Option<String>,
    /// Where the prices come from.
    #[arg(long, default_value = "given on the command line")]
    price_source: String,
    /// The office's signing key (PKCS#8 PEM).
    #[arg(long, default_value = "office.key")]
    key: PathBuf,
    /// Output file.
    #[arg(short, long, default_value = "statement.json")]
    out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `tesoro statement verify`
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Statement file.
    file: PathBuf,
    /// Your own chain source: core-dir:PATH.
    #[arg(long)]
    source: String,
    /// The signer's public key you expect (PEM or hex file); without it the key in the
    /// statement is used and printed for you to compare.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Scan from this height instead of genesis (faster; a complete check starts at 0).
    #[arg(long, default_value_t = 0)]
    from: u32,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn date_of(time: u32) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::from(time))
        .map(|t| {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        })
        .unwrap_or_else(|_| "?".into())
}

fn value_of(sats: u64, price: Decimal) -> Decimal {
    (Decimal::from(sats) * price / Decimal::from(100_000_000u64)).round_dp(2)
}

async fn create(a: CreateArgs, g: &Globals) -> anyhow::Result<()> {
    let key = load_signing_key(&a.key)?;
    let store = g.open_store().await?;
    let network = store.network();
    let block = resolve_at(&store, a.at.as_deref()).await?;
    let entities = store.entities().await?;
    let root = match &a.entity {
        Some(c) => store.entity(&EntityCode::parse(c)?).await?,
        None => {
            let roots: Vec<_> = entities.iter().filter(|e| e.parent.is_none()).collect();
            match roots.as_slice() {
                [one] => (*one).clone(),
                _ => bail!("several states are registered: choose one with --entity CODE"),
            }
        }
    };
    let scope: BTreeSet<EntityCode> = store
        .entity_subtree(&root.code)
        .await?
        .into_iter()
        .collect();
    let wallets = store.wallets(Some(&root.code)).await?;
    let mut private_ids = BTreeSet::new();
    for p in &a.private {
        private_ids.insert(store.wallet(p).await?.id);
    }
    let by_id: HashMap<i64, &tesoro_store::WalletRow> = wallets.iter().map(|w| (w.id, w)).collect();
    let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
    let utxos = store.utxos_at(Some(block.height), Some(&ids)).await?;

    let mut listed: BTreeMap<String, StatementAddress> = BTreeMap::new();
    let mut private_sats = 0u64;
    let mut own: BTreeMap<String, u64> = BTreeMap::new();
    for u in &utxos {
        let Some(w) = by_id.get(&u.wallet_id) else {
            continue;
        };
        *own.entry(w.entity.to_string()).or_default() += u.value.to_sat();
        if private_ids.contains(&w.id) {
            private_sats += u.value.to_sat();
            continue;
        }
        let address = script_address(&u.script_pubkey, network.0)
            .map(|x| x.to_string())
            .with_context(|| {
                format!(
                    "output {} pays a script with no address form; mark its wallet --private",
                    u.outpoint
                )
            })?;
        let e = listed
            .entry(address.clone())
            .or_insert_with(|| StatementAddress {
                address,
                entity: w.entity.to_string(),
                wallet: w.name.clone(),
                tier: Tier::Published,
                balance_sats: 0,
                utxos: Vec::new(),
            });
        e.balance_sats += u.value.to_sat();
        e.utxos.push(StatementUtxo {
            outpoint: u.outpoint.to_string(),
            sats: u.value.to_sat(),
            height: u.height,
        });
    }
    for e in listed.values_mut() {
        e.utxos.sort();
    }
    let in_scope: Vec<_> = entities
        .iter()
        .filter(|e| scope.contains(&e.code))
        .cloned()
        .collect();
    let parent_of: BTreeMap<String, Option<String>> = in_scope
        .iter()
        .map(|e| {
            let p = e
                .parent
                .as_ref()
                .filter(|p| scope.contains(*p))
                .map(|p| p.to_string());
            (e.code.to_string(), p)
        })
        .collect();
    let rolled = roll_up(&own, &parent_of);
    let entity_totals: Vec<EntityTotal> = tree_order(&in_scope)
        .into_iter()
        .map(|r| EntityTotal {
            code: r.entity.code.to_string(),
            name: r.entity.name.clone(),
            parent: parent_of.get(r.entity.code.as_str()).cloned().flatten(),
            total_sats: rolled.get(r.entity.code.as_str()).copied().unwrap_or(0),
        })
        .collect();
    let total: u64 = utxos
        .iter()
        .filter(|u| by_id.contains_key(&u.wallet_id))
        .map(|u| u.value.to_sat())
        .sum();
    let price_date = a.price_date.clone().unwrap_or_else(|| date_of(block.time));
    let mut valuations = Vec::new();
    for p in &a.prices {
        let (cur, val) = p
            .split_once('=')
            .with_context(|| format!("--price {p:?}: write CURRENCY=PRICE, e.g. USD=119501.66"))?;
        let cur = cur.trim().to_ascii_uppercase();
        if cur.len() != 3 || !cur.chars().all(|c| c.is_ascii_alphabetic()) {
            bail!("--price {p:?}: {cur:?} is not a three-letter currency code");
        }
        let price = Decimal::from_str(val.trim())
            .with_context(|| format!("--price {p:?}: {val:?} is not a decimal number"))?;
        if price <= Decimal::ZERO {
            bail!("--price {p:?}: a price must be positive");
        }
        valuations.push(Valuation {
            currency: cur,
            price: price.normalize().to_string(),
            value: value_of(total, price).to_string(),
            date: price_date.clone(),
            source: a.price_source.clone(),
        });
    }
    let st = Statement {
        format: FORMAT.into(),
        network: network.name().into(),
        block: PinnedBlock {
            height: block.height,
            hash: block.hash.to_string(),
            time: block.time,
        },
        institution: root.code.to_string(),
        entities: entity_totals,
        addresses: listed.into_values().collect(),
        private_sats,
        total_sats: total,
        valuations,
        software: Software {
            name: "tesoro".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        public_key: String::new(),
        issued_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    };
    store.close().await;
    let signed = st.sign(&key)?;
    let text = serde_json::to_string_pretty(&signed)?;
    // Write beside, then rename: a reader never sees half a statement.
    let tmp = a.out.with_extension("json.partial");
    std::fs::write(&tmp, text.as_bytes())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &a.out).with_context(|| format!("cannot write {}", a.out.display()))?;
    if a.json {
        return output::json(&serde_json::json!({
            "file": a.out.display().to_string(),
            "sha256": signed.sha256,
            "height": st.block.height,
            "hash": st.block.hash,
            "total_sats": st.total_sats,
            "addresses": st.addresses.len(),
            "public_key": public_hex(&key.verifying_key()),
        }));
    }
    println!(
        "statement of {} at height {} ({}): {} BTC at {} listed addresses{}\nsha256 {}\nwritten to {}",
        st.institution,
        st.block.height,
        date_of(st.block.time),
        btc(st.total_sats),
        st.addresses.len(),
        if st.private_sats > 0 { format!(" (+{} BTC private)", btc(st.private_sats)) } else { String::new() },
        signed.sha256,
        a.out.display()
    );
    Ok(())
}

#[derive(Debug, Serialize)]
struct Discrepancy {
    address: String,
    what: String,
    expected: String,
    found: String,
}

#[derive(Debug, Serialize)]
struct VerifyOut {
    ok: bool,
    sha256: String,
    public_key: String,
    height: u32,
    hash: String,
    addresses_checked: usize,
    total_sats: u64,
    private_sats_not_verifiable: u64,
    discrepancies: Vec<Discrepancy>,
}

async fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("cannot read {}", a.file.display()))?;
    let signed =
        SignedStatement::from_json(&text).with_context(|| format!("{}", a.file.display()))?;
    let expected = a.key.as_deref().map(load_verifying_key).transpose()?;
    let st = signed
        .verify(expected.as_ref())
        .with_context(|| format!("{}", a.file.display()))?;
    let network = ChainNetwork::from_str(&st.network)?;
    let Some(path) = a.source.strip_prefix("core-dir:") else {
        bail!(
            "--source {:?}: statement verification reads Core's blocks folder: core-dir:PATH",
            a.source
        );
    };
    let path = PathBuf::from(path);
    let st2 = st.clone();
    let from = a.from;
    let (found, mut discrepancies) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let dir = tesoro_chain::BlocksDir::open(&path, network.0)
            .with_context(|| format!("cannot read the blocks dir {}", path.display()))?;
        let index = dir.index()?;
        let mut disc = Vec::new();
        match index.get(st2.block.height) {
            Some(b) if b.hash.to_string() == st2.block.hash => {
                if b.time != st2.block.time {
                    disc.push(Discrepancy {
                        address: "-".into(),
                        what: "block time".into(),
                        expected: st2.block.time.to_string(),
                        found: b.time.to_string(),
                    });
                }
            }
            Some(b) => bail!(
                "the statement's block {} at height {} is not on this node's best chain (which has {} there)",
                st2.block.hash,
                st2.block.height,
                b.hash
            ),
            None => bail!(
                "this node's chain ends at height {}, below the statement's height {}: sync the node further",
                index.tip_height(),
                st2.block.height
            ),
        }
        let mut scripts = Vec::with_capacity(st2.addresses.len());
        for (i, addr) in st2.addresses.iter().enumerate() {
            let w = parse_address(&addr.address, &format!("addresses[{i}]"), network)?;
            scripts.push(w.script_pubkey);
        }
        let found = tesoro_chain::rederive::utxos_at(&dir, &index, &scripts, from, st2.block.height)?;
        Ok((found, disc))
    })
    .await??;
    let mut by_addr: Vec<Vec<(String, u64)>> = vec![Vec::new(); st.addresses.len()];
    for f in &found {
        if let Some(v) = by_addr.get_mut(f.script) {
            v.push((f.outpoint.to_string(), f.value.to_sat()));
        }
    }
    for (i, addr) in st.addresses.iter().enumerate() {
        let mut have = by_addr[i].clone();
        have.sort();
        let mut want: Vec<(String, u64)> = addr
            .utxos
            .iter()
            .map(|u| (u.outpoint.clone(), u.sats))
            .collect();
        want.sort();
        let have_sum: u64 = have.iter().map(|(_, s)| s).sum();
        if have_sum != addr.balance_sats {
            discrepancies.push(Discrepancy {
                address: addr.address.clone(),
                what: "balance".into(),
                expected: btc(addr.balance_sats),
                found: btc(have_sum),
            });
        }
        if have != want {
            let hs: BTreeSet<_> = have.iter().collect();
            let ws: BTreeSet<_> = want.iter().collect();
            for (op, s) in ws.difference(&hs) {
                discrepancies.push(Discrepancy {
                    address: addr.address.clone(),
                    what: format!("utxo {op}"),
                    expected: btc(*s),
                    found: "not unspent at this height".into(),
                });
            }
            for (op, s) in hs.difference(&ws) {
                discrepancies.push(Discrepancy {
                    address: addr.address.clone(),
                    what: format!("utxo {op}"),
                    expected: "not listed".into(),
                    found: btc(*s),
                });
            }
        }
    }
    let out = VerifyOut {
        ok: discrepancies.is_empty(),
        sha256: signed.sha256.clone(),
        public_key: st.public_key.clone(),
        height: st.block.height,
        hash: st.block.hash.clone(),
        addresses_checked: st.addresses.len(),
        total_sats: st.total_sats,
        private_sats_not_verifiable: st.private_sats,
        discrepancies,
    };
    if a.json {
        output::json(&out)?;
    } else {
        println!(
            "signature: valid, key {}{}",
            out.public_key,
            if expected.is_some() {
                " (the key you gave)"
            } else {
                " (compare it with the key the office published)"
            }
        );
        println!(
            "block: height {} {} is on your node's best chain",
            out.height, out.hash
        );
        println!(
            "re-derived {} addresses from your node: {}",
            out.addresses_checked,
            if out.ok {
                "every balance and output matches"
            } else {
                "DISCREPANCIES"
            }
        );
        if out.private_sats_not_verifiable > 0 {
            println!(
                "{} BTC are at private (unlisted) addresses: counted in the total, not verifiable",
                btc(out.private_sats_not_verifiable)
            );
        }
        if !out.ok {
            let rows = out
                .discrepancies
                .iter()
                .map(|d| {
                    vec![
                        d.address.clone(),
                        d.what.clone(),
                        d.expected.clone(),
                        d.found.clone(),
                    ]
                })
                .collect();
            println!(
                "{}",
                output::table(
                    &["address", "what", "statement says", "your node says"],
                    rows,
                    &[]
                )
            );
        }
    }
    if !out.ok {
        bail!(
            "{} discrepancies between the statement and your node",
            out.discrepancies.len()
        );
    }
    Ok(())
}

pub async fn run(cmd: StatementCmd, g: &Globals) -> anyhow::Result<()> {
    match cmd {
        StatementCmd::Create(a) => create(a, g).await,
        StatementCmd::Verify(a) => verify(a).await,
    }
}
