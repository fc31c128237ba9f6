//! `tesoro sync` against a real Bitcoin Core node (regtest, started by the test on a free
//! loopback port with a temporary datadir). A history of payments to watched descriptors and
//! bare addresses of every script type, spends, a consolidation and coinbase payouts is built
//! with raw-transaction RPCs (the node has no wallet); then every source (blocks dir with the
//! node running and stopped, RPC, REST) must give the balance Core's own `scantxoutset` gives,
//! at the tip and at earlier heights, through reorgs and `--follow`.

mod node_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bitcoin::bip32::Xpriv;
use node_support::*;
use serde_json::json;

/// Script types, as descriptor wrappers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Wpkh,
    ShWpkh,
    WshMulti,
    Tr,
    Pkh,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Wpkh,
        Kind::ShWpkh,
        Kind::WshMulti,
        Kind::Tr,
        Kind::Pkh,
    ];

    fn wrap(self, keys: &[String]) -> String {
        match self {
            Kind::Wpkh => format!("wpkh({})", keys[0]),
            Kind::ShWpkh => format!("sh(wpkh({}))", keys[0]),
            Kind::WshMulti => format!("wsh(sortedmulti(2,{}))", keys.join(",")),
            Kind::Tr => format!("tr({})", keys[0]),
            Kind::Pkh => format!("pkh({})", keys[0]),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Wpkh => "wpkh",
            Kind::ShWpkh => "shwpkh",
            Kind::WshMulti => "wsh",
            Kind::Tr => "tr",
            Kind::Pkh => "pkh",
        }
    }
}

/// A watched owner: a descriptor wallet (ranged, two keychains) or a bare address.
struct Owner {
    name: String,
    kind: Kind,
    keys: Vec<Xpriv>,
    bare: bool,
}

impl Owner {
    fn new(kind: Kind, bare: bool, seed: u8) -> Owner {
        let n = if kind == Kind::WshMulti { 3 } else { 1 };
        Owner {
            name: format!("{}-{}", if bare { "a" } else { "w" }, kind.name()),
            kind,
            keys: (0..n).map(|i| xprv(seed.wrapping_add(i))).collect(),
            bare,
        }
    }

    /// Public descriptor of keychain `k` (ranged) or of the bare address.
    fn public(&self, k: u32) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|x| {
                if self.bare {
                    format!("{}/9/7", xpub(x))
                } else {
                    format!("{}/{k}/*", xpub(x))
                }
            })
            .collect();
        self.kind.wrap(&keys)
    }

    /// Private descriptor for child `i` of keychain `k` (two of three keys for multisig).
    fn signer(&self, k: u32, i: u32) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(n, x)| {
                let path = if self.bare {
                    "9/7".to_string()
                } else {
                    format!("{k}/{i}")
                };
                if n < 2 {
                    format!("{x}/{path}")
                } else {
                    format!("{}/{path}", xpub(x))
                }
            })
            .collect();
        self.kind.wrap(&keys)
    }

    fn address(&self, node: &Node, k: u32, i: u32) -> String {
        if self.bare {
            node.address(&self.public(0), None)
        } else {
            node.address(&self.public(k), Some(i))
        }
    }

    fn scan_descs(&self) -> Vec<String> {
        if self.bare {
            vec![self.public(0)]
        } else {
            vec![self.public(0), self.public(1)]
        }
    }
}

struct History {
    owners: Vec<Owner>,
    /// Heights with expected balances (the tip is added by `expected`).
    checkpoints: Vec<u32>,
}

/// Core's balance of every owner at the current tip.
fn core_balances(node: &Node, owners: &[Owner]) -> BTreeMap<String, u64> {
    owners
        .iter()
        .map(|o| (o.name.clone(), node.scan_balance(&o.scan_descs())))
        .collect()
}

/// Core's balances at `height`: invalidate the block above it, scan, reconsider.
fn core_balances_at(node: &Node, owners: &[Owner], height: u32) -> BTreeMap<String, u64> {
    let tip = node.height();
    if height >= tip {
        return core_balances(node, owners);
    }
    let above = node.hash_at(height + 1);
    let tip_hash = node.hash_at(tip);
    node.rpc("invalidateblock", json!([above]));
    assert_eq!(node.height(), height);
    let b = core_balances(node, owners);
    node.rpc("reconsiderblock", json!([above]));
    assert_eq!(
        node.hash_at(node.height()),
        tip_hash,
        "reconsiderblock restored the tip"
    );
    b
}

