//! Users, the audit log and the sync status.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tesoro_core::EntityCode;
use tesoro_store::{AuditReport, AuditRow};

use super::extract::{J, Q};
use super::page::PageQuery;
use crate::auth::{Action, Identity};
use crate::error::{ApiError, ApiResult, ServerError};
use crate::users::{self, Role, User};
use crate::{AppState, SyncStatus};

pub(crate) async fn list_users(
    State(state): State<AppState>,
    identity: Identity,
) -> ApiResult<Json<Vec<User>>> {
    identity.require(Action::ReadAudit, None)?;
    let all = users::list_users(&state.store)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        all.into_iter()
            .filter(|u| match &u.entity {
                Some(e) => identity.covers(e),
                None => identity.scope.is_none(),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewUserBody {
    username: String,
    password: String,
    role: String,
    entity: Option<String>,
}

pub(crate) async fn add_user(
    State(state): State<AppState>,
    identity: Identity,
    J(body): J<NewUserBody>,
) -> ApiResult<(StatusCode, Json<User>)> {
    identity.require(Action::ManageUsers, None)?;
    let role: Role = body.role.parse().map_err(ApiError::unprocessable)?;
    let entity = body
        .entity
        .as_deref()
        .map(EntityCode::parse)
        .transpose()
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let user = users::create_user_as(
        &state.store,
        &identity.actor(),
        &body.username,
        &body.password,
        role,
        entity,
    )
    .await
    .map_err(|e| match e {
        ServerError::Invalid(m) if m.contains("already exists") => ApiError::conflict(m),
        ServerError::Invalid(m) => ApiError::unprocessable(m),
        ServerError::Store(s) => s.into(),
        other => ApiError::internal(other),
    })?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(flatten)]
    page: PageQuery,
}

/// A page of the audit log, oldest first.
#[derive(Debug, Serialize)]
pub(crate) struct AuditPage {
    items: Vec<AuditRow>,
    next_cursor: Option<String>,
}

pub(crate) async fn audit_log(
    State(state): State<AppState>,
    identity: Identity,
    Q(q): Q<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    identity.require(Action::ReadAudit, None)?;
    let limit = q.page.limit()?;
    // Keyset pagination on seq: stable while rows are appended.
    let after: i64 = match q.page.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::bad_request("cursor is not one this server gave out"))?,
    };
    let mut rows = state.store.audit_rows(after, limit as i64 + 1).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = more
        .then(|| rows.last().map(|r| r.seq.to_string()))
        .flatten();
    Ok(Json(AuditPage {
        items: rows,
        next_cursor,
    }))
}

pub(crate) async fn audit_verify(
    State(state): State<AppState>,
    identity: Identity,
) -> ApiResult<Json<AuditReport>> {
    identity.require(Action::ReadAudit, None)?;
    Ok(Json(state.store.audit_verify().await?))
}

/// What `GET /api/v1/sync` says.
#[derive(Debug, Serialize)]
pub(crate) struct SyncOut {
    network: String,
    backend: &'static str,
    tip_height: Option<u32>,
    tip_hash: Option<String>,
    tip_time: Option<u32>,
    worker: SyncStatus,
}

pub(crate) async fn sync_status(
    State(state): State<AppState>,
    _identity: Identity,
) -> ApiResult<Json<SyncOut>> {
    let tip = state.store.chain_tip().await?;
    Ok(Json(SyncOut {
        network: state.store.network().name().to_string(),
        backend: state.store.backend().name(),
        tip_height: tip.map(|t| t.height),
        tip_hash: tip.map(|t| t.hash.to_string()),
        tip_time: tip.map(|t| t.time),
        worker: state.sync.read().await.clone(),
    }))
}
