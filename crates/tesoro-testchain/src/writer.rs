//! Writes blocks exactly as Bitcoin Core lays them out in `blocks/`: `[magic][u32 size][block]`
//! records in `blkNNNNN.dat`, a new file when the next record would reach the size limit
//! (128 MiB in Core), every byte XORed with `xor.dat`'s key by absolute file offset, blocks out
//! of mining order within a window (as parallel block download leaves them), and the last file
//! extended with raw zeros to a 16 MiB boundary (Core's preallocation, which is not obfuscated).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{io, Result};

const REGTEST_MAGIC: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda];
const CHUNK: u64 = 16 * 1024 * 1024;

/// The blk file writer.
pub struct BlkWriter {
    dir: PathBuf,
    key: [u8; 8],
    max_file_size: u64,
    window: usize,
    zero_tail: bool,
    rng: ChaCha8Rng,
    pending: Vec<Vec<u8>>,
    file_no: u32,
    pos: u64,
    out: Option<BufWriter<File>>,
    scratch: Vec<u8>,
    /// File names written, in order.
    pub files: Vec<String>,
    /// Record bytes written (frames included, zero tail excluded).
    pub bytes: u64,
    /// Blocks written.
    pub blocks: u64,
}

impl BlkWriter {
    /// Create `dir` (the blocks dir) and write `xor.dat` when the key is not all zeros... Core
    /// v28+ always writes xor.dat; an all-zero key is written too, meaning "no obfuscation".
    pub fn new(
        dir: &Path,
        key: [u8; 8],
        max_file_size: u64,
        window: usize,
        zero_tail: bool,
        seed: u64,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let xor_path = dir.join("xor.dat");
        std::fs::write(&xor_path, key).map_err(io(&xor_path))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
            max_file_size,
            window,
            zero_tail,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_b10c),
            pending: Vec::new(),
            file_no: 0,
            pos: 0,
            out: None,
            scratch: Vec::new(),
            files: Vec::new(),
            bytes: 0,
            blocks: 0,
        })
    }

    /// Queue a block; it is written once `window` newer blocks have arrived, at a random moment
    /// within that window.
    pub fn push(&mut self, block: Vec<u8>) -> Result<()> {
        self.pending.push(block);
        if self.pending.len() > self.window {
            let i = self.rng.gen_range(0..self.pending.len());
            let b = self.pending.swap_remove(i);
            self.write_record(&b)?;
        }
        Ok(())
    }

    fn path(&self, n: u32) -> PathBuf {
        self.dir.join(format!("blk{n:05}.dat"))
    }

    fn write_record(&mut self, block: &[u8]) -> Result<()> {
        let add = 8 + block.len() as u64;
        if self.out.is_none() || self.pos + add >= self.max_file_size {
            if let Some(mut f) = self.out.take() {
                f.flush().map_err(io(self.path(self.file_no)))?;
                self.file_no += 1;
            }
            let p = self.path(self.file_no);
            let f = File::create(&p).map_err(io(&p))?;
            self.files.push(format!("blk{:05}.dat", self.file_no));
            self.out = Some(BufWriter::with_capacity(1 << 20, f));
            self.pos = 0;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&REGTEST_MAGIC);
        self.scratch
            .extend_from_slice(&(block.len() as u32).to_le_bytes());
        self.scratch.extend_from_slice(block);
        if self.key != [0u8; 8] {
            let start = self.pos;
            for (i, b) in self.scratch.iter_mut().enumerate() {
                *b ^= self.key[((start + i as u64) % 8) as usize];
            }
        }
        let p = self.path(self.file_no);
        if let Some(f) = self.out.as_mut() {
            f.write_all(&self.scratch).map_err(io(&p))?;
        }
        self.pos += add;
        self.bytes += add;
        self.blocks += 1;
        Ok(())
    }

    /// Write what is still queued (in random order) and close the last file, zero-padded.
    pub fn finish(mut self) -> Result<Vec<String>> {
        while !self.pending.is_empty() {
            let i = self.rng.gen_range(0..self.pending.len());
            let b = self.pending.swap_remove(i);
            self.write_record(&b)?;
        }
        let p = self.path(self.file_no);
        if let Some(f) = self.out.take() {
            let f = f.into_inner().map_err(|e| e.into_error()).map_err(io(&p))?;
            if self.zero_tail {
                // Sparse extension: reads as zeros, like fallocate'd space.
                let padded = self.pos.div_ceil(CHUNK).max(1) * CHUNK;
                f.set_len(padded).map_err(io(&p))?;
            }
            f.sync_all().map_err(io(&p))?;
        }
        Ok(self.files)
    }
}
