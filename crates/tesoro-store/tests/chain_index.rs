//! The chain index: idempotent apply, exact reorg undo, balances equal to UTXO sums — on a
//! SQLite file and on a real PostgreSQL server.

mod common;

use std::collections::BTreeMap;

use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{Amount, BlockHash, Network, OutPoint, ScriptBuf, Txid};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tesoro_core::chain::{
    BlockDelta, BlockMeta, ScriptOwner, TxRecord, WatchedOutput, WatchedSpend,
};
use tesoro_core::wallet::parse_address;
use tesoro_core::{ChainNetwork, EntityCode};
use tesoro_store::{NewEntity, NewWallet, NewWalletKind, Store, StoreError};

const MAIN: ChainNetwork = ChainNetwork(Network::Bitcoin);
const ADDRS: [&str; 3] = [
    "32ixEdVJWo3kmvJGMTZq5jAQVZZeuwnqzo",
    "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
];

/// A store with one entity and three one-address wallets (ids 1, 2, 3).
async fn registry(url: &str) -> Store {
    let (s, _) = Store::init(url, MAIN).await.unwrap();
    s.add_entity(&NewEntity {
        code: EntityCode::parse("SV").unwrap(),
        name: "El Salvador".into(),
        parent: None,
    })
    .await
    .unwrap();
    for (i, a) in ADDRS.iter().enumerate() {
        s.add_wallet(&NewWallet {
            entity: EntityCode::parse("SV").unwrap(),
            name: format!("w{i}"),
            kind: NewWalletKind::Addresses(vec![parse_address(a, "t", MAIN).unwrap()]),
        })
        .await
        .unwrap();
    }
    s
}

fn script(wallet: u64) -> ScriptBuf {
    parse_address(ADDRS[(wallet - 1) as usize], "t", MAIN)
        .unwrap()
        .script_pubkey
}

/// Builds blocks on top of `chain` with watched outputs and spends of earlier ones.
/// Hashes depend on `salt`, so two branches from one fork point differ.
fn extend(chain: &mut Vec<BlockDelta>, n: usize, salt: u64, rng: &mut ChaCha8Rng) {
    for _ in 0..n {
        let (height, prev) = match chain.last() {
            Some(b) => (b.meta.height + 1, b.meta.hash),
            None => (100, BlockHash::all_zeros()),
        };
        let hash = BlockHash::from_raw_hash(sha256d::Hash::hash(
            &[
                &salt.to_le_bytes()[..],
                &height.to_le_bytes(),
                prev.as_byte_array(),
            ]
            .concat(),
        ));
        // Unspent outputs of the chain so far, in a deterministic order.
        let unspent = model_utxos(chain);
        let mut created = Vec::new();
        let mut spent = Vec::new();
        let mut txs = Vec::new();
        let n_spend = rng.gen_range(0..=2.min(unspent.len()));
        let keys: Vec<&OutPoint> = unspent.keys().collect();
        let mut picked = std::collections::BTreeSet::new();
        for _ in 0..n_spend {
            picked.insert(keys[rng.gen_range(0..keys.len())]);
        }
        for (i, op) in picked.into_iter().enumerate() {
            let (value, owner) = unspent[op];
            let txid = Txid::from_raw_hash(sha256d::Hash::hash(
                &[
                    hash.as_byte_array().as_slice(),
                    b"spend",
                    &(i as u32).to_le_bytes(),
                ]
                .concat(),
            ));
            spent.push(WatchedSpend {
                outpoint: *op,
                txid,
                vin: 0,
                tx_index: 1 + i as u32,
                value: Amount::from_sat(value),
                owner: ScriptOwner::bare(owner),
            });
            txs.push(TxRecord {
                txid,
                tx_index: 1 + i as u32,
                raw: txid.as_byte_array().to_vec(),
            });
        }
        for i in 0..rng.gen_range(0..=3u32) {
            let owner = rng.gen_range(1..=3u64);
            let txid = Txid::from_raw_hash(sha256d::Hash::hash(
                &[hash.as_byte_array().as_slice(), b"create", &i.to_le_bytes()].concat(),
            ));
            created.push(WatchedOutput {
                outpoint: OutPoint { txid, vout: i % 2 },
                value: Amount::from_sat(rng.gen_range(1..5_000_000_000u64)),
                script_pubkey: script(owner),
                owner: ScriptOwner::bare(owner),
                coinbase: i == 0 && rng.gen_bool(0.2),
                tx_index: 10 + i,
            });
            txs.push(TxRecord {
                txid,
                tx_index: 10 + i,
                raw: txid.as_byte_array().to_vec(),
            });
        }
        chain.push(BlockDelta {
            meta: BlockMeta {
                height,
                hash,
                prev_hash: prev,
                time: 1_700_000_000 + height * 600,
            },
            created,
            spent,
            txs,
        });
    }
}

