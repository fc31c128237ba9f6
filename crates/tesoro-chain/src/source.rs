//! One face for every block source, so sync's fork detection, catch-up and batched apply are
//! written once: a source tells its tip, the hash at a height, the best chain's headers over a
//! range, and hands out blocks the scanner's workers load.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use bitcoin::{BlockHash, Network};
use tesoro_core::chain::BlockMeta;

use crate::blocksdir::{BlocksDir, ChainIndex, PendingBlock, RawBlock};
use crate::error::ChainError;
use crate::esplora::{Esplora, EsploraBlock, EsploraError, Interest};
use crate::rpc::{CoreRpc, RpcBlock, RpcError};
use crate::scanner::{LoadBlock, ScanOptions};

/// Errors of a source, whatever its kind.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Blocks dir or scanning.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Bitcoin Core over RPC/REST.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// An Esplora server.
    #[error(transparent)]
    Esplora(#[from] EsploraError),
    /// Anything else, already worded for the user.
    #[error("{0}")]
    Other(String),
}

impl SourceError {
    /// True when running again is the cure (the node's chain moved under us).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SourceError::Rpc(RpcError::ChainMoved { .. })
                | SourceError::Esplora(EsploraError::ChainMoved { .. })
        )
    }
}

/// A block source.
pub enum BlockSource {
    /// Bitcoin Core's blocks dir, indexed by linking headers.
    CoreDir {
        /// The directory.
        dir: BlocksDir,
        /// Its best chain (rebuilt by [`BlockSource::refresh`]).
        index: ChainIndex,
    },
    /// A running Bitcoin Core, over JSON-RPC (and REST for blocks when enabled).
    Node(Arc<CoreRpc>),
    /// An Esplora server: per-script history, whole blocks only where watched scripts are.
    Esplora {
        /// The client.
        client: Arc<Esplora>,
        /// Blocks holding watched transactions (set by the caller from script histories).
        interest: Interest,
        /// Headers read by [`BlockSource::headers`], for the blocks sent header-only.
        headers: Mutex<HashMap<u32, bitcoin::block::Header>>,
    },
}

/// A block of some source, loaded on the scanner's workers.
pub enum SourceBlock<'a> {
    /// From a blocks dir.
    Dir(PendingBlock<'a>),
    /// From a node.
    Node(RpcBlock),
    /// From an Esplora server.
    Esplora(EsploraBlock),
}

impl LoadBlock for SourceBlock<'_> {
    fn load(self, buf: Vec<u8>) -> crate::Result<RawBlock> {
        match self {
            SourceBlock::Dir(b) => b.load(buf),
            SourceBlock::Node(b) => b.load(buf),
            SourceBlock::Esplora(b) => b.load(buf),
        }
    }
}

impl BlockSource {
    /// Opens a blocks dir and indexes it.
    pub fn core_dir(path: &Path, network: Network) -> Result<Self, SourceError> {
        let dir = BlocksDir::open(path, network)?;
        let index = dir.index()?;
        if index.is_empty() {
            return Err(SourceError::Other(format!(
                "{} holds no {network} blocks: is it the right folder (Core's <datadir>/blocks, or <datadir>/{}/blocks)?",
                path.display(),
                network.to_core_arg()
            )));
        }
        Ok(BlockSource::CoreDir { dir, index })
    }

    /// A node, checked to run `network`.
    pub fn node(rpc: CoreRpc, network: Network) -> Result<Self, SourceError> {
        rpc.check_network(network)?;
        Ok(BlockSource::Node(Arc::new(rpc)))
    }

    /// An Esplora server (`http://host[:port][/api]`), checked to run `network` by its
    /// genesis block.
    pub fn esplora(url: &str, network: Network) -> Result<Self, SourceError> {
        let client = Esplora::new(url)?;
        let genesis = bitcoin::blockdata::constants::genesis_block(network).block_hash();
        match client.hash_at(0)? {
            Some(h) if h == genesis => {}
            other => {
                return Err(SourceError::Other(format!(
                    "{url} serves a chain whose block 0 is {} but the {} genesis block is {genesis}; point --source at an Esplora of the database's network",
                    other.map_or("missing".to_string(), |h| h.to_string()),
                    network.to_core_arg()
                )))
            }
        }
        Ok(BlockSource::Esplora {
            client: Arc::new(client),
            interest: Interest::default(),
            headers: Mutex::new(HashMap::new()),
        })
    }

    /// A name for messages: the directory or the URL.
    pub fn name(&self) -> String {
        match self {
            BlockSource::CoreDir { dir, .. } => dir.dir().display().to_string(),
            BlockSource::Node(rpc) => rpc.url(),
            BlockSource::Esplora { client, .. } => client.url(),
        }
    }

