//! `tesoro demo`: one command that shows a newcomer everything. It builds a regtest chain
//! from the scenario files under `scenarios/` (an El Salvador-like and a Pakistan-like
//! reserve, modelled on public facts), syncs it into a fresh SQLite file with the same code
//! as `tesoro sync`, loads the committed price history and FX series, the purchase and
//! seizure records, counterparty rules and policies, signs statements, and serves the portal.
//! No node, no network.
//!
//! The folder is built beside its final place (`DIR.partial`) and renamed into place only
//! when complete, so `DIR` is never half-made; a second run with the same inputs reuses it.

mod inputs;
mod scenario;

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tesoro_core::classify::{CounterpartyRule, RecordKind, Rules, RulesFile};
use tesoro_core::price::{fmt_date, parse_coinmetrics, parse_date, parse_fx, FxPoint};
use tesoro_core::wallet::{parse_address_list, script_address, DescriptorPair};
use tesoro_core::{ChainNetwork, EntityCode};
use tesoro_store::{NewEntity, NewWallet, NewWalletKind, Store};

use self::inputs::{absolute, Inputs, FX_USD_PKR};
use self::scenario::{DemoSpec, StateSpec};
use crate::cmd::holdings::{btc, resolve_at};
use crate::config::{Config, DatabaseConfig};
use crate::output;
use crate::sync::{open_source, sync_once, SourceSpec};
use crate::Globals;

/// `tesoro demo`
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder for the demo's chain, database, keys, policies and statements.
    #[arg(long, default_value = "tesoro-demo")]
    dir: PathBuf,
    /// Where the portal listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: String,
    /// Prepare (or reuse) the demo and print its summary; do not start the server.
    #[arg(long)]
    no_serve: bool,
    /// Rebuild even if DIR holds a complete demo of the same inputs.
    #[arg(long)]
    fresh: bool,
    /// Read the scenario files from this folder instead of the built-in ones.
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// The file in a finished demo folder that marks it complete (written last).
const MARKER: &str = "demo.json";

/// What the demo prepared; written to `DIR/demo.json` and printed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Fingerprint of the inputs (software version, scenario files, price and FX data).
    pub fingerprint: String,
    /// The demo folder.
    pub dir: String,
    /// Config file to pass to other commands (`tesoro --config … balance`).
    pub config: String,
    /// The SQLite database.
    pub database: String,
    /// The generated Bitcoin Core blocks folder.
    pub blocks_dir: String,
    /// The office's public key file.
    pub public_key_file: String,
    /// Seconds the preparation took (when it was built by this run).
    pub prepare_seconds: f64,
    /// True when an existing complete folder was reused.
    #[serde(default)]
    pub reused: bool,
    /// Tip of the synced chain.
    pub tip_height: u32,
    /// Its hash.
    pub tip_hash: String,
    /// Its day.
    pub tip_date: String,
    /// Day of the statements.
    pub statement_date: String,
    /// Every state.
    pub states: Vec<StateSummary>,
    /// The portal's demo users (passwords made for this folder; it is a local demo).
    #[serde(default)]
    pub users: Vec<DemoUser>,
}

/// A demo login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoUser {
    /// User name.
    pub username: String,
    /// Role.
    pub role: String,
    /// Entity the grant covers (with everything below it); none = every state.
    pub scope: Option<String>,
    /// Password.
    pub password: String,
}

/// One state in the summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateSummary {
    /// Entity code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Local currency.
    pub currency: String,
    /// Holdings at the statement day.
    pub at_statement_date: Holdings,
    /// Holdings at the tip.
    pub at_tip: Holdings,
    /// Every address holding coins at the tip, largest first.
    pub addresses_at_tip: Vec<AddressBalance>,
    /// The signed statement (output of `tesoro statement create --json`).
    pub statement: serde_json::Value,
    /// The programme period's accumulation test (output of `tesoro report accumulation`).
    pub accumulation: Option<serde_json::Value>,
    /// Policy violations at the statement day and at the tip (`tesoro check`).
    pub policy_violations: BTreeMap<String, usize>,
    /// Mining payouts from a plan.
    pub mining: Option<MiningSummary>,
}

