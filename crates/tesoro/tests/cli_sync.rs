//! `tesoro sync --source core-dir:` end to end: a chain the test-chain generator wrote as
//! Bitcoin Core writes it, synced through the real binary, must give the balances the
//! generator computed on its own, at every checkpoint; a sync killed at any moment resumes
//! to the same state; a chain replaced by another is undone exactly.

mod office;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use office::{balances, ok, state, tesoro, BIN};
use tesoro_testchain::{generate, Expected, Scenario};

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tesoro-testchain/scenarios")
        .join(name);
    Scenario::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A fresh regtest database with the scenario's wallets and addresses under entity SV.
fn register(dir: &Path, e: &Expected) {
    ok(dir, &["init", "--network", "regtest"]);
    ok(dir, &["entity", "add", "Test state", "--code", "SV"]);
    for w in &e.wallets {
        let gap = w.gap_limit.to_string();
        ok(
            dir,
            &[
                "wallet",
                "add",
                "--entity",
                "SV",
                "--name",
                &w.name,
                "--descriptor",
                &w.external,
                "--change-descriptor",
                &w.internal,
                "--gap-limit",
                &gap,
            ],
        );
    }
    for a in &e.addresses {
        ok(
            dir,
            &[
                "wallet",
                "add",
                "--entity",
                "SV",
                "--name",
                &a.name,
                "--addresses",
                &a.address,
            ],
        );
    }
}

struct Chain {
    _tmp: tempfile::TempDir,
    blocks: PathBuf,
    expected: Expected,
}

fn chain(name: &str, seed: Option<u64>) -> Chain {
    let tmp = tempfile::tempdir().unwrap();
    let mut sc = scenario(name);
    if let Some(s) = seed {
        sc.seed = s;
    }
    let g = generate(&sc, tmp.path()).unwrap();
    Chain {
        blocks: g.blocks_dir.clone(),
        expected: g.expected,
        _tmp: tmp,
    }
}

