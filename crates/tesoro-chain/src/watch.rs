//! The watch set: which scripts and which unspent outpoints belong to the reserve.
//!
//! - [`ScriptIndex`]: the exact set `script_pubkey → owner`, with an optional BinaryFuse8
//!   prefilter in front. The filter answers "certainly not watched" for almost every output of
//!   the chain with one hash and three memory probes, so the exact map is only consulted for
//!   ~1/256 of outputs however large the set is.
//! - Descriptor keychains: scripts derived to last-used + gap limit through a [`ScriptDeriver`]
//!   (the CLI plugs miniscript in; [`crate::derive::DescriptorDeriver`] is the stock one), and
//!   extended as the scan finds derived scripts in use.
//! - [`OutpointSet`]: the watched unspent outputs, so spends are found by looking up each
//!   input's prevout while blocks are applied in height order.

use std::collections::{HashMap, HashSet};

use bitcoin::hashes::Hash;
use bitcoin::{Address, Amount, OutPoint, Script, ScriptBuf, Txid};
use tesoro_core::chain::ScriptOwner;
use xorf::{BinaryFuse8, Filter};

use crate::error::{ChainError, Result};

/// Derives the script of child `index` of one keychain. Implemented by the CLI with miniscript
/// (or by [`crate::derive::DescriptorDeriver`]); kept as a trait so this crate does not decide
/// how wallets are described.
pub trait ScriptDeriver: Send + Sync {
    /// The script_pubkey of child `index`.
    fn derive(&self, index: u32) -> std::result::Result<ScriptBuf, String>;
}

impl<F> ScriptDeriver for F
where
    F: Fn(u32) -> std::result::Result<ScriptBuf, String> + Send + Sync,
{
    fn derive(&self, index: u32) -> std::result::Result<ScriptBuf, String> {
        self(index)
    }
}

/// Below this many children a range is derived on the calling thread: threads cost more than
/// they save (a child is one EC tweak per key, some 20–40 µs).
const PARALLEL_DERIVE_MIN: u32 = 2_048;

/// Scripts of children `from..to`, in order; large ranges on every core (a big gap limit or a
/// keychain with a long history is derived in the time of its share, not of its whole).
fn derive_range(
    d: &dyn ScriptDeriver,
    from: u32,
    to: u32,
) -> std::result::Result<Vec<ScriptBuf>, (u32, String)> {
    let one = |lo: u32, hi: u32| -> std::result::Result<Vec<ScriptBuf>, (u32, String)> {
        (lo..hi).map(|i| d.derive(i).map_err(|e| (i, e))).collect()
    };
    let n = to - from;
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()) as u32;
    if n < PARALLEL_DERIVE_MIN || threads < 2 {
        return one(from, to);
    }
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                let lo = from + t * per;
                let hi = (lo + per).min(to);
                s.spawn(move || one(lo.min(hi), hi))
            })
            .collect();
        let mut out = Vec::with_capacity(n as usize);
        for p in parts {
            // A panicking deriver is a bug in it; report it as that child range's failure.
            out.extend(
                p.join()
                    .map_err(|_| (from, "deriver panicked".to_string()))??,
            );
        }
        Ok(out)
    })
}

/// When to put a BinaryFuse8 prefilter in front of the exact script map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefilter {
    /// Exact map only.
    Never,
    /// Always build the filter.
    Always,
    /// Build it once the set holds at least this many scripts (small sets are faster without).
    AtLeast(usize),
}

impl Default for Prefilter {
    fn default() -> Self {
        Prefilter::AtLeast(4096)
    }
}

