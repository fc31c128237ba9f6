//! What can go wrong in the store, said so that an operator knows what to do.

use tesoro_core::ChainNetwork;

/// A store failure. Database URLs in messages never carry passwords.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite:` nor `postgres:`.
    #[error("database URL {0:?} is not supported: use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB")]
    BadUrl(String),
    /// Could not connect or open the file.
    #[error("cannot open database {url}: {source}")]
    Connect {
        /// URL with the password hidden.
        url: String,
        /// Driver error.
        source: sqlx::Error,
    },
    /// Applying migrations failed.
    #[error("cannot bring the schema of {url} up to date: {source}")]
    Migrate {
        /// URL with the password hidden.
        url: String,
        /// Migration error.
        source: sqlx::migrate::MigrateError,
    },
    /// The database has no tesoro schema yet.
    #[error("{0} is not a tesoro database yet: run `tesoro init --network NETWORK` first")]
    NotInitialized(String),
    /// `init` on a database that follows another network.
    #[error(
        "the database follows {existing}, not {requested}: use a new database for {requested}"
    )]
    NetworkMismatch {
        /// Network stored in the database.
        existing: ChainNetwork,
        /// Network asked for.
        requested: ChainNetwork,
    },
    /// The stored network name is unknown (hand-edited database?).
    #[error("the database's network {0:?} is not one tesoro knows")]
    BadNetwork(String),
    /// A unique name or script is taken.
    #[error("{0}")]
    Duplicate(String),
    /// A write that contradicts what is stored (a fork not yet undone, a double spend).
    #[error("{0}")]
    Conflict(String),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A reference matches several things.
    #[error("{0}")]
    Ambiguous(String),
    /// Input that cannot be stored (a policy file with a bad rule, a bundle refused).
    #[error("{0}")]
    Invalid(String),
    /// Stored data that does not parse back (a bug or a hand-edited database).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((creds, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match creds.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_hidden() {
        assert_eq!(
            super::redact_url("postgres://tesoro:s3cret@127.0.0.1:5432/tesoro"),
            "postgres://tesoro:***@127.0.0.1:5432/tesoro"
        );
        assert_eq!(
            super::redact_url("sqlite://tesoro.db"),
            "sqlite://tesoro.db"
        );
    }
}