/// Holdings at one block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holdings {
    /// Height.
    pub height: u32,
    /// Day of the block.
    pub date: String,
    /// Everything the state holds (all agencies).
    pub total_sats: u64,
    /// The published reserve addresses (what the state's tracker shows).
    pub reserve_sats: u64,
    /// Per entity, rolled up the tree.
    pub entities: BTreeMap<String, u64>,
    /// USD price of the day (Coin Metrics).
    pub price_usd: String,
    /// Value of the reserve in USD.
    pub reserve_usd: String,
    /// Value of the total in USD.
    pub total_usd: String,
    /// Value of the total in the local currency.
    pub total_local: String,
}

/// An address and its balance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddressBalance {
    /// Address.
    pub address: String,
    /// Wallet name.
    pub wallet: String,
    /// Entity.
    pub entity: String,
    /// Balance.
    pub sats: u64,
}

/// Mining payouts fed by a plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MiningSummary {
    /// Plan file.
    pub plan_file: String,
    /// Plan name.
    pub plan: String,
    /// Payout address name.
    pub to: String,
    /// Days paid.
    pub days: usize,
    /// First day.
    pub from: String,
    /// Last day.
    pub until: String,
    /// Sats paid by the pool in all.
    pub mined_sats: u64,
    /// Sats sold to cover costs.
    pub sold_sats: u64,
}

fn say(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("demo: {msg}");
    }
}

/// `tesoro demo`
pub async fn run(a: DemoArgs, _g: &Globals) -> anyhow::Result<()> {
    let quiet = a.json || !std::io::stderr().is_terminal();
    let bind: std::net::SocketAddr = a.bind.parse().with_context(|| {
        format!(
            "--bind {:?}: give an address and port such as 127.0.0.1:8080",
            a.bind
        )
    })?;
    let dir = absolute(&a.dir)?;
    let mut inputs = Inputs::new(a.scenarios.clone());
    let spec = scenario::load(&mut inputs)?;
    let fingerprint = inputs.fingerprint();
    let existing = read_marker(&dir);
    let summary = match existing {
        Some(s) if s.fingerprint == fingerprint && !a.fresh => {
            say(quiet, &format!("reusing the demo in {}", dir.display()));
            Summary { reused: true, ..s }
        }
        _ => {
            if dir.exists() && existing.is_none() && !is_empty_dir(&dir) {
                bail!(
                    "{} exists and is not a tesoro demo folder (it has no {MARKER}): choose another --dir; nothing was changed",
                    dir.display()
                );
            }
            build(&spec, &dir, fingerprint, quiet).await?
        }
    };
    if a.no_serve {
        return print(&summary, None, a.json);
    }
    // Bind before printing, so the URL printed is one that answers.
    let listener = tesoro_server::bind(bind).await?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    print(&summary, Some(addr), a.json)?;
    let url = format!("sqlite://{}", summary.database);
    tesoro_server::serve_bound(listener, tesoro_server::ServerConfig::new(url, bind)).await?;
    Ok(())
}

fn read_marker(dir: &Path) -> Option<Summary> {
    let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
    serde_json::from_str(&text).ok()
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// `DIR` with a suffix, beside it.
fn sibling(dir: &Path, suffix: &str) -> anyhow::Result<PathBuf> {
    let name = dir
        .file_name()
        .with_context(|| format!("--dir {}: give a folder name", dir.display()))?;
    Ok(dir.with_file_name(format!("{}{suffix}", name.to_string_lossy())))
}

/// Builds the demo in `DIR.partial` and swaps it into place.
async fn build(
    spec: &DemoSpec,
    dir: &Path,
    fingerprint: String,
    quiet: bool,
) -> anyhow::Result<Summary> {
    let partial = sibling(dir, ".partial")?;
    if partial.exists() {
        // Left by an interrupted run: never used as it is.
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove the leftover {}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let started = Instant::now();
    let result = prepare(spec, &partial, dir, quiet).await;
    let mut summary = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e.context(format!(
                "preparing the demo failed; {} was left as it was",
                dir.display()
            )));
        }
    };
    summary.fingerprint = fingerprint;
    summary.prepare_seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    // Owner-only: it holds the demo users' passwords.
    let marker = partial.join(MARKER);
    crate::config::write_private_new(&marker, serde_json::to_string_pretty(&summary)?.as_bytes())
        .with_context(|| format!("cannot write {}", marker.display()))?;
    // Swap: the old folder goes aside, the new one takes its name, the old one is removed.
    if dir.exists() {
        let old = sibling(dir, ".old")?;
        if old.exists() {
            std::fs::remove_dir_all(&old)
                .with_context(|| format!("cannot remove {}", old.display()))?;
        }
        std::fs::rename(dir, &old)
            .with_context(|| format!("cannot move {} aside", dir.display()))?;
        std::fs::rename(&partial, dir)
            .with_context(|| format!("cannot rename {} to {}", partial.display(), dir.display()))?;
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove {}", old.display()))?;
    } else {
        std::fs::rename(&partial, dir)
            .with_context(|| format!("cannot rename {} to {}", partial.display(), dir.display()))?;
    }
    Ok(summary)
}

