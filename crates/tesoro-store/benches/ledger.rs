//! Ledger benchmark: 1,000,000 movements on SQLite and on PostgreSQL. Prints figures (not a
//! timed test). Run:
//!
//! ```sh
//! TESORO_TEST_PG=postgres://USER:PW@127.0.0.1:5432/postgres \
//!   cargo bench -p tesoro-store --bench ledger -- [MOVEMENTS] [--keep DIR] [--only sqlite|postgres]
//! ```
//!
//! Steps: write the chain index of ~714k transactions (one per block) and derive the 1M
//! movements from it (import, as `tesoro sync` + the first report do); classify against
//! 14,285 off-chain records; post the lot sub-ledger (every method, both fee rules, one
//! pass); then each report: every cost-basis method over the whole history through
//! `tesoro_store::reports::pnl` (real Coin Metrics prices, 2020–2025), FIFO also by
//! streaming the history (the path the sub-ledger replaces); holdings at a date and at a
//! height valued in USD; `report accumulation` over 2024.
//!
//! Each report is timed twice: in this process, and in a fresh child process (this binary
//! with `--report KIND --url URL`) that only opens the store and runs that report, whose
//! peak RSS (VmHWM) is the report's memory.
//!
//! `--keep DIR` keeps the SQLite file in DIR and the PostgreSQL database
//! `tesoro_bench_ledger_keep` between runs: a later run with the same `--keep` skips the
//! import (the PostgreSQL one takes ~12 minutes) and only re-posts and re-measures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, Network, OutPoint, ScriptBuf, Transaction, TxIn, TxOut, Txid};
use rust_decimal::Decimal;
use tesoro_core::chain::{
    BlockDelta, BlockMeta, ScriptOwner, TxRecord, WatchedOutput, WatchedSpend,
};
use tesoro_core::classify::{MatchTolerance, Record, RecordKind};
use tesoro_core::lots::{FeeRule, Method};
use tesoro_core::movement::{derive_movements, ChainTx, Movement, OwnedOutput, OwnedSpend};
use tesoro_core::price::parse_coinmetrics;
use tesoro_core::{ChainNetwork, EntityCode, WatchedAddress};
use tesoro_store::reports::{self, At, ReportOptions};
use tesoro_store::{NewEntity, NewWallet, NewWalletKind, Store};

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// A deterministic history of `n` movements for entities 2, 3, 4 (root 1) over 2020–2025:
/// acquisitions, disposals, internal transfers (two movements each), as raw transactions.
fn history(n: usize) -> Vec<ChainTx> {
    let start = 1_577_836_800u32; // 2020-01-01
    let span = 2_190u32 * 86_400;
    let mut out = Vec::with_capacity(n);
    let mut bal = [0u64; 3];
    let mut utxo: [Vec<(OutPoint, u64)>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut count = 0usize;
    let mut i = 0u32;
    let ext = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([9; 20]));
    while count < n {
        i += 1;
        let time = start + (u64::from(i) * u64::from(span) / (n as u64 * 2 / 3 + 1)) as u32;
        let r = next();
        let e = (r % 3) as usize;
        let kind = (r >> 8) % 10;
        let mut ins: Vec<(OutPoint, u64, usize)> = Vec::new();
        let mut outs: Vec<(u64, ScriptBuf, Option<usize>)> = Vec::new();
        if kind < 4 || utxo[e].is_empty() {
            let v = 1_000_000 + (r >> 16) % 100_000_000;
            ins.push((
                OutPoint {
                    txid: Txid::from_byte_array([(r & 0xff) as u8; 32]),
                    vout: i,
                },
                v + 1000,
                usize::MAX,
            ));
            outs.push((v, ours(e), Some(e)));
        } else {
            let Some((op, v)) = utxo[e].pop() else {
                continue;
            };
            ins.push((op, v, e));
            let fee = 500u64.min(v / 2);
            let rest = v - fee;
            if kind < 6 {
                let pay = rest / 3;
                outs.push((pay, ext.clone(), None));
                outs.push((rest - pay, ours(e), Some(e)));
            } else {
                let to = (e + 1 + (r >> 20) as usize % 2) % 3;
                outs.push((rest, ours(to), Some(to)));
            }
        }
        let tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: ins
                .iter()
                .map(|(op, _, _)| TxIn {
                    previous_output: *op,
                    ..Default::default()
                })
                .collect(),
            output: outs
                .iter()
                .map(|(v, s, _)| TxOut {
                    value: Amount::from_sat(*v),
                    script_pubkey: s.clone(),
                })
                .collect(),
        };
        let txid = tx.compute_txid();
        let mut created = Vec::new();
        let mut entities = BTreeSet::new();
        for (vout, (v, _, o)) in outs.iter().enumerate() {
            if let Some(o) = o {
                created.push(OwnedOutput {
                    vout: vout as u32,
                    value: *v,
                    wallet: *o as i64 + 1,
                    entity: *o as i64 + 2,
                });
                utxo[*o].push((
                    OutPoint {
                        txid,
                        vout: vout as u32,
                    },
                    *v,
                ));
                bal[*o] += v;
                entities.insert(*o);
            }
        }
        let spent: Vec<OwnedSpend> = ins
            .iter()
            .filter(|(_, _, e)| *e != usize::MAX)
            .map(|(op, v, e)| {
                bal[*e] -= v;
                entities.insert(*e);
                OwnedSpend {
                    outpoint: *op,
                    value: *v,
                    wallet: *e as i64 + 1,
                    entity: *e as i64 + 2,
                }
            })
            .collect();
        count += entities.len();
        out.push(ChainTx {
            tx,
            txid,
            height: i,
            tx_index: 1,
            time,
            created,
            spent,
        });
    }
    out
}

