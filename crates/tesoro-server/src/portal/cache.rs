//! Rendered public pages kept in memory, keyed by page and by the data version
//! ([`crate::version`]), which the server keeps in memory: a page served from here asks the
//! database nothing. A page is rebuilt only when the version moved, one build at a time, so
//! a burst of requests after a sync builds it once, and is served as it was meanwhile.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::body::Bytes;
use tesoro_store::Store;

use super::PortalError;
use crate::version::DataVersion;

/// Pages kept; `?at=` makes the key space open, so the cache is emptied when full.
const MAX_PAGES: usize = 512;

#[derive(Clone)]
struct Cached {
    version: Arc<str>,
    body: Bytes,
}

enum Lookup {
    Fresh(Bytes),
    Stale(Bytes),
    Missing,
}

/// The cache; one per server.
#[derive(Default)]
pub struct PageCache {
    pages: Mutex<HashMap<String, Cached>>,
    building: tokio::sync::Mutex<()>,
}

impl PageCache {
    /// The page under `key` for `version`, or the one kept for an older version.
    fn lookup(&self, key: &str, version: &str) -> Lookup {
        match self
            .pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            Some(c) if &*c.version == version => Lookup::Fresh(c.body.clone()),
            Some(c) => Lookup::Stale(c.body.clone()),
            None => Lookup::Missing,
        }
    }

    /// The page under `key`, built by `build` when missing or stale.
    pub async fn get_or_build<F, Fut>(
        &self,
        version: &DataVersion,
        store: &Store,
        key: &str,
        build: F,
    ) -> Result<Bytes, PortalError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, PortalError>>,
    {
        let v = version.current(store).await?;
        // While one request builds, the others get the page as it was: the page names the
        // block it is at, and without this every connection waited for each new block's
        // build (about 150 ms on this machine).
        let _one_at_a_time = match self.lookup(key, &v) {
            Lookup::Fresh(b) => return Ok(b),
            Lookup::Stale(old) => match self.building.try_lock() {
                Ok(g) => g,
                Err(_) => return Ok(old),
            },
            Lookup::Missing => self.building.lock().await,
        };
        if let Lookup::Fresh(b) = self.lookup(key, &v) {
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
                version: v,
                body: body.clone(),
            },
        );
        Ok(body)
    }
}
