//! Errors: every one names the file, line or field at fault and says what to do.

use std::path::PathBuf;
use time::Date;

/// Everything that can go wrong while reading history or plans, or running a model.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A history CSV is malformed.
    #[error("{source_name}, line {line}: {message}")]
    History {
        /// File name (or "embedded history").
        source_name: String,
        /// 1-based line number (the header is line 1).
        line: u64,
        /// What is wrong and what to do.
        message: String,
    },
    /// A plan file is not valid TOML or does not match the schema.
    #[error("{file}: {message}")]
    PlanSyntax {
        /// The plan file.
        file: String,
        /// The TOML parser's message (with line and column).
        message: String,
    },
    /// A field of a plan file has an impossible value.
    #[error("{file}: field `{field}`: {message}")]
    Field {
        /// The plan file.
        file: String,
        /// Dotted path of the field, e.g. `fleet[0].efficiency_j_per_th`.
        field: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// A date lies outside the history that is loaded.
    #[error("{field}: {date} is outside the price history ({first} … {last}); choose a date in that range or pass --history with a longer file")]
    DateOutsideData {
        /// Which date (a CLI option or plan field).
        field: String,
        /// The date asked for.
        date: Date,
        /// First day with data.
        first: Date,
        /// Last day with data.
        last: Date,
    },
    /// A day inside the requested range has no data (e.g. 2025-12-30 in the Coin Metrics file).
    #[error("no price/hashrate data for {date} (needed by {field}); end the range before it or supply a history file that has it")]
    MissingDay {
        /// Which range needed it.
        field: String,
        /// The day without data.
        date: Date,
    },
    /// A run option is invalid (paths, years, seed, block length …).
    #[error("option `{option}`: {message}")]
    Option {
        /// The option.
        option: String,
        /// What is wrong.
        message: String,
    },
    /// Writing a chart failed.
    #[error("cannot draw chart {path}: {message}")]
    Chart {
        /// The output file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = PlanError> = std::result::Result<T, E>;

pub(crate) fn field_err(
    file: &str,
    field: impl Into<String>,
    message: impl Into<String>,
) -> PlanError {
    PlanError::Field {
        file: file.to_string(),
        field: field.into(),
        message: message.into(),
    }
}

pub(crate) fn option_err(option: &str, message: impl Into<String>) -> PlanError {
    PlanError::Option {
        option: option.to_string(),
        message: message.into(),
    }
}
