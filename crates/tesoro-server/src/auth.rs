//! Who is asking, and may they: sessions, API tokens, CSRF, login rate limiting, and the
//! role × entity-scope checks every handler goes through.
//!
//! - Sessions: a random 32-byte id in an `HttpOnly; SameSite=Strict` cookie; the database
//!   keeps only its SHA-256, so a copied database holds no live session.
//! - CSRF: each session has its own random token; every state-changing request made with the
//!   session cookie must carry it (`X-CSRF-Token` header, a `csrf_token` form field, or a
//!   `csrf_token` query parameter for multipart uploads). Requests with a Bearer token carry
//!   no ambient credential and are exempt. A cross-site `Origin` is refused outright.
//! - Login rate limiting lives in the database (`login_attempts`), not in memory, so the
//!   limit holds across every instance behind a load balancer and across restarts: at most
//!   [`MAX_FAILS_PER_USER`] failures per user name and [`MAX_FAILS_PER_IP`] per client
//!   address in [`FAIL_WINDOW_SECS`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sqlx::Row;
use tesoro_core::EntityCode;
use tesoro_store::StoreError;

use crate::error::ApiError;
use crate::secrets::{constant_time_eq, now_unix, random_hex, sha256_hex};
use crate::users::{self, Role, User};
use crate::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tesoro_session";
/// How long a session lasts.
pub const SESSION_SECS: i64 = 12 * 3600;
/// Failed logins allowed per user name in the window.
pub const MAX_FAILS_PER_USER: i64 = 5;
/// Failed logins allowed per client address in the window.
pub const MAX_FAILS_PER_IP: i64 = 20;
/// The rate-limit window.
pub const FAIL_WINDOW_SECS: i64 = 15 * 60;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A browser session; state-changing requests need its CSRF token.
    Session {
        /// The session's CSRF token.
        csrf_token: String,
    },
    /// An API token (`Authorization: Bearer`).
    Token,
}

/// A logged-in caller: the user, the entities their grant covers, and how they logged in.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user.
    pub user: User,
    /// Codes of the scope entity and everything below it; `None`: every entity.
    pub scope: Option<Vec<EntityCode>>,
    /// Session or token.
    pub credential: Credential,
}

/// What a request wants to do, for [`Identity::require`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read holdings, wallets, movements, reports.
    Read,
    /// Read the audit log and the user list.
    ReadAudit,
    /// Classify movements, import records.
    EditLedger,
    /// Add wallets and entities.
    EditRegistry,
    /// Add users and tokens (needs an admin whose grant covers every entity).
    ManageUsers,
}

impl Identity {
    /// The actor name written in the audit log.
    pub fn actor(&self) -> String {
        match self.credential {
            Credential::Session { .. } => format!("user:{}", self.user.username),
            Credential::Token => format!("token:{}", self.user.username),
        }
    }

    /// The session's CSRF token, for forms (`None` for token callers).
    pub fn csrf_token(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session { csrf_token } => Some(csrf_token),
            Credential::Token => None,
        }
    }

    /// True when the grant covers `entity` (it is the scope entity or below it).
    pub fn covers(&self, entity: &EntityCode) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(entity))
    }

    /// The role allows `action`.
    pub fn role_allows(&self, action: Action) -> bool {
        use Role::*;
        match action {
            Action::Read => true,
            Action::ReadAudit => matches!(self.user.role, Admin | Auditor),
            Action::EditLedger => matches!(self.user.role, Admin | Accountant),
            Action::EditRegistry => self.user.role == Admin,
            Action::ManageUsers => self.user.role == Admin && self.scope.is_none(),
        }
    }

    /// Allows `action` on `entity` (or on everything when `None`), or says why not (403).
    pub fn require(&self, action: Action, entity: Option<&EntityCode>) -> Result<(), ApiError> {
        if !self.role_allows(action) {
            return Err(ApiError::forbidden(format!(
                "the {} role may not do this",
                self.user.role
            )));
        }
        match entity {
            Some(e) if !self.covers(e) => Err(ApiError::forbidden(format!(
                "your grant does not cover entity {e}"
            ))),
            None if self.scope.is_some() && action != Action::Read => Err(ApiError::forbidden(
                "your grant is limited to one entity: name it (?entity=CODE)",
            )),
            _ => Ok(()),
        }
    }

    /// The entity a read is about: the one asked for (checked), else the grant's own
    /// scope entity, else everything (`None`).
    pub fn read_scope(&self, asked: Option<&str>) -> Result<Option<EntityCode>, ApiError> {
        match asked {
            Some(a) => {
                let code =
                    EntityCode::parse(a).map_err(|e| ApiError::bad_request(e.to_string()))?;
                self.require(Action::Read, Some(&code))?;
                Ok(Some(code))
            }
            None => Ok(self.user.entity.clone()),
        }
    }
}

