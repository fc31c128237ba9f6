//! `tesoro sync` against a real Bitcoin Core node when things go wrong: wrong or missing
//! credentials, a node of another network, no node at all, REST switched off, a pruned node,
//! a node stopped in the middle of a sync (and the run after it), and both kinds of blocks
//! dir obfuscation (`-blocksxor=0` here; the random key in node_sync.rs).

mod node_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bitcoin::hashes::{hmac, sha256, Hash, HashEngine};
use node_support::*;
use serde_json::json;

/// A bare P2WPKH address owned by the test, watched under the name "payout".
fn payout(node: &Node) -> String {
    node.address(&format!("wpkh({}/3/3)", xpub(&xprv(77))), None)
}

fn register(dir: &Path, address: &str) {
    ok(dir, &["init", "--network", "regtest"]);
    ok(dir, &["entity", "add", "Test state", "--code", "SV"]);
    ok(
        dir,
        &[
            "wallet",
            "add",
            "--entity",
            "SV",
            "--name",
            "payout",
            "--addresses",
            address,
        ],
    );
}

fn core_balance(node: &Node, address: &str) -> u64 {
    node.scan_balance(&[format!("addr({address})")])
}

#[test]
fn credentials_network_rest_off_and_no_node_give_clear_errors() {
    // -rpcauth for a user with a password file, as share/rpcauth/rpcauth.py computes it.
    let (salt, password) = ("5f1e2d3c4b5a69788796a5b4c3d2e1f0", "correct horse");
    let mut e = hmac::HmacEngine::<sha256::Hash>::new(salt.as_bytes());
    e.input(password.as_bytes());
    let mac = hmac::Hmac::<sha256::Hash>::from_engine(e);
    let node = Node::start(&[&format!("-rpcauth=tesoro:{salt}${mac}"), "-rest=0"]);
    let addr = payout(&node);
    node.mine(3, &addr);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    register(dir, &addr);
    let source = format!("rpc:{}", node.url());

    // A wrong cookie: 401, named with the URL and what to check.
    let bad = dir.join("bad.cookie");
    std::fs::write(&bad, "__cookie__:0000").unwrap();
    let e = err(
        dir,
        &[
            "sync",
            "--source",
            &source,
            "--rpc-cookie",
            bad.to_str().unwrap(),
        ],
    );
    assert!(
        e.contains(&node.url()) && e.contains("401") && e.contains("--rpc-cookie"),
        "{e}"
    );
    // No cookie file where it is said to be.
    let missing = dir.join("nowhere/.cookie");
    let e = err(
        dir,
        &[
            "sync",
            "--source",
            &source,
            "--rpc-cookie",
            missing.to_str().unwrap(),
        ],
    );
    assert!(
        e.contains("cookie file") && e.contains("nowhere/.cookie"),
        "{e}"
    );
    // User and password file: a wrong password is refused, the right one works.
    let pw = dir.join("pw");
    std::fs::write(&pw, "wrong\n").unwrap();
    let user_args = |pwfile: &Path| {
        vec![
            "sync".to_string(),
            "--json".into(),
            "--source".into(),
            source.clone(),
            "--rpc-user".into(),
            "tesoro".into(),
            "--rpc-password-file".into(),
            pwfile.display().to_string(),
        ]
    };
    let a = user_args(&pw);
    let e = err(dir, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("401"), "{e}");
    std::fs::write(&pw, format!("{password}\n")).unwrap();
    let a = user_args(&pw);
    let s: serde_json::Value =
        serde_json::from_str(&ok(dir, &a.iter().map(String::as_str).collect::<Vec<_>>())).unwrap();
    assert_eq!(s["tip_height"], json!(3));
    assert_eq!(balances(dir, None)["payout"], core_balance(&node, &addr));

    // REST asked for but the node runs with -rest=0.
    let cookie = node.cookie().display().to_string();
    let fresh = tempfile::tempdir().unwrap();
    register(fresh.path(), &addr);
    let e = err(
        fresh.path(),
        &[
            "sync",
            "--source",
            &source,
            "--rpc-cookie",
            &cookie,
            "--rest",
        ],
    );
    assert!(e.contains("-rest") && e.contains(&node.url()), "{e}");

    // A mainnet database against this regtest node.
    let main = tempfile::tempdir().unwrap();
    ok(main.path(), &["init", "--network", "mainnet"]);
    let e = err(
        main.path(),
        &["sync", "--source", &source, "--rpc-cookie", &cookie],
    );
    assert!(
        e.contains("regtest") && e.contains("mainnet") && e.contains(&node.url()),
        "{e}"
    );

    // Nothing listening.
    let port = free_port();
    let e = err(
        dir,
        &[
            "sync",
            "--source",
            &format!("rpc:http://127.0.0.1:{port}"),
            "--rpc-cookie",
            &cookie,
        ],
    );
    assert!(
        e.contains(&format!("http://127.0.0.1:{port}")) && e.contains("cannot connect"),
        "{e}"
    );
}