/// Every step, in `work` (which becomes `dir`). Paths in the summary are the final ones.
async fn prepare(spec: &DemoSpec, work: &Path, dir: &Path, quiet: bool) -> anyhow::Result<Summary> {
    let t = Instant::now();
    let lap = |what: &str| {
        say(
            quiet,
            &format!("{what} ({:.1} s)", t.elapsed().as_secs_f64()),
        )
    };

    // 1. The chain, in Bitcoin Core's blocks-dir format.
    let chain_dir = work.join("chain");
    let scenario = spec.scenario.clone();
    let cd = chain_dir.clone();
    let generated = tokio::task::spawn_blocking(move || tesoro_testchain::generate(&scenario, &cd))
        .await
        .context("the chain generator stopped")?
        .map_err(|e| anyhow::anyhow!("generating the demo chain from the scenario files: {e}"))?;
    lap(&format!(
        "chain generated: {} blocks to height {}",
        generated.expected.blocks_written, generated.expected.tip_height
    ));

    // 2. A fresh SQLite database and its config.
    let network: ChainNetwork = "regtest".parse()?;
    let url = format!("sqlite://{}", work.join("tesoro.db").display());
    let (store, _) = Store::init(&url, network).await?;
    let config_path = work.join("tesoro.toml");
    Config {
        network: "regtest".into(),
        database: DatabaseConfig {
            url: "sqlite://tesoro.db".into(),
        },
    }
    .save_new(&config_path)?;

    // 3. States, agencies and their watch-only wallets (public descriptors and addresses the
    // generator printed; the keys stay in the generator).
    register(&store, spec, &generated.expected).await?;

    // 4. Sync with the code `tesoro sync` runs.
    let mut source = open_source(
        &SourceSpec::CoreDir(generated.blocks_dir.clone()),
        network.0,
    )?;
    let synced = sync_once(&store, &mut source, None).await?;
    lap(&format!(
        "synced {} blocks, {} outputs and {} spends of the reserves",
        synced.blocks_scanned, synced.outputs_found, synced.spends_found
    ));

    // 5. Prices, FX, counterparty rules, records.
    let price_name = "data/market/btc-daily.csv (Coin Metrics, built in)";
    let prices = parse_coinmetrics(price_name, tesoro_plan::history::EMBEDDED_CSV)?;
    store.import_prices(&prices, "coinmetrics").await?;
    let fx = daily_fx(&parse_fx(FX_USD_PKR.0, FX_USD_PKR.1, None, "USD")?);
    store
        .import_fx(
            &fx,
            "data/fx/usd-pkr.csv (approximate month-end rates carried forward daily)",
        )
        .await?;
    let rules = counterparty_rules(spec, &generated.expected)?;
    std::fs::write(work.join("counterparties.toml"), &rules)
        .context("cannot write counterparties.toml")?;
    Rules::parse("counterparties.toml", &rules)?;
    store.set_ledger_rules(&rules).await?;
    for st in &spec.states {
        for (name, text) in &st.records {
            let records = tesoro_core::records::parse_records(name, text, RecordKind::Purchase)?;
            store.import_records(&records, name).await?;
        }
    }
    let policies = policies_text(spec)?;
    std::fs::write(work.join("policies.toml"), &policies).context("cannot write policies.toml")?;
    lap("prices, FX, records, counterparty rules and policies loaded");

    // 6. Holdings for the summary, from the chain index.
    let tip = resolve_at(&store, None).await?;
    let at_day = resolve_at(&store, Some(&spec.statement_date)).await?;
    let usd = |date: &str| -> Option<Decimal> {
        let d = parse_date(date).ok()?;
        prices
            .iter()
            .find(|p| p.date == d && p.currency == "USD")
            .map(|p| p.price)
    };
    let local = |date: &str, cur: &str| -> Option<Decimal> {
        if cur == "USD" {
            return Some(Decimal::ONE);
        }
        let d = parse_date(date).ok()?;
        fx.iter()
            .find(|p| p.date == d && p.quote == cur && p.base == "USD")
            .map(|p| p.rate)
    };
    let mut states = Vec::new();
    for st in &spec.states {
        let at_statement_date = holdings(&store, st, at_day.height, &usd, &local).await?;
        let at_tip = holdings(&store, st, tip.height, &usd, &local).await?;
        let addresses_at_tip = addresses(&store, st, None).await?;
        states.push(StateSummary {
            code: st.state.code.clone(),
            name: st.state.name.clone(),
            currency: st.state.currency.clone(),
            at_statement_date,
            at_tip,
            addresses_at_tip,
            statement: serde_json::Value::Null,
            accumulation: None,
            policy_violations: BTreeMap::new(),
            mining: st.mining.as_ref().map(|m| MiningSummary {
                plan_file: m.plan_file.clone(),
                plan: m.plan.clone(),
                to: m.to.clone(),
                days: m.days.len(),
                from: m.from.clone(),
                until: m.until.clone(),
                mined_sats: m.days.iter().map(|d| d.1).sum(),
                sold_sats: m.days.iter().map(|d| d.2).sum(),
            }),
        });
    }
    // What the state publishes is its `reserve` list; its other wallets are counted in
    // statements and on the public page but not listed (private tier), so the page can show
    // the published reserve fund apart from everything the state holds.
    for st in &spec.states {
        for o in st
            .owners
            .iter()
            .filter(|o| !st.state.reserve.contains(&o.name))
        {
            let w = store.wallet(&format!("{}/{}", o.entity, o.name)).await?;
            store
                .set_wallet_tier(w.id, tesoro_store::WalletTier::Private)
                .await?;
        }
    }
    let users = demo_users(&store).await?;
    store.close().await;

    // 7. What the office's commands make of it: a signing key, signed statements, the
    // accumulation test, the policy check (the CLI's own code paths, run as the CLI).
    let cli = Cli::new(&config_path, work)?;
    cli.run(&["key", "generate", "--out", "office.key", "--json"], false)?;
    for s in &mut states {
        let mut args: Vec<String> = vec![
            "statement".into(),
            "create".into(),
            "--at".into(),
            spec.statement_date.clone(),
            "--entity".into(),
            s.code.clone(),
            "--key".into(),
            "office.key".into(),
            "-o".into(),
            format!("statement-{}-{}.json", s.code, spec.statement_date),
            "--price-source".into(),
            "Coin Metrics PriceUSD (data/market/btc-daily.csv); local currency via data/fx (approximate)".into(),
            "--json".into(),
        ];
        if let Some(p) = usd(&spec.statement_date) {
            args.push("--price".into());
            args.push(format!("USD={p}"));
            if s.currency != "USD" {
                if let Some(r) = local(&spec.statement_date, &s.currency) {
                    args.push("--price".into());
                    args.push(format!("{}={}", s.currency, (p * r).round_dp(2)));
                }
            }
        }
        let mut statement = cli.run_strings(&args, false)?;
        if let Some(f) = statement.get_mut("file") {
            *f = serde_json::Value::String(
                dir.join(f.as_str().unwrap_or_default())
                    .display()
                    .to_string(),
            );
        }
        s.statement = statement;
    }
    lap("office key generated, statements signed");
    for (s, st) in states.iter_mut().zip(&spec.states) {
        if let Some(p) = &st.programme {
            let mut acc = cli.run(
                &[
                    "report",
                    "accumulation",
                    "--entity",
                    &s.code,
                    "--from",
                    &p.from,
                    "--to",
                    &p.to,
                    "--json",
                ],
                false,
            )?;
            if let Some(o) = acc.as_object_mut() {
                o.insert("programme".into(), serde_json::to_value(p)?);
            }
            s.accumulation = Some(acc);
        }
        for (label, at) in [
            (spec.statement_date.clone(), spec.statement_date.clone()),
            ("tip".to_string(), tip.height.to_string()),
        ] {
            let out = cli.run(
                &[
                    "check",
                    "--rules",
                    "policies.toml",
                    "--entity",
                    &s.code,
                    "--at",
                    &at,
                    "--json",
                ],
                true,
            )?;
            let n = out
                .get("violations")
                .and_then(|v| v.as_array())
                .map_or(0, Vec::len);
            s.policy_violations.insert(label, n);
        }
    }
    lap("accumulation tests and policy checks run");

    let d = |p: &str| dir.join(p).display().to_string();
    Ok(Summary {
        fingerprint: String::new(),
        dir: dir.display().to_string(),
        config: d("tesoro.toml"),
        database: d("tesoro.db"),
        blocks_dir: d("chain/blocks"),
        public_key_file: d("office.key.pub"),
        prepare_seconds: 0.0,
        reused: false,
        tip_height: tip.height,
        tip_hash: tip.hash.to_string(),
        tip_date: day_of(tip.time),
        statement_date: spec.statement_date.clone(),
        states,
        users,
    })
}

