//! Bitcoin Core's `blocks/` directory read directly: `blkNNNNN.dat` framing, the `xor.dat`
//! obfuscation key (Core v28+), the per-network magic, the zero tail of a preallocated file and
//! a truncated last record; then a header index that links blocks by prev-hash and keeps the
//! most-work chain, dropping stale blocks; then raw blocks in height order.
//!
//! Why this shape:
//! - Indexing reads only 88 bytes per record (frame + header) with positioned reads, so building
//!   the index costs one small read per block, not a pass over gigabytes.
//! - Blocks are then read one at a time into their own buffer: memory stays bounded by the
//!   number of blocks in flight, whatever the chain length. Finished blk files (every one but
//!   the highest-numbered) are memory-mapped, and a block is de-obfuscated while it is copied
//!   out of the mapping in one pass, instead of the kernel copying it (`read`) and a second
//!   pass XORing it. The last file, which Core still appends to, is read with `read`.
//! - Every byte from a file is untrusted: all lengths are checked before use and every failure
//!   is a [`ChainError`] naming the file and byte offset.
//! - Core's `blocks/index` LevelDB is not read (it is locked while Core runs); linking headers
//!   gives the same order for every block that Core has stored.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use bitcoin::pow::Work;
use bitcoin::{BlockHash, Network};

use crate::error::{ChainError, Result};

/// Largest serialized block Core accepts (`MAX_BLOCK_SERIALIZED_SIZE`). A frame claiming more
/// is corrupt, and refusing it keeps a bad length from making us allocate gigabytes.
pub const MAX_BLOCK_SIZE: u32 = 4_000_000;

/// Size of the frame in front of each block: 4-byte magic + u32 LE length.
const FRAME_LEN: u64 = 8;
/// Size of a block header.
const HEADER_LEN: usize = 80;

/// The 8-byte obfuscation key of a blocks dir. All zeros means no obfuscation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XorKey(pub [u8; 8]);

impl XorKey {
    /// True when applying the key changes nothing.
    pub fn is_identity(&self) -> bool {
        self.0 == [0u8; 8]
    }

    /// Copy `src`, which starts at absolute file offset `file_offset`, into `dst` (same length)
    /// de-obfuscating on the way: one pass over the bytes instead of a copy and an XOR.
    pub fn copy_apply(&self, src: &[u8], dst: &mut [u8], file_offset: u64) {
        if self.is_identity() {
            dst.copy_from_slice(src);
            return;
        }
        let shift = (file_offset % 8) as usize;
        let mut rotated = [0u8; 8];
        for (i, b) in rotated.iter_mut().enumerate() {
            *b = self.0[(shift + i) % 8];
        }
        let word = u64::from_ne_bytes(rotated);
        let mut d = dst.chunks_exact_mut(8);
        let mut s = src.chunks_exact(8);
        for (dc, sc) in (&mut d).zip(&mut s) {
            let mut w = [0u8; 8];
            w.copy_from_slice(sc);
            dc.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
        }
        for (i, (db, sb)) in d.into_remainder().iter_mut().zip(s.remainder()).enumerate() {
            *db = sb ^ rotated[i];
        }
    }

    /// XOR `buf`, which was read starting at absolute file offset `file_offset`, in place.
    /// The operation is its own inverse, so it both obfuscates and de-obfuscates.
    pub fn apply(&self, buf: &mut [u8], file_offset: u64) {
        if self.is_identity() {
            return;
        }
        // Rotate the key so that key[0] lines up with buf[0]; then whole 8-byte words can be
        // XORed at once (the scanner's hot path reads gigabytes through here).
        let shift = (file_offset % 8) as usize;
        let mut rotated = [0u8; 8];
        for (i, b) in rotated.iter_mut().enumerate() {
            *b = self.0[(shift + i) % 8];
        }
        let word = u64::from_ne_bytes(rotated);
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
        }
        for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
            *b ^= rotated[i];
        }
    }
}

