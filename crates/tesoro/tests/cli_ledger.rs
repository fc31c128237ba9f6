//! The ledger end to end through the real binary: a generated regtest chain (a state with
//! three agencies: purchases, a seizure, a mining coinbase, a consolidation, an intra-state
//! transfer, a sale, a donation, and a reorg), the real Coin Metrics prices, off-chain records
//! from CSV, and every ledger command. Figures are checked against what the scenario implies.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tesoro_testchain::{generate, Expected, Scenario};

const BIN: &str = env!("CARGO_BIN_EXE_tesoro");
const BTC: u64 = 100_000_000;

/// Block h has time 2025-01-01 + h × 6 h, so day = 2025-01-01 + h/4.
const SCENARIO: &str = r#"
seed = 4242
tip_height = 160
premine = 110
start_time = 1735689600
block_interval = 21600

[layout]
xor_key = "random"

[[wallet]]
name = "hot"
kind = "wpkh"
gap_limit = 20

[[wallet]]
name = "bcr"
kind = "tr"
gap_limit = 20

[[wallet]]
name = "mining"
kind = "wpkh"
gap_limit = 20

[[address]]
name = "cold"
kind = "sh-multi"

[[event]]            # 2025-01-31: purchase, record order-1 (same day)
height = 120
kind = "receive"
to = "hot"
amount_sat = 200000000

[[event]]            # 2025-02-01: purchase, record order-2 dated a day later
height = 124
kind = "receive"
to = "hot"
amount_sat = 100000000

[[event]]            # 2025-02-02: seizure by the central bank (BCR)
height = 128
kind = "receive"
to = "bcr"
amount_sat = 500000000

[[event]]            # 2025-02-02: state mining, coinbase
height = 130
kind = "coinbase"
to = "mining"

[[event]]            # 2025-02-03: consolidation hot -> cold (inside ONBTC)
height = 132
kind = "transfer"
from = ["hot"]
to = "cold"

[[event]]            # 2025-02-04: intra-state BCR -> ONBTC cold
height = 136
kind = "transfer"
from = ["bcr"]
to = "cold"
amount_sat = 300000000

[[event]]            # 2025-02-05: sale from cold, record with proceeds
height = 140
kind = "send"
from = "cold"
amount_sat = 50000000

[[event]]            # 2025-02-06: a payment that a reorg drops
height = 146
kind = "receive"
to = "hot"
amount_sat = 70000000

[[event]]
height = 148
kind = "reorg"
depth = 3

[[event]]            # 2025-02-08: a donation (classified by hand)
height = 152
kind = "receive"
to = "hot"
amount_sat = 25000000
"#;

