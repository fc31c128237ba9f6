//! The demo's input files: built into the binary (so `tesoro demo` needs nothing outside
//! itself), or read from a folder with `--scenarios DIR` to try edited scenarios.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bitcoin::hashes::{sha256, Hash, HashEngine};

/// Scenario files, records and the plans they use, as committed in the repository.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "chain.toml",
        include_str!("../../../../../scenarios/chain.toml"),
    ),
    (
        "el-salvador.toml",
        include_str!("../../../../../scenarios/el-salvador.toml"),
    ),
    (
        "pakistan.toml",
        include_str!("../../../../../scenarios/pakistan.toml"),
    ),
    (
        "el-salvador-purchases.csv",
        include_str!("../../../../../scenarios/el-salvador-purchases.csv"),
    ),
    (
        "pakistan-seizures.csv",
        include_str!("../../../../../scenarios/pakistan-seizures.csv"),
    ),
];

/// Plans a scenario may name (`[mining] plan = …`), from the repository's `plans/`.
const BUILT_IN_PLANS: &[(&str, &str)] = &[(
    "pakistan-2000mw.toml",
    include_str!("../../../../../plans/pakistan-2000mw.toml"),
)];

/// USD→PKR month-end rates (approximate; see data/fx/README.md).
pub const FX_USD_PKR: (&str, &str) = (
    "data/fx/usd-pkr.csv",
    include_str!("../../../../../data/fx/usd-pkr.csv"),
);

/// Where the files come from, and a fingerprint of everything read.
pub struct Inputs {
    dir: Option<PathBuf>,
    read: Vec<(String, String)>,
}

impl Inputs {
    /// Built-in files, or those of `dir`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            read: Vec::new(),
        }
    }

    /// How files are named in messages: `scenarios/NAME` (built in) or the real path.
    pub fn display(&self, name: &str) -> String {
        match &self.dir {
            Some(d) => d.join(name).display().to_string(),
            None => format!("scenarios/{name} (built in)"),
        }
    }

    fn keep(&mut self, name: &str, text: String) -> String {
        self.read.push((name.to_string(), text.clone()));
        text
    }

    /// A scenario file by name.
    pub fn file(&mut self, name: &str) -> anyhow::Result<String> {
        if name.contains('/') || name.contains('\\') || name.starts_with('.') {
            bail!("{name:?}: scenario files are named without folders");
        }
        let text = match &self.dir {
            Some(d) => {
                let p = d.join(name);
                std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?
            }
            None => match BUILT_IN.iter().find(|(n, _)| *n == name) {
                Some((_, t)) => (*t).to_string(),
                None => bail!(
                    "{name:?} is not one of the built-in scenario files ({}); use --scenarios DIR for others",
                    BUILT_IN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            },
        };
        Ok(self.keep(name, text))
    }

    /// A plan file: from the scenarios folder when it has one of that name, else built in.
    pub fn plan(&mut self, name: &str) -> anyhow::Result<(String, String)> {
        if let Some(d) = &self.dir {
            let p = d.join(name);
            if p.exists() {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                return Ok((p.display().to_string(), self.keep(name, text)));
            }
        }
        match BUILT_IN_PLANS.iter().find(|(n, _)| *n == name) {
            Some((n, t)) => Ok((
                format!("plans/{n} (built in)"),
                self.keep(name, (*t).to_string()),
            )),
            None => bail!(
                "plan {name:?} is neither in the scenarios folder nor built in ({})",
                BUILT_IN_PLANS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// SHA-256 over the software version, every file read, the price history and the FX
    /// series: equal fingerprints mean an existing demo folder can be reused as it is.
    pub fn fingerprint(&self) -> String {
        let mut e = sha256::Hash::engine();
        let mut add = |s: &str| {
            e.input(&(s.len() as u64).to_le_bytes());
            e.input(s.as_bytes());
        };
        add(env!("CARGO_PKG_VERSION"));
        for (n, t) in &self.read {
            add(n);
            add(t);
        }
        add(FX_USD_PKR.1);
        add(tesoro_plan::history::EMBEDDED_CSV);
        sha256::Hash::from_engine(e).to_string()
    }
}

/// `path` made absolute against the current directory.
pub fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current directory")?
        .join(path))
}
