//! What auditors check: the latest signed statement of an entity, and the policy
//! violations open at a block.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tesoro_core::policy::Violation;
use tesoro_core::EntityCode;
use tesoro_store::holdings::At;

use super::extract::Q;
use super::page::{Page, PageQuery};
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

#[derive(Debug, Deserialize)]
pub(crate) struct ViolationQuery {
    entity: Option<String>,
    at: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// A page of open violations, with the block they were checked at.
#[derive(Debug, Serialize)]
pub(crate) struct ViolationPage {
    height: u32,
    hash: String,
    rules: usize,
    items: Vec<Violation>,
    next_cursor: Option<String>,
}

/// `GET /api/v1/violations`: the rules in force (`tesoro policy import`) evaluated at a block
/// (the tip by default) by the same library call as `tesoro check`, limited to the rules of
/// the caller's grant.
pub(crate) async fn violations(
    State(state): State<AppState>,
    identity: Identity,
    Q(q): Q<ViolationQuery>,
) -> ApiResult<Json<ViolationPage>> {
    let scope = identity.read_scope(q.entity.as_deref())?;
    let at = At::parse(q.at.as_deref()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let store = &state.store;
    let block = store.resolve_at(at).await?;
    let rules = store.policy_rules().await?;
    let check = store.check_policies(&rules, &block, scope.as_ref()).await?;
    // Second fence: a rule of an entity outside the grant never shows.
    let open: Vec<Violation> = check
        .violations
        .into_iter()
        .filter(|v| EntityCode::parse(&v.entity).is_ok_and(|c| identity.covers(&c)))
        .collect();
    let page = Page::of(open, &q.page)?;
    Ok(Json(ViolationPage {
        height: check.height,
        hash: check.hash,
        rules: check.rules,
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}
