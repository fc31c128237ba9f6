//! An imitation Esplora server on loopback, serving a chain given as raw blocks, for testing
//! the Esplora source where no real Esplora can be installed.
//!
//! Follows the REST API of Blockstream's Esplora as documented in its `API.md` and served by
//! `electrs` (Blockstream fork, `new-index` branch, as deployed with Esplora v2.x and by
//! mempool.space): the paths, the JSON field names, hex and binary encodings, newest-first
//! `/scripthash/:hash/txs/chain[/:last_seen_txid]` pages of 25 confirmed transactions, and
//! the error bodies (`Block not found`, `Transaction not found`, `Invalid hex string`,
//! `Invalid hash string`) with 400/404 statuses and `text/plain` bodies.
//!
//! Served paths: `/blocks/tip/height`, `/blocks/tip/hash`, `/block-height/:h`,
//! `/block/:hash`, `/block/:hash/header`, `/block/:hash/raw`, `/block/:hash/txids`,
//! `/block/:hash/txid/:index`,
//! `/block/:hash/status`, `/scripthash/:hash/txs/chain[/:last_seen_txid]`, `/tx/:txid`,
//! `/tx/:txid/raw`, `/tx/:txid/hex`, `/tx/:txid/status`, `/tx/:txid/outspend/:vout`.
//!
//! [`EsploraServer::set_chain`] replaces the chain while the server runs: a reorg between two
//! calls of a client.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::{Address, Block, BlockHash, Network, OutPoint, Script, Transaction, Txid};
use serde_json::{json, Value};

/// Transactions per page of `/scripthash/:hash/txs/chain`, as electrs serves them.
pub const CHAIN_TXS_PER_PAGE: usize = 25;

struct TxEntry {
    tx: Transaction,
    height: u32,
}

/// The indexed chain the server answers from.
struct ChainData {
    network: Network,
    blocks: Vec<(BlockHash, Block, Vec<u8>)>,
    heights: HashMap<BlockHash, u32>,
    txs: HashMap<Txid, TxEntry>,
    /// Scripthash -> (height, position, txid) of every tx funding or spending the script.
    history: HashMap<[u8; 32], Vec<(u32, usize, Txid)>>,
    spends: HashMap<OutPoint, (Txid, u32)>,
}

fn scripthash(script: &Script) -> [u8; 32] {
    sha256::Hash::hash(script.as_bytes()).to_byte_array()
}

impl ChainData {
    fn new(raw: Vec<Vec<u8>>, network: Network) -> Result<Self, String> {
        let mut d = ChainData {
            network,
            blocks: Vec::new(),
            heights: HashMap::new(),
            txs: HashMap::new(),
            history: HashMap::new(),
            spends: HashMap::new(),
        };
        for (h, bytes) in raw.into_iter().enumerate() {
            let block: Block =
                deserialize(&bytes).map_err(|e| format!("block at height {h}: {e}"))?;
            let hash = block.block_hash();
            let height = h as u32;
            for (pos, tx) in block.txdata.iter().enumerate() {
                let txid = tx.compute_txid();
                let mut touched: Vec<[u8; 32]> = Vec::new();
                for o in &tx.output {
                    touched.push(scripthash(&o.script_pubkey));
                }
                if !tx.is_coinbase() {
                    for (vin, i) in tx.input.iter().enumerate() {
                        d.spends.insert(i.previous_output, (txid, vin as u32));
                        if let Some(prev) = d.txs.get(&i.previous_output.txid) {
                            if let Some(o) = prev.tx.output.get(i.previous_output.vout as usize) {
                                touched.push(scripthash(&o.script_pubkey));
                            }
                        }
                    }
                }
                touched.sort_unstable();
                touched.dedup();
                for s in touched {
                    d.history.entry(s).or_default().push((height, pos, txid));
                }
                d.txs.insert(
                    txid,
                    TxEntry {
                        tx: tx.clone(),
                        height,
                    },
                );
            }
            d.heights.insert(hash, height);
            d.blocks.push((hash, block, bytes));
        }
        Ok(d)
    }

