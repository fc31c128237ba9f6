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

// ---- proofs of control, tiers, movements since a previous statement ----

mod proofs {
    use std::collections::HashMap;

    use bitcoin::hashes::{hash160, Hash};
    use bitcoin::psbt::Psbt;
    use bitcoin::secp256k1::Secp256k1;
    use bitcoin::{Address, Amount, Network, OutPoint, PrivateKey, ScriptBuf, TxIn, TxOut};
    use tesoro_proof::bip127::Commitment;
    use tesoro_testchain::keys::{secret_for, Spender};
    use tesoro_testchain::Kind;

    /// The scenario's seed (reserve.toml).
    const SEED: u64 = 20250701;

    /// A bare address's spender, from the generator's own key derivation.
    pub fn bare(name: &str, kind: Kind) -> Spender {
        let secp = Secp256k1::new();
        let n = if matches!(kind, Kind::ShMulti | Kind::WshMulti) {
            3
        } else {
            1
        };
        let secrets = (0..n)
            .map(|c| secret_for(SEED, &format!("address/{name}/{c}")).unwrap())
            .collect();
        Spender::new(&secp, kind, secrets)
    }

    pub fn address(s: &Spender) -> String {
        Address::from_script(&s.script_pubkey, Network::Regtest)
            .unwrap()
            .to_string()
    }

    pub fn wifs(s: &Spender, n: usize) -> Vec<String> {
        s.secrets[..n]
            .iter()
            .map(|k| PrivateKey::new(*k, Network::Regtest).to_wif())
            .collect()
    }

    pub fn multisig(s: &Spender) -> String {
        let mut keys: Vec<[u8; 33]> = s.pubkeys.iter().map(|k| k.to_bytes()).collect();
        keys.sort();
        let mut b = bitcoin::script::Builder::new().push_int(2);
        for k in &keys {
            b = b.push_slice(k);
        }
        b.push_int(3)
            .push_opcode(bitcoin::opcodes::all::OP_CHECKMULTISIG)
            .into_script()
            .to_hex_string()
    }

    /// Outputs paying `s` unspent at `h`, from the blocks.
    pub fn coins(blocks: &std::path::Path, s: &Spender, h: u32) -> Vec<(OutPoint, TxOut)> {
        let dir = tesoro_chain::BlocksDir::open(blocks, Network::Regtest).unwrap();
        let index = dir.index().unwrap();
        let m: HashMap<OutPoint, TxOut> = tesoro_proof::at_height::unspent_at(
            &dir,
            &index,
            std::slice::from_ref(&s.script_pubkey),
            0,
            h,
        )
        .unwrap();
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by_key(|(o, _)| *o);
        v
    }

    /// A signed BIP-127 PSBT over `message` spending `coins` of `s`.
    pub fn reserves_psbt(message: &str, s: &Spender, coins: &[(OutPoint, TxOut)]) -> Psbt {
        let secp = Secp256k1::new();
        let opt = TxOut {
            value: Amount::ZERO,
            script_pubkey: bitcoin::script::Builder::new()
                .push_opcode(bitcoin::opcodes::OP_TRUE)
                .into_script(),
        };
        let mut tx = bitcoin::Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::new(Commitment::Sha256.txid(message), 0),
                ..Default::default()
            }],
            output: vec![TxOut {
                value: coins.iter().map(|(_, o)| o.value).sum(),
                script_pubkey: ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_raw_hash(
                    hash160::Hash::hash(&[0]),
                )),
            }],
        };
        for (op, _) in coins {
            tx.input.push(TxIn {
                previous_output: *op,
                ..Default::default()
            });
        }
        let unsigned = tx.clone();
        let mut prevouts = vec![opt];
        prevouts.extend(coins.iter().map(|(_, o)| o.clone()));
        for i in 1..tx.input.len() {
            s.sign(&secp, &mut tx, i, &prevouts).unwrap();
        }
        let mut psbt = Psbt::from_unsigned_tx(unsigned).unwrap();
        for (i, pin) in psbt.inputs.iter_mut().enumerate() {
            pin.witness_utxo = Some(prevouts[i].clone());
            if i == 0 {
                pin.final_script_sig = Some(ScriptBuf::new());
                continue;
            }
            if !tx.input[i].script_sig.is_empty() {
                pin.final_script_sig = Some(tx.input[i].script_sig.clone());
            }
            if !tx.input[i].witness.is_empty() {
                pin.final_script_witness = Some(tx.input[i].witness.clone());
            }
        }
        psbt
    }
}

