//! Partner bundles: statements and plan files exchanged between states, signed by the office
//! that sends them.
//!
//! A bundle is a plain POSIX ustar archive (so a partner can open it with `tar tf` and check
//! it with standard tools), holding, in this order and nothing else:
//!
//! 1. `manifest.json`: [`Manifest`] as JSON: format, creation time, the signer's Ed25519
//!    public key, and every file's name, kind, size and SHA-256;
//! 2. `manifest.sig`: the Ed25519 signature of the exact bytes of `manifest.json`, as 128
//!    lowercase hex digits and a newline;
//! 3. `files/NAME` for each file of the manifest, in manifest order.
//!
//! Entries are regular files, mode 0644, uid/gid 0, mtime 0; the archive ends with the two
//! zero blocks of the tar trailer. Reading is strict: any other entry, order, type, name or
//! size, a missing trailer or bytes after it is an error, so a bundle is either exactly what
//! its signer made or refused. Nothing here touches files: bytes in, bytes out.

use std::io::Read;

use bitcoin::hashes::{sha256, Hash};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The format name in every manifest.
pub const FORMAT: &str = "tesoro-bundle/1";
/// Name of the manifest entry.
pub const MANIFEST_NAME: &str = "manifest.json";
/// Name of the signature entry.
pub const SIGNATURE_NAME: &str = "manifest.sig";
/// Folder of the payload entries.
pub const FILES_DIR: &str = "files/";
/// Largest bundle accepted (a statement of 10,000 addresses is a few MB).
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024 * 1024;
/// Longest file name (ustar names hold 100 bytes, `files/` included).
pub const MAX_NAME_LEN: usize = 94;

/// What a file in a bundle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    /// A signed statement of holdings (JSON).
    Statement,
    /// A mining or accumulation plan (TOML): a playbook.
    Plan,
}

impl FileKind {
    /// The name used in manifests and output.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Statement => "statement",
            FileKind::Plan => "plan",
        }
    }
}

/// One file listed in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// File name (no folders): letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// What it is.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
}

/// The signed table of contents of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// When it was made (RFC 3339, UTC).
    pub created_at: String,
    /// Who made it, as the signer wrote it (e.g. "El Salvador, ONBTC").
    pub issuer: String,
    /// The signer's Ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// The files, in archive order.
    pub files: Vec<ManifestFile>,
}

/// A file to put in a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// File name (no folders).
    pub name: String,
    /// What it is.
    pub kind: FileKind,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Why a bundle cannot be made or is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Bigger than [`MAX_BUNDLE_BYTES`].
    #[error("the bundle has {0} bytes, more than the {MAX_BUNDLE_BYTES} accepted")]
    TooLarge(usize),
    /// Ends before the tar trailer, or mid-entry.
    #[error("the bundle is truncated ({0}): ask the sender for the whole file")]
    Truncated(String),
    /// Not a tar archive of the expected layout.
    #[error("not a tesoro bundle: {0}")]
    Layout(String),
    /// No `manifest.sig` entry.
    #[error("the bundle is not signed (no manifest.sig): tesoro accepts only signed bundles")]
    Unsigned,
    /// The manifest does not parse or says something impossible.
    #[error("manifest.json: {0}")]
    Manifest(String),
    /// `manifest.sig` is not 64 bytes of hex.
    #[error("manifest.sig is not an Ed25519 signature in hex: {0}")]
    SignatureEncoding(String),
    /// The signature does not match the manifest and key.
    #[error("the signature does not match manifest.json and the key {0}: the bundle was altered or signed by another key")]
    BadSignature(String),
    /// A file's bytes differ from the manifest.
    #[error("files/{name}: {what} is {found}, the signed manifest says {expected}: the bundle was altered")]
    FileMismatch {
        /// File name.
        name: String,
        /// `size` or `SHA-256`.
        what: &'static str,
        /// From the manifest.
        expected: String,
        /// From the archive.
        found: String,
    },
    /// A file to export has a name tesoro refuses.
    #[error("file name {0:?}: use 1 to {MAX_NAME_LEN} letters, digits, '.', '_' or '-', not starting with '.'")]
    BadName(String),
    /// Two files with one name.
    #[error("two files are named {0:?}: rename one")]
    DuplicateName(String),
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    bitcoin::hex::DisplayHex::to_lower_hex_string(&sha256::Hash::hash(bytes).as_byte_array()[..])
}