    fn status(&self, height: u32) -> Value {
        match self.blocks.get(height as usize) {
            Some((hash, b, _)) => json!({
                "confirmed": true,
                "block_height": height,
                "block_hash": hash.to_string(),
                "block_time": b.header.time,
            }),
            None => json!({"confirmed": false}),
        }
    }

    fn vout_json(&self, o: &bitcoin::TxOut) -> Value {
        let s = &o.script_pubkey;
        let kind = if s.is_p2pkh() {
            "p2pkh"
        } else if s.is_p2sh() {
            "p2sh"
        } else if s.is_p2wpkh() {
            "v0_p2wpkh"
        } else if s.is_p2wsh() {
            "v0_p2wsh"
        } else if s.is_p2tr() {
            "v1_p2tr"
        } else if s.is_op_return() {
            "op_return"
        } else if s.is_p2pk() {
            "p2pk"
        } else if s.is_multisig() {
            "multisig"
        } else {
            "unknown"
        };
        let mut v = json!({
            "scriptpubkey": s.to_hex_string(),
            "scriptpubkey_asm": s.to_asm_string(),
            "scriptpubkey_type": kind,
            "value": o.value.to_sat(),
        });
        if let Ok(a) = Address::from_script(s, self.network) {
            v["scriptpubkey_address"] = json!(a.to_string());
        }
        v
    }

    fn tx_json(&self, e: &TxEntry) -> Value {
        let tx = &e.tx;
        let mut fee: i64 = 0;
        let vin: Vec<Value> = tx
            .input
            .iter()
            .map(|i| {
                let coinbase = tx.is_coinbase();
                let prevout = if coinbase {
                    Value::Null
                } else {
                    self.txs
                        .get(&i.previous_output.txid)
                        .and_then(|p| p.tx.output.get(i.previous_output.vout as usize))
                        .map(|o| {
                            fee += o.value.to_sat() as i64;
                            self.vout_json(o)
                        })
                        .unwrap_or(Value::Null)
                };
                let witness: Vec<String> = i
                    .witness
                    .iter()
                    .map(bitcoin::hex::DisplayHex::to_lower_hex_string)
                    .collect();
                let mut v = json!({
                    "txid": i.previous_output.txid.to_string(),
                    "vout": i.previous_output.vout,
                    "prevout": prevout,
                    "scriptsig": i.script_sig.to_hex_string(),
                    "scriptsig_asm": i.script_sig.to_asm_string(),
                    "is_coinbase": coinbase,
                    "sequence": i.sequence.0,
                });
                if !witness.is_empty() {
                    v["witness"] = json!(witness);
                }
                v
            })
            .collect();
        let vout: Vec<Value> = tx.output.iter().map(|o| self.vout_json(o)).collect();
        if tx.is_coinbase() {
            fee = 0;
        } else {
            fee -= tx
                .output
                .iter()
                .map(|o| o.value.to_sat() as i64)
                .sum::<i64>();
        }
        json!({
            "txid": tx.compute_txid().to_string(),
            "version": tx.version.0,
            "locktime": tx.lock_time.to_consensus_u32(),
            "vin": vin,
            "vout": vout,
            "size": tx.total_size(),
            "weight": tx.weight().to_wu(),
            "fee": fee,
            "status": self.status(e.height),
        })
    }
}

