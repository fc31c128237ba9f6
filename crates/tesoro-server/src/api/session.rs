//! Login, logout and "who am I".

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::extract::J;
use crate::auth::{self, Identity};
use crate::error::ApiError;
use crate::AppState;

#[derive(Deserialize)]
pub(crate) struct LoginBody {
    username: String,
    password: String,
}

pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: auth::Peer,
    J(body): J<LoginBody>,
) -> Result<Response, ApiError> {
    let ip = auth::client_ip(&state, &headers, peer.0);
    let ok = auth::login(&state, &ip, &body.username, &body.password).await?;
    let cookie = ok.set_cookie(state.settings.secure_cookies);
    Ok(([(header::SET_COOKIE, cookie)], Json(ok)).into_response())
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::logout(&state, &headers).await?;
    Ok((
        [(header::SET_COOKIE, auth::clear_cookie())],
        Json(json!({"logged_out": true})),
    )
        .into_response())
}

pub(crate) async fn me(identity: Identity) -> Json<serde_json::Value> {
    Json(json!({
        "user": identity.user,
        "scope": identity.scope,
        "csrf_token": identity.csrf_token(),
    }))
}
