//! Proofs of control over real chain data: BIP-322 signatures made here with the test
//! chain's own keys (every script type the reserve uses) and BIP-322's published vectors;
//! BIP-127 proof-of-reserves PSBTs checked at a pinned height against the blocks, including
//! the forged-taproot PSBT that bdk-reserves 3.2.0 alone accepts.

mod common;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Message;
use bitcoin::sighash::SighashCache;
use bitcoin::{EcdsaSighashType, Network, OutPoint, TxOut, Witness};
use common::{address, chain, multisig_script, reserves_psbt, wifs, Chain};
use tesoro_core::statement::challenge_message;
use tesoro_core::ChainNetwork;
use tesoro_proof::bip127::{Commitment, ReservesPsbt};
use tesoro_proof::{bip322, ProofError};
use tesoro_testchain::Kind;

const REGTEST: ChainNetwork = ChainNetwork(Network::Regtest);
const MAINNET: ChainNetwork = ChainNetwork(Network::Bitcoin);

fn message(c: &Chain, h: u32) -> String {
    let t = c.index.get(h).unwrap().time;
    challenge_message("SV", &tesoro_core::statement::utc_day(t), h, &c.hash(h))
}

// BIP-322's published vectors (bitcoin/bips, bip-0322/generated-test-vectors.json, CC0).
#[test]
fn bip322_published_vectors() {
    let simple = [
        ("bc1qqthe0hz8klx90e7stf6shclhsvqd5ly96pn53v", "2V6TUTMSH4VQ3Z7WZWKYD7DFNH", "AkgwRQIhALC6hdfxNy1n45d7UXSskRBdfZW0Al259E1kDMpipdYkAiAJPfZqb+WurZuf1apU5xeE6Igui9dvt5tihQLDvxlY1AEhAqbnruyo677ktQjio7XOchO3w51Dh9AbRVngha5jtNfT"),
        ("bc1pcquvhrqv0q68t4m0hfq6tpn006qrskyc7yrqnp2uyrf2emg3wynsdjyk38", "PURVOQ544B6HUATVBJZN5EZJUU", "AUB6B2Rbupzua8LTQIF06516wzl+cwKy1be8RgoiW0riyXdKwe6GTz/5Hnb37m67pJwIKCh+D5jDueG6KpvYpmu8"),
        ("bc1qw6g0rgrpuxvj4edkwtvzpmt3c5m08mhp8nuk3mrk4erufvlczp5ssdscjd", "G7ZTXXOVJFHGDD6XYJAGBAMT5A", "BABIMEUCIQCKl1f9Cj26k0fFWE48+O4ibhYJYPytbDZWJRaaG9BybwIgCbk+3BViWkpuu2RI+41dwtlQ/m/01G860pTFCzDFfokBSDBFAiEA0O77DJsaM7IO+Ht06sp3umzXB64CNNOwf2isZuPfdmwCIGlggOwRSkXsqlPhE1gMdd5hf7ycL33Orfrr4v/XnMGSAUdSIQNsu/OwZurHvJMoiJoSAmmCHLoqIc5Wblh+rek+7rhASCECgYVkUspeAxwRfM6v4GRBhN/gGxTfpPqZuOlBIYZxTJZSrg=="),
        // BIP-322's own examples: "Hello World" by a P2WPKH and a P2TR key.
        ("bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l", "Hello World", "AkcwRAIgZRfIY3p7/DoVTty6YZbWS71bc5Vct9p9Fia83eRmw2QCICK/ENGfwLtptFluMGs2KsqoNSk89pO7F29zJLUx9a/sASECx/EgAxlkQpQ9hYjgGu6EBCPMVPwVIVJqO4XCsMvViHI="),
        ("bc1ppv609nr0vr25u07u95waq5lucwfm6tde4nydujnu8npg4q75mr5sxq8lt3", "Hello World", "AUHd69PrJQEv+oKTfZ8l+WROBHuy9HKrbFCJu7U1iK2iiEy1vMU5EfMtjc+VSHM7aU0SDbak5IUZRVno2P5mjSafAQ=="),
    ];
    for (a, m, s) in simple {
        assert_eq!(
            bip322::verify(a, MAINNET, m, s).unwrap(),
            bip322::Format::Simple,
            "{a}"
        );
        assert_eq!(
            bip322::verify(a, MAINNET, m, &format!("smp{s}")).unwrap(),
            bip322::Format::Simple
        );
        // Another message: refused, naming the address.
        let e = bip322::verify(a, MAINNET, "another message", s).unwrap_err();
        assert!(matches!(e, ProofError::Bip322 { .. }), "{e}");
        assert!(e.to_string().contains(a), "{e}");
    }
    let full = [
        ("bc1qrqtlzcq86850yzgsyq9sssawx2qxlx5yq3xpkd", "KLE5MMJBTNF4AVZXIO3GIL5UWF", "AgAAAAABAUrfzHHOLAKmgCIFSTT3krp+cQxj1BDPBN4GBg3tRmFXAAAAAADgBwAAAQAAAAAAAAAAAWoCSDBFAiEAjYj85zyhQKa9DbMO0reDwdhkNwKJkF3q2qFcijXDgMUCIAaQ75s3fwqrCeYIUJugLvhxZFxQIVquGN90vIKCW3QLASEDMurnDzvc0zABUwVwCADfGXoDx/M3SQnYt7e3IHDoU3PgBwAA"),
        ("bc1pve87s3l2levjmhetzr2f9xvep3y266xty0hnefmyv8tkxc3e4qssll2kdu", "XQMVC3YR6AOGZIHLSUQ2NSSBI2", "AgAAAAABAROFPNY6Zt8hFK0YQq5Wb6wk/CnUYEPtQ0HTHDyzNROrAAAAAADgBwAAAQAAAAAAAAAAAWoBQNRdLOo5XZY0SBqAsLZNr/z3Bqrmo3OxVn7e4tD/OOD4H9U/L1unq5Nmdz+S1w7SHtt46bFwnd8xnRVan8BofFfgBwAA"),
        ("32Utb7Seg6EXq7UesMNJXhQ1gdohYNyzQ9", "EMYGZHEY3LIANYKCR7XJF3NMFQ", "AgAAAAABAe5xLNMlYQH4OGjJ3h4lqQaVp0Cic7mwxkvyWswqFMXeAAAAABcWABSy/hpDH/KLAi4x25Tmb2UaO1xtWeAHAAABAAAAAAAAAAABagJHMEQCIDEleqb0n1R5c21TGkWRXNFae98wbwI0QOyh/YmRuQX1AiAcv1MhyTzPOVgZ1VIwuu0tDxrVJUHK8lhOUOXpsZnGwwEhAsjeDEoWX8hvEC8A/692yGQsPh6JBO8Zf4aITEQsKAcJ4AcAAA=="),
        ("bc1qg8r3cl47rrr75dwvr7jhzdukptegnmq8v0nmjd2jdn4qvlczqkts0rqtav", "QXYOWYWO7ZGJC4OPNC367HBUQF", "AgAAAAABAXshuDM6YKy1LClwk1ZOM5egX7RTFPOCvtxJkYFYk/FEAAAAAADgBwAAAQAAAAAAAAAAAWoEAEgwRQIhAI9uOxvqmBV0pldOoKWnSYhjobNhP4F+gxO0QlOdGtxFAiBROcNruLigZE4lj1DJEh8yGrqS00MeW463EO78TsaRFgFIMEUCIQCAhIqYuU4wDA2AYsU+QDVyucH4Tm/NSDP2+txyPMKEkAIgfuGlSh7ncxb2yV3S3aOF5uwHGqtIZjp3b4HW0d35EckBR1IhAkT3y4QqTOTzUs5AYq5eCl1g1vqgsHtiwgY0hKpSl7vOIQI07tYZDvxHcWuVOgULVj+LK1I63eqVWuQzUd0qkqpJ9FKu4AcAAA=="),
        ("3PGZjFkYBL1m9WBWkWbCW5FEFTaS1Hj4EB", "NQVRV3DJYLKBANM3OPTNBULEU3", "AgAAAAABAVscdBvYDFN98A//Rt/fAWcN7mdM0x2yWzBjC33c7X5HAAAAACMiACDkkR/DseXy+GXBPtxHvHehUjHt+9XjRmZAgxuuomAC4eAHAAABAAAAAAAAAAABagQASDBFAiEA47YK5XeIGBMQC9bCfWb+IIfirIWlqAzQVc6E/lgBPZICIA0k/EO2t3YhqmYR5WdXUBGgAzR+IqgZ5/mxvj+4UoDTAUgwRQIhAPCIVZCSoIaOjY9BzYIXWEvbhpOl4JR88p/xYVoZObd6AiADyJXNqpDg/Lc2viPX14N2d0jQdEjamY4SmiU7GNbIOgFHUiED+4JBU/wACiE8VFbQF4DR8pKgz7+8X2+PHccTcGxVGdEhA9uIzp+4CB5QRgvrN1OXQbBmfW8kOd0cooPWMYJCHBCxUq7gBwAA"),
        ("3Nye4j1GUFqCEBR3do2KEFZAs9oLe8NZ6X", "7OKFLKRXSP6J42VQOMSG7MVXEP", "AgAAAAEvAyd4zsoz8gcVU5H19GLYokTAN5PxuKCBlEPjODJ86gAAAADaAEcwRAIgT6rcfxgCmG6b3DpzNV6UG0jiCQGclG9sfiSpV45HDXMCIGgtqjFBuJ7rbi+cgnG0TZiKZaxMk0KI+gQd0pHJfEYCAUgwRQIhANCvCLjGMuZMzH+nCEkNhWhR45T6QRYMLin8utpuF9r1AiBTjG2NLjkre7ec+HPg8UUhK1jL1vgq7YKjq5ROv+h07AFHUiEDhKjcb/Pv1/7AYutzOXwgec08wwD/VwiPm58Lc0xjohghAhycjpwdBuP33orQXAH1CAsrgSkuspxM2+FPQ4OCVhQWUq7gBwAAAQAAAAAAAAAAAWrgBwAA"),
    ];
    for (a, m, s) in full {
        assert_eq!(
            bip322::verify(a, MAINNET, m, s).unwrap(),
            bip322::Format::Full,
            "{a}"
        );
        assert!(bip322::verify(a, MAINNET, "another message", s).is_err());
    }
    // A mainnet address in a regtest office: refused as such.
    let (a, m, s) = simple[0];
    let e = bip322::verify(a, REGTEST, m, s).unwrap_err();
    assert!(matches!(e, ProofError::Address { .. }), "{e}");
    // The published wrong-signer vector (P2WSH 2-of-2 simple): refused.
    assert!(bip322::verify(
        "bc1q47vnwr6fsarstmmw89wrkvl89540sn5g79x75ms8aly9rrsnq8eqh3v9gz",
        MAINNET,
        "G7ZTXXOVJFHGDD6XYJAGBAMT5A",
        simple[2].2
    )
    .is_err());
}