/// Where a block's bytes sit: file number in the dir's list, byte offset of the block (after
/// its 8-byte frame) and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLocation {
    /// Index into [`BlocksDir::files`].
    pub file: u32,
    /// Byte offset of the first header byte in that file.
    pub offset: u64,
    /// Serialized block length.
    pub len: u32,
}

/// One `blkNNNNN.dat` file.
#[derive(Debug, Clone)]
pub struct BlkFile {
    /// The `NNNNN` of the name.
    pub number: u32,
    /// Full path.
    pub path: PathBuf,
    /// Length when the dir was opened.
    pub len: u64,
}

/// A record found while walking the files, with its header.
#[derive(Debug, Clone)]
pub struct Record {
    /// Where the block is.
    pub location: BlockLocation,
    /// The block header.
    pub header: Header,
    /// Its hash.
    pub hash: BlockHash,
}

/// Something unusual but normal for Core's files, reported so callers can log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileNote {
    /// The file ends in zero bytes from this offset on (Core preallocates in 16 MiB chunks).
    ZeroTail {
        /// The file.
        file: PathBuf,
        /// First byte of the tail.
        offset: u64,
    },
    /// The last record is cut off (a crash while writing); it is ignored.
    TruncatedRecord {
        /// The file.
        file: PathBuf,
        /// Byte offset of the record's magic.
        offset: u64,
        /// Length the frame claims.
        claimed: u64,
        /// Bytes actually left after the frame.
        available: u64,
    },
    /// A block whose header fails proof of work or has an invalid target; left out of the chain.
    BadProofOfWork {
        /// The file.
        file: PathBuf,
        /// Byte offset of the block.
        offset: u64,
        /// Its hash.
        hash: BlockHash,
    },
    /// The same block is stored twice; the first copy is used.
    Duplicate {
        /// The block hash.
        hash: BlockHash,
    },
}

/// A Bitcoin Core blocks directory opened for one network.
#[derive(Debug, Clone)]
pub struct BlocksDir {
    dir: PathBuf,
    network: Network,
    key: XorKey,
    files: Vec<BlkFile>,
    /// One lazily made mapping per finished file (`None`: read it with `read`).
    maps: Arc<[OnceLock<Option<memmap2::Mmap>>]>,
}

/// Maps a finished blk file read-only, or says why not (then the caller reads it).
///
/// Soundness of the `unsafe` map: the mapping is only ever read through `&[u8]`, so it is
/// sound as long as no byte we read changes and the file does not shrink below the mapped
/// bytes we touch while we hold it. For Core's finished blk files (every file but the
/// highest-numbered):
/// - Core never rewrites a block it stored; it only appends to the *last* file. So the
///   bytes of complete records never change.
/// - The one shrinking Core does is when it finalizes a file before moving to the next: it
///   truncates the preallocated zero tail to the used size. That happens before the next
///   file exists, so a file below the last one is already final when we see it; and even if
///   it raced, it only removes the zero tail, which we never read (we read only records the
///   index found, all below the used size), so no touched page can fault.
/// - Pruning deletes whole files: an unlinked file stays valid for an existing mapping.
/// - We map exactly the length fstat gives at open, and every block read is bounds-checked
///   against it, so we never touch a page past what existed.
///
/// What is *not* covered: another program truncating or rewriting the files while we scan
/// (e.g. someone running `truncate` on them). Reading a truncated page then raises SIGBUS and
/// the process dies; that is outside the contract of a blocks dir and would corrupt Core too.
/// The last, growing file is never mapped, which avoids the one case Core itself causes.
fn map_file(path: &Path) -> Option<memmap2::Mmap> {
    let file = File::open(path).ok()?;
    let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
    if len == 0 {
        return None;
    }
    // SAFETY: see above: read-only mapping of a finished blk file, exactly its fstat length;
    // Core neither rewrites nor truncates the records we read in such a file.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(&file) }.ok()?;
    // The scan reads each file front to back once.
    let _ = map.advise(memmap2::Advice::Sequential);
    Some(map)
}

