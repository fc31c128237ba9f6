//! What auditors check: the latest signed statement of an entity.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::Q;
use crate::auth::Identity;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct EntityQuery {
    entity: Option<String>,
}

/// A stored statement as served: the signed file as JSON plus where it is pinned.
#[derive(Debug, Serialize)]
pub(crate) struct StatementOut {
    entity: String,
    sha256: String,
    height: u32,
    block_hash: String,
    total_sats: u64,
    public_key: String,
    created_at: String,
    signed: serde_json::Value,
}

pub(crate) async fn latest_statement(
    State(state): State<AppState>,
    identity: Identity,
    Q(q): Q<EntityQuery>,
) -> ApiResult<Json<StatementOut>> {
    let scope = identity
        .read_scope(q.entity.as_deref())?
        .ok_or_else(|| ApiError::bad_request("name the entity: ?entity=CODE"))?;
    let s = state
        .store
        .latest_statement(scope.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no statement of {scope} yet (tesoro statement create --entity {scope})"
            ))
        })?;
    let signed = serde_json::from_str(&s.signed_json).map_err(ApiError::internal)?;
    Ok(Json(StatementOut {
        entity: s.entity,
        sha256: s.sha256,
        height: s.height,
        block_hash: s.block_hash,
        total_sats: s.total_sats,
        public_key: s.public_key,
        created_at: s.created_at,
        signed,
    }))
}