struct Book {
    coins: Vec<(usize, Coin)>,
}

impl Book {
    fn take(&mut self, owner: usize) -> Coin {
        let i = self
            .coins
            .iter()
            .position(|(o, _)| *o == owner)
            .expect("a coin of the owner");
        self.coins.remove(i).1
    }
    /// The newest coin of `owner`.
    fn take_last(&mut self, owner: usize) -> Coin {
        let i = self
            .coins
            .iter()
            .rposition(|(o, _)| *o == owner)
            .expect("a coin of the owner");
        self.coins.remove(i).1
    }
    fn add(&mut self, node: &Node, owner: usize, txid: &str, address: &str, signer: String) {
        let (vout, sats) = vout_of(node, txid, address);
        self.coins.push((
            owner,
            Coin {
                txid: txid.to_string(),
                vout,
                sats,
                signer,
            },
        ));
    }
}

/// Builds the history on `node` (started with -txindex so PSBTs of legacy inputs get their
/// previous transactions). Returns the owners and the checkpoints.
fn build_history(node: &Node) -> History {
    let mut owners = Vec::new();
    for (i, k) in Kind::ALL.iter().enumerate() {
        owners.push(Owner::new(*k, false, 10 + 10 * i as u8));
    }
    for (i, k) in Kind::ALL.iter().enumerate() {
        owners.push(Owner::new(*k, true, 110 + 10 * i as u8));
    }
    let outside = node.address(&format!("wpkh({}/0)", xpub(&xprv(250))), None);
    let mut faucet = Faucet::new(node);
    node.mine(120, &faucet.address);
    let mut book = Book { coins: Vec::new() };

    // 121: the faucet pays every owner (wallets at ext/0, ext/1 and ext/4 past a gap).
    for (o, owner) in owners.iter().enumerate() {
        let a0 = owner.address(node, 0, 0);
        let a1 = owner.address(node, 0, 1);
        let a4 = owner.address(node, 0, 4);
        let pays: Vec<(&str, u64)> = if owner.bare {
            vec![(a0.as_str(), 70_000_000)]
        } else {
            vec![
                (a0.as_str(), 100_000_000),
                (a1.as_str(), 50_000_000),
                (a4.as_str(), 30_000_000),
            ]
        };
        let txid = faucet.pay(node, &pays);
        book.add(node, o, &txid, &a0, owner.signer(0, 0));
        if !owner.bare {
            book.add(node, o, &txid, &a1, owner.signer(0, 1));
            book.add(node, o, &txid, &a4, owner.signer(0, 4));
        }
    }
    node.mine(1, &faucet.address);
    let h1 = node.height();

    // 122: every owner pays outside, change to its internal keychain (bare: back to itself).
    for (o, owner) in owners.iter().enumerate() {
        let c = book.take(o);
        let change = owner.address(node, 1, 0);
        let txid = spend(
            node,
            std::slice::from_ref(&c),
            &[
                (outside.clone(), 20_000_000),
                (change.clone(), c.sats - 20_000_000 - 5_000),
            ],
        );
        book.add(node, o, &txid, &change, owner.signer(1, 0));
    }
    node.mine(1, &faucet.address);

    // 123: a consolidation of three owners' coins into w-tr, and a bare multisig paying a
    // wallet.
    let tr = owners.iter().position(|o| o.name == "w-tr").unwrap();
    let a_tr = owners.iter().position(|o| o.name == "a-tr").unwrap();
    let w_wpkh = owners.iter().position(|o| o.name == "w-wpkh").unwrap();
    let w_pkh = owners.iter().position(|o| o.name == "w-pkh").unwrap();
    let a_wsh = owners.iter().position(|o| o.name == "a-wsh").unwrap();
    let w_shwpkh = owners.iter().position(|o| o.name == "w-shwpkh").unwrap();
    let inputs = vec![book.take(w_wpkh), book.take(a_tr), book.take(w_pkh)];
    let total: u64 = inputs.iter().map(|c| c.sats).sum();
    let to = owners[tr].address(node, 0, 2);
    let txid = spend(node, &inputs, &[(to.clone(), total - 10_000)]);
    book.add(node, tr, &txid, &to, owners[tr].signer(0, 2));
    let c = book.take(a_wsh);
    let to = owners[w_shwpkh].address(node, 0, 3);
    let back = owners[a_wsh].address(node, 0, 0);
    let txid = spend(
        node,
        std::slice::from_ref(&c),
        &[
            (to.clone(), 20_000_000),
            (back.clone(), c.sats - 20_000_000 - 5_000),
        ],
    );
    book.add(node, w_shwpkh, &txid, &to, owners[w_shwpkh].signer(0, 3));
    node.mine(1, &faucet.address);
    let h3 = node.height();

    // 124, 125: coinbase payouts to a wallet (ext/5) and to a bare multisig address.
    node.mine(1, &owners[w_pkh].address(node, 0, 5));
    node.mine(1, &owners[a_wsh].address(node, 0, 0));

    // 126: more payments, a wallet spending its consolidated coin, a bare address spending.
    let w_wsh = owners.iter().position(|o| o.name == "w-wsh").unwrap();
    let a_wpkh = owners.iter().position(|o| o.name == "a-wpkh").unwrap();
    let a_pkh = owners.iter().position(|o| o.name == "a-pkh").unwrap();
    let a = owners[a_wpkh].address(node, 0, 0);
    let b = owners[w_wsh].address(node, 0, 1);
    faucet.pay(node, &[(a.as_str(), 12_345_678), (b.as_str(), 87_654_321)]);
    let c = book.take_last(tr);
    let to = owners[w_wsh].address(node, 0, 2);
    spend(
        node,
        std::slice::from_ref(&c),
        &[
            (to, 100_000_000),
            (outside.clone(), c.sats - 100_000_000 - 7_000),
        ],
    );
    let c = book.take(a_pkh);
    spend(
        node,
        std::slice::from_ref(&c),
        &[(outside.clone(), c.sats - 3_000)],
    );
    node.mine(1, &faucet.address);
    node.mine(2, &faucet.address);
    History {
        owners,
        checkpoints: vec![h1, h3],
    }
}