/// A fast 64-bit hash of a script for the prefilter. Not used for the exact map (which keeps
/// std's keyed SipHash, so crafted outputs cannot make lookups degrade).
pub fn script_key(script: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (script.len() as u64).wrapping_mul(K);
    let mut chunks = script.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    // murmur3 fmix64: spread every input bit over the whole word for the filter's fingerprints.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// First-level key of a script: its last 8 bytes (for every standard script, bytes of a hash
/// or key, so already uniform) mixed with its length by one multiply. One load and one
/// multiply, against `script_key`'s pass over every byte.
#[inline]
fn tail_key(script: &[u8]) -> u64 {
    let n = script.len();
    let mut w = [0u8; 8];
    match script.get(n.saturating_sub(8)..) {
        Some(t) if t.len() == 8 => w.copy_from_slice(t),
        _ => w[..n.min(8)].copy_from_slice(&script[..n.min(8)]),
    }
    (u64::from_le_bytes(w) ^ (n as u64)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A one-hash bit set over [`tail_key`]: 16 bits per watched script, at most 2 MiB, so it
/// stays in cache while the BinaryFuse8 behind it (9 MB for 1M scripts) does not. With 1M
/// scripts about 6% of outputs pass it and pay for the full hash and the filter's probes.
#[derive(Debug, Clone, Default)]
struct TailBits {
    words: Vec<u64>,
    shift: u32,
}

impl TailBits {
    fn for_keys(n: usize) -> TailBits {
        let bits = (n.max(1) * 16).next_power_of_two().clamp(1 << 12, 1 << 24);
        TailBits {
            words: vec![0; bits / 64],
            shift: 64 - bits.trailing_zeros(),
        }
    }

    #[inline]
    fn index(&self, key: u64) -> (usize, u64) {
        let i = (key >> self.shift) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    fn set(&mut self, key: u64) {
        let (w, b) = self.index(key);
        if let Some(word) = self.words.get_mut(w) {
            *word |= b;
        }
    }

    #[inline]
    fn may_contain(&self, key: u64) -> bool {
        let (w, b) = self.index(key);
        self.words.get(w).is_none_or(|word| word & b != 0)
    }

    /// Ask the CPU to start loading the word `key` will probe. At 1M scripts the set is 2 MiB
    /// and each probe is a cache miss; issued a few outputs ahead, the misses overlap.
    #[inline]
    fn prefetch(&self, key: u64) {
        let (w, _) = self.index(key);
        if let Some(word) = self.words.get(w) {
            prefetch_read(word);
        }
    }
}

/// A read prefetch hint for the cache line holding `v` (a no-op off x86-64).
#[inline]
fn prefetch_read<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is only a hint: it never faults, never writes and changes no
    // architectural state; the pointer comes from a live reference besides.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((v as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// The exact script set with its optional prefilter.
#[derive(Default)]
pub struct ScriptIndex {
    map: HashMap<ScriptBuf, ScriptOwner>,
    policy: Prefilter,
    /// First level in front of `filter` (present whenever `filter` is).
    tail: TailBits,
    filter: Option<BinaryFuse8>,
    /// Keys added since the filter was built; checked beside it so the filter never gives a
    /// false negative. Rebuilt into the filter once it grows.
    recent: HashSet<u64>,
    generation: u64,
}

impl std::fmt::Debug for ScriptIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptIndex")
            .field("scripts", &self.map.len())
            .field("filter", &self.filter.is_some())
            .field("generation", &self.generation)
            .finish()
    }
}

impl ScriptIndex {
    /// Number of watched scripts.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bumped on every change, so parse results made with an older set can be recognised.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// True when a prefilter is in use.
    pub fn has_prefilter(&self) -> bool {
        self.filter.is_some()
    }

    /// Owner of `script`, if watched. The scanner's hot path.
    #[inline]
    pub fn lookup(&self, script: &[u8]) -> Option<ScriptOwner> {
        self.lookup_tail(script, tail_key(script))
    }

    /// Start loading what [`ScriptIndex::lookup_tail`] will need for `script`; returns the key
    /// to pass it. The scanner calls this some outputs ahead of the lookup.
    #[inline]
    pub(crate) fn prefetch(&self, script: &[u8]) -> u64 {
        if self.filter.is_none() {
            return 0; // no first level to probe: the key is not used
        }
        let tail = tail_key(script);
        self.tail.prefetch(tail);
        tail
    }

    /// [`ScriptIndex::lookup`] with the script's tail key already computed.
    #[inline]
    pub(crate) fn lookup_tail(&self, script: &[u8], tail: u64) -> Option<ScriptOwner> {
        if let Some(filter) = &self.filter {
            if !self.tail.may_contain(tail) {
                return None;
            }
            let key = script_key(script);
            if !filter.contains(&key) && (self.recent.is_empty() || !self.recent.contains(&key)) {
                return None;
            }
        }
        self.map.get(Script::from_bytes(script)).copied()
    }

    fn insert(&mut self, script: ScriptBuf, owner: ScriptOwner) -> bool {
        let key = script_key(script.as_bytes());
        let tail = tail_key(script.as_bytes());
        if self.map.insert(script, owner).is_some() {
            return false;
        }
        self.generation += 1;
        if self.filter.is_some() {
            self.recent.insert(key);
            // The first level must never say "no" for a watched script.
            self.tail.set(tail);
        }
        true
    }

    /// Build or rebuild the prefilter if the policy and the amount of change call for it.
    fn refresh_filter(&mut self) {
        let wanted = match self.policy {
            Prefilter::Never => false,
            Prefilter::Always => true,
            Prefilter::AtLeast(n) => self.map.len() >= n,
        };
        if !wanted {
            self.filter = None;
            self.recent.clear();
            return;
        }
        let stale = self.filter.is_none() || self.recent.len() > 1024.max(self.map.len() / 16);
        if !stale {
            return;
        }
        let mut keys: Vec<u64> = self.map.keys().map(|s| script_key(s.as_bytes())).collect();
        // BinaryFuse8 construction wants distinct keys.
        keys.sort_unstable();
        keys.dedup();
        // Construction can fail (very rarely); then the exact map alone is still correct.
        self.filter = BinaryFuse8::try_from(&keys).ok();
        self.tail = TailBits::for_keys(self.map.len());
        for s in self.map.keys() {
            let t = tail_key(s.as_bytes());
            self.tail.set(t);
        }
        self.recent.clear();
    }
}

/// A watched unspent output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchedUtxo {
    /// Its value.
    pub value: Amount,
    /// Its owner.
    pub owner: ScriptOwner,
}

/// Watched unspent outpoints with a small bitmap in front, so the per-input check of the apply
/// step is one bit test for inputs that spend nothing watched (nearly all of them).
#[derive(Debug, Default, Clone)]
pub struct OutpointSet {
    map: HashMap<OutPoint, WatchedUtxo>,
    bits: Vec<u64>,
    inserts_since_build: usize,
}

/// Prefilter key of an outpoint from its raw bytes (32-byte txid as serialized, vout).
#[inline]
pub fn outpoint_key(txid: &[u8], vout: u32) -> u64 {
    let mut w = [0u8; 8];
    if let Some(b) = txid.get(..8) {
        w.copy_from_slice(b);
    }
    // A txid is already uniform (sha256d), so a few of its bytes mixed with vout suffice.
    u64::from_le_bytes(w) ^ u64::from(vout).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl OutpointSet {
    /// Number of watched unspent outputs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Iterate (outpoint, utxo).
    pub fn iter(&self) -> impl Iterator<Item = (&OutPoint, &WatchedUtxo)> {
        self.map.iter()
    }

    /// Get a watched utxo.
    pub fn get(&self, op: &OutPoint) -> Option<&WatchedUtxo> {
        self.map.get(op)
    }

    fn bit(&self, key: u64) -> (usize, u64) {
        let nbits = (self.bits.len() as u64) * 64;
        let b = key % nbits.max(1);
        ((b / 64) as usize, 1u64 << (b % 64))
    }

    /// False means "certainly not watched".
    #[inline]
    pub fn may_contain(&self, key: u64) -> bool {
        if self.map.is_empty() || self.bits.is_empty() {
            return false;
        }
        let (w, m) = self.bit(key);
        self.bits.get(w).is_some_and(|x| x & m != 0)
    }

    /// Add a watched unspent output.
    pub fn insert(&mut self, op: OutPoint, utxo: WatchedUtxo) {
        self.map.insert(op, utxo);
        self.inserts_since_build += 1;
        // Size the bitmap at ~64 bits per entry; rebuild when it gets crowded (removals leave
        // stale bits, which only cost a map lookup).
        if self.bits.len() < self.map.len() || self.inserts_since_build > self.bits.len() * 16 {
            self.rebuild();
        } else {
            let (w, m) = self.bit(outpoint_key(op.txid.as_byte_array(), op.vout));
            if let Some(x) = self.bits.get_mut(w) {
                *x |= m;
            }
        }
    }

    /// Remove a spent output.
    pub fn remove(&mut self, op: &OutPoint) -> Option<WatchedUtxo> {
        self.map.remove(op)
    }

    fn rebuild(&mut self) {
        let words = (self.map.len() * 2).next_power_of_two().max(1024);
        self.bits = vec![0; words];
        self.inserts_since_build = 0;
        let keys: Vec<u64> = self
            .map
            .keys()
            .map(|op| outpoint_key(op.txid.as_byte_array(), op.vout))
            .collect();
        for k in keys {
            let (w, m) = self.bit(k);
            if let Some(x) = self.bits.get_mut(w) {
                *x |= m;
            }
        }
    }
}

struct Keychain {
    owner: u64,
    keychain: u32,
    deriver: Box<dyn ScriptDeriver>,
    gap_limit: u32,
    /// Highest child index seen in use.
    last_used: Option<u32>,
    /// Children 0..derived are in the script index.
    derived: u32,
}

/// State of one keychain, for the store to persist and to resume from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeychainState {
    /// Owner id.
    pub owner: u64,
    /// Keychain number.
    pub keychain: u32,
    /// Highest child index seen in use.
    pub last_used: Option<u32>,
    /// Number of children derived and watched.
    pub derived: u32,
    /// Gap limit.
    pub gap_limit: u32,
}

/// Everything the scanner watches.
#[derive(Default)]
pub struct WatchSet {
    pub(crate) scripts: ScriptIndex,
    keychains: Vec<Keychain>,
    keychain_pos: HashMap<(u64, u32), usize>,
    pub(crate) outpoints: OutpointSet,
}

impl std::fmt::Debug for WatchSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSet")
            .field("scripts", &self.scripts)
            .field("keychains", &self.keychains.len())
            .field("outpoints", &self.outpoints.len())
            .finish()
    }
}