/// The four roles, each with a password made now; the viewer's grant is scoped to one
/// state to show scoping.
async fn demo_users(store: &Store) -> anyhow::Result<Vec<DemoUser>> {
    use rand::RngCore;
    use tesoro_server::Role;
    let mut out = Vec::new();
    for (username, role, scope) in [
        ("admin", Role::Admin, None),
        ("accountant", Role::Accountant, None),
        ("auditor", Role::Auditor, None),
        ("viewer", Role::Viewer, Some("SV")),
    ] {
        let mut bytes = [0u8; 9];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let password = format!(
            "demo-{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let scope_code = scope.map(EntityCode::parse).transpose()?;
        tesoro_server::create_user(store, username, &password, role, scope_code)
            .await
            .with_context(|| format!("creating the demo user {username}"))?;
        out.push(DemoUser {
            username: username.into(),
            role: role.as_str().into(),
            scope: scope.map(str::to_string),
            password,
        });
    }
    Ok(out)
}

fn day_of(time: u32) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::from(time))
        .map(|t| fmt_date(t.date()))
        .unwrap_or_default()
}

/// Registers the states, their agencies and their wallets.
async fn register(
    store: &Store,
    spec: &DemoSpec,
    expected: &tesoro_testchain::Expected,
) -> anyhow::Result<()> {
    let network = store.network();
    for st in &spec.states {
        let code = |c: &str| {
            EntityCode::parse(c).with_context(|| format!("{}: entity code {c:?}", st.file))
        };
        store
            .add_entity(&NewEntity {
                code: code(&st.state.code)?,
                name: st.state.name.clone(),
                parent: None,
            })
            .await?;
        for e in &st.entities {
            store
                .add_entity(&NewEntity {
                    code: code(&e.code)?,
                    name: e.name.clone(),
                    parent: Some(code(&e.parent)?),
                })
                .await
                .with_context(|| format!("{}: entity {}", st.file, e.code))?;
        }
        for o in &st.owners {
            let kind = if o.bare {
                let a = expected
                    .addresses
                    .iter()
                    .find(|a| a.name == o.name)
                    .with_context(|| format!("the generator made no address {:?}", o.name))?;
                NewWalletKind::Addresses(parse_address_list(
                    [(
                        format!("{} address {}", st.file, o.name),
                        a.address.as_str(),
                    )],
                    network,
                )?)
            } else {
                let w = expected
                    .wallets
                    .iter()
                    .find(|w| w.name == o.name)
                    .with_context(|| format!("the generator made no wallet {:?}", o.name))?;
                let pair = DescriptorPair::parse(&w.external, Some(&w.internal), network)?;
                NewWalletKind::Descriptor {
                    external: pair.external.to_string(),
                    internal: pair.internal.as_ref().map(|d| d.to_string()),
                    gap_limit: w.gap_limit,
                    birth_height: None,
                }
            };
            store
                .add_wallet(&NewWallet {
                    entity: code(&o.entity)?,
                    name: o.name.clone(),
                    kind,
                })
                .await
                .with_context(|| format!("{}: wallet {}", st.file, o.name))?;
        }
    }
    Ok(())
}

