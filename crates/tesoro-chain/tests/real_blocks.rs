//! Real mainnet data from `shared/fixtures/blocks` (see its PROVENANCE.md): the blk-framed file
//! of heights 0–438 read as a Core blocks dir (plain, XOR-obfuscated, shuffled across files,
//! with a zero tail and a truncated record), and real blocks scanned against watch sets whose
//! expected results are computed another way (rust-bitcoin decode, the prevout JSON).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bitcoin::hashes::Hash;
use bitcoin::hex::FromHex;
use bitcoin::{Amount, Block, BlockHash, Network, ScriptBuf, TxOut};
use tesoro_chain::blocksdir::FileNote;
use tesoro_chain::{BlocksDir, ChainError, Prefilter, RawBlock, ScanOptions, Scanner, WatchSet};
use tesoro_core::chain::{BlockDelta, ScriptOwner};

const GENESIS: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";
const H438: &str = "0000000025c6b644f8add734be7e666fa4afa43ca0204d623a0c0b1fd2104c7a";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/blocks")
}

fn fixture(name: &str) -> Vec<u8> {
    let p = fixtures().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The frames of the real blk file, as (header+block) byte vectors.
fn frames() -> Vec<Vec<u8>> {
    let data = fixture("mainnet-blk-h0-438.dat");
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        assert_eq!(&data[pos..pos + 4], &[0xf9, 0xbe, 0xb4, 0xd9]);
        let len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        out.push(data[pos + 8..pos + 8 + len].to_vec());
        pos += 8 + len;
    }
    out
}

fn frame(block: &[u8]) -> Vec<u8> {
    let mut v = vec![0xf9, 0xbe, 0xb4, 0xd9];
    v.extend_from_slice(&(block.len() as u32).to_le_bytes());
    v.extend_from_slice(block);
    v
}

fn xor(buf: &mut [u8], key: [u8; 8]) {
    for (p, b) in buf.iter_mut().enumerate() {
        *b ^= key[p % 8];
    }
}

fn assert_heights_0_438(dir: &BlocksDir) -> tesoro_chain::ChainIndex {
    let index = dir.index().expect("index");
    assert_eq!(index.len(), 439);
    assert_eq!(index.tip_height(), 438);
    assert_eq!(index.get(0).unwrap().hash.to_string(), GENESIS);
    assert_eq!(index.get(438).unwrap().hash.to_string(), H438);
    assert!(index.stale().is_empty());
    // Heights agree with the file order of the real blk file, which is height order.
    let expected: Vec<BlockHash> = frames().iter().map(|b| BlockHash::hash(&b[..80])).collect();
    for (h, b) in index.blocks().iter().enumerate() {
        assert_eq!(b.height as usize, h);
        assert_eq!(b.hash, expected[h], "height {h}");
        if h > 0 {
            assert_eq!(b.prev_hash, expected[h - 1]);
        }
    }
    // Reading every block back gives bytes that decode and hash right.
    for raw in dir.blocks_from(&index, 0).expect("reader") {
        let raw = raw.expect("block");
        let block: Block = bitcoin::consensus::deserialize(&raw.bytes).expect("decode");
        assert_eq!(block.block_hash(), raw.hash);
        assert!(block.check_merkle_root());
    }
    index
}

#[test]
fn real_blk_file_plain_gives_heights_0_to_438() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("mainnet-blk-h0-438.dat"),
        tmp.path().join("blk00000.dat"),
    )
    .unwrap();
    let dir = BlocksDir::open(tmp.path(), Network::Bitcoin).expect("open");
    assert!(dir.xor_key().is_identity());
    assert_heights_0_438(&dir);
}