/// A key as 64 lowercase hex digits.
pub fn key_hex(k: &VerifyingKey) -> String {
    bitcoin::hex::DisplayHex::to_lower_hex_string(&k.as_bytes()[..])
}

/// Whether `name` may be a bundle file name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn header(path: &str, size: usize) -> Result<tar::Header, BundleError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)
        .map_err(|e| BundleError::Layout(format!("{path}: {e}")))?;
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

/// Makes a signed bundle. Returns the archive bytes and the manifest in it.
pub fn export(
    key: &SigningKey,
    issuer: &str,
    created_at: &str,
    files: &[BundleFile],
) -> Result<(Vec<u8>, Manifest), BundleError> {
    let mut seen = std::collections::BTreeSet::new();
    for f in files {
        if !valid_name(&f.name) {
            return Err(BundleError::BadName(f.name.clone()));
        }
        if !seen.insert(f.name.as_str()) {
            return Err(BundleError::DuplicateName(f.name.clone()));
        }
    }
    let manifest = Manifest {
        format: FORMAT.to_string(),
        created_at: created_at.to_string(),
        issuer: issuer.to_string(),
        public_key: key_hex(&key.verifying_key()),
        files: files
            .iter()
            .map(|f| ManifestFile {
                name: f.name.clone(),
                kind: f.kind,
                size: f.bytes.len() as u64,
                sha256: sha256_hex(&f.bytes),
            })
            .collect(),
    };
    let mut manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| BundleError::Manifest(e.to_string()))?;
    manifest_bytes.push(b'\n');
    let sig = key.sign(&manifest_bytes);
    let sig_text = format!(
        "{}\n",
        bitcoin::hex::DisplayHex::to_lower_hex_string(&sig.to_bytes()[..])
    );
    let mut b = tar::Builder::new(Vec::new());
    let io = |e: std::io::Error| BundleError::Layout(e.to_string());
    let mut append = |path: &str, bytes: &[u8]| -> Result<(), BundleError> {
        let h = header(path, bytes.len())?;
        b.append(&h, bytes).map_err(io)
    };
    append(MANIFEST_NAME, &manifest_bytes)?;
    append(SIGNATURE_NAME, sig_text.as_bytes())?;
    for f in files {
        append(&format!("{FILES_DIR}{}", f.name), &f.bytes)?;
    }
    let out = b.into_inner().map_err(io)?;
    Ok((out, manifest))
}

/// A bundle read and checked for layout, not yet for its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The exact bytes of `manifest.json` (what the signature covers).
    pub manifest_bytes: Vec<u8>,
    /// The manifest.
    pub manifest: Manifest,
    /// The signer's key as the manifest names it.
    pub public_key: VerifyingKey,
    /// The signature.
    pub signature: Signature,
    /// The files, in manifest order.
    pub files: Vec<BundleFile>,
}

