//! The public summary: what the transparency page and `GET /api/v1/public/summary` show,
//! served from memory.
//!
//! Answers are cached as ready JSON bytes per entity under the data version
//! ([`crate::version`]). When the version moves, the cached summaries are computed again and
//! swapped in; a request that hits the cache touches no database and no lock writers contend
//! for, which is what lets one instance serve tens of thousands of these a second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use axum::body::Bytes;
use serde::Serialize;
use tesoro_core::price::{round_money, value_of};
use tesoro_core::EntityCode;
use tesoro_store::holdings::{At, GroupBy};
use tesoro_store::{Store, StoreError};

use crate::AppState;

/// Summaries cached per entity, valid for one data version.
#[derive(Debug, Default)]
pub struct SummaryCache {
    inner: RwLock<Cached>,
    /// One computation at a time. Without it a cold key met by 256 connections at once
    /// started 256 computations that queued for 8 database connections (about 135 ms each
    /// on PostgreSQL), which was the whole of the summary's p99.
    gate: tokio::sync::Mutex<()>,
    computed: AtomicU64,
}

#[derive(Debug, Default)]
struct Cached {
    version: String,
    entries: HashMap<String, Bytes>,
}

impl SummaryCache {
    /// The cached JSON for `key` (entity code, or empty for everything).
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.inner.read().ok()?.entries.get(key).cloned()
    }

    fn put(&self, version: &str, key: String, bytes: Bytes) {
        if let Ok(mut c) = self.inner.write() {
            if c.version == version {
                c.entries.insert(key, bytes);
            }
        }
    }

    /// The version the cache holds answers for.
    pub fn version(&self) -> String {
        self.inner
            .read()
            .map(|c| c.version.clone())
            .unwrap_or_default()
    }

    /// Summaries computed since start (cache misses and refreshes), for tests and logs.
    pub fn computations(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    fn keys(&self) -> Vec<String> {
        self.inner
            .read()
            .map(|c| c.entries.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn replace(&self, version: String, entries: HashMap<String, Bytes>) {
        if let Ok(mut c) = self.inner.write() {
            tracing::debug!(from = %c.version, to = %version, keys = entries.len(), "public summary: data version moved");
            *c = Cached { version, entries };
        }
    }

    /// Brings the cache to data `version` (read just before; see
    /// [`crate::AppState::data_changed`]). When the version moved, every summary that was
    /// cached is computed again *before* the new set replaces the old one, so requests keep
    /// being answered from memory meanwhile: the public sees the old figures for the time
    /// of one computation instead of waiting for it.
    pub async fn refresh(&self, store: &Store, version: &str) {
        let _one = self.gate.lock().await;
        if version == self.version() {
            return;
        }
        let mut fresh = HashMap::new();
        for key in self.keys() {
            let entity = match key_entity(&key) {
                Ok(e) => e,
                Err(()) => continue,
            };
            // A summary that fails now is left out; its next request computes it (and
            // reports the error to that caller).
            self.computed.fetch_add(1, Ordering::Relaxed);
            match summary_bytes(store, entity.as_ref()).await {
                Ok(bytes) => {
                    fresh.insert(key, bytes);
                }
                Err(e) => tracing::warn!(key, "public summary: {e}"),
            }
        }
        self.replace(version.to_string(), fresh);
    }
}

/// The entity a cache key stands for (empty: every entity).
fn key_entity(key: &str) -> Result<Option<EntityCode>, ()> {
    if key.is_empty() {
        return Ok(None);
    }
    EntityCode::parse(key).map(Some).map_err(|_| ())
}

/// One part of the summary: an entity below the one asked for.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryPart {
    /// Entity code.
    pub entity: String,
    /// Name.
    pub name: String,
    /// Holdings with everything below it, sats.
    pub sats: u64,
    /// The same in BTC.
    pub btc: String,
}

/// The value of the holdings in one currency.
#[derive(Debug, Clone, Serialize)]
pub struct Valuation {
    /// Currency code.
    pub currency: String,
    /// Price of one BTC used.
    pub price: String,
    /// Day of that price.
    pub price_day: String,
    /// Holdings × price, rounded to cents.
    pub value: String,
}

/// What the public summary says.
#[derive(Debug, Clone, Serialize)]
pub struct PublicSummary {
    /// The entity (absent: every entity).
    pub entity: Option<String>,
    /// Its name.
    pub name: Option<String>,
    /// Tip height the figures are at.
    pub height: u32,
    /// Tip hash.
    pub hash: String,
    /// Tip date.
    pub date: String,
    /// Total sats.
    pub total_sats: u64,
    /// Total BTC.
    pub total_btc: String,
    /// Unspent outputs.
    pub utxos: u64,
    /// Addresses holding coins.
    pub addresses: u64,
    /// Value in USD (and other stored currencies), at the last price on or before the tip's day.
    pub valuations: Vec<Valuation>,
    /// Direct children with their totals.
    pub parts: Vec<SummaryPart>,
}

/// Computes the public summary of `entity` (or of everything) at the tip.
pub async fn compute(
    store: &Store,
    entity: Option<&EntityCode>,
) -> Result<PublicSummary, StoreError> {
    let block = store.resolve_at(At::Tip).await?;
    let by_entity = store.holdings(entity, &block, GroupBy::Entity).await?;
    let by_address = store.holdings(entity, &block, GroupBy::Address).await?;
    let entities = store.entities().await?;
    let (name, parts) = match entity {
        Some(code) => {
            let name = entities
                .iter()
                .find(|e| &e.code == code)
                .map(|e| e.name.clone());
            let children: Vec<&tesoro_core::Entity> = entities
                .iter()
                .filter(|e| e.parent.as_ref() == Some(code))
                .collect();
            let parts = children
                .iter()
                .map(|c| {
                    let g = by_entity.groups.iter().find(|g| g.key == c.code.as_str());
                    let sats = g.map_or(0, |g| g.sats);
                    SummaryPart {
                        entity: c.code.to_string(),
                        name: c.name.clone(),
                        sats,
                        btc: tesoro_store::holdings::btc(sats),
                    }
                })
                .collect();
            (name, parts)
        }
        None => (
            None,
            by_entity
                .groups
                .iter()
                .filter(|g| g.depth == Some(0))
                .map(|g| SummaryPart {
                    entity: g.key.clone(),
                    name: g.name.clone().unwrap_or_default(),
                    sats: g.sats,
                    btc: g.btc.clone(),
                })
                .collect(),
        ),
    };
    let mut book = store.price_book().await?;
    // The public page shows the last known price rather than nothing on a day without one.
    book.allow_last_known = true;
    let day = tesoro_core::movement::date_of_unix(i64::from(block.time));
    let valuations = book
        .currencies()
        .into_iter()
        .filter_map(|cur| {
            let q = book.btc_price(day, &cur).ok()?;
            Some(Valuation {
                value: round_money(value_of(by_entity.total_sats, q.value)).to_string(),
                price: q.value.to_string(),
                price_day: tesoro_core::price::fmt_date(q.from),
                currency: cur,
            })
        })
        .collect::<Vec<_>>();
    Ok(PublicSummary {
        entity: entity.map(|e| e.to_string()),
        name,
        height: block.height,
        hash: block.hash.to_string(),
        date: by_entity.date.clone(),
        total_sats: by_entity.total_sats,
        total_btc: by_entity.total_btc.clone(),
        utxos: by_entity.utxo_count,
        addresses: by_address.groups.len() as u64,
        valuations,
        parts,
    })
}

/// The summary of `entity` as JSON bytes, from the cache or freshly computed (and cached).
pub async fn summary_json(
    state: &AppState,
    entity: Option<&EntityCode>,
) -> Result<Bytes, StoreError> {
    let key = entity.map(|e| e.to_string()).unwrap_or_default();
    if let Some(b) = state.public.get(&key) {
        return Ok(b);
    }
    let _one = state.public.gate.lock().await;
    // Whoever held the gate before may have computed this very key.
    if let Some(b) = state.public.get(&key) {
        return Ok(b);
    }
    let version = state.public.version();
    state.public.computed.fetch_add(1, Ordering::Relaxed);
    let bytes = summary_bytes(&state.store, entity).await?;
    state.public.put(&version, key, bytes.clone());
    Ok(bytes)
}

async fn summary_bytes(store: &Store, entity: Option<&EntityCode>) -> Result<Bytes, StoreError> {
    let started = std::time::Instant::now();
    let summary = compute(store, entity).await?;
    let bytes =
        Bytes::from(serde_json::to_vec(&summary).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    tracing::debug!(
        entity = entity.map(|e| e.as_str()).unwrap_or(""),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "public summary computed"
    );
    Ok(bytes)
}
