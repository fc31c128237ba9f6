//! `tesoro demo --no-serve`: the demo's figures are the ones the public record and the
//! committed data give, its classification tells purchases from consolidation, and it needs
//! nothing but the binary.

mod office;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use office::{ok, tesoro, BIN};
use serde_json::Value;

/// One demo folder for the read-only tests of this file (preparing it takes seconds); the
/// temporary folder lives as long as the test process.
fn demo() -> (&'static Path, &'static Value) {
    static DEMO: OnceLock<(tempfile::TempDir, PathBuf, Value)> = OnceLock::new();
    let d = DEMO.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let out = ok(
            tmp.path(),
            &["demo", "--no-serve", "--dir", "demo", "--json"],
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        let dir = tmp.path().join("demo");
        (tmp, dir, v)
    });
    (&d.1, &d.2)
}

/// Runs `tesoro --config DIR/tesoro.toml ARGS` and parses its JSON.
fn json(dir: &Path, args: &[&str]) -> Value {
    let config = dir.join("tesoro.toml");
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(dir, &all)).unwrap()
}

fn state<'a>(summary: &'a Value, code: &str) -> &'a Value {
    summary["states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == code)
        .unwrap()
}

/// The accumulation report's chain part (flat, or under "chain" when custodial records are
/// reported beside it).
fn chain_part(v: &Value) -> &Value {
    if v.get("chain").is_some() {
        &v["chain"]
    } else {
        v
    }
}

