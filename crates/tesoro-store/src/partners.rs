//! Partner offices and the bundles they sent.
//!
//! A partner is a name and an Ed25519 public key. A bundle is stored only when its manifest
//! is signed by a partner's key and every file matches the manifest, all checked before the
//! one transaction that writes it; once stored it is read-only (no method here changes or
//! deletes one, and database triggers refuse UPDATE and DELETE on its rows).

use serde::Serialize;
use sqlx::Row;
use tesoro_core::bundle::Opened;

use crate::error::is_unique_violation;
use crate::{now_rfc3339, Result, Store, StoreError};

/// A partner office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartnerRow {
    /// Row id.
    pub id: i64,
    /// Name (e.g. "Pakistan Crypto Council").
    pub name: String,
    /// Ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// When it was added (RFC 3339).
    pub added_at: String,
}

/// A file of a stored bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleFileRow {
    /// File name.
    pub name: String,
    /// `statement` or `plan`.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// A stored bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleRow {
    /// Row id.
    pub id: i64,
    /// SHA-256 of the whole bundle file, hex.
    pub sha256: String,
    /// The partner whose key signed it.
    pub partner: String,
    /// That key.
    pub public_key: String,
    /// Issuer as the manifest says.
    pub issuer: String,
    /// Creation time as the manifest says.
    pub created_at: String,
    /// Size of the bundle file in bytes.
    pub size: u64,
    /// When it was imported (RFC 3339).
    pub imported_at: String,
    /// Its files, in manifest order.
    pub files: Vec<BundleFileRow>,
}

/// What [`Store::import_bundle`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleImport {
    /// The stored bundle.
    pub bundle: BundleRow,
    /// False when the same bundle was already stored (nothing written).
    pub created: bool,
}

fn partner_row(r: &sqlx::any::AnyRow) -> Result<PartnerRow> {
    Ok(PartnerRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        public_key: r.try_get("public_key")?,
        added_at: r.try_get("added_at")?,
    })
}

fn u64_col(r: &sqlx::any::AnyRow, c: &str) -> Result<u64> {
    let v: i64 = r.try_get(c)?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{c} = {v}")))
}

