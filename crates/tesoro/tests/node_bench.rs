//! Makes the chain of the "Sync from a node" benchmark in BENCHMARKS.md: a real regtest node
//! with 2,000+ blocks of traffic (about 30 fan-out transactions of 100 P2WPKH outputs per block,
//! some paying ten watched addresses and later spending from them), built with `generateblock`
//! from transactions signed here. Not a test: run it on purpose,
//!
//! ```text
//! TESORO_BENCH_DIR=/tmp/tesoro-node-bench cargo test --release -p tesoro --test node_bench -- --ignored --nocapture
//! ```
//!
//! and it leaves the datadir, the node stopped, and the watched addresses in
//! `$TESORO_BENCH_DIR/addresses.txt`.

mod node_support;

use std::collections::VecDeque;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    absolute, transaction, Amount, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Txid, Witness,
};
use node_support::*;
use serde_json::json;

struct Key {
    sk: SecretKey,
    pk: PublicKey,
    spk: ScriptBuf,
}

fn key(i: u8) -> Key {
    let secp = Secp256k1::new();
    let sk = SecretKey::from_slice(&[i.max(1); 32]).unwrap();
    let pk = PublicKey::from_secret_key(&secp, &sk);
    let spk = ScriptBuf::new_p2wpkh(&CompressedPublicKey(pk).wpubkey_hash());
    Key { sk, pk, spk }
}

#[test]
#[ignore = "makes the benchmark chain; run on purpose (see the file's doc)"]
fn make_node_bench_chain() {
    let out = std::path::PathBuf::from(
        std::env::var("TESORO_BENCH_DIR").unwrap_or_else(|_| "/tmp/tesoro-node-bench".into()),
    );
    let blocks: u32 = std::env::var("TESORO_BENCH_BLOCKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    let mut node = Node::start(&[]);
    let secp = Secp256k1::new();
    let miner = key(1);
    let watched: Vec<Key> = (10..20).map(key).collect();
    let network = bitcoin::Network::Regtest;
    let addr = |k: &Key| {
        bitcoin::Address::from_script(&k.spk, network)
            .unwrap()
            .to_string()
    };
    let miner_addr = addr(&miner);
    let hashes = node.mine(110, &miner_addr);
    // Spendable outputs: (outpoint, value, key index: 0 miner, 1.. watched).
    let mut queue: VecDeque<(OutPoint, u64, usize)> = VecDeque::new();
    for h in hashes.iter().take(10) {
        let b = node.rpc("getblock", json!([h, 2]));
        let tx = &b["tx"][0];
        let txid: Txid = tx["txid"].as_str().unwrap().parse().unwrap();
        let sats = (tx["vout"][0]["value"].as_f64().unwrap() * 1e8).round() as u64;
        queue.push_back((OutPoint { txid, vout: 0 }, sats, 0));
    }
    let mut n_tx = 0u64;
    for b in 0..blocks {
        let mut raw = Vec::new();
        let mut created = Vec::new();
        for _ in 0..30 {
            let Some((op, value, k)) = queue.pop_front() else {
                break;
            };
            let signer = if k == 0 { &miner } else { &watched[k - 1] };
            let fee = 4_000;
            let each = (value - fee) / 100;
            if each < 1_000 {
                continue;
            }
            let mut outputs: Vec<TxOut> = (0..100)
                .map(|_| TxOut {
                    value: Amount::from_sat(each),
                    script_pubkey: miner.spk.clone(),
                })
                .collect();
            let pay_watched = n_tx.is_multiple_of(7);
            let w = (n_tx as usize / 7) % watched.len();
            if pay_watched {
                outputs[0].script_pubkey = watched[w].spk.clone();
            }
            let mut tx = Transaction {
                version: transaction::Version::TWO,
                lock_time: absolute::LockTime::ZERO,
                input: vec![TxIn {
                    previous_output: op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                }],
                output: outputs,
            };
            let sighash = SighashCache::new(&tx)
                .p2wpkh_signature_hash(
                    0,
                    &signer.spk,
                    Amount::from_sat(value),
                    EcdsaSighashType::All,
                )
                .unwrap();
            let sig = secp.sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &signer.sk);
            tx.input[0].witness =
                Witness::p2wpkh(&bitcoin::ecdsa::Signature::sighash_all(sig), &signer.pk);
            let txid = tx.compute_txid();
            for vout in 0..100u32 {
                let k = if vout == 0 && pay_watched { w + 1 } else { 0 };
                created.push((OutPoint { txid, vout }, each, k));
            }
            raw.push(bitcoin::consensus::encode::serialize_hex(&tx));
            n_tx += 1;
        }
        node.rpc("generateblock", json!([miner_addr, raw]));
        queue.extend(created);
        if b.is_multiple_of(200) {
            eprintln!("block {b}/{blocks}: {n_tx} transactions");
        }
    }
    let tip = node.height();
    let size = node.rpc("getblockchaininfo", json!([]))["size_on_disk"].clone();
    eprintln!("tip {tip}, {n_tx} transactions, size on disk {size}");
    node.stop();
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let keep = out.join("datadir");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(node.datadir.path())
        .arg(&keep)
        .status()
        .unwrap();
    assert!(status.success());
    let list: Vec<String> = watched.iter().map(addr).collect();
    std::fs::write(out.join("addresses.txt"), list.join("\n") + "\n").unwrap();
    eprintln!("datadir in {}", keep.display());
}