async fn store_for(url: &str) -> Store {
    let (s, _) = Store::init(url, ChainNetwork(Network::Regtest))
        .await
        .expect("init");
    s.add_entity(&NewEntity {
        code: EntityCode::parse("ST").expect("code"),
        name: "State".into(),
        parent: None,
    })
    .await
    .expect("entity");
    for (i, c) in ["A", "B", "C"].into_iter().enumerate() {
        s.add_entity(&NewEntity {
            code: EntityCode::parse(c).expect("code"),
            name: c.into(),
            parent: Some(EntityCode::parse("ST").expect("code")),
        })
        .await
        .expect("entity");
        let script = ours(i);
        let address = bitcoin::Address::from_script(&script, Network::Regtest)
            .expect("address")
            .to_string();
        s.add_wallet(&NewWallet {
            entity: EntityCode::parse(c).expect("code"),
            name: format!("w{c}"),
            kind: NewWalletKind::Addresses(vec![WatchedAddress {
                address,
                script_pubkey: script,
            }]),
        })
        .await
        .expect("wallet");
    }
    s
}

fn ours(e: usize) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([e as u8; 20]))
}

/// The chain index rows of the history: one block per transaction, the watched outputs it
/// creates and spends (wallet ids 1..=3 belong to entities 2..=4).
fn deltas(txs: &[ChainTx]) -> Vec<BlockDelta> {
    let mut prev = BlockHash::all_zeros();
    txs.iter()
        .zip(1u32..)
        .map(|(t, height)| {
            let mut h = [0u8; 32];
            h[..4].copy_from_slice(&height.to_le_bytes());
            h[31] = 1;
            let hash = BlockHash::from_byte_array(h);
            let meta = BlockMeta {
                height,
                hash,
                prev_hash: prev,
                time: t.time,
            };
            prev = hash;
            BlockDelta {
                meta,
                created: t
                    .created
                    .iter()
                    .map(|o| WatchedOutput {
                        outpoint: OutPoint {
                            txid: t.txid,
                            vout: o.vout,
                        },
                        value: Amount::from_sat(o.value),
                        script_pubkey: ours((o.entity - 2) as usize),
                        owner: ScriptOwner::bare(o.wallet as u64),
                        coinbase: false,
                        tx_index: t.tx_index,
                    })
                    .collect(),
                spent: t
                    .spent
                    .iter()
                    .enumerate()
                    .map(|(vin, sp)| WatchedSpend {
                        outpoint: sp.outpoint,
                        txid: t.txid,
                        vin: vin as u32,
                        tx_index: t.tx_index,
                        value: Amount::from_sat(sp.value),
                        owner: ScriptOwner::bare(sp.wallet as u64),
                    })
                    .collect(),
                txs: vec![TxRecord {
                    txid: t.txid,
                    tx_index: t.tx_index,
                    raw: bitcoin::consensus::serialize(&t.tx),
                }],
            }
        })
        .collect()
}

