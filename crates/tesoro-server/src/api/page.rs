//! Pagination: `?limit=N&cursor=C` in, `{ "items": [...], "next_cursor": C | null }` out.
//! The cursor is opaque to clients (today: the position of the next item).

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Default page size.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page size.
pub const MAX_LIMIT: usize = 1000;

/// `limit` and `cursor` from the query string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageQuery {
    /// Items per page (1..=1000, default 100). Text, because query strings flattened into
    /// another struct reach serde as strings.
    pub limit: Option<String>,
    /// Where to go on: a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The page size asked for, checked.
    pub fn limit(&self) -> Result<usize, ApiError> {
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_LIMIT,
            Some(l) => l
                .parse()
                .map_err(|_| ApiError::bad_request(format!("limit must be 1 to {MAX_LIMIT}")))?,
        };
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit must be 1 to {MAX_LIMIT}"
            )));
        }
        Ok(limit)
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Cuts the page `q` asks for out of the full, ordered list.
    pub fn of(all: Vec<T>, q: &PageQuery) -> Result<Page<T>, ApiError> {
        let limit = q.limit()?;
        let start: usize = match q.cursor.as_deref() {
            None | Some("") => 0,
            Some(c) => c
                .parse()
                .map_err(|_| ApiError::bad_request("cursor is not one this server gave out"))?,
        };
        let total = all.len();
        let items: Vec<T> = all.into_iter().skip(start).take(limit).collect();
        let next = start + items.len();
        Ok(Page {
            next_cursor: (next < total).then(|| next.to_string()),
            items,
        })
    }
}