/// The UTXO set a chain leaves, computed from the deltas alone (not through the store).
/// `n` blocks from height 100 with `per_block` watched outputs each, spread over the three
/// wallets: bulk for statistics, without [`extend`]'s per-block model.
fn wide_blocks(n: u32, per_block: u32) -> Vec<BlockDelta> {
    let mut prev = BlockHash::all_zeros();
    (0..n)
        .map(|i| {
            let height = 100 + i;
            let hash = BlockHash::from_raw_hash(sha256d::Hash::hash(&height.to_le_bytes()));
            let txid = Txid::from_raw_hash(sha256d::Hash::hash(hash.as_byte_array()));
            let created = (0..per_block)
                .map(|vout| {
                    let owner = u64::from((i + vout) % 3 + 1);
                    WatchedOutput {
                        outpoint: OutPoint { txid, vout },
                        value: Amount::from_sat(1_000 + u64::from(vout)),
                        script_pubkey: script(owner),
                        owner: ScriptOwner::bare(owner),
                        coinbase: false,
                        tx_index: 1,
                    }
                })
                .collect();
            let meta = BlockMeta {
                height,
                hash,
                prev_hash: prev,
                time: 1_600_000_000 + i * 600,
            };
            prev = hash;
            BlockDelta {
                meta,
                created,
                spent: vec![],
                txs: vec![TxRecord {
                    txid,
                    tx_index: 1,
                    raw: txid.as_byte_array().to_vec(),
                }],
            }
        })
        .collect()
}

fn model_utxos(chain: &[BlockDelta]) -> BTreeMap<OutPoint, (u64, u64)> {
    let mut m = BTreeMap::new();
    for b in chain {
        for o in &b.created {
            m.insert(o.outpoint, (o.value.to_sat(), o.owner.owner));
        }
        for s in &b.spent {
            m.remove(&s.outpoint);
        }
    }
    m
}

async fn snapshot(
    s: &Store,
) -> (
    Option<BlockMeta>,
    Vec<tesoro_store::UtxoRow>,
    Vec<tesoro_store::TxTouch>,
) {
    (
        s.chain_tip().await.unwrap(),
        s.all_outputs().await.unwrap(),
        s.history(None).await.unwrap(),
    )
}

#[derive(Debug, Clone)]
enum Step {
    Extend(usize),
    Reorg {
        depth: usize,
        new: usize,
    },
    /// Apply the last `n` blocks again, as a restarted sync would.
    Replay(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1usize..6).prop_map(Step::Extend),
        (1usize..5, 1usize..7).prop_map(|(depth, new)| Step::Reorg { depth, new }),
        (1usize..4).prop_map(Step::Replay),
    ]
}

async fn run_steps(url: &str, seed: u64, steps: &[Step]) {
    let s = registry(url).await;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chain: Vec<BlockDelta> = Vec::new();
    let mut salt = seed;
    for st in steps {
        match st {
            Step::Extend(n) => {
                let from = chain.len();
                extend(&mut chain, *n, salt, &mut rng);
                s.apply_blocks(&chain[from..]).await.unwrap();
            }
            Step::Reorg { depth, new } => {
                let keep = chain.len().saturating_sub(*depth);
                chain.truncate(keep);
                salt += 1;
                let fork = chain.last().map(|b| b.meta.height);
                let old_tip = s.chain_tip().await.unwrap();
                let removed = s.rollback_to(fork).await.unwrap();
                let expect_removed = match (old_tip, fork) {
                    (Some(t), Some(f)) => t.height - f,
                    (Some(t), None) => t.height - 100 + 1,
                    _ => 0,
                };
                assert_eq!(removed, expect_removed);
                let from = chain.len();
                extend(&mut chain, *new, salt, &mut rng);
                s.apply_blocks(&chain[from..]).await.unwrap();
            }
            Step::Replay(n) => {
                let from = chain.len().saturating_sub(*n);
                let out = s.apply_blocks(&chain[from..]).await.unwrap();
                assert_eq!(out.blocks, 0);
                assert_eq!(out.outputs, 0);
                assert_eq!(out.spends, 0);
            }
        }
        // Balances equal the sum of the model's UTXOs, per wallet, at every step.
        let model = model_utxos(&chain);
        let utxos = s.utxos_at(None, None).await.unwrap();
        let ours: BTreeMap<OutPoint, (u64, u64)> = utxos
            .iter()
            .map(|u| (u.outpoint, (u.value.to_sat(), u.wallet_id as u64)))
            .collect();
        assert_eq!(ours, model);
    }
    // A fresh sync of the final chain ends in the same state.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh_url = format!("sqlite://{}", fresh_dir.path().join("fresh.db").display());
    let fresh = registry(&fresh_url).await;
    for part in chain.chunks(3) {
        fresh.apply_blocks(part).await.unwrap();
    }
    assert_eq!(snapshot(&s).await, snapshot(&fresh).await);
    // And the past is right too: UTXOs at every height equal the model of the prefix.
    for (i, b) in chain.iter().enumerate() {
        let at = s.utxos_at(Some(b.meta.height), None).await.unwrap();
        let sum: u64 = at.iter().map(|u| u.value.to_sat()).sum();
        let model: u64 = model_utxos(&chain[..=i]).values().map(|(v, _)| v).sum();
        assert_eq!(sum, model, "height {}", b.meta.height);
    }
    s.close().await;
    fresh.close().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn reorgs_and_replays_end_where_a_fresh_sync_ends(seed in any::<u64>(), steps in prop::collection::vec(step(), 1..10)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let db = common::sqlite().await;
            run_steps(&db.url, seed, &steps).await;
        });
    }
}

