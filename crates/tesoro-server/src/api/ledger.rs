//! Holdings, UTXOs, history, movements (with manual classification) and the reports
//! (holdings valued, accumulation, P&L), all through the library calls the CLI uses.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tesoro_core::classify::MatchTolerance;
use tesoro_core::lots::{FeeRule, Method};
use tesoro_core::movement::{Class, Kind};
use tesoro_core::price::parse_date;
use tesoro_core::EntityCode;
use tesoro_store::holdings::{At, GroupBy, HistoryEntry, Holdings, UtxoEntry};
use tesoro_store::reports::{self, MovementFilter, MovementRow, ReportError, ReportOptions};

use super::extract::{J, Q};
use super::page::{Page, PageQuery};
use crate::auth::{Action, Identity};
use crate::error::{ApiError, ApiResult};
use crate::office;
use crate::AppState;

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Store(s) => s.into(),
            ReportError::EmptyChain => ApiError::not_found(e.to_string()),
            ReportError::BeyondTip { .. } => ApiError::not_found(e.to_string()),
            ReportError::Price(_) | ReportError::Entity(_) => {
                ApiError::unprocessable(e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e.to_string())
}

#[derive(Debug, Deserialize)]
pub(crate) struct BalanceQuery {
    entity: Option<String>,
    at: Option<String>,
    by: Option<String>,
}

pub(crate) async fn balance(
    State(state): State<AppState>,
    identity: Identity,
    Q(q): Q<BalanceQuery>,
) -> ApiResult<Json<Holdings>> {
    let scope = identity.read_scope(q.entity.as_deref())?;
    let by = match q.by.as_deref().unwrap_or("entity") {
        "entity" => GroupBy::Entity,
        "wallet" => GroupBy::Wallet,
        "address" => GroupBy::Address,
        other => return Err(bad(format!("by={other:?}: use entity, wallet or address"))),
    };
    let at = At::parse(q.at.as_deref()).map_err(bad)?;
    let block = state.store.resolve_at(at).await?;
    let mut h = state.store.holdings(scope.as_ref(), &block, by).await?;
    if scope.is_none() && identity.scope.is_some() {
        // Unreachable today (read_scope narrows to the grant), kept as a second fence.
        h.groups
            .retain(|g| EntityCode::parse(&g.key).is_ok_and(|c| identity.covers(&c)));
    }
    Ok(Json(h))
}

