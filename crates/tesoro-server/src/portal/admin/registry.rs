//! Entities, wallets and sync status; adding entities and watch-only wallets.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use tesoro_core::entity::check_name;
use tesoro_core::secret::refuse_secret;
use tesoro_core::wallet::{address_file_items, DEFAULT_GAP_LIMIT};
use tesoro_core::EntityCode;
use tesoro_store::holdings::{At, GroupBy};
use tesoro_store::{NewEntity, NewWallet, WalletKind};

use super::{see_other, Nav, Staff};
use crate::auth::Action;
use crate::office::{self, WalletSpec};
use crate::portal::{fmt, render, PortalError};
use crate::AppState;

/// An entity row with its holdings (everything below it included).
pub struct EntityRow {
    code: String,
    name: String,
    indent_em: String,
    btc: String,
}

#[derive(Template)]
#[template(path = "admin/entities.html")]
struct EntitiesPage {
    nav: Nav,
    rows: Vec<EntityRow>,
    date: String,
    can_add: bool,
    error: Option<String>,
    form: EntityForm,
}

/// The add-entity form.
#[derive(Debug, Default, Deserialize)]
pub struct EntityForm {
    code: String,
    name: String,
    #[serde(default)]
    parent: String,
}

async fn entity_rows(
    state: &AppState,
    staff: &Staff,
) -> Result<(Vec<EntityRow>, String), PortalError> {
    let scope = staff.scope_entity(None)?;
    if state.store.chain_tip().await?.is_none() {
        let all = state.store.entities().await?;
        let rows = tesoro_core::entity::tree_order(&all)
            .into_iter()
            .filter(|r| staff.id.covers(&r.entity.code))
            .map(|r| EntityRow {
                code: r.entity.code.to_string(),
                name: r.entity.name.clone(),
                indent_em: format!("{:.1}", 0.6 + 1.5 * r.depth as f64),
                btc: fmt::btc(0),
            })
            .collect();
        return Ok((rows, "nothing synced yet".into()));
    }
    let block = state.store.resolve_at(At::Tip).await?;
    let h = state
        .store
        .holdings(scope.as_ref(), &block, GroupBy::Entity)
        .await?;
    let rows = h
        .groups
        .iter()
        .map(|g| EntityRow {
            code: g.key.clone(),
            name: g.name.clone().unwrap_or_default(),
            indent_em: format!("{:.1}", 0.6 + 1.5 * g.depth.unwrap_or(0) as f64),
            btc: fmt::btc(g.sats),
        })
        .collect();
    Ok((rows, h.date))
}

