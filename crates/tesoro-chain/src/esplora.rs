//! An Esplora REST server as a block source, for offices without a node.
//!
//! Uses the documented API (Blockstream Esplora `API.md`, served by electrs):
//! `/blocks/tip/height`, `/block-height/:h`, `/block/:hash/header`, `/block/:hash/raw`,
//! `/block/:hash/txid/:index`, `/tx/:txid/raw` and
//! `/scripthash/:hash/txs/chain[/:last_seen_txid]`. Only the blocks holding a transaction of a
//! watched script (found from the scripts' histories, keychains followed to their gap limit)
//! are downloaded whole; every other block reaches the scanner as its header and its real
//! coinbase, which records the block without downloading it. So the same scanner (outpoint
//! tracking, gap-limit growth, positions in the block) produces the same deltas as from a
//! node or a blocks dir.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bitcoin::block::Header;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::{BlockHash, Script, Txid};
use serde_json::Value;
use tesoro_core::chain::BlockMeta;

use crate::blocksdir::RawBlock;
use crate::error::ChainError;
use crate::http::{HttpError, HttpPool, HttpUrl};
use crate::scanner::LoadBlock;

/// Errors talking to an Esplora server, each naming the URL.
#[derive(Debug, thiserror::Error)]
pub enum EsploraError {
    /// Transport failure.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A status other than 200 (and other than a 404 the caller expects).
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        /// The URL asked.
        url: String,
        /// Status.
        status: u16,
        /// The server's text.
        body: String,
    },
    /// The reply is not what Esplora sends.
    #[error("{url}: unexpected reply: {reason}")]
    BadReply {
        /// The URL asked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The server's chain changed between two calls.
    #[error("{url}: the server's chain changed between two calls ({reason}); run sync again")]
    ChainMoved {
        /// The server.
        url: String,
        /// What was seen.
        reason: String,
    },
}

/// A client for one Esplora server.
pub struct Esplora {
    pool: HttpPool,
}

impl std::fmt::Debug for Esplora {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Esplora")
            .field("url", &self.pool.url().to_string())
            .finish()
    }
}

/// One confirmed transaction of a script's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryItem {
    /// The transaction.
    pub txid: Txid,
    /// Height of its block.
    pub height: u32,
    /// Its block.
    pub block_hash: BlockHash,
}

/// Esplora's scripthash: SHA256 of the script, hex in reversed byte order (as Electrum's).
pub fn scripthash(script: &Script) -> String {
    let mut h = sha256::Hash::hash(script.as_bytes()).to_byte_array();
    h.reverse();
    bitcoin::hex::DisplayHex::to_lower_hex_string(&h[..])
}

impl Esplora {
    /// A client for the API root `url` (e.g. `http://127.0.0.1:3002` or `http://host/api`).
    pub fn new(url: &str) -> Result<Self, EsploraError> {
        Ok(Self {
            pool: HttpPool::new(HttpUrl::parse(url)?, None, Duration::from_secs(60)),
        })
    }

    /// The API root.
    pub fn url(&self) -> String {
        self.pool.url().to_string()
    }

    /// GET `path`; Ok(None) on 404.
    fn get(&self, path: &str, buf: Vec<u8>) -> Result<Option<Vec<u8>>, EsploraError> {
        let r = self.pool.request("GET", path, None, buf)?;
        match r.status {
            200 => Ok(Some(r.body)),
            404 => Ok(None),
            s => Err(EsploraError::Status {
                url: self.pool.url().with_path(path),
                status: s,
                body: r.body_snippet(),
            }),
        }
    }

    fn get_text(&self, path: &str) -> Result<Option<String>, EsploraError> {
        Ok(self
            .get(path, Vec::new())?
            .map(|b| String::from_utf8_lossy(&b).trim().to_string()))
    }

    fn bad(&self, path: &str, reason: impl Into<String>) -> EsploraError {
        EsploraError::BadReply {
            url: self.pool.url().with_path(path),
            reason: reason.into(),
        }
    }

    /// Height of the server's tip.
    pub fn tip_height(&self) -> Result<u32, EsploraError> {
        let p = "/blocks/tip/height";
        let t = self.get_text(p)?.ok_or_else(|| self.bad(p, "404"))?;
        t.parse()
            .map_err(|_| self.bad(p, format!("not a height: {t:?}")))
    }

    /// Hash of the block at `height` (None past the tip).
    pub fn hash_at(&self, height: u32) -> Result<Option<BlockHash>, EsploraError> {
        let p = format!("/block-height/{height}");
        match self.get_text(&p)? {
            Some(t) => t
                .parse()
                .map(Some)
                .map_err(|_| self.bad(&p, format!("not a hash: {t:?}"))),
            None => Ok(None),
        }
    }