impl BlocksDir {
    /// Open `dir`, which is Core's `blocks/` directory or the data dir holding it, for `network`.
    /// Reads `xor.dat` when present and lists the `blk*.dat` files in number order.
    pub fn open(dir: impl AsRef<Path>, network: Network) -> Result<Self> {
        let mut dir = dir.as_ref().to_path_buf();
        if !dir.join("blk00000.dat").exists() && dir.join("blocks").is_dir() {
            dir = dir.join("blocks");
        }
        let key = read_xor_key(&dir)?;
        let mut files = Vec::new();
        let entries = std::fs::read_dir(&dir).map_err(|e| ChainError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ChainError::io(&dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(number) = name
                .strip_prefix("blk")
                .and_then(|n| n.strip_suffix(".dat"))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let len = entry
                .metadata()
                .map_err(|e| ChainError::io(&path, e))?
                .len();
            files.push(BlkFile { number, path, len });
        }
        if files.is_empty() {
            return Err(ChainError::NoBlockFiles { dir });
        }
        files.sort_by_key(|f| f.number);
        let maps = (0..files.len()).map(|_| OnceLock::new()).collect();
        Ok(Self {
            dir,
            network,
            key,
            files,
            maps,
        })
    }

    /// The directory actually read (the `blocks/` dir).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The network this dir was opened for.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The obfuscation key (all zeros when there is no `xor.dat`).
    pub fn xor_key(&self) -> XorKey {
        self.key
    }

    /// The blk files, in number order.
    pub fn files(&self) -> &[BlkFile] {
        &self.files
    }

    /// Walk every record of every file, in file order. Returns the records and notes about zero
    /// tails and truncated records. Fails on another network's magic or a corrupt frame.
    pub fn records(&self) -> Result<(Vec<Record>, Vec<FileNote>)> {
        let mut records = Vec::new();
        let mut notes = Vec::new();
        for (i, f) in self.files.iter().enumerate() {
            let file_idx = u32::try_from(i).map_err(|_| ChainError::CorruptRecord {
                file: f.path.clone(),
                offset: 0,
                reason: "too many blk files".into(),
            })?;
            let file = File::open(&f.path).map_err(|e| ChainError::io(&f.path, e))?;
            self.walk_file(&file, f, file_idx, &mut records, &mut notes)?;
        }
        Ok((records, notes))
    }

    fn walk_file(
        &self,
        file: &File,
        f: &BlkFile,
        file_idx: u32,
        records: &mut Vec<Record>,
        notes: &mut Vec<FileNote>,
    ) -> Result<()> {
        let expected = self.network.magic().to_bytes();
        let mut pos = 0u64;
        let mut buf = [0u8; FRAME_LEN as usize + HEADER_LEN];
        while pos < f.len {
            let left = f.len - pos;
            if left < FRAME_LEN {
                let mut tail = vec![0u8; left as usize];
                read_at(file, &f.path, &mut tail, pos)?;
                let raw_zero = tail.iter().all(|&b| b == 0);
                self.key.apply(&mut tail, pos);
                if raw_zero || tail.iter().all(|&b| b == 0) {
                    notes.push(FileNote::ZeroTail {
                        file: f.path.clone(),
                        offset: pos,
                    });
                } else {
                    notes.push(FileNote::TruncatedRecord {
                        file: f.path.clone(),
                        offset: pos,
                        claimed: FRAME_LEN,
                        available: left,
                    });
                }
                return Ok(());
            }
            let want = (FRAME_LEN + HEADER_LEN as u64).min(left) as usize;
            let chunk = &mut buf[..want];
            read_at(file, &f.path, chunk, pos)?;
            // Core preallocates with fallocate: the tail is raw zeros on disk, which are *not*
            // obfuscated. A writer that does XOR the padding gives zeros after de-XOR. Both
            // mean "no more records in this file".
            let raw_zero_magic = chunk[..4] == [0u8; 4];
            self.key.apply(chunk, pos);
            let mut magic = [0u8; 4];
            magic.copy_from_slice(&chunk[..4]);
            if raw_zero_magic || magic == [0u8; 4] {
                notes.push(FileNote::ZeroTail {
                    file: f.path.clone(),
                    offset: pos,
                });
                return Ok(());
            }
            if magic != expected {
                let found = Network::from_magic(bitcoin::p2p::Magic::from_bytes(magic));
                return Err(match found {
                    Some(found) => ChainError::WrongNetwork {
                        file: f.path.clone(),
                        offset: pos,
                        found,
                        expected: self.network,
                    },
                    None => ChainError::CorruptRecord {
                        file: f.path.clone(),
                        offset: pos,
                        reason: format!(
                            "bad magic {:02x}{:02x}{:02x}{:02x}, expected {}",
                            magic[0],
                            magic[1],
                            magic[2],
                            magic[3],
                            self.network.magic()
                        ),
                    },
                });
            }
            let mut size = [0u8; 4];
            size.copy_from_slice(&chunk[4..8]);
            let size = u32::from_le_bytes(size);
            let available = left - FRAME_LEN;
            if u64::from(size) > available {
                // A crash while appending leaves a frame whose block runs past the end of the
                // file. Core ignores it on restart; so do we.
                notes.push(FileNote::TruncatedRecord {
                    file: f.path.clone(),
                    offset: pos,
                    claimed: u64::from(size),
                    available,
                });
                return Ok(());
            }
            if (size as usize) <= HEADER_LEN || size > MAX_BLOCK_SIZE {
                return Err(ChainError::CorruptRecord {
                    file: f.path.clone(),
                    offset: pos,
                    reason: format!(
                        "frame claims a {size}-byte block (valid: {}..={MAX_BLOCK_SIZE})",
                        HEADER_LEN + 1
                    ),
                });
            }
            let header: Header = bitcoin::consensus::deserialize(&chunk[FRAME_LEN as usize..])
                .map_err(|e| ChainError::CorruptRecord {
                    file: f.path.clone(),
                    offset: pos,
                    reason: format!("bad header: {e}"),
                })?;
            records.push(Record {
                location: BlockLocation {
                    file: file_idx,
                    offset: pos + FRAME_LEN,
                    len: size,
                },
                hash: header.block_hash(),
                header,
            });
            pos += FRAME_LEN + u64::from(size);
        }
        Ok(())
    }

    /// Build the header index: link every stored block by prev-hash from the network's genesis
    /// block and keep the chain with the most work. Stale blocks (other branches) and blocks
    /// that do not connect are left out and listed.
    pub fn index(&self) -> Result<ChainIndex> {
        let (records, mut notes) = self.records()?;
        let genesis = bitcoin::constants::genesis_block(self.network).block_hash();
        let max_target = bitcoin::params::Params::new(self.network).max_attainable_target;

        // hash -> record index; first copy wins (Core would not store a block twice, but a
        // reindex into the same dir can).
        let mut by_hash: HashMap<BlockHash, u32> = HashMap::with_capacity(records.len());
        let mut valid = vec![true; records.len()];
        for (i, r) in records.iter().enumerate() {
            let target = r.header.target();
            // Work is only meaningful for a header that really meets its own target; checking
            // it also keeps crafted bits (zero or huge work) from overflowing the sums below.
            if target == bitcoin::pow::Target::ZERO
                || target > max_target
                || !target.is_met_by(r.hash)
            {
                valid[i] = false;
                notes.push(FileNote::BadProofOfWork {
                    file: self.files[r.location.file as usize].path.clone(),
                    offset: r.location.offset,
                    hash: r.hash,
                });
                continue;
            }
            if by_hash.contains_key(&r.hash) {
                valid[i] = false;
                notes.push(FileNote::Duplicate { hash: r.hash });
                continue;
            }
            by_hash.insert(r.hash, i as u32);
        }

        let Some(&root) = by_hash.get(&genesis) else {
            // Name what the dir starts with instead, so the user sees it is another chain.
            let found = records
                .iter()
                .zip(&valid)
                .find(|(r, ok)| **ok && !by_hash.contains_key(&r.header.prev_blockhash))
                .map(|(r, _)| r.hash)
                .unwrap_or_else(BlockHash::all_zeros);
            return Err(ChainError::GenesisMismatch {
                dir: self.dir.clone(),
                network: self.network,
                expected: genesis,
                found,
            });
        };

        // Children lists, then a depth-first walk from genesis accumulating work. Iterative so
        // a long chain cannot overflow the stack.
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            if !valid[i] || i as u32 == root {
                continue;
            }
            if let Some(&p) = by_hash.get(&r.header.prev_blockhash) {
                children.entry(p).or_default().push(i as u32);
            }
        }
        let mut work: HashMap<u32, Work> = HashMap::with_capacity(by_hash.len());
        let root_work = records[root as usize].header.work();
        work.insert(root, root_work);
        let mut best = (root, root_work);
        let mut stack = vec![root];
        while let Some(node) = stack.pop() {
            let w = work.get(&node).copied().unwrap_or(root_work);
            // Ties go to the block stored first, as Core keeps the first-received tip.
            if w > best.1 || (w == best.1 && node < best.0) {
                best = (node, w);
            }
            if let Some(kids) = children.get(&node) {
                for &k in kids {
                    work.insert(k, w + records[k as usize].header.work());
                    stack.push(k);
                }
            }
        }

        let mut chain = Vec::new();
        let mut cur = best.0;
        loop {
            chain.push(cur);
            if cur == root {
                break;
            }
            let prev = records[cur as usize].header.prev_blockhash;
            match by_hash.get(&prev) {
                Some(&p) => cur = p,
                None => break, // unreachable: every node in `work` descends from root
            }
        }
        chain.reverse();

        let mut on_chain = vec![false; records.len()];
        for &i in &chain {
            on_chain[i as usize] = true;
        }
        let stale: Vec<BlockHash> = records
            .iter()
            .enumerate()
            .filter(|(i, _)| valid[*i] && !on_chain[*i])
            .map(|(_, r)| r.hash)
            .collect();
        let blocks: Vec<IndexedBlock> = chain
            .iter()
            .enumerate()
            .map(|(h, &i)| {
                let r = &records[i as usize];
                IndexedBlock {
                    height: h as u32,
                    hash: r.hash,
                    prev_hash: r.header.prev_blockhash,
                    time: r.header.time,
                    location: r.location,
                }
            })
            .collect();
        let heights = blocks.iter().map(|b| (b.hash, b.height)).collect();
        Ok(ChainIndex {
            blocks,
            heights,
            stale,
            notes,
            chain_work: best.1,
        })
    }

