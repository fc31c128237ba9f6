//! The scanner: raw blocks in height order in, one [`BlockDelta`] per block out.
//!
//! Two stages, so the expensive part runs on every core and the order-dependent part stays
//! simple:
//! 1. *Parse* (parallel, any order): a zero-copy walk of the block bytes with a bitcoin_slices
//!    visitor. Each output's script is looked up in the [`ScriptIndex`]; each input's prevout is
//!    only *located* (offset and a 64-bit key), since whether it spends a watched output depends
//!    on blocks not applied yet. A txid is hashed only for transactions with a watched output.
//! 2. *Apply* (in height order, one thread): keychains are extended when derived scripts are
//!    seen in use (and the block re-parsed if that added scripts), then inputs are checked
//!    against the watched unspent outpoints and created outputs are added to them, in
//!    transaction order, so a watched output created and spent in the same block is seen.
//!
//! A block is parsed completely before anything of it is applied, so a corrupt block stops the
//! scan with an error naming its height, hash and file offset, and nothing of it is emitted.
//! Memory is bounded by the number of blocks in flight ([`ScanOptions::in_flight`]).

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::mpsc::{channel, sync_channel};
use std::sync::{Mutex, PoisonError, RwLock};

use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, OutPoint, ScriptBuf, TxOut, Txid};
use bitcoin_slices::{bsl, Parse, Visit, Visitor};
use tesoro_core::chain::{
    BlockDelta, BlockMeta, ScriptOwner, TxRecord, WatchedOutput, WatchedSpend,
};

use crate::blocksdir::RawBlock;
use crate::error::{ChainError, Result};
use crate::watch::{outpoint_key, ScriptIndex, WatchSet, WatchedUtxo};

/// Something that yields a [`RawBlock`] when asked; lets the parse workers do the reading (so
/// reads and de-obfuscation run in parallel too) while the source only hands out positions.
pub trait LoadBlock: Send {
    /// Read the block, into `buf` if that suits the source: the scanner hands back the buffers
    /// of applied blocks so steady-state reading allocates (and page-faults) nothing.
    fn load(self, buf: Vec<u8>) -> Result<RawBlock>;
}

impl LoadBlock for RawBlock {
    fn load(self, _buf: Vec<u8>) -> Result<RawBlock> {
        Ok(self)
    }
}

impl LoadBlock for Result<RawBlock> {
    fn load(self, _buf: Vec<u8>) -> Result<RawBlock> {
        self
    }
}

/// Scanner settings.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    /// Parse workers (defaults to the number of cores).
    pub threads: usize,
    /// Blocks read or parsed but not yet applied, at most (bounds memory).
    pub in_flight: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            threads,
            in_flight: threads * 4,
        }
    }
}

/// What a scan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Blocks applied.
    pub blocks: u64,
    /// Bytes of block data walked.
    pub bytes: u64,
    /// Watched outputs created.
    pub created: u64,
    /// Watched outputs spent.
    pub spent: u64,
    /// Blocks parsed again because a keychain grew while they were in flight.
    pub reparsed: u64,
    /// Transactions whose txid was computed.
    pub txids_hashed: u64,
}

/// A watched output found by the parse stage.
#[derive(Debug, Clone, Copy)]
struct MatchedOut {
    tx: u32,
    vout: u32,
    value: u64,
    script_off: u32,
    script_len: u32,
    owner: ScriptOwner,
}

/// An input located by the parse stage.
#[derive(Debug, Clone, Copy)]
struct InputRef {
    key: u64,
    /// Offset of the 36-byte prevout in the block.
    prevout_off: u32,
    tx: u32,
    vin: u32,
}

/// Output of the parse stage for one block.
struct Parsed {
    raw: RawBlock,
    generation: u64,
    meta: BlockMeta,
    tx_ranges: Vec<(u32, u32)>,
    outputs: Vec<MatchedOut>,
    inputs: Vec<InputRef>,
    txids: Vec<(u32, Txid)>,
}

/// Outputs whose lookup is in flight: with a prefilter, each output's probe is issued this
/// many outputs before it is answered, so the cache misses of the probes overlap.
const PROBE_AHEAD: usize = 8;

/// An output seen by the walk, waiting for its lookup.
#[derive(Debug, Clone, Copy, Default)]
struct PendingOut {
    tx: u32,
    vout: u32,
    value: u64,
    script_off: u32,
    script_len: u32,
    tail: u64,
}

