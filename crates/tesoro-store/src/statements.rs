//! Statements made, proofs of control received, and which wallets are listed or only
//! counted in statements.
//!
//! A statement is stored as signed (its canonical bytes and its file), keyed by its SHA-256,
//! so saving it twice changes nothing. Proofs are stored only after they were checked (the
//! caller's job) and once per block; a statement made later at that block attaches them.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use tesoro_core::canonical::to_canonical;
use tesoro_core::statement::{sha256_hex, Proof, SignedStatement};

use crate::{now_rfc3339, Result, Store, StoreError};

/// A statement as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredStatement {
    /// Row id.
    pub id: i64,
    /// SHA-256 of the canonical bytes, hex.
    pub sha256: String,
    /// Code of the entity it covers.
    pub entity: String,
    /// Pinned height.
    pub height: u32,
    /// Pinned block hash.
    pub block_hash: String,
    /// Total in sats.
    pub total_sats: u64,
    /// The canonical bytes (UTF-8 JSON) the signature covers.
    pub canonical: String,
    /// The statement file (statement, sha256, signature), as written.
    pub signed_json: String,
    /// Signer's Ed25519 public key, hex.
    pub public_key: String,
    /// When it was saved (RFC 3339).
    pub created_at: String,
}

/// A checked proof of control as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredProof {
    /// Row id.
    pub id: i64,
    /// Entity the challenge named.
    pub entity: String,
    /// Height of the challenge's block.
    pub height: u32,
    /// Hash of the challenge's block.
    pub block_hash: String,
    /// The proof.
    pub proof: Proof,
    /// When it was added.
    pub added_at: String,
}

/// Whether a wallet's addresses are listed in statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WalletTier {
    /// Listed with their outputs (the default).
    Published,
    /// Counted in the totals, not listed.
    Private,
}

impl WalletTier {
    /// `published` or `private`.
    pub fn as_str(self) -> &'static str {
        match self {
            WalletTier::Published => "published",
            WalletTier::Private => "private",
        }
    }
}

impl std::str::FromStr for WalletTier {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "published" => Ok(WalletTier::Published),
            "private" => Ok(WalletTier::Private),
            other => Err(format!(
                "unknown tier {other:?}: use published or private (verified is earned by a proof, not configured)"
            )),
        }
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn statement_row(r: &AnyRow) -> Result<StoredStatement> {
    let height: i64 = r.try_get("height")?;
    let total: i64 = r.try_get("total_sats")?;
    Ok(StoredStatement {
        id: r.try_get("id")?,
        sha256: r.try_get("sha256")?,
        entity: r.try_get("entity")?,
        height: u32::try_from(height).map_err(|_| corrupt(format!("height {height}")))?,
        block_hash: r.try_get("block_hash")?,
        total_sats: u64::try_from(total).map_err(|_| corrupt(format!("total_sats {total}")))?,
        canonical: r.try_get("canonical")?,
        signed_json: r.try_get("signed_json")?,
        public_key: r.try_get("public_key")?,
        created_at: r.try_get("created_at")?,
    })
}

const STATEMENT_COLUMNS: &str =
    "id, sha256, entity, height, block_hash, total_sats, canonical, signed_json, public_key, created_at";

fn proof_row(r: &AnyRow) -> Result<StoredProof> {
    let height: i64 = r.try_get("height")?;
    let json: String = r.try_get("proof_json")?;
    Ok(StoredProof {
        id: r.try_get("id")?,
        entity: r.try_get("entity")?,
        height: u32::try_from(height).map_err(|_| corrupt(format!("height {height}")))?,
        block_hash: r.try_get("block_hash")?,
        proof: serde_json::from_str(&json).map_err(|e| corrupt(format!("proof: {e}")))?,
        added_at: r.try_get("added_at")?,
    })
}