    /// Read the block at `loc` into `buf` (replacing its contents) and de-obfuscate it.
    pub fn read_block_into(&self, loc: BlockLocation, buf: &mut Vec<u8>) -> Result<()> {
        let f = self.file(loc.file)?;
        if let Some(map) = self.mapped(loc.file) {
            return copy_block_from(map, f, self.key, loc, buf);
        }
        let file = File::open(&f.path).map_err(|e| ChainError::io(&f.path, e))?;
        read_block_from(&file, f, self.key, loc, buf)
    }

    /// The mapping of file `idx` when it is a finished file that could be mapped.
    fn mapped(&self, idx: u32) -> Option<&memmap2::Mmap> {
        let i = idx as usize;
        if i + 1 >= self.files.len() {
            return None; // the last file may still grow: read it
        }
        let f = self.files.get(i)?;
        self.maps.get(i)?.get_or_init(|| map_file(&f.path)).as_ref()
    }

    fn file(&self, idx: u32) -> Result<&BlkFile> {
        self.files
            .get(idx as usize)
            .ok_or_else(|| ChainError::CorruptRecord {
                file: self.dir.clone(),
                offset: 0,
                reason: format!("no blk file number {idx} in the list"),
            })
    }

    /// Iterate raw blocks of `index`'s best chain from `from_height` to the tip, in height order.
    pub fn blocks_from<'a>(
        &'a self,
        index: &'a ChainIndex,
        from_height: u32,
    ) -> Result<BlockReader<'a>> {
        if from_height as usize > index.blocks.len() {
            return Err(ChainError::HeightPastTip {
                height: from_height,
                tip: index.tip_height(),
            });
        }
        Ok(BlockReader {
            dir: self,
            index,
            next: from_height as usize,
            open: None,
        })
    }

    /// The blocks of `index`'s best chain from `from_height` on, not read yet: hand these to
    /// [`crate::Scanner::scan`] so its workers do the reading in parallel.
    pub fn pending_from<'a>(
        &'a self,
        index: &'a ChainIndex,
        from_height: u32,
    ) -> Result<impl Iterator<Item = PendingBlock<'a>> + Send + 'a> {
        if from_height as usize > index.blocks.len() {
            return Err(ChainError::HeightPastTip {
                height: from_height,
                tip: index.tip_height(),
            });
        }
        Ok(index.blocks[from_height as usize..]
            .iter()
            .map(move |b| PendingBlock {
                dir: self,
                block: *b,
            }))
    }
}

