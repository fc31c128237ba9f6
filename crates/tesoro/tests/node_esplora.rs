//! The imitation Esplora server (tesoro-testchain) checked against a real Bitcoin Core node on
//! the same chain, where their answers overlap: heights and hashes, headers, txids of blocks,
//! raw transactions, outputs (value, script, address, type), confirmation status, spent or
//! unspent outputs, and a script's unspent outputs against `scantxoutset`. So the server the
//! Esplora source is tested against cannot drift from what a real chain looks like.

mod node_support;

use std::collections::BTreeSet;
use std::time::Duration;

use node_support::*;
use serde_json::{json, Value};
use tesoro_chain::http::{HttpPool, HttpUrl};
use tesoro_testchain::esplora_server::EsploraServer;

fn get(pool: &HttpPool, path: &str) -> (u16, Vec<u8>) {
    let r = pool.request("GET", path, None, Vec::new()).unwrap();
    (r.status, r.body)
}

fn text(pool: &HttpPool, path: &str) -> String {
    let (s, b) = get(pool, path);
    assert_eq!(s, 200, "{path}");
    String::from_utf8(b).unwrap()
}

fn js(pool: &HttpPool, path: &str) -> Value {
    let (s, b) = get(pool, path);
    assert_eq!(s, 200, "{path}");
    serde_json::from_slice(&b).unwrap()
}

/// Core's `scriptPubKey.type` in Esplora's words.
fn esplora_type(core: &str) -> &str {
    match core {
        "pubkeyhash" => "p2pkh",
        "scripthash" => "p2sh",
        "witness_v0_keyhash" => "v0_p2wpkh",
        "witness_v0_scripthash" => "v0_p2wsh",
        "witness_v1_taproot" => "v1_p2tr",
        "nulldata" => "op_return",
        "pubkey" => "p2pk",
        "multisig" => "multisig",
        other => other,
    }
}

