//! Movements with their classification and the manual override form; off-chain records
//! and their import.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::json;
use tesoro_core::classify::{check_override, RecordKind};
use tesoro_core::movement::{Class, Kind, ALL_KINDS};
use tesoro_core::price::{fmt_date, parse_date};
use tesoro_core::records::parse_records;
use tesoro_core::secret::refuse_secret;
use tesoro_core::EntityCode;
use tesoro_store::audit::AuditEntry;
use tesoro_store::reports::{self as rep, MovementFilter, MovementRow};

use super::{report_err, see_other, urlencode, Cache, Nav, Staff};
use crate::auth::Action;
use crate::portal::{fmt, render, PortalError};
use crate::AppState;

/// Rows per page of the movement list.
const PAGE: usize = 100;

/// Filters of the movement list.
#[derive(Debug, Default, Deserialize)]
pub struct MovementQuery {
    entity: Option<String>,
    class: Option<String>,
    from: Option<String>,
    to: Option<String>,
    unclassified: Option<String>,
    page: Option<usize>,
}

/// A movement as the list shows it.
pub struct Line {
    txid: String,
    link: String,
    entity: String,
    date: String,
    height: u32,
    class: String,
    kind: String,
    source: String,
    net: String,
    fee: String,
    note: String,
}

fn line(m: &MovementRow) -> Line {
    Line {
        link: format!(
            "/admin/movements/{}?entity={}",
            m.txid,
            urlencode(&m.entity)
        ),
        txid: m.txid.clone(),
        entity: m.entity.clone(),
        date: m.date.clone(),
        height: m.height,
        class: m.class.clone(),
        kind: m.kind.clone(),
        source: format!("{:?}", m.source).to_lowercase(),
        net: fmt::btc_signed(m.net_sats),
        fee: fmt::btc(m.fee_sats),
        note: m.note.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "admin/movements.html")]
struct MovementsPage {
    nav: Nav,
    rows: Vec<Line>,
    total: usize,
    unclassified: u64,
    unmatched: u64,
    entity: String,
    class: String,
    from: String,
    to: String,
    only_unclassified: bool,
    prev: Option<String>,
    next: Option<String>,
}

fn opt_date(name: &str, v: Option<&str>) -> Result<Option<time::Date>, PortalError> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_date(s).map_err(|e| PortalError::BadRequest(format!("{name}: {e}"))))
        .transpose()
}

pub(super) async fn movements(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<MovementQuery>,
) -> Result<Response, PortalError> {
    let entity = staff.scope_entity(q.entity.as_deref())?;
    let class: Option<Class> = q
        .class
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| c.parse().map_err(PortalError::BadRequest))
        .transpose()?;
    let filter = MovementFilter {
        entity: entity.clone(),
        from: opt_date("from", q.from.as_deref())?,
        to: opt_date("to", q.to.as_deref())?,
        class,
        unclassified: q.unclassified.is_some(),
    };
    let list = rep::movements(&state.store, &filter, Default::default())
        .await
        .map_err(report_err)?;
    let total = list.movements.len();
    let page = q.page.unwrap_or(0);
    let rows: Vec<Line> = list
        .movements
        .iter()
        .rev()
        .skip(page * PAGE)
        .take(PAGE)
        .map(line)
        .collect();
    let link = |p: usize| {
        format!(
            "/admin/movements?entity={}&class={}&from={}&to={}{}&page={p}",
            urlencode(q.entity.as_deref().unwrap_or("")),
            urlencode(q.class.as_deref().unwrap_or("")),
            urlencode(q.from.as_deref().unwrap_or("")),
            urlencode(q.to.as_deref().unwrap_or("")),
            if q.unclassified.is_some() {
                "&unclassified=1"
            } else {
                ""
            },
        )
    };
    render(&MovementsPage {
        nav: staff.nav,
        rows,
        total,
        unclassified: list.unclassified_in_scope,
        unmatched: list.unmatched_records,
        entity: q.entity.clone().unwrap_or_default(),
        class: q.class.clone().unwrap_or_default(),
        from: q.from.clone().unwrap_or_default(),
        to: q.to.clone().unwrap_or_default(),
        only_unclassified: q.unclassified.is_some(),
        prev: (page > 0).then(|| link(page - 1)),
        next: ((page + 1) * PAGE < total).then(|| link(page + 1)),
    })
}

/// `?entity=` on one movement.
#[derive(Debug, Default, Deserialize)]
pub struct OneQuery {
    entity: Option<String>,
}

/// A kind the override form offers.
pub struct KindOption {
    value: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "admin/movement.html")]
struct MovementPage {
    nav: Nav,
    m: Line,
    received: String,
    sent: String,
    acquired: String,
    disposed: String,
    internal_in: String,
    internal_out: String,
    counterparties: Vec<String>,
    kinds: Vec<KindOption>,
    can_edit: bool,
    error: Option<String>,
    reason: String,
}