/// A fresh regtest database in `dir` watching every owner (entity SV).
fn register(dir: &Path, node: &Node, owners: &[Owner]) {
    ok(dir, &["init", "--network", "regtest"]);
    ok(dir, &["entity", "add", "Test state", "--code", "SV"]);
    for o in owners {
        if o.bare {
            let a = o.address(node, 0, 0);
            ok(
                dir,
                &[
                    "wallet",
                    "add",
                    "--entity",
                    "SV",
                    "--name",
                    &o.name,
                    "--addresses",
                    &a,
                ],
            );
        } else {
            ok(
                dir,
                &[
                    "wallet",
                    "add",
                    "--entity",
                    "SV",
                    "--name",
                    &o.name,
                    "--descriptor",
                    &o.public(0),
                    "--change-descriptor",
                    &o.public(1),
                ],
            );
        }
    }
}

fn rpc_source(node: &Node) -> Vec<String> {
    vec![
        "--source".into(),
        format!("rpc:{}", node.url()),
        "--rpc-cookie".into(),
        node.cookie().display().to_string(),
    ]
}

fn sync(dir: &Path, args: &[String]) -> serde_json::Value {
    let mut a: Vec<&str> = vec!["sync", "--json"];
    a.extend(args.iter().map(String::as_str));
    serde_json::from_str(&ok(dir, &a)).unwrap()
}

fn check_balances(
    dir: &Path,
    label: &str,
    expected: &BTreeMap<u32, BTreeMap<String, u64>>,
    tip: u32,
) {
    for (&h, want) in expected {
        let got = balances(dir, if h == tip { None } else { Some(h) });
        assert_eq!(
            &got, want,
            "{label}: balances at height {h} differ from scantxoutset"
        );
    }
}