fn tesoro(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .env_remove("TESORO_DB")
        .env_remove("TESORO_CONFIG")
        .args(args)
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = tesoro(dir, args);
    assert!(
        out.status.success(),
        "tesoro {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = tesoro(dir, args);
    assert!(!out.status.success(), "tesoro {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

fn json(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(dir, args)).unwrap()
}

struct Chain {
    _tmp: tempfile::TempDir,
    blocks: PathBuf,
    expected: Expected,
}

fn chain(sc: &Scenario) -> Chain {
    let tmp = tempfile::tempdir().unwrap();
    let g = generate(sc, tmp.path()).unwrap();
    Chain {
        blocks: g.blocks_dir.clone(),
        expected: g.expected,
        _tmp: tmp,
    }
}

fn prices_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/market/btc-daily.csv")
}

/// SV (state) with agencies ONBTC (hot wallet, cold published address), BCR, MIN.
fn register(dir: &Path, e: &Expected) {
    ok(dir, &["init", "--network", "regtest"]);
    ok(dir, &["entity", "add", "El Salvador", "--code", "SV"]);
    ok(
        dir,
        &[
            "entity",
            "add",
            "Bitcoin Office",
            "--code",
            "ONBTC",
            "--parent",
            "SV",
        ],
    );
    ok(
        dir,
        &[
            "entity",
            "add",
            "Central bank",
            "--code",
            "BCR",
            "--parent",
            "SV",
        ],
    );
    ok(
        dir,
        &[
            "entity",
            "add",
            "State mining",
            "--code",
            "MIN",
            "--parent",
            "SV",
        ],
    );
    for w in &e.wallets {
        let entity = match w.name.as_str() {
            "hot" => "ONBTC",
            "bcr" => "BCR",
            _ => "MIN",
        };
        ok(
            dir,
            &[
                "wallet",
                "add",
                "--entity",
                entity,
                "--name",
                &w.name,
                "--descriptor",
                &w.external,
                "--change-descriptor",
                &w.internal,
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
                "ONBTC",
                "--name",
                &a.name,
                "--addresses",
                &a.address,
            ],
        );
    }
}

fn load_books(dir: &Path) {
    ok(
        dir,
        &[
            "prices",
            "import",
            "coinmetrics",
            prices_csv().to_str().unwrap(),
        ],
    );
    std::fs::write(
        dir.join("usd-pkr.csv"),
        "date,rate,quote\n2025-01-31,278.9,PKR\n2025-02-01,279.0,PKR\n2025-02-10,279.5,PKR\n",
    )
    .unwrap();
    ok(dir, &["fx", "import", "usd-pkr.csv"]);
    std::fs::write(
        dir.join("purchases.csv"),
        "date,btc,fiat_amount,currency,counterparty,reference\n\
         2025-01-31,2,200000,USD,OTC desk,order-1\n\
         2025-02-02,1,101000,USD,OTC desk,order-2\n\
         2025-03-30,4,400000,USD,Nobody,order-x\n",
    )
    .unwrap();
    ok(dir, &["records", "import", "purchases.csv"]);
    ok(
        dir,
        &[
            "records",
            "add",
            "seizure",
            "--entity",
            "BCR",
            "--btc",
            "5",
            "--date",
            "2025-02-02",
            "--reference",
            "case-9",
        ],
    );
    ok(
        dir,
        &[
            "records",
            "add",
            "sale",
            "--btc",
            "0.5",
            "--date",
            "2025-02-05",
            "--fiat",
            "50000",
            "--currency",
            "USD",
            "--reference",
            "auction-1",
        ],
    );
    ok(
        dir,
        &[
            "records",
            "add",
            "custodial",
            "--entity",
            "SV",
            "--custodian",
            "Custodian X",
            "--btc",
            "12",
            "--as-of",
            "2025-01-15",
        ],
    );
}

fn movements(dir: &Path) -> Vec<Value> {
    json(dir, &["movements", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

fn find<'a>(ms: &'a [Value], entity: &str, kind: &str) -> Vec<&'a Value> {
    ms.iter()
        .filter(|m| m["entity"] == entity && m["kind"] == kind)
        .collect()
}

#[test]
fn ledger_end_to_end() {
    let sc = Scenario::from_toml(SCENARIO).unwrap();
    let c = chain(&sc);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    register(dir, &c.expected);
    let source = format!("core-dir:{}", c.blocks.display());
    ok(dir, &["sync", "--source", &source]);
    load_books(dir);

    let ms = movements(dir);
    // Purchases matched to records (same day; a day off within tolerance).
    let p = find(&ms, "ONBTC", "purchase");
    assert_eq!(p.len(), 2, "{ms:#?}");
    assert_eq!(p[0]["acquired_sats"], 2 * BTC);
    assert_eq!(p[0]["source"], "record");
    assert_eq!(p[1]["acquired_sats"], BTC);
    // Seizure matched to the BCR record; mining from the coinbase.
    let s = find(&ms, "BCR", "seizure");
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["acquired_sats"], 5 * BTC);
    let mining = find(&ms, "MIN", "mining");
    assert_eq!(mining.len(), 1);
    assert_eq!(mining[0]["source"], "chain");
    let mined = mining[0]["acquired_sats"].as_u64().unwrap();
    assert!(mined > 0);
    // Consolidation inside ONBTC: no acquisition, only a fee leaves.
    let cons = find(&ms, "ONBTC", "consolidation");
    assert_eq!(cons.len(), 1, "{ms:#?}");
    assert_eq!(cons[0]["acquired_sats"], 0);
    let cons_fee = cons[0]["fee_sats"].as_u64().unwrap();
    assert!(cons_fee > 0);
    assert_eq!(cons[0]["net_sats"].as_i64().unwrap(), -(cons_fee as i64));
    // Intra-state: BCR sends 3 BTC, ONBTC receives 3 BTC, both internal.
    let out = find(&ms, "BCR", "intra-state");
    let inn = find(&ms, "ONBTC", "intra-state");
    assert_eq!(out.len(), 1);
    assert_eq!(inn.len(), 1);
    assert_eq!(inn[0]["net_sats"], 3 * BTC);
    assert_eq!(inn[0]["txid"], out[0]["txid"]);
    let intra_fee = out[0]["fee_sats"].as_u64().unwrap();
    assert_eq!(
        out[0]["net_sats"].as_i64().unwrap(),
        -((3 * BTC + intra_fee) as i64)
    );
    // The sale matched to its record; counterparties are the outside receivers.
    let sale = find(&ms, "ONBTC", "sale");
    assert_eq!(sale.len(), 1);
    assert_eq!(sale[0]["disposed_sats"], BTC / 2);
    assert!(!sale[0]["counterparties"].as_array().unwrap().is_empty());
    // The reorged payment is gone; the donation is unclassified until classified by hand.
    assert!(ms.iter().all(|m| m["acquired_sats"] != 70_000_000u64));
    let don = find(&ms, "ONBTC", "unclassified-acquisition");
    assert_eq!(don.len(), 1);
    assert_eq!(don[0]["acquired_sats"], 25_000_000u64);
    let don_txid = don[0]["txid"].as_str().unwrap().to_string();
    // Unclassified movements and unmatched records are listed, never dropped.
    let unc = json(dir, &["movements", "--unclassified", "--json"]);
    assert_eq!(unc.as_array().unwrap().len(), 1);
    let unmatched = json(dir, &["records", "list", "--unmatched", "--json"]);
    let unmatched = unmatched.as_array().unwrap();
    assert_eq!(unmatched.len(), 1);
    assert_eq!(unmatched[0]["reference"], "order-x");
    // A rules file naming the donor's address (recovered from its input) classifies it.
    let donor = don[0]["counterparties"][0].as_str().unwrap().to_string();
    std::fs::write(
        dir.join("rules.toml"),
        format!(
            "[[counterparty]]\nname = \"Donor\"\naddresses = [\"{donor}\"]\nincoming = \"donation\"\n"
        ),
    )
    .unwrap();
    ok(dir, &["movements", "rules", "rules.toml"]);
    let ms = movements(dir);
    let by_rule = find(&ms, "ONBTC", "donation");
    assert_eq!(by_rule.len(), 1, "{ms:#?}");
    assert_eq!(by_rule[0]["source"], "rule");
    assert_eq!(by_rule[0]["note"], "Donor");
    // A record outranks a rule: the purchases stay purchases though the faucet pays them too.
    assert_eq!(find(&ms, "ONBTC", "purchase").len(), 2);
    // A manual classification must keep the class, and needs a reason.
    let e = fails(
        dir,
        &[
            "movements",
            "classify",
            &don_txid,
            "--as",
            "consolidation",
            "--reason",
            "x",
        ],
    );
    assert!(e.contains("register that wallet"), "{e}");
    ok(
        dir,
        &[
            "movements",
            "classify",
            &don_txid,
            "--as",
            "donation",
            "--reason",
            "gift, letter 12",
        ],
    );
    let ms = movements(dir);
    let don = find(&ms, "ONBTC", "donation");
    assert_eq!(don.len(), 1);
    assert_eq!(don[0]["source"], "manual");
    assert_eq!(don[0]["note"], "gift, letter 12");
    let hist = json(dir, &["movements", "overrides", "--json"]);
    assert_eq!(hist.as_array().unwrap().len(), 1);
    let classes = json(dir, &["movements", "--class", "internal", "--json"]);
    assert_eq!(classes.as_array().unwrap().len(), 3);

    // The accumulation test over everything: acquisitions by kind, disposals, reconciled.
    let acc = json(dir, &["report", "accumulation", "--entity", "SV", "--json"]);
    assert_eq!(acc["acquisitions"]["purchase"], 3 * BTC);
    assert_eq!(acc["acquisitions"]["seizure"], 5 * BTC);
    assert_eq!(acc["acquisitions"]["mining"], mined);
    assert_eq!(acc["acquisitions"]["donation"], 25_000_000u64);
    assert_eq!(acc["disposals"]["sale"], BTC / 2);
    assert_eq!(
        acc["intra_state_in_sats"], 0,
        "inside the state nothing crosses"
    );
    assert_eq!(acc["reconciles"], true);
    assert_eq!(acc["no_net_accumulation"], false);
    let bal = json(dir, &["balance", "--json"]);
    assert_eq!(acc["stock_end_sats"], bal["total_sats"]);
    // The IMF case: over the days with only the consolidation and the intra-state transfer,
    // the office's stock grows but the state did not accumulate.
    let imf = json(
        dir,
        &[
            "report",
            "accumulation",
            "--entity",
            "SV",
            "--from",
            "2025-02-03",
            "--to",
            "2025-02-04",
            "--json",
        ],
    );
    assert_eq!(imf["acquired_sats"], 0);
    assert_eq!(imf["no_net_accumulation"], true);
    assert_eq!(imf["internal_movements"], 2);
    assert_eq!(imf["fee_sats"], cons_fee + intra_fee);
    let office = json(
        dir,
        &[
            "report",
            "accumulation",
            "--entity",
            "ONBTC",
            "--from",
            "2025-02-03",
            "--to",
            "2025-02-04",
            "--json",
        ],
    );
    assert_eq!(office["intra_state_in_sats"], 3 * BTC);
    assert_eq!(office["no_net_accumulation"], true);
    assert_eq!(
        office["stock_end_sats"].as_u64().unwrap(),
        office["stock_start_sats"].as_u64().unwrap() + 3 * BTC - cons_fee
    );
    let table = ok(dir, &["report", "accumulation", "--entity", "SV"]);
    assert!(table.contains("DOES NOT HOLD"), "{table}");
    let csv = ok(dir, &["report", "accumulation", "--format", "csv"]);
    assert!(csv.starts_with("item,BTC\n"), "{csv}");

    // Holdings valued in USD and PKR at a date with both series; custodial listed apart.
    let h = json(
        dir,
        &[
            "report",
            "holdings",
            "--at",
            "2025-02-10",
            "--currency",
            "USD,PKR",
            "--json",
        ],
    );
    assert_eq!(h["chain_sats"], bal["total_sats"]);
    assert_eq!(h["custodial_sats"], 12 * BTC);
    // The same at a block height: the tip holds what the balance says; custodial rows are
    // their own, marked as such.
    let tip = bal["height"].as_u64().expect("balance names its height");
    let hh = json(
        dir,
        &[
            "report",
            "holdings",
            "--at",
            &tip.to_string(),
            "--currency",
            "USD",
            "--allow-last-known",
            "--json",
        ],
    );
    assert_eq!(hh["chain_sats"], bal["total_sats"], "{hh}");
    assert_eq!(hh["height"], tip);
    let rows = h["rows"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["source"] == "custodial"), "{h}");
    let acc_all = json(dir, &["report", "accumulation", "--json"]);
    assert_eq!(acc_all["custodial_end_sats"], 12 * BTC, "{acc_all}");
    assert_eq!(
        acc_all["total_end_sats"].as_u64().unwrap(),
        acc_all["stock_end_sats"].as_u64().unwrap() + 12 * BTC
    );
    assert_eq!(h["prices"][0]["currency"], "USD");
    assert_eq!(h["prices"][0]["stale"], false);
    let e = fails(
        dir,
        &[
            "report",
            "holdings",
            "--at",
            "2025-02-11",
            "--currency",
            "PKR",
        ],
    );
    assert!(e.contains("2025-02-11") && e.contains("USD->PKR"), "{e}");
    let h = json(
        dir,
        &[
            "report",
            "holdings",
            "--at",
            "2025-02-11",
            "--currency",
            "PKR",
            "--allow-last-known",
            "--json",
        ],
    );
    assert_eq!(h["prices"][0]["stale"], true);
    assert_eq!(h["prices"][0]["from"], "2025-02-10");

    // Gains: every method; lots sum to holdings; the sale's proceeds are the record's.
    let pnl = json(dir, &["report", "pnl", "--method", "all", "--json"]);
    for p in pnl.as_array().unwrap() {
        assert_eq!(p["holding_sats"], bal["total_sats"], "{p}");
        assert_eq!(p["proceeds"], "50000", "{p}");
        assert_eq!(p["uncovered_sats"], 0);
    }
    let csv = ok(
        dir,
        &["report", "pnl", "--method", "fifo", "--format", "csv"],
    );
    assert!(csv.starts_with("method,proceeds"), "{csv}");
}