/// Refuses a frame length no block can have before anything is allocated for it.
fn check_block_len(f: &BlkFile, loc: BlockLocation) -> Result<()> {
    if loc.len > MAX_BLOCK_SIZE {
        return Err(ChainError::CorruptRecord {
            file: f.path.clone(),
            offset: loc.offset,
            reason: format!("block length {} too large", loc.len),
        });
    }
    Ok(())
}

fn read_block_from(
    file: &File,
    f: &BlkFile,
    key: XorKey,
    loc: BlockLocation,
    buf: &mut Vec<u8>,
) -> Result<()> {
    check_block_len(f, loc)?;
    // Reused buffers keep their old bytes: only grow (zeroing the new part) or cut, since the
    // read overwrites every byte anyway.
    let len = loc.len as usize;
    if buf.len() < len {
        buf.resize(len, 0);
    } else {
        buf.truncate(len);
    }
    read_at(file, &f.path, buf, loc.offset)?;
    key.apply(buf, loc.offset);
    Ok(())
}

/// [`read_block_from`] from a mapping: bounds-checked, copied and de-obfuscated in one pass.
fn copy_block_from(
    map: &memmap2::Mmap,
    f: &BlkFile,
    key: XorKey,
    loc: BlockLocation,
    buf: &mut Vec<u8>,
) -> Result<()> {
    check_block_len(f, loc)?;
    let len = loc.len as usize;
    let src = usize::try_from(loc.offset)
        .ok()
        .and_then(|o| map.get(o..o.checked_add(len)?))
        .ok_or_else(|| ChainError::CorruptRecord {
            file: f.path.clone(),
            offset: loc.offset,
            reason: format!("cannot read {len} bytes: past the end of the file"),
        })?;
    if buf.len() < len {
        buf.resize(len, 0);
    } else {
        buf.truncate(len);
    }
    key.copy_apply(src, buf, loc.offset);
    // The block is copied out: drop its pages from this process's page tables, so the
    // mapping's resident size (counted in our RSS) stays about one block per worker instead
    // of growing to the whole dir. The page cache keeps the pages.
    if let Ok(o) = usize::try_from(loc.offset) {
        // SAFETY: MADV_DONTNEED on a read-only *shared file* mapping only unmaps the pages;
        // a later access faults them back in from the file with the same bytes (it zero-fills
        // only private anonymous/CoW pages, which this mapping has none of). The mapping itself
        // stays, so any slice into it (here or in another worker, for a block sharing a page)
        // stays valid and reads the same bytes.
        let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, o, len) };
    }
    Ok(())
}

