//! The web portal: the public transparency pages and the admin area (server-rendered HTML).

use axum::Router;

use crate::AppState;

/// The portal's routes, merged into the server's router.
pub fn routes() -> Router<AppState> {
    Router::new()
}
