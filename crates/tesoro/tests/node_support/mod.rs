//! A real Bitcoin Core node for the tests: started on a free loopback port with a temporary
//! datadir, stopped (or killed) when dropped; plus the raw-transaction helpers that build a
//! history without a wallet, and the `tesoro` CLI helpers.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bitcoin::bip32::{DerivationPath, Xpriv, Xpub};
use bitcoin::secp256k1::Secp256k1;
use serde_json::{json, Value};
use tesoro_chain::rpc::{CoreRpc, RpcAuth};

#[path = "../office/mod.rs"]
mod office;
// Each node test uses a different part of these.
#[allow(unused_imports)]
pub use office::{balances, ok, state, tesoro, BIN};

/// The bitcoind to run: $BITCOIND, or what scripts/bitcoind.sh prints (a cached build, or it
/// builds one from the crates.io package that carries Core's source).
pub fn bitcoind() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("BITCOIND") {
            return PathBuf::from(p);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bitcoind.sh");
        let out = Command::new("bash")
            .arg(script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/bitcoind.sh");
        assert!(out.status.success(), "scripts/bitcoind.sh failed");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running regtest bitcoind.
pub struct Node {
    pub datadir: tempfile::TempDir,
    pub port: u16,
    pub args: Vec<String>,
    child: Option<Child>,
    rpc: Option<CoreRpc>,
}

impl Node {
    /// Starts a node with `extra` arguments besides the loopback regtest ones.
    pub fn start(extra: &[&str]) -> Node {
        let datadir = tempfile::tempdir().unwrap();
        let mut n = Node {
            datadir,
            port: free_port(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
            rpc: None,
        };
        // The port was free when picked, not reserved: a node that lost it to another test
        // exits unable to bind, and a first start may move to another port (a restart may
        // not, since its URL is already in use).
        for _ in 0..3 {
            if n.launch(true) {
                return n;
            }
            n.port = free_port();
        }
        panic!("bitcoind could not bind an RPC port in 3 tries");
    }

    /// Starts bitcoind; false when it could not bind its RPC port and `may_move` allows
    /// trying another.
    fn launch(&mut self, may_move: bool) -> bool {
        let _ = std::fs::remove_file(self.cookie());
        let mut cmd = Command::new(bitcoind());
        cmd.arg("-regtest")
            .arg("-server")
            .arg("-rest")
            .arg("-rpcbind=127.0.0.1")
            .arg("-rpcallowip=127.0.0.1")
            .arg("-listen=0")
            .arg("-dnsseed=0")
            .arg("-fixedseeds=0")
            .arg("-fallbackfee=0.0002")
            .arg("-printtoconsole=0")
            .arg(format!("-datadir={}", self.datadir.path().display()))
            .arg(format!("-rpcport={}", self.port))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("start bitcoind"));
        // bitcoin-cli -rpcwait fails before the cookie exists: wait for the file, then for
        // the RPC warm-up to end.
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.cookie().exists() {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                if may_move && self.log_tail().contains("Unable to bind") {
                    return false;
                }
                panic!(
                    "bitcoind exited with {st} before writing its cookie; debug.log:\n{}",
                    self.log_tail()
                );
            }
            assert!(Instant::now() < deadline, "no cookie after 120 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        let rpc = CoreRpc::new(&self.url(), &RpcAuth::Cookie(self.cookie()), false).unwrap();
        loop {
            match rpc.call("getblockchaininfo", json!([])) {
                Ok(_) => break,
                Err(e) => {
                    assert!(Instant::now() < deadline, "node not ready: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        self.rpc = Some(rpc);
        true
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.datadir.path().join("regtest/debug.log"))
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn cookie(&self) -> PathBuf {
        self.datadir.path().join("regtest/.cookie")
    }

    pub fn blocks_dir(&self) -> PathBuf {
        self.datadir.path().join("regtest/blocks")
    }

    pub fn rpc(&self, method: &str, params: Value) -> Value {
        self.rpc
            .as_ref()
            .expect("node running")
            .call(method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    pub fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        self.rpc
            .as_ref()
            .expect("node running")
            .call(method, params)
            .map_err(|e| e.to_string())
    }

    /// Stops the node cleanly (RPC `stop`) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = self.try_rpc("stop", json!([]));
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if c.try_wait().unwrap().is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.rpc = None;
    }

    /// Kills the node (SIGKILL), as a crash or a pulled plug would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.rpc = None;
    }

    /// Starts it again on the same datadir and port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch(false);
    }

    pub fn height(&self) -> u32 {
        self.rpc("getblockcount", json!([])).as_u64().unwrap() as u32
    }

    pub fn hash_at(&self, h: u32) -> String {
        self.rpc("getblockhash", json!([h]))
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn mine(&self, n: u32, address: &str) -> Vec<String> {
        self.rpc("generatetoaddress", json!([n, address]))
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// `desc#checksum`.
    pub fn checksummed(&self, desc: &str) -> String {
        let info = self.rpc("getdescriptorinfo", json!([desc]));
        format!("{desc}#{}", info["checksum"].as_str().unwrap())
    }

    /// Address of a non-ranged descriptor, or of child `i` of a ranged one.
    pub fn address(&self, desc: &str, i: Option<u32>) -> String {
        let d = self.checksummed(desc);
        let v = match i {
            Some(i) => self.rpc("deriveaddresses", json!([d, [i, i]])),
            None => self.rpc("deriveaddresses", json!([d])),
        };
        v[0].as_str().unwrap().to_string()
    }

    /// Core's own balance (sats) of descriptors, from its UTXO set.
    pub fn scan_balance(&self, descs: &[String]) -> u64 {
        let objs: Vec<Value> = descs
            .iter()
            .map(|d| {
                if d.contains('*') {
                    json!({"desc": self.checksummed(d), "range": [0, 200]})
                } else {
                    json!(self.checksummed(d))
                }
            })
            .collect();
        let v = self.rpc("scantxoutset", json!(["start", objs]));
        assert_eq!(v["success"], json!(true), "{v}");
        let amount = v["total_amount"].as_f64().unwrap();
        (amount * 1e8).round() as u64
    }

    /// Unspent outputs of a descriptor, from Core's UTXO set: (txid, vout, sats, height, coinbase).
    pub fn scan_unspents(&self, desc: &str) -> Vec<(String, u32, u64, u32, bool)> {
        let v = self.rpc("scantxoutset", json!(["start", [self.checksummed(desc)]]));
        v["unspents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["txid"].as_str().unwrap().to_string(),
                    u["vout"].as_u64().unwrap() as u32,
                    (u["amount"].as_f64().unwrap() * 1e8).round() as u64,
                    u["height"].as_u64().unwrap() as u32,
                    u["coinbase"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = self.try_rpc("stop", json!([]));
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Keys of the test: an xprv per role, from fixed seeds.
pub fn xprv(seed: u8) -> Xpriv {
    Xpriv::new_master(bitcoin::Network::Regtest, &[seed; 32]).unwrap()
}

pub fn xpub(x: &Xpriv) -> Xpub {
    Xpub::from_priv(&Secp256k1::new(), x)
}

/// A coin to spend: outpoint, value and the private descriptor that can sign for it.
#[derive(Debug, Clone)]
pub struct Coin {
    pub txid: String,
    pub vout: u32,
    pub sats: u64,
    pub signer: String,
}

fn btc(sats: u64) -> Value {
    // Exact decimal for Core's amount parser.
    serde_json::from_str(&format!("{}.{:08}", sats / 100_000_000, sats % 100_000_000)).unwrap()
}

/// The faucet: coinbase outputs to a P2WPKH key, spent with `signrawtransactionwithkey`.
pub struct Faucet {
    pub key_wif: String,
    pub address: String,
    pub desc: String,
    used: std::collections::HashSet<(String, u32)>,
}

impl Faucet {
    pub fn new(node: &Node) -> Faucet {
        let x = xprv(200);
        let sk = x
            .derive_priv(&Secp256k1::new(), &"m/0".parse::<DerivationPath>().unwrap())
            .unwrap();
        let wif = bitcoin::PrivateKey::new(sk.private_key, bitcoin::Network::Regtest).to_wif();
        let desc = format!(
            "wpkh({})",
            xpub(&x)
                .derive_pub(&Secp256k1::new(), &"m/0".parse::<DerivationPath>().unwrap())
                .unwrap()
                .public_key
        );
        let address = node.address(&desc, None);
        Faucet {
            key_wif: wif,
            address,
            desc,
            used: Default::default(),
        }
    }

    /// Pays `outputs` (address, sats) from one mature coinbase of the faucet; change back to it.
    pub fn pay(&mut self, node: &Node, outputs: &[(&str, u64)]) -> String {
        let tip = node.height();
        let total: u64 = outputs.iter().map(|o| o.1).sum();
        let coin = node
            .scan_unspents(&self.desc)
            .into_iter()
            .filter(|u| !self.used.contains(&(u.0.clone(), u.1)))
            .filter(|u| !u.4 || u.3 + 100 <= tip)
            .find(|u| u.2 > total + 100_000)
            .expect("a mature faucet coin");
        self.used.insert((coin.0.clone(), coin.1));
        let mut outs = serde_json::Map::new();
        for (a, s) in outputs {
            let prev = outs
                .get(*a)
                .map(|v| (v.as_f64().unwrap() * 1e8).round() as u64)
                .unwrap_or(0);
            outs.insert(a.to_string(), btc(prev + s));
        }
        let change = coin.2 - total - 10_000;
        outs.insert(self.address.clone(), btc(change));
        let raw = node.rpc(
            "createrawtransaction",
            json!([[{"txid": coin.0, "vout": coin.1}], Value::Object(outs)]),
        );
        let spk = node.rpc("validateaddress", json!([self.address]))["scriptPubKey"].clone();
        let signed = node.rpc(
            "signrawtransactionwithkey",
            json!([raw, [self.key_wif], [{"txid": coin.0, "vout": coin.1, "scriptPubKey": spk, "amount": btc(coin.2)}]]),
        );
        assert_eq!(signed["complete"], json!(true), "{signed}");
        node.rpc("sendrawtransaction", json!([signed["hex"]]))
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// Spends `coins` to `outputs` with createpsbt + descriptorprocesspsbt (private descriptors,
/// so every script type, P2TR key path included) + sendrawtransaction. The fee is what the
/// outputs leave.
pub fn spend(node: &Node, coins: &[Coin], outputs: &[(String, u64)]) -> String {
    let ins: Vec<Value> = coins
        .iter()
        .map(|c| json!({"txid": c.txid, "vout": c.vout}))
        .collect();
    let outs: Vec<Value> = outputs
        .iter()
        .map(|(a, s)| json!({ a.clone(): btc(*s) }))
        .collect();
    let psbt = node.rpc("createpsbt", json!([ins, outs]));
    let descs: Vec<Value> = coins
        .iter()
        .map(|c| json!(node.checksummed(&c.signer)))
        .collect();
    let psbt = node.rpc("utxoupdatepsbt", json!([psbt, descs]));
    let done = node.rpc(
        "descriptorprocesspsbt",
        json!([psbt, descs, "DEFAULT", true, true]),
    );
    assert_eq!(done["complete"], json!(true), "{done}");
    node.rpc("sendrawtransaction", json!([done["hex"]]))
        .as_str()
        .unwrap()
        .to_string()
}

/// The vout of `address` in transaction `txid` (mempool or txindex).
pub fn vout_of(node: &Node, txid: &str, address: &str) -> (u32, u64) {
    let tx = node.rpc("getrawtransaction", json!([txid, 1]));
    for o in tx["vout"].as_array().unwrap() {
        if o["scriptPubKey"]["address"].as_str() == Some(address) {
            return (
                o["n"].as_u64().unwrap() as u32,
                (o["value"].as_f64().unwrap() * 1e8).round() as u64,
            );
        }
    }
    panic!("{address} not paid by {txid}");
}

// ---- tesoro CLI ----

pub fn err(dir: &Path, args: &[&str]) -> String {
    let out = tesoro(dir, args);
    assert!(!out.status.success(), "tesoro {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}