#[test]
fn every_source_gives_scantxoutset_balances_through_reorgs_and_follow() {
    let mut node = Node::start(&["-txindex"]);
    let xor = std::fs::read(node.blocks_dir().join("xor.dat")).unwrap();
    assert!(
        xor.iter().any(|&b| b != 0),
        "a fresh datadir gets a random xor key"
    );
    let hist = build_history(&node);
    let tip = node.height();
    let mut expected = BTreeMap::new();
    for &h in &hist.checkpoints {
        expected.insert(h, core_balances_at(&node, &hist.owners, h));
    }
    expected.insert(tip, core_balances(&node, &hist.owners));
    assert!(
        expected[&tip].values().filter(|&&v| v > 0).count() >= 8,
        "the history leaves coins with most owners: {:?}",
        expected[&tip]
    );

    // RPC, REST, and the blocks dir while the node runs.
    let rpc = tempfile::tempdir().unwrap();
    let rest = tempfile::tempdir().unwrap();
    let dir_live = tempfile::tempdir().unwrap();
    for d in [&rpc, &rest, &dir_live] {
        register(d.path(), &node, &hist.owners);
    }
    let s = sync(rpc.path(), &rpc_source(&node));
    assert_eq!(s["tip_height"], json!(tip));
    let mut rest_args = rpc_source(&node);
    rest_args.push("--rest".into());
    sync(rest.path(), &rest_args);
    sync(
        dir_live.path(),
        &[
            "--source".into(),
            format!("core-dir:{}", node.blocks_dir().display()),
        ],
    );
    for (label, d) in [
        ("rpc", &rpc),
        ("rest", &rest),
        ("core-dir (node running)", &dir_live),
    ] {
        check_balances(d.path(), label, &expected, tip);
    }
    let reference = state(rpc.path());
    assert_eq!(
        state(rest.path()),
        reference,
        "REST and RPC store the same state"
    );
    assert_eq!(
        state(dir_live.path()),
        reference,
        "blocks dir and RPC store the same state"
    );

    // A reorg: invalidate the last two blocks, mine a longer branch with another payment.
    let mut faucet = Faucet::new(&node);
    let fork = tip - 1;
    node.rpc("invalidateblock", json!([node.hash_at(fork)]));
    let w_tr = hist.owners.iter().find(|o| o.name == "w-tr").unwrap();
    let paid = w_tr.address(&node, 0, 6);
    faucet.pay(&node, &[(paid.as_str(), 44_000_000)]);
    node.mine(3, &faucet.address);
    let tip2 = node.height();
    assert_eq!(tip2, tip + 1);
    let s = sync(rpc.path(), &rpc_source(&node));
    assert!(s["blocks_undone"].as_u64().unwrap() >= 2, "{s}");
    let want = core_balances(&node, &hist.owners);
    assert_eq!(
        balances(rpc.path(), None),
        want,
        "after the reorg: scantxoutset"
    );
    let fresh = tempfile::tempdir().unwrap();
    register(fresh.path(), &node, &hist.owners);
    sync(fresh.path(), &rpc_source(&node));
    assert_eq!(
        state(rpc.path()),
        state(fresh.path()),
        "reorged == fresh sync"
    );

    // --follow over REST: another reorg while it runs, then Ctrl-C.
    let mut args: Vec<String> = vec![
        "sync".into(),
        "--follow".into(),
        "--poll".into(),
        "0.2".into(),
    ];
    args.extend(rest_args.clone());
    let mut follow = Command::new(BIN)
        .current_dir(rest.path())
        .env_remove("TESORO_DB")
        .env_remove("TESORO_CONFIG")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    node.rpc("invalidateblock", json!([node.hash_at(tip2 - 2)]));
    let w_wpkh = hist.owners.iter().find(|o| o.name == "w-wpkh").unwrap();
    let paid = w_wpkh.address(&node, 1, 3);
    faucet.pay(&node, &[(paid.as_str(), 55_000_000)]);
    node.mine(4, &faucet.address);
    let want = core_balances(&node, &hist.owners);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if balances(rest.path(), None) == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "--follow did not reach the new tip"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let st = Command::new("kill")
        .args(["-INT", &follow.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = follow.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = follow.kill();
            panic!("--follow did not stop on Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = follow.wait_with_output().unwrap();
    assert!(
        status.success(),
        "--follow exits cleanly on Ctrl-C: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = tempfile::tempdir().unwrap();
    register(fresh.path(), &node, &hist.owners);
    sync(fresh.path(), &rpc_source(&node));
    assert_eq!(
        state(rest.path()),
        state(fresh.path()),
        "followed == fresh sync"
    );

    // The blocks dir with the node stopped: same state, stale blocks of both reorgs included
    // in the files.
    let dir_stopped = tempfile::tempdir().unwrap();
    register(dir_stopped.path(), &node, &hist.owners);
    node.stop();
    sync(
        dir_stopped.path(),
        &[
            "--source".into(),
            format!("core-dir:{}", node.blocks_dir().display()),
        ],
    );
    assert_eq!(
        state(dir_stopped.path()),
        state(fresh.path()),
        "blocks dir (node stopped)"
    );
}
