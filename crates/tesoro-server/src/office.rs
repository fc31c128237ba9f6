//! The office's changes, one function each, shared by the CLI, the JSON API and the portal
//! so that each exists once: check the input, make the change, and append its audit row in
//! the same database transaction (both commit, or neither does).
//!
//! Callers check the caller's role and grant first; these functions check the data.

use std::collections::HashMap;

use bitcoin::{ScriptBuf, Txid};
use serde_json::{json, Value};
use tesoro_core::classify::check_override;
use tesoro_core::classify::Record;
use tesoro_core::movement::{Kind, Movement};
use tesoro_core::secret::refuse_secret;
use tesoro_core::wallet::{
    check_gap_limit, parse_address_list, script_address, DescriptorPair, DEFAULT_GAP_LIMIT,
};
use tesoro_core::{ChainNetwork, Entity, EntityCode, Keychain};
use tesoro_store::{
    audit_append, AuditEntry, ImportOutcome, NewEntity, NewWallet, NewWalletKind, Store,
    StoreError, WalletKind, WalletRow,
};

/// Why a change was refused. Messages name the field and never repeat refused key material.
#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    /// The input is refused (a private key, a bad descriptor, an empty reason …).
    #[error("{0}")]
    Invalid(String),
    /// Nothing by that name.
    #[error("{0}")]
    NotFound(String),
    /// It contradicts what is stored (a duplicate name, a script another wallet watches).
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for OfficeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => OfficeError::NotFound(m),
            StoreError::Duplicate(m) | StoreError::Conflict(m) => OfficeError::Conflict(m),
            other => OfficeError::Store(other),
        }
    }
}

impl From<sqlx::Error> for OfficeError {
    fn from(e: sqlx::Error) -> Self {
        OfficeError::Store(StoreError::from(e))
    }
}

fn invalid(e: impl std::fmt::Display) -> OfficeError {
    OfficeError::Invalid(e.to_string())
}

/// Result of an office change.
pub type OfficeResult<T> = Result<T, OfficeError>;

