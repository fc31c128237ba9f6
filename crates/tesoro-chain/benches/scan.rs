//! Chain-scan benchmark: tesoro's scanner against `bitcoin-block-parser` (rust-bitcoin decode,
//! parallel) and `bdk_wallet`'s `apply_block`, over the same generated Core blocks dir, with 10,
//! 10,000 and 1,000,000 watched scripts. Prints MB/s, blocks/s and peak RSS (VmHWM) per run;
//! each run is its own child process so peak RSS is that run's alone. `--tools ceiling` adds
//! the floor of any reader (map, de-XOR copy and touch every byte on every core) so the
//! figures can be read against this machine's memory bandwidth.
//!
//! ```text
//! cargo run --release -p tesoro-testchain --example generate -- \
//!     crates/tesoro-testchain/scenarios/bench-2gb.toml /tmp/tesoro-bench-chain
//! CARGO_TARGET_DIR=target-chain cargo bench -p tesoro-chain --bench scan -- [DIR] [--sizes 10,10000] [--tools tesoro,parser,bdk]
//! ```
//! The chain is not generated here (it takes ~20 s and 2 GB); DIR defaults to
//! /tmp/tesoro-bench-chain.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Instant;

use bitcoin::{Address, Network, OutPoint, ScriptBuf};
use tesoro_chain::{BlocksDir, DescriptorDeriver, ScanOptions, ScriptDeriver, WatchSet};
use tesoro_core::chain::ScriptOwner;
use tesoro_testchain::Expected;

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The watched scripts for a run of size `n`: the scenario's own (derived from its public
/// descriptors, plus its bare addresses) first, then random P2WPKH/P2TR scripts.
fn scripts(expected: &Expected, n: usize) -> Vec<ScriptBuf> {
    let mut out = Vec::with_capacity(n);
    for a in &expected.addresses {
        let addr = Address::from_str(&a.address)
            .unwrap()
            .require_network(Network::Regtest)
            .unwrap();
        out.push(addr.script_pubkey());
    }
    let per = ((n.min(100)).saturating_sub(out.len()) / (expected.wallets.len() * 2)).max(1) as u32;
    for w in &expected.wallets {
        for d in [&w.external, &w.internal] {
            let d = DescriptorDeriver::parse(d).unwrap();
            for i in 0..per {
                out.push(d.derive(i).unwrap());
            }
        }
    }
    out.truncate(n);
    // splitmix64: deterministic filler scripts without pulling in an RNG crate.
    let mut x = n as u64;
    let mut next = || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    while out.len() < n {
        let mut b = [0u8; 32];
        for c in b.chunks_mut(8) {
            c.copy_from_slice(&next().to_le_bytes());
        }
        let s = if out.len() % 2 == 0 {
            let mut v = vec![0x00, 0x14];
            v.extend_from_slice(&b[..20]);
            v
        } else {
            let mut v = vec![0x51, 0x20];
            v.extend_from_slice(&b);
            v
        };
        out.push(ScriptBuf::from_bytes(s));
    }
    out
}

/// CPU seconds (user + system) of this process so far, from /proc/self/stat.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" closing the command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    ticks as f64 / 100.0
}

struct Outcome {
    secs: f64,
    cpu: f64,
    bytes: u64,
    blocks: u64,
    created: u64,
    spent: u64,
}

fn run_tesoro(dir: &Path, scripts: Vec<ScriptBuf>) -> Outcome {
    let t = Instant::now();
    let mut watch = WatchSet::new();
    watch.add_scripts(
        scripts
            .into_iter()
            .enumerate()
            .map(|(i, s)| (s, ScriptOwner::bare(i as u64))),
    );
    let setup = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let c = cpu_secs();
    let blocks = BlocksDir::open(dir, Network::Regtest).unwrap();
    let (_index, stats) =
        tesoro_chain::scan_blocks_dir(&blocks, 0, &mut watch, ScanOptions::default(), |_d| {
            Ok::<_, String>(())
        })
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "  tesoro: watch-set setup {setup:.2} s (not timed); {} txids hashed",
        stats.txids_hashed
    );
    let cpu = cpu_secs() - c;
    Outcome {
        secs,
        cpu,
        bytes: stats.bytes,
        blocks: stats.blocks,
        created: stats.created,
        spent: stats.spent,
    }
}

