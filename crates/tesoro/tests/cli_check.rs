//! `tesoro check` on a synced regtest chain: every broken rule is reported with its evidence
//! and the command exits non-zero; rules that hold exit zero.

mod office;

use std::collections::BTreeSet;

use office::{ok, synced_office, tesoro};

#[test]
fn broken_rules_are_reported_with_evidence() {
    let o = synced_office("reserve.toml", "SV");
    let (dir, g) = (&o.dir, &o);
    std::fs::write(
        dir.join("policies.toml"),
        "[[rule]]\nkind = \"no-sale\"\nentity = \"SV\"\n\n[[rule]]\nkind = \"cap-per-address\"\nentity = \"SV\"\nmax_btc = \"1\"\n\n[[rule]]\nkind = \"exposed-public-key\"\nentity = \"SV\"\n",
    )
    .unwrap();
    let out = tesoro(dir, &["check", "--json"]);
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
    let human = ok(dir, &["check", "--rules", "ok.toml"]);
    assert!(human.contains("no rule is broken"), "{human}");
    // Before the first payment out, no-sale held.
    std::fs::write(
        dir.join("ns.toml"),
        "[[rule]]\nkind = \"no-sale\"\nentity = \"SV\"\n",
    )
    .unwrap();
    ok(dir, &["check", "--rules", "ns.toml", "--at", "117"]);

    // A bad file names itself and the rule.
    std::fs::write(
        dir.join("bad.toml"),
        "[[rule]]\nkind = \"outflow\"\nentity = \"SV\"\nmax_btc = \"x\"\nwindow_days = 7\n",
    )
    .unwrap();
    let out = tesoro(dir, &["check", "--rules", "bad.toml"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("rule 1"), "{err}");
}