#[test]
fn proofs_make_addresses_verified_and_a_verifier_checks_them_at_the_height() {
    use tesoro_core::statement::{Proof, Tier};
    use tesoro_testchain::Kind;
    let s = setup();
    let h = "130";
    let source = format!("core-dir:{}", s.blocks.display());
    let ch: serde_json::Value =
        serde_json::from_str(&ok(&s.dir, &["proof", "challenge", "--at", h, "--json"])).unwrap();
    let message = ch["message"].as_str().unwrap().to_string();
    assert!(message.contains("institution SV"), "{message}");
    assert!(message.contains(ch["block_hash"].as_str().unwrap()));

    // BIP-322: the seized coins' P2TR address (simple) and the published 2-of-3 P2SH (full).
    let seized = proofs::bare("seized", Kind::Tr);
    let sig = bip322::sign_simple_encoded(
        &proofs::address(&seized),
        &message,
        &proofs::wifs(&seized, 1),
        None,
    )
    .unwrap();
    ok(
        &s.dir,
        &[
            "proof",
            "add",
            "--at",
            h,
            "--address",
            &proofs::address(&seized),
            "--signature",
            &sig,
        ],
    );
    let published = proofs::bare("published", Kind::ShMulti);
    let sig = bip322::sign_full_encoded(
        &proofs::address(&published),
        &message,
        &proofs::wifs(&published, 2),
        Some(&proofs::multisig(&published)),
        Default::default(),
    )
    .unwrap();
    ok(
        &s.dir,
        &[
            "proof",
            "add",
            "--at",
            h,
            "--address",
            &proofs::address(&published),
            "--signature",
            &sig,
        ],
    );
    // BIP-127: the mining payout's coins, unspent at 130.
    let mining = proofs::bare("mining-payout", Kind::Wpkh);
    let coins = proofs::coins(&s.blocks, &mining, 130);
    assert!(!coins.is_empty());
    let psbt = proofs::reserves_psbt(&message, &mining, &coins);
    std::fs::write(s.dir.join("reserves.psbt"), psbt.serialize()).unwrap();
    let added: serde_json::Value = serde_json::from_str(&ok(
        &s.dir,
        &[
            "proof",
            "add",
            "--at",
            h,
            "--psbt",
            "reserves.psbt",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(added["stored"], true);
    let sum: u64 = coins.iter().map(|(_, o)| o.value.to_sat()).sum();
    assert_eq!(added["sats"].as_u64().unwrap(), sum);
    // Adding it again stores nothing new.
    let again: serde_json::Value = serde_json::from_str(&ok(
        &s.dir,
        &[
            "proof",
            "add",
            "--at",
            h,
            "--psbt",
            "reserves.psbt",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(again["stored"], false);
    // The same PSBT for another block's challenge: refused.
    let err = fails(
        &s.dir,
        &["proof", "add", "--at", "140", "--psbt", "reserves.psbt"],
    );
    assert!(err.contains("commit to the challenge"), "{err}");
    // A proof over the challenge at 175 spending the seized coins of 130, which moved at
    // 171: the signatures are good, but the coins were not unspent at 175. Refused.
    let ch175: serde_json::Value = serde_json::from_str(&ok(
        &s.dir,
        &["proof", "challenge", "--at", "175", "--json"],
    ))
    .unwrap();
    let seized_at_130 = proofs::coins(&s.blocks, &seized, 130);
    let late = proofs::reserves_psbt(ch175["message"].as_str().unwrap(), &seized, &seized_at_130);
    std::fs::write(s.dir.join("late.psbt"), late.serialize()).unwrap();
    let err = fails(
        &s.dir,
        &["proof", "add", "--at", "175", "--psbt", "late.psbt"],
    );
    assert!(
        err.contains("not an unspent output") && err.contains("175"),
        "{err}"
    );
    // A forged taproot signature: refused, nothing stored.
    let seized_coins = proofs::coins(&s.blocks, &seized, 130);
    let mut forged = proofs::reserves_psbt(&message, &seized, &seized_coins);
    let mut w = bitcoin::Witness::new();
    w.push([0x42u8; 64]);
    forged.inputs[1].final_script_witness = Some(w);
    std::fs::write(
        s.dir.join("forged.psbt"),
        tesoro_proof::bip127::encode(&forged),
    )
    .unwrap();
    let err = fails(
        &s.dir,
        &["proof", "add", "--at", h, "--psbt", "forged.psbt"],
    );
    assert!(err.contains("does not verify"), "{err}");
    // Garbage: clear errors, nothing stored.
    let err = fails(
        &s.dir,
        &[
            "proof",
            "add",
            "--at",
            h,
            "--address",
            &proofs::address(&seized),
            "--signature",
            "bm90IGEgc2lnbmF0dXJl",
        ],
    );
    assert!(err.contains("BIP-322"), "{err}");
    std::fs::write(s.dir.join("junk.psbt"), "cHNidP8B").unwrap();
    let err = fails(&s.dir, &["proof", "add", "--at", h, "--psbt", "junk.psbt"]);
    assert!(err.contains("junk.psbt"), "{err}");
    let list: serde_json::Value =
        serde_json::from_str(&ok(&s.dir, &["proof", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");

    // The statement at 130 attaches them and marks those addresses verified.
    ok(&s.dir, &["statement", "create", "--at", h, "-o", "st.json"]);
    let st = read(&s.dir.join("st.json")).verify(None).unwrap();
    assert_eq!(st.proofs.len(), 3);
    let tier = |a: &str| st.addresses.iter().find(|x| x.address == a).map(|x| x.tier);
    assert_eq!(tier(&proofs::address(&seized)), Some(Tier::Verified));
    assert_eq!(tier(&proofs::address(&published)), Some(Tier::Verified));
    assert_eq!(tier(&proofs::address(&mining)), Some(Tier::Verified));
    assert!(st.addresses.iter().any(|a| a.tier == Tier::Published));
    // An independent verifier re-checks every proof against its own blocks at 130.
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
    assert_eq!(v["verified_addresses"], 3);
    assert!(v["proofs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["ok"] == true));

    // A statement whose BIP-127 proof was swapped for the forged one (re-signed by the
    // office): the signature holds, the verifier's own check of the proof fails.
    let mut bad = st.clone();
    for p in &mut bad.proofs {
        if let Proof::Bip127 { psbt, .. } = p {
            let mut parsed: bitcoin::psbt::Psbt =
                tesoro_proof::bip127::ReservesPsbt::parse(psbt.as_bytes())
                    .unwrap()
                    .psbt()
                    .clone();
            let mut w = bitcoin::Witness::new();
            w.push([0u8; 72]);
            w.push([2u8; 33]);
            parsed.inputs[1].final_script_witness = Some(w);
            *psbt = tesoro_proof::bip127::encode(&parsed);
        }
    }
    let key_pem = std::fs::read_to_string(s.dir.join("office.key")).unwrap();
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&key_pem).unwrap();
    std::fs::write(
        s.dir.join("bad.json"),
        serde_json::to_string_pretty(&bad.sign(&key).unwrap()).unwrap(),
    )
    .unwrap();
    let out = tesoro(
        &s.dir,
        &[
            "statement",
            "verify",
            "bad.json",
            "--source",
            &source,
            "--json",
        ],
    );
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["discrepancies"].to_string().contains("does not verify"),
        "{v}"
    );
}

#[test]
fn private_tier_and_movements_since_the_previous_statement() {
    let s = setup();
    let source = format!("core-dir:{}", s.blocks.display());
    ok(&s.dir, &["statement", "tier", "treasury", "private"]);
    let tiers = ok(&s.dir, &["statement", "tiers", "--json"]);
    assert!(tiers.contains("\"private\""), "{tiers}");
    let err = fails(&s.dir, &["statement", "tier", "treasury", "verified"]);
    assert!(err.contains("earned by a proof"), "{err}");
    ok(
        &s.dir,
        &["statement", "create", "--at", "120", "-o", "a.json"],
    );
    ok(
        &s.dir,
        &[
            "statement",
            "create",
            "--at",
            "160",
            "--since",
            "a.json",
            "-o",
            "b.json",
        ],
    );
    let a = read(&s.dir.join("a.json")).verify(None).unwrap();
    let b = read(&s.dir.join("b.json")).verify(None).unwrap();
    let cp = s
        .expected
        .checkpoints
        .iter()
        .find(|c| c.height == 160)
        .unwrap();
    assert_eq!(b.total_sats, cp.balances.values().sum::<u64>());
    assert_eq!(b.private_sats, cp.balances["treasury"]);
    assert!(b.addresses.iter().all(|x| x.wallet != "treasury"));
    let m = b.movements.as_ref().unwrap();
    assert_eq!(m.since.height, 120);
    assert_eq!(m.since.sha256, read(&s.dir.join("a.json")).sha256);
    assert_eq!(m.opening_sats, a.total_sats);
    assert_eq!(m.implied_closing(), Some(b.total_sats));
    // Between 120 and 160: consolidations and the 14-way split are internal; the payment at
    // 145 is a disposal; the coinbase at 150 an acquisition.
    assert!(
        m.internal_in_sats > 0 && m.internal_in_sats == m.internal_out_sats,
        "{m:?}"
    );
    assert!(
        m.disposals.iter().map(|k| k.sats).sum::<u64>() >= 123_456_789,
        "{m:?}"
    );
    assert!(!m.acquisitions.is_empty(), "{m:?}");
    assert!(m.fee_sats > 0);
    let v: serde_json::Value = serde_json::from_str(&ok(
        &s.dir,
        &[
            "statement",
            "verify",
            "b.json",
            "--source",
            &source,
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(v["ok"], true, "{v}");
    // Both are stored.
    let list: serde_json::Value =
        serde_json::from_str(&ok(&s.dir, &["statement", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    // --since a later statement, or garbage: refused with the file named.
    let err = fails(
        &s.dir,
        &[
            "statement",
            "create",
            "--at",
            "110",
            "--since",
            "b.json",
            "-o",
            "c.json",
        ],
    );
    assert!(err.contains("not before"), "{err}");
    std::fs::write(s.dir.join("junk.json"), "{\"statement\":").unwrap();
    let err = fails(
        &s.dir,
        &[
            "statement",
            "create",
            "--since",
            "junk.json",
            "-o",
            "c.json",
        ],
    );
    assert!(err.contains("junk.json"), "{err}");
    assert!(!s.dir.join("c.json").exists());
    let list: serde_json::Value =
        serde_json::from_str(&ok(&s.dir, &["statement", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "nothing half-stored");
    // A garbage public key file for verification: a clear error.
    std::fs::write(s.dir.join("bad.pub"), "zz").unwrap();
    let err = fails(
        &s.dir,
        &[
            "statement",
            "verify",
            "b.json",
            "--source",
            &source,
            "--key",
            "bad.pub",
        ],
    );
    assert!(err.contains("bad.pub"), "{err}");
}
