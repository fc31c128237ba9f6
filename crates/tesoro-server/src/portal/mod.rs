//! The web portal: the public transparency pages and the office's admin area, rendered on
//! the server with askama (compile-time checked, auto-escaped) and charts as inline SVG, so
//! every page reads without JavaScript.
//!
//! - Public: `/` lists the states, `/state/{code}` is one state's transparency page
//!   (`?at=YYYY-MM-DD` or a height for a past day), `/state/{code}/statement.json` downloads
//!   its latest signed statement. Pages are kept rendered in memory until the data under
//!   them changes (see [`cache`]), so the public page stays fast under load.
//! - Admin (`/admin/…`): sign-in form, entities, wallets, sync status, movements with their
//!   classification and override form, records import, reports with CSV/JSON downloads,
//!   policies and violations, statements, partners and bundles. Roles and entity grants
//!   are those of [`crate::auth`]; every form carries the session's CSRF token.
//!
//! Accessibility: `lang`, a skip link, one `h1` per page, labelled form fields, tables with
//! captions and `th scope`, visible focus, text contrast of at least 4.5:1, and charts with
//! `role="img"`, a label and the same figures in a table.

pub mod admin;
pub mod cache;
pub mod charts;
pub mod fmt;
pub mod ledger;
mod public;
pub mod state_view;
pub mod statements;

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tesoro_store::StoreError;

use crate::AppState;

/// The portal's stylesheet (served with a long cache life).
const STYLE: &str = include_str!("../../templates/style.css");

/// The portal's routes, merged into the server's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(public::index))
        .route("/state/{code}", get(public::state_page))
        .route("/state/{code}/statement.json", get(public::statement_json))
        .route("/static/portal.css", get(stylesheet))
        .merge(admin::routes())
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        STYLE,
    )
        .into_response()
}

/// Why a page could not be shown; answered as an HTML page with the matching status.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Nothing by that name, or no data yet.
    #[error("{0}")]
    NotFound(String),
    /// The request asked for something malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Logged in, but the role or grant does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// Stored data could not be used.
    #[error("{0}")]
    Data(String),
    /// A template failed to render.
    #[error("the page could not be rendered: {0}")]
    Render(#[from] askama::Error),
}

impl From<crate::ApiError> for PortalError {
    fn from(e: crate::ApiError) -> Self {
        match e.status {
            StatusCode::NOT_FOUND => PortalError::NotFound(e.message),
            StatusCode::FORBIDDEN => PortalError::Forbidden(e.message),
            StatusCode::BAD_REQUEST => PortalError::BadRequest(e.message),
            _ => PortalError::Data(e.message),
        }
    }
}

impl PortalError {
    fn status(&self) -> StatusCode {
        match self {
            PortalError::NotFound(_) => StatusCode::NOT_FOUND,
            PortalError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PortalError::Forbidden(_) => StatusCode::FORBIDDEN,
            PortalError::Store(_) | PortalError::Data(_) | PortalError::Render(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

#[derive(Template)]
#[template(path = "public/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
    back: &'a str,
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!("portal: {self}");
        }
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "That request could not be read",
            StatusCode::FORBIDDEN => "Not allowed",
            _ => "Something went wrong",
        };
        let message = if status.is_server_error() {
            format!("{self}. The office's staff can find the details in the server log.")
        } else {
            self.to_string()
        };
        let page = ErrorPage {
            title,
            message,
            back: "/",
        };
        match page.render() {
            Ok(html) => (status, html_headers(), html).into_response(),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}

fn html_headers() -> [(header::HeaderName, &'static str); 1] {
    [(header::CONTENT_TYPE, "text/html; charset=utf-8")]
}

/// Renders a template as an HTML response.
pub fn render<T: Template>(t: &T) -> Result<Response, PortalError> {
    Ok((html_headers(), t.render()?).into_response())
}