struct ParseVisitor<'a> {
    base: usize,
    block: &'a [u8],
    scripts: &'a ScriptIndex,
    tx: u32,
    tx_ranges: Vec<(u32, u32)>,
    outputs: Vec<MatchedOut>,
    inputs: Vec<InputRef>,
    /// Ring of [`PROBE_AHEAD`] outputs awaiting their lookup (only with a prefilter).
    pending: [PendingOut; PROBE_AHEAD],
    pending_len: usize,
    pending_head: usize,
}

impl ParseVisitor<'_> {
    /// Offset of `s` inside the block buffer. The slices bitcoin_slices hands out always point
    /// into the buffer it was given, so this is plain address arithmetic, no unsafe needed.
    #[inline]
    fn off(&self, s: &[u8]) -> u32 {
        (s.as_ptr() as usize).wrapping_sub(self.base) as u32
    }

    /// Answer one output's lookup and keep it if watched.
    #[inline]
    fn resolve(&mut self, p: PendingOut) {
        let start = p.script_off as usize;
        let Some(script) = self.block.get(start..start + p.script_len as usize) else {
            return;
        };
        if let Some(owner) = self.scripts.lookup_tail(script, p.tail) {
            self.outputs.push(MatchedOut {
                tx: p.tx,
                vout: p.vout,
                value: p.value,
                script_off: p.script_off,
                script_len: p.script_len,
                owner,
            });
        }
    }

    /// Answer every output still in flight (at the end of the walk).
    fn drain(&mut self) {
        while self.pending_len > 0 {
            let p = self.pending[self.pending_head];
            self.pending_head = (self.pending_head + 1) % PROBE_AHEAD;
            self.pending_len -= 1;
            self.resolve(p);
        }
    }
}

impl Visitor for ParseVisitor<'_> {
    fn visit_block_begin(&mut self, total_transactions: usize) {
        // Capacity hints only; cap them so a lying count cannot allocate much.
        self.tx_ranges.reserve(total_transactions.min(1 << 16));
    }

    #[inline]
    fn visit_tx_in(&mut self, vin: usize, tx_in: &bsl::TxIn) -> ControlFlow<()> {
        if self.tx != 0 {
            let prevout = tx_in.prevout();
            self.inputs.push(InputRef {
                key: outpoint_key(prevout.txid(), prevout.vout()),
                prevout_off: self.off(prevout.as_ref()),
                tx: self.tx,
                vin: vin as u32,
            });
        }
        ControlFlow::Continue(())
    }

    #[inline]
    fn visit_tx_out(&mut self, vout: usize, tx_out: &bsl::TxOut) -> ControlFlow<()> {
        let script = tx_out.script_pubkey();
        let tail = self.scripts.prefetch(script);
        let out = PendingOut {
            tx: self.tx,
            vout: vout as u32,
            value: tx_out.value(),
            script_off: self.off(script),
            script_len: script.len() as u32,
            tail,
        };
        if !self.scripts.has_prefilter() {
            // Small sets live in cache: answer at once.
            self.resolve(out);
            return ControlFlow::Continue(());
        }
        if self.pending_len == PROBE_AHEAD {
            let oldest = self.pending[self.pending_head];
            self.pending[self.pending_head] = out;
            self.pending_head = (self.pending_head + 1) % PROBE_AHEAD;
            self.resolve(oldest);
        } else {
            self.pending[(self.pending_head + self.pending_len) % PROBE_AHEAD] = out;
            self.pending_len += 1;
        }
        ControlFlow::Continue(())
    }

    #[inline]
    fn visit_transaction(&mut self, tx: &bsl::Transaction) -> ControlFlow<()> {
        let start = self.off(tx.as_ref());
        self.tx_ranges
            .push((start, start + tx.as_ref().len() as u32));
        self.tx += 1;
        ControlFlow::Continue(())
    }
}

fn txid_of(tx: &bsl::Transaction) -> Txid {
    let h = tx.txid_sha2();
    let mut arr = [0u8; 32];
    arr.copy_from_slice(h.as_slice());
    Txid::from_byte_array(arr)
}

fn bad_block(raw: &RawBlock, hash: BlockHash, reason: String) -> ChainError {
    let location = match &raw.origin {
        Some(o) => format!("{} at byte {}", o.path.display(), o.offset),
        None => "no file".to_string(),
    };
    ChainError::BadBlock {
        height: raw.height,
        hash,
        location,
        reason,
    }
}