    /// Re-reads the source's view of the chain (a blocks dir is indexed again).
    pub fn refresh(&mut self) -> Result<(), SourceError> {
        if let BlockSource::CoreDir { dir, index } = self {
            *index = dir.index()?;
        }
        Ok(())
    }

    /// Height of the source's best block.
    pub fn tip_height(&self) -> Result<u32, SourceError> {
        match self {
            BlockSource::CoreDir { index, .. } => Ok(index.tip_height()),
            BlockSource::Node(rpc) => Ok(rpc.info()?.blocks),
            BlockSource::Esplora { client, .. } => Ok(client.tip_height()?),
        }
    }

    /// Hash of the best chain's block at `height` (None past the tip).
    pub fn hash_at(&self, height: u32) -> Result<Option<BlockHash>, SourceError> {
        match self {
            BlockSource::CoreDir { index, .. } => Ok(index.get(height).map(|b| b.hash)),
            BlockSource::Node(rpc) => Ok(rpc.hash_at(height)?),
            BlockSource::Esplora { client, .. } => Ok(client.hash_at(height)?),
        }
    }

    /// The best chain's headers from `from` to `to` inclusive (fewer if the chain is shorter).
    pub fn headers(&self, from: u32, to: u32) -> Result<Vec<BlockMeta>, SourceError> {
        if from > to {
            return Ok(Vec::new());
        }
        match self {
            BlockSource::CoreDir { index, .. } => Ok(index
                .blocks()
                .iter()
                .skip(from as usize)
                .take_while(|b| b.height <= to)
                .map(|b| b.meta())
                .collect()),
            BlockSource::Node(rpc) => Ok(rpc.headers(from, to)?),
            BlockSource::Esplora {
                client, headers, ..
            } => {
                let got = client.headers(from, to)?;
                let mut cache = headers.lock().unwrap_or_else(PoisonError::into_inner);
                cache.clear();
                Ok(got
                    .into_iter()
                    .map(|(m, h)| {
                        cache.insert(m.height, h);
                        m
                    })
                    .collect())
            }
        }
    }

    /// Loadable blocks for `headers` (consecutive heights, as [`BlockSource::headers`] gave).
    pub fn blocks<'a>(
        &'a self,
        headers: &'a [BlockMeta],
    ) -> Result<Box<dyn Iterator<Item = SourceBlock<'a>> + Send + 'a>, SourceError> {
        let Some(first) = headers.first() else {
            return Ok(Box::new(std::iter::empty()));
        };
        match self {
            BlockSource::CoreDir { dir, index } => Ok(Box::new(
                dir.pending_from(index, first.height)?
                    .take(headers.len())
                    .map(SourceBlock::Dir),
            )),
            BlockSource::Node(rpc) => Ok(Box::new(
                headers
                    .iter()
                    .map(move |m| SourceBlock::Node(rpc.pending(*m))),
            )),
            BlockSource::Esplora {
                client,
                interest,
                headers: cache,
            } => {
                let cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
                let mut out = Vec::with_capacity(headers.len());
                for m in headers {
                    let header = *cache
                        .get(&m.height)
                        .filter(|h| h.block_hash() == m.hash)
                        .ok_or_else(|| {
                            SourceError::Other(format!(
                                "no header of block {} at {} read from {}",
                                m.hash,
                                m.height,
                                client.url()
                            ))
                        })?;
                    let whole = match interest.at(m.height) {
                        Some(h) if h == m.hash => true,
                        Some(h) => {
                            return Err(EsploraError::ChainMoved {
                                url: client.url(),
                                reason: format!(
                                    "a script's history names block {h} at height {}, the header list {}",
                                    m.height, m.hash
                                ),
                            }
                            .into())
                        }
                        None => false,
                    };
                    out.push(SourceBlock::Esplora(EsploraBlock {
                        client: Arc::clone(client),
                        meta: *m,
                        header,
                        whole,
                    }));
                }
                Ok(Box::new(out.into_iter()))
            }
        }
    }

    /// Scanner settings that suit the source: a node wants more requests in flight than there
    /// are cores (workers mostly wait on it).
    pub fn scan_options(&self) -> ScanOptions {
        let d = ScanOptions::default();
        match self {
            BlockSource::CoreDir { .. } => d,
            BlockSource::Node(_) | BlockSource::Esplora { .. } => {
                let threads = d.threads.max(4);
                ScanOptions {
                    threads,
                    in_flight: threads * 4,
                }
            }
        }
    }
}