fn secs(t: Instant) -> String {
    format!("{:.3} s", t.elapsed().as_secs_f64())
}

/// Resets the peak-RSS counter (VmHWM), so each phase's peak can be read apart.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The reports the bench measures, by name (also the child's `--report` argument).
const REPORTS: [&str; 8] = [
    "pnl-fifo",
    "pnl-lifo",
    "pnl-hifo",
    "pnl-average",
    "pnl-specific",
    "holdings-date",
    "holdings-height",
    "accumulation",
];

fn opts() -> ReportOptions {
    ReportOptions {
        tolerance: MatchTolerance::default(),
        allow_last_known: true, // the history's last days pass the price file's end
    }
}

/// Runs one report; returns a line of what it found.
async fn run_report(store: &Store, kind: &str) -> String {
    let opts = opts();
    let end = reports::tip_date(store).await.expect("tip");
    if let Some(m) = kind.strip_prefix("pnl-") {
        let method: Method = m.parse().expect("method");
        let p = reports::pnl(
            store,
            None,
            None,
            Some(end),
            method,
            FeeRule::Realize,
            "USD",
            opts,
        )
        .await
        .expect("pnl");
        return format!(
            "realized {}, held {} sats, cost {}, uncovered {}",
            p.realized.round_dp(2),
            p.holding_sats,
            p.holding_cost.round_dp(2),
            p.uncovered_sats
        );
    }
    match kind {
        "holdings-date" => {
            let at = tesoro_core::price::parse_date("2024-06-30").expect("date");
            let h = reports::holdings_at(store, Some(At::Date(at)), None, &["USD".into()], opts)
                .await
                .expect("holdings");
            format!(
                "{} sats, {} USD",
                h.chain_sats,
                h.rows
                    .iter()
                    .filter_map(|r| r.values.get("USD"))
                    .sum::<Decimal>()
            )
        }
        "holdings-height" => {
            // Height 400,000 in the million-movement history; half way in a smaller one.
            let tip = store
                .chain_tip()
                .await
                .expect("tip")
                .map_or(0, |t| t.height);
            let height = if tip > 400_000 { 400_000 } else { tip / 2 };
            let h =
                reports::holdings_at(store, Some(At::Height(height)), None, &["USD".into()], opts)
                    .await
                    .expect("holdings");
            format!("{} sats", h.chain_sats)
        }
        "accumulation" => {
            let from = tesoro_core::price::parse_date("2024-01-01").expect("date");
            let to = tesoro_core::price::parse_date("2024-12-31").expect("date");
            let a = reports::accumulation(store, None, Some(from), Some(to), opts)
                .await
                .expect("accumulation");
            format!(
                "acquired {} sats, reconciles {}",
                a.chain.acquired_sats, a.chain.reconciles
            )
        }
        other => panic!("unknown report {other}"),
    }
}

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}

/// The child: open the store, run one report, print `seconds peak-MB summary`.
async fn child(kind: &str, url: &str) {
    let store = Store::open(url).await.expect("open");
    let t = Instant::now();
    let line = run_report(&store, kind).await;
    println!(
        "{:.3} {} {}",
        t.elapsed().as_secs_f64(),
        peak_rss_mb(),
        line
    );
    store.close().await;
}