impl WatchSet {
    /// An empty set with the default prefilter policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set with the given prefilter policy.
    pub fn with_prefilter(policy: Prefilter) -> Self {
        let mut s = Self::default();
        s.scripts.policy = policy;
        s
    }

    /// The script index (read-only).
    pub fn scripts(&self) -> &ScriptIndex {
        &self.scripts
    }

    /// The watched unspent outputs.
    pub fn outpoints(&self) -> &OutpointSet {
        &self.outpoints
    }

    /// Watch a bare script (e.g. a published address's script_pubkey). Returns false if it was
    /// already watched (the first owner is kept).
    pub fn add_script(&mut self, script: ScriptBuf, owner: ScriptOwner) -> bool {
        let added = self.scripts.insert(script, owner);
        self.scripts.refresh_filter();
        added
    }

    /// Watch many bare scripts at once (builds the prefilter once, at the end).
    pub fn add_scripts(&mut self, scripts: impl IntoIterator<Item = (ScriptBuf, ScriptOwner)>) {
        for (s, o) in scripts {
            self.scripts.insert(s, o);
        }
        self.scripts.refresh_filter();
    }

    /// Watch an address for `owner`.
    pub fn add_address(&mut self, address: &Address, owner: u64) -> bool {
        self.add_script(address.script_pubkey(), ScriptOwner::bare(owner))
    }

