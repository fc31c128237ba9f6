//! Untrusted bytes never panic: random files as blk files, real files truncated anywhere, real
//! blocks with bytes flipped or cut, all go through the reader and the scanner and come out as
//! `Ok` or a `ChainError`.

use std::path::{Path, PathBuf};

use bitcoin::Network;
use proptest::prelude::*;
use tesoro_chain::{BlocksDir, RawBlock, Scanner, WatchSet};
use tesoro_core::chain::ScriptOwner;

fn fixture(name: &str) -> Vec<u8> {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/blocks")
        .join(name);
    std::fs::read(p).expect("fixture")
}

fn index_bytes(bytes: &[u8], xor: Option<[u8; 8]>) -> tesoro_chain::Result<usize> {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("blk00000.dat"), bytes).expect("write");
    if let Some(k) = xor {
        std::fs::write(tmp.path().join("xor.dat"), k).expect("write");
    }
    let dir = BlocksDir::open(tmp.path(), Network::Bitcoin)?;
    let index = dir.index()?;
    let mut n = 0;
    for b in dir.blocks_from(&index, 0)? {
        let raw = b?;
        let mut w = WatchSet::new();
        Scanner::new(&mut w).scan_block(raw)?;
        n += 1;
    }
    Ok(n)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_files_never_panic(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        magic_first in any::<bool>(),
        xor in proptest::option::of(any::<[u8; 8]>()),
    ) {
        if magic_first && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&[0xf9, 0xbe, 0xb4, 0xd9]);
        }
        let _ = index_bytes(&bytes, xor);
    }

    #[test]
    fn real_file_truncated_anywhere_gives_a_prefix_of_the_chain(cut in 0usize..99_969) {
        let data = fixture("mainnet-blk-h0-438.dat");
        match index_bytes(&data[..cut], None) {
            // A cut leaves the complete records before it: heights 0..k in order.
            Ok(n) => prop_assert!(n <= 439),
            // Cutting inside the genesis record leaves no chain at all.
            Err(e) => prop_assert!(cut < 293 && matches!(e, tesoro_chain::ChainError::GenesisMismatch { .. }), "{e}"),
        }
    }

    #[test]
    fn damaged_real_block_never_panics_the_scanner(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = fixture("mainnet-702861.raw");
        for (i, v) in flips {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        if let Some(c) = cut {
            let at = c.index(bytes.len());
            bytes.truncate(at);
        }
        let mut w = WatchSet::new();
        w.add_script(bitcoin::ScriptBuf::from_bytes(vec![0x00, 0x14, 1, 2, 3]), ScriptOwner::bare(1));
        let _ = Scanner::new(&mut w).scan_block(RawBlock::from_bytes(702_861, bytes));
    }
}