    /// The header of `hash` (None if unknown).
    pub fn header(&self, hash: BlockHash) -> Result<Option<Header>, EsploraError> {
        let p = format!("/block/{hash}/header");
        let Some(t) = self.get_text(&p)? else {
            return Ok(None);
        };
        let bytes: Vec<u8> =
            bitcoin::hex::FromHex::from_hex(&t).map_err(|_| self.bad(&p, "not hex"))?;
        let h: Header =
            bitcoin::consensus::deserialize(&bytes).map_err(|e| self.bad(&p, e.to_string()))?;
        if h.block_hash() != hash {
            return Err(self.bad(&p, "header does not hash to the block asked for"));
        }
        Ok(Some(h))
    }

    /// Headers of the best chain from `from` to `to`, fetched on a few threads, linked.
    pub fn headers(&self, from: u32, to: u32) -> Result<Vec<(BlockMeta, Header)>, EsploraError> {
        if from > to {
            return Ok(Vec::new());
        }
        let heights: Vec<u32> = (from..=to).collect();
        let threads = 4usize;
        let chunk = heights.len().div_ceil(threads).max(1);
        type Fetched = Result<Vec<Option<(BlockMeta, Header)>>, EsploraError>;
        let results: Vec<Fetched> = std::thread::scope(|s| {
            let handles: Vec<_> = heights
                .chunks(chunk)
                .map(|hs| {
                    s.spawn(move || {
                        hs.iter()
                            .map(|&h| -> Result<_, EsploraError> {
                                let Some(hash) = self.hash_at(h)? else {
                                    return Ok(None);
                                };
                                let Some(header) = self.header(hash)? else {
                                    return Err(EsploraError::ChainMoved {
                                        url: self.url(),
                                        reason: format!("block {hash} at {h} vanished"),
                                    });
                                };
                                Ok(Some((
                                    BlockMeta {
                                        height: h,
                                        hash,
                                        prev_hash: header.prev_blockhash,
                                        time: header.time,
                                    },
                                    header,
                                )))
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(EsploraError::BadReply {
                            url: self.url(),
                            reason: "header thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        let mut out: Vec<(BlockMeta, Header)> = Vec::with_capacity(heights.len());
        for r in results {
            for item in r? {
                let Some((meta, header)) = item else {
                    // The chain is shorter than asked: stop at the first gap.
                    return self.linked(out);
                };
                out.push((meta, header));
            }
        }
        self.linked(out)
    }

    fn linked(
        &self,
        out: Vec<(BlockMeta, Header)>,
    ) -> Result<Vec<(BlockMeta, Header)>, EsploraError> {
        for w in out.windows(2) {
            if w[1].0.prev_hash != w[0].0.hash || w[1].0.height != w[0].0.height + 1 {
                return Err(EsploraError::ChainMoved {
                    url: self.url(),
                    reason: format!(
                        "block {} at {} does not link to {} at {}",
                        w[1].0.hash, w[1].0.height, w[0].0.hash, w[0].0.height
                    ),
                });
            }
        }
        Ok(out)
    }

    /// The whole block `hash`, into `buf`.
    pub fn block(&self, hash: BlockHash, buf: Vec<u8>) -> Result<Vec<u8>, EsploraError> {
        let p = format!("/block/{hash}/raw");
        self.get(&p, buf)?.ok_or_else(|| EsploraError::ChainMoved {
            url: self.pool.url().with_path(&p),
            reason: format!("block {hash} is not known to the server any more"),
        })
    }

    /// The raw coinbase transaction of block `hash`.
    pub fn coinbase(&self, hash: BlockHash) -> Result<Vec<u8>, EsploraError> {
        let p = format!("/block/{hash}/txid/0");
        let gone = |p: &str| EsploraError::ChainMoved {
            url: self.pool.url().with_path(p),
            reason: format!("block {hash} is not known to the server any more"),
        };
        let t = self.get_text(&p)?.ok_or_else(|| gone(&p))?;
        let txid: Txid = t
            .parse()
            .map_err(|_| self.bad(&p, format!("not a txid: {t:?}")))?;
        let p = format!("/tx/{txid}/raw");
        let raw = self.get(&p, Vec::new())?.ok_or_else(|| gone(&p))?;
        let tx: bitcoin::Transaction =
            bitcoin::consensus::deserialize(&raw).map_err(|e| self.bad(&p, e.to_string()))?;
        if tx.compute_txid() != txid || !tx.is_coinbase() {
            return Err(self.bad(&p, "not the coinbase asked for"));
        }
        Ok(raw)
    }

    /// Every confirmed transaction funding or spending `script`, following the pages of
    /// `/scripthash/:hash/txs/chain`.
    pub fn history(&self, script: &Script) -> Result<Vec<HistoryItem>, EsploraError> {
        let sh = scripthash(script);
        let mut out = Vec::new();
        let mut last: Option<Txid> = None;
        loop {
            let p = match last {
                None => format!("/scripthash/{sh}/txs/chain"),
                Some(t) => format!("/scripthash/{sh}/txs/chain/{t}"),
            };
            let Some(body) = self.get(&p, Vec::new())? else {
                return Err(EsploraError::ChainMoved {
                    url: self.pool.url().with_path(&p),
                    reason: "the last transaction seen is gone".into(),
                });
            };
            let v: Value =
                serde_json::from_slice(&body).map_err(|e| self.bad(&p, e.to_string()))?;
            let items = v.as_array().ok_or_else(|| self.bad(&p, "not an array"))?;
            if items.is_empty() {
                break;
            }
            for it in items {
                let txid: Txid = it
                    .get("txid")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| self.bad(&p, "tx without txid"))?;
                let st = it.get("status").ok_or_else(|| self.bad(&p, "no status"))?;
                if st.get("confirmed").and_then(Value::as_bool) != Some(true) {
                    continue;
                }
                let height = st
                    .get("block_height")
                    .and_then(Value::as_u64)
                    .and_then(|h| u32::try_from(h).ok())
                    .ok_or_else(|| self.bad(&p, "no block_height"))?;
                let block_hash = st
                    .get("block_hash")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| self.bad(&p, "no block_hash"))?;
                out.push(HistoryItem {
                    txid,
                    height,
                    block_hash,
                });
                last = Some(txid);
            }
            if items.len() < 25 {
                break;
            }
        }
        Ok(out)
    }
}

/// The blocks of a range that hold watched transactions, by height, as discovered from script
/// histories; shared with the workers that load blocks.
#[derive(Debug, Default)]
pub struct Interest {
    heights: Mutex<BTreeMap<u32, BlockHash>>,
}

impl Interest {
    /// Adds the blocks of `items`.
    pub fn add(&self, items: &[HistoryItem]) {
        let mut h = self.heights.lock().unwrap_or_else(PoisonError::into_inner);
        for i in items {
            h.insert(i.height, i.block_hash);
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.heights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The block wanted at `height`, if any.
    pub fn at(&self, height: u32) -> Option<BlockHash> {
        self.heights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&height)
            .copied()
    }

    /// Number of blocks wanted whole.
    pub fn len(&self) -> usize {
        self.heights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when no block is wanted whole.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A block for the scanner: fetched whole when it holds watched transactions, else its header
/// and coinbase.
#[derive(Debug)]
pub struct EsploraBlock {
    pub(crate) client: Arc<Esplora>,
    pub(crate) meta: BlockMeta,
    pub(crate) header: Header,
    pub(crate) whole: bool,
}

impl LoadBlock for EsploraBlock {
    fn load(self, buf: Vec<u8>) -> crate::Result<RawBlock> {
        let bytes = if self.whole {
            let url = format!("{}/block/{}/raw", self.client.url(), self.meta.hash);
            let b = self
                .client
                .block(self.meta.hash, buf)
                .map_err(|e| crate::rpc::source_error(url.clone(), e))?;
            let found = match b.get(..80) {
                Some(h) => BlockHash::hash(h),
                None => BlockHash::all_zeros(),
            };
            if found != self.meta.hash {
                return Err(ChainError::BadBlock {
                    height: self.meta.height,
                    hash: self.meta.hash,
                    location: url,
                    reason: format!("the server sent a block hashing to {found}"),
                });
            }
            b
        } else {
            // No watched transaction here: the header and the real coinbase (a block has at
            // least one transaction) are all the scanner needs to record the block.
            let url = format!("{}/block/{}/txid/0", self.client.url(), self.meta.hash);
            let coinbase = self
                .client
                .coinbase(self.meta.hash)
                .map_err(|e| crate::rpc::source_error(url, e))?;
            let mut b = buf;
            b.clear();
            b.extend_from_slice(&bitcoin::consensus::serialize(&self.header));
            b.push(1);
            b.extend_from_slice(&coinbase);
            b
        };
        Ok(RawBlock {
            height: self.meta.height,
            hash: self.meta.hash,
            origin: None,
            bytes,
        })
    }
}
