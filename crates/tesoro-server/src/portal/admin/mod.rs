//! The office's admin area: sign-in, and one page per job (entities, wallets, sync,
//! movements, records, reports, policies, statements, partners).
//!
//! Every page needs a signed-in admin, accountant or auditor; a viewer is turned away
//! (403), a visitor without a session is sent to the sign-in form. What a page lets one
//! *change* follows [`crate::auth::Identity::require`]: admins edit the registry,
//! accountants the ledger, auditors read; everyone only within their entity grant. Every
//! form posts the session's CSRF token (checked by [`crate::auth::csrf_guard`]).

mod ledger_pages;
mod oversight;
mod registry;
mod reports;

pub use ledger_pages::RECORDS_MAX_BYTES;

use askama::Template;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tesoro_core::EntityCode;

use super::{render, PortalError};
use crate::auth::{self, Identity};
use crate::users::Role;
use crate::AppState;

/// Admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/login", get(login_form).post(login_submit))
        .route("/admin/logout", post(logout))
        .route("/admin", get(home))
        .route(
            "/admin/entities",
            get(registry::entities).post(registry::entity_add),
        )
        .route(
            "/admin/wallets",
            get(registry::wallets).post(registry::wallet_add),
        )
        .route("/admin/sync", get(registry::sync))
        .route("/admin/movements", get(ledger_pages::movements))
        .route(
            "/admin/movements/{txid}",
            get(ledger_pages::movement).post(ledger_pages::classify),
        )
        .route(
            "/admin/records",
            get(ledger_pages::records)
                .post(ledger_pages::records_import)
                // The file's own limit is checked while reading; this leaves room for the
                // form's other fields.
                .layer(DefaultBodyLimit::max(RECORDS_MAX_BYTES + (64 << 10))),
        )
        .route("/admin/reports", get(reports::index))
        .route("/admin/reports/{name}", get(reports::report))
        .route("/admin/policies", get(oversight::policies))
        .route("/admin/statements", get(oversight::statements))
        .route("/admin/partners", get(oversight::partners))
}

/// What the admin layout shows on every page.
pub struct Nav {
    /// User name.
    pub user: String,
    /// Role name.
    pub role: String,
    /// The grant's entity, if limited to one.
    pub scope: Option<String>,
    /// CSRF token for the forms.
    pub csrf: String,
    /// A one-line confirmation after a change.
    pub flash: Option<String>,
}

/// A signed-in member of staff allowed in the admin area.
pub struct Staff {
    /// Who.
    pub id: Identity,
    /// For the layout.
    pub nav: Nav,
}

impl Staff {
    /// The entity a page is about: the one asked for (checked against the grant), else the
    /// grant's own entity, else everything.
    pub fn scope_entity(&self, asked: Option<&str>) -> Result<Option<EntityCode>, PortalError> {
        let asked = asked.map(str::trim).filter(|s| !s.is_empty());
        Ok(self.id.read_scope(asked)?)
    }
}

/// Fixed confirmations (`?done=`), so a link cannot make the page say anything else.
fn flash_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "wallet-added" => "Wallet added. Its coins appear after the next sync.",
        "entity-added" => "Entity added.",
        "classified" => "Classification saved; the reason is kept in the audit log.",
        "records-imported" => "Records imported.",
        _ => return None,
    })
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let id =
            <Identity as axum::extract::OptionalFromRequestParts<AppState>>::from_request_parts(
                parts, state,
            )
            .await
            .map_err(|e| PortalError::from(e).into_response())?;
        let Some(id) = id else {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/admin".into());
            let to = format!("/admin/login?next={}", urlencode(&next));
            return Err(Redirect::to(&to).into_response());
        };
        if id.user.role == Role::Viewer {
            return Err(PortalError::Forbidden(
                "the office pages are for administrators, accountants and auditors; a viewer \
                 reads the public pages and the API. Ask an administrator for another role."
                    .into(),
            )
            .into_response());
        }
        let flash = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "done")
                .and_then(|(_, v)| flash_text(v))
                .map(str::to_string)
        });
        let nav = Nav {
            user: id.user.username.clone(),
            role: id.user.role.as_str().to_string(),
            scope: id.user.entity.as_ref().map(|e| e.to_string()),
            csrf: id.csrf_token().unwrap_or_default().to_string(),
            flash,
        };
        Ok(Staff { id, nav })
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    error: Option<String>,
    next: String,
    username: String,
    /// The current session's CSRF token, when the browser is already signed in (signing
    /// in as someone else is a state-changing request of that session).
    csrf: String,
}