/// Counterparty rules: each party's generated address with the kinds its state file gives.
fn counterparty_rules(
    spec: &DemoSpec,
    expected: &tesoro_testchain::Expected,
) -> anyhow::Result<String> {
    let mut file = RulesFile {
        counterparty: Vec::new(),
    };
    for st in &spec.states {
        for p in &st.parties {
            let a = expected
                .parties
                .iter()
                .find(|x| x.name == p.name)
                .with_context(|| format!("the generator made no party {:?}", p.name))?;
            file.counterparty.push(CounterpartyRule {
                name: p.counterparty.clone(),
                addresses: vec![a.address.clone()],
                incoming: p.incoming.clone(),
                outgoing: p.outgoing.clone(),
            });
        }
    }
    Ok(format!(
        "# Counterparty rules of the demo, written by `tesoro demo` from the scenario files:\n\
         # each outside party's regtest address and how value from/to it is classified.\n{}",
        toml::to_string_pretty(&file)?
    ))
}

/// The states' `[[rule]]` tables as one policy file, checked by the policy parser.
fn policies_text(spec: &DemoSpec) -> anyhow::Result<String> {
    let mut rules = Vec::new();
    for st in &spec.states {
        rules.extend(st.rules.iter().cloned().map(toml::Value::Table));
    }
    let mut t = toml::Table::new();
    t.insert("rule".into(), toml::Value::Array(rules));
    let text = format!(
        "# Policies of the demo states, written by `tesoro demo` from the scenario files.\n\
         # Check them with: tesoro --config tesoro.toml check --rules policies.toml [--at DATE]\n{}",
        toml::to_string_pretty(&t)?
    );
    tesoro_core::policy::parse_rules("policies.toml", &text)?;
    Ok(text)
}