fn read_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    file.read_exact_at(buf, offset)
        .map_err(|e| ChainError::CorruptRecord {
            file: path.to_path_buf(),
            offset,
            reason: format!("cannot read {} bytes: {e}", buf.len()),
        })
}

fn read_xor_key(dir: &Path) -> Result<XorKey> {
    let path = dir.join("xor.dat");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let key: [u8; 8] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| ChainError::BadXorKey {
                    path: path.clone(),
                    len: bytes.len() as u64,
                })?;
            Ok(XorKey(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(XorKey::default()),
        Err(e) => Err(ChainError::io(path, e)),
    }
}

/// A block of the best chain as the index knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedBlock {
    /// Height (genesis = 0).
    pub height: u32,
    /// Block hash.
    pub hash: BlockHash,
    /// Previous block hash.
    pub prev_hash: BlockHash,
    /// Header time.
    pub time: u32,
    /// Where its bytes are.
    pub location: BlockLocation,
}

impl IndexedBlock {
    /// The block's header facts in the form the store persists.
    pub fn meta(&self) -> tesoro_core::chain::BlockMeta {
        tesoro_core::chain::BlockMeta {
            height: self.height,
            hash: self.hash,
            prev_hash: self.prev_hash,
            time: self.time,
        }
    }
}

