//! Policies and the violations seen, statements made, partner offices and the bundles
//! received from them: what auditors and the office's management look at. Read straight
//! from their tables (migrations 0005 and 0006); a schema without them shows none.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use sqlx::Row;
use tesoro_store::{Store, StoreError};

use super::{Nav, Staff};
use crate::portal::{fmt, render, statements, PortalError};
use crate::AppState;

async fn rows(store: &Store, sql: &'static str) -> Result<Vec<sqlx::any::AnyRow>, PortalError> {
    Ok(sqlx::query(sql)
        .fetch_all(store.pool())
        .await
        .map_err(StoreError::from)?)
}

fn text(r: &sqlx::any::AnyRow, col: &str) -> Result<String, PortalError> {
    Ok(r.try_get::<String, _>(col).map_err(StoreError::from)?)
}

/// One violation seen (the alert outbox keeps one row per violation).
pub struct ViolationLine {
    rule: String,
    entity: String,
    since: String,
    message: String,
    delivered: String,
}

/// The policy file in force.
pub struct PolicyInfo {
    source: String,
    sha256: String,
    imported_at: String,
    text: String,
}

#[derive(Template)]
#[template(path = "admin/policies.html")]
struct PoliciesPage {
    nav: Nav,
    policy: Option<PolicyInfo>,
    violations: Vec<ViolationLine>,
}

pub(super) async fn policies(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Response, PortalError> {
    let store = &state.store;
    let policy = rows(
        store,
        "SELECT source, sha256, imported_at, text FROM policy_sets ORDER BY id DESC LIMIT 1",
    )
    .await?
    .first()
    .map(|r| {
        Ok::<_, PortalError>(PolicyInfo {
            source: text(r, "source")?,
            sha256: text(r, "sha256")?,
            imported_at: text(r, "imported_at")?,
            text: text(r, "text")?,
        })
    })
    .transpose()?;
    let mut violations = Vec::new();
    for r in rows(
        store,
        "SELECT rule, entity, since_height, body, delivered_at FROM alerts ORDER BY seq DESC",
    )
    .await?
    {
        let entity = text(&r, "entity")?;
        let covered = tesoro_core::EntityCode::parse(&entity).is_ok_and(|c| staff.id.covers(&c));
        if !covered {
            continue;
        }
        let body = text(&r, "body")?;
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or(body);
        let since: i64 = r.try_get("since_height").map_err(StoreError::from)?;
        let delivered: Option<String> = r.try_get("delivered_at").map_err(StoreError::from)?;
        violations.push(ViolationLine {
            rule: text(&r, "rule")?,
            entity,
            since: since.to_string(),
            message,
            delivered: delivered.unwrap_or_else(|| "not yet".into()),
        });
    }
    render(&PoliciesPage {
        nav: staff.nav,
        policy,
        violations,
    })
}

/// A statement in the list.
pub struct StatementLine {
    entity: String,
    height: u32,
    date: String,
    total: String,
    sha256: String,
    saved: String,
    link: String,
}

#[derive(Template)]
#[template(path = "admin/statements.html")]
struct StatementsPage {
    nav: Nav,
    rows: Vec<StatementLine>,
}

pub(super) async fn statements(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Response, PortalError> {
    let mut rows = Vec::new();
    for s in statements::all(&state.store).await?.into_iter().rev() {
        let covered = tesoro_core::EntityCode::parse(&s.entity).is_ok_and(|c| staff.id.covers(&c));
        if !covered {
            continue;
        }
        let date = statements::info(&s.signed_json).map_or_else(|_| "?".into(), |i| i.date);
        rows.push(StatementLine {
            link: format!("/state/{}/statement.json", s.entity),
            entity: s.entity,
            height: s.height,
            date,
            total: fmt::btc(s.total_sats),
            sha256: s.sha256,
            saved: s.created_at,
        });
    }
    render(&StatementsPage {
        nav: staff.nav,
        rows,
    })
}

/// A partner office.
pub struct PartnerLine {
    name: String,
    key: String,
    added: String,
}

/// A bundle received.
pub struct BundleLine {
    partner: String,
    issuer: String,
    created: String,
    sha256: String,
    imported: String,
}

#[derive(Template)]
#[template(path = "admin/partners.html")]
struct PartnersPage {
    nav: Nav,
    partners: Vec<PartnerLine>,
    bundles: Vec<BundleLine>,
}

pub(super) async fn partners(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Response, PortalError> {
    let store = &state.store;
    let mut partners = Vec::new();
    for r in rows(
        store,
        "SELECT name, public_key, added_at FROM partners ORDER BY name",
    )
    .await?
    {
        partners.push(PartnerLine {
            name: text(&r, "name")?,
            key: text(&r, "public_key")?,
            added: text(&r, "added_at")?,
        });
    }
    let mut bundles = Vec::new();
    for r in rows(
        store,
        "SELECT p.name AS partner, b.issuer, b.created_at, b.sha256, b.imported_at \
         FROM bundles b JOIN partners p ON p.id = b.partner_id ORDER BY b.id DESC",
    )
    .await?
    {
        bundles.push(BundleLine {
            partner: text(&r, "partner")?,
            issuer: text(&r, "issuer")?,
            created: text(&r, "created_at")?,
            sha256: text(&r, "sha256")?,
            imported: text(&r, "imported_at")?,
        });
    }
    render(&PartnersPage {
        nav: staff.nav,
        partners,
        bundles,
    })
}