#[test]
fn balances_match_the_generator_at_every_checkpoint() {
    let c = chain("reserve.toml", None);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    register(dir, &c.expected);
    let source = format!("core-dir:{}", c.blocks.display());
    // Sync in steps, checking each checkpoint as the tip…
    for cp in &c.expected.checkpoints {
        let to = cp.height.to_string();
        let out = ok(dir, &["sync", "--source", &source, "--to", &to, "--json"]);
        let s: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(s["tip_height"], cp.height);
        assert_eq!(s["tip_hash"], cp.hash.to_string());
        assert_eq!(balances(dir, None), cp.balances, "tip at {}", cp.height);
    }
    // …and every checkpoint again as a past height once fully synced.
    ok(dir, &["sync", "--source", &source]);
    for cp in &c.expected.checkpoints {
        assert_eq!(
            balances(dir, Some(cp.height)),
            cp.balances,
            "--at {}",
            cp.height
        );
        let v: serde_json::Value = serde_json::from_str(&ok(
            dir,
            &[
                "balance",
                "--by",
                "address",
                "--json",
                "--at",
                &cp.height.to_string(),
            ],
        ))
        .unwrap();
        let by_addr: std::collections::BTreeMap<String, u64> = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["sats"].as_u64().unwrap() > 0)
            .map(|g| {
                (
                    g["key"].as_str().unwrap().to_string(),
                    g["sats"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(by_addr, cp.addresses, "addresses --at {}", cp.height);
    }
    // Entity roll-up and the human table agree with the per-wallet figures.
    let tip = c.expected.checkpoints.last().unwrap();
    let total: u64 = tip.balances.values().sum();
    let v: serde_json::Value = serde_json::from_str(&ok(dir, &["balance", "--json"])).unwrap();
    assert_eq!(v["total_sats"], total);
    assert_eq!(v["groups"][0]["key"], "SV");
    assert_eq!(v["groups"][0]["sats"], total);
    let table = ok(dir, &["balance"]);
    assert!(table.contains("SV") && table.contains("total:"), "{table}");
    // Syncing again does nothing.
    let again: serde_json::Value =
        serde_json::from_str(&ok(dir, &["sync", "--source", &source, "--json"])).unwrap();
    assert_eq!(again["blocks_scanned"], 0);
}

#[test]
fn killed_syncs_resume_to_the_same_state() {
    let c = chain("reserve.toml", None);
    let fresh = tempfile::tempdir().unwrap();
    register(fresh.path(), &c.expected);
    let source = format!("core-dir:{}", c.blocks.display());
    ok(fresh.path(), &["sync", "--source", &source]);
    let want = state(fresh.path());
    for delay_ms in [5u64, 20, 40, 80, 150] {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        register(dir, &c.expected);
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args(["sync", "--source", &source])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL: no chance to clean up
        let _ = child.wait();
        ok(dir, &["sync", "--source", &source]);
        assert_eq!(state(dir), want, "killed after {delay_ms} ms");
    }
}

#[test]
fn a_replaced_chain_is_undone_exactly_and_late_wallets_are_caught_up() {
    // Chain A, then chain B of another seed (sharing only the regtest genesis): the second
    // sync must undo A completely and end where a fresh sync of B ends.
    let a = chain("reserve.toml", Some(1));
    let b = chain("reserve.toml", Some(2));
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    register(dir, &a.expected);
    // B's wallets too (different seed, different keys), but one of them only after A's sync.
    let late = &b.expected.wallets[0];
    for w in &b.expected.wallets[1..] {
        ok(
            dir,
            &[
                "wallet",
                "add",
                "--entity",
                "SV",
                "--name",
                &format!("b-{}", w.name),
                "--descriptor",
                &w.external,
                "--change-descriptor",
                &w.internal,
            ],
        );
    }
    for ad in &b.expected.addresses {
        ok(
            dir,
            &[
                "wallet",
                "add",
                "--entity",
                "SV",
                "--name",
                &format!("b-{}", ad.name),
                "--addresses",
                &ad.address,
            ],
        );
    }
    ok(
        dir,
        &[
            "sync",
            "--source",
            &format!("core-dir:{}", a.blocks.display()),
        ],
    );
    ok(
        dir,
        &[
            "wallet",
            "add",
            "--entity",
            "SV",
            "--name",
            &format!("b-{}", late.name),
            "--descriptor",
            &late.external,
            "--change-descriptor",
            &late.internal,
        ],
    );
    let out: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &[
            "sync",
            "--source",
            &format!("core-dir:{}", b.blocks.display()),
            "--json",
        ],
    ))
    .unwrap();
    assert!(out["blocks_undone"].as_u64().unwrap() > 100, "{out}");
    let got = balances(dir, None);
    let tip = b.expected.checkpoints.last().unwrap();
    for (name, sats) in &tip.balances {
        assert_eq!(got[&format!("b-{name}")], *sats, "{name}");
    }
    for w in &a.expected.wallets {
        assert_eq!(got[&w.name], 0, "{} kept coins of the undone chain", w.name);
    }
}

#[test]
fn sync_errors_say_what_and_where() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    ok(dir, &["init", "--network", "regtest"]);
    let out = tesoro(dir, &["sync", "--source", "core-dir:/nonexistent/blocks"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/blocks"), "{err}");
    let out = tesoro(dir, &["sync", "--source", "ftp:x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("core-dir:PATH"));
    // Mainnet blocks in a regtest database: the magic does not match.
    let mainnet = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/blocks/mainnet-blk-h0-438.dat"),
        mainnet.path().join("blk00000.dat"),
    )
    .unwrap();
    let out = tesoro(
        dir,
        &[
            "sync",
            "--source",
            &format!("core-dir:{}", mainnet.path().display()),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("blk00000.dat") || err.contains("regtest") || err.contains("magic"),
        "{err}"
    );
    let out = tesoro(dir, &["balance"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("tesoro sync"));
}

/// The best chain of a generated blocks dir as raw blocks, genesis first.
fn best_chain_blocks(blocks: &Path) -> Vec<Vec<u8>> {
    let dir = tesoro_chain::BlocksDir::open(blocks, bitcoin::Network::Regtest).unwrap();
    let index = dir.index().unwrap();
    dir.pending_from(&index, 0)
        .unwrap()
        .map(|p| p.read(Vec::new()).unwrap().bytes)
        .collect()
}

#[test]
fn esplora_source_reaches_the_state_of_the_blocks_dir_and_follows_a_replaced_chain() {
    use tesoro_testchain::esplora_server::EsploraServer;
    let a = chain("reserve.toml", None);
    let server =
        EsploraServer::start(best_chain_blocks(&a.blocks), bitcoin::Network::Regtest).unwrap();
    let esplora = format!("esplora:{}", server.url());

    let by_dir = tempfile::tempdir().unwrap();
    register(by_dir.path(), &a.expected);
    ok(
        by_dir.path(),
        &[
            "sync",
            "--source",
            &format!("core-dir:{}", a.blocks.display()),
        ],
    );
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    register(dir, &a.expected);
    // In steps, as the blocks dir test does: every checkpoint as the tip.
    for cp in &a.expected.checkpoints {
        let to = cp.height.to_string();
        let s: serde_json::Value = serde_json::from_str(&ok(
            dir,
            &["sync", "--source", &esplora, "--to", &to, "--json"],
        ))
        .unwrap();
        assert_eq!(s["tip_hash"], cp.hash.to_string());
        assert_eq!(
            balances(dir, None),
            cp.balances,
            "esplora, tip at {}",
            cp.height
        );
    }
    assert_eq!(state(dir), state(by_dir.path()), "esplora == blocks dir");

    // The server's chain is replaced by another (a deep reorg between two syncs).
    let b = chain("reserve.toml", Some(99));
    server.set_chain(best_chain_blocks(&b.blocks)).unwrap();
    let s: serde_json::Value =
        serde_json::from_str(&ok(dir, &["sync", "--source", &esplora, "--json"])).unwrap();
    assert!(s["blocks_undone"].as_u64().unwrap() > 0, "{s}");
    let fresh = tempfile::tempdir().unwrap();
    register(fresh.path(), &a.expected);
    ok(
        fresh.path(),
        &[
            "sync",
            "--source",
            &format!("core-dir:{}", b.blocks.display()),
        ],
    );
    assert_eq!(
        state(dir),
        state(fresh.path()),
        "after the reorg == fresh sync"
    );

    // A server of another network, and no server at all.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tesoro(
        dir,
        &[
            "sync",
            "--source",
            &format!("esplora:http://127.0.0.1:{port}"),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("connect"),
        "{err}"
    );
}
