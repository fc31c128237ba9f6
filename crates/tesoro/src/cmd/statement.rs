//! `tesoro statement create|verify|list|tier`: signed holdings at a pinned block with their
//! proofs of control and the movements since the previous statement, and their independent
//! re-derivation from the verifier's own node.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};
use rust_decimal::Decimal;
use serde::Serialize;
use tesoro_core::chain::BlockMeta;
use tesoro_core::entity::{parents_within, roll_up, tree_order};
use tesoro_core::movement::{Class, Kind};
use tesoro_core::price::{fmt_date, round_money, value_of};
use tesoro_core::statement::{
    utc_day, EntityTotal, FxUsed, KindTotal, Movements, PinnedBlock, PreviousStatement, Proof,
    SignedStatement, Software, Statement, StatementAddress, StatementUtxo, Tier, Valuation, FORMAT,
};
use tesoro_core::wallet::{parse_address, script_address};
use tesoro_core::{ChainNetwork, Entity, EntityCode};
use tesoro_store::{Store, WalletTier};

use crate::cmd::holdings::{btc, resolve_at};
use crate::cmd::key::{load_signing_key, load_verifying_key};
use crate::output;
use crate::Globals;

/// `tesoro statement …`
#[derive(Debug, clap::Subcommand)]
pub enum StatementCmd {
    /// Make and sign a statement of holdings at a block (stored, and written to a file).
    Create(CreateArgs),
    /// Check a statement's signature and proofs, and re-derive every listed balance from a
    /// chain source.
    Verify(VerifyArgs),
    /// Statements made so far.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Whether a wallet's addresses are listed (published, the default) or only counted
    /// (private) in statements.
    Tier {
        /// Wallet (name or ENTITY/name).
        wallet: String,
        /// published or private.
        tier: String,
    },
    /// The configured tier of every wallet.
    Tiers {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
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
    /// Value the holdings in these currencies from the stored price and FX series
    /// (comma-separated, e.g. USD,PKR).
    #[arg(long, value_delimiter = ',')]
    currency: Vec<String>,
    /// The previous statement: adds the movements by class between its block and this one.
    #[arg(long)]
    since: Option<PathBuf>,
    /// Wallets counted but not listed, for this statement only (name or ENTITY/name;
    /// repeatable); `statement tier` sets it for good.
    #[arg(long = "private")]
    private: Vec<String>,
    /// A price given by hand, as CURRENCY=PRICE (repeatable), e.g. USD=119501.66.
    #[arg(long = "price")]
    prices: Vec<String>,
    /// Day of the hand-given prices (default: the block's UTC day).
    #[arg(long)]
    price_date: Option<String>,
    /// Where the hand-given prices come from.
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

/// What a statement covers and how it is valued; [`build_statement`] turns it into a
/// statement from the store.
#[derive(Debug, Clone, Default)]
pub struct StatementSpec {
    /// Height or date; `None` for the synced tip.
    pub at: Option<String>,
    /// Entity code; `None` for the only root.
    pub entity: Option<String>,
    /// Currencies valued from the stored series.
    pub currencies: Vec<String>,
    /// Hand-given prices (`CURRENCY=PRICE`).
    pub prices: Vec<String>,
    /// Day of the hand-given prices.
    pub price_date: Option<String>,
    /// Source of the hand-given prices.
    pub price_source: Option<String>,
    /// Extra private wallets for this statement.
    pub private: Vec<String>,
    /// The previous statement file.
    pub since: Option<PathBuf>,
}

/// Makes, signs and stores a statement (for the CLI and the demo): holdings at `spec.at` of
/// `spec.entity` and below, valued in `spec.currencies` from the stored series, with the
/// stored proofs of control for that block and, given `spec.since` (a previous statement
/// file), the movements since it; signed with the key in `key_path`.
///
/// ```ignore
/// let spec = StatementSpec { at: Some("905000".into()), currencies: vec!["USD".into()], ..Default::default() };
/// let signed = create_statement(&store, &spec, Path::new("office.key")).await?;
/// ```
pub async fn create_statement(
    store: &Store,
    spec: &StatementSpec,
    key_path: &Path,
) -> anyhow::Result<SignedStatement> {
    let key = load_signing_key(key_path)?;
    let st = build_statement(store, spec).await?;
    let signed = st.sign(&key)?;
    store
        .save_statement(&signed)
        .await
        .context("cannot store the statement")?;
    Ok(signed)
}

/// The root entity a command is about: `--entity`, or the only state registered.
pub async fn root_entity(store: &Store, entity: Option<&str>) -> anyhow::Result<Entity> {
    match entity {
        Some(c) => Ok(store.entity(&EntityCode::parse(c)?).await?),
        None => {
            let entities = store.entities().await?;
            let roots: Vec<_> = entities.iter().filter(|e| e.parent.is_none()).collect();
            match roots.as_slice() {
                [one] => Ok((*one).clone()),
                [] => bail!("no entity is registered: `tesoro entity add` first"),
                _ => bail!("several states are registered: choose one with --entity CODE"),
            }
        }
    }
}

/// Outputs unspent at `height` in the store, by outpoint (what proofs are checked against
/// when they are added and when a statement is made).
pub async fn store_unspent(
    store: &Store,
    height: u32,
) -> anyhow::Result<HashMap<bitcoin::OutPoint, bitcoin::TxOut>> {
    Ok(store
        .utxos_at(Some(height), None)
        .await?
        .into_iter()
        .map(|u| {
            (
                u.outpoint,
                bitcoin::TxOut {
                    value: u.value,
                    script_pubkey: u.script_pubkey,
                },
            )
        })
        .collect())
}

fn parse_currency(c: &str) -> anyhow::Result<String> {
    let cur = c.trim().to_ascii_uppercase();
    if cur.len() != 3 || !cur.chars().all(|c| c.is_ascii_alphabetic()) {
        bail!("{c:?} is not a three-letter currency code");
    }
    Ok(cur)
}

async fn valuations(
    store: &Store,
    spec: &StatementSpec,
    block: &BlockMeta,
    total: u64,
) -> anyhow::Result<Vec<Valuation>> {
    let mut out: Vec<Valuation> = Vec::new();
    let day = utc_day(block.time);
    if !spec.currencies.is_empty() {
        let mut book = store.price_book().await?;
        book.allow_last_known = true;
        let date = tesoro_core::price::parse_date(&day).map_err(|e| anyhow::anyhow!("{e}"))?;
        let own = book.currencies();
        for c in &spec.currencies {
            let cur = parse_currency(c).with_context(|| format!("--currency {c}"))?;
            let q = book.btc_price(date, &cur).with_context(|| {
                format!("--currency {cur}: import prices (`tesoro prices import`) and, for a currency without its own series, FX rates from USD (`tesoro fx import`)")
            })?;
            let (source, fx) = if own.contains(&cur) {
                let src = store.price_source(&fmt_date(q.from), &cur).await?;
                (src.unwrap_or_else(|| "stored price series".into()), None)
            } else {
                let usd = book.btc_price(date, "USD")?;
                let rate = book.fx(date, "USD", &cur)?;
                let usd_src = store.price_source(&fmt_date(usd.from), "USD").await?;
                let fx_src = store.fx_source(&fmt_date(rate.from), "USD", &cur).await?;
                (
                    usd_src.unwrap_or_else(|| "stored price series".into()),
                    Some(FxUsed {
                        base: "USD".into(),
                        base_price: usd.value.normalize().to_string(),
                        rate: rate.value.normalize().to_string(),
                        date: fmt_date(rate.from),
                        source: fx_src.unwrap_or_else(|| "stored FX series".into()),
                    }),
                )
            };
            out.push(Valuation {
                currency: cur,
                price: q.value.normalize().to_string(),
                value: round_money(value_of(total, q.value)).to_string(),
                date: fmt_date(q.from),
                source,
                fx,
            });
        }
    }
    let price_date = spec.price_date.clone().unwrap_or_else(|| day.clone());
    for p in &spec.prices {
        let (cur, val) = p
            .split_once('=')
            .with_context(|| format!("--price {p:?}: write CURRENCY=PRICE, e.g. USD=119501.66"))?;
        let cur = parse_currency(cur).with_context(|| format!("--price {p:?}"))?;
        let price = Decimal::from_str(val.trim())
            .with_context(|| format!("--price {p:?}: {val:?} is not a decimal number"))?;
        if price <= Decimal::ZERO {
            bail!("--price {p:?}: a price must be positive");
        }
        out.push(Valuation {
            currency: cur,
            price: price.normalize().to_string(),
            value: round_money(value_of(total, price)).to_string(),
            date: price_date.clone(),
            source: spec
                .price_source
                .clone()
                .unwrap_or_else(|| "given on the command line".into()),
            fx: None,
        });
    }
    let mut seen = BTreeSet::new();
    for v in &out {
        if !seen.insert(v.currency.clone()) {
            bail!("{} is valued twice: give each currency once", v.currency);
        }
    }
    Ok(out)
}

/// Reads and checks a previous statement file for `--since`.
fn read_previous(path: &Path) -> anyhow::Result<(SignedStatement, Statement)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--since: cannot read {}", path.display()))?;
    let signed =
        SignedStatement::from_json(&text).with_context(|| format!("--since {}", path.display()))?;
    let st = signed
        .verify(None)
        .with_context(|| format!("--since {}", path.display()))?;
    Ok((signed, st))
}

async fn movements_since(
    store: &Store,
    path: &Path,
    root: &Entity,
    block: &BlockMeta,
    network: ChainNetwork,
    wallet_ids: &[i64],
) -> anyhow::Result<Movements> {
    let (prev_signed, prev) = read_previous(path)?;
    let where_ = path.display();
    if prev.institution != root.code.as_str() {
        bail!(
            "--since {where_}: that statement covers {}, this one {}",
            prev.institution,
            root.code
        );
    }
    if prev.network != network.name() {
        bail!("--since {where_}: that statement is on {}", prev.network);
    }
    if prev.block.height >= block.height {
        bail!(
            "--since {where_}: that statement is at height {}, not before {}",
            prev.block.height,
            block.height
        );
    }
    match store.block_at(prev.block.height).await? {
        Some(b) if b.hash.to_string() == prev.block.hash => {}
        _ => bail!(
            "--since {where_}: its block {} at height {} is not on this database's chain",
            prev.block.hash,
            prev.block.height
        ),
    }
    let opening: u64 = store
        .utxos_at(Some(prev.block.height), Some(wallet_ids))
        .await?
        .iter()
        .map(|u| u.value.to_sat())
        .sum();
    let filter = tesoro_store::reports::MovementFilter {
        entity: Some(root.code.clone()),
        ..Default::default()
    };
    let list = tesoro_store::reports::movements(store, &filter, Default::default())
        .await
        .context("cannot classify the movements")?;
    let mut acq: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut disp: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut m = Movements {
        since: PreviousStatement {
            height: prev.block.height,
            hash: prev.block.hash.clone(),
            sha256: prev_signed.sha256.clone(),
            total_sats: prev.total_sats,
        },
        opening_sats: opening,
        acquisitions: vec![],
        internal_count: 0,
        internal_in_sats: 0,
        internal_out_sats: 0,
        disposals: vec![],
        fee_count: 0,
        fee_sats: 0,
    };
    for r in list
        .movements
        .iter()
        .filter(|r| r.height > prev.block.height && r.height <= block.height)
    {
        let class = Class::from_str(&r.class).map_err(|e| anyhow::anyhow!("{e}"))?;
        // A movement can carry several parts; each part goes to its class so that the parts
        // always add up to the change in holdings.
        if r.acquired_sats > 0 {
            let kind = if class == Class::Acquisition {
                r.kind.clone()
            } else {
                Kind::UnclassifiedAcquisition.as_str().to_string()
            };
            let e = acq.entry(kind).or_default();
            e.0 += 1;
            e.1 += r.acquired_sats;
        }
        if r.disposed_sats > 0 {
            let kind = if class == Class::Disposal {
                r.kind.clone()
            } else {
                Kind::UnclassifiedDisposal.as_str().to_string()
            };
            let e = disp.entry(kind).or_default();
            e.0 += 1;
            e.1 += r.disposed_sats;
        }
        if r.internal_in_sats > 0 || r.internal_out_sats > 0 {
            m.internal_count += 1;
            m.internal_in_sats += r.internal_in_sats;
            m.internal_out_sats += r.internal_out_sats;
        }
        if r.fee_sats > 0 {
            m.fee_count += 1;
            m.fee_sats += r.fee_sats;
        }
    }
    let totals = |map: BTreeMap<String, (u64, u64)>| {
        map.into_iter()
            .map(|(kind, (count, sats))| KindTotal { kind, count, sats })
            .collect()
    };
    m.acquisitions = totals(acq);
    m.disposals = totals(disp);
    Ok(m)
}

/// Builds (does not sign) the statement `spec` describes from the store.
pub async fn build_statement(store: &Store, spec: &StatementSpec) -> anyhow::Result<Statement> {
    let network = store.network();
    let block = resolve_at(store, spec.at.as_deref()).await?;
    let entities = store.entities().await?;
    let root = root_entity(store, spec.entity.as_deref()).await?;
    let scope: BTreeSet<EntityCode> = store
        .entity_subtree(&root.code)
        .await?
        .into_iter()
        .collect();
    let wallets = store.wallets(Some(&root.code)).await?;
    let tiers = store.wallet_tiers().await?;
    let mut private_ids: BTreeSet<i64> = wallets
        .iter()
        .filter(|w| tiers.get(&w.id) == Some(&WalletTier::Private))
        .map(|w| w.id)
        .collect();
    for p in &spec.private {
        private_ids.insert(store.wallet(p).await?.id);
    }
    let by_id: HashMap<i64, &tesoro_store::WalletRow> = wallets.iter().map(|w| (w.id, w)).collect();
    let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
    let utxos = store.utxos_at(Some(block.height), Some(&ids)).await?;

    let mut listed: BTreeMap<String, StatementAddress> = BTreeMap::new();
    let mut private_addresses: BTreeSet<String> = BTreeSet::new();
    let mut private_sats = 0u64;
    let mut own: BTreeMap<String, u64> = BTreeMap::new();
    for u in &utxos {
        let Some(w) = by_id.get(&u.wallet_id) else {
            continue;
        };
        *own.entry(w.entity.to_string()).or_default() += u.value.to_sat();
        let address = script_address(&u.script_pubkey, network.0).map(|x| x.to_string());
        if private_ids.contains(&w.id) {
            private_sats += u.value.to_sat();
            if let Some(a) = address {
                private_addresses.insert(a);
            }
            continue;
        }
        let address = address.with_context(|| {
            format!(
                "output {} pays a script with no address form; make its wallet private (`tesoro statement tier {} private`)",
                u.outpoint,
                w.full_name()
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
    let parent_of = parents_within(&in_scope);
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
    let valuations = valuations(store, spec, &block, total).await?;
    let movements = match &spec.since {
        Some(p) => Some(movements_since(store, p, &root, &block, network, &ids).await?),
        None => None,
    };
    let mut st = Statement {
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
        movements,
        valuations,
        challenge: String::new(),
        proofs: Vec::new(),
        software: Software {
            name: "tesoro".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        public_key: String::new(),
        issued_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    };
    st.challenge = st.expected_challenge();
    attach_proofs(store, &mut st, &private_addresses).await?;
    Ok(st)
}

/// Attaches the stored proofs for the statement's block, re-checked against the store, and
/// marks the addresses they cover `verified`. Proofs that would reveal a private address are
/// left out.
async fn attach_proofs(
    store: &Store,
    st: &mut Statement,
    private_addresses: &BTreeSet<String>,
) -> anyhow::Result<()> {
    let stored = store.proofs(&st.institution, Some(&st.block.hash)).await?;
    if stored.is_empty() {
        return Ok(());
    }
    let listed: BTreeSet<String> = st.addresses.iter().map(|a| a.address.clone()).collect();
    st.proofs = stored.into_iter().map(|p| p.proof).collect();
    let unspent = store_unspent(store, st.block.height).await?;
    let network = store.network();
    let outcomes = tesoro_proof::check::check_proofs(st, network, &unspent);
    let mut keep = Vec::new();
    let mut verified: BTreeSet<String> = BTreeSet::new();
    for o in &outcomes {
        if !o.ok {
            tracing::warn!(
                "stored proof {} ({}) left out: {}",
                o.index,
                o.subject,
                o.detail
            );
            continue;
        }
        if o.addresses.iter().any(|a| private_addresses.contains(a)) {
            tracing::warn!(
                "proof {} ({}) left out: it names a private address",
                o.index,
                o.subject
            );
            continue;
        }
        if !o.addresses.iter().any(|a| listed.contains(a)) {
            continue;
        }
        verified.extend(o.addresses.iter().cloned());
        keep.push(o.index);
    }
    let all = std::mem::take(&mut st.proofs);
    st.proofs = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, p)| p)
        .collect::<Vec<Proof>>();
    for a in &mut st.addresses {
        if verified.contains(&a.address) {
            a.tier = Tier::Verified;
        }
    }
    Ok(())
}

async fn create(a: CreateArgs, g: &Globals) -> anyhow::Result<()> {
    // Read the key first: a missing key fails before any work.
    load_signing_key(&a.key)?;
    let store = g.open_store().await?;
    let spec = StatementSpec {
        at: a.at.clone(),
        entity: a.entity.clone(),
        currencies: a.currency.clone(),
        prices: a.prices.clone(),
        price_date: a.price_date.clone(),
        price_source: Some(a.price_source.clone()),
        private: a.private.clone(),
        since: a.since.clone(),
    };
    let signed = create_statement(&store, &spec, &a.key).await?;
    store.close().await;
    let st: Statement = serde_json::from_value(signed.statement.clone())?;
    let text = serde_json::to_string_pretty(&signed)?;
    // Write beside, then rename: a reader never sees half a statement.
    let tmp = a.out.with_extension("json.partial");
    std::fs::write(&tmp, text.as_bytes())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &a.out).with_context(|| format!("cannot write {}", a.out.display()))?;
    let verified = st
        .addresses
        .iter()
        .filter(|x| x.tier == Tier::Verified)
        .count();
    if a.json {
        return output::json(&serde_json::json!({
            "file": a.out.display().to_string(),
            "sha256": signed.sha256,
            "height": st.block.height,
            "hash": st.block.hash,
            "total_sats": st.total_sats,
            "private_sats": st.private_sats,
            "addresses": st.addresses.len(),
            "verified_addresses": verified,
            "proofs": st.proofs.len(),
            "public_key": st.public_key,
        }));
    }
    println!(
        "statement of {} at height {} ({}): {} BTC at {} listed addresses ({} verified by proof){}\nsha256 {}\nwritten to {}",
        st.institution,
        st.block.height,
        utc_day(st.block.time),
        btc(st.total_sats),
        st.addresses.len(),
        verified,
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
    verified_addresses: usize,
    proofs: Vec<tesoro_proof::check::ProofOutcome>,
    movements_checked: bool,
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
    let (found, mut discrepancies, proofs) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
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
        let listed = scripts.len();
        // The scripts BIP-127 proofs claim to spend ride along in the same scan: the proofs
        // are then checked against what this node had unspent at the statement's height.
        let known: BTreeSet<bitcoin::ScriptBuf> = scripts.iter().cloned().collect();
        scripts.extend(
            tesoro_proof::check::scripts_needed(&st2)
                .into_iter()
                .filter(|s| !known.contains(s)),
        );
        let found = tesoro_chain::rederive::utxos_at(&dir, &index, &scripts, from, st2.block.height)?;
        let unspent: HashMap<bitcoin::OutPoint, bitcoin::TxOut> = found
            .iter()
            .filter_map(|f| {
                scripts.get(f.script).map(|s| {
                    (
                        f.outpoint,
                        bitcoin::TxOut {
                            value: f.value,
                            script_pubkey: s.clone(),
                        },
                    )
                })
            })
            .collect();
        let proofs = tesoro_proof::check::check_proofs(&st2, network, &unspent);
        let found: Vec<_> = found.into_iter().filter(|f| f.script < listed).collect();
        Ok((found, disc, proofs))
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
    for p in proofs.iter().filter(|p| !p.ok) {
        discrepancies.push(Discrepancy {
            address: p.subject.clone(),
            what: format!("proof {} ({})", p.index, p.kind),
            expected: "valid".into(),
            found: p.detail.clone(),
        });
    }
    for a in tesoro_proof::check::unproven_verified(&st, &proofs) {
        discrepancies.push(Discrepancy {
            address: a,
            what: "tier".into(),
            expected: "verified".into(),
            found: "no valid proof covers it".into(),
        });
    }
    let verified_addresses = st
        .addresses
        .iter()
        .filter(|a| a.tier == Tier::Verified)
        .count();
    let out = VerifyOut {
        ok: discrepancies.is_empty(),
        sha256: signed.sha256.clone(),
        public_key: st.public_key.clone(),
        height: st.block.height,
        hash: st.block.hash.clone(),
        addresses_checked: st.addresses.len(),
        total_sats: st.total_sats,
        private_sats_not_verifiable: st.private_sats,
        verified_addresses,
        movements_checked: st.movements.is_some(),
        proofs,
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
        if !out.proofs.is_empty() {
            let good = out.proofs.iter().filter(|p| p.ok).count();
            println!(
                "proofs of control: {good} of {} valid at height {} on your node; {} addresses verified",
                out.proofs.len(),
                out.height,
                out.verified_addresses
            );
        }
        if let Some(m) = &st.movements {
            println!(
                "movements since height {} (statement {}): opening {} BTC, closing {} BTC; they add up",
                m.since.height,
                m.since.sha256,
                btc(m.opening_sats),
                btc(st.total_sats)
            );
        }
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

async fn list(json: bool, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let rows = store.statements().await?;
    store.close().await;
    if json {
        #[derive(Serialize)]
        struct Row<'a> {
            sha256: &'a str,
            entity: &'a str,
            height: u32,
            block_hash: &'a str,
            total_sats: u64,
            public_key: &'a str,
            created_at: &'a str,
        }
        let v: Vec<Row> = rows
            .iter()
            .map(|r| Row {
                sha256: &r.sha256,
                entity: &r.entity,
                height: r.height,
                block_hash: &r.block_hash,
                total_sats: r.total_sats,
                public_key: &r.public_key,
                created_at: &r.created_at,
            })
            .collect();
        return output::json(&v);
    }
    if rows.is_empty() {
        println!("no statements yet: `tesoro statement create`");
        return Ok(());
    }
    let t = rows
        .iter()
        .map(|r| {
            vec![
                r.entity.clone(),
                r.height.to_string(),
                btc(r.total_sats),
                r.sha256.clone(),
                r.created_at.clone(),
            ]
        })
        .collect();
    println!(
        "{}",
        output::table(&["entity", "height", "BTC", "sha256", "made"], t, &[1, 2])
    );
    Ok(())
}

async fn tier(wallet: &str, tier: &str, g: &Globals) -> anyhow::Result<()> {
    let t = WalletTier::from_str(tier).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = g.open_store().await?;
    let w = store.wallet(wallet).await?;
    store.set_wallet_tier(w.id, t).await?;
    store.close().await;
    println!(
        "{}: {} in statements",
        w.full_name(),
        match t {
            WalletTier::Private => "counted, not listed",
            WalletTier::Published => "listed",
        }
    );
    Ok(())
}

async fn tiers(json: bool, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let wallets = store.wallets(None).await?;
    let tiers = store.wallet_tiers().await?;
    store.close().await;
    let rows: Vec<(String, &'static str)> = wallets
        .iter()
        .map(|w| {
            (
                w.full_name(),
                tiers
                    .get(&w.id)
                    .copied()
                    .unwrap_or(WalletTier::Published)
                    .as_str(),
            )
        })
        .collect();
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(w, t)| serde_json::json!({"wallet": w, "tier": t}))
            .collect();
        return output::json(&v);
    }
    let t = rows
        .into_iter()
        .map(|(w, t)| vec![w, t.to_string()])
        .collect();
    println!("{}", output::table(&["wallet", "tier"], t, &[]));
    Ok(())
}

/// Runs a `tesoro statement` command.
pub async fn run(cmd: StatementCmd, g: &Globals) -> anyhow::Result<()> {
    match cmd {
        StatementCmd::Create(a) => create(a, g).await,
        StatementCmd::Verify(a) => verify(a).await,
        StatementCmd::List { json } => list(json, g).await,
        StatementCmd::Tier { wallet, tier: t } => tier(&wallet, &t, g).await,
        StatementCmd::Tiers { json } => tiers(json, g).await,
    }
}
