//! Movements with their classification and the manual override form; off-chain records
//! and their import.

use askama::Template;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use tesoro_core::classify::{check_override, RecordKind};
use tesoro_core::movement::{Class, Kind, ALL_KINDS};
use tesoro_core::price::{fmt_date, parse_date};
use tesoro_core::records::parse_records;
use tesoro_core::secret::refuse_secret;
use tesoro_core::EntityCode;
use tesoro_store::reports::{self as rep, MovementFilter, MovementRow};

use super::{report_err, see_other, urlencode, Nav, Staff};
use crate::auth::Action;
use crate::office;
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
    staff: Staff,
    Path(txid): Path<String>,
    Form(f): Form<ClassifyForm>,
) -> Result<Response, PortalError> {
    let m = find(&state, &staff, &txid, f.entity.as_deref()).await?;
    let kind: Result<Kind, String> = f.kind.parse();
    let result = async {
        let kind = kind.clone()?;
        let code = EntityCode::parse(&m.entity).map_err(|e| e.to_string())?;
        staff
            .id
            .require(Action::EditLedger, Some(&code))
            .map_err(|e| e.message)?;
        let txid: bitcoin::Txid = m
            .txid
            .parse()
            .map_err(|_| format!("{} is not a txid", m.txid))?;
        let store = &state.store;
        let (lm, code) = office::find_movement(store, &txid, Some(&code))
            .await
            .map_err(|e| e.to_string())?;
        office::classify(store, &staff.id.actor(), &lm, &code, kind, &f.reason)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            state.data_changed().await;
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

/// Largest records file the import form takes (a year of daily purchases is ~50 KiB).
pub const RECORDS_MAX_BYTES: usize = 2 << 20;

/// The import form: an uploaded CSV file (multipart) or pasted CSV text.
#[derive(Debug, Default, Deserialize)]
pub struct ImportForm {
    #[serde(default)]
    csv: String,
    #[serde(default)]
    kind: String,
    /// The uploaded file's name and text, when a file was sent.
    #[serde(skip)]
    file: Option<(String, String)>,
}

/// Reads the form, multipart (with a file) or urlencoded (pasted text).
async fn read_import_form(request: Request) -> Result<ImportForm, String> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let Form(f) = Form::<ImportForm>::from_request(request, &())
            .await
            .map_err(|e| format!("the form could not be read: {}", e.body_text()))?;
        return Ok(f);
    }
    let mut mp = Multipart::from_request(request, &())
        .await
        .map_err(|e| format!("the upload could not be read: {}", e.body_text()))?;
    let mut f = ImportForm::default();
    let too_big = || {
        format!(
            "the file is larger than {} MiB: split it",
            RECORDS_MAX_BYTES >> 20
        )
    };
    // The body limit (axum's, 2 MiB) can trip before the file's own count does.
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_big()
        } else {
            format!("the upload could not be read: {}", e.body_text())
        }
    };
    while let Some(mut field) = mp.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
            if bytes.len() + chunk.len() > RECORDS_MAX_BYTES {
                return Err(too_big());
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = || {
            String::from_utf8(bytes.clone())
                .map_err(|_| format!("the {name} field is not UTF-8 text (save the CSV as UTF-8)"))
        };
        match name.as_str() {
            "file" if !bytes.is_empty() => {
                let shown = file_name
                    .as_deref()
                    .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n))
                    .filter(|n| !n.is_empty() && n.len() <= 100)
                    .unwrap_or("the uploaded file")
                    .to_string();
                f.file = Some((shown, text()?));
            }
            "csv" => f.csv = text()?,
            "kind" => f.kind = text()?,
            _ => {}
        }
    }
    Ok(f)
}

pub(super) async fn records_import(
    State(state): State<AppState>,
    staff: Staff,
    request: Request,
) -> Result<Response, PortalError> {
    let f = match read_import_form(request).await {
        Ok(f) => f,
        Err(msg) => {
            let page = records_page(&state, staff, Some(msg), String::new()).await?;
            return Ok((StatusCode::BAD_REQUEST, render(&page)?).into_response());
        }
    };
    let (source_name, text) = match &f.file {
        Some((name, text)) => (name.clone(), text.as_str()),
        None => ("the pasted CSV".to_string(), f.csv.as_str()),
    };
    let secret = refuse_secret(text, "").is_err() || refuse_secret(&source_name, "").is_err();
    let result = async {
        refuse_secret(&source_name, "the file name").map_err(|e| e.to_string())?;
        refuse_secret(text, source_name.clone()).map_err(|e| e.to_string())?;
        let kind: RecordKind = match f.kind.trim() {
            "" => RecordKind::Purchase,
            k => k.parse()?,
        };
        if text.trim().is_empty() {
            return Err("choose a CSV file or paste the CSV".to_string());
        }
        let records = parse_records(&source_name, text, kind).map_err(|e| e.to_string())?;
        if records.is_empty() {
            return Err(format!("{source_name} has a header but no rows"));
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
        let source = format!("portal upload by {}: {source_name}", staff.id.user.username);
        office::import_records(&state.store, &staff.id.actor(), &records, &source)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            state.data_changed().await;
            Ok(see_other("/admin/records?done=records-imported"))
        }
        Err(msg) => {
            // Pasted text comes back for correction; a file is chosen again; a key never.
            let csv = if secret || f.file.is_some() {
                String::new()
            } else {
                f.csv.clone()
            };
            let page = records_page(&state, staff, Some(msg), csv).await?;
            Ok((StatusCode::BAD_REQUEST, render(&page)?).into_response())
        }
    }
}