    /// Watch keychain `keychain` of wallet `owner`: derive children up to `last_used` +
    /// `gap_limit` now and more as the scan finds them in use.
    pub fn add_keychain(
        &mut self,
        owner: u64,
        keychain: u32,
        deriver: Box<dyn ScriptDeriver>,
        gap_limit: u32,
        last_used: Option<u32>,
    ) -> Result<()> {
        let pos = self.keychains.len();
        self.keychains.push(Keychain {
            owner,
            keychain,
            deriver,
            gap_limit: gap_limit.max(1),
            last_used,
            derived: 0,
        });
        self.keychain_pos.insert((owner, keychain), pos);
        let target = Self::target_for(&self.keychains[pos]);
        Self::derive_to(&mut self.keychains[pos], &mut self.scripts, target)?;
        self.scripts.refresh_filter();
        Ok(())
    }

    fn target_for(k: &Keychain) -> u32 {
        k.last_used
            .map_or(0, |u| u.saturating_add(1))
            .saturating_add(k.gap_limit)
    }

    fn derive_to(k: &mut Keychain, scripts: &mut ScriptIndex, target: u32) -> Result<()> {
        // Children at or above 2^31 would be hardened: a watch-only keychain stops there.
        let target = target.min(1 << 31);
        if k.derived >= target {
            return Ok(());
        }
        let derived =
            derive_range(k.deriver.as_ref(), k.derived, target).map_err(|(index, reason)| {
                ChainError::Derive {
                    owner: k.owner,
                    keychain: k.keychain,
                    index,
                    reason,
                }
            })?;
        for (index, script) in (k.derived..).zip(derived) {
            scripts.insert(script, ScriptOwner::derived(k.owner, k.keychain, index));
        }
        k.derived = target;
        Ok(())
    }

