//! The sync worker: follows a chain source's tip and refreshes the ledger, on exactly one
//! instance.
//!
//! On SQLite there is one server, and it syncs. On PostgreSQL several instances may share
//! the database; each tries `pg_try_advisory_lock` on a dedicated connection, and only the
//! one holding it syncs. The lock belongs to that connection's session, so when the leader
//! dies (or its connection drops) PostgreSQL frees it and another instance takes over on its
//! next try. The leader checks its connection before every pass and steps down if it broke.
//!
//! How to sync is not this crate's business: the caller hands in a [`SyncJob`] (the CLI's
//! `--sync-source core-dir:PATH|rpc:URL`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::{AnyConnection, Connection, Row};
use tesoro_store::{Backend, Store};

use crate::AppState;

/// The advisory lock key the sync leader holds (arbitrary, fixed: "tesoro" + 1).
pub const SYNC_LOCK_KEY: i64 = 0x7465_736f_726f_0001;

/// What one sync pass did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SyncReport {
    /// Stored tip afterwards.
    pub tip_height: Option<u32>,
    /// Its hash.
    pub tip_hash: Option<String>,
    /// Blocks scanned in this pass.
    pub blocks_scanned: u64,
}

/// A future a [`SyncJob`] returns.
pub type SyncFuture<'a> = Pin<Box<dyn Future<Output = Result<SyncReport, String>> + Send + 'a>>;

/// One sync pass against some source: bring the chain index to the source's tip and refresh
/// the ledger. Errors are text for the status page and the log; the worker tries again.
pub trait SyncJob: Send + Sync + 'static {
    /// Runs one pass.
    fn run_once<'a>(&'a self, store: &'a Store) -> SyncFuture<'a>;
    /// The source, for the status page (`core-dir:/srv/blocks`).
    fn describe(&self) -> String;
}

/// The sync worker's state on this instance, for `GET /api/v1/sync`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SyncStatus {
    /// A worker is configured here.
    pub configured: bool,
    /// This instance holds the sync lock and syncs.
    pub leader: bool,
    /// The source.
    pub source: Option<String>,
    /// The last pass (RFC 3339).
    pub last_run: Option<String>,
    /// What it did.
    pub last_report: Option<SyncReport>,
    /// Its error, if it failed.
    pub last_error: Option<String>,
    /// Passes run on this instance.
    pub passes: u64,
}

/// Holds (or tries to take) the PostgreSQL advisory lock on its own connection.
struct Leadership {
    url: String,
    conn: Option<AnyConnection>,
}

impl Leadership {
    /// True when this instance holds the lock after the call.
    async fn hold(&mut self) -> bool {
        if let Some(conn) = self.conn.as_mut() {
            if sqlx::query("SELECT CAST(1 AS BIGINT) AS one")
                .fetch_one(&mut *conn)
                .await
                .is_ok()
            {
                return true;
            }
            tracing::warn!("the sync lock's connection broke: stepping down");
            self.conn = None;
            return false;
        }
        let mut conn = match AnyConnection::connect(&self.url).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("sync lock: cannot connect: {e}");
                return false;
            }
        };
        let got = sqlx::query(
            "SELECT CAST(CASE WHEN pg_try_advisory_lock($1) THEN 1 ELSE 0 END AS BIGINT) AS got",
        )
        .bind(SYNC_LOCK_KEY)
        .fetch_one(&mut conn)
        .await
        .and_then(|r| r.try_get::<i64, _>("got"));
        match got {
            Ok(1) => {
                tracing::info!("this instance holds the sync lock: it runs the sync worker");
                self.conn = Some(conn);
                true
            }
            Ok(_) => {
                let _ = conn.close().await;
                false
            }
            Err(e) => {
                tracing::warn!("sync lock: {e}");
                false
            }
        }
    }
}

/// Runs the worker until `stop` turns true.
pub async fn run(
    state: AppState,
    db_url: String,
    job: Arc<dyn SyncJob>,
    poll: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    {
        let mut s = state.sync.write().await;
        s.configured = true;
        s.source = Some(job.describe());
    }
    let mut leadership = (state.store.backend() == Backend::Postgres).then(|| Leadership {
        url: db_url,
        conn: None,
    });
    loop {
        if *stop.borrow() {
            break;
        }
        let leader = match leadership.as_mut() {
            Some(l) => l.hold().await,
            None => true,
        };
        state.sync.write().await.leader = leader;
        if leader {
            let result = job.run_once(&state.store).await;
            let mut s = state.sync.write().await;
            s.passes += 1;
            s.last_run = Some(crate::secrets::now_rfc3339());
            match result {
                Ok(report) => {
                    s.last_error = None;
                    s.last_report = Some(report);
                }
                Err(e) => {
                    tracing::warn!("sync pass failed: {e}");
                    s.last_error = Some(e);
                }
            }
            drop(s);
            // Figures changed: the next public request rebuilds its summary.
            state.data_changed().await;
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
    if let Some(Leadership {
        conn: Some(conn), ..
    }) = leadership
    {
        let _ = conn.close().await;
    }
}