/// The best chain of a blocks dir, by height, plus the stale blocks that were dropped.
#[derive(Debug, Clone)]
pub struct ChainIndex {
    blocks: Vec<IndexedBlock>,
    heights: HashMap<BlockHash, u32>,
    stale: Vec<BlockHash>,
    notes: Vec<FileNote>,
    chain_work: Work,
}

impl ChainIndex {
    /// Height of the tip.
    pub fn tip_height(&self) -> u32 {
        self.blocks.len().saturating_sub(1) as u32
    }

    /// The tip block.
    pub fn tip(&self) -> Option<&IndexedBlock> {
        self.blocks.last()
    }

    /// Number of blocks on the best chain (tip height + 1).
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// True when the chain is empty (never the case for an index that was built).
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The block at `height`.
    pub fn get(&self, height: u32) -> Option<&IndexedBlock> {
        self.blocks.get(height as usize)
    }

    /// Height of `hash` if it is on the best chain (None for stale or unknown blocks): lets a
    /// caller check its stored tip is still on the best chain before resuming.
    pub fn height_of(&self, hash: &BlockHash) -> Option<u32> {
        self.heights.get(hash).copied()
    }

    /// All blocks of the best chain by height.
    pub fn blocks(&self) -> &[IndexedBlock] {
        &self.blocks
    }

    /// Blocks stored in the files but not on the best chain.
    pub fn stale(&self) -> &[BlockHash] {
        &self.stale
    }

    /// Notes about zero tails, truncated records, bad proof of work and duplicates.
    pub fn notes(&self) -> &[FileNote] {
        &self.notes
    }

    /// Total work of the best chain.
    pub fn chain_work(&self) -> Work {
        self.chain_work
    }
}

/// A raw block with its place in the chain, de-obfuscated, from any source.
#[derive(Debug, Clone)]
pub struct RawBlock {
    /// Height in the best chain.
    pub height: u32,
    /// Hash from the source's index (checked against the bytes when read from a blocks dir).
    pub hash: BlockHash,
    /// The file and offset it was read from, when it came from a file (for error messages).
    pub origin: Option<BlockOrigin>,
    /// The serialized block.
    pub bytes: Vec<u8>,
}

impl RawBlock {
    /// A block from memory (RPC, REST, a test), hash taken from its header.
    pub fn from_bytes(height: u32, bytes: Vec<u8>) -> Self {
        let hash = match bytes.get(..HEADER_LEN) {
            Some(h) => BlockHash::hash(h),
            None => BlockHash::all_zeros(),
        };
        Self {
            height,
            hash,
            origin: None,
            bytes,
        }
    }
}

/// Where a block's bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOrigin {
    /// The blk file.
    pub path: Arc<Path>,
    /// Byte offset of the block (after its frame).
    pub offset: u64,
}

/// A block of the index not read yet: the scanner's workers read it, so reads and
/// de-obfuscation run in parallel.
#[derive(Debug, Clone, Copy)]
pub struct PendingBlock<'a> {
    dir: &'a BlocksDir,
    block: IndexedBlock,
}