/// The hidden form field carrying the session's CSRF token, for every state-changing form.
pub fn csrf_field(identity: &Identity) -> String {
    let token = identity.csrf_token().unwrap_or_default();
    // The token is hex, so it needs no escaping.
    format!(r#"<input type="hidden" name="csrf_token" value="{token}">"#)
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn scope_of(state: &AppState, user: &User) -> Result<Option<Vec<EntityCode>>, ApiError> {
    match &user.entity {
        None => Ok(None),
        Some(code) => Ok(Some(state.store.entity_subtree(code).await?)),
    }
}

/// Looks up the caller from the request's headers; `Ok(None)` when none was given.
/// A session cookie or token that is given but not valid is also `None`: the caller is
/// simply not logged in.
pub async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
    if let Some(token) = bearer(headers) {
        let Some(user) = users::user_for_token(&state.store, token).await? else {
            return Ok(None);
        };
        let scope = scope_of(state, &user).await?;
        return Ok(Some(Identity {
            user,
            scope,
            credential: Credential::Token,
        }));
    }
    let Some(sid) = cookie_value(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let row = sqlx::query(
        "SELECT user_id, csrf_token FROM sessions WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(sha256_hex(sid.as_bytes()))
    .bind(now_unix())
    .fetch_optional(state.store.pool())
    .await
    .map_err(StoreError::from)?;
    let Some(row) = row else { return Ok(None) };
    let user_id: i64 = row.try_get("user_id").map_err(StoreError::from)?;
    let csrf_token: String = row.try_get("csrf_token").map_err(StoreError::from)?;
    let Some(user) = users::user_by_id(&state.store, user_id)
        .await
        .map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    let scope = scope_of(state, &user).await?;
    Ok(Some(Identity {
        user,
        scope,
        credential: Credential::Session { csrf_token },
    }))
}

impl FromRequestParts<AppState> for Identity {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(id) = parts.extensions.get::<Identity>() {
            return Ok(id.clone());
        }
        let id = identify(state, &parts.headers)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        parts.extensions.insert(id.clone());
        Ok(id)
    }
}

impl OptionalFromRequestParts<AppState> for Identity {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        if let Some(id) = parts.extensions.get::<Identity>() {
            return Ok(Some(id.clone()));
        }
        let id = identify(state, &parts.headers).await?;
        if let Some(id) = &id {
            parts.extensions.insert(id.clone());
        }
        Ok(id)
    }
}

/// An extractor that admits admins only (401 without login, 403 for other roles); for the
/// admin pages.
#[derive(Debug, Clone)]
pub struct AdminGuard(pub Identity);

impl FromRequestParts<AppState> for AdminGuard {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let id = <Identity as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        if id.user.role != Role::Admin {
            return Err(ApiError::forbidden("this page is for administrators"));
        }
        Ok(AdminGuard(id))
    }
}

/// An extractor for staff pages: any logged-in user (401 without login).
#[derive(Debug, Clone)]
pub struct StaffGuard(pub Identity);

impl FromRequestParts<AppState> for StaffGuard {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(StaffGuard(
            <Identity as FromRequestParts<AppState>>::from_request_parts(parts, state).await?,
        ))
    }
}

