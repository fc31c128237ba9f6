//! The public pages: the list of states, one state's transparency page, and the download
//! of its latest signed statement. No login; nothing here changes data.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tesoro_core::price::parse_date;
use tesoro_core::{Entity, EntityCode};
use tesoro_store::Store;

use super::state_view::{self, StateView};
use super::{fmt, statements, PortalError};
use crate::AppState;

#[derive(Template)]
#[template(path = "public/index.html")]
struct IndexPage {
    states: Vec<StateRow>,
}

struct StateRow {
    code: String,
    name: String,
    btc: String,
    date: String,
}

#[derive(Template)]
#[template(path = "public/state.html")]
struct StatePage {
    v: StateView,
}

/// `?at=` on the state page.
#[derive(Debug, Deserialize)]
pub struct AtQuery {
    at: Option<String>,
}

fn html(body: axum::body::Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=5"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: every state (root entity) with its holdings at the tip.
pub async fn index(State(state): State<AppState>) -> Result<Response, PortalError> {
    let store = state.store.clone();
    let body = state
        .pages
        .get_or_build(&state.version, &state.store, "index", || async move {
            let entities = store.entities().await?;
            let tip = store.chain_tip().await?;
            let mut states = Vec::new();
            for e in entities.iter().filter(|e| e.parent.is_none()) {
                let wallets = store.wallets(Some(&e.code)).await?;
                let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
                let sats: u64 = match (&tip, ids.is_empty()) {
                    (Some(t), false) => store
                        .utxos_at(Some(t.height), Some(&ids))
                        .await?
                        .iter()
                        .map(|u| u.value.to_sat())
                        .sum(),
                    _ => 0,
                };
                states.push(StateRow {
                    code: e.code.to_string(),
                    name: e.name.clone(),
                    btc: fmt::btc(sats),
                    date: tip.map_or_else(|| "not synced yet".into(), |t| fmt::day(t.time)),
                });
            }
            Ok(IndexPage { states }.render()?)
        })
        .await?;
    Ok(html(body))
}

async fn state_entity(state: &AppState, code: &str) -> Result<Entity, PortalError> {
    let code = EntityCode::parse(code).map_err(|e| PortalError::NotFound(e.to_string()))?;
    entity_of(&state.store, &code).await
}

async fn entity_of(store: &Store, code: &EntityCode) -> Result<Entity, PortalError> {
    let entity = store.entity(code).await.map_err(|e| match e {
        tesoro_store::StoreError::NotFound(_) => {
            PortalError::NotFound(format!("no state has the code {code}"))
        }
        other => PortalError::Store(other),
    })?;
    Ok(entity)
}

/// `GET /state/{code}?at=`: the transparency page.
pub async fn state_page(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<AtQuery>,
) -> Result<Response, PortalError> {
    // The entity is read inside the build: a page served from memory asks the database
    // nothing (on PostgreSQL that one query per request held the page's p99 near 200 ms).
    let code = EntityCode::parse(&code).map_err(|e| PortalError::NotFound(e.to_string()))?;
    let asked = q.at.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    // Checked before it becomes a cache key.
    let asked_day = match &asked {
        Some(a) if !a.chars().all(|c| c.is_ascii_digit()) => Some(parse_date(a).map_err(|e| {
            PortalError::BadRequest(format!(
                "at={a}: give a day as YYYY-MM-DD or a block height ({e})"
            ))
        })?),
        Some(a) if a.len() > 10 => {
            return Err(PortalError::BadRequest(format!(
                "at={a}: not a block height"
            )))
        }
        _ => None,
    };
    let key = format!("state:{}:{}", code, asked.as_deref().unwrap_or(""));
    let store = state.store.clone();
    let body = state
        .pages
        .get_or_build(&state.version, &state.store, &key, || async move {
            let entity = entity_of(&store, &code).await?;
            let block = state_view::resolve_at(&store, asked.as_deref()).await?;
            let v = state_view::build(&store, &entity, &block, asked, asked_day).await?;
            Ok(StatePage { v }.render()?)
        })
        .await?;
    Ok(html(body))
}

/// `GET /state/{code}/statement.json`: the latest signed statement, as signed.
pub async fn statement_json(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Response, PortalError> {
    let entity = state_entity(&state, &code).await?;
    let tip = state
        .store
        .chain_tip()
        .await?
        .map_or(u32::MAX, |t| t.height);
    let s = statements::latest(&state.store, entity.code.as_str(), tip)
        .await?
        .ok_or_else(|| {
            PortalError::NotFound(format!(
                "{} has not published a signed statement yet",
                entity.name
            ))
        })?;
    let disposition = format!(
        "attachment; filename=\"statement-{}-{}.json\"",
        entity.code, s.height
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        s.json,
    )
        .into_response())
}
