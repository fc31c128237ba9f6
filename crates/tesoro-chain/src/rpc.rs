//! Bitcoin Core over JSON-RPC and REST: the best chain's headers, and raw blocks.
//!
//! Follows the formats of Bitcoin Core v28–v31 (checked against the v31.99 source tree that
//! `libbitcoinkernel-sys` 0.4.1 carries, and against that node in the test suite):
//! JSON-RPC 1.0 requests and batches over HTTP POST with Basic auth (cookie `__cookie__:…` or
//! `-rpcuser`/`-rpcpassword`); errors as `{"result":null,"error":{"code":…,"message":…}}` with
//! HTTP 500 (404 for an unknown method); 401 with an empty body for wrong credentials. REST
//! `GET /rest/block/<hash>.bin` (needs `-rest`) answers the block's bytes, or 404 with a text
//! body `<hash> not found` / `<hash> not available (pruned data)`.
//!
//! Blocks are fetched on the scanner's parse workers ([`RpcBlock`] implements
//! [`LoadBlock`]), each on its own keep-alive connection, so several requests are in flight
//! and the node is the bottleneck.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Network};
use serde_json::{json, Value};
use tesoro_core::chain::BlockMeta;

use crate::blocksdir::RawBlock;
use crate::error::ChainError;
use crate::http::{base64, HttpError, HttpPool, HttpUrl, Response};
use crate::scanner::LoadBlock;

/// How to authenticate to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcAuth {
    /// Core's cookie file (`<datadir>/[<net>/].cookie`), read when the client is built.
    Cookie(PathBuf),
    /// `-rpcuser` and a file whose first line is the password.
    UserPasswordFile {
        /// The user name.
        user: String,
        /// The file holding the password.
        password_file: PathBuf,
    },
}

/// Where Core writes its cookie for `network` under the default datadir (`~/.bitcoin`).
pub fn default_cookie_path(network: Network) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let mut p = PathBuf::from(home).join(".bitcoin");
    match network {
        Network::Bitcoin => {}
        Network::Testnet => p.push("testnet3"),
        other => p.push(other.to_core_arg()),
    }
    Some(p.join(".cookie"))
}

/// Errors talking to Bitcoin Core, each naming the URL and what to check.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Transport failure (connection refused, node stopped, timeout).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The cookie or password file cannot be read.
    #[error(
        "cannot read the RPC {what} {path}: {source}; is the node running with that datadir and \
         network (pass --rpc-cookie PATH, or --rpc-user and --rpc-password-file)?"
    )]
    Credentials {
        /// "cookie file" or "password file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// HTTP 401/403.
    #[error(
        "{url} refused the RPC credentials (HTTP {status}); check --rpc-cookie (Core writes a new \
         cookie at every start) or --rpc-user/--rpc-password-file against the node's -rpcauth/-rpcuser"
    )]
    Unauthorized {
        /// The node's URL.
        url: String,
        /// 401 or 403.
        status: u16,
    },
    /// HTTP 503: the node is shutting down, or its work queue is full.
    #[error(
        "{url} answered HTTP 503 (Service Unavailable): the node is stopping or its RPC work queue \
         is full (-rpcworkqueue); what was synced is stored, run sync again once the node is up"
    )]
    Unavailable {
        /// The node's URL.
        url: String,
    },
    /// A JSON-RPC error reply.
    #[error("{url}: {method} failed with RPC error {code}: {message}")]
    Rpc {
        /// The node's URL.
        url: String,
        /// The method called (with its first parameter).
        method: String,
        /// Core's error code.
        code: i64,
        /// Core's message.
        message: String,
    },
    /// The node does not have the block (unknown hash, or not yet downloaded).
    #[error(
        "{url}: block {hash} (height {height}) is not known to the node ({detail}); it may have \
         been reorganised away or not be downloaded yet: run sync again"
    )]
    BlockNotFound {
        /// Where it was asked.
        url: String,
        /// The block.
        hash: BlockHash,
        /// Its height in the header list.
        height: u32,
        /// The node's words.
        detail: String,
    },
    /// The node pruned the block.
    #[error(
        "{url}: block {hash} at height {height} was pruned by the node ({detail}); sync from a \
         node without -prune, or give the wallets a birth height above the prune height"
    )]
    Pruned {
        /// Where it was asked.
        url: String,
        /// The block.
        hash: BlockHash,
        /// Its height.
        height: u32,
        /// The node's words.
        detail: String,
    },
    /// The node is on another network than the database.
    #[error(
        "{url} is a {found} node (getblockchaininfo chain={found_core:?}) but the database is for \
         {expected}; point --source at a {expected} node or use a {found} database"
    )]
    WrongNetwork {
        /// The node's URL.
        url: String,
        /// Network the node runs (mainnet, testnet, testnet4, signet, regtest).
        found: String,
        /// Core's name for it.
        found_core: String,
        /// Network of the database.
        expected: String,
    },
    /// REST is off (`-rest` not set) but was asked for.
    #[error("{url}: REST is not enabled on the node (HTTP {status} for {path}); start bitcoind with -rest, or drop --rest to use getblock over RPC")]
    RestDisabled {
        /// The node's URL.
        url: String,
        /// The path asked.
        path: String,
        /// Status received.
        status: u16,
    },
    /// The reply is not what Core sends.
    #[error("{url}: unexpected reply to {what}: {reason}")]
    BadReply {
        /// The node's URL.
        url: String,
        /// The request.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The node's best chain changed while the header list was being read.
    #[error(
        "{url}: the node's best chain changed while reading headers ({reason}); run sync again"
    )]
    ChainMoved {
        /// The node's URL.
        url: String,
        /// What was seen.
        reason: String,
    },
}