/// Runs `kind` in a fresh process; returns (seconds, peak MB, summary).
fn in_child(kind: &str, url: &str) -> (String, String, String) {
    let exe = std::env::current_exe().expect("own path");
    let out = std::process::Command::new(exe)
        .args(["--report", kind, "--url", url])
        .output()
        .expect("child");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text.lines().last().unwrap_or("").to_string();
    let mut f = line.splitn(3, ' ');
    (
        f.next().unwrap_or("?").to_string(),
        f.next().unwrap_or("?").to_string(),
        f.next().unwrap_or("child failed").to_string()
            + if out.status.success() {
                ""
            } else {
                " (child failed)"
            },
    )
}

struct Generated {
    blocks: Vec<BlockDelta>,
    records: Vec<Record>,
    n_movements: usize,
}

fn generate(n: usize) -> Generated {
    let t = Instant::now();
    let txs = history(n);
    println!("generate {} raw transactions: {}", txs.len(), secs(t));
    let root_of: BTreeMap<i64, i64> = [(1, 1), (2, 1), (3, 1), (4, 1)].into_iter().collect();
    let t = Instant::now();
    let movements: Vec<Movement> = derive_movements(&txs, &root_of, Network::Regtest);
    println!(
        "derive {} movements (pure, in memory): {}",
        movements.len(),
        secs(t)
    );
    // Off-chain records: purchases that match acquisitions by amount and date.
    let records: Vec<Record> = movements
        .iter()
        .filter(|m| m.acquired > 0)
        .step_by(20)
        .take(20_000)
        .map(|m| Record {
            id: 0,
            kind: RecordKind::Purchase,
            entity: None,
            date: m.date(),
            sats: m.acquired,
            fiat: Some(Decimal::from(m.acquired / 1000)),
            currency: Some("USD".into()),
            counterparty: None,
            reference: None,
            txid: None,
        })
        .collect();
    let n_movements = movements.len();
    drop(movements);
    let blocks = deltas(&txs);
    Generated {
        blocks,
        records,
        n_movements,
    }
}