fn parse_manifest(bytes: &[u8]) -> Result<(Manifest, VerifyingKey), BundleError> {
    let m: Manifest =
        serde_json::from_slice(bytes).map_err(|e| BundleError::Manifest(e.to_string()))?;
    if m.format != FORMAT {
        return Err(BundleError::Manifest(format!(
            "format {:?} is not {FORMAT:?} (a newer tesoro made it?)",
            m.format
        )));
    }
    let raw: Vec<u8> = bitcoin::hex::FromHex::from_hex(&m.public_key).map_err(|_| {
        BundleError::Manifest(format!(
            "public_key {:?} is not 64 hex digits",
            m.public_key
        ))
    })?;
    let arr: [u8; 32] = raw.as_slice().try_into().map_err(|_| {
        BundleError::Manifest(format!(
            "public_key has {} bytes, an Ed25519 key has 32",
            raw.len()
        ))
    })?;
    let key = VerifyingKey::from_bytes(&arr)
        .map_err(|_| BundleError::Manifest("public_key is not an Ed25519 key".into()))?;
    let mut seen = std::collections::BTreeSet::new();
    for f in &m.files {
        if !valid_name(&f.name) {
            return Err(BundleError::Manifest(format!(
                "file name {:?} is not allowed",
                f.name
            )));
        }
        if !seen.insert(f.name.as_str()) {
            return Err(BundleError::Manifest(format!(
                "file {:?} is listed twice",
                f.name
            )));
        }
        if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BundleError::Manifest(format!(
                "file {:?}: sha256 {:?} is not 64 hex digits",
                f.name, f.sha256
            )));
        }
    }
    Ok((m, key))
}

fn parse_signature(bytes: &[u8]) -> Result<Signature, BundleError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| BundleError::SignatureEncoding("not text".into()))?;
    // Written as the hex and one newline; that is the only spelling read.
    let text = text.strip_suffix('\n').unwrap_or(text);
    let arr: [u8; 64] = crate::canonical::lower_hex(text)
        .map_err(|why| BundleError::SignatureEncoding(format!("the signature {why}")))?;
    Ok(Signature::from_bytes(&arr))
}