/// What `getblockchaininfo` says, the parts sync needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Network.
    pub network: Network,
    /// Height of the best validated block.
    pub blocks: u32,
    /// Best block hash.
    pub best: BlockHash,
    /// True for a pruned node.
    pub pruned: bool,
    /// Lowest height with block data, when pruned.
    pub prune_height: Option<u32>,
    /// Initial block download in progress.
    pub initial_block_download: bool,
}

/// A client for one node.
pub struct CoreRpc {
    pool: HttpPool,
    rest: bool,
    auth: RpcAuth,
    /// The Authorization header in use.
    current: std::sync::Mutex<String>,
}

impl std::fmt::Debug for CoreRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the credentials.
        f.debug_struct("CoreRpc")
            .field("url", &self.pool.url().to_string())
            .field("rest", &self.rest)
            .finish()
    }
}

fn auth_header(auth: &RpcAuth) -> Result<String, RpcError> {
    let userpass = match auth {
        RpcAuth::Cookie(path) => read_secret("cookie file", path)?.trim().to_string(),
        RpcAuth::UserPasswordFile {
            user,
            password_file,
        } => {
            let pw = read_secret("password file", password_file)?;
            let pw = pw.lines().next().unwrap_or("").trim_end_matches('\r');
            format!("{user}:{pw}")
        }
    };
    Ok(format!("Basic {}", base64(userpass.as_bytes())))
}

fn read_secret(what: &'static str, path: &Path) -> Result<String, RpcError> {
    std::fs::read_to_string(path).map_err(|source| RpcError::Credentials {
        what,
        path: path.to_path_buf(),
        source,
    })
}

impl CoreRpc {
    /// A client for `url` (`http://host:port`); with `rest`, blocks come from REST.
    pub fn new(url: &str, auth: &RpcAuth, rest: bool) -> Result<Self, RpcError> {
        let url = HttpUrl::parse(url)?;
        let header = auth_header(auth)?;
        Ok(Self {
            pool: HttpPool::new(url, Some(header.clone()), Duration::from_secs(120)),
            rest,
            auth: auth.clone(),
            current: std::sync::Mutex::new(header),
        })
    }

    /// After a 401 with cookie auth: the node may have restarted and written a new cookie.
    /// Re-reads it; true if it changed (worth one more try).
    fn refresh_cookie(&self) -> bool {
        if !matches!(self.auth, RpcAuth::Cookie(_)) {
            return false;
        }
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match auth_header(&self.auth) {
            Ok(h) if h != *current => {
                self.pool.set_auth(Some(h.clone()));
                *current = h;
                true
            }
            _ => false,
        }
    }

    /// The node's URL.
    pub fn url(&self) -> String {
        self.pool.url().to_string()
    }

    /// True when blocks come over REST.
    pub fn uses_rest(&self) -> bool {
        self.rest
    }

