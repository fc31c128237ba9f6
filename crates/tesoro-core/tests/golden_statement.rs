//! The canonical form is a contract: a second implementation that builds this statement must
//! produce exactly these bytes (docs/statements.md describes them). The committed files and
//! the pinned SHA-256 change only with a new format version.
//!
//! To rewrite the files after a deliberate format change: `TESORO_BLESS=1 cargo test -p
//! tesoro-core --test golden_statement`, then update `PINNED_SHA256`.

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use tesoro_core::canonical::to_canonical;
use tesoro_core::statement::{
    challenge_message, sha256_hex, EntityTotal, FxUsed, KindTotal, Movements, PinnedBlock,
    PreviousStatement, Proof, SignedStatement, Software, Statement, StatementAddress,
    StatementUtxo, Tier, Valuation, FORMAT,
};

const PINNED_SHA256: &str = "20882dde22cb29ac21ae279f3d112b5d2967dd9c17d4d87d4171ef6108845475";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Every field in use: two entities, a verified, a published and a private part, movements
/// since a previous statement, a valuation from its own series and one through FX, both
/// kinds of proof. (Proof contents are fixed strings here: the canonical form does not check
/// them; tesoro-proof does.)
fn golden() -> Statement {
    let hash = "0000000000000000000160cc0c9ae2b3b5c2bd4c6d7b5b3c5b5a0b2e0c3d4e5f";
    let time = 1_752_710_400; // 2025-07-17T00:00:00Z
    let addresses = vec![
        StatementAddress {
            address: "32ixEdVJWo3kmvJGMTZq5jAQVZZeuwnqzo".into(),
            entity: "SV".into(),
            wallet: "cold-vault".into(),
            tier: Tier::Verified,
            balance_sats: 500_000_000_000,
            utxos: vec![
                StatementUtxo {
                    outpoint: format!("{}:0", "a1".repeat(32)),
                    sats: 300_000_000_000,
                    height: 834_000,
                },
                StatementUtxo {
                    outpoint: format!("{}:3", "b2".repeat(32)),
                    sats: 200_000_000_000,
                    height: 850_123,
                },
            ],
        },
        StatementAddress {
            address: "bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l".into(),
            entity: "SV-ONBTC".into(),
            wallet: "daily \"1 BTC\" purchases".into(),
            tier: Tier::Published,
            balance_sats: 12_345_678,
            utxos: vec![StatementUtxo {
                outpoint: format!("{}:1", "c3".repeat(32)),
                sats: 12_345_678,
                height: 904_990,
            }],
        },
    ];
    let listed: u64 = 500_000_000_000 + 12_345_678;
    let private = 87_654_322;
    let total = listed + private;
    Statement {
        format: FORMAT.into(),
        network: "mainnet".into(),
        block: PinnedBlock {
            height: 905_000,
            hash: hash.into(),
            time,
        },
        institution: "SV".into(),
        entities: vec![
            EntityTotal {
                code: "SV".into(),
                name: "El Salvador".into(),
                parent: None,
                total_sats: total,
            },
            EntityTotal {
                code: "SV-ONBTC".into(),
                name: "Oficina Nacional del Bitcoin — ONBTC".into(),
                parent: Some("SV".into()),
                total_sats: 100_000_000,
            },
        ],
        addresses,
        private_sats: private,
        total_sats: total,
        movements: Some(Movements {
            since: PreviousStatement {
                height: 900_000,
                hash: "00".repeat(32),
                sha256: "11".repeat(32),
                total_sats: total - 100_000_000 + 10_000,
            },
            opening_sats: total - 100_000_000 + 10_000,
            acquisitions: vec![
                KindTotal {
                    kind: "purchase".into(),
                    count: 30,
                    sats: 3_000_000_000,
                },
                KindTotal {
                    kind: "seizure".into(),
                    count: 1,
                    sats: 25_000_000,
                },
            ],
            internal_count: 2,
            internal_in_sats: 1_000_000_000,
            internal_out_sats: 1_000_000_000,
            disposals: vec![KindTotal {
                kind: "payment".into(),
                count: 1,
                sats: 2_925_000_000,
            }],
            fee_count: 3,
            fee_sats: 10_000,
        }),
        valuations: vec![
            Valuation {
                currency: "USD".into(),
                price: "119501.66".into(),
                value: "597627801.66".into(),
                date: "2025-07-17".into(),
                source: "Coin Metrics community data (PriceUSD)".into(),
                fx: None,
            },
            Valuation {
                currency: "PKR".into(),
                price: "33979102.0044".into(),
                value: "169929489124.00".into(),
                date: "2025-07-17".into(),
                source: "Coin Metrics community data (PriceUSD)".into(),
                fx: Some(FxUsed {
                    base: "USD".into(),
                    base_price: "119501.66".into(),
                    rate: "284.34".into(),
                    date: "2025-07-17".into(),
                    source: "State Bank of Pakistan".into(),
                }),
            },
        ],
        challenge: challenge_message("SV", "2025-07-17", 905_000, hash),
        proofs: vec![
            Proof::Bip127 {
                psbt: "cHNidP8BAA==".into(),
                commitment: "sha256".into(),
                outpoints: vec![format!("{}:0", "a1".repeat(32))],
                sats: 300_000_000_000,
            },
            Proof::Bip322 {
                address: "32ixEdVJWo3kmvJGMTZq5jAQVZZeuwnqzo".into(),
                format: "full".into(),
                signature: "AgAAAAEvAyd4zsoz8gcV/+==".into(),
            },
        ],
        software: Software {
            name: "tesoro".into(),
            version: "0.1.0".into(),
        },
        public_key: String::new(),
        issued_at: "2025-07-17T12:00:00Z".into(),
    }
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

#[test]
fn golden_statement_bytes_and_hash_are_pinned() {
    let signed = golden().sign(&key()).unwrap();
    let canonical = to_canonical(&signed.statement).unwrap();
    let canon_path = dir().join("statement.canonical.json");
    let file_path = dir().join("statement.json");
    if std::env::var_os("TESORO_BLESS").is_some() {
        std::fs::write(&canon_path, &canonical).unwrap();
        let mut text = serde_json::to_string_pretty(&signed).unwrap();
        text.push('\n');
        std::fs::write(&file_path, text).unwrap();
        eprintln!("blessed; sha256 {}", signed.sha256);
    }
    let committed = std::fs::read(&canon_path).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&canonical),
        String::from_utf8_lossy(&committed),
        "the canonical bytes changed"
    );
    assert_eq!(sha256_hex(&committed), PINNED_SHA256);
    assert_eq!(signed.sha256, PINNED_SHA256);
    // The committed statement file (pretty-printed, keys in struct order) verifies and hashes
    // to the same value: layout in the file does not matter, only the canonical bytes.
    let file = SignedStatement::from_json(&std::fs::read_to_string(&file_path).unwrap()).unwrap();
    assert_eq!(file.sha256, PINNED_SHA256);
    let st = file.verify(Some(&key().verifying_key())).unwrap();
    assert_eq!(st, {
        let mut g = golden();
        g.public_key = st.public_key.clone();
        g
    });
    // Ed25519 is deterministic: the same key signs the same bytes the same way.
    assert_eq!(file.signature, signed.signature);
}

#[test]
fn canonical_form_rules_hold_on_the_golden_file() {
    let committed = std::fs::read_to_string(dir().join("statement.canonical.json")).unwrap();
    // No trailing newline; and a second, independent serializer (serde_json's compact form,
    // whose maps are sorted by key) gives the same bytes for this document.
    assert!(!committed.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(serde_json::to_string(&v).unwrap(), committed);
    // Keys sorted: the first keys of the statement object, in byte order.
    assert!(
        committed.starts_with("{\"addresses\":[{\"address\":"),
        "{}",
        &committed[..60]
    );
    // Non-ASCII is raw UTF-8, quotes escaped.
    assert!(committed.contains("ONBTC"));
    assert!(committed.contains("—"));
    assert!(committed.contains("daily \\\"1 BTC\\\" purchases"));
}