/// Parse stage for one block. Pure function of the bytes and the script set.
fn parse(raw: RawBlock, scripts: &ScriptIndex) -> Result<Parsed> {
    let header: Header = match raw.bytes.get(..80) {
        Some(h) => bitcoin::consensus::deserialize(h)
            .map_err(|e| bad_block(&raw, raw.hash, format!("header: {e}")))?,
        None => return Err(bad_block(&raw, raw.hash, "shorter than a header".into())),
    };
    let hash = header.block_hash();
    if raw.bytes.len() > u32::MAX as usize {
        return Err(bad_block(&raw, hash, "block larger than 4 GiB".into()));
    }
    let mut v = ParseVisitor {
        base: raw.bytes.as_ptr() as usize,
        block: &raw.bytes,
        scripts,
        tx: 0,
        tx_ranges: Vec::new(),
        outputs: Vec::new(),
        inputs: Vec::new(),
        pending: [PendingOut::default(); PROBE_AHEAD],
        pending_len: 0,
        pending_head: 0,
    };
    let parsed = bsl::Block::visit(&raw.bytes, &mut v)
        .map_err(|e| bad_block(&raw, hash, format!("{e:?}")))?;
    let remaining = parsed.remaining().len();
    v.drain();
    // Txids only of the transactions with a watched output (found once the lookups are all
    // answered), hashed here on the parse workers rather than in the one-thread apply stage.
    let mut txids: Vec<(u32, Txid)> = Vec::new();
    for o in &v.outputs {
        if txids.last().is_some_and(|&(t, _)| t == o.tx) {
            continue;
        }
        let tx = v
            .tx_ranges
            .get(o.tx as usize)
            .and_then(|&(s, e)| raw.bytes.get(s as usize..e as usize))
            .and_then(|b| bsl::Transaction::parse(b).ok())
            .ok_or_else(|| bad_block(&raw, hash, format!("tx {} unreadable", o.tx)))?;
        txids.push((o.tx, txid_of(tx.parsed())));
    }
    if remaining != 0 {
        return Err(bad_block(
            &raw,
            hash,
            format!("{remaining} bytes after the last transaction"),
        ));
    }
    if v.tx == 0 {
        return Err(bad_block(&raw, hash, "no transactions".into()));
    }
    let meta = BlockMeta {
        height: raw.height,
        hash,
        prev_hash: header.prev_blockhash,
        time: header.time,
    };
    Ok(Parsed {
        generation: scripts.generation(),
        meta,
        tx_ranges: v.tx_ranges,
        outputs: v.outputs,
        inputs: v.inputs,
        txids,
        raw,
    })
}