#[tokio::test]
async fn reorgs_on_postgres_too() {
    let db = common::postgres().await;
    let steps = vec![
        Step::Extend(5),
        Step::Reorg { depth: 2, new: 4 },
        Step::Replay(3),
        Step::Extend(3),
        Step::Reorg { depth: 5, new: 2 },
        Step::Reorg { depth: 20, new: 3 },
        Step::Extend(2),
    ];
    run_steps(&db.url, 7, &steps).await;
}

#[tokio::test]
async fn a_block_that_does_not_link_is_refused_whole() {
    for db in common::both().await {
        let s = registry(&db.url).await;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut chain = Vec::new();
        extend(&mut chain, 4, 1, &mut rng);
        s.apply_blocks(&chain[..2]).await.unwrap();
        let before = snapshot(&s).await;
        // Skipping a block: the batch is refused and nothing of it is written.
        let err = s.apply_blocks(&chain[3..]).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        // A competing block at a stored height: refused until the fork is undone.
        let mut other = chain[..1].to_vec();
        extend(&mut other, 1, 99, &mut rng);
        let err = s
            .apply_blocks(&[chain[2].clone(), other[1].clone()])
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("reorganised"),
            "{}: {err}",
            db.backend
        );
        assert_eq!(snapshot(&s).await, before, "{}", db.backend);
        s.close().await;
    }
}

/// A block whose spend the index cannot explain (an output it never held, one already spent
/// by another transaction, or one spent twice in the batch) is refused with its name, and
/// nothing of the batch is written.
#[tokio::test]
async fn spends_the_index_cannot_explain_refuse_the_batch() {
    for db in common::both().await {
        let s = registry(&db.url).await;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut chain = Vec::new();
        // Until some block spends a watched output: that spend is the one to forge.
        while !chain.iter().any(|b: &BlockDelta| !b.spent.is_empty()) || chain.len() < 3 {
            extend(&mut chain, 1, 5, &mut rng);
        }
        let at = chain.len() - 1;
        s.apply_blocks(&chain[..at]).await.unwrap();
        let before = snapshot(&s).await;
        let good = chain[at].clone();
        let spend = good.spent[0].clone();

        let mut unknown = good.clone();
        let never = OutPoint {
            txid: Txid::from_raw_hash(sha256d::Hash::hash(b"never seen")),
            vout: 7,
        };
        unknown.spent[0].outpoint = never;
        let err = s.apply_blocks(&[unknown]).await.unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("spends {never} which the index does not hold")),
            "{}: {err}",
            db.backend
        );
        assert_eq!(snapshot(&s).await, before, "{}", db.backend);

        let mut twice = good.clone();
        let mut again = spend.clone();
        again.txid = Txid::from_raw_hash(sha256d::Hash::hash(b"double"));
        again.vin = 3;
        twice.spent.push(again);
        let err = s.apply_blocks(&[twice]).await.unwrap_err();
        assert!(
            err.to_string().contains("records as spent elsewhere"),
            "{}: {err}",
            db.backend
        );
        assert_eq!(snapshot(&s).await, before, "{}", db.backend);

        // The real block goes in; a competing spend of the same output later is refused,
        // and replaying the real block changes nothing.
        let out = s.apply_blocks(std::slice::from_ref(&good)).await.unwrap();
        assert_eq!(out.spends as usize, good.spent.len(), "{}", db.backend);
        let after = snapshot(&s).await;
        let mut later = Vec::from([good.clone()]);
        extend(&mut later, 1, 6, &mut rng);
        let mut later = later.pop().unwrap();
        later.spent = vec![WatchedSpend {
            txid: Txid::from_raw_hash(sha256d::Hash::hash(b"later")),
            ..spend.clone()
        }];
        let err = s.apply_blocks(&[later]).await.unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "spends {} which the index records as spent elsewhere",
                spend.outpoint
            )),
            "{}: {err}",
            db.backend
        );
        let replay = s.apply_blocks(&[good]).await.unwrap();
        assert_eq!((replay.blocks, replay.spends), (0, 0), "{}", db.backend);
        assert_eq!(snapshot(&s).await, after, "{}", db.backend);
        s.close().await;
    }
}

