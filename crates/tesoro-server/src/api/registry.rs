//! Entities and wallets: list (within the caller's grant) and add (audited).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tesoro_core::entity::{check_name, tree_order};
use tesoro_core::secret::refuse_secret;
use tesoro_core::EntityCode;
use tesoro_store::{NewEntity, WalletRow};

use super::extract::{J, Q};
use super::page::{Page, PageQuery};
use crate::auth::{Action, Identity};
use crate::error::{ApiError, ApiResult};
use crate::office::{self, WalletSpec};
use crate::AppState;

/// An entity as listed.
#[derive(Debug, Serialize)]
pub struct EntityOut {
    code: String,
    name: String,
    parent: Option<String>,
    depth: usize,
}

pub(crate) async fn list_entities(
    State(state): State<AppState>,
    identity: Identity,
) -> ApiResult<Json<Vec<EntityOut>>> {
    let all = state.store.entities().await?;
    Ok(Json(
        tree_order(&all)
            .into_iter()
            .filter(|r| identity.covers(&r.entity.code))
            .map(|r| EntityOut {
                code: r.entity.code.to_string(),
                name: r.entity.name.clone(),
                parent: r.entity.parent.as_ref().map(|p| p.to_string()),
                depth: r.depth,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewEntityBody {
    code: String,
    name: String,
    parent: Option<String>,
}

pub(crate) async fn add_entity(
    State(state): State<AppState>,
    identity: Identity,
    J(body): J<NewEntityBody>,
) -> ApiResult<(StatusCode, Json<tesoro_core::Entity>)> {
    let bad = |e: tesoro_core::entity::EntityError| ApiError::unprocessable(e.to_string());
    let new = NewEntity {
        code: EntityCode::parse(&body.code).map_err(bad)?,
        name: check_name(&body.name).map_err(bad)?,
        parent: body
            .parent
            .as_deref()
            .map(EntityCode::parse)
            .transpose()
            .map_err(bad)?,
    };
    // A new root needs a grant over everything; an agency needs one over its parent.
    identity.require(Action::EditRegistry, new.parent.as_ref())?;
    let entity = office::add_entity(&state.store, &identity.actor(), &new).await?;
    state.data_changed().await;
    Ok((StatusCode::CREATED, Json(entity)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct WalletQuery {
    entity: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

pub(crate) async fn list_wallets(
    State(state): State<AppState>,
    identity: Identity,
    Q(q): Q<WalletQuery>,
) -> ApiResult<Json<Page<WalletRow>>> {
    let scope = identity.read_scope(q.entity.as_deref())?;
    let wallets = state.store.wallets(scope.as_ref()).await?;
    Page::of(wallets, &q.page).map(Json)
}

/// `POST /api/v1/wallets`: one of `descriptor` or `addresses`.
#[derive(Debug, Deserialize)]
pub(crate) struct NewWalletBody {
    entity: String,
    name: String,
    descriptor: Option<String>,
    change_descriptor: Option<String>,
    gap_limit: Option<u32>,
    birth_height: Option<u32>,
    addresses: Option<Vec<String>>,
}

pub(crate) async fn add_wallet(
    State(state): State<AppState>,
    identity: Identity,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<WalletRow>)> {
    // Refuse key material before anything parses, logs or echoes the body.
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 JSON"))?;
    refuse_secret(text, "the request body").map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let body: NewWalletBody = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("the body is not a wallet: {e}")))?;
    let entity =
        EntityCode::parse(&body.entity).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    identity.require(Action::EditRegistry, Some(&entity))?;
    let spec = match (&body.descriptor, &body.addresses) {
        (Some(desc), None) => WalletSpec::Descriptor {
            external: desc,
            change: body.change_descriptor.as_deref(),
            gap_limit: body.gap_limit,
            birth_height: body.birth_height,
        },
        (None, Some(list)) => WalletSpec::Addresses(
            list.iter()
                .enumerate()
                .map(|(i, s)| (format!("addresses[{i}]"), s.as_str()))
                .collect(),
        ),
        _ => {
            return Err(ApiError::unprocessable(
                "give exactly one of descriptor or addresses",
            ))
        }
    };
    let store = &state.store;
    let checked = office::check_wallet(
        store,
        &body.entity,
        &body.name,
        spec,
        identity.scope.as_deref(),
    )
    .await?;
    let w = office::add_wallet(store, &identity.actor(), &checked.new).await?;
    state.data_changed().await;
    Ok((StatusCode::CREATED, Json(w)))
}
