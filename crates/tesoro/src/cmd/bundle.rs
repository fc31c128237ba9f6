//! `tesoro bundle`: signed bundles of statements and plans, exchanged with partner offices.
//! The format is in docs/partners.md and tesoro_core::bundle.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tesoro_core::bundle::{export, open, sha256_hex, BundleFile, FileKind, MAX_BUNDLE_BYTES};

use crate::cmd::key::load_signing_key;
use crate::output;
use crate::Globals;

/// `tesoro bundle …`
#[derive(Debug, clap::Subcommand)]
pub enum BundleCmd {
    /// Make a bundle of statements and plan files, signed with the office key.
    Export {
        /// A statement (JSON), as `tesoro statement create` wrote it; repeat for several.
        #[arg(long)]
        statement: Vec<PathBuf>,
        /// A plan file (TOML); repeat for several.
        #[arg(long)]
        plan: Vec<PathBuf>,
        /// Where to write the bundle (never overwritten).
        #[arg(short, long)]
        out: PathBuf,
        /// The office's signing key.
        #[arg(long, default_value = "office.key")]
        key: PathBuf,
        /// Who sends it, as the manifest will say.
        #[arg(long, default_value = "tesoro office")]
        issuer: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a partner's bundle (known key, signature, every file) and store it read-only.
    Import {
        /// The bundle file.
        file: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every imported bundle.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write one file of an imported bundle out (the stored copy stays as it is).
    Extract {
        /// Bundle id (from `bundle list`).
        id: i64,
        /// File name inside the bundle.
        name: String,
        /// Where to write it (never overwritten).
        #[arg(short, long)]
        out: PathBuf,
    },
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .with_context(|| format!("{}: no usable file name", path.display()))
}

fn read_payload(path: &Path, kind: FileKind) -> anyhow::Result<BundleFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    // Catch a wrong file before it is signed and sent.
    match kind {
        FileKind::Statement => {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .with_context(|| format!("{} is not a JSON statement", path.display()))?;
        }
        FileKind::Plan => {
            let text = std::str::from_utf8(&bytes)
                .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
            toml::from_str::<toml::Table>(text)
                .with_context(|| format!("{} is not a TOML plan file", path.display()))?;
        }
    }
    Ok(BundleFile {
        name: file_name(path)?,
        kind,
        bytes,
    })
}

fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create {} (tesoro never overwrites a file; remove it or choose another name)",
                path.display()
            )
        })?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn read_bundle(path: &Path) -> anyhow::Result<Vec<u8>> {
    let f = std::fs::File::open(path)
        .with_context(|| format!("cannot read the bundle {}", path.display()))?;
    let mut bytes = Vec::new();
    // One byte past the limit tells a too-large file from one exactly at it.
    f.take(MAX_BUNDLE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the bundle {}", path.display()))?;
    Ok(bytes)
}

pub async fn run(c: BundleCmd, g: &Globals) -> anyhow::Result<()> {
    match c {
        BundleCmd::Export {
            statement,
            plan,
            out,
            key,
            issuer,
            json,
        } => {
            if statement.is_empty() && plan.is_empty() {
                anyhow::bail!("nothing to export: give --statement FILE and/or --plan FILE");
            }
            let key = load_signing_key(&key)?;
            let mut files = Vec::new();
            for p in &statement {
                files.push(read_payload(p, FileKind::Statement)?);
            }
            for p in &plan {
                files.push(read_payload(p, FileKind::Plan)?);
            }
            let created = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let (bytes, manifest) = export(&key, &issuer, &created, &files)?;
            write_new(&out, &bytes)?;
            if json {
                output::json(&serde_json::json!({
                    "file": out.display().to_string(),
                    "size": bytes.len(),
                    "sha256": sha256_hex(&bytes),
                    "manifest": manifest,
                }))?;
            } else {
                println!(
                    "{} written ({} bytes, sha256 {}), signed by {}",
                    out.display(),
                    bytes.len(),
                    sha256_hex(&bytes),
                    manifest.public_key
                );
                print_files(
                    manifest
                        .files
                        .iter()
                        .map(|f| (f.name.as_str(), f.kind.as_str(), f.size, f.sha256.as_str())),
                );
            }
        }
        BundleCmd::Import { file, json } => {
            let bytes = read_bundle(&file)?;
            let opened = open(&bytes)
                .with_context(|| format!("{} refused; nothing was stored", file.display()))?;
            let store = g.open_store().await?;
            let r = store
                .import_bundle(&opened, &sha256_hex(&bytes), bytes.len() as u64)
                .await;
            store.close().await;
            let r = r.with_context(|| format!("{} refused; nothing was stored", file.display()))?;
            if json {
                output::json(&r)?;
            } else {
                let b = &r.bundle;
                if r.created {
                    println!(
                        "bundle #{} from {} (issuer {:?}, made {}) verified and stored read-only",
                        b.id, b.partner, b.issuer, b.created_at
                    );
                } else {
                    println!(
                        "bundle #{} from {} was already imported; nothing changed",
                        b.id, b.partner
                    );
                }
                print_files(
                    b.files
                        .iter()
                        .map(|f| (f.name.as_str(), f.kind.as_str(), f.size, f.sha256.as_str())),
                );
            }
        }
        BundleCmd::List { json } => {
            let store = g.open_store().await?;
            let bs = store.bundles().await;
            store.close().await;
            let bs = bs?;
            if json {
                output::json(&bs)?;
            } else {
                let rows = bs
                    .iter()
                    .map(|b| {
                        vec![
                            b.id.to_string(),
                            b.partner.clone(),
                            b.issuer.clone(),
                            b.created_at.clone(),
                            b.imported_at.clone(),
                            b.files
                                .iter()
                                .map(|f| f.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            b.sha256[..16].to_string(),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    output::table(
                        &["#", "partner", "issuer", "made", "imported", "files", "sha256"],
                        rows,
                        &[0]
                    )
                );
            }
        }
        BundleCmd::Extract { id, name, out } => {
            let store = g.open_store().await?;
            let bytes = store.bundle_file(id, &name).await;
            store.close().await;
            let bytes = bytes?;
            write_new(&out, &bytes)?;
            println!("{} written ({} bytes)", out.display(), bytes.len());
        }
    }
    Ok(())
}

fn print_files<'a>(files: impl Iterator<Item = (&'a str, &'a str, u64, &'a str)>) {
    let rows = files
        .map(|(n, k, s, h)| vec![n.to_string(), k.to_string(), s.to_string(), h.to_string()])
        .collect();
    println!(
        "{}",
        output::table(&["file", "kind", "bytes", "sha256"], rows, &[2])
    );
}