/// Adds an entity (an agency below `new.parent`, or a state).
pub async fn add_entity(store: &Store, actor: &str, new: &NewEntity) -> OfficeResult<Entity> {
    let mut tx = store.begin_write().await?;
    let entity = store.add_entity_in(&mut tx, new).await?;
    let after = json!({"code": entity.code, "name": entity.name, "parent": entity.parent});
    audit_append(
        &mut tx,
        store.backend(),
        &AuditEntry {
            actor,
            action: "entity.add",
            subject: &format!("entity:{}", entity.code),
            before: None,
            after: Some(&after),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(entity)
}

/// What a new watch-only wallet watches, as given by a person or a program.
#[derive(Debug, Clone)]
pub enum WalletSpec<'a> {
    /// A descriptor (or multipath descriptor) with public keys only.
    Descriptor {
        /// Receiving descriptor.
        external: &'a str,
        /// Change descriptor, if separate.
        change: Option<&'a str>,
        /// Gap limit (default [`DEFAULT_GAP_LIMIT`]).
        gap_limit: Option<u32>,
        /// No coin is older than this height.
        birth_height: Option<u32>,
    },
    /// Published addresses: (where each came from, for errors; the text).
    Addresses(Vec<(String, &'a str)>),
}

/// A new wallet, checked and ready to store.
#[derive(Debug, Clone)]
pub struct CheckedWallet {
    /// What [`add_wallet`] stores.
    pub new: NewWallet,
    /// The descriptor had no checksum and one was computed.
    pub checksum_added: bool,
}

/// Checks a new wallet: refuses private key material (without repeating it), parses the
/// descriptor or addresses for the database's network, checks the name and gap limit, and
/// refuses scripts another wallet already watches (their coins would count twice).
///
/// `visible` is what the caller may see (`None`: everything, as for the CLI's operator): a
/// refusal names the wallet already watching a script only when its entity is in it, so a
/// scoped admin learns that the script is taken but not who outside their grant holds it.
pub async fn check_wallet(
    store: &Store,
    entity: &str,
    name: &str,
    spec: WalletSpec<'_>,
    visible: Option<&[EntityCode]>,
) -> OfficeResult<CheckedWallet> {
    refuse_secret(name, "the wallet name").map_err(invalid)?;
    match &spec {
        WalletSpec::Descriptor {
            external, change, ..
        } => {
            refuse_secret(external, "the descriptor").map_err(invalid)?;
            if let Some(c) = change {
                refuse_secret(c, "the change descriptor").map_err(invalid)?;
            }
        }
        WalletSpec::Addresses(items) => {
            for (at, text) in items {
                refuse_secret(text, at.clone()).map_err(invalid)?;
            }
        }
    }
    let entity = EntityCode::parse(entity).map_err(invalid)?;
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 100 || name.contains('/') {
        return Err(invalid(
            "the wallet name must be 1 to 100 characters without '/'",
        ));
    }
    let network = store.network();
    let mut checksum_added = false;
    let kind = match spec {
        WalletSpec::Descriptor {
            external,
            change,
            gap_limit,
            birth_height,
        } => {
            let change = change.map(str::trim).filter(|c| !c.is_empty());
            let pair = DescriptorPair::parse(external.trim(), change, network).map_err(invalid)?;
            checksum_added = pair.checksum_added;
            NewWalletKind::Descriptor {
                external: pair.external.to_string(),
                internal: pair.internal.as_ref().map(|d| d.to_string()),
                gap_limit: check_gap_limit(gap_limit.unwrap_or(DEFAULT_GAP_LIMIT))
                    .map_err(invalid)?,
                birth_height,
            }
        }
        WalletSpec::Addresses(items) => {
            if items.is_empty() {
                return Err(invalid(
                    "give at least one address (one a line or comma-separated)",
                ));
            }
            NewWalletKind::Addresses(parse_address_list(items, network).map_err(invalid)?)
        }
    };
    refuse_overlap(store, &kind, visible).await?;
    Ok(CheckedWallet {
        new: NewWallet { entity, name, kind },
        checksum_added,
    })
}

/// Stores a wallet [`check_wallet`] accepted, with its audit row.
pub async fn add_wallet(store: &Store, actor: &str, new: &NewWallet) -> OfficeResult<WalletRow> {
    let mut tx = store.begin_write().await?;
    store.add_wallet_in(&mut tx, new).await?;
    let after = match &new.kind {
        NewWalletKind::Descriptor {
            external,
            internal,
            gap_limit,
            birth_height,
        } => json!({
            "entity": new.entity, "name": new.name, "kind": "descriptor",
            "external_descriptor": external, "internal_descriptor": internal,
            "gap_limit": gap_limit, "birth_height": birth_height,
        }),
        NewWalletKind::Addresses(list) => json!({
            "entity": new.entity, "name": new.name, "kind": "addresses",
            "addresses": list.iter().map(|a| a.address.to_string()).collect::<Vec<_>>(),
        }),
    };
    audit_append(
        &mut tx,
        store.backend(),
        &AuditEntry {
            actor,
            action: "wallet.add",
            subject: &format!("wallet:{}/{}", new.entity, new.name),
            before: None,
            after: Some(&after),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(store
        .wallet(&format!("{}/{}", new.entity, new.name))
        .await?)
}

/// The scripts a wallet watches when first synced: its bare addresses, or each keychain's
/// children up to the gap limit.
fn first_scripts(
    kind: &NewWalletKind,
    network: ChainNetwork,
) -> OfficeResult<Vec<(ScriptBuf, String)>> {
    Ok(match kind {
        NewWalletKind::Addresses(list) => list
            .iter()
            .map(|a| (a.script_pubkey.clone(), format!("address {}", a.address)))
            .collect(),
        NewWalletKind::Descriptor {
            external,
            internal,
            gap_limit,
            ..
        } => {
            let pair =
                DescriptorPair::parse(external, internal.as_deref(), network).map_err(invalid)?;
            let n = if pair.is_ranged() { *gap_limit } else { 1 };
            let mut v = Vec::new();
            for k in [Keychain::External, Keychain::Internal] {
                if pair.keychain(k).is_none() {
                    continue;
                }
                for i in 0..n {
                    let s = pair.script_at(k, i).map_err(invalid)?;
                    v.push((s, format!("{} index {i}", k.as_str())));
                }
            }
            v
        }
    })
}

/// A script may belong to one wallet only, or its coins would be counted twice: refuses a
/// new wallet whose first scripts another wallet already watches.
async fn refuse_overlap(
    store: &Store,
    new: &NewWalletKind,
    visible: Option<&[EntityCode]>,
) -> OfficeResult<()> {
    let network = store.network();
    let mut theirs: HashMap<ScriptBuf, String> = HashMap::new();
    for w in store.wallets(None).await? {
        let scripts = match w.kind {
            WalletKind::Addresses => {
                let mut v = Vec::new();
                for a in store.wallet_addresses(w.id).await? {
                    let b: Vec<u8> = bitcoin::hex::FromHex::from_hex(&a.script_pubkey_hex)
                        .map_err(|e| {
                            OfficeError::Store(StoreError::Corrupt(format!(
                                "stored script of {}: {e}",
                                a.address
                            )))
                        })?;
                    v.push((ScriptBuf::from_bytes(b), format!("address {}", a.address)));
                }
                v
            }
            WalletKind::Descriptor => first_scripts(
                &NewWalletKind::Descriptor {
                    external: w.external_descriptor.clone().unwrap_or_default(),
                    internal: w.internal_descriptor.clone(),
                    gap_limit: w.gap_limit.unwrap_or(DEFAULT_GAP_LIMIT),
                    birth_height: None,
                },
                network,
            )?,
        };
        let shown = visible.is_none_or(|v| v.contains(&w.entity));
        for (s, at) in scripts {
            let owner = if shown {
                format!("wallet {} ({at})", w.full_name())
            } else {
                "a wallet outside your grant".to_string()
            };
            theirs.insert(s, owner);
        }
    }
    for (s, at) in first_scripts(new, network)? {
        if let Some(owner) = theirs.get(&s) {
            let shown =
                script_address(&s, network.0).map_or_else(|| s.to_hex_string(), |a| a.to_string());
            return Err(OfficeError::Conflict(format!(
                "{shown} ({at} of the new wallet) is already watched by {owner}: a script belongs to one wallet, so its coins are counted once; nothing was stored"
            )));
        }
    }
    Ok(())
}

/// The movement of `txid` for `entity` (or the only one, when the transaction touches one
/// entity), with its entity's code.
pub async fn find_movement(
    store: &Store,
    txid: &Txid,
    entity: Option<&EntityCode>,
) -> OfficeResult<(Movement, EntityCode)> {
    store.ledger_refresh().await?;
    let ms = store.ledger_movements_of_tx(txid).await?;
    if ms.is_empty() {
        return Err(OfficeError::NotFound(format!(
            "no movement has txid {txid}: the movements list shows them"
        )));
    }
    let m = match entity {
        Some(code) => {
            let e = store.entity(code).await?;
            ms.into_iter().find(|m| m.entity == e.id).ok_or_else(|| {
                OfficeError::NotFound(format!("transaction {txid} does not touch entity {code}"))
            })?
        }
        None if ms.len() == 1 => ms
            .into_iter()
            .next()
            .ok_or_else(|| OfficeError::NotFound(format!("no movement has txid {txid}")))?,
        None => {
            return Err(invalid(format!(
                "transaction {txid} touches several entities: name the entity"
            )))
        }
    };
    let code = store
        .entities()
        .await?
        .into_iter()
        .find(|e| e.id == m.entity)
        .map(|e| e.code)
        .ok_or_else(|| {
            OfficeError::Store(StoreError::Corrupt(format!("movement {txid} of no entity")))
        })?;
    Ok((m, code))
}

/// Classifies a movement by hand (the newest classification counts); the reason is kept
/// in the audit log beside what it replaced.
pub async fn classify(
    store: &Store,
    actor: &str,
    m: &Movement,
    entity: &EntityCode,
    kind: Kind,
    reason: &str,
) -> OfficeResult<()> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(invalid(
            "the reason must say why (it is kept in the audit log)",
        ));
    }
    check_override(kind, m.chain_kind.class()).map_err(invalid)?;
    let before: Value = match store
        .overrides()
        .await?
        .into_iter()
        .rev()
        .find(|o| o.txid == m.txid && o.entity == m.entity)
    {
        Some(o) => json!({"kind": o.kind.as_str(), "reason": o.reason, "source": "override"}),
        None => json!({"kind": m.chain_kind.as_str(), "source": "chain"}),
    };
    let after = json!({"kind": kind.as_str(), "reason": reason});
    let mut tx = store.begin_write().await?;
    store
        .add_override_in(&mut tx, &m.txid, m.entity, kind, reason)
        .await?;
    audit_append(
        &mut tx,
        store.backend(),
        &AuditEntry {
            actor,
            action: "movement.classify",
            subject: &format!("movement:{}/{entity}", m.txid),
            before: Some(&before),
            after: Some(&after),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Stores off-chain records (all or none; a record already stored is not stored twice).
pub async fn import_records(
    store: &Store,
    actor: &str,
    records: &[Record],
    source: &str,
) -> OfficeResult<ImportOutcome> {
    let mut tx = store.begin_write().await?;
    let out = store.import_records_in(&mut tx, records, source).await?;
    let after = json!({
        "source": source, "rows": records.len(), "written": out.written, "unchanged": out.unchanged,
    });
    audit_append(
        &mut tx,
        store.backend(),
        &AuditEntry {
            actor,
            action: "records.import",
            subject: "records",
            before: None,
            after: Some(&after),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(out)
}
