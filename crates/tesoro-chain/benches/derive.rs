//! Descriptor derivation rate (scripts/s): how fast a watch set of descriptor wallets is
//! built. Prints a table (not a timed test):
//!
//! ```text
//! CARGO_TARGET_DIR=target-chain cargo bench -p tesoro-chain --bench derive -- [CHILDREN]
//! ```
//!
//! Per descriptor shape (P2WPKH, P2TR, 2-of-3 P2WSH sortedmulti; every key `xpub/0/*`), the
//! same children derived by: BDK's `SpkIterator` (what `bdk_wallet` uses to fill its
//! lookahead; one thread), miniscript's `at_derivation_index(i).script_pubkey()` (what tesoro
//! did before; one thread), tesoro's `KeychainDeriver` (fixed path walked once; one thread),
//! and `WatchSet::add_keychain` (that deriver on every core, scripts inserted in the index).
//! Every tool's scripts are checked equal to miniscript's.

use std::str::FromStr;
use std::time::Instant;

use bitcoin::bip32::{Xpriv, Xpub};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{NetworkKind, ScriptBuf};
use miniscript::{Descriptor, DescriptorPublicKey};
use tesoro_chain::{DescriptorDeriver, ScriptDeriver, WatchSet};
use tesoro_core::derive::KeychainDeriver;

fn tpub(seed: u8) -> String {
    // Public keys for the bench only; the private half never leaves this function.
    let secp = Secp256k1::new();
    let xprv = Xpriv::new_master(NetworkKind::Test, &[seed; 32]).unwrap();
    Xpub::from_priv(&secp, &xprv).to_string()
}

fn rate(n: u32, secs: f64) -> String {
    let r = f64::from(n) / secs;
    let s = format!("{r:.0}");
    // Thousands separators, as the rest of BENCHMARKS.md writes figures.
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let (a, b, c) = (tpub(1), tpub(2), tpub(3));
    let shapes = [
        ("P2WPKH", format!("wpkh({a}/0/*)")),
        ("P2TR", format!("tr({a}/0/*)")),
        (
            "P2WSH 2-of-3",
            format!("wsh(sortedmulti(2,{a}/0/*,{b}/0/*,{c}/0/*))"),
        ),
    ];
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!("{n} children per descriptor, {cores} cores");
    println!("| descriptor | BDK SpkIterator | miniscript at_derivation_index | tesoro KeychainDeriver (1 thread) | tesoro WatchSet ({cores} threads) | speed-up over BDK |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, text) in &shapes {
        let d = Descriptor::<DescriptorPublicKey>::from_str(text).unwrap();

        let t = Instant::now();
        let bdk: Vec<ScriptBuf> = bdk_wallet::chain::SpkIterator::new_with_range(d.clone(), 0..n)
            .map(|(_, s)| s)
            .collect();
        let bdk_s = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let slow: Vec<ScriptBuf> = (0..n)
            .map(|i| d.at_derivation_index(i).unwrap().script_pubkey())
            .collect();
        let slow_s = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let k = KeychainDeriver::new(&d).unwrap();
        let fast: Vec<ScriptBuf> = (0..n).map(|i| k.script_at(i).unwrap()).collect();
        let fast_s = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let mut ws = WatchSet::new();
        ws.add_keychain(
            0,
            0,
            Box::new(DescriptorDeriver::parse(text).unwrap()),
            n,
            None,
        )
        .unwrap();
        let ws_s = t.elapsed().as_secs_f64();

        assert_eq!(bdk, slow, "{name}: BDK and miniscript disagree");
        assert_eq!(fast, slow, "{name}: tesoro and miniscript disagree");
        let check = DescriptorDeriver::parse(text).unwrap();
        assert_eq!(check.derive(n - 1).unwrap(), slow[n as usize - 1]);
        println!(
            "| {name} | {} | {} | {} | {} | {:.1}x |",
            rate(n, bdk_s),
            rate(n, slow_s),
            rate(n, fast_s),
            rate(n, ws_s),
            bdk_s / ws_s
        );
    }
}
