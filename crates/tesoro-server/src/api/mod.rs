//! The JSON API under `/api/v1`, mirroring the CLI. Every handler checks the caller's role
//! and entity scope through [`crate::auth::Identity::require`] before it reads or writes.

mod admin;
pub mod extract;
mod ledger;
pub mod openapi;
mod oversight;
pub mod page;
mod registry;
mod session;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use serde::Deserialize;
use tesoro_core::EntityCode;

use crate::error::ApiError;
use crate::AppState;
use extract::Q;

/// Every API route: path and handlers. The OpenAPI document must name each path (a test
/// checks it both ways).
fn table() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/api/v1/openapi.json", get(openapi::document)),
        ("/api/v1/health", get(health)),
        ("/api/v1/login", post(session::login)),
        ("/api/v1/logout", post(session::logout)),
        ("/api/v1/me", get(session::me)),
        ("/api/v1/public/summary", get(public_summary)),
        (
            "/api/v1/entities",
            get(registry::list_entities).post(registry::add_entity),
        ),
        (
            "/api/v1/wallets",
            get(registry::list_wallets).post(registry::add_wallet),
        ),
        ("/api/v1/balance", get(ledger::balance)),
        ("/api/v1/utxos", get(ledger::utxos)),
        ("/api/v1/history", get(ledger::history)),
        ("/api/v1/movements", get(ledger::movements)),
        ("/api/v1/movements/{txid}/classify", post(ledger::classify)),
        ("/api/v1/reports/holdings", get(ledger::report_holdings)),
        (
            "/api/v1/reports/accumulation",
            get(ledger::report_accumulation),
        ),
        ("/api/v1/reports/pnl", get(ledger::report_pnl)),
        ("/api/v1/sync", get(admin::sync_status)),
        (
            "/api/v1/statements/latest",
            get(oversight::latest_statement),
        ),
        ("/api/v1/violations", get(oversight::violations)),
        (
            "/api/v1/users",
            get(admin::list_users).post(admin::add_user),
        ),
        ("/api/v1/audit", get(admin::audit_log)),
        ("/api/v1/audit/verify", get(admin::audit_verify)),
    ]
}

/// Every API route.
pub fn routes() -> Router<AppState> {
    table()
        .into_iter()
        .fold(Router::new(), |r, (path, handler)| r.route(path, handler))
}

/// The paths [`routes`] serves, in OpenAPI's `{param}` form.
pub fn route_paths() -> Vec<&'static str> {
    table().into_iter().map(|(p, _)| p).collect()
}

/// The answer for any path no route matches.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such page or endpoint (the API is documented at /api/v1/openapi.json)")
}

/// The answer for a known path asked with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not take that method (see /api/v1/openapi.json)",
    )
}

async fn health() -> &'static str {
    "ok"
}

#[derive(Deserialize)]
struct EntityQuery {
    entity: Option<String>,
}

async fn public_summary(
    State(state): State<AppState>,
    Q(q): Q<EntityQuery>,
) -> Result<Response, ApiError> {
    let entity = q
        .entity
        .as_deref()
        .map(EntityCode::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let bytes = crate::public::summary_json(&state, entity.as_ref()).await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response())
}