#[derive(Debug, Deserialize)]
pub(crate) struct UtxoQuery {
    entity: Option<String>,
    at: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

pub(crate) async fn utxos(
    State(state): State<AppState>,
    identity: Identity,
    Q(q): Q<UtxoQuery>,
) -> ApiResult<Json<Page<UtxoEntry>>> {
    let scope = identity.read_scope(q.entity.as_deref())?;
    let block = state
        .store
        .resolve_at(At::parse(q.at.as_deref()).map_err(bad)?)
        .await?;
    let all = state.store.utxo_list(scope.as_ref(), &block).await?;
    Page::of(all, &q.page).map(Json)
}

#[derive(Debug, Deserialize)]
pub(crate) struct HistoryQuery {
    entity: Option<String>,
    wallet: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

pub(crate) async fn history(
    State(state): State<AppState>,
    identity: Identity,
    Q(q): Q<HistoryQuery>,
) -> ApiResult<Json<Page<HistoryEntry>>> {
    let scope = identity.read_scope(q.entity.as_deref())?;
    if let Some(w) = &q.wallet {
        let wallet = state.store.wallet(w).await?;
        identity.require(Action::Read, Some(&wallet.entity))?;
    }
    let all = state
        .store
        .history_list(q.wallet.as_deref(), scope.as_ref())
        .await?;
    Page::of(all, &q.page).map(Json)
}

#[derive(Debug, Deserialize)]
pub(crate) struct MovementQuery {
    entity: Option<String>,
    from: Option<String>,
    to: Option<String>,
    class: Option<String>,
    unclassified: Option<bool>,
    #[serde(flatten)]
    page: PageQuery,
}

/// A page of movements, with the counts the CLI prints under its table.
#[derive(Debug, Serialize)]
pub(crate) struct MovementPage {
    items: Vec<MovementRow>,
    next_cursor: Option<String>,
    unclassified_in_scope: u64,
    unmatched_records: u64,
}

fn opt_date(name: &str, v: Option<&str>) -> ApiResult<Option<time::Date>> {
    v.map(|s| parse_date(s).map_err(|e| bad(format!("{name}: {e}"))))
        .transpose()
}

fn opts() -> ReportOptions {
    ReportOptions {
        tolerance: MatchTolerance::default(),
        allow_last_known: true,
    }
}

pub(crate) async fn movements(
    State(state): State<AppState>,
    identity: Identity,
    Q(q): Q<MovementQuery>,
) -> ApiResult<Json<MovementPage>> {
    let scope = identity.read_scope(q.entity.as_deref())?;
    let class = q
        .class
        .as_deref()
        .map(|c| c.parse::<Class>())
        .transpose()
        .map_err(bad)?;
    let filter = MovementFilter {
        entity: scope,
        from: opt_date("from", q.from.as_deref())?,
        to: opt_date("to", q.to.as_deref())?,
        class,
        unclassified: q.unclassified.unwrap_or(false),
    };
    let list = reports::movements(&state.store, &filter, opts()).await?;
    let page = Page::of(list.movements, &q.page)?;
    Ok(Json(MovementPage {
        items: page.items,
        next_cursor: page.next_cursor,
        unclassified_in_scope: list.unclassified_in_scope,
        unmatched_records: list.unmatched_records,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ClassifyBody {
    entity: Option<String>,
    kind: String,
    reason: String,
}

pub(crate) async fn classify(
    State(state): State<AppState>,
    identity: Identity,
    Path(txid): Path<String>,
    J(body): J<ClassifyBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let txid: bitcoin::Txid = txid
        .parse()
        .map_err(|_| bad(format!("{txid:?} is not a txid (64 hex digits)")))?;
    let kind: Kind = body.kind.parse().map_err(bad)?;
    let asked = body
        .entity
        .as_deref()
        .map(EntityCode::parse)
        .transpose()
        .map_err(bad)?;
    let store = &state.store;
    let (m, entity) = office::find_movement(store, &txid, asked.as_ref()).await?;
    identity.require(Action::EditLedger, Some(&entity))?;
    office::classify(store, &identity.actor(), &m, &entity, kind, &body.reason).await?;
    state.data_changed().await;
    let reason = body.reason.trim();
    Ok(Json(
        json!({"txid": txid.to_string(), "entity": entity, "kind": kind.as_str(), "reason": reason}),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReportQuery {
    entity: Option<String>,
    at: Option<String>,
    from: Option<String>,
    to: Option<String>,
    currency: Option<String>,
    method: Option<String>,
    fee: Option<String>,
}

pub(crate) async fn report_holdings(
    State(state): State<AppState>,
    identity: Identity,
    Q(q): Q<ReportQuery>,
) -> ApiResult<Json<reports::Holdings>> {
    let scope = identity.read_scope(q.entity.as_deref())?;
    let at =
        q.at.as_deref()
            .map(|s| s.parse::<reports::At>())
            .transpose()
            .map_err(bad)?;
    let currencies: Vec<String> = q
        .currency
        .as_deref()
        .unwrap_or("USD")
        .split(',')
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
        .collect();
    Ok(Json(
        reports::holdings_at(&state.store, at, scope.as_ref(), &currencies, opts()).await?,
    ))
}

pub(crate) async fn report_accumulation(
    State(state): State<AppState>,
    identity: Identity,
    Q(q): Q<ReportQuery>,
) -> ApiResult<Json<reports::AccumulationReport>> {
    let scope = identity.read_scope(q.entity.as_deref())?;
    Ok(Json(
        reports::accumulation(
            &state.store,
            scope.as_ref(),
            opt_date("from", q.from.as_deref())?,
            opt_date("to", q.to.as_deref())?,
            opts(),
        )
        .await?,
    ))
}

pub(crate) async fn report_pnl(
    State(state): State<AppState>,
    identity: Identity,
    Q(q): Q<ReportQuery>,
) -> ApiResult<Json<tesoro_core::report::Pnl>> {
    let scope = identity.read_scope(q.entity.as_deref())?;
    let method: Method = q.method.as_deref().unwrap_or("fifo").parse().map_err(bad)?;
    let fee: FeeRule = q.fee.as_deref().unwrap_or("realize").parse().map_err(bad)?;
    Ok(Json(
        reports::pnl(
            &state.store,
            scope.as_ref(),
            opt_date("from", q.from.as_deref())?,
            opt_date("to", q.to.as_deref())?,
            method,
            fee,
            &q.currency.as_deref().unwrap_or("USD").to_ascii_uppercase(),
            opts(),
        )
        .await?,
    ))
}