#[test]
fn real_blk_file_xored_with_zero_tail_and_truncated_record() {
    let key = [0x5a, 0x13, 0xc7, 0x00, 0xff, 0x42, 0x99, 0x0e];
    let tmp = tempfile::tempdir().unwrap();
    let blocks = tmp.path().join("blocks");
    std::fs::create_dir(&blocks).unwrap();
    let mut data = fixture("mainnet-blk-h0-438.dat");
    xor(&mut data, key);
    // Core preallocates: raw (un-obfuscated) zeros after the last record.
    let mut with_tail = data.clone();
    with_tail.extend(std::iter::repeat_n(0u8, 70_000));
    std::fs::write(blocks.join("blk00000.dat"), &with_tail).unwrap();
    // A second file whose last record is cut off by a crash, after one complete record (a
    // copy of block 1, which is a duplicate the index must drop).
    let mut second = frame(&frames()[1]);
    let cut = frame(&frames()[2]);
    second.extend_from_slice(&cut[..cut.len() / 2]);
    xor(&mut second, key);
    std::fs::write(blocks.join("blk00001.dat"), &second).unwrap();
    std::fs::write(blocks.join("xor.dat"), key).unwrap();

    // Opening the data dir finds blocks/ inside it.
    let dir = BlocksDir::open(tmp.path(), Network::Bitcoin).expect("open");
    assert_eq!(dir.xor_key().0, key);
    let index = assert_heights_0_438(&dir);
    let notes = index.notes();
    assert!(notes
        .iter()
        .any(|n| matches!(n, FileNote::ZeroTail { offset, .. } if *offset == data.len() as u64)));
    assert!(notes
        .iter()
        .any(|n| matches!(n, FileNote::TruncatedRecord { .. })));
    assert!(notes
        .iter()
        .any(|n| matches!(n, FileNote::Duplicate { .. })));
}

#[test]
fn real_blocks_out_of_order_across_files_are_put_in_height_order() {
    let key = [1, 2, 3, 4, 5, 6, 7, 8];
    let tmp = tempfile::tempdir().unwrap();
    let frames = frames();
    // Deterministic shuffle: blocks land hundreds of heights away from their place.
    let mut order: Vec<usize> = (0..frames.len()).collect();
    let mut x = 0x1234_5678u64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    for (n, chunk) in order.chunks(150).enumerate() {
        let mut file = Vec::new();
        for &i in chunk {
            file.extend(frame(&frames[i]));
        }
        xor(&mut file, key);
        std::fs::write(tmp.path().join(format!("blk{n:05}.dat")), file).unwrap();
    }
    std::fs::write(tmp.path().join("xor.dat"), key).unwrap();
    let dir = BlocksDir::open(tmp.path(), Network::Bitcoin).expect("open");
    assert_eq!(dir.files().len(), 3);
    let index = assert_heights_0_438(&dir);
    // The scanner's path: files 0 and 1 are finished and read through their mapping (copied
    // and de-XORed in one pass), file 2 is the last one and read with read(); both give the
    // real bytes of every block.
    let mut buf = Vec::new();
    for p in dir.pending_from(&index, 0).expect("pending") {
        let h = p.block().height as usize;
        let raw = p.read(std::mem::take(&mut buf)).expect("read");
        assert_eq!(raw.bytes, frames[h], "height {h}");
        dir.read_block_into(p.block().location, &mut buf)
            .expect("read_block_into");
        assert_eq!(buf, frames[h], "height {h}");
    }
}

#[test]
fn wrong_network_magic_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("mainnet-blk-h0-438.dat"),
        tmp.path().join("blk00000.dat"),
    )
    .unwrap();
    let dir = BlocksDir::open(tmp.path(), Network::Regtest).expect("open");
    let err = dir.index().expect_err("regtest dir holding mainnet blocks");
    match &err {
        ChainError::WrongNetwork {
            offset,
            found,
            expected,
            file,
        } => {
            assert_eq!(*offset, 0);
            assert_eq!(*found, Network::Bitcoin);
            assert_eq!(*expected, Network::Regtest);
            assert!(file.ends_with("blk00000.dat"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("blk00000.dat") && msg.contains("byte 0"),
        "{msg}"
    );
}

#[test]
fn corrupt_magic_mid_file_names_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let frames = frames();
    let mut data = Vec::new();
    for f in &frames[..3] {
        data.extend(frame(f));
    }
    let bad_at = data.len() as u64;
    data.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 1, 0, 0, 0, 0]);
    std::fs::write(tmp.path().join("blk00000.dat"), data).unwrap();
    let err = BlocksDir::open(tmp.path(), Network::Bitcoin)
        .unwrap()
        .index()
        .expect_err("corrupt");
    match err {
        ChainError::CorruptRecord { offset, .. } => assert_eq!(offset, bad_at),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn missing_genesis_is_reported_as_genesis_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = Vec::new();
    for f in &frames()[1..20] {
        data.extend(frame(f));
    }
    std::fs::write(tmp.path().join("blk00000.dat"), data).unwrap();
    let err = BlocksDir::open(tmp.path(), Network::Bitcoin)
        .unwrap()
        .index()
        .expect_err("no genesis");
    assert!(matches!(err, ChainError::GenesisMismatch { .. }), "{err:?}");
}

