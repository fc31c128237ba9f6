//! A small state for the policy and alert tests: a seizure, a consolidation between two of
//! the state's wallets, a payment out and a purchase, on a generated regtest chain, registered
//! in an office folder and synced up to a chosen height.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tesoro_testchain::{generate, Expected, Scenario};

use crate::office::ok;

/// Block h has time 2025-01-01 + h × 6 h.
pub const SCENARIO: &str = r#"
seed = 5151
tip_height = 140
premine = 110
start_time = 1735689600
block_interval = 21600

[[wallet]]
name = "hot"
kind = "wpkh"
gap_limit = 20

[[wallet]]
name = "cold"
kind = "tr"
gap_limit = 20

[[event]]            # seized coins arrive
height = 120
kind = "receive"
to = "hot"
amount_sat = 500000000

[[event]]            # consolidation into cold storage: internal
height = 124
kind = "transfer"
from = ["hot"]
to = "cold"

[[event]]            # a payment out, to an address outside the state
height = 128
kind = "send"
from = "cold"
amount_sat = 50000000

[[event]]            # a purchase
height = 132
kind = "receive"
to = "hot"
amount_sat = 100000000
"#;

/// The office folder and the chain behind it.
pub struct Chain {
    pub _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub blocks: PathBuf,
    pub expected: Expected,
}

impl Chain {
    /// `core-dir:…` for `sync --source`.
    pub fn source(&self) -> String {
        format!("core-dir:{}", self.blocks.display())
    }
}

/// Generates the chain, registers SV with its two wallets, syncs up to `to` (the tip when
/// `None`).
pub fn office(to: Option<u32>) -> Chain {
    let tmp = tempfile::tempdir().unwrap();
    let sc = Scenario::from_toml(SCENARIO).unwrap();
    let g = generate(&sc, &tmp.path().join("chain")).unwrap();
    let dir = tmp.path().join("office");
    std::fs::create_dir_all(&dir).unwrap();
    ok(&dir, &["init", "--network", "regtest"]);
    ok(&dir, &["entity", "add", "El Salvador", "--code", "SV"]);
    for w in &g.expected.wallets {
        ok(
            &dir,
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
            ],
        );
    }
    let chain = Chain {
        blocks: g.blocks_dir.clone(),
        expected: g.expected,
        dir,
        _tmp: tmp,
    };
    let src = chain.source();
    let mut args = vec!["sync", "--source", src.as_str()];
    let h;
    if let Some(to) = to {
        h = to.to_string();
        args.extend(["--to", &h]);
    }
    ok(&chain.dir, &args);
    chain
}

/// Movements as `movements --json` prints them.
pub fn movements(dir: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&ok(dir, &["movements", "--json"]))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The txid of the movement at `height`.
pub fn txid_at(dir: &Path, height: u64) -> String {
    movements(dir)
        .iter()
        .find(|m| m["height"] == height)
        .unwrap_or_else(|| panic!("no movement at {height}"))["txid"]
        .as_str()
        .unwrap()
        .to_string()
}