/// Apply stage for one parsed block: spends against the outpoint set (and against `prevouts`
/// when given), created outputs into it.
fn apply(
    p: &Parsed,
    watch: &mut WatchSet,
    scripts: &ScriptIndex,
    prevouts: Option<&[TxOut]>,
    stats: &mut ScanStats,
) -> Result<BlockDelta> {
    let bytes = &p.raw.bytes;
    if let Some(prev) = prevouts {
        if prev.len() != p.inputs.len() {
            return Err(ChainError::Prevouts {
                height: p.meta.height,
                hash: p.meta.hash,
                reason: format!(
                    "{} prevouts given for {} non-coinbase inputs",
                    prev.len(),
                    p.inputs.len()
                ),
            });
        }
    }
    let mut delta = BlockDelta::empty(p.meta);
    let mut txids: BTreeMap<u32, Txid> = p.txids.iter().copied().collect();
    let mut touched: BTreeMap<u32, ()> = BTreeMap::new();
    let tx_bytes = |tx: u32| -> Option<&[u8]> {
        let &(s, e) = p.tx_ranges.get(tx as usize)?;
        bytes.get(s as usize..e as usize)
    };
    let mut txid_for = |tx: u32, stats: &mut ScanStats| -> Result<Txid> {
        if let Some(t) = txids.get(&tx) {
            return Ok(*t);
        }
        let t = tx_bytes(tx)
            .and_then(|b| bsl::Transaction::parse(b).ok())
            .map(|t| txid_of(t.parsed()))
            .ok_or_else(|| bad_block(&p.raw, p.meta.hash, format!("tx {tx} unreadable")))?;
        stats.txids_hashed += 1;
        txids.insert(tx, t);
        Ok(t)
    };
    stats.txids_hashed += p.txids.len() as u64;

    let (mut i, mut o) = (0usize, 0usize);
    while i < p.inputs.len() || o < p.outputs.len() {
        // Inputs of tx t before outputs of tx t (a tx cannot spend itself), and outputs of
        // earlier txs before inputs of later ones (an in-block chain of spends).
        let take_input = match (p.inputs.get(i), p.outputs.get(o)) {
            (Some(inp), Some(out)) => inp.tx <= out.tx,
            (Some(_), None) => true,
            _ => false,
        };
        if take_input {
            let inp = p.inputs[i];
            let j = i;
            i += 1;
            let from_set = if watch.outpoints.may_contain(inp.key) {
                let op = read_outpoint(bytes, inp.prevout_off)
                    .ok_or_else(|| bad_block(&p.raw, p.meta.hash, "prevout unreadable".into()))?;
                watch.outpoints.remove(&op).map(|u| (op, u))
            } else {
                None
            };
            let found = match (from_set, prevouts) {
                (Some(hit), _) => Some(hit),
                (None, Some(prev)) => match prev.get(j) {
                    Some(txout) => scripts.lookup(txout.script_pubkey.as_bytes()).map(|owner| {
                        let op = read_outpoint(bytes, inp.prevout_off);
                        (
                            op.unwrap_or(OutPoint::null()),
                            WatchedUtxo {
                                value: txout.value,
                                owner,
                            },
                        )
                    }),
                    None => None,
                },
                (None, None) => None,
            };
            if let Some((outpoint, utxo)) = found {
                let txid = txid_for(inp.tx, stats)?;
                delta.spent.push(WatchedSpend {
                    outpoint,
                    txid,
                    vin: inp.vin,
                    tx_index: inp.tx,
                    value: utxo.value,
                    owner: utxo.owner,
                });
                touched.insert(inp.tx, ());
                stats.spent += 1;
            }
        } else {
            let out = p.outputs[o];
            o += 1;
            let txid = txid_for(out.tx, stats)?;
            let script = bytes
                .get(out.script_off as usize..(out.script_off as usize + out.script_len as usize))
                .ok_or_else(|| bad_block(&p.raw, p.meta.hash, "script unreadable".into()))?;
            let outpoint = OutPoint {
                txid,
                vout: out.vout,
            };
            let value = Amount::from_sat(out.value);
            watch.outpoints.insert(
                outpoint,
                WatchedUtxo {
                    value,
                    owner: out.owner,
                },
            );
            delta.created.push(WatchedOutput {
                outpoint,
                value,
                script_pubkey: ScriptBuf::from_bytes(script.to_vec()),
                owner: out.owner,
                coinbase: out.tx == 0,
                tx_index: out.tx,
            });
            touched.insert(out.tx, ());
            stats.created += 1;
        }
    }
    for (&tx, _) in touched.iter() {
        let raw = tx_bytes(tx)
            .ok_or_else(|| bad_block(&p.raw, p.meta.hash, format!("tx {tx} unreadable")))?;
        let txid = txid_for(tx, stats)?;
        delta.txs.push(TxRecord {
            txid,
            tx_index: tx,
            raw: raw.to_vec(),
        });
    }
    stats.blocks += 1;
    stats.bytes += bytes.len() as u64;
    Ok(delta)
}

fn read_outpoint(bytes: &[u8], off: u32) -> Option<OutPoint> {
    let b = bytes.get(off as usize..off as usize + 36)?;
    let txid = WatchSet::txid_from_bytes(&b[..32])?;
    let mut vout = [0u8; 4];
    vout.copy_from_slice(&b[32..36]);
    Some(OutPoint {
        txid,
        vout: u32::from_le_bytes(vout),
    })
}

/// Extend keychains for the derived scripts a parsed block uses, re-parsing the block until the
/// set stops growing (a block can pay child 30 and child 50 of a gap-20 keychain).
fn settle(
    mut p: Parsed,
    watch: &mut WatchSet,
    scripts: &RwLock<ScriptIndex>,
    stats: &mut ScanStats,
) -> Result<Parsed> {
    loop {
        {
            let guard = scripts.read().unwrap_or_else(PoisonError::into_inner);
            if p.generation != guard.generation() {
                p = parse(p.raw, &guard)?;
                stats.reparsed += 1;
            }
        }
        let mut grew = false;
        {
            let mut guard = scripts.write().unwrap_or_else(PoisonError::into_inner);
            for o in &p.outputs {
                if o.owner.derivation.is_some() {
                    grew |= watch.mark_used_split(&mut guard, o.owner)?;
                }
            }
        }
        if !grew {
            return Ok(p);
        }
    }
}