fn raw(name: &str, height: u32) -> RawBlock {
    RawBlock::from_bytes(height, fixture(name))
}

/// Outputs of `block` paying scripts in `chosen`, summed per script by rust-bitcoin decoding.
fn decoded_receipts(block: &Block, chosen: &BTreeSet<ScriptBuf>) -> BTreeMap<ScriptBuf, u64> {
    let mut out = BTreeMap::new();
    for tx in &block.txdata {
        for o in &tx.output {
            if chosen.contains(&o.script_pubkey) {
                *out.entry(o.script_pubkey.clone()).or_insert(0) += o.value.to_sat();
            }
        }
    }
    out
}

#[test]
fn real_blocks_receipts_match_rust_bitcoin_decode() {
    for (name, height) in [
        ("mainnet-866342.raw", 866_342),
        ("mainnet-702861.raw", 702_861),
        ("mainnet-540107.raw", 540_107),
        ("mainnet-367891.raw", 367_891),
    ] {
        let bytes = fixture(name);
        let block: Block = bitcoin::consensus::deserialize(&bytes).unwrap();
        // Every 7th distinct output script (skipping empty/OP_RETURN ones) is watched.
        let mut all: Vec<ScriptBuf> = Vec::new();
        for tx in &block.txdata {
            for o in &tx.output {
                if !o.script_pubkey.is_op_return() && !all.contains(&o.script_pubkey) {
                    all.push(o.script_pubkey.clone());
                }
            }
        }
        let chosen: BTreeSet<ScriptBuf> = all.iter().step_by(7).cloned().collect();
        let ids: HashMap<ScriptBuf, u64> = chosen
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u64))
            .collect();
        let expected = decoded_receipts(&block, &chosen);
        let txids: HashMap<u32, bitcoin::Txid> = block
            .txdata
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32, t.compute_txid()))
            .collect();

        for prefilter in [Prefilter::Never, Prefilter::Always] {
            let mut watch = WatchSet::with_prefilter(prefilter);
            watch.add_scripts(ids.iter().map(|(s, i)| (s.clone(), ScriptOwner::bare(*i))));
            let delta = Scanner::new(&mut watch)
                .scan_block(raw(name, height))
                .expect("scan");
            assert_eq!(delta.meta.hash, block.block_hash());
            let mut got: BTreeMap<ScriptBuf, u64> = BTreeMap::new();
            for c in &delta.created {
                assert_eq!(ids[&c.script_pubkey], c.owner.owner);
                assert_eq!(c.outpoint.txid, txids[&c.tx_index], "{name}");
                *got.entry(c.script_pubkey.clone()).or_insert(0) += c.value.to_sat();
            }
            assert_eq!(got, expected, "{name} receipts");
            // Txids computed only for touched txs, and each touched tx is recorded with its bytes.
            for t in &delta.txs {
                let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&t.raw).unwrap();
                assert_eq!(tx.compute_txid(), t.txid);
            }
            assert!(delta.txs.len() < block.txdata.len() || block.txdata.len() < 10);
        }
    }
}

#[derive(serde::Deserialize)]
struct SpentUtxo {
    txout: JsonTxOut,
}
#[derive(serde::Deserialize)]
struct JsonTxOut {
    value: u64,
    script_pubkey: String,
}

