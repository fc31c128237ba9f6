//! The OpenAPI 3.1 document, written by hand next to the handlers (`openapi.json`) and
//! served as is. Tests call every documented path and check each answer against it.

use axum::http::header;
use axum::response::IntoResponse;

/// The document's text.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

pub(crate) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