/// The client's address: the peer, or the first `X-Forwarded-For` hop when the server is
/// told to trust its proxy.
pub fn client_ip(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    if state.settings.trust_forwarded {
        if let Some(first) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
        {
            return first.to_string();
        }
    }
    peer.map(|p| p.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// A new session after a good password.
#[derive(Debug, Clone, Serialize)]
pub struct LoginOk {
    /// The user.
    pub user: User,
    /// The session's CSRF token (send it back as `X-CSRF-Token` or `csrf_token`).
    pub csrf_token: String,
    /// The cookie value (also set as `Set-Cookie`).
    #[serde(skip)]
    pub session_id: String,
}

impl LoginOk {
    /// The `Set-Cookie` header for this session.
    pub fn set_cookie(&self, secure: bool) -> HeaderValue {
        session_cookie(&self.session_id, SESSION_SECS, secure)
    }
}

fn session_cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let s = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&s)
        .unwrap_or_else(|_| HeaderValue::from_static("tesoro_session=; Max-Age=0"))
}

/// The `Set-Cookie` header that ends a session in the browser.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("tesoro_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Checks a password and opens a session, counting failures against the user name and the
/// client address (429 when either is over its limit, before the password is looked at).
pub async fn login(
    state: &AppState,
    ip: &str,
    username: &str,
    password: &str,
) -> Result<LoginOk, ApiError> {
    let store = &state.store;
    let now = now_unix();
    let since = now - FAIL_WINDOW_SECS;
    let username = username.trim().to_ascii_lowercase();
    let count = |sql: &'static str, key: String| async move {
        sqlx::query(sql)
            .bind(key)
            .bind(since)
            .fetch_one(store.pool())
            .await
            .and_then(|r| r.try_get::<i64, _>("n"))
            .map_err(StoreError::from)
    };
    let by_user = count(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM login_attempts WHERE username = $1 AND at > $2",
        username.clone(),
    )
    .await?;
    let by_ip = count(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM login_attempts WHERE ip = $1 AND at > $2",
        ip.to_string(),
    )
    .await?;
    if by_user >= MAX_FAILS_PER_USER || by_ip >= MAX_FAILS_PER_IP {
        return Err(ApiError::too_many(format!(
            "too many failed logins; wait {} minutes and try again",
            FAIL_WINDOW_SECS / 60
        )));
    }
    let found = users::user_for_login(store, &username).await?;
    let ok = match &found {
        Some((_, hash)) => users::verify_password(password, hash).await,
        None => {
            // Same work as a real check, so response time does not tell which names exist.
            let _ = users::verify_password(password, &state.settings.dummy_hash).await;
            false
        }
    };
    let Some((user, _)) = found.filter(|_| ok) else {
        let mut tx = store.begin_write().await?;
        sqlx::query("DELETE FROM login_attempts WHERE at <= $1")
            .bind(since)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        sqlx::query("INSERT INTO login_attempts (ip, username, at) VALUES ($1, $2, $3)")
            .bind(ip)
            .bind(&username)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong user name or password",
        ));
    };
    let session_id = random_hex(32);
    let csrf_token = random_hex(32);
    let mut tx = store.begin_write().await?;
    sqlx::query("DELETE FROM login_attempts WHERE username = $1")
        .bind(&username)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(sha256_hex(session_id.as_bytes()))
    .bind(user.id)
    .bind(&csrf_token)
    .bind(now)
    .bind(now + SESSION_SECS)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(LoginOk {
        user,
        csrf_token,
        session_id,
    })
}

/// Ends the session the request's cookie names (a no-op without one).
pub async fn logout(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(sid) = cookie_value(headers, SESSION_COOKIE) {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(sha256_hex(sid.as_bytes()))
            .execute(state.store.pool())
            .await
            .map_err(StoreError::from)?;
    }
    Ok(())
}