#[test]
fn imitation_esplora_agrees_with_the_node() {
    let node = Node::start(&["-txindex"]);
    let mut faucet = Faucet::new(&node);
    node.mine(105, &faucet.address);
    let watched: Vec<String> = [
        format!("wpkh({}/0/1)", xpub(&xprv(31))),
        format!("tr({}/0/1)", xpub(&xprv(32))),
        format!("pkh({}/0/1)", xpub(&xprv(33))),
        format!("sh(wpkh({}/0/1))", xpub(&xprv(34))),
    ]
    .iter()
    .map(|d| node.address(d, None))
    .collect();
    for (i, a) in watched.iter().enumerate() {
        faucet.pay(&node, &[(a.as_str(), 10_000_000 * (i as u64 + 1))]);
        node.mine(1, &faucet.address);
    }
    faucet.pay(&node, &[(watched[0].as_str(), 777_777)]);
    node.mine(2, &faucet.address);
    let tip = node.height();
    let blocks: Vec<Vec<u8>> = (0..=tip)
        .map(|h| {
            let hex = node.rpc("getblock", json!([node.hash_at(h), 0]));
            bitcoin::hex::FromHex::from_hex(hex.as_str().unwrap()).unwrap()
        })
        .collect();
    let server = EsploraServer::start(blocks, bitcoin::Network::Regtest).unwrap();
    let pool = HttpPool::new(
        HttpUrl::parse(&server.url()).unwrap(),
        None,
        Duration::from_secs(10),
    );

    assert_eq!(text(&pool, "/blocks/tip/height"), tip.to_string());
    assert_eq!(text(&pool, "/blocks/tip/hash"), node.hash_at(tip));
    assert_eq!(get(&pool, &format!("/block-height/{}", tip + 1)).0, 404);
    for h in [0, 1, 100, tip - 1, tip] {
        let hash = node.hash_at(h);
        assert_eq!(text(&pool, &format!("/block-height/{h}")), hash);
        let header = node.rpc("getblockheader", json!([hash, false]));
        assert_eq!(
            text(&pool, &format!("/block/{hash}/header")),
            header.as_str().unwrap()
        );
        let core = node.rpc("getblock", json!([hash, 2]));
        let b = js(&pool, &format!("/block/{hash}"));
        assert_eq!(b["height"], core["height"]);
        assert_eq!(b["tx_count"], core["nTx"]);
        assert_eq!(b["size"], core["size"]);
        assert_eq!(b["weight"], core["weight"]);
        assert_eq!(b["merkle_root"], core["merkleroot"]);
        assert_eq!(b["timestamp"], core["time"]);
        let txids: Vec<Value> = core["tx"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["txid"].clone())
            .collect();
        assert_eq!(js(&pool, &format!("/block/{hash}/txids")), json!(txids));
        for t in core["tx"].as_array().unwrap() {
            let txid = t["txid"].as_str().unwrap();
            assert_eq!(
                text(&pool, &format!("/tx/{txid}/hex")),
                t["hex"].as_str().unwrap()
            );
            let e = js(&pool, &format!("/tx/{txid}"));
            assert_eq!(e["status"]["block_hash"], json!(hash));
            assert_eq!(e["status"]["block_height"], json!(h));
            assert_eq!(e["weight"], t["weight"]);
            assert_eq!(e["size"], t["size"]);
            for (o, c) in e["vout"]
                .as_array()
                .unwrap()
                .iter()
                .zip(t["vout"].as_array().unwrap())
            {
                let sats = (c["value"].as_f64().unwrap() * 1e8).round() as u64;
                assert_eq!(o["value"].as_u64().unwrap(), sats);
                assert_eq!(o["scriptpubkey"], c["scriptPubKey"]["hex"]);
                // (asm differs by design: electrs writes rust-bitcoin's OP_PUSHBYTES_n form.)
                assert_eq!(
                    o["scriptpubkey_type"].as_str().unwrap(),
                    esplora_type(c["scriptPubKey"]["type"].as_str().unwrap())
                );
                if let Some(a) = c["scriptPubKey"]["address"].as_str() {
                    assert_eq!(o["scriptpubkey_address"].as_str(), Some(a));
                }
                // Spent or not, as Core's UTXO set says (the genesis coinbase and OP_RETURN
                // outputs never enter it).
                let n = c["n"].as_u64().unwrap();
                if h == 0 || c["scriptPubKey"]["type"] == "nulldata" {
                    continue;
                }
                let utxo = node.rpc("gettxout", json!([txid, n, false]));
                let sp = js(&pool, &format!("/tx/{txid}/outspend/{n}"));
                assert_eq!(sp["spent"].as_bool().unwrap(), utxo.is_null(), "{txid}:{n}");
            }
            if t["vin"][0].get("coinbase").is_none() {
                let fee = (t["fee"].as_f64().unwrap() * 1e8).round() as i64;
                assert_eq!(e["fee"].as_i64().unwrap(), fee, "{txid}");
            }
        }
    }
    // A watched address: its history's unspent outputs are what scantxoutset finds.
    for a in &watched {
        let script = node.rpc("validateaddress", json!([a]))["scriptPubKey"]
            .as_str()
            .unwrap()
            .to_string();
        let bytes: Vec<u8> = bitcoin::hex::FromHex::from_hex(&script).unwrap();
        let sh = tesoro_chain::esplora::scripthash(bitcoin::Script::from_bytes(&bytes));
        let hist = js(&pool, &format!("/scripthash/{sh}/txs/chain"));
        let mut unspent = BTreeSet::new();
        for t in hist.as_array().unwrap() {
            let txid = t["txid"].as_str().unwrap();
            for (n, o) in t["vout"].as_array().unwrap().iter().enumerate() {
                if o["scriptpubkey"].as_str() == Some(script.as_str())
                    && !js(&pool, &format!("/tx/{txid}/outspend/{n}"))["spent"]
                        .as_bool()
                        .unwrap()
                {
                    unspent.insert((txid.to_string(), n as u32));
                }
            }
        }
        let core: BTreeSet<(String, u32)> = node
            .scan_unspents(&format!("addr({a})"))
            .into_iter()
            .map(|u| (u.0, u.1))
            .collect();
        assert_eq!(unspent, core, "{a}");
        assert!(!core.is_empty());
    }
    // Errors as Esplora words them.
    let (s, b) = get(&pool, &format!("/block/{}", "00".repeat(32)));
    assert_eq!(
        (s, String::from_utf8(b).unwrap().as_str()),
        (404, "Block not found")
    );
}