impl Store {
    /// Adds a partner. A name or key already known is refused (keys are what bundles are
    /// checked against, so one key names one partner).
    pub async fn add_partner(&self, name: &str, public_key: &str) -> Result<PartnerRow> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("a partner needs a name".into()));
        }
        let key = public_key.trim().to_ascii_lowercase();
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Invalid(format!(
                "partner key {key:?} is not 64 hex digits"
            )));
        }
        let mut tx = self.begin_write().await?;
        for (col, v, what) in [("name", name, "name"), ("public_key", key.as_str(), "key")] {
            let sql = format!("SELECT name FROM partners WHERE {col} = $1");
            if let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(v)
                .fetch_optional(&mut *tx)
                .await?
            {
                let other: String = r.try_get("name")?;
                return Err(StoreError::Duplicate(format!(
                    "partner {other:?} already has this {what}"
                )));
            }
        }
        let row = sqlx::query(
            "INSERT INTO partners (name, public_key, added_at) VALUES ($1, $2, $3) \
             RETURNING id, name, public_key, added_at",
        )
        .bind(name)
        .bind(&key)
        .bind(now_rfc3339())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Duplicate(format!("partner {name:?} or its key is already known"))
            } else {
                StoreError::Db(e)
            }
        })?;
        let p = partner_row(&row)?;
        tx.commit().await?;
        Ok(p)
    }

    /// Every partner, by name.
    pub async fn partners(&self) -> Result<Vec<PartnerRow>> {
        sqlx::query("SELECT id, name, public_key, added_at FROM partners ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(partner_row)
            .collect()
    }

    /// The partner holding `public_key` (hex), if any.
    pub async fn partner_by_key(&self, public_key: &str) -> Result<Option<PartnerRow>> {
        sqlx::query("SELECT id, name, public_key, added_at FROM partners WHERE public_key = $1")
            .bind(public_key.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(partner_row)
            .transpose()
    }

    /// Stores a bundle read by [`tesoro_core::bundle::open`]: refused unless a partner holds
    /// the signing key and the signature checks. `sha256` and `size` describe the whole
    /// bundle file. Everything is checked before the one transaction that writes it; the
    /// same bundle imported again changes nothing.
    pub async fn import_bundle(
        &self,
        opened: &Opened,
        sha256: &str,
        size: u64,
    ) -> Result<BundleImport> {
        let key = opened.manifest.public_key.to_ascii_lowercase();
        let Some(partner) = self.partner_by_key(&key).await? else {
            return Err(StoreError::Invalid(format!(
                "the bundle is signed by key {key}, which is no partner's: confirm the key with the sender, then `tesoro partner add NAME --key FILE`"
            )));
        };
        opened
            .verify()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        if let Some(b) = self.bundle_by_sha(sha256).await? {
            return Ok(BundleImport {
                bundle: b,
                created: false,
            });
        }
        let manifest = String::from_utf8(opened.manifest_bytes.clone())
            .map_err(|_| StoreError::Invalid("manifest.json is not UTF-8".into()))?;
        let signature =
            bitcoin::hex::DisplayHex::to_lower_hex_string(&opened.signature.to_bytes()[..]);
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO bundles (sha256, partner_id, public_key, issuer, created_at, manifest, \
             signature, size, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(sha256)
        .bind(partner.id)
        .bind(&key)
        .bind(&opened.manifest.issuer)
        .bind(&opened.manifest.created_at)
        .bind(&manifest)
        .bind(&signature)
        .bind(i64::try_from(size).map_err(|_| StoreError::Invalid("bundle too large".into()))?)
        .bind(now_rfc3339())
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        for (i, (f, m)) in opened.files.iter().zip(&opened.manifest.files).enumerate() {
            sqlx::query(
                "INSERT INTO bundle_files (bundle_id, position, name, kind, size, sha256, content) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(i as i64)
            .bind(&f.name)
            .bind(f.kind.as_str())
            .bind(i64::try_from(m.size).map_err(|_| StoreError::Invalid("file too large".into()))?)
            .bind(&m.sha256)
            .bind(f.bytes.clone())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let bundle = self
            .bundle_by_sha(sha256)
            .await?
            .ok_or_else(|| StoreError::Corrupt("bundle vanished after import".into()))?;
        Ok(BundleImport {
            bundle,
            created: true,
        })
    }

    async fn bundle_by_sha(&self, sha256: &str) -> Result<Option<BundleRow>> {
        Ok(self
            .bundles()
            .await?
            .into_iter()
            .find(|b| b.sha256 == sha256))
    }

    /// Every imported bundle with its files, oldest first.
    pub async fn bundles(&self) -> Result<Vec<BundleRow>> {
        let rows = sqlx::query(
            "SELECT b.id, b.sha256, p.name, b.public_key, b.issuer, b.created_at, b.size, \
             b.imported_at FROM bundles b JOIN partners p ON p.id = b.partner_id ORDER BY b.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let files = sqlx::query(
            "SELECT bundle_id, name, kind, size, sha256 FROM bundle_files \
             ORDER BY bundle_id, position",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let mut fs = Vec::new();
            for f in &files {
                let b: i64 = f.try_get("bundle_id")?;
                if b == id {
                    fs.push(BundleFileRow {
                        name: f.try_get("name")?,
                        kind: f.try_get("kind")?,
                        size: u64_col(f, "size")?,
                        sha256: f.try_get("sha256")?,
                    });
                }
            }
            out.push(BundleRow {
                id,
                sha256: r.try_get("sha256")?,
                partner: r.try_get("name")?,
                public_key: r.try_get("public_key")?,
                issuer: r.try_get("issuer")?,
                created_at: r.try_get("created_at")?,
                size: u64_col(r, "size")?,
                imported_at: r.try_get("imported_at")?,
                files: fs,
            });
        }
        Ok(out)
    }

    /// The bytes of one file of a stored bundle.
    pub async fn bundle_file(&self, bundle_id: i64, name: &str) -> Result<Vec<u8>> {
        sqlx::query("SELECT content FROM bundle_files WHERE bundle_id = $1 AND name = $2")
            .bind(bundle_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<Vec<u8>, _>("content").map_err(StoreError::from))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("bundle {bundle_id} has no file {name:?}")))
    }
}