#[test]
fn block_866342_spends_of_watched_scripts_match_the_prevout_json() {
    let json: Vec<SpentUtxo> =
        serde_json::from_slice(&fixture("mainnet-866342.spent-utxos.json")).expect("json");
    let prevouts: Vec<TxOut> = json
        .iter()
        .map(|s| TxOut {
            value: Amount::from_sat(s.txout.value),
            script_pubkey: ScriptBuf::from_bytes(Vec::from_hex(&s.txout.script_pubkey).unwrap()),
        })
        .collect();
    assert_eq!(prevouts.len(), 7972);
    // Watch every 11th distinct prevout script.
    let mut distinct: Vec<ScriptBuf> = Vec::new();
    let mut seen = BTreeSet::new();
    for p in &prevouts {
        if seen.insert(p.script_pubkey.clone()) {
            distinct.push(p.script_pubkey.clone());
        }
    }
    let chosen: BTreeSet<ScriptBuf> = distinct.iter().step_by(11).cloned().collect();
    // Expected spends, straight from the JSON: positions and value sum.
    let expected_positions: Vec<usize> = prevouts
        .iter()
        .enumerate()
        .filter(|(_, p)| chosen.contains(&p.script_pubkey))
        .map(|(i, _)| i)
        .collect();
    let expected_sum: u64 = expected_positions
        .iter()
        .map(|&i| prevouts[i].value.to_sat())
        .sum();
    assert!(expected_positions.len() > 100, "a meaningful sample");

    // Map JSON position -> (tx index, vin) by decoding the block with rust-bitcoin.
    let block: Block = bitcoin::consensus::deserialize(&fixture("mainnet-866342.raw")).unwrap();
    let mut pos_of = Vec::new();
    for (t, tx) in block.txdata.iter().enumerate().skip(1) {
        for vin in 0..tx.input.len() {
            pos_of.push((
                t as u32,
                vin as u32,
                tx.compute_txid(),
                tx.input[vin].previous_output,
            ));
        }
    }

    let mut watch = WatchSet::new();
    watch.add_scripts(
        chosen
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), ScriptOwner::bare(i as u64))),
    );
    let delta: BlockDelta = Scanner::new(&mut watch)
        .scan_block_with_prevouts(raw("mainnet-866342.raw", 866_342), &prevouts)
        .expect("scan");
    let got_sum: u64 = delta.spent.iter().map(|s| s.value.to_sat()).sum();
    assert_eq!(delta.spent.len(), expected_positions.len());
    assert_eq!(got_sum, expected_sum);
    for (s, &p) in delta.spent.iter().zip(&expected_positions) {
        let (t, vin, txid, op) = pos_of[p];
        assert_eq!((s.tx_index, s.vin, s.txid, s.outpoint), (t, vin, txid, op));
    }
    // Some watched outputs are created and spent inside this very block: they were found once,
    // through the outpoint set, not twice.
    let created: BTreeSet<_> = delta.created.iter().map(|c| c.outpoint).collect();
    let in_block = delta
        .spent
        .iter()
        .filter(|s| created.contains(&s.outpoint))
        .count();
    assert!(in_block > 0, "the sample includes in-block spends");

    // Wrong prevout count is an error naming the block, not a panic.
    let mut w2 = WatchSet::new();
    let err = Scanner::new(&mut w2)
        .scan_block_with_prevouts(raw("mainnet-866342.raw", 866_342), &prevouts[1..])
        .expect_err("count mismatch");
    assert!(err.to_string().contains("866342"), "{err}");
}

#[test]
fn parallel_scan_of_real_blk_file_equals_serial_scan() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("mainnet-blk-h0-438.dat"),
        tmp.path().join("blk00000.dat"),
    )
    .unwrap();
    let dir = BlocksDir::open(tmp.path(), Network::Bitcoin).unwrap();
    let index = dir.index().unwrap();
    // Watch the coinbase scripts of every 10th block, then find them spent (block 170 spends
    // block 9's coinbase to Hal Finney).
    let mut scripts = Vec::new();
    let mut decoded = Vec::new();
    for raw in dir.blocks_from(&index, 0).unwrap() {
        let raw = raw.unwrap();
        let block: Block = bitcoin::consensus::deserialize(&raw.bytes).unwrap();
        if raw.height % 10 == 9 {
            scripts.push(block.txdata[0].output[0].script_pubkey.clone());
        }
        decoded.push(block);
    }
    // Outputs paying a watched script, counted by rust-bitcoin decode (scripts can be reused).
    let expected_created = decoded
        .iter()
        .flat_map(|b| b.txdata.iter().flat_map(|t| t.output.iter()))
        .filter(|o| scripts.contains(&o.script_pubkey))
        .count() as u64;
    let run = |threads: usize| {
        let mut watch = WatchSet::new();
        watch.add_scripts(scripts.iter().map(|s| (s.clone(), ScriptOwner::bare(1))));
        let mut deltas = Vec::new();
        let opts = ScanOptions {
            threads,
            in_flight: 4,
        };
        let blocks = dir.pending_from(&index, 0).unwrap();
        let stats = Scanner::new(&mut watch)
            .with_options(opts)
            .scan(blocks, |d| {
                deltas.push(d);
                Ok::<_, String>(())
            })
            .unwrap();
        (deltas, stats)
    };
    let (serial, s1) = run(1);
    let (parallel, s2) = run(2);
    assert_eq!(serial, parallel);
    assert_eq!(s1, s2);
    assert_eq!(serial.len(), 439);
    assert_eq!(s1.created, expected_created);
    assert!(s1.spent >= 1, "block 170 spends block 9's coinbase");
    for (h, d) in serial.iter().enumerate() {
        assert_eq!(d.meta.height as usize, h);
    }
}
