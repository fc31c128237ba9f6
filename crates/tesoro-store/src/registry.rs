//! Entities and watch-only wallets: the registry the scanner's watch set is built from.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use tesoro_core::{Entity, EntityCode, WatchedAddress};

use crate::error::is_unique_violation;
use crate::{now_rfc3339, Result, Store, StoreError};

/// An entity to add.
#[derive(Debug, Clone)]
pub struct NewEntity {
    /// Unique code.
    pub code: EntityCode,
    /// Display name.
    pub name: String,
    /// Parent's code; it must exist.
    pub parent: Option<EntityCode>,
}

/// The two kinds of watch-only wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WalletKind {
    /// Output descriptors (receive and change).
    Descriptor,
    /// A list of bare published addresses.
    Addresses,
}

impl WalletKind {
    fn as_str(self) -> &'static str {
        match self {
            WalletKind::Descriptor => "descriptor",
            WalletKind::Addresses => "addresses",
        }
    }
}

/// What a new wallet watches.
#[derive(Debug, Clone)]
pub enum NewWalletKind {
    /// Checked descriptors in canonical form (with checksum).
    Descriptor {
        /// Receiving descriptor.
        external: String,
        /// Change descriptor.
        internal: Option<String>,
        /// Unused addresses watched past the last used one.
        gap_limit: u32,
        /// No coin is older than this height; scans may start here.
        birth_height: Option<u32>,
    },
    /// Checked bare addresses.
    Addresses(Vec<WatchedAddress>),
}

/// A wallet to add.
#[derive(Debug, Clone)]
pub struct NewWallet {
    /// Owning entity.
    pub entity: EntityCode,
    /// Name, unique within the entity.
    pub name: String,
    /// What it watches.
    pub kind: NewWalletKind,
}

/// A stored wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WalletRow {
    /// Database id.
    pub id: i64,
    /// Owning entity's code.
    pub entity: EntityCode,
    /// Name within the entity.
    pub name: String,
    /// Descriptor or addresses.
    pub kind: WalletKind,
    /// Receiving descriptor (descriptor wallets).
    pub external_descriptor: Option<String>,
    /// Change descriptor (descriptor wallets, optional).
    pub internal_descriptor: Option<String>,
    /// Gap limit (descriptor wallets).
    pub gap_limit: Option<u32>,
    /// Birth height, if given.
    pub birth_height: Option<u32>,
    /// Number of bare addresses (address wallets).
    pub address_count: i64,
    /// When it was added (RFC 3339, UTC).
    pub created_at: String,
}

impl WalletRow {
    /// `ENTITY/name`, the reference that is never ambiguous.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.entity, self.name)
    }
}

/// A bare address of an address wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WalletAddressRow {
    /// Order in which it was given.
    pub position: i64,
    /// The address.
    pub address: String,
    /// Its output script, hex.
    pub script_pubkey_hex: String,
}

fn opt_u32(row: &AnyRow, col: &str) -> Result<Option<u32>> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|n| u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{col} = {n}"))))
        .transpose()
}