fn run_parser(dir: &Path, scripts: Vec<ScriptBuf>) -> Outcome {
    use bitcoin_block_parser::BlockParser;
    use std::sync::Arc;
    let set: Arc<HashSet<ScriptBuf>> = Arc::new(scripts.into_iter().collect());
    let t = Instant::now();
    let c = cpu_secs();
    let parser = BlockParser::new(dir.to_str().unwrap()).unwrap();
    // Same work as tesoro's parse stage, on the parser's threads: match outputs, list input
    // prevouts; then, in height order, spends against the watched outpoints.
    let s2 = set.clone();
    let iter = parser
        .parse(move |block| {
            let size = bitcoin::consensus::serialize(&block.header).len() as u64
                + block
                    .txdata
                    .iter()
                    .map(|t| t.total_size() as u64)
                    .sum::<u64>();
            let mut created = Vec::new();
            let mut inputs = Vec::new();
            for tx in &block.txdata {
                let mut txid = None;
                for (vout, o) in tx.output.iter().enumerate() {
                    if s2.contains(&o.script_pubkey) {
                        let id = *txid.get_or_insert_with(|| tx.compute_txid());
                        created.push(OutPoint {
                            txid: id,
                            vout: vout as u32,
                        });
                    }
                }
                if !tx.is_coinbase() {
                    inputs.extend(tx.input.iter().map(|i| i.previous_output));
                }
            }
            (size, created, inputs)
        })
        .ordered();
    let mut utxos: HashSet<OutPoint> = HashSet::new();
    let (mut bytes, mut blocks, mut created, mut spent) = (0, 0, 0, 0);
    for (size, c, inputs) in iter {
        bytes += size;
        blocks += 1;
        for i in inputs {
            if utxos.remove(&i) {
                spent += 1;
            }
        }
        created += c.len() as u64;
        utxos.extend(c);
    }
    Outcome {
        secs: t.elapsed().as_secs_f64(),
        cpu: cpu_secs() - c,
        bytes,
        blocks,
        created,
        spent,
    }
}

/// The least any reader of these files must do, as a ceiling for the others: map every blk
/// file, copy every byte out de-XORed (what tesoro's reader does before parsing) in 1 MiB
/// chunks, and fold the copy into a checksum so nothing is optimised away. Both cores, files
/// split between them. No parsing, no watch set: no scanner can beat this figure here.
fn run_ceiling(dir: &Path) -> Outcome {
    let t = Instant::now();
    let c = cpu_secs();
    let blocks = BlocksDir::open(dir, Network::Regtest).unwrap();
    let key = blocks.xor_key();
    let files: Vec<PathBuf> = blocks.files().iter().map(|f| f.path.clone()).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (bytes, sum) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut buf = vec![0u8; 1 << 20];
                    let (mut bytes, mut sum) = (0u64, 0u64);
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        let file = std::fs::File::open(path).unwrap();
                        // SAFETY: the bench's own generated files, not modified while mapped.
                        let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
                        for (k, chunk) in map.chunks(buf.len()).enumerate() {
                            let dst = &mut buf[..chunk.len()];
                            key.copy_apply(chunk, dst, (k * (1 << 20)) as u64);
                            sum = dst
                                .chunks_exact(8)
                                .fold(sum, |a, w| a ^ u64::from_le_bytes(w.try_into().unwrap()));
                        }
                        bytes += map.len() as u64;
                    }
                    (bytes, sum)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |(b, s), (b2, s2)| (b + b2, s ^ s2))
    });
    std::hint::black_box(sum);
    Outcome {
        secs: t.elapsed().as_secs_f64(),
        cpu: cpu_secs() - c,
        bytes,
        blocks: 0,
        created: 0,
        spent: 0,
    }
}