#[tokio::main]
async fn main() {
    if let (Some(kind), Some(url)) = (arg("--report"), arg("--url")) {
        child(&kind, &url).await;
        return;
    }
    let n: usize = std::env::args()
        .skip(1)
        .take_while(|a| !a.starts_with("--"))
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let keep: Option<PathBuf> = arg("--keep").map(PathBuf::from);
    let only = arg("--only");
    let prices_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/market/btc-daily.csv"
    );
    let text = std::fs::read_to_string(prices_path).expect("prices file");
    let points = parse_coinmetrics(prices_path, &text).expect("prices");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = match &keep {
        Some(d) => {
            std::fs::create_dir_all(d).expect("keep dir");
            d.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    let mut targets = vec![(
        "sqlite",
        format!(
            "sqlite://{}",
            dir.join(format!("ledger-bench-{n}.db")).display()
        ),
        None,
    )];
    if let Ok(admin) = std::env::var("TESORO_TEST_PG") {
        let base = admin
            .rsplit_once('/')
            .map_or(admin.clone(), |x| x.0.to_string());
        let name = if keep.is_some() {
            format!("tesoro_bench_ledger_keep_{n}")
        } else {
            format!("tesoro_bench_ledger_{}", std::process::id())
        };
        targets.push(("postgres", format!("{base}/{name}"), Some((admin, name))));
    } else {
        println!("TESORO_TEST_PG not set: PostgreSQL skipped");
    }
    targets.retain(|t| only.as_deref().is_none_or(|o| o == t.0));
    let mut generated: Option<Generated> = None;
    let opts = opts();
    println!(
        "load average at start: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    for (name, url, pg) in targets {
        println!("\n== {name} ==");
        // A kept database counts when an earlier run finished its import (marker row).
        let existing = match Store::open(&url).await {
            Ok(s) if keep.is_some() => {
                let done = sqlx::query("SELECT value FROM ledger_state WHERE key = 'bench_import'")
                    .fetch_optional(s.pool())
                    .await
                    .ok()
                    .flatten()
                    .is_some();
                s.close().await;
                done
            }
            Ok(s) => {
                s.close().await;
                false
            }
            Err(_) => false,
        };
        let store = if existing {
            println!("import: reusing the kept database ({url})");
            Store::open(&url).await.expect("open")
        } else {
            if let Some((admin, db)) = &pg {
                sqlx::any::install_default_drivers();
                let pool = sqlx::AnyPool::connect(admin).await.expect("admin");
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db}")))
                    .execute(&pool)
                    .await
                    .expect("drop");
                pool.close().await;
            } else if let Some(p) = url.strip_prefix("sqlite://") {
                let _ = std::fs::remove_file(p);
            }
            let g = generated.get_or_insert_with(|| generate(n));
            let store = store_for(&url).await;
            store.import_prices(&points, "bench").await.expect("prices");
            let t = Instant::now();
            for chunk in g.blocks.chunks(5_000) {
                store.apply_blocks(chunk).await.expect("apply");
            }
            println!(
                "import: write {} blocks of chain index (txs, outputs, spends): {}",
                g.blocks.len(),
                secs(t)
            );
            let t = Instant::now();
            let r = store.ledger_refresh().await.expect("refresh");
            println!(
                "import: derive and write {} movements from the chain index: {}",
                r.movements,
                secs(t)
            );
            assert_eq!(r.movements as usize, g.n_movements);
            store
                .import_records(&g.records, "bench")
                .await
                .expect("records");
            let t = Instant::now();
            let c = store
                .ledger_classify(opts.tolerance)
                .await
                .expect("classify");
            println!(
                "classify against {} records ({} movements not the chain's kind): {}",
                g.records.len(),
                c.classified,
                secs(t)
            );
            println!("peak RSS so far (import + classify): {} MB", peak_rss_mb());
            sqlx::query("INSERT INTO ledger_state (key, value) VALUES ('bench_import', $1)")
                .bind(n.to_string())
                .execute(store.pool())
                .await
                .expect("marker");
            store
        };
        // Post the sub-ledger afresh every run, so its time is always measured.
        sqlx::query("DELETE FROM ledger_state WHERE key = 'posted_with'")
            .execute(store.pool())
            .await
            .expect("unpost");
        reset_peak_rss();
        let t = Instant::now();
        let p = tesoro_store::sub_ledger::post(&store, opts.tolerance)
            .await
            .expect("post");
        println!(
            "post the lot sub-ledger (5 methods x 2 fee rules, currencies {:?}): {} rows, {} (peak RSS {} MB)",
            p.currencies,
            p.rows,
            secs(t),
            peak_rss_mb()
        );
        let end = reports::tip_date(&store).await.expect("tip");
        let t = Instant::now();
        let mut prices = store.price_book().await.expect("prices");
        prices.allow_last_known = opts.allow_last_known;
        let scope = reports::scope(&store, None).await.expect("scope");
        let streamed = reports::pnl_streamed(
            &store,
            &scope.ids,
            time::Date::MIN,
            end,
            Method::Fifo,
            FeeRule::Realize,
            "USD",
            &prices,
        )
        .await
        .expect("streamed");
        println!(
            "pnl fifo by streaming the history (before the sub-ledger): {} (realized {})",
            secs(t),
            streamed.realized.round_dp(2)
        );
        let posted = reports::pnl(
            &store,
            None,
            None,
            Some(end),
            Method::Fifo,
            FeeRule::Realize,
            "USD",
            opts,
        )
        .await
        .expect("pnl");
        assert_eq!(posted, streamed, "sub-ledger and streaming agree");
        println!(
            "{:<16} {:>10} {:>10} {:>8}  result",
            "report", "in-process", "fresh", "peak MB"
        );
        for kind in REPORTS {
            let t = Instant::now();
            let line = run_report(&store, kind).await;
            let warm = secs(t);
            let (fresh, mb, _) = in_child(kind, &url);
            println!("{kind:<16} {warm:>10} {fresh:>8} s {mb:>8}  {line}");
        }
        store.close().await;
    }
    println!("\npeak RSS of this process: {} MB", peak_rss_mb());
}
