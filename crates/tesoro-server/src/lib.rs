//! tesoro-server: the office as a service — the JSON API under `/api/v1`, the web portal,
//! users and roles, and the hash-chained audit log.
//!
//! Design goals: handlers hold no ledger logic of their own (they call tesoro-store and
//! tesoro-core; the office's changes are written once, in [`office`], and the CLI calls the
//! same functions); every 4xx/5xx answers `{"error": {"code", "message"}}`; every change
//! appends its audit row in the change's own transaction; the public summary is served
//! from memory so it stays fast under load; several instances can share one PostgreSQL database, and exactly
//! one of them runs the sync worker (a PostgreSQL advisory lock elects it).
#![warn(missing_docs)]

pub mod api;
pub mod auth;
mod error;
pub mod office;
pub mod portal;
pub mod public;
pub mod secrets;
pub mod sync_worker;
pub mod users;
pub mod version;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tesoro_store::Store;

pub use auth::{csrf_field, AdminGuard, Identity, StaffGuard};
pub use error::{ApiError, ApiResult, ServerError};
pub use sync_worker::{SyncJob, SyncReport, SyncStatus};
pub use users::{create_token, create_user, create_user_as, list_users, Role, User};

/// How to run the server.
#[derive(Clone)]
pub struct ServerConfig {
    /// Database URL (`sqlite://…` or `postgres://…`), password included.
    pub db_url: String,
    /// Address to listen on.
    pub bind: SocketAddr,
    /// The sync worker's job, if this server should follow a chain source.
    pub sync: Option<Arc<dyn SyncJob>>,
    /// Pause between sync passes.
    pub sync_poll: Duration,
    /// Mark the session cookie `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// Take the client address from `X-Forwarded-For` (behind a trusted proxy).
    pub trust_forwarded: bool,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("db_url", &tesoro_store::redact_url(&self.db_url))
            .field("bind", &self.bind)
            .field("sync", &self.sync.as_ref().map(|s| s.describe()))
            .field("sync_poll", &self.sync_poll)
            .finish()
    }
}

impl ServerConfig {
    /// A config with defaults: no sync worker, 5 s poll, plain-HTTP cookies.
    pub fn new(db_url: impl Into<String>, bind: SocketAddr) -> Self {
        ServerConfig {
            db_url: db_url.into(),
            bind,
            sync: None,
            sync_poll: Duration::from_secs(5),
            secure_cookies: false,
            trust_forwarded: false,
        }
    }
}

/// Settings handlers read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `Secure` cookies.
    pub secure_cookies: bool,
    /// Trust `X-Forwarded-For`.
    pub trust_forwarded: bool,
    /// Largest urlencoded form read for its CSRF token.
    pub max_form_bytes: usize,
    /// An argon2 hash checked when a login names an unknown user (equal timing).
    pub dummy_hash: String,
}

/// What every handler gets: the store, the public-summary cache, the sync status.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The data version the in-memory answers below are kept under.
    pub version: Arc<version::DataVersion>,
    /// Cache of public summaries.
    pub public: Arc<public::SummaryCache>,
    /// Rendered public pages.
    pub pages: Arc<portal::cache::PageCache>,
    /// What the sync worker last did (on this instance).
    pub sync: Arc<tokio::sync::RwLock<SyncStatus>>,
    /// Settings.
    pub settings: Arc<Settings>,
}

impl AppState {
    /// State over an open store, with default settings.
    pub async fn new(store: Store) -> Result<AppState, ServerError> {
        let dummy_hash = users::hash_password("not a password; equalizes login timing").await?;
        Ok(AppState {
            store,
            version: Arc::new(version::DataVersion::default()),
            public: Arc::new(public::SummaryCache::default()),
            pages: Arc::new(portal::cache::PageCache::default()),
            sync: Arc::new(tokio::sync::RwLock::new(SyncStatus::default())),
            settings: Arc::new(Settings {
                secure_cookies: false,
                trust_forwarded: false,
                max_form_bytes: 16 << 20,
                dummy_hash,
            }),
        })
    }

    /// Brings the in-memory answers to the data as it is now: reads the data version and,
    /// when it moved, computes the cached summaries again (pages are rebuilt on their next
    /// request). Changes made through this server await it, so the next request sees them;
    /// the version watcher calls it once a second for everything else.
    pub async fn data_changed(&self) {
        match self.version.read(&self.store).await {
            Ok(v) => self.public.refresh(&self.store, &v).await,
            Err(e) => tracing::warn!("cannot read the data version: {e}"),
        }
    }

    fn with_config(mut self, cfg: &ServerConfig) -> AppState {
        let s = Arc::make_mut(&mut self.settings);
        s.secure_cookies = cfg.secure_cookies;
        s.trust_forwarded = cfg.trust_forwarded;
        self
    }
}

/// The whole application: the API, the portal, and the CSRF guard in front of both.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(portal::routes())
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::csrf_guard,
        ))
        .with_state(state)
}

/// Opens the database, starts the sync worker (if configured) and serves on `cfg.bind`
/// until Ctrl-C.
pub async fn serve(cfg: ServerConfig) -> Result<(), ServerError> {
    let listener = bind(cfg.bind).await?;
    serve_bound(listener, cfg).await
}

/// Binds the listening socket (port 0 picks a free one; see `local_addr`).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServerError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// [`serve`] on a socket already bound.
pub async fn serve_bound(
    listener: tokio::net::TcpListener,
    cfg: ServerConfig,
) -> Result<(), ServerError> {
    let store = Store::open(&cfg.db_url).await?;
    serve_on(listener, store, cfg, shutdown_signal()).await
}

/// Serves on a bound listener until `shutdown` completes; what [`serve`] and the tests use.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    store: Store,
    cfg: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let state = AppState::new(store).await?.with_config(&cfg);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(version::watch(state.clone(), stop_rx.clone()));
    let worker = cfg.sync.clone().map(|job| {
        tokio::spawn(sync_worker::run(
            state.clone(),
            cfg.db_url.clone(),
            job,
            cfg.sync_poll,
            stop_rx.clone(),
        ))
    });
    let addr = listener.local_addr().map_err(ServerError::Serve)?;
    tracing::info!("serving on http://{addr}");
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServerError::Serve);
    let _ = stop_tx.send(true);
    let _ = watcher.await;
    if let Some(w) = worker {
        let _ = w.await;
    }
    result
}

async fn shutdown_signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handler: serve until killed.
        std::future::pending::<()>().await;
    }
    tracing::info!("Ctrl-C: finishing open requests, then stopping");
}
