//! `tesoro.toml`: which database to open and which network it follows.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// The config file's name in the working directory.
pub const DEFAULT_CONFIG: &str = "tesoro.toml";
/// The SQLite file `init` creates beside the config.
pub const DEFAULT_DB_FILE: &str = "tesoro.db";

/// The config file's contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Network the database follows (informational; the database itself is authoritative).
    pub network: String,
    /// Database settings.
    pub database: DatabaseConfig,
}

/// `[database]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://tesoro.db` (relative to the config file) or `postgres://…`.
    pub url: String,
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read {} (run `tesoro init --network NETWORK` to create it, or pass --config/--db)",
                path.display()
            )
        })?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))
    }

    /// Writes the config file; readable by the owner only, since a PostgreSQL URL may hold
    /// a password.
    pub fn save_new(&self, path: &Path) -> anyhow::Result<()> {
        let text = format!(
            "# tesoro configuration, written by `tesoro init`.\n\
             # database.url: sqlite://FILE (relative to this file) or postgres://USER:PASSWORD@HOST/DB.\n\
             # TESORO_DB or --db override it.\n{}",
            toml::to_string_pretty(self)?
        );
        write_private_new(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Creates `path` with mode 0600; fails if it exists.
pub fn write_private_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Where the database is, after flags, environment and config are weighed.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Database URL with SQLite paths made absolute.
    pub url: String,
}

/// Makes a `sqlite://relative` URL absolute against the config file's folder.
pub fn absolutize_sqlite(url: &str, base: &Path) -> String {
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return url.to_string();
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" || Path::new(path).is_absolute() {
        return url.to_string();
    }
    let abs: PathBuf = base.join(path);
    match query {
        Some(q) => format!("sqlite://{}?{q}", abs.display()),
        None => format!("sqlite://{}", abs.display()),
    }
}

/// Picks the database: `--db`/`TESORO_DB` first, else the config file.
pub fn resolve(db: Option<&str>, config_path: &Path) -> anyhow::Result<Resolved> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    if let Some(url) = db {
        return Ok(Resolved {
            url: absolutize_sqlite(url, &cwd),
        });
    }
    if !config_path.exists() {
        bail!(
            "no {} here and no --db given: run `tesoro init --network NETWORK` first, or pass --config FILE / --db URL",
            config_path.display()
        );
    }
    let cfg = Config::load(config_path)?;
    let base = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or(cwd);
    Ok(Resolved {
        url: absolutize_sqlite(&cfg.database.url, &base),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_made_absolute() {
        let base = Path::new("/srv/reserve");
        assert_eq!(
            absolutize_sqlite("sqlite://tesoro.db", base),
            "sqlite:///srv/reserve/tesoro.db"
        );
        assert_eq!(
            absolutize_sqlite("sqlite:///abs/x.db?mode=ro", base),
            "sqlite:///abs/x.db?mode=ro"
        );
        assert_eq!(
            absolutize_sqlite("postgres://u:p@h/db", base),
            "postgres://u:p@h/db"
        );
    }
}