#[test]
fn a_node_stopped_mid_sync_gives_a_clear_error_and_the_next_run_resumes() {
    let mut node = Node::start(&[]);
    let addr = payout(&node);
    // Every block pays the watched address, so sync stores a batch every 256 blocks.
    for _ in 0..6 {
        node.mine(500, &addr);
    }
    let tip = node.height();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    register(dir, &addr);
    let cookie = node.cookie().display().to_string();
    let source = format!("rpc:{}", node.url());
    let long_lived = tesoro_chain::rpc::CoreRpc::new(
        &node.url(),
        &tesoro_chain::rpc::RpcAuth::Cookie(node.cookie()),
        false,
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .env_remove("TESORO_DB")
        .env_remove("TESORO_CONFIG")
        .args(["sync", "--source", &source, "--rpc-cookie", &cookie])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop the node once some blocks are stored. (A SIGKILL would also lose the node's own
    // unflushed block index, so its chain would restart shorter: a different test.)
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if stored_payout(dir) > 0 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "sync finished before the node could be stopped"
        );
        assert!(Instant::now() < deadline, "sync stored nothing in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    node.stop();
    let out = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "sync must fail when its node dies");
    assert!(e.contains(&node.url()), "{e}");
    let stored = ok(dir, &["balance", "--json"]);
    assert!(!stored.is_empty());

    eprintln!("sync as the node stopped: {e}");
    assert!(!e.contains("EOF while parsing"), "{e}");
    // The node comes back (a new cookie): the next run resumes and ends where a fresh sync does.
    node.restart();
    // A client made before the restart (as --follow keeps) re-reads the new cookie on 401.
    assert_eq!(long_lived.info().unwrap().blocks, tip);
    let cookie = node.cookie().display().to_string();
    let s: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &[
            "sync",
            "--json",
            "--source",
            &source,
            "--rpc-cookie",
            &cookie,
        ],
    ))
    .unwrap();
    assert_eq!(s["tip_height"], json!(tip));
    assert!(
        s["blocks_scanned"].as_u64().unwrap() < u64::from(tip) + 1,
        "{s}"
    );
    assert_eq!(balances(dir, None)["payout"], core_balance(&node, &addr));
    let fresh = tempfile::tempdir().unwrap();
    register(fresh.path(), &addr);
    ok(
        fresh.path(),
        &[
            "sync",
            "--source",
            &source,
            "--rpc-cookie",
            &cookie,
            "--rest",
        ],
    );
    assert_eq!(state(dir), state(fresh.path()), "resumed == fresh");
}