#[test]
fn bad_files_name_file_line_and_field() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    ok(dir, &["init", "--network", "regtest"]);
    std::fs::write(
        dir.join("p.csv"),
        "date,price\n2025-01-01,1\n2025-01-02,-5\n",
    )
    .unwrap();
    let e = fails(dir, &["prices", "import", "generic", "p.csv"]);
    assert!(e.contains("p.csv: line 3, field price"), "{e}");
    std::fs::write(
        dir.join("r.csv"),
        "date,btc,fiat_amount,currency\n2025-01-01,1.000000001,1,USD\n",
    )
    .unwrap();
    let e = fails(dir, &["records", "import", "r.csv"]);
    assert!(e.contains("r.csv: line 2, field btc"), "{e}");
    std::fs::write(
        dir.join("rules.toml"),
        "[[counterparty]]\nname = \"X\"\naddresses = []\nincoming = \"sale\"\n",
    )
    .unwrap();
    let e = fails(dir, &["movements", "rules", "rules.toml"]);
    assert!(e.contains("not an acquisition kind"), "{e}");
    // Nothing was written by the failed imports.
    let p = json(dir, &["prices", "list", "--json"]);
    assert_eq!(p.as_array().unwrap().len(), 0);
    let r = json(dir, &["records", "list", "--json"]);
    assert_eq!(r.as_array().unwrap().len(), 0);
}