fn run_bdk(dir: &Path, expected: &Expected, n: usize) -> Outcome {
    // BDK watches what its descriptors derive: lookahead sized so the two keychains together
    // hold about `n` scripts (the closest BDK equivalent of a watch set of that size).
    let w = &expected.wallets[0];
    let lookahead = (n / 2).max(1) as u32;
    let t = Instant::now();
    let mut wallet = bdk_wallet::Wallet::create(w.external.clone(), w.internal.clone())
        .network(Network::Regtest)
        .lookahead(lookahead)
        .create_wallet_no_persist()
        .unwrap();
    eprintln!(
        "  bdk: wallet with lookahead {lookahead} built in {:.1} s (not timed)",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let c = cpu_secs();
    let blocks = BlocksDir::open(dir, Network::Regtest).unwrap();
    let index = blocks.index().unwrap();
    let (mut bytes, mut nblocks) = (0, 0);
    for raw in blocks.blocks_from(&index, 1).unwrap() {
        let raw = raw.unwrap();
        let block: bitcoin::Block = bitcoin::consensus::deserialize(&raw.bytes).unwrap();
        wallet.apply_block(&block, raw.height).unwrap();
        bytes += raw.bytes.len() as u64;
        nblocks += 1;
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - c;
    let created = wallet.list_output().count() as u64;
    let unspent = wallet.list_unspent().count() as u64;
    Outcome {
        secs,
        cpu,
        bytes,
        blocks: nblocks,
        created,
        spent: created - unspent,
    }
}

fn child(dir: &Path, tool: &str, n: usize) {
    let expected = Expected::load(&dir.join("expected.json")).unwrap();
    let blocks = dir.join("blocks");
    let o = match tool {
        "tesoro" => run_tesoro(&blocks, scripts(&expected, n)),
        "parser" => run_parser(&blocks, scripts(&expected, n)),
        "bdk" => run_bdk(&blocks, &expected, n),
        "ceiling" => run_ceiling(&blocks),
        other => panic!("unknown tool {other}"),
    };
    println!(
        "RESULT {tool} {n} {:.3} {} {} {} {} {} {:.2}",
        o.secs,
        o.bytes,
        o.blocks,
        o.created,
        o.spent,
        vm_hwm_kb(),
        o.cpu
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("child") {
        child(Path::new(&args[1]), &args[2], args[3].parse().unwrap());
        return;
    }
    let mut dir = PathBuf::from("/tmp/tesoro-bench-chain");
    let mut sizes = vec![10usize, 10_000, 1_000_000];
    let mut tools = vec!["tesoro".to_string(), "parser".into(), "bdk".into()];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = it
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|s| s.parse().unwrap())
                    .collect()
            }
            "--tools" => tools = it.next().unwrap().split(',').map(String::from).collect(),
            p if !p.starts_with('-') => dir = PathBuf::from(p),
            _ => {}
        }
    }
    if !dir.join("expected.json").exists() {
        eprintln!(
            "no generated chain at {}; run:\n  cargo run --release -p tesoro-testchain --example generate -- \
             crates/tesoro-testchain/scenarios/bench-2gb.toml {}",
            dir.display(),
            dir.display()
        );
        return;
    }
    // Warm the page cache so every run reads from memory.
    let mut total = 0u64;
    for e in std::fs::read_dir(dir.join("blocks")).unwrap() {
        let p = e.unwrap().path();
        total += std::fs::read(&p).map(|v| v.len() as u64).unwrap_or(0);
    }
    println!(
        "blocks dir {} ({:.2} GB), {} cores",
        dir.display(),
        total as f64 / 1e9,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average at start: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("| tool | watched | wall s | MB/s | blocks/s | CPU s | MB per CPU-s | peak RSS MB | watched outputs | spends |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let exe = std::env::current_exe().unwrap();
    let mut results: HashMap<(String, usize), f64> = HashMap::new();
    for &n in &sizes {
        for tool in &tools {
            let out = Command::new(&exe)
                .args(["child", dir.to_str().unwrap(), tool, &n.to_string()])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            let Some(line) = stdout.lines().find(|l| l.starts_with("RESULT")) else {
                println!("| {tool} | {n} | failed | | | | | | | |");
                continue;
            };
            let f: Vec<&str> = line.split_whitespace().collect();
            let secs: f64 = f[3].parse().unwrap();
            let bytes: f64 = f[4].parse().unwrap();
            let blocks: f64 = f[5].parse().unwrap();
            let rss: f64 = f[8].parse().unwrap();
            let cpu: f64 = f[9].parse().unwrap();
            results.insert((tool.clone(), n), bytes / secs);
            println!(
                "| {tool} | {n} | {secs:.2} | {:.0} | {:.0} | {cpu:.2} | {:.0} | {:.0} | {} | {} |",
                bytes / 1e6 / secs,
                blocks / secs,
                bytes / 1e6 / cpu.max(0.01),
                rss / 1024.0,
                f[6],
                f[7]
            );
        }
    }
    for &n in &sizes {
        if let Some(t) = results.get(&("tesoro".to_string(), n)) {
            for peer in ["parser", "bdk", "ceiling"] {
                if let Some(p) = results.get(&(peer.to_string(), n)) {
                    println!("speed-up over {peer} at {n} watched: {:.1}x", t / p);
                }
            }
        }
    }
}
