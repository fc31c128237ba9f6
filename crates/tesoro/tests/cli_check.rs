//! `tesoro check` on a synced regtest chain: every broken rule is reported with its evidence
//! and the command exits non-zero; rules that hold exit zero.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use tesoro_testchain::{generate, Scenario};

const BIN: &str = env!("CARGO_BIN_EXE_tesoro");

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

#[test]
fn broken_rules_are_reported_with_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tesoro-testchain/scenarios/reserve.toml");
    let sc = Scenario::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
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
    for a in &g.expected.addresses {
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

    std::fs::write(
        dir.join("policies.toml"),
        "[[rule]]\nkind = \"no-sale\"\nentity = \"SV\"\n\n[[rule]]\nkind = \"cap-per-address\"\nentity = \"SV\"\nmax_btc = \"1\"\n\n[[rule]]\nkind = \"exposed-public-key\"\nentity = \"SV\"\n",
    )
    .unwrap();
    let out = tesoro(&dir, &["check", "--json"]);
    assert!(!out.status.success(), "broken rules must exit non-zero");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let violations = v["violations"].as_array().unwrap();

    // no-sale: the scenario's first payment out of the reserve is at height 118.
    let sales: Vec<&serde_json::Value> = violations
        .iter()
        .filter(|x| x["rule"] == "no-sale")
        .collect();
    assert!(!sales.is_empty());
    assert_eq!(sales[0]["since_height"], 118);
    assert!(sales[0]["evidence"][0]["txid"].is_string());

    // cap: exactly the addresses the generator says hold more than 1 BTC at the tip.
    let tip = g.expected.checkpoints.last().unwrap();
    let over: BTreeSet<String> = tip
        .addresses
        .iter()
        .filter(|(_, s)| **s > 100_000_000)
        .map(|(a, _)| a.clone())
        .collect();
    let flagged: BTreeSet<String> = violations
        .iter()
        .filter(|x| x["rule"].as_str().unwrap().starts_with("cap-per-address"))
        .map(|x| x["evidence"][0]["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(flagged, over);

    // exposed keys: every flagged address still holds coins at the tip.
    for x in violations
        .iter()
        .filter(|x| x["rule"] == "exposed-public-key")
    {
        let a = x["evidence"][0]["address"].as_str().unwrap();
        assert!(tip.addresses.get(a).copied().unwrap_or(0) > 0, "{a}");
    }

    // Rules that hold: exit zero.
    std::fs::write(
        dir.join("ok.toml"),
        "[[rule]]\nkind = \"cap-per-address\"\nentity = \"SV\"\nmax_btc = \"1000000\"\n",
    )
    .unwrap();
    let human = ok(&dir, &["check", "--rules", "ok.toml"]);
    assert!(human.contains("no rule is broken"), "{human}");
    // Before the first payment out, no-sale held.
    std::fs::write(
        dir.join("ns.toml"),
        "[[rule]]\nkind = \"no-sale\"\nentity = \"SV\"\n",
    )
    .unwrap();
    ok(&dir, &["check", "--rules", "ns.toml", "--at", "117"]);

    // A bad file names itself and the rule.
    std::fs::write(
        dir.join("bad.toml"),
        "[[rule]]\nkind = \"outflow\"\nentity = \"SV\"\nmax_btc = \"x\"\nwindow_days = 7\n",
    )
    .unwrap();
    let out = tesoro(&dir, &["check", "--rules", "bad.toml"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("rule 1"), "{err}");
}
