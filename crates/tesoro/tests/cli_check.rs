//! `tesoro check` and `tesoro policy` on synced regtest chains: every broken rule is
//! reported with its evidence and the command exits non-zero; rules that hold exit zero;
//! stored rules are used when no file is given; bad files are refused and store nothing.

mod office;
mod policy_chain;

use std::collections::BTreeSet;

use office::{fails, ok, synced_office, tesoro};

#[test]
fn broken_rules_are_reported_with_evidence() {
    let o = synced_office("reserve.toml", "SV");
    let (dir, g) = (&o.dir, &o);
    std::fs::write(
        dir.join("policies.toml"),
        "[[rule]]\nkind = \"no-sale\"\nentity = \"SV\"\n\n[[rule]]\nkind = \"cap-per-address\"\nentity = \"SV\"\nmax_btc = \"1\"\n\n[[rule]]\nkind = \"exposed-public-key\"\nentity = \"SV\"\n",
    )
    .unwrap();
    let out = tesoro(dir, &["check", "--rules", "policies.toml", "--json"]);
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

fn violations(dir: &std::path::Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["check", "--json"];
    all.extend_from_slice(args);
    let out = tesoro(dir, &all);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.success(),
        v["ok"] == true,
        "exit status follows ok: {v}"
    );
    v["violations"].as_array().unwrap().clone()
}

const BTC: u64 = 100_000_000;

#[test]
fn net_accumulation_excludes_seizures_and_internal_transfers() {
    let c = policy_chain::office(None);
    let dir = &c.dir;
    let seized = policy_chain::txid_at(dir, 120);
    ok(
        dir,
        &[
            "movements",
            "classify",
            &seized,
            "--as",
            "seizure",
            "--reason",
            "court order 9",
        ],
    );
    std::fs::write(
        dir.join("imf.toml"),
        "[[rule]]\nkind = \"no-net-accumulation\"\nentity = \"SV\"\n",
    )
    .unwrap();
    // After the seizure and the consolidation into cold storage: nothing accumulated.
    assert!(violations(dir, &["--rules", "imf.toml", "--at", "126"]).is_empty());
    // Counting seized coins (exclude nothing), the seizure is accumulation from height 120.
    std::fs::write(
        dir.join("all.toml"),
        "[[rule]]\nkind = \"no-net-accumulation\"\nentity = \"SV\"\nexclude = []\n",
    )
    .unwrap();
    let v = violations(dir, &["--rules", "all.toml", "--at", "126"]);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["since_height"], 120);
    assert_eq!(v[0]["evidence"][0]["txid"], seized.as_str());
    assert_eq!(v[0]["evidence"][0]["sats"], 5 * BTC);
    // At the tip: the 1 BTC purchase outweighs the 0.5 BTC payment and fees: a violation that
    // started with the purchase, and the purchase is its evidence (not the seizure).
    let v = violations(dir, &["--rules", "imf.toml"]);
    assert_eq!(v.len(), 1, "{v:?}");
    let bought = policy_chain::txid_at(dir, 132);
    assert_eq!(v[0]["since_height"], 132);
    assert_eq!(v[0]["evidence"][0]["txid"], bought.as_str());
    assert_eq!(v[0]["evidence"][0]["sats"], BTC);
    assert!(v[0]["evidence"][0]["address"]
        .as_str()
        .unwrap()
        .starts_with("bcrt1q"));
    assert!(v[0]["since"].as_str().unwrap().starts_with("2025-02-03"));
    // A period that ends before the purchase holds.
    std::fs::write(
        dir.join("period.toml"),
        "[[rule]]\nkind = \"no-net-accumulation\"\nentity = \"SV\"\nfrom = \"2025-01-01\"\nto = \"2025-02-01\"\n",
    )
    .unwrap();
    assert!(violations(dir, &["--rules", "period.toml"]).is_empty());
}

#[test]
fn payments_to_unknown_counterparties_name_address_and_amount() {
    let c = policy_chain::office(None);
    let dir = &c.dir;
    let paid = policy_chain::txid_at(dir, 128);
    std::fs::write(
        dir.join("cp.toml"),
        "[[rule]]\nkind = \"unknown-counterparty\"\nentity = \"SV\"\n",
    )
    .unwrap();
    let v = violations(dir, &["--rules", "cp.toml"]);
    assert_eq!(v.len(), 1, "{v:?}");
    let e = &v[0]["evidence"][0];
    assert_eq!(e["txid"], paid.as_str());
    assert_eq!(e["height"], 128);
    assert_eq!(e["sats"], BTC / 2);
    let payee = e["address"].as_str().unwrap().to_string();
    // Naming the address in the classification rules makes it known.
    std::fs::write(
        dir.join("counterparties.toml"),
        format!("[[counterparty]]\nname = \"Exchange\"\naddresses = [\"{payee}\"]\noutgoing = \"sale\"\n"),
    )
    .unwrap();
    ok(dir, &["movements", "rules", "counterparties.toml"]);
    assert!(violations(dir, &["--rules", "cp.toml"]).is_empty());
}

#[test]
fn stored_rules_are_used_without_a_file() {
    let c = policy_chain::office(None);
    let dir = &c.dir;
    // Nothing stored yet: a clear error, not an empty success.
    let e = fails(dir, &["check"]);
    assert!(e.contains("policy import"), "{e}");
    std::fs::write(
        dir.join("policies.toml"),
        "[[rule]]\nkind = \"no-sale\"\nentity = \"SV\"\n\n[[rule]]\nkind = \"cap-per-address\"\nentity = \"SV\"\nmax_btc = \"500\"\n",
    )
    .unwrap();
    let out = ok(dir, &["policy", "import", "policies.toml"]);
    assert!(out.contains("2 rules"), "{out}");
    let again = ok(dir, &["policy", "import", "policies.toml"]);
    assert!(again.contains("nothing changed"), "{again}");
    let shown: serde_json::Value =
        serde_json::from_str(&ok(dir, &["policy", "show", "--json"])).unwrap();
    assert_eq!(shown["rules"].as_array().unwrap().len(), 2);
    assert_eq!(shown["rules"][1]["max_btc"], "500");
    let table = ok(dir, &["policy", "show"]);
    assert!(
        table.contains("cap-per-address") && table.contains("500 BTC"),
        "{table}"
    );
    // check without --rules uses them: the payment at 128 breaks no-sale.
    let v = violations(dir, &[]);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["rule"], "no-sale");
    assert_eq!(v[0]["since_height"], 128);
    // Bad files and unknown entities are refused; the rules in force stay.
    for (name, text, want) in [
        (
            "typo.toml",
            "[[rule]]\nkind = \"no-sale\"\nentity = \"SV\"\nentiy = \"x\"\n",
            "entiy",
        ),
        (
            "who.toml",
            "[[rule]]\nkind = \"no-sale\"\nentity = \"XX\"\n",
            "not registered",
        ),
        ("cut.toml", "[[rule]]\nkind = \"cap-per-addr", "cut.toml"),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
        let e = fails(dir, &["policy", "import", name]);
        assert!(e.contains(name) && e.contains(want), "{name}: {e}");
    }
    let history: serde_json::Value =
        serde_json::from_str(&ok(dir, &["policy", "show", "--history", "--json"])).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 1, "nothing half-stored");
}