#[test]
fn bip322_signed_with_the_chain_keys_for_every_script_type() {
    let c = chain();
    let h = 150;
    let m = message(&c, h);
    // (owner, format) for each script type the reserve uses.
    let cases = [
        ("mining-payout", Kind::Wpkh, false),
        ("seized", Kind::Tr, false),
        ("cold", Kind::Tr, true),
        ("nested", Kind::ShWpkh, true),
        ("treasury", Kind::WshMulti, false),
        ("treasury", Kind::WshMulti, true),
        ("published", Kind::ShMulti, true),
    ];
    for (name, kind, full) in cases {
        let s = &c.named[name];
        assert_eq!(s.kind, kind);
        let addr = address(&s.script_pubkey);
        let keys: Vec<String> = match kind {
            // Two of three cosigners sign.
            Kind::WshMulti | Kind::ShMulti => wifs(s)[..2].to_vec(),
            _ => wifs(s),
        };
        let script = matches!(kind, Kind::WshMulti | Kind::ShMulti)
            .then(|| multisig_script(s).to_hex_string());
        let sig = if full {
            ::bip322::sign_full_encoded(&addr, &m, &keys, script.as_deref(), Default::default())
                .unwrap()
        } else {
            ::bip322::sign_simple_encoded(&addr, &m, &keys, script.as_deref()).unwrap()
        };
        let want = if full {
            bip322::Format::Full
        } else {
            bip322::Format::Simple
        };
        assert_eq!(
            bip322::verify(&addr, REGTEST, &m, &sig).unwrap(),
            want,
            "{name}"
        );
        // Without the variant prefix the bytes tell the format.
        let bare = &sig[3..];
        assert_eq!(
            bip322::verify(&addr, REGTEST, &m, bare).unwrap(),
            want,
            "{name}"
        );
        // The challenge of another block: refused.
        let other = message(&c, h - 1);
        assert!(
            bip322::verify(&addr, REGTEST, &other, &sig).is_err(),
            "{name}"
        );
        // Another owner's address: refused.
        let wrong = address(&c.named["agency-wpkh"].script_pubkey);
        assert!(bip322::verify(&wrong, REGTEST, &m, &sig).is_err(), "{name}");
    }
}

