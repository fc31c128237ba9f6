//! Shared by the CLI tests: run the real `tesoro` binary, and set up an office database
//! watching a chain the test-chain generator wrote.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tesoro_testchain::{generate, Expected, Scenario};

pub const BIN: &str = env!("CARGO_BIN_EXE_tesoro");

/// Runs `tesoro` in `dir`, ignoring the caller's TESORO_* environment.
pub fn tesoro(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .env_remove("TESORO_DB")
        .env_remove("TESORO_CONFIG")
        .args(args)
        .output()
        .unwrap()
}

/// Runs `tesoro` and returns stdout; fails the test on a non-zero exit.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = tesoro(dir, args);
    assert!(
        out.status.success(),
        "tesoro {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `tesoro` expecting failure; returns stdout and stderr together.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let out = tesoro(dir, args);
    assert!(!out.status.success(), "tesoro {args:?} should fail");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Balance per wallet name (without the `SV/` prefix) at the tip or a height.
pub fn balances(dir: &Path, at: Option<u32>) -> std::collections::BTreeMap<String, u64> {
    let mut args = vec!["balance", "--by", "wallet", "--json"];
    let h;
    if let Some(at) = at {
        h = at.to_string();
        args.extend(["--at", &h]);
    }
    let v: serde_json::Value = serde_json::from_str(&ok(dir, &args)).unwrap();
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("SV/")
                    .to_string(),
                g["sats"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// utxos, history and per-address balances: the whole stored state as text.
pub fn state(dir: &Path) -> (String, String, String) {
    (
        ok(dir, &["utxos", "--json"]),
        ok(dir, &["history", "--json"]),
        ok(dir, &["balance", "--by", "address", "--json"]),
    )
}

/// An office folder with a regtest database watching a generated chain, synced.
pub struct Office {
    _tmp: tempfile::TempDir,
    /// The office's working folder (tesoro.toml, tesoro.db).
    pub dir: PathBuf,
    /// The chain's blocks dir.
    pub blocks: PathBuf,
    /// What the generator computed.
    pub expected: Expected,
    /// Block time of the tip (Unix seconds): the scenario's start plus height × interval.
    pub tip_time: i64,
}

/// Generates `scenario` (a file under tesoro-testchain/scenarios), registers its wallets
/// under `wallet_entity` (a child of SV unless it is SV) and its addresses under SV, syncs.
pub fn synced_office(scenario: &str, wallet_entity: &str) -> Office {
    synced_office_withholding(scenario, wallet_entity, &[])
}

/// [`synced_office`] without the bare addresses named in `withhold` (a test adds them
/// later, as an office registering a newly published address would).
pub fn synced_office_withholding(scenario: &str, wallet_entity: &str, withhold: &[&str]) -> Office {
    let tmp = tempfile::tempdir().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tesoro-testchain/scenarios")
        .join(scenario);
    let sc = Scenario::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
    let g = generate(&sc, &tmp.path().join("chain")).unwrap();
    let dir = tmp.path().join("office");
    std::fs::create_dir_all(&dir).unwrap();
    ok(&dir, &["init", "--network", "regtest"]);
    ok(&dir, &["entity", "add", "El Salvador", "--code", "SV"]);
    if wallet_entity != "SV" {
        ok(
            &dir,
            &[
                "entity",
                "add",
                "Agency",
                "--code",
                wallet_entity,
                "--parent",
                "SV",
            ],
        );
    }
    for w in &g.expected.wallets {
        let gap = w.gap_limit.to_string();
        ok(
            &dir,
            &[
                "wallet",
                "add",
                "--entity",
                wallet_entity,
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
    for a in g
        .expected
        .addresses
        .iter()
        .filter(|a| !withhold.contains(&a.name.as_str()))
    {
        ok(
            &dir,
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
    ok(
        &dir,
        &[
            "sync",
            "--source",
            &format!("core-dir:{}", g.blocks_dir.display()),
        ],
    );
    Office {
        tip_time: i64::from(sc.start_time)
            + i64::from(g.expected.tip_height) * i64::from(sc.block_interval),
        blocks: g.blocks_dir.clone(),
        expected: g.expected,
        dir,
        _tmp: tmp,
    }
}
