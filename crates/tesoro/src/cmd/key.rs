//! `tesoro key`: the office's Ed25519 signing key for statements and bundles.
//!
//! The key lives in a file readable by its owner only, never in the database. (It signs
//! statements; it is not a Bitcoin key and controls no coins.)

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore;

use crate::config::write_private_new;
use crate::output;

/// `tesoro key …`
#[derive(Debug, clap::Subcommand)]
pub enum KeyCmd {
    /// Generate the office's signing key: FILE (private, mode 0600) and FILE.pub.
    Generate {
        /// Where to write the private key.
        #[arg(long, default_value = "office.key")]
        out: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the public key of a key file (private or public).
    Show {
        /// Key file.
        #[arg(default_value = "office.key")]
        file: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn pub_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Reads a PKCS#8 PEM private key.
pub fn load_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the signing key {} (make one with `tesoro key generate`)",
            path.display()
        )
    })?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not an Ed25519 private key in PKCS#8 PEM: {e}",
            path.display()
        )
    })
}

/// Reads a public key: SPKI PEM, or 64 hex digits.
pub fn load_verifying_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the public key {}", path.display()))?;
    let t = text.trim();
    if let Ok(k) = VerifyingKey::from_public_key_pem(t) {
        return Ok(k);
    }
    let bytes: Vec<u8> = bitcoin::hex::FromHex::from_hex(t).map_err(|_| {
        anyhow::anyhow!(
            "{} is neither a PEM Ed25519 public key nor 64 hex digits",
            path.display()
        )
    })?;
    let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        anyhow::anyhow!(
            "{}: a public key has 32 bytes, not {}",
            path.display(),
            bytes.len()
        )
    })?;
    VerifyingKey::from_bytes(&arr)
        .map_err(|_| anyhow::anyhow!("{}: not an Ed25519 public key", path.display()))
}

pub fn public_hex(k: &VerifyingKey) -> String {
    bitcoin::hex::DisplayHex::to_lower_hex_string(&k.as_bytes()[..])
}

pub fn run(cmd: KeyCmd) -> anyhow::Result<()> {
    match cmd {
        KeyCmd::Generate { out, json } => {
            let pubp = pub_path(&out);
            if out.exists() || pubp.exists() {
                bail!(
                    "{} or {} already exists: tesoro never overwrites a key",
                    out.display(),
                    pubp.display()
                );
            }
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let key = SigningKey::from_bytes(&seed);
            seed.fill(0);
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| anyhow::anyhow!("cannot encode the key: {e}"))?;
            write_private_new(&out, pem.as_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?;
            let public = key
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| anyhow::anyhow!("cannot encode the public key: {e}"))?;
            std::fs::write(&pubp, public.as_bytes())
                .with_context(|| format!("cannot write {}", pubp.display()))?;
            let hex = public_hex(&key.verifying_key());
            if json {
                output::json(&serde_json::json!({
                    "private_key_file": out.display().to_string(),
                    "public_key_file": pubp.display().to_string(),
                    "public_key": hex,
                }))?;
            } else {
                println!(
                    "signing key written to {} (mode 0600; keep it offline and backed up)\npublic key {} in {}",
                    out.display(),
                    hex,
                    pubp.display()
                );
            }
        }
        KeyCmd::Show { file, json } => {
            let key = match load_signing_key(&file) {
                Ok(k) => k.verifying_key(),
                Err(_) => load_verifying_key(&file)?,
            };
            let hex = public_hex(&key);
            if json {
                output::json(&serde_json::json!({ "public_key": hex }))?;
            } else {
                println!("{hex}");
            }
        }
    }
    Ok(())
}