    fn post(&self, body: &Value, what: &str) -> Result<Response, RpcError> {
        let bytes = serde_json::to_vec(body).map_err(|e| RpcError::BadReply {
            url: self.url(),
            what: what.to_string(),
            reason: e.to_string(),
        })?;
        let mut r =
            self.pool
                .request("POST", "/", Some(("application/json", &bytes)), Vec::new())?;
        if r.status == 401 && self.refresh_cookie() {
            r = self
                .pool
                .request("POST", "/", Some(("application/json", &bytes)), Vec::new())?;
        }
        if r.status == 401 || r.status == 403 {
            return Err(RpcError::Unauthorized {
                url: self.url(),
                status: r.status,
            });
        }
        if r.status == 503 {
            return Err(RpcError::Unavailable { url: self.url() });
        }
        Ok(r)
    }

    fn parse_reply(&self, what: &str, v: &Value) -> Result<Value, RpcError> {
        match v.get("error") {
            Some(e) if !e.is_null() => Err(RpcError::Rpc {
                url: self.url(),
                method: what.to_string(),
                code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            }),
            _ => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    fn bad(&self, what: &str, reason: impl Into<String>) -> RpcError {
        RpcError::BadReply {
            url: self.url(),
            what: what.to_string(),
            reason: reason.into(),
        }
    }

    /// One JSON-RPC call.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let what = match params.get(0) {
            Some(p) => format!("{method} {p}"),
            None => method.to_string(),
        };
        let body = json!({"jsonrpc": "1.0", "id": 0, "method": method, "params": params});
        let r = self.post(&body, &what)?;
        let v: Value = serde_json::from_slice(&r.body).map_err(|e| {
            self.bad(
                &what,
                format!("HTTP {} {e}: {}", r.status, r.body_snippet()),
            )
        })?;
        self.parse_reply(&what, &v)
    }

