//! tesoro-store: persistence for the reserve's ledger, on SQLite or PostgreSQL.
//!
//! One schema, two dialects of migration files kept column for column alike
//! (`migrations/sqlite`, `migrations/postgres`), and one body of repository code over
//! sqlx's `Any` driver, so every query is written once and runs on both backends.
//!
//! Design goals: every public write is one transaction (a failure leaves nothing behind);
//! writes keyed by natural keys are idempotent; values are stored as integers (sats,
//! heights) and text, never floats; nothing here knows where blocks come from.
#![warn(missing_docs)]

mod alerts;
pub mod audit;
mod chain_index;
mod error;
pub mod holdings;
mod ledger;
mod partners;
mod policy;
mod registry;
pub mod reports;
mod specific;
mod sql;
mod statements;
pub mod sub_ledger;

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};
use tesoro_core::ChainNetwork;

pub use alerts::{AlertRow, NewAlert};
pub use audit::{audit_append, AuditEntry, AuditReport, AuditRow};
pub use chain_index::{ApplyOutcome, TxTouch, UtxoRow};
pub use error::{redact_url, StoreError};
pub use ledger::{ClassifyOutcome, ImportOutcome, LedgerVersions, RefreshOutcome};
pub use partners::{BundleFileRow, BundleImport, BundleRow, PartnerRow};
pub use policy::{PolicyCheck, PolicyImport, PolicySet};
pub use registry::{NewEntity, NewWallet, NewWalletKind, WalletAddressRow, WalletKind, WalletRow};
pub use statements::{StoredProof, StoredStatement, WalletTier};

/// Result of a store call.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// Picks the backend from a URL.
    pub fn of_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::BadUrl(redact_url(url)))
        }
    }

    /// `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// An open tesoro database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    network: ChainNetwork,
    url: String,
}

/// What `init` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    /// A new database was set up.
    Created,
    /// The database was already set up for the same network; nothing changed.
    AlreadyInitialized,
}

/// Starts a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and then writes cannot wait
/// for another writer (SQLite answers "database is locked" at once instead of using the busy
/// timeout, since the two could deadlock), and its reads could go stale before its first write.
async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
    Ok(match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => pool.begin().await?,
    })
}

async fn connect(url: &str, create_file: bool) -> Result<(AnyPool, Backend)> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of_url(url)?;
    let url_for_driver = match backend {
        // `mode=rwc` creates the file; without it a missing file is an error, which is
        // what every command but `init` wants.
        Backend::Sqlite if create_file && !url.contains("mode=") => {
            if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            }
        }
        _ => url.to_string(),
    };
    let options =
        AnyConnectOptions::from_str(&url_for_driver).map_err(|source| StoreError::Connect {
            url: redact_url(url),
            source,
        })?;
    let pool_options = AnyPoolOptions::new()
        .max_connections(match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        })
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers (the portal) run beside the sync writer; the busy
                    // timeout makes a second writer wait instead of failing at once.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                }
                Ok(())
            })
        });
    let pool = pool_options
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Connect {
            url: redact_url(url),
            source,
        })?;
    Ok((pool, backend))
}

/// `init` on a server where the database is not there yet creates it (the role needs
/// CREATEDB); an operator who created it by hand loses nothing.
async fn create_pg_database_if_missing(url: &str) -> Result<()> {
    use sqlx::migrate::MigrateDatabase;
    sqlx::any::install_default_drivers();
    let err = |source| StoreError::Connect {
        url: redact_url(url),
        source,
    };
    if !sqlx::Any::database_exists(url).await.map_err(err)? {
        sqlx::Any::create_database(url).await.map_err(err)?;
    }
    Ok(())
}

async fn migrate(pool: &AnyPool, backend: Backend, url: &str) -> Result<()> {
    let migrator = match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    migrator
        .run(pool)
        .await
        .map_err(|source| StoreError::Migrate {
            url: redact_url(url),
            source,
        })
}

async fn stored_network(pool: &AnyPool) -> Result<Option<ChainNetwork>> {
    let row = sqlx::query("SELECT value FROM meta WHERE key = 'network'")
        .fetch_optional(pool)
        .await?;
    match row {
        None => Ok(None),
        Some(row) => {
            let v: String = row.try_get("value")?;
            v.parse()
                .map(Some)
                .map_err(|_| StoreError::BadNetwork(v.clone()))
        }
    }
}