/// Coins unspent at `h` of the kinds asked, one each.
fn coins_of(c: &Chain, h: u32, kinds: &[Kind]) -> Vec<(OutPoint, TxOut)> {
    let unspent = c.unspent(h);
    let mut all: Vec<(OutPoint, TxOut)> = unspent.into_iter().collect();
    all.sort_by_key(|(o, _)| *o);
    kinds
        .iter()
        .map(|k| {
            all.iter()
                .find(|(_, o)| c.spenders[&o.script_pubkey].kind == *k)
                .cloned()
                .unwrap_or_else(|| panic!("no {k:?} coin unspent at {h}"))
        })
        .collect()
}

#[test]
fn bip127_checked_at_the_pinned_height_with_every_input_script() {
    let c = chain();
    let h = 130;
    let m = message(&c, h);
    let coins = coins_of(
        &c,
        h,
        &[Kind::Wpkh, Kind::Tr, Kind::ShMulti, Kind::WshMulti],
    );
    let total: u64 = coins.iter().map(|(_, o)| o.value.to_sat()).sum();
    let at_h = c.unspent(h);
    for commitment in [Commitment::Sha256, Commitment::Sha256d] {
        let psbt = reserves_psbt(&c, &m, commitment, &coins);
        let parsed = ReservesPsbt::parse(psbt.serialize().as_slice()).unwrap();
        let ok = parsed.verify(&m, &at_h, h).unwrap();
        assert_eq!(ok.commitment, commitment);
        assert_eq!(ok.sats, total);
        assert_eq!(ok.inputs.len(), coins.len());
        // Base64 text reads the same.
        let again = ReservesPsbt::parse(parsed.to_base64().as_bytes()).unwrap();
        assert_eq!(again.verify(&m, &at_h, h).unwrap(), ok);
        // Another message: the commitment does not match.
        let e = parsed.verify(&message(&c, h - 1), &at_h, h).unwrap_err();
        assert!(matches!(e, ProofError::Commitment { .. }), "{e}");
    }
    // Later, some of these coins were spent (the seized coins moved at 171): the same proof
    // no longer holds at the tip, which is why a proof is checked at its statement's height.
    let psbt = reserves_psbt(&c, &m, Commitment::Sha256, &coins);
    let parsed = ReservesPsbt::parse(&psbt.serialize()).unwrap();
    let tip = c.index.tip_height();
    let e = parsed.verify(&m, &c.unspent(tip), h).unwrap_err();
    assert!(matches!(e, ProofError::NotUnspent { .. }), "{e}");
    // A coin that did not exist yet at the height: refused.
    let before = c.unspent(112);
    let e = parsed.verify(&m, &before, 112).unwrap_err();
    assert!(e.to_string().contains("not an unspent output"), "{e}");
}