/// Month-end rates carried forward to every day until the next row.
fn daily_fx(points: &[FxPoint]) -> Vec<FxPoint> {
    let mut sorted: Vec<&FxPoint> = points.iter().collect();
    sorted.sort_by_key(|p| (p.base.clone(), p.quote.clone(), p.date));
    let mut out = Vec::new();
    for (i, p) in sorted.iter().enumerate() {
        let next = sorted
            .get(i + 1)
            .filter(|n| n.base == p.base && n.quote == p.quote)
            .map(|n| n.date);
        let mut d = p.date;
        loop {
            out.push(FxPoint {
                date: d,
                base: p.base.clone(),
                quote: p.quote.clone(),
                rate: p.rate,
            });
            match (d.next_day(), next) {
                (Some(n), Some(stop)) if n < stop => d = n,
                _ => break,
            }
        }
    }
    out
}

fn value(sats: u64, price: Decimal) -> Decimal {
    (Decimal::from(sats) * price / Decimal::from(100_000_000u64)).round_dp(2)
}

/// A state's holdings at `height`: total, published reserve, per entity, valued.
async fn holdings(
    store: &Store,
    st: &StateSpec,
    height: u32,
    usd: &dyn Fn(&str) -> Option<Decimal>,
    local: &dyn Fn(&str, &str) -> Option<Decimal>,
) -> anyhow::Result<Holdings> {
    let root = EntityCode::parse(&st.state.code)?;
    let wallets = store.wallets(Some(&root)).await?;
    let by_id: HashMap<i64, &tesoro_store::WalletRow> = wallets.iter().map(|w| (w.id, w)).collect();
    let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
    let utxos = store.utxos_at(Some(height), Some(&ids)).await?;
    let mut own: BTreeMap<String, u64> = BTreeMap::new();
    let (mut total, mut reserve) = (0u64, 0u64);
    for u in &utxos {
        let Some(w) = by_id.get(&u.wallet_id) else {
            continue;
        };
        let s = u.value.to_sat();
        total += s;
        if st.state.reserve.contains(&w.name) {
            reserve += s;
        }
        *own.entry(w.entity.to_string()).or_default() += s;
    }
    let mut parent_of: BTreeMap<String, Option<String>> = BTreeMap::new();
    parent_of.insert(st.state.code.clone(), None);
    for e in &st.entities {
        parent_of.insert(e.code.clone(), Some(e.parent.clone()));
    }
    let entities = tesoro_core::entity::roll_up(&own, &parent_of);
    let block = store
        .block_at(height)
        .await?
        .with_context(|| format!("block {height} is not in the index"))?;
    let date = day_of(block.time);
    let price = usd(&date);
    let fmt = |v: Option<Decimal>| v.map_or_else(|| "no price".to_string(), |d| d.to_string());
    Ok(Holdings {
        height,
        date: date.clone(),
        total_sats: total,
        reserve_sats: reserve,
        entities,
        price_usd: fmt(price),
        reserve_usd: fmt(price.map(|p| value(reserve, p))),
        total_usd: fmt(price.map(|p| value(total, p))),
        total_local: fmt(price
            .zip(local(&date, &st.state.currency))
            .map(|(p, r)| value(total, p * r))),
    })
}