#[test]
fn el_salvador_reserve_on_2025_07_17_is_6238_btc_worth_745_45_million() {
    let (dir, s) = demo();
    let sv = state(s, "SV");
    let day = &sv["at_statement_date"];
    assert_eq!(day["date"], "2025-07-17");
    // 5,689.7 (2024-03-14) + 348 purchases + 200 donations (58.31) + 142 consolidations,
    // less the illustrative 0.01 BTC test spend and its 424-sat fee: 6,237.99999576 BTC.
    assert_eq!(day["reserve_sats"], 623_799_999_576u64);
    let reserve = day["reserve_sats"].as_u64().unwrap() as f64 / 1e8;
    assert!((reserve - 6238.0).abs() <= 1.0);
    // Coin Metrics PriceUSD that day: 119,501.66 → about $745.45M.
    assert!(day["price_usd"].as_str().unwrap().starts_with("119501.66"));
    let usd: f64 = day["reserve_usd"].as_str().unwrap().parse().unwrap();
    assert_eq!(day["reserve_usd"], "745451378.10");
    assert!((745.40e6..745.50e6).contains(&usd));

    // The same figure from the ledger's commands on the demo database.
    let b = json(
        dir,
        &[
            "balance",
            "--entity",
            "SV",
            "--at",
            "2025-07-17",
            "--by",
            "wallet",
            "--json",
        ],
    );
    let by_wallet: BTreeMap<String, u64> = b["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap().to_string(),
                g["sats"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_wallet["SV-ONBTC/sv-reserve"], 623_799_999_576);
    // The state as a whole holds only a little more: the coins of the other government
    // wallets that are consolidated into the reserve after this day, 36 BTC by 2025-08-22
    // (the IMF: no other stock), so about the 6,274 BTC reported split in August.
    assert_eq!(b["total_sats"], day["total_sats"]);
    let total = day["total_sats"].as_u64().unwrap();
    let others = total - 623_799_999_576;
    assert!(
        (3_599_000_000..=3_600_000_000).contains(&others),
        "other wallets hold {others} sats on 2025-07-17"
    );
    // Published vs all: the other wallets are counted, not listed (private tier).
    let tiers = json(dir, &["statement", "tiers", "--json"]);
    let private: Vec<&str> = tiers
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["tier"] == "private")
        .map(|t| t["wallet"].as_str().unwrap())
        .collect();
    assert!(
        private.iter().any(|w| w.ends_with("sv-treasury")),
        "{tiers}"
    );
    assert!(
        !private.iter().any(|w| w.ends_with("sv-reserve")),
        "{tiers}"
    );

    // The signed statement re-derives from the demo's own blocks folder.
    let st = dir.join("statement-SV-2025-07-17.json");
    assert!(st.exists());
    let v = json(
        dir,
        &[
            "statement",
            "verify",
            st.to_str().unwrap(),
            "--source",
            &format!("core-dir:{}", dir.join("chain/blocks").display()),
            "--key",
            dir.join("office.key.pub").to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(v["ok"], true);
    assert_eq!(v["total_sats"], day["total_sats"]);
}

#[test]
fn imf_programme_shows_no_net_accumulation_and_earlier_years_show_the_acquisitions() {
    let (dir, s) = demo();
    let acc = json(
        dir,
        &[
            "report",
            "accumulation",
            "--entity",
            "SV",
            "--from",
            "2025-02-26",
            "--to",
            "2025-07-17",
            "--json",
        ],
    );
    let r = chain_part(&acc);
    assert_eq!(r["acquired_sats"], 0, "{r}");
    assert_eq!(r["no_net_accumulation"], true);
    assert_eq!(r["unclassified_movements"], 0);
    // Only the fees of the 142 consolidations (and nothing else) leave the state.
    assert!(r["net_accumulation_sats"].as_i64().unwrap() <= 0);
    assert!(r["internal_movements"].as_u64().unwrap() >= 142);
    assert_eq!(
        r["stock_start_sats"].as_u64().unwrap() - r["fee_sats"].as_u64().unwrap(),
        r["stock_end_sats"].as_u64().unwrap()
    );
    // ... while the published reserve address grew by 142 BTC over the same days.
    let reserve = |at: &str| {
        let b = json(
            dir,
            &[
                "balance", "--entity", "SV-ONBTC", "--at", at, "--by", "wallet", "--json",
            ],
        );
        b["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"] == "SV-ONBTC/sv-reserve")
            .unwrap()["sats"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        reserve("2025-07-17") - reserve("2025-02-25"),
        142 * 100_000_000
    );
    // The demo's own summary ran the same test over the whole programme period.
    let summary = &state(s, "SV")["accumulation"];
    assert_eq!(chain_part(summary)["no_net_accumulation"], true);

    // Before the programme, every increase was an acquisition, classified by kind.
    let all = json(
        dir,
        &[
            "report",
            "accumulation",
            "--entity",
            "SV",
            "--from",
            "2021-09-01",
            "--to",
            "2025-02-25",
            "--json",
        ],
    );
    let r = chain_part(&all);
    assert_eq!(r["acquisitions"]["purchase"], 574_219_000_000u64); // 2,381 + 483 + 2,530.19 + 348
    assert_eq!(r["acquisitions"]["donation"], 5_831_000_000u64); // 200 × 0.29155
    assert_eq!(r["acquisitions"]["mining"], 47_350_000_000u64); // 32 × 14.796875
    assert_eq!(r["no_net_accumulation"], false);
    // The announced tranches matched their records (with the fiat paid).
    let unmatched = json(dir, &["records", "list", "--unmatched", "--json"]);
    assert_eq!(unmatched.as_array().unwrap().len(), 0, "{unmatched}");
}

#[test]
fn the_august_split_leaves_14_addresses_of_at_most_500_btc() {
    let (dir, s) = demo();
    let b = json(
        dir,
        &[
            "balance", "--entity", "SV-ONBTC", "--by", "address", "--json",
        ],
    );
    let split: Vec<u64> = b["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["sats"].as_u64().unwrap() > 100 * 100_000_000)
        .map(|g| g["sats"].as_u64().unwrap())
        .collect();
    assert_eq!(split.len(), 14, "{b}");
    assert!(split.iter().all(|&x| x <= 500 * 100_000_000));
    let total: u64 = split.iter().sum();
    assert!(
        (6_273.9 * 1e8..6_274.0 * 1e8).contains(&(total as f64)),
        "{total}"
    );
    assert_eq!(state(s, "SV")["at_tip"]["reserve_sats"], total);

    // The office's policies: on 2025-07-17 the single address breaks the 500 BTC cap and has
    // exposed its keys by spending; after the split nothing is broken.
    let check = |at: &str| {
        let config = dir.join("tesoro.toml");
        let out = tesoro(
            dir,
            &[
                "--config",
                config.to_str().unwrap(),
                "check",
                "--rules",
                "policies.toml",
                "--entity",
                "SV",
                "--at",
                at,
                "--json",
            ],
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.success(), v)
    };
    let (passed, v) = check("2025-07-17");
    assert!(!passed);
    let rules: Vec<&str> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.iter().any(|r| r.starts_with("cap-per-address")),
        "{v}"
    );
    assert!(rules.contains(&"exposed-public-key"), "{v}");
    let (passed, v) = check("2025-08-31");
    assert!(passed, "{v}");
}

#[test]
fn pakistan_mining_payouts_equal_what_the_plan_computes() {
    let (dir, s) = demo();
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plans/pakistan-2000mw.toml");
    let run = json(
        dir,
        &[
            "plan",
            "mine",
            plan.to_str().unwrap(),
            "--backtest",
            "--from",
            "2025-07-17",
            "--to",
            "2025-08-31",
            "--by",
            "day",
            "--json",
        ],
    );
    let sats = |v: &Value| (v.as_f64().unwrap() * 1e8).round() as u64;
    let planned: BTreeMap<String, (u64, u64)> = run["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["period"].as_str().unwrap().to_string(),
                (sats(&p["btc_mined"]), sats(&p["btc_sold"])),
            )
        })
        .collect();
    assert_eq!(planned.len(), 46);
    let moves = json(
        dir,
        &[
            "movements",
            "--entity",
            "PK-PCC",
            "--from",
            "2025-07-17",
            "--json",
        ],
    );
    let mut mined: BTreeMap<String, u64> = BTreeMap::new();
    let mut sold: BTreeMap<String, u64> = BTreeMap::new();
    for m in moves.as_array().unwrap() {
        let day = m["date"].as_str().unwrap().to_string();
        match m["kind"].as_str().unwrap() {
            "mining" => *mined.entry(day).or_default() += m["acquired_sats"].as_u64().unwrap(),
            "sale" => *sold.entry(day).or_default() += m["disposed_sats"].as_u64().unwrap(),
            other => panic!("unexpected {other} movement: {m}"),
        }
    }
    for (day, (m, sell)) in &planned {
        assert_eq!(mined.get(day), Some(m), "mining payout on {day}");
        if *sell > 0 {
            assert_eq!(sold.get(day), Some(sell), "sale on {day}");
        }
    }
    let total: u64 = planned.values().map(|p| p.0).sum();
    assert_eq!(state(s, "PK")["mining"]["mined_sats"], total);
    // The coins in custody reached the national wallet as an internal move, and the
    // national wallet never sold ("not for sale").
    let pk = state(s, "PK");
    assert_eq!(pk["at_tip"]["reserve_sats"], 100_000_000_000u64 - 774);
    assert_eq!(pk["policy_violations"]["tip"], 0);
}