/// The ledger after a reorg equals the ledger of a fresh sync of the new chain, and a manual
/// classification made before the reorg survives it.
#[test]
fn a_reorg_and_resync_give_the_same_ledger() {
    let full = Scenario::from_toml(SCENARIO).unwrap();
    // The same chain cut before the reorg: it still has the payment at 146 the reorg drops.
    let cut_toml = SCENARIO
        .split("[[event]]\nheight = 148")
        .next()
        .unwrap()
        .replace("tip_height = 160", "tip_height = 147");
    let cut = Scenario::from_toml(&cut_toml).unwrap();
    let f = chain(&full);
    let p = chain(&cut);
    assert_eq!(f.expected.wallets, p.expected.wallets);

    let w1 = tempfile::tempdir().unwrap();
    let fresh = w1.path();
    register(fresh, &f.expected);
    ok(
        fresh,
        &[
            "sync",
            "--source",
            &format!("core-dir:{}", f.blocks.display()),
        ],
    );
    load_books(fresh);

    let w2 = tempfile::tempdir().unwrap();
    let reorged = w2.path();
    register(reorged, &p.expected);
    ok(
        reorged,
        &[
            "sync",
            "--source",
            &format!("core-dir:{}", p.blocks.display()),
        ],
    );
    load_books(reorged);
    let before = movements(reorged);
    assert!(before.iter().any(|m| m["acquired_sats"] == 70_000_000u64));
    let purchase = find(&before, "ONBTC", "purchase")[0]["txid"]
        .as_str()
        .unwrap()
        .to_string();
    let args = [
        "movements",
        "classify",
        &purchase,
        "--as",
        "seizure",
        "--reason",
        "court order 5",
    ];
    ok(reorged, &args);
    ok(
        reorged,
        &[
            "sync",
            "--source",
            &format!("core-dir:{}", f.blocks.display()),
        ],
    );
    ok(fresh, &args);

    let after = movements(reorged);
    assert!(after.iter().all(|m| m["acquired_sats"] != 70_000_000u64));
    assert_eq!(after, movements(fresh));
    let s = find(&after, "ONBTC", "seizure");
    assert_eq!(s[0]["note"], "court order 5");
    for r in [
        vec!["report", "accumulation", "--json"],
        vec!["report", "pnl", "--method", "all", "--json"],
        vec![
            "report",
            "holdings",
            "--at",
            "2025-02-10",
            "--currency",
            "USD,PKR",
            "--json",
        ],
        vec!["records", "list", "--json"],
    ] {
        assert_eq!(json(reorged, &r), json(fresh, &r), "{r:?}");
    }
}