/// Every address of the state holding coins at `height` (the tip when `None`).
async fn addresses(
    store: &Store,
    st: &StateSpec,
    height: Option<u32>,
) -> anyhow::Result<Vec<AddressBalance>> {
    let root = EntityCode::parse(&st.state.code)?;
    let wallets = store.wallets(Some(&root)).await?;
    let by_id: HashMap<i64, &tesoro_store::WalletRow> = wallets.iter().map(|w| (w.id, w)).collect();
    let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
    let mut by_addr: BTreeMap<String, AddressBalance> = BTreeMap::new();
    for u in store.utxos_at(height, Some(&ids)).await? {
        let Some(w) = by_id.get(&u.wallet_id) else {
            continue;
        };
        let address = script_address(&u.script_pubkey, store.network().0)
            .map_or_else(|| u.script_pubkey.to_hex_string(), |a| a.to_string());
        by_addr
            .entry(address.clone())
            .or_insert_with(|| AddressBalance {
                address,
                wallet: w.name.clone(),
                entity: w.entity.to_string(),
                sats: 0,
            })
            .sats += u.value.to_sat();
    }
    let mut v: Vec<AddressBalance> = by_addr.into_values().collect();
    v.sort_by(|a, b| b.sats.cmp(&a.sats).then(a.address.cmp(&b.address)));
    Ok(v)
}

/// This very binary, run as the CLI on the demo's config: the statement, report and check
/// commands print what they made, so the demo runs them as a user would and reads their JSON.
struct Cli {
    exe: PathBuf,
    config: PathBuf,
    cwd: PathBuf,
}

impl Cli {
    fn new(config: &Path, cwd: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("cannot find the tesoro binary itself")?,
            config: config.to_path_buf(),
            cwd: cwd.to_path_buf(),
        })
    }

    fn run(&self, args: &[&str], may_fail: bool) -> anyhow::Result<serde_json::Value> {
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.run_strings(&owned, may_fail)
    }

    fn run_strings(&self, args: &[String], may_fail: bool) -> anyhow::Result<serde_json::Value> {
        let out = std::process::Command::new(&self.exe)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(&self.cwd)
            .env_remove("TESORO_DB")
            .env_remove("TESORO_CONFIG")
            .output()
            .with_context(|| format!("cannot run tesoro {}", args.join(" ")))?;
        if !out.status.success() && !may_fail {
            bail!(
                "tesoro {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "tesoro {} printed no JSON: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })
    }
}