async fn find(
    state: &AppState,
    staff: &Staff,
    txid: &str,
    entity: Option<&str>,
) -> Result<MovementRow, PortalError> {
    let entity = staff.scope_entity(entity)?;
    let list = rep::movements(
        &state.store,
        &MovementFilter {
            entity: entity.clone(),
            ..Default::default()
        },
        Default::default(),
    )
    .await
    .map_err(report_err)?;
    let mut found: Vec<MovementRow> = list
        .movements
        .into_iter()
        .filter(|m| m.txid == txid)
        .collect();
    match found.len() {
        0 => Err(PortalError::NotFound(format!(
            "no movement with txid {txid} in your scope"
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(PortalError::BadRequest(format!(
            "transaction {txid} touches several entities: open it from the movement list"
        ))),
    }
}

async fn movement_page(
    state: &AppState,
    staff: Staff,
    m: MovementRow,
    error: Option<String>,
    reason: String,
    chosen: Option<Kind>,
) -> Result<MovementPage, PortalError> {
    let chain_class: Class = m.class.parse().unwrap_or(Class::Internal);
    let current: Option<Kind> = m.kind.parse().ok();
    let eid = match EntityCode::parse(&m.entity) {
        Ok(c) => state.store.entity(&c).await.ok().map(|e| e.id),
        Err(_) => None,
    };
    // The override must keep the chain's direction: offer only kinds of that class.
    let chain_kind_class = state
        .store
        .ledger_movements()
        .await?
        .into_iter()
        .find(|x| x.txid.to_string() == m.txid && Some(x.entity) == eid)
        .map(|x| x.chain_kind.class())
        .unwrap_or(chain_class);
    let kinds = ALL_KINDS
        .iter()
        .filter(|k| check_override(**k, chain_kind_class).is_ok())
        .map(|k| KindOption {
            value: k.as_str(),
            selected: Some(*k) == chosen.or(current),
        })
        .collect();
    let can_edit = staff.id.role_allows(Action::EditLedger)
        && EntityCode::parse(&m.entity).is_ok_and(|c| staff.id.covers(&c));
    Ok(MovementPage {
        received: fmt::btc(m.received_sats),
        sent: fmt::btc(m.sent_sats),
        acquired: fmt::btc(m.acquired_sats),
        disposed: fmt::btc(m.disposed_sats),
        internal_in: fmt::btc(m.internal_in_sats),
        internal_out: fmt::btc(m.internal_out_sats),
        counterparties: m.counterparties.clone(),
        m: line(&m),
        kinds,
        can_edit,
        error,
        reason,
        nav: staff.nav,
    })
}

pub(super) async fn movement(
    State(state): State<AppState>,
    staff: Staff,
    Path(txid): Path<String>,
    Query(q): Query<OneQuery>,
) -> Result<Response, PortalError> {
    let m = find(&state, &staff, &txid, q.entity.as_deref()).await?;
    let page = movement_page(&state, staff, m, None, String::new(), None).await?;
    render(&page)
}

/// The override form.
#[derive(Debug, Deserialize)]
pub struct ClassifyForm {
    kind: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    entity: Option<String>,
}

pub(super) async fn classify(
    State(state): State<AppState>,
    cache: Cache,
    staff: Staff,
    Path(txid): Path<String>,
    Form(f): Form<ClassifyForm>,
) -> Result<Response, PortalError> {
    let m = find(&state, &staff, &txid, f.entity.as_deref()).await?;
    let kind: Result<Kind, String> = f.kind.parse();
    let result = async {
        let kind = kind.clone()?;
        let reason = f.reason.trim();
        if reason.is_empty() {
            return Err("say why: the reason is required and kept in the audit log".to_string());
        }
        let code = EntityCode::parse(&m.entity).map_err(|e| e.to_string())?;
        staff
            .id
            .require(Action::EditLedger, Some(&code))
            .map_err(|e| e.message)?;
        let entity = state.store.entity(&code).await.map_err(|e| e.to_string())?;
        let lm = state
            .store
            .ledger_movements()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|x| x.txid.to_string() == m.txid && x.entity == entity.id)
            .ok_or_else(|| {
                format!(
                    "movement {} of {} is gone; reload the list",
                    m.txid, m.entity
                )
            })?;
        check_override(kind, lm.chain_kind.class())?;
        state
            .store
            .add_override(&lm.txid, entity.id, kind, reason)
            .await
            .map_err(|e| e.to_string())?;
        let before = json!({"kind": m.kind, "source": m.source});
        let after = json!({"kind": kind.as_str(), "reason": reason});
        state
            .store
            .audit_record(&AuditEntry {
                actor: &staff.id.actor(),
                action: "movement.classify",
                subject: &format!("movement:{}/{}", m.txid, m.entity),
                before: Some(&before),
                after: Some(&after),
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            cache.invalidate();
            Ok(see_other(&format!(
                "/admin/movements/{}?entity={}&done=classified",
                m.txid,
                urlencode(&m.entity)
            )))
        }
        Err(msg) => {
            let page =
                movement_page(&state, staff, m, Some(msg), f.reason.clone(), kind.ok()).await?;
            Ok((StatusCode::BAD_REQUEST, render(&page)?).into_response())
        }
    }
}

/// A record as the list shows it.
pub struct RecordLine {
    id: i64,
    kind: String,
    entity: String,
    date: String,
    btc: String,
    fiat: String,
    counterparty: String,
    reference: String,
    matched: String,
}

#[derive(Template)]
#[template(path = "admin/records.html")]
struct RecordsPage {
    nav: Nav,
    rows: Vec<RecordLine>,
    can_import: bool,
    error: Option<String>,
    csv: String,
}

async fn records_page(
    state: &AppState,
    staff: Staff,
    error: Option<String>,
    csv: String,
) -> Result<RecordsPage, PortalError> {
    let all = rep::records_matched(&state.store, Default::default())
        .await
        .map_err(report_err)?;
    let rows = all
        .into_iter()
        .filter(|r| match &r.record.entity {
            Some(c) => EntityCode::parse(c).is_ok_and(|c| staff.id.covers(&c)),
            None => staff.id.scope.is_none(),
        })
        .map(|r| RecordLine {
            id: r.record.id,
            kind: r.record.kind.as_str().to_string(),
            entity: r.record.entity.clone().unwrap_or_default(),
            date: fmt_date(r.record.date),
            btc: fmt::btc(r.record.sats),
            fiat: match (&r.record.fiat, &r.record.currency) {
                (Some(f), Some(c)) => format!("{} {c}", fmt::money(*f)),
                _ => String::new(),
            },
            counterparty: r.record.counterparty.clone().unwrap_or_default(),
            reference: r.record.reference.clone().unwrap_or_default(),
            matched: match (r.matched_txid, r.matched_entity) {
                (Some(t), Some(e)) => format!("{t} ({e})"),
                (Some(t), None) => t,
                _ if r.record.kind == RecordKind::Custodial => "custodial (off chain)".into(),
                _ => "not matched".into(),
            },
        })
        .collect();
    let can_import = staff.id.role_allows(Action::EditLedger);
    Ok(RecordsPage {
        nav: staff.nav,
        rows,
        can_import,
        error,
        csv,
    })
}

pub(super) async fn records(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Response, PortalError> {
    let page = records_page(&state, staff, None, String::new()).await?;
    render(&page)
}

/// The import form: CSV text (pasted, or read from a file by the browser).
#[derive(Debug, Deserialize)]
pub struct ImportForm {
    #[serde(default)]
    csv: String,
    #[serde(default)]
    kind: String,
}

pub(super) async fn records_import(
    State(state): State<AppState>,
    cache: Cache,
    staff: Staff,
    Form(f): Form<ImportForm>,
) -> Result<Response, PortalError> {
    let secret = refuse_secret(&f.csv, "the records").is_err();
    let result = async {
        refuse_secret(&f.csv, "the records").map_err(|e| e.to_string())?;
        let kind: RecordKind = match f.kind.trim() {
            "" => RecordKind::Purchase,
            k => k.parse()?,
        };
        let records = parse_records("the uploaded CSV", &f.csv, kind).map_err(|e| e.to_string())?;
        if records.is_empty() {
            return Err("the CSV has a header but no rows".to_string());
        }
        for r in &records {
            match &r.entity {
                Some(c) => {
                    let code = EntityCode::parse(c).map_err(|e| e.to_string())?;
                    staff
                        .id
                        .require(Action::EditLedger, Some(&code))
                        .map_err(|e| e.message)?;
                }
                None => staff
                    .id
                    .require(Action::EditLedger, None)
                    .map_err(|e| e.message)?,
            }
        }
        let source = format!("portal upload by {}", staff.id.user.username);
        let out = state
            .store
            .import_records(&records, &source)
            .await
            .map_err(|e| e.to_string())?;
        let after =
            json!({"rows": records.len(), "written": out.written, "unchanged": out.unchanged});
        state
            .store
            .audit_record(&AuditEntry {
                actor: &staff.id.actor(),
                action: "records.import",
                subject: "records",
                before: None,
                after: Some(&after),
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            cache.invalidate();
            Ok(see_other("/admin/records?done=records-imported"))
        }
        Err(msg) => {
            let csv = if secret { String::new() } else { f.csv.clone() };
            let page = records_page(&state, staff, Some(msg), csv).await?;
            Ok((StatusCode::BAD_REQUEST, render(&page)?).into_response())
        }
    }
}