/// A running imitation Esplora server; stops when dropped.
pub struct EsploraServer {
    addr: std::net::SocketAddr,
    data: Arc<RwLock<Arc<ChainData>>>,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EsploraServer {
    /// Serves `blocks` (the best chain's raw blocks, genesis first) on 127.0.0.1, a free port.
    pub fn start(blocks: Vec<Vec<u8>>, network: Network) -> Result<Self, String> {
        let data = Arc::new(RwLock::new(Arc::new(ChainData::new(blocks, network)?)));
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let (d, s, r) = (Arc::clone(&data), Arc::clone(&stop), Arc::clone(&requests));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (d, s, r) = (Arc::clone(&d), Arc::clone(&s), Arc::clone(&r));
                        std::thread::spawn(move || serve(stream, &d, &s, &r));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(Self {
            addr,
            data,
            stop,
            requests,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` (the API root).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Replaces the chain (a reorg, or growth) while serving.
    pub fn set_chain(&self, blocks: Vec<Vec<u8>>) -> Result<(), String> {
        let network = self
            .data
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .network;
        let new = Arc::new(ChainData::new(blocks, network)?);
        *self.data.write().unwrap_or_else(PoisonError::into_inner) = new;
        Ok(())
    }
}

impl Drop for EsploraServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Body {
    Text(String),
    Json(Value),
    Bin(Vec<u8>),
}

fn serve(stream: TcpStream, data: &RwLock<Arc<ChainData>>, stop: &AtomicBool, n: &AtomicU64) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut out = stream;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                continue;
            }
            Err(_) => return,
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut content_length = 0usize;
        loop {
            let mut h = String::new();
            match reader.read_line(&mut h) {
                Ok(0) => return,
                Ok(_) => {}
                Err(_) => return,
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        if content_length > 0 {
            let mut sink = vec![0u8; content_length.min(1 << 20)];
            if reader.read_exact(&mut sink).is_err() {
                return;
            }
        }
        n.fetch_add(1, Ordering::Relaxed);
        let chain = Arc::clone(&data.read().unwrap_or_else(PoisonError::into_inner));
        let (status, body) = if method == "GET" {
            route(&chain, &path)
        } else {
            (405, Body::Text("Method Not Allowed".into()))
        };
        let (ct, bytes) = match body {
            Body::Text(t) => ("text/plain", t.into_bytes()),
            Body::Json(v) => ("application/json", v.to_string().into_bytes()),
            Body::Bin(b) => ("application/octet-stream", b),
        };
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            _ => "Error",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nAccess-Control-Allow-Origin: *\r\n\r\n",
            bytes.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(&bytes).is_err() {
            return;
        }
    }
}

fn parse_hash<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.len() != 64 {
        return None;
    }
    s.parse().ok()
}

fn route(d: &ChainData, path: &str) -> (u16, Body) {
    let segs: Vec<&str> = path
        .split('?')
        .next()
        .unwrap_or("")
        .trim_matches('/')
        .split('/')
        .collect();
    let not_found = |what: &str| (404, Body::Text(format!("{what} not found")));
    let tip = d.blocks.len().saturating_sub(1);
    match segs.as_slice() {
        ["blocks", "tip", "height"] => (200, Body::Text(tip.to_string())),
        ["blocks", "tip", "hash"] => match d.blocks.last() {
            Some((h, _, _)) => (200, Body::Text(h.to_string())),
            None => not_found("Block"),
        },
        ["block-height", h] => match h.parse::<usize>() {
            Ok(h) => match d.blocks.get(h) {
                Some((hash, _, _)) => (200, Body::Text(hash.to_string())),
                None => not_found("Block"),
            },
            Err(_) => (400, Body::Text(format!("Invalid height {h:?}"))),
        },
        ["block", hash, rest @ ..] => {
            let Some(hash) = parse_hash::<BlockHash>(hash) else {
                return (400, Body::Text("Invalid hex string".into()));
            };
            let Some(&height) = d.heights.get(&hash) else {
                return not_found("Block");
            };
            let (_, block, raw) = &d.blocks[height as usize];
            match rest {
                [] => (
                    200,
                    Body::Json(json!({
                        "id": hash.to_string(),
                        "height": height,
                        "version": block.header.version.to_consensus(),
                        "timestamp": block.header.time,
                        "tx_count": block.txdata.len(),
                        "size": raw.len(),
                        "weight": block.weight().to_wu(),
                        "merkle_root": block.header.merkle_root.to_string(),
                        "previousblockhash": block.header.prev_blockhash.to_string(),
                        "mediantime": block.header.time,
                        "nonce": block.header.nonce,
                        "bits": block.header.bits.to_consensus(),
                        "difficulty": block.header.difficulty_float(),
                    })),
                ),
                ["header"] => (
                    200,
                    Body::Text(bitcoin::hex::DisplayHex::to_lower_hex_string(
                        &serialize(&block.header)[..],
                    )),
                ),
                ["raw"] => (200, Body::Bin(raw.clone())),
                ["txids"] => (
                    200,
                    Body::Json(json!(block
                        .txdata
                        .iter()
                        .map(|t| t.compute_txid().to_string())
                        .collect::<Vec<_>>())),
                ),
                ["txid", i] => match i.parse::<usize>().ok().and_then(|i| block.txdata.get(i)) {
                    Some(t) => (200, Body::Text(t.compute_txid().to_string())),
                    None => (404, Body::Text("tx index out of range".into())),
                },
                ["status"] => (
                    200,
                    Body::Json(json!({
                        "in_best_chain": true,
                        "height": height,
                        "next_best": d.blocks.get(height as usize + 1).map(|b| b.0.to_string()),
                    })),
                ),
                _ => not_found("Endpoint"),
            }
        }
        ["scripthash", sh, "txs", "chain", last @ ..] => {
            let Some(bytes) = bitcoin::hex::FromHex::from_hex(sh)
                .ok()
                .filter(|b: &Vec<u8>| b.len() == 32)
            else {
                return (400, Body::Text("Invalid hex string".into()));
            };
            // Esplora's scripthash: SHA256 of the script, hex in reversed byte order (as Electrum).
            let mut key = [0u8; 32];
            key.copy_from_slice(&bytes);
            key.reverse();
            let mut hist: Vec<(u32, usize, Txid)> =
                d.history.get(&key).cloned().unwrap_or_default();
            hist.sort_by_key(|x| std::cmp::Reverse((x.0, x.1)));
            let start = match last {
                [] => 0,
                [t] => {
                    let Some(t) = parse_hash::<Txid>(t) else {
                        return (400, Body::Text("Invalid hex string".into()));
                    };
                    match hist.iter().position(|x| x.2 == t) {
                        Some(i) => i + 1,
                        None => return not_found("Transaction"),
                    }
                }
                _ => return not_found("Endpoint"),
            };
            let page: Vec<Value> = hist
                .iter()
                .skip(start)
                .take(CHAIN_TXS_PER_PAGE)
                .filter_map(|(_, _, t)| d.txs.get(t).map(|e| d.tx_json(e)))
                .collect();
            (200, Body::Json(json!(page)))
        }
        ["tx", txid, rest @ ..] => {
            let Some(txid) = parse_hash::<Txid>(txid) else {
                return (400, Body::Text("Invalid hex string".into()));
            };
            let Some(e) = d.txs.get(&txid) else {
                return not_found("Transaction");
            };
            match rest {
                [] => (200, Body::Json(d.tx_json(e))),
                ["raw"] => (200, Body::Bin(serialize(&e.tx))),
                ["hex"] => (
                    200,
                    Body::Text(bitcoin::hex::DisplayHex::to_lower_hex_string(
                        &serialize(&e.tx)[..],
                    )),
                ),
                ["status"] => (200, Body::Json(d.status(e.height))),
                ["outspend", vout] => {
                    let Ok(vout) = vout.parse::<u32>() else {
                        return (400, Body::Text("Invalid vout".into()));
                    };
                    if vout as usize >= e.tx.output.len() {
                        return not_found("Output");
                    }
                    match d.spends.get(&OutPoint { txid, vout }) {
                        Some((s, vin)) => {
                            let h = d.txs.get(s).map(|x| x.height).unwrap_or(0);
                            (
                                200,
                                Body::Json(json!({
                                    "spent": true,
                                    "txid": s.to_string(),
                                    "vin": vin,
                                    "status": d.status(h),
                                })),
                            )
                        }
                        None => (200, Body::Json(json!({"spent": false}))),
                    }
                }
                _ => not_found("Endpoint"),
            }
        }
        _ => not_found("Endpoint"),
    }
}
