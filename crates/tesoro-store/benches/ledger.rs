//! Ledger benchmark: 1,000,000 movements on SQLite and on PostgreSQL. Prints figures (not a
//! timed test). Run:
//!
//! ```sh
//! TESORO_TEST_PG=postgres://USER:PW@127.0.0.1:5432/postgres \
//!   cargo bench -p tesoro-store --bench ledger -- [MOVEMENTS]
//! ```
//!
//! Steps: derive movements from 1M raw transactions (pure, in memory); write them to the store
//! (import); load them back; classify against 20,000 off-chain records; every cost-basis method
//! over the whole history (real Coin Metrics prices, 2020–2025); holdings at a date valued in
//! USD; `report accumulation` over 2024. Peak RSS is printed at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, Network, OutPoint, ScriptBuf, Transaction, TxIn, TxOut, Txid};
use rust_decimal::Decimal;
use tesoro_core::classify::{classify, MatchTolerance, Record, RecordKind, Rules};
use tesoro_core::lots::{FeeRule, Method};
use tesoro_core::movement::{derive_movements, ChainTx, Movement, OwnedOutput, OwnedSpend};
use tesoro_core::price::{parse_coinmetrics, value_of, PriceBook};
use tesoro_core::report::{accumulation, balances_at, pnl};
use tesoro_core::{ChainNetwork, EntityCode};
use tesoro_store::{NewEntity, Store};

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
    let ours =
        |e: usize| ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([e as u8; 20]));
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
    for c in ["A", "B", "C"] {
        s.add_entity(&NewEntity {
            code: EntityCode::parse(c).expect("code"),
            name: c.into(),
            parent: Some(EntityCode::parse("ST").expect("code")),
        })
        .await
        .expect("entity");
    }
    s
}

fn secs(t: Instant) -> String {
    format!("{:.3} s", t.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let prices_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/market/btc-daily.csv"
    );
    let text = std::fs::read_to_string(prices_path).expect("prices file");
    let mut book = PriceBook::default();
    for p in parse_coinmetrics(prices_path, &text).expect("prices") {
        book.add_price(p.date, &p.currency, p.price);
    }
    book.allow_last_known = true; // the history's last days pass the file's end

    let t = Instant::now();
    let txs = history(n);
    println!("generate {} raw transactions: {}", txs.len(), secs(t));
    let root_of: BTreeMap<i64, i64> = [(1, 1), (2, 1), (3, 1), (4, 1)].into_iter().collect();
    let t = Instant::now();
    let movements: Vec<Movement> = derive_movements(&txs, &root_of, Network::Regtest);
    println!(
        "derive {} movements (decode-free, in memory): {}",
        movements.len(),
        secs(t)
    );
    drop(txs);

    // Off-chain records: 20,000 purchases that match acquisitions by amount and date.
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

    let dir = tempfile::tempdir().expect("tempdir");
    let mut targets = vec![(
        "sqlite",
        format!("sqlite://{}", dir.path().join("bench.db").display()),
    )];
    if let Ok(admin) = std::env::var("TESORO_TEST_PG") {
        let base = admin
            .rsplit_once('/')
            .map_or(admin.clone(), |x| x.0.to_string());
        targets.push((
            "postgres",
            format!("{base}/tesoro_bench_ledger_{}", std::process::id()),
        ));
    } else {
        println!("TESORO_TEST_PG not set: PostgreSQL skipped");
    }
    for (name, url) in targets {
        println!("\n== {name} ==");
        let store = store_for(&url).await;
        let t = Instant::now();
        store
            .ledger_insert_movements(&movements)
            .await
            .expect("insert");
        println!(
            "import {} movements into the store: {}",
            movements.len(),
            secs(t)
        );
        let t = Instant::now();
        let loaded = store.ledger_movements().await.expect("load");
        println!(
            "load {} movements from the store: {}",
            loaded.len(),
            secs(t)
        );
        assert_eq!(loaded.len(), movements.len());
        let t = Instant::now();
        let c = classify(
            loaded,
            &Rules::default(),
            &records,
            &[],
            MatchTolerance::default(),
            &|_, _| true,
        );
        let matched = c.movements.iter().filter(|m| m.record.is_some()).count();
        println!(
            "classify against {} records ({} matched, {} unmatched): {}",
            records.len(),
            matched,
            c.unmatched_records.len(),
            secs(t)
        );
        let scope: BTreeSet<i64> = [2, 3, 4].into_iter().collect();
        let end = c
            .movements
            .last()
            .map(|m| m.movement.date())
            .expect("movements");
        for method in Method::ALL {
            let t = Instant::now();
            let p = pnl(
                &c.movements,
                &records,
                &book,
                "USD",
                method,
                FeeRule::Realize,
                &scope,
                time::Date::MIN,
                end,
            )
            .expect("pnl");
            println!(
                "pnl {:<7} whole history: {} (realized {}, held {} sats)",
                method.as_str(),
                secs(t),
                p.realized.round_dp(2),
                p.holding_sats
            );
        }
        let t = Instant::now();
        let at = tesoro_core::price::parse_date("2024-06-30").expect("date");
        let b = balances_at(&c.movements, at);
        let price = book.btc_price(at, "USD").expect("price").value;
        let total: i64 = b.values().sum();
        let value = value_of(total.max(0) as u64, price);
        println!(
            "holdings at 2024-06-30 valued in USD: {} ({} sats, {} USD)",
            secs(t),
            total,
            value.round_dp(2)
        );
        let t = Instant::now();
        let from = tesoro_core::price::parse_date("2024-01-01").expect("date");
        let to = tesoro_core::price::parse_date("2024-12-31").expect("date");
        let a = accumulation(&c.movements, &scope, from, to);
        println!(
            "accumulation over 2024: {} (acquired {} sats, reconciles {})",
            secs(t),
            a.acquired_sats,
            a.reconciles
        );
        store.close().await;
    }
    println!("\npeak RSS: {} MB", peak_rss_mb());
}