/// `?next=` on the sign-in form.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only paths inside the admin area: never an open redirect.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/admin") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/admin".into(),
    }
}

async fn login_form(
    current: Option<Identity>,
    Query(q): Query<NextQuery>,
) -> Result<Response, PortalError> {
    render(&LoginPage {
        error: None,
        next: safe_next(q.next.as_deref()),
        username: String::new(),
        csrf: csrf_of(current.as_ref()),
    })
}

fn csrf_of(id: Option<&Identity>) -> String {
    id.and_then(|i| i.csrf_token())
        .unwrap_or_default()
        .to_string()
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

async fn login_submit(
    State(state): State<AppState>,
    current: Option<Identity>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
    Form(f): Form<LoginForm>,
) -> Result<Response, PortalError> {
    let ip = auth::client_ip(&state, &headers, auth::peer(&ext));
    let next = safe_next(f.next.as_deref());
    match auth::login(&state, &ip, &f.username, &f.password).await {
        Ok(ok) => {
            let mut resp = Redirect::to(&next).into_response();
            resp.headers_mut().insert(
                header::SET_COOKIE,
                ok.set_cookie(state.settings.secure_cookies),
            );
            Ok(resp)
        }
        Err(e)
            if e.status == StatusCode::UNAUTHORIZED
                || e.status == StatusCode::TOO_MANY_REQUESTS =>
        {
            let page = LoginPage {
                error: Some(e.message.clone()),
                next,
                username: f.username.trim().to_string(),
                csrf: csrf_of(current.as_ref()),
            };
            Ok((e.status, render(&page)?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    auth::logout(&state, &headers).await?;
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, auth::clear_cookie());
    Ok(resp)
}

#[derive(Template)]
#[template(path = "admin/home.html")]
struct HomePage {
    nav: Nav,
    total_btc: String,
    height: u32,
    date: String,
    wallets: usize,
    unclassified: u64,
}

async fn home(State(state): State<AppState>, staff: Staff) -> Result<Response, PortalError> {
    let store = &state.store;
    let scope = staff.scope_entity(None)?;
    let wallets = store.wallets(scope.as_ref()).await?;
    let (total, height, date) = match store.chain_tip().await? {
        Some(tip) => {
            let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
            let sats: u64 = if ids.is_empty() {
                0
            } else {
                store
                    .utxos_at(Some(tip.height), Some(&ids))
                    .await?
                    .iter()
                    .map(|u| u.value.to_sat())
                    .sum()
            };
            (sats, tip.height, super::fmt::day(tip.time))
        }
        None => (0, 0, "nothing synced yet".into()),
    };
    let list = tesoro_store::reports::movements(
        store,
        &tesoro_store::reports::MovementFilter {
            entity: scope.clone(),
            unclassified: true,
            ..Default::default()
        },
        Default::default(),
    )
    .await
    .map_err(report_err)?;
    render(&HomePage {
        nav: staff.nav,
        total_btc: super::fmt::btc(total),
        height,
        date,
        wallets: wallets.len(),
        unclassified: list.unclassified_in_scope,
    })
}

/// A report failure as a page error.
pub fn report_err(e: tesoro_store::reports::ReportError) -> PortalError {
    use tesoro_store::reports::ReportError as R;
    match e {
        R::Store(s) => PortalError::Store(s),
        other => PortalError::BadRequest(other.to_string()),
    }
}

/// Sends the browser back to `to` after a change (303: the reload is a GET).
pub fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}