    /// Many calls of one method in one batch request; results in the order of `params`.
    pub fn batch(&self, method: &str, params: &[Value]) -> Result<Vec<Value>, RpcError> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        let body: Vec<Value> = params
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"jsonrpc": "1.0", "id": i, "method": method, "params": p}))
            .collect();
        let what = format!("batch of {} {method}", params.len());
        let r = self.post(&Value::Array(body), &what)?;
        let v: Value = serde_json::from_slice(&r.body).map_err(|e| {
            self.bad(
                &what,
                format!("HTTP {} {e}: {}", r.status, r.body_snippet()),
            )
        })?;
        let Value::Array(items) = v else {
            // A whole-batch error comes back as one object.
            self.parse_reply(&what, &v)?;
            return Err(self.bad(&what, "not an array"));
        };
        let mut out = vec![Value::Null; params.len()];
        let mut seen = 0;
        for item in items {
            let id = item
                .get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| self.bad(&what, "item without a numeric id"))?
                as usize;
            let p = params
                .get(id)
                .ok_or_else(|| self.bad(&what, "unknown id"))?;
            let what_i = format!("{method} {}", p.get(0).unwrap_or(&Value::Null));
            let slot = out
                .get_mut(id)
                .ok_or_else(|| self.bad(&what, "unknown id"))?;
            *slot = self.parse_reply(&what_i, &item)?;
            seen += 1;
        }
        if seen != params.len() {
            return Err(self.bad(&what, format!("{seen} replies for {} calls", params.len())));
        }
        Ok(out)
    }

    /// `getblockchaininfo`.
    pub fn info(&self) -> Result<NodeInfo, RpcError> {
        let what = "getblockchaininfo";
        let v = self.call(what, json!([]))?;
        let chain = v
            .get("chain")
            .and_then(Value::as_str)
            .ok_or_else(|| self.bad(what, "no chain"))?;
        let network = Network::from_core_arg(chain)
            .map_err(|_| self.bad(what, format!("unknown chain {chain:?}")))?;
        let blocks = v
            .get("blocks")
            .and_then(Value::as_u64)
            .and_then(|b| u32::try_from(b).ok())
            .ok_or_else(|| self.bad(what, "no blocks"))?;
        let best = v
            .get("bestblockhash")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.bad(what, "no bestblockhash"))?;
        Ok(NodeInfo {
            network,
            blocks,
            best,
            pruned: v.get("pruned").and_then(Value::as_bool).unwrap_or(false),
            prune_height: v
                .get("pruneheight")
                .and_then(Value::as_u64)
                .and_then(|h| u32::try_from(h).ok()),
            initial_block_download: v
                .get("initialblockdownload")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// `getblockchaininfo`, refusing a node of another network than `expected`.
    pub fn check_network(&self, expected: Network) -> Result<NodeInfo, RpcError> {
        let info = self.info()?;
        if info.network != expected {
            return Err(RpcError::WrongNetwork {
                url: self.url(),
                found: network_name(info.network).to_string(),
                found_core: info.network.to_core_arg().to_string(),
                expected: network_name(expected).to_string(),
            });
        }
        Ok(info)
    }

    /// Hash of the best chain's block at `height`, or None past the tip.
    pub fn hash_at(&self, height: u32) -> Result<Option<BlockHash>, RpcError> {
        match self.call("getblockhash", json!([height])) {
            Ok(v) => v
                .as_str()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(|| self.bad("getblockhash", "not a hash")),
            // -8: "Block height out of range".
            Err(RpcError::Rpc { code: -8, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The best chain's headers from `from` to `to` inclusive, linked and checked (each
    /// header hashes to the hash `getblockhash` gave, each links to the one before). Batched:
    /// two requests per 1,000 blocks.
    pub fn headers(&self, from: u32, to: u32) -> Result<Vec<BlockMeta>, RpcError> {
        let mut out: Vec<BlockMeta> = Vec::with_capacity((to.saturating_sub(from) + 1) as usize);
        let mut h = from;
        while h <= to {
            let end = to.min(h.saturating_add(999));
            let heights: Vec<Value> = (h..=end).map(|x| json!([x])).collect();
            let hashes = match self.batch("getblockhash", &heights) {
                Ok(v) => v,
                Err(RpcError::Rpc {
                    code: -8, message, ..
                }) => {
                    return Err(RpcError::ChainMoved {
                        url: self.url(),
                        reason: format!("getblockhash up to {end}: {message}"),
                    })
                }
                Err(e) => return Err(e),
            };
            let params: Vec<Value> = hashes.iter().map(|x| json!([x, false])).collect();
            let headers = self.batch("getblockheader", &params)?;
            for (i, (hv, hdr)) in hashes.iter().zip(headers.iter()).enumerate() {
                let height = h + i as u32;
                let hash: BlockHash = hv
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| self.bad("getblockhash", "not a hash"))?;
                let what = format!("getblockheader {hash}");
                let bytes = hdr
                    .as_str()
                    .and_then(|s| bitcoin::hex::FromHex::from_hex(s).ok())
                    .ok_or_else(|| self.bad(&what, "not hex"))?;
                let header: Vec<u8> = bytes;
                let header: Header = bitcoin::consensus::deserialize(&header)
                    .map_err(|e| self.bad(&what, e.to_string()))?;
                if header.block_hash() != hash {
                    return Err(self.bad(&what, "header does not hash to the hash asked for"));
                }
                if let Some(prev) = out.last() {
                    if header.prev_blockhash != prev.hash {
                        return Err(RpcError::ChainMoved {
                            url: self.url(),
                            reason: format!(
                                "block {hash} at height {height} does not link to {} at {}",
                                prev.hash, prev.height
                            ),
                        });
                    }
                }
                out.push(BlockMeta {
                    height,
                    hash,
                    prev_hash: header.prev_blockhash,
                    time: header.time,
                });
            }
            h = match end.checked_add(1) {
                Some(n) => n,
                None => break,
            };
        }
        Ok(out)
    }

    /// The block `hash` (at `height`, for messages), into `buf`, over REST or `getblock 0`.
    pub fn block(&self, hash: BlockHash, height: u32, buf: Vec<u8>) -> Result<Vec<u8>, RpcError> {
        if self.rest {
            let path = format!("/rest/block/{hash}.bin");
            let mut r = self.pool.request("GET", &path, None, buf)?;
            if r.status == 401 && self.refresh_cookie() {
                r = self.pool.request("GET", &path, None, r.body)?;
            }
            let url = self.pool.url().with_path(&path);
            match r.status {
                200 => Ok(r.body),
                404 => {
                    let detail = r.body_snippet();
                    if detail.contains("pruned") {
                        Err(RpcError::Pruned {
                            url,
                            hash,
                            height,
                            detail,
                        })
                    } else if detail.contains(&hash.to_string()) {
                        Err(RpcError::BlockNotFound {
                            url,
                            hash,
                            height,
                            detail,
                        })
                    } else {
                        // libevent's own 404 for an unregistered /rest/ handler.
                        Err(RpcError::RestDisabled {
                            url: self.url(),
                            path,
                            status: 404,
                        })
                    }
                }
                401 | 403 => Err(RpcError::Unauthorized {
                    url: self.url(),
                    status: r.status,
                }),
                503 => Err(RpcError::Unavailable { url: self.url() }),
                s => Err(RpcError::BadReply {
                    url,
                    what: "GET block".into(),
                    reason: format!("HTTP {s}: {}", r.body_snippet()),
                }),
            }
        } else {
            let url = self.url();
            match self.call("getblock", json!([hash, 0])) {
                Ok(v) => {
                    let hex = v
                        .as_str()
                        .ok_or_else(|| self.bad(&format!("getblock {hash} 0"), "not a string"))?;
                    let mut out = buf;
                    out.clear();
                    decode_hex_into(hex, &mut out)
                        .ok_or_else(|| self.bad(&format!("getblock {hash} 0"), "not hex"))?;
                    Ok(out)
                }
                Err(RpcError::Rpc { code, message, .. }) if code == -5 => {
                    Err(RpcError::BlockNotFound {
                        url,
                        hash,
                        height,
                        detail: format!("RPC error {code}: {message}"),
                    })
                }
                Err(RpcError::Rpc { code, message, .. }) if message.contains("not available") => {
                    if message.contains("pruned") {
                        Err(RpcError::Pruned {
                            url,
                            hash,
                            height,
                            detail: format!("RPC error {code}: {message}"),
                        })
                    } else {
                        Err(RpcError::BlockNotFound {
                            url,
                            hash,
                            height,
                            detail: format!("RPC error {code}: {message}"),
                        })
                    }
                }
                Err(e) => Err(e),
            }
        }
    }

    /// A block of the header list, loadable by the scanner's workers.
    pub fn pending(self: &Arc<Self>, meta: BlockMeta) -> RpcBlock {
        RpcBlock {
            rpc: Arc::clone(self),
            meta,
        }
    }
}

/// The name users know a network by.
fn network_name(n: Network) -> &'static str {
    match n {
        Network::Bitcoin => "mainnet",
        Network::Testnet => "testnet",
        other => other.to_core_arg(),
    }
}

fn decode_hex_into(hex: &str, out: &mut Vec<u8>) -> Option<()> {
    let b = hex.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    out.reserve(b.len() / 2);
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    for pair in b.chunks_exact(2) {
        out.push((nib(pair[0])? << 4) | nib(pair[1])?);
    }
    Some(())
}

/// A block to fetch from the node: what the scanner's workers load.
#[derive(Debug, Clone)]
pub struct RpcBlock {
    rpc: Arc<CoreRpc>,
    meta: BlockMeta,
}

impl RpcBlock {
    /// The header facts of the block.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }
}

/// A source error as the scanner's error type: an IO failure on the URL asked for.
pub(crate) fn source_error(
    url: String,
    e: impl std::error::Error + Send + Sync + 'static,
) -> ChainError {
    ChainError::Io {
        path: PathBuf::from(url),
        source: std::io::Error::other(e),
    }
}

impl LoadBlock for RpcBlock {
    fn load(self, buf: Vec<u8>) -> crate::Result<RawBlock> {
        let url = if self.rpc.rest {
            self.rpc
                .pool
                .url()
                .with_path(&format!("/rest/block/{}.bin", self.meta.hash))
        } else {
            format!("{} (getblock {} 0)", self.rpc.url(), self.meta.hash)
        };
        let bytes = self
            .rpc
            .block(self.meta.hash, self.meta.height, buf)
            .map_err(|e| source_error(url.clone(), e))?;
        let found = match bytes.get(..80) {
            Some(h) => BlockHash::hash(h),
            None => BlockHash::all_zeros(),
        };
        if found != self.meta.hash {
            return Err(ChainError::BadBlock {
                height: self.meta.height,
                hash: self.meta.hash,
                location: url,
                reason: format!("the node sent a block hashing to {found}"),
            });
        }
        Ok(RawBlock {
            height: self.meta.height,
            hash: self.meta.hash,
            origin: None,
            bytes,
        })
    }
}
