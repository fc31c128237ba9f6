//! Generate a chain from a scenario file:
//! `cargo run --release -p tesoro-testchain --example generate -- SCENARIO.toml OUT_DIR`
//! Writes OUT_DIR/blocks/{blk*.dat,xor.dat} and OUT_DIR/expected.json, and prints the public
//! descriptors of the scenario's wallets.

use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(scenario), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: generate SCENARIO.toml OUT_DIR");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&scenario)?;
    let sc = tesoro_testchain::Scenario::from_toml(&text)?;
    let t = Instant::now();
    let g = tesoro_testchain::generate(&sc, &PathBuf::from(out))?;
    let secs = t.elapsed().as_secs_f64();
    let e = &g.expected;
    println!(
        "{} blocks ({} stale), tip {} at height {}, {} files, {:.1} MB in {:.1} s ({:.0} MB/s)",
        e.blocks_written,
        e.stale_blocks.len(),
        e.tip_hash,
        e.tip_height,
        e.files.len(),
        e.bytes_written as f64 / 1e6,
        secs,
        e.bytes_written as f64 / 1e6 / secs
    );
    for w in &e.wallets {
        println!(
            "wallet {}: {}\n  change: {}",
            w.name, w.external, w.internal
        );
    }
    for a in &e.addresses {
        println!("address {}: {}", a.name, a.address);
    }
    for p in &e.parties {
        println!("party {}: {}", p.name, p.address);
    }
    println!("expected balances: {}", g.expected_path.display());
    Ok(())
}
