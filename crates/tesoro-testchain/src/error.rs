//! Generator errors: a bad scenario names the event and field; IO names the file.

use std::path::PathBuf;

/// What can go wrong generating a chain.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The scenario file does not parse.
    #[error("scenario: {0}")]
    Parse(String),
    /// The scenario parses but asks for something impossible.
    #[error("scenario event {event} (height {height}): {reason}")]
    Event {
        /// Position of the event in the file (0-based).
        event: usize,
        /// Its height.
        height: u32,
        /// What is wrong.
        reason: String,
    },
    /// A scenario-level setting is wrong.
    #[error("scenario: {0}")]
    Invalid(String),
    /// Key derivation or signing failed.
    #[error("keys: {0}")]
    Key(String),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias.
pub type Result<T, E = GenError> = std::result::Result<T, E>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> GenError {
    let path = path.into();
    move |source| GenError::Io { path, source }
}
