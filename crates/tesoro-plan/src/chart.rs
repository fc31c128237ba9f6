//! SVG charts (plotters, no font libraries): fan charts of Monte Carlo percentiles, monthly
//! mining cash flow, cumulative subsidy, holdings and value of a backtest.

use std::path::Path;

use plotters::prelude::*;
use time::Date;

use crate::accumulate::AccRun;
use crate::calendar::Granularity;
use crate::error::{PlanError, Result};
use crate::mining::{mining_periods, MiningRun};
use crate::montecarlo::McResult;

/// One panel of a chart.
#[derive(Debug, Clone)]
pub enum Panel {
    /// p5–p95 and p25–p75 bands with the median line.
    Fan {
        /// Panel title.
        title: String,
        /// Y unit.
        unit: String,
        /// X values.
        dates: Vec<Date>,
        /// Percentiles per date.
        pct: Vec<[f64; 5]>,
    },
    /// Named lines.
    Lines {
        /// Panel title.
        title: String,
        /// Y unit.
        unit: String,
        /// X values.
        dates: Vec<Date>,
        /// (name, values) per line.
        series: Vec<(String, Vec<f64>)>,
    },
}

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];

/// Short number: 1.2k, 3.4M, 5.6B.
pub fn si(v: f64) -> String {
    let a = v.abs();
    if a >= 1e12 {
        format!("{:.1}T", v / 1e12)
    } else if a >= 1e9 {
        format!("{:.1}B", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn chart_err(path: &Path, e: impl std::fmt::Display) -> PlanError {
    PlanError::Chart {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Draws `panels` stacked vertically into an SVG file.
pub fn draw_svg(path: &Path, title: &str, panels: &[Panel]) -> Result<()> {
    let svg = render_svg(title, panels).map_err(|e| chart_err(path, e))?;
    std::fs::write(path, svg).map_err(|e| chart_err(path, e))
}

/// Renders `panels` to an SVG string.
pub fn render_svg(title: &str, panels: &[Panel]) -> std::result::Result<String, String> {
    let mut s = String::new();
    let h = 60 + 340 * panels.len().max(1) as u32;
    {
        let root = SVGBackend::with_string(&mut s, (1000, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| e.to_string())?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (area, panel) in areas.iter().zip(panels) {
            draw_panel(area, panel)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(s)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> std::result::Result<(), String> {
    let (title, unit, dates) = match panel {
        Panel::Fan {
            title, unit, dates, ..
        }
        | Panel::Lines {
            title, unit, dates, ..
        } => (title, unit, dates),
    };
    let Some(first) = dates.first().copied() else {
        return Ok(());
    };
    let xs: Vec<f64> = dates
        .iter()
        .map(|d| (*d - first).whole_days() as f64)
        .collect();
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let mut see = |v: f64| {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    };
    match panel {
        Panel::Fan { pct, .. } => pct.iter().flatten().for_each(|v| see(*v)),
        Panel::Lines { series, .. } => series.iter().flat_map(|s| s.1.iter()).for_each(|v| see(*v)),
    }
    if !lo.is_finite() {
        return Ok(());
    }
    lo = lo.min(0.0);
    if hi <= lo {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.05;
    let xmax = xs.last().copied().unwrap_or(1.0).max(1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{title} ({unit})"), ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, lo..hi + pad)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&|x| {
            let d = first + time::Duration::days(*x as i64);
            format!("{}-{:02}", d.year(), u8::from(d.month()))
        })
        .y_label_formatter(&|y| si(*y))
        .draw()
        .map_err(|e| e.to_string())?;
    match panel {
        Panel::Fan { pct, .. } => {
            for (a, b, alpha) in [(0usize, 4usize, 0.18), (1, 3, 0.35)] {
                let mut pts: Vec<(f64, f64)> =
                    xs.iter().zip(pct).map(|(x, p)| (*x, p[b])).collect();
                pts.extend(xs.iter().zip(pct).rev().map(|(x, p)| (*x, p[a])));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        pts,
                        COLORS[0].mix(alpha).filled(),
                    )))
                    .map_err(|e| e.to_string())?
                    .label(if a == 0 { "p5–p95" } else { "p25–p75" })
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 15, y + 5)], COLORS[0].mix(alpha).filled())
                    });
            }
            chart
                .draw_series(LineSeries::new(
                    xs.iter().zip(pct).map(|(x, p)| (*x, p[2])),
                    COLORS[0].stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label("median")
                .legend(|(x, y)| {
                    PathElement::new([(x, y), (x + 15, y)], COLORS[0].stroke_width(2))
                });
        }
        Panel::Lines { series, .. } => {
            for (i, (name, ys)) in series.iter().enumerate() {
                let c = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(
                        xs.iter().copied().zip(ys.iter().copied()),
                        c.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 15, y)], c.stroke_width(2))
                    });
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn cumulative(v: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut s = 0.0;
    v.map(|x| {
        s += x;
        s
    })
    .collect()
}

/// Panels for a mining backtest or projection: monthly cash flow, cumulative subsidy,
/// cumulative BTC to the reserve.
pub fn mining_panels(run: &MiningRun) -> Vec<Panel> {
    let months = mining_periods(&run.days, Granularity::Month, 1);
    let mdates: Vec<Date> = months.iter().map(|m| m.to).collect();
    let dates: Vec<Date> = run.days.iter().map(|d| d.date).collect();
    vec![
        Panel::Lines {
            title: "Monthly cash flow".into(),
            unit: "USD per month".into(),
            dates: mdates,
            series: vec![
                (
                    "revenue".into(),
                    months.iter().map(|m| m.revenue_usd).collect(),
                ),
                (
                    "electricity at paid tariff".into(),
                    months.iter().map(|m| m.elec_paid_usd).collect(),
                ),
                (
                    "electricity at cost recovery".into(),
                    months.iter().map(|m| m.elec_recovery_usd).collect(),
                ),
                (
                    "opex + capex".into(),
                    months.iter().map(|m| m.fixed_usd).collect(),
                ),
                (
                    "margin (paid tariff)".into(),
                    months.iter().map(|m| m.margin_usd).collect(),
                ),
            ],
        },
        Panel::Lines {
            title: "Cumulative subsidy (fiscal cost)".into(),
            unit: "USD".into(),
            dates: dates.clone(),
            series: vec![(
                "subsidy".into(),
                cumulative(run.days.iter().map(|d| d.subsidy_usd)),
            )],
        },
        Panel::Lines {
            title: "Cumulative BTC".into(),
            unit: "BTC".into(),
            dates,
            series: vec![
                (
                    "mined".into(),
                    cumulative(run.days.iter().map(|d| d.btc_mined)),
                ),
                (
                    "to the reserve".into(),
                    cumulative(run.days.iter().map(|d| d.btc_to_reserve)),
                ),
            ],
        },
    ]
}

/// Panels for an accumulation backtest or projection: value vs cost, holdings.
pub fn accumulation_panels(run: &AccRun) -> Vec<Panel> {
    let dates: Vec<Date> = run.days.iter().map(|d| d.date).collect();
    vec![
        Panel::Lines {
            title: "Value and cost".into(),
            unit: "USD".into(),
            dates: dates.clone(),
            series: vec![
                (
                    "value".into(),
                    run.days.iter().map(|d| d.value_usd).collect(),
                ),
                (
                    "net cost".into(),
                    run.days.iter().map(|d| d.cost_usd).collect(),
                ),
            ],
        },
        Panel::Lines {
            title: "Holdings".into(),
            unit: "BTC".into(),
            dates,
            series: vec![(
                "holdings".into(),
                run.days.iter().map(|d| d.holdings_btc).collect(),
            )],
        },
    ]
}

/// Fan panels for the named Monte Carlo series (unknown names are skipped).
pub fn fan_panels(mc: &McResult, names: &[(&str, &str)]) -> Vec<Panel> {
    names
        .iter()
        .filter_map(|(name, title)| {
            mc.get(name).map(|s| Panel::Fan {
                title: (*title).to_string(),
                unit: s.unit.clone(),
                dates: mc.dates.clone(),
                pct: s.percentiles.clone(),
            })
        })
        .collect()
}