fn entity_from_row(row: &AnyRow) -> Result<Entity> {
    let code: String = row.try_get("code")?;
    let parent: Option<String> = row.try_get("parent_code")?;
    Ok(Entity {
        id: row.try_get("id")?,
        code: EntityCode::parse(&code).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name: row.try_get("name")?,
        parent: parent
            .map(|p| EntityCode::parse(&p).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?,
    })
}

// A macro, not a const, so queries are built with concat! from literals only.
macro_rules! wallet_select {
    () => {
        "SELECT w.id, e.code, w.name, w.kind, w.external_descriptor, \
     w.internal_descriptor, w.gap_limit, w.birth_height, w.created_at, \
     (SELECT COUNT(*) FROM wallet_addresses a WHERE a.wallet_id = w.id) AS address_count \
     FROM wallets w JOIN entities e ON e.id = w.entity_id"
    };
}

fn wallet_from_row(row: &AnyRow) -> Result<WalletRow> {
    let code: String = row.try_get("code")?;
    let kind: String = row.try_get("kind")?;
    Ok(WalletRow {
        id: row.try_get("id")?,
        entity: EntityCode::parse(&code).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name: row.try_get("name")?,
        kind: match kind.as_str() {
            "descriptor" => WalletKind::Descriptor,
            "addresses" => WalletKind::Addresses,
            other => return Err(StoreError::Corrupt(format!("wallet kind {other:?}"))),
        },
        external_descriptor: row.try_get("external_descriptor")?,
        internal_descriptor: row.try_get("internal_descriptor")?,
        gap_limit: opt_u32(row, "gap_limit")?,
        birth_height: opt_u32(row, "birth_height")?,
        address_count: row.try_get("address_count")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Adds an entity under an existing parent (or as a root).
    pub async fn add_entity(&self, new: &NewEntity) -> Result<Entity> {
        let mut tx = self.begin_write().await?;
        let entity = self.add_entity_in(&mut tx, new).await?;
        tx.commit().await?;
        Ok(entity)
    }

    /// [`Store::add_entity`] inside the caller's transaction (to audit it in the same one).
    pub async fn add_entity_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        new: &NewEntity,
    ) -> Result<Entity> {
        let parent_id: Option<i64> = match &new.parent {
            None => None,
            Some(p) => {
                let row = sqlx::query("SELECT id FROM entities WHERE code = $1")
                    .bind(p.as_str())
                    .fetch_optional(&mut **tx)
                    .await?;
                match row {
                    Some(r) => Some(r.try_get("id")?),
                    None => {
                        return Err(StoreError::NotFound(format!(
                            "parent entity {p} does not exist: add it first (tesoro entity add NAME --code {p})"
                        )))
                    }
                }
            }
        };
        let inserted = sqlx::query(
            "INSERT INTO entities (code, name, parent_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(new.code.as_str())
        .bind(new.name.as_str())
        .bind(parent_id)
        .bind(now_rfc3339())
        .fetch_one(&mut **tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get("id")?,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate(format!(
                    "an entity with code {} already exists (tesoro entity list shows them)",
                    new.code
                )))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Entity {
            id,
            code: new.code.clone(),
            name: new.name.clone(),
            parent: new.parent.clone(),
        })
    }

    /// Every entity.
    pub async fn entities(&self) -> Result<Vec<Entity>> {
        let rows = sqlx::query(
            "SELECT e.id, e.code, e.name, p.code AS parent_code FROM entities e \
             LEFT JOIN entities p ON p.id = e.parent_id ORDER BY e.code",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entity_from_row).collect()
    }

    /// One entity by code.
    pub async fn entity(&self, code: &EntityCode) -> Result<Entity> {
        let row = sqlx::query(
            "SELECT e.id, e.code, e.name, p.code AS parent_code FROM entities e \
             LEFT JOIN entities p ON p.id = e.parent_id WHERE e.code = $1",
        )
        .bind(code.as_str())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => entity_from_row(&r),
            None => Err(StoreError::NotFound(format!(
                "no entity with code {code} (tesoro entity list shows them)"
            ))),
        }
    }

    /// Codes of an entity and everything below it.
    pub async fn entity_subtree(&self, code: &EntityCode) -> Result<Vec<EntityCode>> {
        self.entity(code).await?;
        let rows = sqlx::query(
            "WITH RECURSIVE sub(id) AS (SELECT id FROM entities WHERE code = $1 \
             UNION ALL SELECT e.id FROM entities e JOIN sub ON e.parent_id = sub.id) \
             SELECT e.code FROM entities e JOIN sub ON sub.id = e.id ORDER BY e.code",
        )
        .bind(code.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let c: String = r.try_get("code")?;
                EntityCode::parse(&c).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Adds a wallet and everything it watches, in one transaction.
    pub async fn add_wallet(&self, new: &NewWallet) -> Result<WalletRow> {
        let mut tx = self.begin_write().await?;
        let wallet_id = self.add_wallet_in(&mut tx, new).await?;
        tx.commit().await?;
        self.wallet_by_id(wallet_id).await
    }

    /// [`Store::add_wallet`] inside the caller's transaction; returns the new wallet's id.
    /// On error the caller must drop (roll back) the transaction.
    pub async fn add_wallet_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        new: &NewWallet,
    ) -> Result<i64> {
        let entity = sqlx::query("SELECT id FROM entities WHERE code = $1")
            .bind(new.entity.as_str())
            .fetch_optional(&mut **tx)
            .await?;
        let entity_id: i64 = match entity {
            Some(r) => r.try_get("id")?,
            None => {
                return Err(StoreError::NotFound(format!(
                    "no entity with code {} (tesoro entity list shows them)",
                    new.entity
                )))
            }
        };
        let (kind, ext, int, gap, birth) = match &new.kind {
            NewWalletKind::Descriptor {
                external,
                internal,
                gap_limit,
                birth_height,
            } => (
                WalletKind::Descriptor,
                Some(external.clone()),
                internal.clone(),
                Some(i64::from(*gap_limit)),
                birth_height.map(i64::from),
            ),
            NewWalletKind::Addresses(_) => (WalletKind::Addresses, None, None, None, None),
        };
        let inserted = sqlx::query(
            "INSERT INTO wallets (entity_id, name, kind, external_descriptor, internal_descriptor, \
             gap_limit, birth_height, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(entity_id)
        .bind(new.name.as_str())
        .bind(kind.as_str())
        .bind(ext)
        .bind(int)
        .bind(gap)
        .bind(birth)
        .bind(now_rfc3339())
        .fetch_one(&mut **tx)
        .await;
        let wallet_id: i64 = match inserted {
            Ok(r) => r.try_get("id")?,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate(format!(
                    "entity {} already has a wallet named {:?}: pick another --name",
                    new.entity, new.name
                )))
            }
            Err(e) => return Err(e.into()),
        };
        if let NewWalletKind::Addresses(list) = &new.kind {
            for (position, a) in list.iter().enumerate() {
                let res = sqlx::query(
                    "INSERT INTO wallet_addresses (wallet_id, position, address, script_pubkey) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(wallet_id)
                .bind(position as i64)
                .bind(a.address.as_str())
                .bind(a.script_pubkey.as_bytes())
                .execute(&mut **tx)
                .await;
                match res {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        // The transaction is aborted (PostgreSQL refuses further statements
                        // in it) and the caller drops it, so nothing of this wallet remains;
                        // the owner is looked up on another connection.
                        let owner = self.owner_of_script(a.script_pubkey.as_bytes()).await?;
                        return Err(StoreError::Duplicate(format!(
                            "address {} is already watched by wallet {}: an address belongs to one wallet, so its coins are counted once",
                            a.address,
                            owner.unwrap_or_else(|| "another wallet".into())
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(wallet_id)
    }

    async fn owner_of_script(&self, script: &[u8]) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT e.code, w.name FROM wallet_addresses a JOIN wallets w ON w.id = a.wallet_id \
             JOIN entities e ON e.id = w.entity_id WHERE a.script_pubkey = $1",
        )
        .bind(script)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<String> {
            let code: String = r.try_get("code")?;
            let name: String = r.try_get("name")?;
            Ok(format!("{code}/{name}"))
        })
        .transpose()
    }

    async fn wallet_by_id(&self, id: i64) -> Result<WalletRow> {
        let row = sqlx::query(concat!(wallet_select!(), " WHERE w.id = $1"))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        wallet_from_row(&row)
    }

    /// Wallets, all or those of an entity and everything below it.
    pub async fn wallets(&self, under: Option<&EntityCode>) -> Result<Vec<WalletRow>> {
        let rows = match under {
            None => {
                sqlx::query(concat!(wallet_select!(), " ORDER BY e.code, w.name"))
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(code) => {
                self.entity(code).await?;
                sqlx::query(concat!(
                    "WITH RECURSIVE sub(id) AS (SELECT id FROM entities WHERE code = $1 \
                     UNION ALL SELECT e.id FROM entities e JOIN sub ON e.parent_id = sub.id) ",
                    wallet_select!(),
                    " WHERE w.entity_id IN (SELECT id FROM sub) ORDER BY e.code, w.name"
                ))
                .bind(code.as_str())
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(wallet_from_row).collect()
    }

    /// A wallet by `name` (when only one entity has a wallet of that name) or `ENTITY/name`.
    pub async fn wallet(&self, reference: &str) -> Result<WalletRow> {
        let rows = match reference.split_once('/') {
            Some((code, name)) => {
                let code =
                    EntityCode::parse(code).map_err(|e| StoreError::NotFound(e.to_string()))?;
                sqlx::query(concat!(
                    wallet_select!(),
                    " WHERE e.code = $1 AND w.name = $2"
                ))
                .bind(code.as_str())
                .bind(name)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(concat!(
                    wallet_select!(),
                    " WHERE w.name = $1 ORDER BY e.code"
                ))
                .bind(reference)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let mut wallets: Vec<WalletRow> =
            rows.iter().map(wallet_from_row).collect::<Result<_>>()?;
        match wallets.len() {
            0 => Err(StoreError::NotFound(format!(
                "no wallet {reference:?} (tesoro wallet list shows them)"
            ))),
            1 => Ok(wallets.remove(0)),
            _ => {
                Err(StoreError::Ambiguous(format!(
                "several entities have a wallet named {reference:?} ({}): name it as ENTITY/name",
                wallets.iter().map(|w| w.full_name()).collect::<Vec<_>>().join(", ")
            )))
            }
        }
    }

    /// The bare addresses of an address wallet, in the order given.
    pub async fn wallet_addresses(&self, wallet_id: i64) -> Result<Vec<WalletAddressRow>> {
        let rows = sqlx::query(
            "SELECT position, address, script_pubkey FROM wallet_addresses WHERE wallet_id = $1 ORDER BY position",
        )
        .bind(wallet_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let script: Vec<u8> = r.try_get("script_pubkey")?;
                Ok(WalletAddressRow {
                    position: r.try_get("position")?,
                    address: r.try_get("address")?,
                    script_pubkey_hex: bitcoin::hex::DisplayHex::to_lower_hex_string(&script[..]),
                })
            })
            .collect()
    }
}
