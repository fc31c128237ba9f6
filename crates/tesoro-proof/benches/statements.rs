//! Statement create and verify at 10,000 addresses and 100,000 outputs (canonical form,
//! SHA-256 and Ed25519 signature, totals check; the chain scan is not included), and BIP-322
//! verifications per second for P2WPKH and P2TR.
//!
//! `cargo bench -p tesoro-proof --bench statements`

use std::hint::black_box;

use bitcoin::Network;
use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::SigningKey;
use tesoro_core::statement::{
    EntityTotal, PinnedBlock, Software, Statement, StatementAddress, StatementUtxo, Tier, FORMAT,
};
use tesoro_core::ChainNetwork;

fn big_statement(addresses: usize, per_address: usize) -> Statement {
    let mut list = Vec::with_capacity(addresses);
    let mut total = 0u64;
    for a in 0..addresses {
        let utxos: Vec<StatementUtxo> = (0..per_address)
            .map(|u| StatementUtxo {
                outpoint: format!("{:064x}:{u}", a as u64 * 7919 + 1),
                sats: 1_000 + (a * per_address + u) as u64,
                height: 800_000 + (u as u32),
            })
            .collect();
        let balance: u64 = utxos.iter().map(|u| u.sats).sum();
        total += balance;
        list.push(StatementAddress {
            address: format!("bc1q{:038x}", a),
            entity: "SV".into(),
            wallet: format!("wallet-{}", a % 14),
            tier: Tier::Published,
            balance_sats: balance,
            utxos,
        });
    }
    Statement {
        format: FORMAT.into(),
        network: "mainnet".into(),
        block: PinnedBlock {
            height: 905_000,
            hash: "00".repeat(32),
            time: 1_752_710_400,
        },
        institution: "SV".into(),
        entities: vec![EntityTotal {
            code: "SV".into(),
            name: "El Salvador".into(),
            parent: None,
            total_sats: total,
        }],
        addresses: list,
        private_sats: 0,
        total_sats: total,
        movements: None,
        valuations: vec![],
        challenge: String::new(),
        proofs: vec![],
        software: Software {
            name: "tesoro".into(),
            version: "bench".into(),
        },
        public_key: String::new(),
        issued_at: "2025-07-17T00:00:00Z".into(),
    }
}

fn statements(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let st = big_statement(10_000, 10);
    let signed = st.sign(&key).unwrap();
    let vk = key.verifying_key();
    let mut g = c.benchmark_group("statement 10k addresses 100k utxos");
    g.sample_size(10);
    g.bench_function("create (canonicalize + hash + sign)", |b| {
        b.iter(|| black_box(st.sign(&key).unwrap()))
    });
    g.bench_function("verify (canonicalize + hash + signature + totals)", |b| {
        b.iter(|| black_box(signed.verify(Some(&vk)).unwrap()))
    });
    g.bench_function("file round trip (serialize + parse + verify)", |b| {
        b.iter(|| {
            let text = serde_json::to_string(&signed).unwrap();
            let back = tesoro_core::statement::SignedStatement::from_json(&text).unwrap();
            black_box(back.verify(Some(&vk)).unwrap())
        })
    });
    g.finish();
}

fn bip322(c: &mut Criterion) {
    let net = ChainNetwork(Network::Bitcoin);
    // BIP-322's published vectors.
    let wpkh = (
        "bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l",
        "Hello World",
        "AkcwRAIgZRfIY3p7/DoVTty6YZbWS71bc5Vct9p9Fia83eRmw2QCICK/ENGfwLtptFluMGs2KsqoNSk89pO7F29zJLUx9a/sASECx/EgAxlkQpQ9hYjgGu6EBCPMVPwVIVJqO4XCsMvViHI=",
    );
    let tr = (
        "bc1ppv609nr0vr25u07u95waq5lucwfm6tde4nydujnu8npg4q75mr5sxq8lt3",
        "Hello World",
        "AUHd69PrJQEv+oKTfZ8l+WROBHuy9HKrbFCJu7U1iK2iiEy1vMU5EfMtjc+VSHM7aU0SDbak5IUZRVno2P5mjSafAQ==",
    );
    let mut g = c.benchmark_group("bip322 verify");
    for (name, (a, m, s)) in [("p2wpkh", wpkh), ("p2tr", tr)] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(tesoro_proof::bip322::verify(a, net, m, s).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, statements, bip322);
criterion_main!(benches);
