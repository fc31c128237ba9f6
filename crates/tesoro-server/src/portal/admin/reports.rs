//! Reports (holdings, gains, accumulation) as pages, CSV and JSON downloads. The figures
//! come from `tesoro_store::reports`, the same calls the CLI and the API make.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tesoro_core::lots::{FeeRule, Method};
use tesoro_core::price::{parse_currency, parse_date, round_money};
use tesoro_store::reports::{self as rep, At};

use super::{report_err, Nav, Staff};
use crate::portal::{fmt, render, PortalError};
use crate::AppState;

#[derive(Template)]
#[template(path = "admin/reports.html")]
struct IndexPage {
    nav: Nav,
}

pub(super) async fn index(staff: Staff) -> Result<Response, PortalError> {
    render(&IndexPage { nav: staff.nav })
}

/// Every report's options (each uses some).
#[derive(Debug, Default, Deserialize)]
pub struct ReportQuery {
    entity: Option<String>,
    at: Option<String>,
    from: Option<String>,
    to: Option<String>,
    currency: Option<String>,
    method: Option<String>,
    fee_rule: Option<String>,
    format: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/report.html")]
struct ReportPage {
    nav: Nav,
    title: String,
    subtitle: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    csv_link: String,
    json_link: String,
}

fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn date(name: &str, s: Option<&str>) -> Result<Option<time::Date>, PortalError> {
    s.map(|d| parse_date(d).map_err(|e| PortalError::BadRequest(format!("{name}: {e}"))))
        .transpose()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

struct Table {
    title: String,
    subtitle: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    json: serde_json::Value,
}

pub(super) async fn report(
    State(state): State<AppState>,
    staff: Staff,
    Path(name): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, PortalError> {
    let entity = staff.scope_entity(opt(&q.entity))?;
    let store = &state.store;
    let opts = rep::ReportOptions {
        allow_last_known: true,
        ..Default::default()
    };
    let scope_name = entity
        .as_ref()
        .map_or_else(|| "all entities".to_string(), |e| e.to_string());
    let t =
        match name.as_str() {
            "holdings" => {
                let at: Option<At> = opt(&q.at)
                    .map(|s| s.parse().map_err(PortalError::BadRequest))
                    .transpose()?;
                let currencies = opt(&q.currency)
                    .unwrap_or("USD")
                    .split(',')
                    .map(|c| parse_currency(c).map_err(PortalError::BadRequest))
                    .collect::<Result<Vec<_>, _>>()?;
                let h = rep::holdings_at(store, at, entity.as_ref(), &currencies, opts)
                    .await
                    .map_err(report_err)?;
                let mut header = vec!["entity".to_string(), "source".into(), "BTC".into()];
                header.extend(currencies.iter().cloned());
                let mut rows: Vec<Vec<String>> =
                    h.rows
                        .iter()
                        .map(|r| {
                            let mut v = vec![
                                match &r.custodian {
                                    Some(c) => format!("{} @ {c}", r.entity),
                                    None => r.entity.clone(),
                                },
                                format!("{:?}", r.source).to_lowercase(),
                                fmt::btc(r.sats),
                            ];
                            v.extend(currencies.iter().map(|c| {
                                r.values.get(c).map(|d| fmt::money(*d)).unwrap_or_default()
                            }));
                            v
                        })
                        .collect();
                let mut total = vec![
                    "TOTAL".into(),
                    "chain + custodial".into(),
                    fmt::btc(h.total_sats()),
                ];
                total.extend(h.prices.iter().map(|p| {
                    fmt::money(round_money(tesoro_core::price::value_of(
                        h.total_sats(),
                        p.price,
                    )))
                }));
                rows.push(total);
                Table {
                    title: "Holdings".into(),
                    subtitle: format!(
                        "{scope_name} at {}; prices: {}",
                        h.at,
                        h.prices
                            .iter()
                            .map(|p| format!(
                                "{} {} from {}{}",
                                p.currency,
                                fmt::money(p.price),
                                p.from,
                                if p.stale { " (last known)" } else { "" }
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    header,
                    rows,
                    json: serde_json::to_value(&h).map_err(|e| PortalError::Data(e.to_string()))?,
                }
            }
            "pnl" => {
                let method: Method = opt(&q.method)
                    .unwrap_or("fifo")
                    .parse()
                    .map_err(PortalError::BadRequest)?;
                let fee_rule: FeeRule = opt(&q.fee_rule)
                    .unwrap_or("realize")
                    .parse()
                    .map_err(PortalError::BadRequest)?;
                let currency = parse_currency(opt(&q.currency).unwrap_or("USD"))
                    .map_err(PortalError::BadRequest)?;
                let p = rep::pnl(
                    store,
                    entity.as_ref(),
                    date("from", opt(&q.from))?,
                    date("to", opt(&q.to))?,
                    method,
                    fee_rule,
                    &currency,
                    opts,
                )
                .await
                .map_err(report_err)?;
                let m = fmt::money;
                let rows = vec![
                    vec!["proceeds".into(), m(p.proceeds)],
                    vec!["cost of what was disposed".into(), m(p.cost_disposed)],
                    vec!["realized on disposals".into(), m(p.realized_disposals)],
                    vec!["fees realized".into(), m(p.realized_fees)],
                    vec!["realized".into(), m(p.realized)],
                    vec!["held BTC".into(), fmt::btc(p.holding_sats)],
                    vec!["cost of what is held".into(), m(p.holding_cost)],
                    vec!["value of what is held".into(), m(p.holding_value)],
                    vec!["unrealized".into(), m(p.unrealized)],
                    vec![
                        "BTC costed at market (no matched record)".into(),
                        fmt::btc(p.market_priced_sats),
                    ],
                ];
                Table {
                    title: "Gains and losses".into(),
                    subtitle: format!(
                        "{scope_name}, {} .. {}, {} method, {} ({})",
                        p.from,
                        p.to,
                        p.method.as_str(),
                        p.currency,
                        if p.price_stale {
                            "last known price"
                        } else {
                            "day's price"
                        }
                    ),
                    header: vec!["item".into(), currency.clone()],
                    rows,
                    json: serde_json::to_value(&p).map_err(|e| PortalError::Data(e.to_string()))?,
                }
            }
            "accumulation" => {
                let r = rep::accumulation(
                    store,
                    entity.as_ref(),
                    date("from", opt(&q.from))?,
                    date("to", opt(&q.to))?,
                    opts,
                )
                .await
                .map_err(report_err)?;
                let c = &r.chain;
                let mut rows = vec![vec![
                    "stock at start".to_string(),
                    fmt::btc(c.stock_start_sats),
                ]];
                for (k, v) in &c.acquisitions {
                    rows.push(vec![format!("+ acquisition: {k}"), fmt::btc(*v)]);
                }
                for (k, v) in &c.disposals {
                    rows.push(vec![format!("- disposal: {k}"), fmt::btc(*v)]);
                }
                rows.push(vec!["- fees".into(), fmt::btc(c.fee_sats)]);
                rows.push(vec![
                    "+ from other agencies of the state".into(),
                    fmt::btc(c.intra_state_in_sats),
                ]);
                rows.push(vec![
                    "- to other agencies of the state".into(),
                    fmt::btc(c.intra_state_out_sats),
                ]);
                rows.push(vec!["stock at end".into(), fmt::btc(c.stock_end_sats)]);
                rows.push(vec![
                    format!(
                        "internal moves inside scope ({} movements)",
                        c.internal_movements
                    ),
                    fmt::btc(c.internal_moved_sats),
                ]);
                rows.push(vec![
                    "net accumulation (excluding seizures and internal moves)".into(),
                    fmt::btc_signed(c.net_accumulation_sats),
                ]);
                rows.push(vec![
                    "no net accumulation".into(),
                    if c.no_net_accumulation {
                        "holds"
                    } else {
                        "does not hold"
                    }
                    .into(),
                ]);
                rows.push(vec![
                    "unclassified movements".into(),
                    c.unclassified_movements.to_string(),
                ]);
                rows.push(vec![
                    "custodial at start (off chain)".into(),
                    fmt::btc(r.custodial_start_sats),
                ]);
                rows.push(vec![
                    "custodial at end (off chain)".into(),
                    fmt::btc(r.custodial_end_sats),
                ]);
                Table {
                    title: "Accumulation".into(),
                    subtitle: format!("{scope_name}, {} .. {}", c.from, c.to),
                    header: vec!["item".into(), "BTC".into()],
                    rows,
                    json: serde_json::to_value(&r).map_err(|e| PortalError::Data(e.to_string()))?,
                }
            }
            other => {
                return Err(PortalError::NotFound(format!(
                    "no report {other:?}: holdings, pnl or accumulation"
                )))
            }
        };
    match opt(&q.format).unwrap_or("html") {
        "json" => Ok((
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}.json\""),
                ),
            ],
            serde_json::to_string_pretty(&t.json).map_err(|e| PortalError::Data(e.to_string()))?,
        )
            .into_response()),
        "csv" => {
            let mut out = t
                .header
                .iter()
                .map(|h| csv_field(h))
                .collect::<Vec<_>>()
                .join(",");
            out.push('\n');
            for r in &t.rows {
                // Plain numbers in CSV: no thousands separators.
                let line: Vec<String> = r.iter().map(|f| csv_field(&f.replace(',', ""))).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.csv\""),
                    ),
                ],
                out,
            )
                .into_response())
        }
        "html" => {
            let base = format!(
                "/admin/reports/{name}?entity={}&at={}&from={}&to={}&currency={}&method={}&fee_rule={}",
                super::urlencode(opt(&q.entity).unwrap_or("")),
                super::urlencode(opt(&q.at).unwrap_or("")),
                super::urlencode(opt(&q.from).unwrap_or("")),
                super::urlencode(opt(&q.to).unwrap_or("")),
                super::urlencode(opt(&q.currency).unwrap_or("")),
                super::urlencode(opt(&q.method).unwrap_or("")),
                super::urlencode(opt(&q.fee_rule).unwrap_or("")),
            );
            render(&ReportPage {
                nav: staff.nav,
                title: t.title,
                subtitle: t.subtitle,
                header: t.header,
                rows: t.rows,
                csv_link: format!("{base}&format=csv"),
                json_link: format!("{base}&format=json"),
            })
        }
        f => Err(PortalError::BadRequest(format!(
            "format {f:?}: html, csv or json"
        ))),
    }
}
