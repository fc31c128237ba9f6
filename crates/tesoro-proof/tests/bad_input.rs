//! Bad input never panics and always gets an error: random, truncated and mutated PSBTs,
//! BIP-322 signatures, statement files and keys.

mod common;

use std::collections::HashMap;
use std::sync::OnceLock;

use bitcoin::{Network, OutPoint, TxOut};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use tesoro_core::statement::{
    challenge_message, utc_day, EntityTotal, PinnedBlock, SignedStatement, Software, Statement,
    StatementAddress, StatementUtxo, Tier, FORMAT,
};
use tesoro_core::ChainNetwork;
use tesoro_proof::bip127::{Commitment, ReservesPsbt};
use tesoro_proof::bip322;

struct Fixture {
    psbt: Vec<u8>,
    message: String,
    unspent: HashMap<OutPoint, TxOut>,
    height: u32,
    address: String,
    signature: String,
    statement: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let c = common::chain();
        let height = 130;
        let t = c.index.get(height).unwrap().time;
        let message = challenge_message("SV", &utc_day(t), height, &c.hash(height));
        let unspent = c.unspent(height);
        let mut coins: Vec<(OutPoint, TxOut)> = unspent.clone().into_iter().collect();
        coins.sort_by_key(|(o, _)| *o);
        coins.truncate(3);
        let psbt = common::reserves_psbt(&c, &message, Commitment::Sha256, &coins).serialize();
        let s = &c.named["seized"];
        let address = common::address(&s.script_pubkey);
        let signature =
            ::bip322::sign_simple_encoded(&address, &message, &common::wifs(s), None).unwrap();
        let st = Statement {
            format: FORMAT.into(),
            network: "regtest".into(),
            block: PinnedBlock {
                height,
                hash: c.hash(height),
                time: t,
            },
            institution: "SV".into(),
            entities: vec![EntityTotal {
                code: "SV".into(),
                name: "El Salvador".into(),
                parent: None,
                total_sats: 300,
            }],
            addresses: vec![StatementAddress {
                address: address.clone(),
                entity: "SV".into(),
                wallet: "seized".into(),
                tier: Tier::Published,
                balance_sats: 300,
                utxos: vec![StatementUtxo {
                    outpoint: format!("{}:0", "11".repeat(32)),
                    sats: 300,
                    height: 114,
                }],
            }],
            private_sats: 0,
            total_sats: 300,
            movements: None,
            valuations: vec![],
            challenge: message.clone(),
            proofs: vec![],
            software: Software {
                name: "tesoro".into(),
                version: "test".into(),
            },
            public_key: String::new(),
            issued_at: "2026-01-01T00:00:00Z".into(),
        };
        let signed = st.sign(&SigningKey::from_bytes(&[3u8; 32])).unwrap();
        Fixture {
            psbt,
            message,
            unspent,
            height,
            address,
            signature,
            statement: serde_json::to_string_pretty(&signed).unwrap(),
        }
    })
}