#[test]
fn bip127_forged_taproot_input_accepted_by_bdk_reserves_is_rejected_here() {
    let c = chain();
    let h = 130;
    let m = message(&c, h);
    let coins = coins_of(&c, h, &[Kind::Wpkh, Kind::Tr]);
    // bdk-reserves' dialect (SHA-256d commitment, burn output), so both verifiers read it.
    let mut psbt = reserves_psbt(&c, &m, Commitment::Sha256d, &coins);
    let outpoints: Vec<(OutPoint, TxOut)> = coins.clone();
    // The honest proof passes both.
    let bdk_ok = bdk_reserves::reserves::verify_proof(&psbt, &m, outpoints.clone()).unwrap();
    assert_eq!(
        bdk_ok.to_sat(),
        coins.iter().map(|(_, o)| o.value.to_sat()).sum::<u64>()
    );
    let at_h = c.unspent(h);
    ReservesPsbt::parse(&psbt.serialize())
        .unwrap()
        .verify(&m, &at_h, h)
        .unwrap();
    // Forge the P2TR input: a garbage Schnorr signature of the right length.
    let mut w = Witness::new();
    w.push([0x42u8; 64]);
    psbt.inputs[2].final_script_witness = Some(w);
    let bdk = bdk_reserves::reserves::verify_proof(&psbt, &m, outpoints);
    assert!(
        bdk.is_ok(),
        "bdk-reserves 3.2.0 accepts the forged input: {bdk:?}"
    );
    let e = ReservesPsbt::parse(&psbt.serialize())
        .unwrap()
        .verify(&m, &at_h, h)
        .unwrap_err();
    match e {
        ProofError::Script { input, .. } => assert_eq!(input, 2),
        other => panic!("expected a script failure on input 2, got {other}"),
    }
}