fn print(s: &Summary, serving: Option<std::net::SocketAddr>, json: bool) -> anyhow::Result<()> {
    if json {
        let mut v = serde_json::to_value(s)?;
        if let (Some(o), Some(addr)) = (v.as_object_mut(), serving) {
            o.insert("url".into(), format!("http://{addr}/").into());
        }
        return output::json(&v);
    }
    println!(
        "tesoro demo in {}{}",
        s.dir,
        if s.reused {
            " (reused: same inputs; --fresh rebuilds)".to_string()
        } else {
            format!(" (prepared in {:.1} s)", s.prepare_seconds)
        }
    );
    println!(
        "regtest chain: {} blocks to {} ({}), Bitcoin Core blocks folder {}",
        s.tip_height, s.tip_date, s.tip_hash, s.blocks_dir
    );
    let mut rows = Vec::new();
    for st in &s.states {
        for (label, h) in [
            (s.statement_date.as_str(), &st.at_statement_date),
            ("tip", &st.at_tip),
        ] {
            rows.push(vec![
                st.code.clone(),
                format!("{label} ({})", h.date),
                btc(h.reserve_sats),
                h.reserve_usd.clone(),
                btc(h.total_sats),
                h.total_usd.clone(),
                format!("{} {}", h.total_local, st.currency),
            ]);
        }
    }
    println!(
        "{}",
        output::table(
            &[
                "state",
                "at",
                "reserve BTC",
                "reserve USD",
                "all agencies BTC",
                "USD",
                "local",
            ],
            rows,
            &[2, 3, 4, 5, 6],
        )
    );
    println!("(reserve = the published reserve addresses; prices: Coin Metrics; PKR via an approximate FX series)");
    for st in &s.states {
        if let Some(f) = st.statement.get("file").and_then(|f| f.as_str()) {
            println!(
                "{}: signed statement {} (sha256 {})",
                st.code,
                f,
                st.statement
                    .get("sha256")
                    .and_then(|x| x.as_str())
                    .unwrap_or("?")
            );
        }
        if let Some(acc) = &st.accumulation {
            // The report is flat, or nests the chain part under "chain" when it also
            // counts custodial records.
            let field = |k: &str| {
                acc.pointer(&format!("/chain/{k}"))
                    .or_else(|| acc.get(k))
                    .cloned()
            };
            let holds = field("no_net_accumulation").and_then(|v| v.as_bool());
            let net = field("net_accumulation_sats")
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            println!(
                "{}: {} {} .. {}: no net accumulation {} (net {} sat, internal transfers excluded)",
                st.code,
                acc.pointer("/programme/name")
                    .and_then(|v| v.as_str())
                    .unwrap_or("programme"),
                acc.pointer("/programme/from")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?"),
                acc.pointer("/programme/to")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?"),
                match holds {
                    Some(true) => "HOLDS",
                    Some(false) => "DOES NOT HOLD",
                    None => "?",
                },
                net
            );
        }
        let v: Vec<String> = st
            .policy_violations
            .iter()
            .map(|(k, n)| format!("{n} at {k}"))
            .collect();
        println!("{}: policy violations: {}", st.code, v.join(", "));
        if let Some(m) = &st.mining {
            println!(
                "{}: {} days of mining payouts from {} ({} .. {}): {} BTC paid, {} BTC sold to cover power",
                st.code,
                m.days,
                m.plan_file,
                m.from,
                m.until,
                btc(m.mined_sats),
                btc(m.sold_sats)
            );
        }
    }
    println!(
        "try: tesoro --config {} balance --entity SV --at {} --by address",
        s.config, s.statement_date
    );
    println!(
        "     tesoro --config {} report accumulation --entity SV --from 2025-02-26 --to {}",
        s.config, s.tip_date
    );
    let rows = s
        .users
        .iter()
        .map(|u| {
            vec![
                u.username.clone(),
                u.password.clone(),
                u.role.clone(),
                u.scope.clone().unwrap_or_else(|| "every state".into()),
            ]
        })
        .collect();
    println!(
        "demo logins (also in {}/{MARKER}):\n{}",
        s.dir,
        output::table(&["login", "password", "role", "sees"], rows, &[])
    );
    match serving {
        Some(addr) => println!("portal: http://{addr}/   (Ctrl-C stops it)"),
        None => println!(
            "serve it later: tesoro --config {} serve   (or run tesoro demo again)",
            s.config
        ),
    }
    Ok(())
}
