//! The data version: one value that moves whenever anything a public answer shows changes,
//! read from the store's change counters (a four-row table the database's own triggers
//! keep, so writes by the CLI or by another instance move it too).
//!
//! A background task reads it once a second ([`watch`]); changes made through this server
//! read it at once ([`crate::AppState::data_changed`]). The public summary and the public
//! pages are kept in memory under it, so a request answered from memory asks the database
//! nothing.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tesoro_store::{Store, StoreError};

use crate::AppState;

/// How old the last read may be before a request reads it again itself. The watcher reads
/// once a second, so with it running requests never do; a router served without the watcher
/// (tests, embedding) still sees changes made behind its back.
const TRUSTED_FOR: Duration = Duration::from_secs(2);

/// The last data version read.
#[derive(Debug, Default)]
pub struct DataVersion {
    last: RwLock<Option<(Instant, Arc<str>)>>,
    /// One read at a time: a burst of requests reads it once.
    reading: tokio::sync::Mutex<()>,
}

impl DataVersion {
    /// The version last read, if any.
    pub fn last(&self) -> Option<Arc<str>> {
        Some(self.last.read().ok()?.as_ref()?.1.clone())
    }

    fn last_read(&self) -> Option<(Instant, Arc<str>)> {
        self.last.read().ok()?.clone()
    }

    /// Reads the version from the store now.
    pub async fn read(&self, store: &Store) -> Result<Arc<str>, StoreError> {
        let _one = self.reading.lock().await;
        self.read_holding_the_lock(store).await
    }

    /// What requests key their answers on: the version last read. Before the first read,
    /// one request reads it while the others wait; when the last read has aged past
    /// [`TRUSTED_FOR`], one request reads it while the others keep the last.
    pub async fn current(&self, store: &Store) -> Result<Arc<str>, StoreError> {
        let _one = match self.last_read() {
            Some((at, v)) if at.elapsed() < TRUSTED_FOR => return Ok(v),
            Some((_, v)) => match self.reading.try_lock() {
                Ok(g) => g,
                Err(_) => return Ok(v),
            },
            None => {
                let g = self.reading.lock().await;
                if let Some(v) = self.last() {
                    return Ok(v);
                }
                g
            }
        };
        self.read_holding_the_lock(store).await
    }

    async fn read_holding_the_lock(&self, store: &Store) -> Result<Arc<str>, StoreError> {
        let v: Arc<str> = store.ledger_versions().await?.data_version().into();
        if let Ok(mut last) = self.last.write() {
            *last = Some((Instant::now(), v.clone()));
        }
        Ok(v)
    }
}

/// Keeps the version and the summaries under it current until `stop` turns true.
pub async fn watch(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        state.data_changed().await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => {
                if *stop.borrow() { break; }
            }
        }
    }
}