/// Reads a bundle's layout strictly: manifest, signature, then exactly the manifest's files,
/// each with the size and SHA-256 the manifest gives, then the tar trailer and nothing after.
/// The signature is parsed but not checked: see [`Opened::verify`].
pub fn open(bytes: &[u8]) -> Result<Opened, BundleError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge(bytes.len()));
    }
    if bytes.is_empty() {
        return Err(BundleError::Truncated("the file is empty".into()));
    }
    if !bytes.len().is_multiple_of(512) {
        return Err(BundleError::Truncated(format!(
            "{} bytes is not a whole number of 512-byte tar blocks",
            bytes.len()
        )));
    }
    let mut archive = tar::Archive::new(bytes);
    let entries = archive
        .entries()
        .map_err(|e| BundleError::Layout(e.to_string()))?;
    let mut manifest: Option<(Vec<u8>, Manifest, VerifyingKey)> = None;
    let mut signature: Option<Signature> = None;
    let mut files: Vec<BundleFile> = Vec::new();
    let mut end: u64 = 0;
    for (i, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| truncated_or_layout(&e))?;
        let header = entry.header();
        if header.entry_type() != tar::EntryType::Regular {
            return Err(BundleError::Layout(format!(
                "entry {} is not a regular file",
                i + 1
            )));
        }
        let path = entry
            .path_bytes()
            .into_owned()
            .into_iter()
            .map(char::from)
            .collect::<String>();
        let size = entry.size();
        if size > bytes.len() as u64 {
            return Err(BundleError::Truncated(format!(
                "entry {path:?} claims {size} bytes"
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| truncated_or_layout(&e))?;
        if data.len() as u64 != size {
            return Err(BundleError::Truncated(format!(
                "entry {path:?} has {} of {size} bytes",
                data.len()
            )));
        }
        end = entry.raw_file_position() + size.div_ceil(512) * 512;
        match i {
            0 => {
                if path != MANIFEST_NAME {
                    return Err(BundleError::Layout(format!(
                        "the first entry is {path:?}, not {MANIFEST_NAME}"
                    )));
                }
                let (m, k) = parse_manifest(&data)?;
                manifest = Some((data, m, k));
            }
            1 => {
                if path != SIGNATURE_NAME {
                    return Err(BundleError::Unsigned);
                }
                signature = Some(parse_signature(&data)?);
            }
            _ => {
                let Some((_, m, _)) = &manifest else {
                    return Err(BundleError::Layout("no manifest".into()));
                };
                let k = i - 2;
                let Some(want) = m.files.get(k) else {
                    return Err(BundleError::Layout(format!(
                        "entry {path:?} is not in the manifest"
                    )));
                };
                if path != format!("{FILES_DIR}{}", want.name) {
                    return Err(BundleError::Layout(format!(
                        "entry {} is {path:?}, the manifest lists files/{} there",
                        i + 1,
                        want.name
                    )));
                }
                if size != want.size {
                    return Err(BundleError::FileMismatch {
                        name: want.name.clone(),
                        what: "size",
                        expected: want.size.to_string(),
                        found: size.to_string(),
                    });
                }
                let found = sha256_hex(&data);
                if !found.eq_ignore_ascii_case(&want.sha256) {
                    return Err(BundleError::FileMismatch {
                        name: want.name.clone(),
                        what: "SHA-256",
                        expected: want.sha256.clone(),
                        found,
                    });
                }
                files.push(BundleFile {
                    name: want.name.clone(),
                    kind: want.kind,
                    bytes: data,
                });
            }
        }
    }
    // The trailer first (a cut archive is truncated, not unsigned): at least two zero blocks,
    // and nothing but zeros after the last entry.
    let tail = usize::try_from(end)
        .ok()
        .and_then(|e| bytes.get(e..))
        .unwrap_or(&[]);
    if tail.len() < 1024 {
        return Err(BundleError::Truncated("the tar trailer is missing".into()));
    }
    if tail.iter().any(|b| *b != 0) {
        return Err(BundleError::Layout(
            "bytes follow the last entry of the archive".into(),
        ));
    }
    let Some((manifest_bytes, manifest, public_key)) = manifest else {
        return Err(BundleError::Layout(format!("no {MANIFEST_NAME} entry")));
    };
    let Some(signature) = signature else {
        return Err(BundleError::Unsigned);
    };
    if let Some(missing) = manifest.files.get(files.len()) {
        return Err(BundleError::Truncated(format!(
            "files/{} listed in the manifest is missing",
            missing.name
        )));
    }
    Ok(Opened {
        manifest_bytes,
        manifest,
        public_key,
        signature,
        files,
    })
}

fn truncated_or_layout(e: &std::io::Error) -> BundleError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        BundleError::Truncated(e.to_string())
    } else {
        BundleError::Layout(e.to_string())
    }
}