fn is_state_changing(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Middleware: refuses cross-site state-changing requests and, for requests made with a
/// session cookie, those without the session's CSRF token (403).
pub async fn csrf_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !is_state_changing(request.method()) {
        return next.run(request).await;
    }
    let headers = request.headers();
    if let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
        if origin_host != host {
            return ApiError::forbidden("cross-site request refused").into_response();
        }
    }
    if bearer(headers).is_some() || cookie_value(headers, SESSION_COOKIE).is_none() {
        return next.run(request).await;
    }
    let identity = match identify(&state, headers).await {
        Ok(Some(id)) => id,
        // An expired or unknown cookie: the handler answers 401 (or lets a login through).
        Ok(None) => return next.run(request).await,
        Err(e) => return e.into_response(),
    };
    let expected = identity.csrf_token().unwrap_or_default().to_string();
    let given_header = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let given_query = query_param(request.uri().query(), "csrf_token").map(str::to_string);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let is_multipart = content_type.starts_with("multipart/form-data");
    let (request, given_form) =
        if given_header.is_none() && given_query.is_none() && (is_multipart || is_form) {
            // A form (an upload form too): read it once (size-limited), find its token field,
            // hand the same bytes on to the handler.
            let (parts, body) = request.into_parts();
            let bytes = match axum::body::to_bytes(body, state.settings.max_form_bytes).await {
                Ok(b) => b,
                Err(_) => {
                    let what = if is_multipart { "upload" } else { "form" };
                    return ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        format!("the {what} is too large"),
                    )
                    .into_response();
                }
            };
            let token = if is_multipart {
                multipart_value(&content_type, &bytes, "csrf_token")
            } else {
                form_urlencoded_value(&bytes, "csrf_token")
            };
            (
                Request::from_parts(parts, axum::body::Body::from(bytes)),
                token,
            )
        } else {
            (request, None)
        };
    let given = given_header.or(given_query).or(given_form);
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), expected.as_bytes()) => {
            let mut request = request;
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        _ => ApiError::forbidden(
            "missing or wrong CSRF token: reload the page, or send the session's token as X-CSRF-Token",
        )
        .into_response(),
    }
}

/// The text of the form field `name` in a multipart/form-data body (RFC 7578), if it has
/// one; only small values (the token is 64 hex digits). Parts are split on the boundary the
/// content type names; the scan stops at the field, which forms put first.
fn multipart_value(content_type: &str, body: &[u8], name: &str) -> Option<String> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    if boundary.is_empty() {
        return None;
    }
    let delim = format!("--{boundary}");
    let next_delim = format!("\r\n{delim}");
    let want = format!("name=\"{name}\"");
    let mut rest = &body[find(body, delim.as_bytes())? + delim.len()..];
    loop {
        let part = rest.strip_prefix(b"\r\n")?; // "--" here ends the body
        let head_end = find(part, b"\r\n\r\n")?;
        let headers = std::str::from_utf8(&part[..head_end]).ok()?;
        let content = &part[head_end + 4..];
        let end = find(content, next_delim.as_bytes())?;
        let is_it = headers.split("\r\n").any(|h| {
            h.to_ascii_lowercase().starts_with("content-disposition:")
                && h.split(';').skip(1).any(|p| p.trim() == want)
        });
        if is_it {
            let v = std::str::from_utf8(&content[..end]).ok()?;
            return (v.len() <= 256).then(|| v.to_string());
        }
        rest = &content[end + next_delim.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn form_urlencoded_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        // The token is hex: no percent-decoding needed for a match.
        .map(|(_, v)| v.to_string())
}

/// The peer address, when the server was started with connect info (a bare router driven
/// in-process has none). Never rejects.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// The peer address from a request's extensions (see [`Peer`] for an extractor).
pub fn peer(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

#[cfg(test)]
mod tests {
    use super::multipart_value;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    #[test]
    fn the_token_field_is_found_and_a_file_named_like_it_is_not() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"csrf_token\"\r\n\r\nnot it\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc123\r\n--XyZ--\r\n";
        assert_eq!(
            multipart_value(CT, body, "csrf_token").as_deref(),
            Some("abc123")
        );
        let none = b"--XyZ\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\npurchase\r\n--XyZ--\r\n";
        assert_eq!(multipart_value(CT, none, "csrf_token"), None);
        assert_eq!(
            multipart_value("multipart/form-data", body, "csrf_token"),
            None
        );
        assert_eq!(multipart_value(CT, b"garbage", "csrf_token"), None);
    }
}