impl Store {
    /// Stores a signed statement (hash and signature are checked first: a damaged statement
    /// is refused and nothing is written). Saving the same statement again returns the
    /// stored row unchanged.
    pub async fn save_statement(&self, signed: &SignedStatement) -> Result<StoredStatement> {
        let st = signed
            .verify(None)
            .map_err(|e| StoreError::Conflict(format!("statement not stored: {e}")))?;
        let canonical = to_canonical(&signed.statement)
            .map_err(|e| StoreError::Conflict(format!("statement not stored: {e}")))?;
        let canonical = String::from_utf8(canonical)
            .map_err(|_| StoreError::Conflict("statement not stored: not UTF-8".into()))?;
        let json = serde_json::to_string_pretty(signed)
            .map_err(|e| StoreError::Conflict(format!("statement not stored: {e}")))?;
        let total = i64::try_from(st.total_sats)
            .map_err(|_| StoreError::Conflict("statement not stored: total too large".into()))?;
        sqlx::query(
            "INSERT INTO statements (sha256, entity, height, block_hash, total_sats, canonical, \
             signed_json, public_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&signed.sha256)
        .bind(&st.institution)
        .bind(i64::from(st.block.height))
        .bind(&st.block.hash)
        .bind(total)
        .bind(&canonical)
        .bind(&json)
        .bind(&st.public_key)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STATEMENT_COLUMNS} FROM statements WHERE sha256 = $1"
        )))
        .bind(&signed.sha256)
        .fetch_one(&self.pool)
        .await?;
        statement_row(&row)
    }

    /// The newest statement (highest height, then latest saved) covering `entity`.
    pub async fn latest_statement(&self, entity: &str) -> Result<Option<StoredStatement>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STATEMENT_COLUMNS} FROM statements WHERE entity = $1 \
             ORDER BY height DESC, id DESC LIMIT 1"
        )))
        .bind(entity)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(statement_row).transpose()
    }

    /// Every stored statement, oldest first.
    pub async fn statements(&self) -> Result<Vec<StoredStatement>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STATEMENT_COLUMNS} FROM statements ORDER BY height, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(statement_row).collect()
    }

    /// Stores a proof checked against the challenge of `entity` at block (`height`,
    /// `block_hash`). Returns false when it was already stored.
    pub async fn add_proof(
        &self,
        entity: &str,
        height: u32,
        block_hash: &str,
        proof: &Proof,
    ) -> Result<bool> {
        let json = serde_json::to_string(proof).map_err(|e| corrupt(format!("proof: {e}")))?;
        let (kind, subject) = match proof {
            Proof::Bip322 { address, .. } => ("bip322", address.clone()),
            Proof::Bip127 { outpoints, .. } => ("bip127", outpoints.join(" ")),
        };
        let r = sqlx::query(
            "INSERT INTO proofs (entity, height, block_hash, kind, subject, proof_json, digest, added_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (entity, block_hash, digest) DO NOTHING",
        )
        .bind(entity)
        .bind(i64::from(height))
        .bind(block_hash)
        .bind(kind)
        .bind(&subject)
        .bind(&json)
        .bind(sha256_hex(json.as_bytes()))
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Proofs stored for `entity`'s challenge at `block_hash` (all blocks when `None`),
    /// oldest first.
    pub async fn proofs(&self, entity: &str, block_hash: Option<&str>) -> Result<Vec<StoredProof>> {
        let rows = sqlx::query(
            "SELECT id, entity, height, block_hash, proof_json, added_at FROM proofs \
             WHERE entity = $1 AND ($2 = '' OR block_hash = $2) ORDER BY height, id",
        )
        .bind(entity)
        .bind(block_hash.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(proof_row).collect()
    }

    /// Sets whether a wallet's addresses are listed (published) or only counted (private).
    pub async fn set_wallet_tier(&self, wallet_id: i64, tier: WalletTier) -> Result<()> {
        sqlx::query(
            "INSERT INTO wallet_tiers (wallet_id, tier, set_at) VALUES ($1, $2, $3) \
             ON CONFLICT (wallet_id) DO UPDATE SET tier = excluded.tier, set_at = excluded.set_at",
        )
        .bind(wallet_id)
        .bind(tier.as_str())
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                StoreError::NotFound(format!("no wallet with id {wallet_id}"))
            }
            _ => StoreError::Db(e),
        })?;
        Ok(())
    }

    /// Configured tiers by wallet id (wallets not listed are published).
    pub async fn wallet_tiers(&self) -> Result<HashMap<i64, WalletTier>> {
        let rows = sqlx::query("SELECT wallet_id, tier FROM wallet_tiers")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let t: String = r.try_get("tier")?;
                Ok((
                    r.try_get("wallet_id")?,
                    t.parse::<WalletTier>().map_err(corrupt)?,
                ))
            })
            .collect()
    }

    /// Where the stored BTC price of `currency` on `day` (YYYY-MM-DD) came from.
    pub async fn price_source(&self, day: &str, currency: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT source FROM prices WHERE day = $1 AND currency = $2")
            .bind(day)
            .bind(currency)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("source").map_err(StoreError::from))
            .transpose()
    }

    /// Where the stored `base`/`quote` rate on `day` came from (either direction).
    pub async fn fx_source(&self, day: &str, base: &str, quote: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT source FROM fx_rates WHERE day = $1 AND \
             ((base = $2 AND quote = $3) OR (base = $3 AND quote = $2))",
        )
        .bind(day)
        .bind(base)
        .bind(quote)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get("source").map_err(StoreError::from))
            .transpose()
    }
}