impl PendingBlock<'_> {
    /// The block's index entry.
    pub fn block(&self) -> &IndexedBlock {
        &self.block
    }

    /// Read and check it, into `buf` (its old contents are replaced).
    pub fn read(&self, buf: Vec<u8>) -> Result<RawBlock> {
        let f = self.dir.file(self.block.location.file)?;
        if let Some(map) = self.dir.mapped(self.block.location.file) {
            let mut bytes = buf;
            copy_block_from(map, f, self.dir.key, self.block.location, &mut bytes)?;
            return check_block(f, &self.block, bytes);
        }
        let file = File::open(&f.path).map_err(|e| ChainError::io(&f.path, e))?;
        read_checked(&file, f, self.dir.key, &self.block, buf)
    }
}

impl crate::scanner::LoadBlock for PendingBlock<'_> {
    fn load(self, buf: Vec<u8>) -> Result<RawBlock> {
        self.read(buf)
    }
}

fn read_checked(
    file: &File,
    f: &BlkFile,
    key: XorKey,
    b: &IndexedBlock,
    mut bytes: Vec<u8>,
) -> Result<RawBlock> {
    read_block_from(file, f, key, b.location, &mut bytes)?;
    check_block(f, b, bytes)
}

/// The block's bytes must hash to the index's hash (the file changed under us otherwise).
fn check_block(f: &BlkFile, b: &IndexedBlock, bytes: Vec<u8>) -> Result<RawBlock> {
    let found = match bytes.get(..HEADER_LEN) {
        Some(h) => BlockHash::hash(h),
        None => BlockHash::all_zeros(),
    };
    if found != b.hash {
        return Err(ChainError::BlockChanged {
            file: f.path.clone(),
            offset: b.location.offset,
            height: b.height,
            expected: b.hash,
            found,
        });
    }
    Ok(RawBlock {
        height: b.height,
        hash: b.hash,
        origin: Some(BlockOrigin {
            path: Arc::from(f.path.as_path()),
            offset: b.location.offset,
        }),
        bytes,
    })
}

/// Iterator of [`RawBlock`]s in height order. Holds at most one open file and yields one
/// buffer per block, so memory is bounded by what the consumer keeps.
pub struct BlockReader<'a> {
    dir: &'a BlocksDir,
    index: &'a ChainIndex,
    next: usize,
    open: Option<(u32, File)>,
}

impl BlockReader<'_> {
    fn read(&mut self, b: IndexedBlock) -> Result<RawBlock> {
        let f = self.dir.file(b.location.file)?;
        if let Some(map) = self.dir.mapped(b.location.file) {
            let mut bytes = Vec::new();
            copy_block_from(map, f, self.dir.key, b.location, &mut bytes)?;
            return check_block(f, &b, bytes);
        }
        let reuse = matches!(&self.open, Some((n, _)) if *n == b.location.file);
        if !reuse {
            let file = File::open(&f.path).map_err(|e| ChainError::io(&f.path, e))?;
            self.open = Some((b.location.file, file));
        }
        match &self.open {
            Some((_, file)) => read_checked(file, f, self.dir.key, &b, Vec::new()),
            None => Err(ChainError::io(
                &f.path,
                std::io::Error::other("file not open"),
            )),
        }
    }
}

impl Iterator for BlockReader<'_> {
    type Item = Result<RawBlock>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = *self.index.blocks.get(self.next)?;
        self.next += 1;
        Some(self.read(b))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.index.blocks.len().saturating_sub(self.next);
        (n, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_is_position_keyed_and_self_inverse() {
        let key = XorKey([1, 2, 3, 4, 5, 6, 7, 8]);
        let data: Vec<u8> = (0u8..=40).collect();
        for start in 0..9u64 {
            let mut buf = data.clone();
            key.apply(&mut buf, start);
            for (i, (&a, &b)) in data.iter().zip(&buf).enumerate() {
                assert_eq!(a ^ key.0[((start as usize) + i) % 8], b);
            }
            key.apply(&mut buf, start);
            assert_eq!(buf, data);
        }
    }
}