    /// Record that `owner`'s derived script was seen in use; derive further children to keep
    /// `gap_limit` unused ones ahead. Returns true when new scripts were added.
    pub fn mark_used(&mut self, owner: ScriptOwner) -> Result<bool> {
        Self::mark_used_in(
            &mut self.keychains,
            &self.keychain_pos,
            &mut self.scripts,
            owner,
        )
    }

    /// [`WatchSet::mark_used`] against a script index held elsewhere (the scanner shares it
    /// with its parse workers behind a lock while it applies blocks).
    pub(crate) fn mark_used_split(
        &mut self,
        scripts: &mut ScriptIndex,
        owner: ScriptOwner,
    ) -> Result<bool> {
        Self::mark_used_in(&mut self.keychains, &self.keychain_pos, scripts, owner)
    }

    fn mark_used_in(
        keychains: &mut [Keychain],
        positions: &HashMap<(u64, u32), usize>,
        scripts: &mut ScriptIndex,
        owner: ScriptOwner,
    ) -> Result<bool> {
        let Some(d) = owner.derivation else {
            return Ok(false);
        };
        let Some(k) = positions
            .get(&(owner.owner, d.keychain))
            .and_then(|&p| keychains.get_mut(p))
        else {
            return Ok(false);
        };
        if k.last_used.is_some_and(|u| u >= d.index) {
            return Ok(false);
        }
        k.last_used = Some(d.index);
        let before = k.derived;
        let target = Self::target_for(k);
        Self::derive_to(k, scripts, target)?;
        let grew = k.derived > before;
        if grew {
            scripts.refresh_filter();
        }
        Ok(grew)
    }

    /// State of every keychain (for persisting and reporting).
    pub fn keychains(&self) -> Vec<KeychainState> {
        self.keychains
            .iter()
            .map(|k| KeychainState {
                owner: k.owner,
                keychain: k.keychain,
                last_used: k.last_used,
                derived: k.derived,
                gap_limit: k.gap_limit,
            })
            .collect()
    }

    /// Watch an unspent output (e.g. loaded from the store when resuming a scan).
    pub fn add_outpoint(&mut self, outpoint: OutPoint, value: Amount, owner: ScriptOwner) {
        self.outpoints
            .insert(outpoint, WatchedUtxo { value, owner });
    }

    /// Sum of watched unspent values per owner id.
    pub fn balances(&self) -> HashMap<u64, Amount> {
        let mut out: HashMap<u64, Amount> = HashMap::new();
        for (_, u) in self.outpoints.iter() {
            let e = out.entry(u.owner.owner).or_insert(Amount::ZERO);
            *e = e.checked_add(u.value).unwrap_or(Amount::MAX);
        }
        out
    }