#[tokio::test]
async fn balances_at_a_date_use_the_last_block_of_that_day() {
    let db = common::sqlite().await;
    let s = registry(&db.url).await;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut chain = Vec::new();
    extend(&mut chain, 10, 3, &mut rng);
    s.apply_blocks(&chain).await.unwrap();
    let t = chain[4].meta.time as i64;
    let b = s.block_at_or_before_time(t + 599).await.unwrap().unwrap();
    assert_eq!(b.height, chain[4].meta.height);
    assert!(s.block_at_or_before_time(0).await.unwrap().is_none());
    s.close().await;
}

/// After a bulk write the planner must know the tables' real sizes: the statistics refresh a
/// large sync ends with gives them to PostgreSQL (without it the estimate here stays at -1,
/// "never analyzed") and, exactly, to SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statistics_refresh_tells_the_planner_the_tables_real_sizes() {
    let db = common::postgres().await;
    let store = registry(&db.url).await;
    let mut chain = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    extend(&mut chain, 1_200, 0, &mut rng);
    store.apply_blocks(&chain).await.unwrap();
    store.refresh_statistics(&[]).await.unwrap();
    let estimate = |table: &'static str| {
        let store = store.clone();
        async move {
            use sqlx::Row;
            sqlx::query("SELECT CAST(reltuples AS BIGINT) AS n FROM pg_class WHERE relname = $1")
                .bind(table)
                .fetch_one(store.pool())
                .await
                .unwrap()
                .get::<i64, _>("n")
        }
    };
    assert_eq!(estimate("blocks").await, 1_200);
    let outputs: usize = chain.iter().map(|b| b.created.len()).sum();
    assert_eq!(estimate("outputs").await, outputs as i64);
    // SQLite's counterpart: exact statistics too. (`PRAGMA optimize`, used before, samples:
    // on the 1M-movement bench it recorded 2,001 outputs per wallet where there are 238,042,
    // and a window query led with the wallet index.)
    // Large enough that sampling would show (it reads about 2,000 rows of an index): 1,200
    // blocks of ten outputs each.
    let chain: Vec<BlockDelta> = wide_blocks(1_200, 10);
    let outputs: usize = chain.iter().map(|b| b.created.len()).sum();
    let lite = common::sqlite().await;
    let store = registry(&lite.url).await;
    store.apply_blocks(&chain).await.unwrap();
    store.refresh_statistics(&["outputs"]).await.unwrap();
    use sqlx::Row;
    let stat: String = sqlx::query(
        "SELECT stat FROM sqlite_stat1 WHERE tbl = 'outputs' AND idx = 'outputs_wallet'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap()
    .get("stat");
    let per_wallet: BTreeMap<u64, usize> = chain
        .iter()
        .flat_map(|b| b.created.iter().map(|o| o.owner.owner))
        .fold(BTreeMap::new(), |mut m, w| {
            *m.entry(w).or_default() += 1;
            m
        });
    let avg = outputs.div_ceil(per_wallet.len());
    assert_eq!(stat, format!("{outputs} {avg}"), "{per_wallet:?}");
}

/// Every write transaction moves the change counters (so caches and reports see it), and on
/// PostgreSQL once per transaction: bumping per statement piled up row versions of the
/// counter inside a sync batch and made the import's cost grow with the square of the
/// batch. A transaction-local flag remembers the bump; the next transaction, even on the
/// same pooled connection, must bump again.
#[tokio::test]
async fn each_sync_batch_moves_the_chain_counter_once_on_postgresql() {
    for db in common::both().await {
        let s = registry(&db.url).await;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut chain = Vec::new();
        extend(&mut chain, 90, 5, &mut rng);
        let mut last = s.ledger_versions().await.unwrap();
        for batch in chain.chunks(30) {
            s.apply_blocks(batch).await.unwrap();
            let now = s.ledger_versions().await.unwrap();
            match db.backend {
                "postgres" => assert_eq!(now.chain, last.chain + 1, "one bump per batch"),
                _ => assert!(now.chain > last.chain, "{}: a batch is seen", db.backend),
            }
            assert_eq!((now.class, now.prices), (last.class, last.prices));
            last = now;
        }
        // A batch that writes nothing new (a re-run) moves nothing.
        s.apply_blocks(&chain[60..]).await.unwrap();
        assert_eq!(s.ledger_versions().await.unwrap(), last, "{}", db.backend);
        s.close().await;
    }
}
