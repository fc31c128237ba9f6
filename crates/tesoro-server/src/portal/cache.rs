//! Rendered public pages kept in memory, keyed by page and by a fingerprint of the data
//! under them (chain tip, wallets, prices, records, overrides, rules, statements). The
//! fingerprint is one query, asked at most once a second by one request; a page is rebuilt only when
//! it changed, one build at a time, so a burst of requests after a sync builds it once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use sqlx::Row;
use tesoro_store::{Store, StoreError};

use super::PortalError;

/// How long a fingerprint is trusted before it is asked again.
const FRESH: Duration = Duration::from_secs(1);
/// Pages kept; `?at=` makes the key space open, so the cache is emptied when full.
const MAX_PAGES: usize = 512;

#[derive(Clone)]
struct Cached {
    fingerprint: Arc<str>,
    body: Bytes,
}

/// The cache; one per router.
#[derive(Default)]
pub struct PageCache {
    fingerprint: Mutex<Option<(Instant, Arc<str>)>>,
    pages: Mutex<HashMap<String, Cached>>,
    building: tokio::sync::Mutex<()>,
    asking: tokio::sync::Mutex<()>,
}

impl PageCache {
    /// The data's fingerprint, asked of the store at most once per [`FRESH`], by one request
    /// at a time. When it has aged, the request that gets to ask does, and the others keep
    /// the last answer meanwhile: with every request asking at once, 256 connections queued
    /// for 8 PostgreSQL connections once a second and the page's p99 was 140-200 ms.
    pub async fn fingerprint(&self, store: &Store) -> Result<Arc<str>, PortalError> {
        let last = self.last_fingerprint();
        let _asking = match &last {
            Some((at, fp)) if at.elapsed() < FRESH => return Ok(fp.clone()),
            Some((_, fp)) => match self.asking.try_lock() {
                Ok(g) => g,
                Err(_) => return Ok(fp.clone()),
            },
            None => {
                let g = self.asking.lock().await;
                // Whoever held it may have just asked.
                if let Some((at, fp)) = self.last_fingerprint() {
                    if at.elapsed() < FRESH {
                        return Ok(fp);
                    }
                }
                g
            }
        };
        let started = Instant::now();
        let fp: Arc<str> = query_fingerprint(store).await?.into();
        tracing::trace!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "public page fingerprint asked"
        );
        *self
            .fingerprint
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), fp.clone()));
        Ok(fp)
    }

    fn last_fingerprint(&self) -> Option<(Instant, Arc<str>)> {
        self.fingerprint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets everything (after a change made through the portal itself).
    pub fn invalidate(&self) {
        *self
            .fingerprint
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn lookup(&self, key: &str, fp: &str) -> Option<Bytes> {
        self.pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .filter(|c| &*c.fingerprint == fp)
            .map(|c| c.body.clone())
    }

    /// The page under `key`, built by `build` when missing or stale.
    pub async fn get_or_build<F, Fut>(
        &self,
        store: &Store,
        key: &str,
        build: F,
    ) -> Result<Bytes, PortalError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, PortalError>>,
    {
        let fp = self.fingerprint(store).await?;
        if let Some(b) = self.lookup(key, &fp) {
            return Ok(b);
        }
        let _one_at_a_time = self.building.lock().await;
        if let Some(b) = self.lookup(key, &fp) {
            return Ok(b);
        }
        let started = Instant::now();
        let body = Bytes::from(build().await?);
        tracing::debug!(
            key,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "public page built"
        );
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        if pages.len() >= MAX_PAGES {
            pages.clear();
        }
        pages.insert(
            key.to_string(),
            Cached {
                fingerprint: fp,
                body: body.clone(),
            },
        );
        Ok(body)
    }
}

/// Counts and maxima that change whenever anything a public page shows changes.
async fn query_fingerprint(store: &Store) -> Result<String, PortalError> {
    // Every table is there: the store migrates the schema when it opens.
    let sql = "SELECT (SELECT CAST(COALESCE(MAX(height), -1) AS BIGINT) FROM blocks) AS tip, \
         (SELECT hash FROM blocks ORDER BY height DESC LIMIT 1) AS tip_hash, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM outputs) AS n_out, \
         (SELECT CAST(COUNT(spent_height) AS BIGINT) FROM outputs) AS n_spent, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM entities) AS n_ent, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM wallets) AS n_wal, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM wallet_addresses) AS n_addr, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM prices) AS n_price, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM fx_rates) AS n_fx, \
         (SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM ledger_records) AS n_rec, \
         (SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM ledger_overrides) AS n_ovr, \
         CAST(COALESCE((SELECT LENGTH(value) FROM ledger_state WHERE key = 'rules'), 0) AS BIGINT) AS rules, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM statements) AS n_st";
    let row = sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .map_err(StoreError::from)?;
    let mut fp = String::new();
    for c in [
        "tip", "n_out", "n_spent", "n_ent", "n_wal", "n_addr", "n_price", "n_fx", "n_rec", "n_ovr",
        "rules", "n_st",
    ] {
        let v: i64 = row.try_get(c).map_err(StoreError::from)?;
        fp.push_str(&v.to_string());
        fp.push(':');
    }
    let hash: Option<Vec<u8>> = row.try_get("tip_hash").map_err(StoreError::from)?;
    for b in hash.unwrap_or_default() {
        fp.push_str(&format!("{b:02x}"));
    }
    Ok(fp)
}