impl Store {
    /// Sets up a database for `network` (creating a SQLite file if needed) and opens it.
    /// Running it again for the same network changes nothing.
    pub async fn init(url: &str, network: ChainNetwork) -> Result<(Store, InitOutcome)> {
        if Backend::of_url(url)? == Backend::Postgres {
            create_pg_database_if_missing(url).await?;
        }
        let (pool, backend) = connect(url, true).await?;
        migrate(&pool, backend, url).await?;
        let mut tx = begin_write(&pool, backend).await?;
        let existing = sqlx::query("SELECT value FROM meta WHERE key = 'network'")
            .fetch_optional(&mut *tx)
            .await?;
        let outcome = match existing {
            Some(row) => {
                let v: String = row.try_get("value")?;
                let existing: ChainNetwork =
                    v.parse().map_err(|_| StoreError::BadNetwork(v.clone()))?;
                if existing != network {
                    return Err(StoreError::NetworkMismatch {
                        existing,
                        requested: network,
                    });
                }
                InitOutcome::AlreadyInitialized
            }
            None => {
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ('network', $1), ('created_at', $2)",
                )
                .bind(network.name())
                .bind(now_rfc3339())
                .execute(&mut *tx)
                .await?;
                InitOutcome::Created
            }
        };
        tx.commit().await?;
        Ok((
            Store {
                pool,
                backend,
                network,
                url: redact_url(url),
            },
            outcome,
        ))
    }

    /// Opens a database made by [`Store::init`], bringing its schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        let (pool, backend) = connect(url, false).await?;
        let has_meta = match backend {
            Backend::Sqlite => {
                sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
                    .fetch_optional(&pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::query("SELECT CAST(table_name AS TEXT) AS t FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'meta'")
                    .fetch_optional(&pool)
                    .await?
            }
        };
        if has_meta.is_none() {
            return Err(StoreError::NotInitialized(redact_url(url)));
        }
        migrate(&pool, backend, url).await?;
        let network = stored_network(&pool)
            .await?
            .ok_or_else(|| StoreError::NotInitialized(redact_url(url)))?;
        Ok(Store {
            pool,
            backend,
            network,
            url: redact_url(url),
        })
    }

    /// The network this database follows.
    pub fn network(&self) -> ChainNetwork {
        self.network
    }

    /// The engine underneath.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Starts a transaction that will write (see [`begin_write`]); every write transaction
    /// of the store starts here.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        begin_write(&self.pool, self.backend).await
    }

    /// The connection pool, for crates that add their own queries in this schema.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Brings the query planner's statistics up to date after a bulk write: `ANALYZE` of
    /// `tables` (every table when empty) on both backends. Right
    /// after a large first sync or ledger build autovacuum has not run yet, and PostgreSQL
    /// plans the ledger's joins as if the tables were empty (reports several times slower
    /// until it does).
    ///
    /// On SQLite a full `ANALYZE`, not `PRAGMA optimize`: that samples, and on the 1M-movement
    /// bench recorded 2,001 outputs per wallet where there are 238,042, so the planner led a
    /// height-window query with the wallet index. The full one took 0.9 s on that 700 MB file.
    pub async fn refresh_statistics(&self, tables: &[&str]) -> Result<()> {
        // Table names come from this crate, never from input.
        let statements: Vec<String> = match (self.backend, tables.is_empty()) {
            (_, true) => vec!["ANALYZE".to_string()],
            (Backend::Postgres, false) => vec![format!("ANALYZE {}", tables.join(", "))],
            // SQLite's ANALYZE takes one table at a time.
            (Backend::Sqlite, false) => tables.iter().map(|t| format!("ANALYZE {t}")).collect(),
        };
        for sql in statements {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Rows a write must touch before it refreshes the planner's statistics (a first sync,
    /// a long catch-up, a ledger build); steady small writes leave that to autovacuum.
    pub const BULK_ROWS: u64 = 1_000;

    /// Closes every connection (flushes SQLite's WAL).
    pub async fn close(self) {
        self.pool.close().await;
    }
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}
