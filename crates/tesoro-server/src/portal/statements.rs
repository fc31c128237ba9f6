//! The latest signed statement of a state, as the public page shows it: hash, block, key,
//! and the tier of each listed address.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use sqlx::Row as _;
use tesoro_core::statement::{SignedStatement, Statement, Tier};
use tesoro_store::{Store, StoreError};

use super::{fmt, PortalError};

/// A stored signed statement, summarized for the page.
#[derive(Debug, Clone, Serialize)]
pub struct StatementInfo {
    /// Block height it is pinned to.
    pub height: u32,
    /// Block hash.
    pub hash: String,
    /// The block's UTC day.
    pub date: String,
    /// SHA-256 of the canonical statement.
    pub sha256: String,
    /// When it was issued.
    pub issued_at: String,
    /// The office's Ed25519 public key, hex.
    pub public_key: String,
    /// Total BTC.
    pub total_btc: String,
    /// Listed addresses.
    pub addresses: usize,
    /// Sats at private addresses.
    pub private_sats: u64,
    /// Tier of each listed address.
    #[serde(skip)]
    pub tiers: HashMap<String, Tier>,
    /// (entity, wallet) pairs with a listed address.
    #[serde(skip)]
    pub listed_wallets: BTreeSet<(String, String)>,
    /// The signed statement file as stored (the download).
    #[serde(skip)]
    pub json: String,
}

/// Summarizes a stored statement file.
pub fn info(signed_json: &str) -> Result<StatementInfo, PortalError> {
    let signed = SignedStatement::from_json(signed_json)
        .map_err(|e| PortalError::Data(format!("a stored statement does not parse: {e}")))?;
    let st: Statement = serde_json::from_value(signed.statement.clone())
        .map_err(|e| PortalError::Data(format!("a stored statement does not parse: {e}")))?;
    Ok(StatementInfo {
        height: st.block.height,
        hash: st.block.hash.clone(),
        date: fmt::day(st.block.time),
        sha256: signed.sha256.clone(),
        issued_at: st.issued_at.clone(),
        public_key: st.public_key.clone(),
        total_btc: fmt::btc(st.total_sats),
        addresses: st.addresses.len(),
        private_sats: st.private_sats,
        tiers: st
            .addresses
            .iter()
            .map(|a| (a.address.clone(), a.tier))
            .collect(),
        listed_wallets: st
            .addresses
            .iter()
            .map(|a| (a.entity.clone(), a.wallet.clone()))
            .collect(),
        json: signed_json.to_string(),
    })
}

/// The latest statement of `institution` pinned at or below `height`, if one is stored.
pub async fn latest(
    store: &Store,
    institution: &str,
    height: u32,
) -> Result<Option<StatementInfo>, PortalError> {
    all(store)
        .await?
        .into_iter()
        .filter(|s| s.entity == institution && s.height <= height)
        .max_by_key(|s| (s.height, s.id))
        .map(|s| info(&s.signed_json))
        .transpose()
}

/// A stored statement row (the `statements` table of migration 0006).
pub struct Row {
    /// Row id.
    pub id: i64,
    /// Entity code it covers.
    pub entity: String,
    /// Pinned height.
    pub height: u32,
    /// SHA-256 of its canonical form.
    pub sha256: String,
    /// Total sats.
    pub total_sats: u64,
    /// When it was saved.
    pub created_at: String,
    /// The signed file.
    pub signed_json: String,
}

/// Every stored statement, oldest first.
pub async fn all(store: &Store) -> Result<Vec<Row>, PortalError> {
    let rows = sqlx::query(
        "SELECT id, entity, height, sha256, total_sats, created_at, signed_json \
         FROM statements ORDER BY height, id",
    )
    .fetch_all(store.pool())
    .await
    .map_err(StoreError::from)?;
    rows.iter()
        .map(|r| {
            let height: i64 = r.try_get("height").map_err(StoreError::from)?;
            let total: i64 = r.try_get("total_sats").map_err(StoreError::from)?;
            Ok(Row {
                id: r.try_get("id").map_err(StoreError::from)?,
                entity: r.try_get("entity").map_err(StoreError::from)?,
                height: u32::try_from(height)
                    .map_err(|_| PortalError::Data(format!("statement height {height}")))?,
                sha256: r.try_get("sha256").map_err(StoreError::from)?,
                total_sats: u64::try_from(total)
                    .map_err(|_| PortalError::Data(format!("statement total {total}")))?,
                created_at: r.try_get("created_at").map_err(StoreError::from)?,
                signed_json: r.try_get("signed_json").map_err(StoreError::from)?,
            })
        })
        .collect()
}