impl Opened {
    /// Checks the signature over `manifest.json` with the key the manifest names (strict
    /// Ed25519: no small-order keys, no malleable signatures). The caller decides whether
    /// that key is one it trusts.
    pub fn verify(&self) -> Result<(), BundleError> {
        self.public_key
            .verify_strict(&self.manifest_bytes, &self.signature)
            .map_err(|_| BundleError::BadSignature(self.manifest.public_key.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn sample() -> Vec<BundleFile> {
        vec![
            BundleFile {
                name: "statement.json".into(),
                kind: FileKind::Statement,
                bytes: br#"{"height":905000}"#.to_vec(),
            },
            BundleFile {
                name: "mining-2000mw.toml".into(),
                kind: FileKind::Plan,
                bytes: b"mw = 2000\n".to_vec(),
            },
        ]
    }

    fn made() -> Vec<u8> {
        export(&key(1), "El Salvador", "2025-07-15T00:00:00Z", &sample())
            .unwrap()
            .0
    }

    #[test]
    fn round_trip() {
        let b = made();
        let o = open(&b).unwrap();
        o.verify().unwrap();
        assert_eq!(o.files, sample());
        assert_eq!(o.manifest.public_key, key_hex(&key(1).verifying_key()));
        assert_eq!(o.manifest.files[1].size, 10);
    }

    #[test]
    fn altered_bytes_are_refused() {
        let b = made();
        let o = open(&b).unwrap();
        // Change one byte of the plan file's contents: the hash check catches it.
        let pos = b.windows(9).position(|w| w == b"mw = 2000").unwrap();
        let mut bad = b.clone();
        bad[pos + 5] = b'9';
        assert!(matches!(
            open(&bad),
            Err(BundleError::FileMismatch {
                what: "SHA-256",
                ..
            })
        ));
        // Change the manifest (and nothing else): the signature check catches it.
        let m = b.windows(11).position(|w| w == b"El Salvador").unwrap();
        let mut forged = b.clone();
        forged[m] = b'e';
        // The tar header checksum does not cover contents, so the layout still reads.
        let f = open(&forged).unwrap();
        assert!(matches!(f.verify(), Err(BundleError::BadSignature(_))));
        assert_eq!(o.verify(), Ok(()));
    }

    #[test]
    fn unsigned_and_truncated() {
        // A bundle without manifest.sig.
        let (m, _) = export(&key(1), "x", "t", &[]).unwrap();
        let mut a = tar::Archive::new(&m[..]);
        let first = {
            let mut e = a.entries().unwrap().next().unwrap().unwrap();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            v
        };
        let mut b = tar::Builder::new(Vec::new());
        b.append(&header(MANIFEST_NAME, first.len()).unwrap(), &first[..])
            .unwrap();
        let unsigned = b.into_inner().unwrap();
        assert_eq!(open(&unsigned), Err(BundleError::Unsigned));
        let full = made();
        for cut in [0, 100, 512, 1024, 1536, full.len() - 1024, full.len() - 512] {
            let e = open(&full[..cut]).unwrap_err();
            assert!(
                matches!(e, BundleError::Truncated(_) | BundleError::Layout(_)),
                "{cut}: {e}"
            );
        }
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "../x", "a/b", ".hidden", &"x".repeat(95)] {
            let f = BundleFile {
                name: bad.into(),
                kind: FileKind::Plan,
                bytes: vec![],
            };
            assert!(export(&key(1), "x", "t", &[f]).is_err(), "{bad:?}");
        }
        let mut twice = sample();
        twice[1].name = "statement.json".into();
        assert!(matches!(
            export(&key(1), "x", "t", &twice),
            Err(BundleError::DuplicateName(_))
        ));
    }

    #[test]
    fn the_signature_has_one_spelling() {
        let good = made();
        let o = open(&good).unwrap();
        let hex = bitcoin::hex::DisplayHex::to_lower_hex_string(&o.signature.to_bytes()[..]);
        let at = good
            .windows(hex.len())
            .position(|w| w == hex.as_bytes())
            .unwrap();
        let mut upper = good.clone();
        upper[at..at + hex.len()].copy_from_slice(hex.to_uppercase().as_bytes());
        assert!(hex.bytes().any(|b| b.is_ascii_alphabetic()));
        let err = open(&upper).unwrap_err();
        assert_eq!(
            err.to_string(),
            "manifest.sig is not an Ed25519 signature in hex: the signature is not lowercase hex (0-9, a-f)"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Truncations, flipped bytes and garbage give an error or (when a flip hits padding
        /// or a header field tar ignores) a bundle whose files and signature still check:
        /// never a panic, never a bundle with other contents.
        #[test]
        fn damaged_bundles_never_panic(cut in 0usize..4096, flip in 0usize..4096, byte in 0u8..=255, junk in proptest::collection::vec(0u8..=255, 0..2048)) {
            let good = made();
            let _ = open(&junk);
            let cut = cut.min(good.len());
            if let Ok(o) = open(&good[..cut]) {
                proptest::prop_assert_eq!(cut, good.len());
                proptest::prop_assert!(o.verify().is_ok());
            }
            let mut bad = good.clone();
            let i = flip % bad.len();
            bad[i] ^= byte.max(1);
            if let Ok(o) = open(&bad) {
                if o.verify().is_ok() {
                    proptest::prop_assert_eq!(o.files, sample());
                }
            }
        }
    }
}