#[test]
fn bip127_signatures_must_commit_to_the_commitment_input() {
    let c = chain();
    let h = 130;
    let m = message(&c, h);
    let coins = coins_of(&c, h, &[Kind::Wpkh]);
    let mut psbt = reserves_psbt(&c, &m, Commitment::Sha256, &coins);
    // Re-sign the P2WPKH input with SIGHASH_ALL|ANYONECANPAY: valid on its own, but it does
    // not commit to the commitment input, so it proves nothing about this challenge.
    let s = &c.spenders[&coins[0].1.script_pubkey];
    let mut tx = psbt.unsigned_tx.clone();
    let h256 = SighashCache::new(&tx)
        .p2wpkh_signature_hash(
            1,
            &coins[0].1.script_pubkey,
            coins[0].1.value,
            EcdsaSighashType::AllPlusAnyoneCanPay,
        )
        .unwrap();
    let sig = c
        .secp
        .sign_ecdsa(&Message::from_digest(h256.to_byte_array()), &s.secrets[0]);
    let sig = bitcoin::ecdsa::Signature {
        signature: sig,
        sighash_type: EcdsaSighashType::AllPlusAnyoneCanPay,
    };
    tx.input[1].witness = Witness::p2wpkh(&sig, &s.pubkeys[0].0);
    psbt.inputs[1].final_script_witness = Some(tx.input[1].witness.clone());
    let e = ReservesPsbt::parse(&psbt.serialize())
        .unwrap()
        .verify(&m, &c.unspent(h), h)
        .unwrap_err();
    assert!(e.to_string().contains("does not commit"), "{e}");
}

#[test]
fn bip127_structure_errors_are_named() {
    let c = chain();
    let h = 130;
    let m = message(&c, h);
    let coins = coins_of(&c, h, &[Kind::Wpkh]);
    let at_h = c.unspent(h);
    // A fee (output below the sum).
    let mut psbt = reserves_psbt(&c, &m, Commitment::Sha256, &coins);
    psbt.unsigned_tx.output[0].value = bitcoin::Amount::from_sat(1);
    let e = ReservesPsbt::parse(&psbt.serialize())
        .unwrap()
        .verify(&m, &at_h, h)
        .unwrap_err();
    assert!(e.to_string().contains("no fee"), "{e}");
    // An unsigned input.
    let mut psbt = reserves_psbt(&c, &m, Commitment::Sha256, &coins);
    psbt.inputs[1].final_script_witness = None;
    let e = ReservesPsbt::parse(&psbt.serialize()).unwrap_err();
    assert!(e.to_string().contains("not signed"), "{e}");
    // Only the commitment input.
    let mut psbt = reserves_psbt(&c, &m, Commitment::Sha256, &coins);
    psbt.unsigned_tx.input.truncate(1);
    psbt.inputs.truncate(1);
    let e = ReservesPsbt::parse(&psbt.serialize()).unwrap_err();
    assert!(e.to_string().contains("at least one coin"), "{e}");
    // A coin the chain does not have (made up outpoint).
    let fake = vec![(
        OutPoint::new(bitcoin::Txid::all_zeros(), 7),
        coins[0].1.clone(),
    )];
    let psbt = reserves_psbt(&c, &m, Commitment::Sha256, &fake);
    let e = ReservesPsbt::parse(&psbt.serialize())
        .unwrap()
        .verify(&m, &at_h, h)
        .unwrap_err();
    assert!(matches!(e, ProofError::NotUnspent { .. }), "{e}");
    assert!(ReservesPsbt::parse(b"").is_err());
    assert!(ReservesPsbt::parse(b"not a psbt").is_err());
}