pub(super) async fn entities(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Response, PortalError> {
    let (rows, date) = entity_rows(&state, &staff).await?;
    let can_add = staff.id.role_allows(Action::EditRegistry);
    render(&EntitiesPage {
        nav: staff.nav,
        rows,
        date,
        can_add,
        error: None,
        form: EntityForm::default(),
    })
}

pub(super) async fn entity_add(
    State(state): State<AppState>,
    staff: Staff,
    Form(f): Form<EntityForm>,
) -> Result<Response, PortalError> {
    let result = async {
        let code = EntityCode::parse(&f.code).map_err(|e| e.to_string())?;
        let name = check_name(&f.name).map_err(|e| e.to_string())?;
        let parent = match f.parent.trim() {
            "" => None,
            p => Some(EntityCode::parse(p).map_err(|e| e.to_string())?),
        };
        // A top-level entity needs an unscoped admin; a child needs a grant over the parent.
        staff
            .id
            .require(Action::EditRegistry, parent.as_ref())
            .map_err(|e| e.message)?;
        office::add_entity(
            &state.store,
            &staff.id.actor(),
            &NewEntity {
                code: code.clone(),
                name,
                parent,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    }
    .await;
    match result {
        Ok(()) => {
            state.data_changed().await;
            Ok(see_other("/admin/entities?done=entity-added"))
        }
        Err(msg) => {
            let (rows, date) = entity_rows(&state, &staff).await?;
            let can_add = staff.id.role_allows(Action::EditRegistry);
            let page = EntitiesPage {
                nav: staff.nav,
                rows,
                date,
                can_add,
                error: Some(msg),
                form: f,
            };
            Ok((StatusCode::BAD_REQUEST, render(&page)?).into_response())
        }
    }
}

/// A wallet in the list.
pub struct WalletLine {
    entity: String,
    name: String,
    kind: String,
    detail: String,
    btc: String,
    synced: String,
}

/// The add-wallet form (nothing of it is echoed back when it held a private key).
#[derive(Debug, Default, Deserialize)]
pub struct WalletForm {
    #[serde(default)]
    entity: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    descriptor: String,
    #[serde(default)]
    change_descriptor: String,
    #[serde(default)]
    gap_limit: String,
    #[serde(default)]
    birth_height: String,
    #[serde(default)]
    addresses: String,
}

#[derive(Template)]
#[template(path = "admin/wallets.html")]
struct WalletsPage {
    nav: Nav,
    wallets: Vec<WalletLine>,
    entities: Vec<String>,
    can_add: bool,
    error: Option<String>,
    form: WalletForm,
    date: String,
}

/// `?entity=` on lists.
#[derive(Debug, Default, Deserialize)]
pub struct EntityQuery {
    entity: Option<String>,
}

async fn wallets_page(
    state: &AppState,
    staff: Staff,
    asked: Option<&str>,
    error: Option<String>,
    form: WalletForm,
) -> Result<WalletsPage, PortalError> {
    let store = &state.store;
    let scope = staff.scope_entity(asked)?;
    let wallets = store.wallets(scope.as_ref()).await?;
    let synced = store.wallet_sync_heights().await?;
    let (balances, date) = match store.chain_tip().await? {
        Some(_) => {
            let block = store.resolve_at(At::Tip).await?;
            let h = store
                .holdings(scope.as_ref(), &block, GroupBy::Wallet)
                .await?;
            (
                h.groups
                    .into_iter()
                    .map(|g| (g.key, g.sats))
                    .collect::<std::collections::HashMap<_, _>>(),
                h.date,
            )
        }
        None => (Default::default(), "nothing synced yet".into()),
    };
    let lines = wallets
        .iter()
        .map(|w| WalletLine {
            entity: w.entity.to_string(),
            name: w.name.clone(),
            kind: match w.kind {
                WalletKind::Descriptor => "descriptor".into(),
                WalletKind::Addresses => "published addresses".into(),
            },
            detail: match w.kind {
                WalletKind::Descriptor => format!(
                    "gap limit {}{}",
                    w.gap_limit.unwrap_or(DEFAULT_GAP_LIMIT),
                    w.birth_height
                        .map(|b| format!(", from height {b}"))
                        .unwrap_or_default()
                ),
                WalletKind::Addresses => format!(
                    "{} address{}",
                    w.address_count,
                    if w.address_count == 1 { "" } else { "es" }
                ),
            },
            btc: fmt::btc(balances.get(&w.full_name()).copied().unwrap_or(0)),
            synced: synced
                .get(&w.id)
                .map_or_else(|| "not yet".into(), |h| h.to_string()),
        })
        .collect();
    let entities = store
        .entities()
        .await?
        .into_iter()
        .filter(|e| staff.id.covers(&e.code))
        .map(|e| e.code.to_string())
        .collect();
    let can_add = staff.id.role_allows(Action::EditRegistry);
    Ok(WalletsPage {
        nav: staff.nav,
        wallets: lines,
        entities,
        can_add,
        error,
        form,
        date,
    })
}

pub(super) async fn wallets(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<EntityQuery>,
) -> Result<Response, PortalError> {
    let page = wallets_page(
        &state,
        staff,
        q.entity.as_deref(),
        None,
        WalletForm::default(),
    )
    .await?;
    render(&page)
}

/// Reads the form's numbers and hands the rest to [`office::check_wallet`], the same check
/// the CLI and the API use; the error text never contains the input.
async fn new_wallet(
    state: &AppState,
    f: &WalletForm,
    visible: Option<&[EntityCode]>,
) -> Result<NewWallet, String> {
    let spec = if f.kind == "addresses" {
        WalletSpec::Addresses(address_file_items("the addresses field", &f.addresses))
    } else {
        let number = |text: &str, what: &str| -> Result<Option<u32>, String> {
            match text.trim() {
                "" => Ok(None),
                t => t
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| format!("the {what} is not a whole number")),
            }
        };
        WalletSpec::Descriptor {
            external: &f.descriptor,
            change: Some(f.change_descriptor.as_str()),
            gap_limit: number(&f.gap_limit, "gap limit")?,
            birth_height: number(&f.birth_height, "birth height")?,
        }
    };
    office::check_wallet(&state.store, &f.entity, &f.name, spec, visible)
        .await
        .map(|c| c.new)
        .map_err(|e| e.to_string())
}

pub(super) async fn wallet_add(
    State(state): State<AppState>,
    staff: Staff,
    Form(f): Form<WalletForm>,
) -> Result<Response, PortalError> {
    let secret = [
        &f.entity,
        &f.name,
        &f.descriptor,
        &f.change_descriptor,
        &f.addresses,
    ]
    .iter()
    .any(|t| refuse_secret(t, "").is_err());
    let result = async {
        refuse_secret(&f.entity, "the entity field").map_err(|e| e.to_string())?;
        let entity = EntityCode::parse(f.entity.trim()).map_err(|e| e.to_string())?;
        // The grant first: the checks below read other wallets.
        staff
            .id
            .require(Action::EditRegistry, Some(&entity))
            .map_err(|e| e.message)?;
        let new = new_wallet(&state, &f, staff.id.scope.as_deref()).await?;
        office::add_wallet(&state.store, &staff.id.actor(), &new)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    }
    .await;
    match result {
        Ok(()) => {
            state.data_changed().await;
            Ok(see_other("/admin/wallets?done=wallet-added"))
        }
        Err(msg) => {
            // A private key is never shown again, not even to the person who typed it.
            let form = if secret {
                WalletForm {
                    entity: f.entity,
                    kind: f.kind,
                    ..Default::default()
                }
            } else {
                f
            };
            let page = wallets_page(&state, staff, None, Some(msg), form).await?;
            Ok((StatusCode::BAD_REQUEST, render(&page)?).into_response())
        }
    }
}

/// One wallet's sync height.
pub struct SyncLine {
    wallet: String,
    synced: String,
}

#[derive(Template)]
#[template(path = "admin/sync.html")]
struct SyncPage {
    nav: Nav,
    configured: bool,
    leader: bool,
    source: String,
    last_run: String,
    last_error: Option<String>,
    passes: u64,
    tip: String,
    start: String,
    wallets: Vec<SyncLine>,
}

pub(super) async fn sync(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Response, PortalError> {
    let status = state.sync.read().await.clone();
    let store = &state.store;
    let tip = store.chain_tip().await?;
    let start = store.chain_start().await?;
    let scope = staff.scope_entity(None)?;
    let heights = store.wallet_sync_heights().await?;
    let wallets = store
        .wallets(scope.as_ref())
        .await?
        .iter()
        .map(|w| SyncLine {
            wallet: w.full_name(),
            synced: heights
                .get(&w.id)
                .map_or_else(|| "not yet".into(), |h| h.to_string()),
        })
        .collect();
    render(&SyncPage {
        nav: staff.nav,
        configured: status.configured,
        leader: status.leader,
        source: status
            .source
            .unwrap_or_else(|| "none on this server".into()),
        last_run: status.last_run.unwrap_or_else(|| "never".into()),
        last_error: status.last_error,
        passes: status.passes,
        tip: tip.map_or_else(
            || "nothing synced yet".into(),
            |t| format!("{} ({}, {})", t.height, fmt::day(t.time), t.hash),
        ),
        start: start.map_or_else(|| "-".into(), |t| t.height.to_string()),
        wallets,
    })
}
