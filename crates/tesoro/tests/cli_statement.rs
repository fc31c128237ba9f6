//! Statements end to end: made from a synced database, signed with a key from
//! `tesoro key generate`, then verified by re-deriving every balance from the blocks
//! themselves; any alteration, another signer, or a lie about a balance is caught.

mod office;

use std::path::Path;

use office::{fails, ok, synced_office, tesoro, Office};
use tesoro_core::statement::{SignedStatement, Statement};

fn setup() -> Office {
    let o = synced_office("reserve.toml", "SV-ONBTC");
    ok(&o.dir, &["key", "generate"]);
    o
}

fn read(path: &Path) -> SignedStatement {
    SignedStatement::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_statement_verifies_against_the_blocks_and_matches_the_generator() {
    let s = setup();
    let cp = &s.expected.checkpoints[s.expected.checkpoints.len() / 2];
    let at = cp.height.to_string();
    ok(
        &s.dir,
        &[
            "statement",
            "create",
            "--at",
            &at,
            "--price",
            "USD=119501.66",
            "--price-source",
            "Coin Metrics",
            "-o",
            "st.json",
        ],
    );
    let st = read(&s.dir.join("st.json")).verify(None).unwrap();
    let total: u64 = cp.balances.values().sum();
    assert_eq!(st.total_sats, total);
    assert_eq!(st.block.hash, cp.hash.to_string());
    assert_eq!(st.entities[0].code, "SV");
    assert_eq!(st.entities[0].total_sats, total);
    assert_eq!(st.valuations[0].currency, "USD");
    let listed: std::collections::BTreeMap<String, u64> = st
        .addresses
        .iter()
        .map(|a| (a.address.clone(), a.balance_sats))
        .collect();
    let want: std::collections::BTreeMap<String, u64> = cp
        .addresses
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(listed, want);

    let source = format!("core-dir:{}", s.blocks.display());
    let out = ok(
        &s.dir,
        &[
            "statement",
            "verify",
            "st.json",
            "--source",
            &source,
            "--key",
            "office.key.pub",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        v["addresses_checked"].as_u64().unwrap() as usize,
        st.addresses.len()
    );
    let human = ok(
        &s.dir,
        &["statement", "verify", "st.json", "--source", &source],
    );
    assert!(
        human.contains("every balance and output matches"),
        "{human}"
    );

    // A private wallet is counted, not listed.
    ok(
        &s.dir,
        &[
            "statement",
            "create",
            "--at",
            &at,
            "--private",
            "treasury",
            "-o",
            "private.json",
        ],
    );
    let p = read(&s.dir.join("private.json")).verify(None).unwrap();
    assert_eq!(p.total_sats, total);
    assert_eq!(
        p.private_sats,
        cp.balances.get("treasury").copied().unwrap_or(0)
    );
    ok(
        &s.dir,
        &["statement", "verify", "private.json", "--source", &source],
    );
}

#[test]
fn altered_or_lying_statements_are_caught() {
    let s = setup();
    let source = format!("core-dir:{}", s.blocks.display());
    ok(&s.dir, &["statement", "create", "-o", "st.json"]);
    let signed = read(&s.dir.join("st.json"));

    // Altered after signing: the hash no longer matches.
    let mut altered = signed.clone();
    let a0 = altered.statement["addresses"][0]["balance_sats"]
        .as_u64()
        .unwrap();
    altered.statement["addresses"][0]["balance_sats"] = serde_json::json!(a0 + 1);
    std::fs::write(
        s.dir.join("altered.json"),
        serde_json::to_string(&altered).unwrap(),
    )
    .unwrap();
    let err = fails(
        &s.dir,
        &["statement", "verify", "altered.json", "--source", &source],
    );
    assert!(err.contains("altered"), "{err}");

    // Signed by somebody else: refused when the verifier names the key it expects.
    ok(&s.dir, &["key", "generate", "--out", "other.key"]);
    ok(
        &s.dir,
        &[
            "statement",
            "create",
            "--key",
            "other.key",
            "-o",
            "other.json",
        ],
    );
    let err = fails(
        &s.dir,
        &[
            "statement",
            "verify",
            "other.json",
            "--source",
            &source,
            "--key",
            "office.key.pub",
        ],
    );
    assert!(err.contains("not by the expected key"), "{err}");

    // Properly signed, but the office claims an output it does not have: re-derivation
    // from the blocks names the address and both figures.
    let mut st: Statement = signed.verify(None).unwrap();
    st.addresses[0].utxos[0].sats += 100_000;
    st.addresses[0].balance_sats += 100_000;
    st.total_sats += 100_000;
    st.entities[0].total_sats += 100_000;
    let key_pem = std::fs::read_to_string(s.dir.join("office.key")).unwrap();
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&key_pem).unwrap();
    let lie = st.sign(&key).unwrap();
    std::fs::write(
        s.dir.join("lie.json"),
        serde_json::to_string_pretty(&lie).unwrap(),
    )
    .unwrap();
    let out = tesoro(
        &s.dir,
        &[
            "statement",
            "verify",
            "lie.json",
            "--source",
            &source,
            "--json",
        ],
    );
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let d = &v["discrepancies"][0];
    assert_eq!(d["address"], st.addresses[0].address);

    // A statement pinned past the verifier's chain.
    let mut future = signed.verify(None).unwrap();
    future.block.height += 1000;
    let f = future.sign(&key).unwrap();
    std::fs::write(
        s.dir.join("future.json"),
        serde_json::to_string(&f).unwrap(),
    )
    .unwrap();
    let err = fails(
        &s.dir,
        &["statement", "verify", "future.json", "--source", &source],
    );
    assert!(err.contains("sync the node further"), "{err}");

    // Garbage in: clear errors, no panic.
    std::fs::write(s.dir.join("junk.json"), "{\"statement\": 3").unwrap();
    let err = fails(
        &s.dir,
        &["statement", "verify", "junk.json", "--source", &source],
    );
    assert!(err.contains("junk.json"), "{err}");
    let err = fails(&s.dir, &["statement", "create", "--key", "missing.key"]);
    assert!(err.contains("tesoro key generate"), "{err}");
    let err = fails(&s.dir, &["statement", "create", "--price", "USD:5"]);
    assert!(err.contains("CURRENCY=PRICE"), "{err}");
}