#[test]
fn blocksxor_zero_and_a_pruned_node() {
    // -blocksxor=0: Core writes a zero key; the blocks dir reads as plain files.
    let node = Node::start(&["-blocksxor=0"]);
    let xor = std::fs::read(node.blocks_dir().join("xor.dat")).unwrap_or_default();
    assert!(xor.iter().all(|&b| b == 0), "{xor:?}");
    let addr = payout(&node);
    node.mine(5, &addr);
    node.mine(101, &payout_other(&node));
    let work = tempfile::tempdir().unwrap();
    register(work.path(), &addr);
    ok(
        work.path(),
        &[
            "sync",
            "--source",
            &format!("core-dir:{}", node.blocks_dir().display()),
        ],
    );
    assert_eq!(
        balances(work.path(), None)["payout"],
        core_balance(&node, &addr)
    );
    drop(node);

    // A pruned node: block files of tiny size (-fastprune), pruned by hand below height ~400.
    let node = Node::start(&["-prune=1", "-fastprune"]);
    let addr = payout(&node);
    for _ in 0..7 {
        node.mine(100, &addr);
    }
    let pruned = node.rpc("pruneblockchain", json!([400])).as_u64().unwrap();
    assert!(pruned > 0, "something was pruned");
    let e = node
        .try_rpc("getblock", json!([node.hash_at(1), 0]))
        .unwrap_err();
    assert!(e.contains("pruned"), "{e}");
    let cookie = node.cookie().display().to_string();
    let source = format!("rpc:{}", node.url());
    for rest in [false, true] {
        let d = tempfile::tempdir().unwrap();
        register(d.path(), &addr);
        let mut args = vec!["sync", "--source", &source, "--rpc-cookie", &cookie];
        if rest {
            args.push("--rest");
        }
        let e = err(d.path(), &args);
        assert!(
            e.contains("pruned") && e.contains(&node.url()),
            "rest={rest}: {e}"
        );
    }
    // Its blocks dir lacks the start of the chain.
    let d = tempfile::tempdir().unwrap();
    register(d.path(), &addr);
    let e = err(
        d.path(),
        &[
            "sync",
            "--source",
            &format!("core-dir:{}", node.blocks_dir().display()),
        ],
    );
    assert!(e.contains("pruned") || e.contains("genesis"), "{e}");
}

/// The stored balance of "payout", 0 while nothing is stored yet.
fn stored_payout(dir: &Path) -> u64 {
    let out = tesoro(dir, &["balance", "--by", "wallet", "--json"]);
    if !out.status.success() {
        return 0;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["groups"]
        .as_array()
        .and_then(|g| g.first())
        .and_then(|g| g["sats"].as_u64())
        .unwrap_or(0)
}

fn payout_other(node: &Node) -> String {
    node.address(&format!("wpkh({}/3/4)", xpub(&xprv(77))), None)
}

/// A block the node does not know (yet): Core answers `getblock` of an unknown hash with
/// error -5 "Block not found" (REST: 404 naming the hash) and `getblockhash` past its tip with
/// -8 "Block height out of range". The RPC source turns the first into an error that names
/// the block, its height and what to do, over JSON-RPC and over REST, and the second into
/// "no block there yet".
#[test]
fn a_block_not_yet_known_to_the_node_is_named_clearly() {
    use tesoro_chain::rpc::{CoreRpc, RpcAuth, RpcError};
    let node = Node::start(&[]);
    let addr = payout(&node);
    node.mine(3, &addr);
    let unknown = bitcoin::BlockHash::from_byte_array([0xab; 32]);
    let core = node
        .try_rpc("getblock", json!([unknown.to_string(), 0]))
        .unwrap_err();
    assert!(
        core.contains("-5") && core.contains("Block not found"),
        "{core}"
    );
    for rest in [false, true] {
        let rpc = CoreRpc::new(&node.url(), &RpcAuth::Cookie(node.cookie()), rest).unwrap();
        let tip = node.height();
        assert_eq!(rpc.hash_at(tip + 5).unwrap(), None, "rest {rest}");
        assert!(rpc.hash_at(tip).unwrap().is_some());
        let e = rpc.block(unknown, tip + 1, Vec::new()).unwrap_err();
        assert!(
            matches!(e, RpcError::BlockNotFound { .. }),
            "rest {rest}: {e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&unknown.to_string())
                && msg.contains(&format!("height {}", tip + 1))
                && msg.contains("not known to the node")
                && msg.contains("run sync again"),
            "rest {rest}: {msg}"
        );
        if !rest {
            assert!(
                msg.contains("-5") && msg.contains("Block not found"),
                "{msg}"
            );
        }
    }
}
