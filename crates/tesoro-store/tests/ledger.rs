//! The ledger's persistence on a SQLite file and on the real PostgreSQL server: movements
//! rebuilt from the chain index (and again after a reorg undo), idempotent price and record
//! imports, the append-only history of manual classifications.

mod common;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, BlockHash, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};
use rust_decimal::Decimal;
use tesoro_core::chain::{
    BlockDelta, BlockMeta, ScriptOwner, TxRecord, WatchedOutput, WatchedSpend,
};
use tesoro_core::classify::{Record, RecordKind};
use tesoro_core::movement::Kind;
use tesoro_core::price::PricePoint;
use tesoro_core::wallet::parse_address;
use tesoro_core::{ChainNetwork, EntityCode};
use tesoro_store::{NewEntity, NewWallet, NewWalletKind, Store};

const MAIN: ChainNetwork = ChainNetwork(Network::Bitcoin);
const A: &str = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu";
const B: &str = "32ixEdVJWo3kmvJGMTZq5jAQVZZeuwnqzo";
const OUTSIDE: &str = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa";
const BTC: u64 = 100_000_000;

fn spk(a: &str) -> ScriptBuf {
    parse_address(a, "t", MAIN).unwrap().script_pubkey
}

/// SV with agencies ONBTC (wallet 1, address A) and BCR (wallet 2, address B).
async fn registry(url: &str) -> Store {
    let (s, _) = Store::init(url, MAIN).await.unwrap();
    for (code, parent) in [("SV", None), ("ONBTC", Some("SV")), ("BCR", Some("SV"))] {
        s.add_entity(&NewEntity {
            code: EntityCode::parse(code).unwrap(),
            name: code.into(),
            parent: parent.map(|p| EntityCode::parse(p).unwrap()),
        })
        .await
        .unwrap();
    }
    for (e, a) in [("ONBTC", A), ("BCR", B)] {
        s.add_wallet(&NewWallet {
            entity: EntityCode::parse(e).unwrap(),
            name: "w".into(),
            kind: NewWalletKind::Addresses(vec![parse_address(a, "t", MAIN).unwrap()]),
        })
        .await
        .unwrap();
    }
    s
}

fn tx(inputs: Vec<OutPoint>, outputs: Vec<(u64, ScriptBuf)>) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: inputs
            .into_iter()
            .map(|p| TxIn {
                previous_output: p,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs
            .into_iter()
            .map(|(v, s)| TxOut {
                value: Amount::from_sat(v),
                script_pubkey: s,
            })
            .collect(),
    }
}

fn meta(height: u32, prev: BlockHash, salt: u8) -> BlockMeta {
    BlockMeta {
        height,
        hash: BlockHash::from_raw_hash(sha256d::Hash::hash(&[height as u8, salt])),
        prev_hash: prev,
        time: 1_735_689_600 + height * 86_400,
    }
}

/// Block 0: outside → ONBTC 1 BTC. Block 1: ONBTC pays 0.6 BTC to BCR, 0.3999 outside, fee
/// 0.0001.
fn blocks() -> Vec<BlockDelta> {
    let t1 = tx(
        vec![OutPoint {
            txid: Txid::from_byte_array([7; 32]),
            vout: 0,
        }],
        vec![(BTC, spk(A))],
    );
    let op1 = OutPoint {
        txid: t1.compute_txid(),
        vout: 0,
    };
    let t2 = tx(
        vec![op1],
        vec![(60_000_000, spk(B)), (39_990_000, spk(OUTSIDE))],
    );
    let m0 = meta(0, BlockHash::all_zeros(), 0);
    let m1 = meta(1, m0.hash, 0);
    let rec = |t: &Transaction| TxRecord {
        txid: t.compute_txid(),
        tx_index: 1,
        raw: bitcoin::consensus::serialize(t),
    };
    vec![
        BlockDelta {
            meta: m0,
            created: vec![WatchedOutput {
                outpoint: op1,
                value: Amount::from_sat(BTC),
                script_pubkey: spk(A),
                owner: ScriptOwner::bare(1),
                coinbase: false,
                tx_index: 1,
            }],
            spent: vec![],
            txs: vec![rec(&t1)],
        },
        BlockDelta {
            meta: m1,
            created: vec![WatchedOutput {
                outpoint: OutPoint {
                    txid: t2.compute_txid(),
                    vout: 0,
                },
                value: Amount::from_sat(60_000_000),
                script_pubkey: spk(B),
                owner: ScriptOwner::bare(2),
                coinbase: false,
                tx_index: 1,
            }],
            spent: vec![WatchedSpend {
                outpoint: op1,
                txid: t2.compute_txid(),
                vin: 0,
                tx_index: 1,
                value: Amount::from_sat(BTC),
                owner: ScriptOwner::bare(1),
            }],
            txs: vec![rec(&t2)],
        },
    ]
}

