//! Rendered public pages kept in memory, keyed by page and by a fingerprint of the data
//! under them (chain tip, wallets, prices, records, overrides, rules, statements). The
//! fingerprint is one cheap query, asked at most once a second; a page is rebuilt only when
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
}

impl PageCache {
    /// The data's fingerprint, asked of the store at most once per [`FRESH`].
    pub async fn fingerprint(&self, store: &Store) -> Result<Arc<str>, PortalError> {
        if let Some((at, fp)) = self
            .fingerprint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            if at.elapsed() < FRESH {
                return Ok(fp.clone());
            }
        }
        let fp: Arc<str> = query_fingerprint(store).await?.into();
        *self
            .fingerprint
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), fp.clone()));
        Ok(fp)
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
        let body = Bytes::from(build().await?);
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
    let has_statements = table_exists(store, "statements").await?;
    let statements = if has_statements {
        "(SELECT CAST(COUNT(*) AS BIGINT) FROM statements)"
    } else {
        "CAST(0 AS BIGINT)"
    };
    let sql = format!(
        "SELECT (SELECT CAST(COALESCE(MAX(height), -1) AS BIGINT) FROM blocks) AS tip, \
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
         {statements} AS n_st"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
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

/// True when the schema has `table` (tables later migrations add).
pub async fn table_exists(store: &Store, table: &str) -> Result<bool, PortalError> {
    let sql = match store.backend() {
        tesoro_store::Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = $1"
        }
        tesoro_store::Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    Ok(sqlx::query(sql)
        .bind(table)
        .fetch_optional(store.pool())
        .await
        .map_err(StoreError::from)?
        .is_some())
}