    /// Txid from raw little-endian bytes (helper for callers that hold slices).
    pub fn txid_from_bytes(bytes: &[u8]) -> Option<Txid> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Txid::from_byte_array(arr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(i: u32) -> ScriptBuf {
        let mut b = vec![0x00, 0x14];
        b.extend_from_slice(&[0u8; 16]);
        b.extend_from_slice(&i.to_le_bytes());
        ScriptBuf::from_bytes(b)
    }

    #[test]
    fn a_large_gap_is_derived_on_every_core_with_each_child_at_its_index() {
        let n = PARALLEL_DERIVE_MIN * 3 + 7; // several threads, uneven shares
        let mut w = WatchSet::new();
        w.add_keychain(4, 1, Box::new(|i: u32| Ok(script(i))), n, None)
            .unwrap();
        for i in [
            0,
            1,
            PARALLEL_DERIVE_MIN - 1,
            PARALLEL_DERIVE_MIN,
            n / 2,
            n - 1,
        ] {
            assert_eq!(
                w.scripts().lookup(script(i).as_bytes()),
                Some(ScriptOwner::derived(4, 1, i)),
                "child {i}"
            );
        }
        assert_eq!(w.scripts().lookup(script(n).as_bytes()), None);
        // A failing child is reported by its own index, whichever thread derived it.
        let bad = n - 3;
        let mut w = WatchSet::new();
        let e = w
            .add_keychain(
                4,
                0,
                Box::new(move |i: u32| {
                    if i == bad {
                        Err("boom".into())
                    } else {
                        Ok(script(i))
                    }
                }),
                n,
                None,
            )
            .unwrap_err();
        assert!(e.to_string().contains(&bad.to_string()), "{e}");
    }

    #[test]
    fn prefilter_never_gives_false_negatives_even_after_additions() {
        let mut w = WatchSet::with_prefilter(Prefilter::Always);
        w.add_scripts((0..10_000).map(|i| (script(i), ScriptOwner::bare(u64::from(i)))));
        assert!(w.scripts().has_prefilter());
        for i in 0..10_000 {
            assert_eq!(
                w.scripts().lookup(script(i).as_bytes()),
                Some(ScriptOwner::bare(i.into()))
            );
        }
        // Added after the filter was built: must still be found.
        w.add_script(script(20_000), ScriptOwner::bare(7));
        assert_eq!(
            w.scripts().lookup(script(20_000).as_bytes()),
            Some(ScriptOwner::bare(7))
        );
        let misses =
            (30_000..130_000).filter(|&i| w.scripts().lookup(script(i).as_bytes()).is_some());
        assert_eq!(misses.count(), 0);
    }

    #[test]
    fn keychain_extends_on_use_with_gap_limit() {
        let mut w = WatchSet::new();
        w.add_keychain(1, 0, Box::new(|i: u32| Ok(script(i))), 5, None)
            .expect("derive");
        assert_eq!(w.scripts().len(), 5);
        assert!(w.scripts().lookup(script(5).as_bytes()).is_none());
        assert!(w.mark_used(ScriptOwner::derived(1, 0, 4)).expect("derive"));
        assert_eq!(w.scripts().len(), 10);
        assert_eq!(
            w.scripts().lookup(script(9).as_bytes()),
            Some(ScriptOwner::derived(1, 0, 9))
        );
        // Using an older child changes nothing.
        assert!(!w.mark_used(ScriptOwner::derived(1, 0, 2)).expect("derive"));
        assert_eq!(w.keychains()[0].last_used, Some(4));
    }

    #[test]
    fn outpoint_bitmap_has_no_false_negatives() {
        let mut s = OutpointSet::default();
        let mut ops = Vec::new();
        for i in 0..5000u32 {
            let mut t = [0u8; 32];
            t[..4].copy_from_slice(&i.to_le_bytes());
            t[9] = 3;
            let op = OutPoint {
                txid: Txid::from_byte_array(t),
                vout: i % 7,
            };
            s.insert(
                op,
                WatchedUtxo {
                    value: Amount::ONE_SAT,
                    owner: ScriptOwner::bare(0),
                },
            );
            ops.push(op);
        }
        for op in &ops {
            assert!(s.may_contain(outpoint_key(op.txid.as_byte_array(), op.vout)));
        }
    }
}