#[tokio::test]
async fn movements_are_rebuilt_from_the_chain_index_and_after_a_reorg() {
    for db in common::both().await {
        let s = registry(&db.url).await;
        let b = blocks();
        s.apply_blocks(&b).await.unwrap();
        let r = s.ledger_refresh().await.unwrap();
        assert!(r.rebuilt, "{}", db.backend);
        assert_eq!(r.movements, 3);
        assert!(
            !s.ledger_refresh().await.unwrap().rebuilt,
            "nothing changed"
        );
        let ms = s.ledger_movements().await.unwrap();
        assert_eq!(ms[0].acquired, BTC);
        assert_eq!(ms[0].chain_kind, Kind::UnclassifiedAcquisition);
        let (pay, recv) = if ms[1].sent > 0 {
            (&ms[1], &ms[2])
        } else {
            (&ms[2], &ms[1])
        };
        assert_eq!(pay.disposed, 39_990_000);
        assert_eq!(pay.fee, 10_000);
        assert_eq!(pay.internal_out, 60_000_000);
        assert_eq!(pay.counterparties, vec![OUTSIDE.to_string()]);
        assert_eq!(recv.internal_in, 60_000_000);
        assert_eq!(recv.chain_kind, Kind::IntraState);
        assert_eq!(recv.root, pay.root);
        // Undo block 1: the payment's movements go; re-apply: the same rows come back.
        s.rollback_to(Some(0)).await.unwrap();
        assert_eq!(s.ledger_refresh().await.unwrap().movements, 1);
        s.apply_blocks(&b[1..]).await.unwrap();
        s.ledger_refresh().await.unwrap();
        assert_eq!(s.ledger_movements().await.unwrap(), ms, "{}", db.backend);
        s.close().await;
    }
}

#[tokio::test]
async fn imports_are_idempotent_and_overrides_keep_their_history() {
    for db in common::both().await {
        let s = registry(&db.url).await;
        let d = tesoro_core::price::parse_date("2025-07-17").unwrap();
        let pts = vec![PricePoint {
            date: d,
            currency: "USD".into(),
            price: "119501.66".parse().unwrap(),
        }];
        assert_eq!(s.import_prices(&pts, "t").await.unwrap().written, 1);
        assert_eq!(s.import_prices(&pts, "t").await.unwrap().unchanged, 1);
        let book = s.price_book().await.unwrap();
        assert_eq!(
            book.btc_price(d, "USD").unwrap().value,
            "119501.66".parse::<Decimal>().unwrap()
        );
        let rec = Record {
            id: 0,
            kind: RecordKind::Purchase,
            entity: Some("ONBTC".into()),
            date: d,
            sats: 6_238 * BTC,
            fiat: Some("745451455.08".parse().unwrap()),
            currency: Some("USD".into()),
            counterparty: Some("Bitfinex".into()),
            reference: Some("r1".into()),
            txid: None,
        };
        assert_eq!(
            s.import_records(std::slice::from_ref(&rec), "t")
                .await
                .unwrap()
                .written,
            1
        );
        assert_eq!(
            s.import_records(std::slice::from_ref(&rec), "t")
                .await
                .unwrap()
                .unchanged,
            1
        );
        let back = s.records().await.unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].fiat, rec.fiat);
        assert_eq!(back[0].sats, rec.sats);
        let t = Txid::from_byte_array([1; 32]);
        s.add_override(&t, 2, Kind::Purchase, "first")
            .await
            .unwrap();
        s.add_override(&t, 2, Kind::Donation, "second")
            .await
            .unwrap();
        let o = s.overrides().await.unwrap();
        assert_eq!(o.len(), 2, "{}", db.backend);
        assert_eq!(o[1].kind, Kind::Donation);
        assert_eq!(o[0].reason, "first");
        s.close().await;
    }
}

/// Several commands refreshing the ledger at once (each opens its own store) end with the
/// same rows as one refresh, and none fails.
#[tokio::test]
async fn concurrent_refreshes_agree() {
    for db in common::both().await {
        let s = registry(&db.url).await;
        s.apply_blocks(&blocks()).await.unwrap();
        let mut handles = Vec::new();
        for _ in 0..4 {
            let url = db.url.clone();
            handles.push(tokio::spawn(async move {
                let s = Store::open(&url).await.unwrap();
                let r = s.ledger_refresh().await;
                s.close().await;
                r.map(|o| o.movements)
            }));
        }
        for h in handles {
            assert_eq!(h.await.unwrap().unwrap(), 3, "{}", db.backend);
        }
        assert_eq!(s.ledger_movements().await.unwrap().len(), 3);
        s.close().await;
    }
}