#[test]
fn the_demo_needs_only_the_binary_and_never_leaves_a_half_made_folder() {
    // A copy of the binary in an empty folder, with an empty environment: no repository, no
    // ../shared, no network.
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("tesoro");
    std::fs::copy(BIN, &bin).unwrap();
    let run = |args: &[&str]| {
        Command::new(&bin)
            .current_dir(tmp.path())
            .env_clear()
            .args(args)
            .output()
            .unwrap()
    };
    let first = run(&["demo", "--no-serve", "--dir", "d", "--json"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let first: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(first["reused"], false);
    assert_eq!(
        state(&first, "SV")["at_statement_date"]["reserve_sats"],
        623_799_999_576u64
    );

    // Again: the complete folder is reused as it is.
    let again = run(&["demo", "--no-serve", "--dir", "d", "--json"]);
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["reused"], true);
    assert_eq!(again["fingerprint"], first["fingerprint"]);

    // A leftover of an interrupted run is discarded, and --fresh rebuilds into place.
    std::fs::create_dir_all(tmp.path().join("d.partial/chain")).unwrap();
    std::fs::write(tmp.path().join("d.partial/tesoro.db"), b"half").unwrap();
    let fresh = run(&["demo", "--no-serve", "--dir", "d", "--fresh", "--json"]);
    assert!(
        fresh.status.success(),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    let fresh: Value = serde_json::from_slice(&fresh.stdout).unwrap();
    assert_eq!(fresh["reused"], false);
    assert_eq!(fresh["states"][0]["at_tip"], first["states"][0]["at_tip"]);
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("d.")), "{names:?}");

    // A folder that is not a demo is never replaced.
    std::fs::create_dir_all(tmp.path().join("mine")).unwrap();
    std::fs::write(tmp.path().join("mine/notes.txt"), b"keep me").unwrap();
    let refused = run(&["demo", "--no-serve", "--dir", "mine"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a tesoro demo folder"));
    assert_eq!(
        std::fs::read(tmp.path().join("mine/notes.txt")).unwrap(),
        b"keep me"
    );
}