/// Scans blocks against a [`WatchSet`], which it updates (keychains grow, outpoints come and go).
pub struct Scanner<'w> {
    watch: &'w mut WatchSet,
    options: ScanOptions,
    stats: ScanStats,
    bytes_done: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl<'w> Scanner<'w> {
    /// A scanner over `watch` with default options.
    pub fn new(watch: &'w mut WatchSet) -> Self {
        Self {
            watch,
            options: ScanOptions::default(),
            stats: ScanStats::default(),
            bytes_done: None,
        }
    }

    /// Adds the size of every block to `counter` before the block reaches the sink, so a
    /// progress display can show MB/s while the scan runs.
    pub fn with_byte_counter(
        mut self,
        counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        self.bytes_done = Some(counter);
        self
    }

    /// Set the options.
    pub fn with_options(mut self, options: ScanOptions) -> Self {
        self.options = options;
        self
    }

    /// Totals so far.
    pub fn stats(&self) -> ScanStats {
        self.stats
    }

    /// Scan one block (single-threaded).
    pub fn scan_block(&mut self, raw: RawBlock) -> Result<BlockDelta> {
        self.scan_one(raw, None)
    }

    /// Scan one block, finding spends of watched *scripts* from prevout data as well as from the
    /// watched outpoints: `prevouts` holds the spent output of every non-coinbase input in block
    /// order (what Core's undo data, `getblock <hash> 3` or REST `spenttxouts` give).
    pub fn scan_block_with_prevouts(
        &mut self,
        raw: RawBlock,
        prevouts: &[TxOut],
    ) -> Result<BlockDelta> {
        self.scan_one(raw, Some(prevouts))
    }

    fn scan_one(&mut self, raw: RawBlock, prevouts: Option<&[TxOut]>) -> Result<BlockDelta> {
        let scripts = RwLock::new(std::mem::take(&mut self.watch.scripts));
        let result = (|| {
            let p = {
                let guard = scripts.read().unwrap_or_else(PoisonError::into_inner);
                parse(raw, &guard)?
            };
            let p = settle(p, self.watch, &scripts, &mut self.stats)?;
            let guard = scripts.read().unwrap_or_else(PoisonError::into_inner);
            apply(&p, self.watch, &guard, prevouts, &mut self.stats)
        })();
        self.watch.scripts = scripts.into_inner().unwrap_or_else(PoisonError::into_inner);
        result
    }

    /// Scan `blocks` (in height order) and hand each block's delta to `sink`, in order. Parsing
    /// runs on [`ScanOptions::threads`] workers; applying and the sink run on the calling
    /// thread. Stops at the first error; every block before it was applied and sunk whole,
    /// nothing of the failing block was.
    pub fn scan<I, T, F, E>(&mut self, blocks: I, mut sink: F) -> Result<ScanStats>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send,
        T: LoadBlock,
        F: FnMut(BlockDelta) -> std::result::Result<(), E>,
        E: std::fmt::Display,
    {
        let scripts = RwLock::new(std::mem::take(&mut self.watch.scripts));
        let before = self.stats;
        let result = if self.options.threads <= 1 {
            self.scan_serial(blocks.into_iter(), &scripts, &mut sink)
        } else {
            self.scan_parallel(blocks.into_iter(), &scripts, &mut sink)
        };
        self.watch.scripts = scripts.into_inner().unwrap_or_else(PoisonError::into_inner);
        result?;
        let s = self.stats;
        Ok(ScanStats {
            blocks: s.blocks - before.blocks,
            bytes: s.bytes - before.bytes,
            created: s.created - before.created,
            spent: s.spent - before.spent,
            reparsed: s.reparsed - before.reparsed,
            txids_hashed: s.txids_hashed - before.txids_hashed,
        })
    }

    /// Settle, apply and sink one parsed block; returns its buffer for reuse.
    fn finish<F, E>(
        &mut self,
        p: Parsed,
        scripts: &RwLock<ScriptIndex>,
        sink: &mut F,
    ) -> Result<Vec<u8>>
    where
        F: FnMut(BlockDelta) -> std::result::Result<(), E>,
        E: std::fmt::Display,
    {
        let p = settle(p, self.watch, scripts, &mut self.stats)?;
        let delta = {
            let guard = scripts.read().unwrap_or_else(PoisonError::into_inner);
            apply(&p, self.watch, &guard, None, &mut self.stats)?
        };
        let height = delta.meta.height;
        if let Some(c) = &self.bytes_done {
            c.fetch_add(
                p.raw.bytes.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        sink(delta).map_err(|e| ChainError::Sink {
            height,
            reason: e.to_string(),
        })?;
        Ok(p.raw.bytes)
    }

    fn scan_serial<It, T, F, E>(
        &mut self,
        blocks: It,
        scripts: &RwLock<ScriptIndex>,
        sink: &mut F,
    ) -> Result<()>
    where
        It: Iterator<Item = T>,
        T: LoadBlock,
        F: FnMut(BlockDelta) -> std::result::Result<(), E>,
        E: std::fmt::Display,
    {
        let mut spare = Vec::new();
        for item in blocks {
            let raw = item.load(std::mem::take(&mut spare))?;
            let p = {
                let guard = scripts.read().unwrap_or_else(PoisonError::into_inner);
                parse(raw, &guard)?
            };
            spare = self.finish(p, scripts, sink)?;
        }
        Ok(())
    }

    fn scan_parallel<It, T, F, E>(
        &mut self,
        blocks: It,
        scripts: &RwLock<ScriptIndex>,
        sink: &mut F,
    ) -> Result<()>
    where
        It: Iterator<Item = T> + Send,
        T: LoadBlock,
        F: FnMut(BlockDelta) -> std::result::Result<(), E>,
        E: std::fmt::Display,
    {
        let threads = self.options.threads.max(1);
        let in_flight = self.options.in_flight.max(threads + 1);
        // Tickets bound the blocks between "taken from the source" and "applied": a worker
        // needs one to take a block and the applier returns it after applying, so one slow
        // block cannot let the others pile up in the reorder buffer.
        let (ticket_tx, ticket_rx) = sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            let _ = ticket_tx.send(());
        }
        let ticket_rx = Mutex::new(ticket_rx);
        let source = Mutex::new((0usize, blocks));
        let buffers: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
        let (res_tx, res_rx) = channel::<(usize, Result<Parsed>)>();

        std::thread::scope(|s| {
            for _ in 0..threads {
                let res_tx = res_tx.clone();
                let (ticket_rx, source, buffers) = (&ticket_rx, &source, &buffers);
                s.spawn(move || loop {
                    let got = ticket_rx
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv();
                    if got.is_err() {
                        break;
                    }
                    let next = {
                        let mut src = source.lock().unwrap_or_else(PoisonError::into_inner);
                        let seq = src.0;
                        src.0 += 1;
                        src.1.next().map(|item| (seq, item))
                    };
                    let Some((seq, item)) = next else { break };
                    let buf = buffers.lock().unwrap_or_else(PoisonError::into_inner).pop();
                    let parsed = item.load(buf.unwrap_or_default()).and_then(|raw| {
                        let guard = scripts.read().unwrap_or_else(PoisonError::into_inner);
                        parse(raw, &guard)
                    });
                    if res_tx.send((seq, parsed)).is_err() {
                        break;
                    }
                });
            }
            drop(res_tx);

            // The applier. Owning ticket_tx and res_rx here means returning early (an error)
            // drops them, which stops the workers.
            let ticket_tx = ticket_tx;
            let res_rx = res_rx;
            let mut pending: HashMap<usize, Result<Parsed>> = HashMap::new();
            let mut next = 0usize;
            for (seq, parsed) in res_rx.iter() {
                pending.insert(seq, parsed);
                while let Some(p) = pending.remove(&next) {
                    let buf = self.finish(p?, scripts, sink)?;
                    buffers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(buf);
                    next += 1;
                    let _ = ticket_tx.send(());
                }
            }
            Ok(())
        })
    }
}

/// A small convenience for tests and tools: the unspent watched outputs as a per-owner balance
/// in sats.
pub fn balances_by_owner(watch: &WatchSet) -> BTreeMap<u64, u64> {
    watch
        .balances()
        .into_iter()
        .map(|(k, v)| (k, v.to_sat()))
        .collect()
}