#[test]
fn the_fixture_itself_is_valid() {
    let f = fixture();
    ReservesPsbt::parse(&f.psbt)
        .unwrap()
        .verify(&f.message, &f.unspent, f.height)
        .unwrap();
    bip322::verify(
        &f.address,
        ChainNetwork(Network::Regtest),
        &f.message,
        &f.signature,
    )
    .unwrap();
    SignedStatement::from_json(&f.statement)
        .unwrap()
        .verify(None)
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_not_a_psbt(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = ReservesPsbt::parse(&data);
        let mut with_magic = b"psbt\xff".to_vec();
        with_magic.extend_from_slice(&data);
        let _ = ReservesPsbt::parse(&with_magic);
    }

    #[test]
    fn truncated_psbts_are_refused(cut in 0usize..10_000) {
        let f = fixture();
        let cut = cut % f.psbt.len();
        prop_assert!(ReservesPsbt::parse(&f.psbt[..cut]).is_err());
    }

    #[test]
    fn mutated_psbts_never_panic_and_never_prove_more(pos in 0usize..10_000, byte in any::<u8>()) {
        let f = fixture();
        let mut data = f.psbt.clone();
        let pos = pos % data.len();
        data[pos] = byte;
        if let Ok(p) = ReservesPsbt::parse(&data) {
            if let Ok(c) = p.verify(&f.message, &f.unspent, f.height) {
                // Only bytes outside what is signed may change (e.g. PSBT metadata); what
                // it proves stays the same.
                let orig = ReservesPsbt::parse(&f.psbt).unwrap().verify(&f.message, &f.unspent, f.height).unwrap();
                prop_assert_eq!(c.sats, orig.sats);
            }
        }
    }

    #[test]
    fn random_signatures_are_refused(sig in ".{0,200}") {
        let f = fixture();
        prop_assert!(bip322::verify(&f.address, ChainNetwork(Network::Regtest), &f.message, &sig).is_err());
    }

    #[test]
    fn truncated_or_mutated_signatures_are_refused(cut in 0usize..1000, pos in 0usize..1000, c in "[A-Za-z0-9+/=]") {
        let f = fixture();
        let net = ChainNetwork(Network::Regtest);
        let cut = cut % f.signature.len();
        prop_assert!(bip322::verify(&f.address, net, &f.message, &f.signature[..cut]).is_err());
        let mut s: Vec<char> = f.signature.chars().collect();
        let pos = 3 + pos % (s.len() - 3);
        let orig = s[pos];
        let ch = c.chars().next().unwrap();
        s[pos] = ch;
        let s: String = s.into_iter().collect();
        let r = bip322::verify(&f.address, net, &f.message, &s);
        // Base64 has slack bits in its last characters; anything else must fail.
        prop_assert!(r.is_err() || ch == orig || pos + 3 >= f.signature.len());
    }

    #[test]
    fn random_addresses_are_refused(addr in ".{0,120}") {
        let f = fixture();
        let _ = bip322::verify(&addr, ChainNetwork(Network::Regtest), &f.message, &f.signature);
    }

    #[test]
    fn truncated_statement_files_are_refused(cut in 0usize..100_000) {
        let f = fixture();
        let cut = cut % f.statement.len();
        let text = &f.statement[..cut];
        let r = SignedStatement::from_json(text).and_then(|s| s.verify(None));
        prop_assert!(r.is_err());
    }

    #[test]
    fn mutated_statement_files_never_panic(pos in 0usize..100_000, byte in 0x20u8..0x7f) {
        let f = fixture();
        let mut b = f.statement.clone().into_bytes();
        let pos = pos % b.len();
        let changed = b[pos] != byte;
        b[pos] = byte;
        let text = String::from_utf8_lossy(&b).to_string();
        let r = SignedStatement::from_json(&text).and_then(|s| s.verify(None));
        // Whitespace between tokens may change freely; any other change is caught.
        if r.is_ok() && changed {
            let orig: serde_json::Value = serde_json::from_str(&f.statement).unwrap();
            let now: serde_json::Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(orig, now);
        }
    }

    #[test]
    fn garbage_keys_and_numbers_in_statements_are_errors(key in ".{0,80}", n in any::<i64>()) {
        let f = fixture();
        let mut v: serde_json::Value = serde_json::from_str(&f.statement).unwrap();
        v["statement"]["public_key"] = serde_json::json!(key);
        let s: SignedStatement = serde_json::from_value(v.clone()).unwrap();
        prop_assert!(s.verify(None).is_err());
        v["statement"]["total_sats"] = serde_json::json!(n);
        v["statement"]["addresses"][0]["utxos"][0]["sats"] = serde_json::json!(u64::MAX);
        let s: SignedStatement = serde_json::from_value(v).unwrap();
        prop_assert!(s.verify(None).is_err());
    }
}
