//! Charts render to well-formed SVG files.

mod common;
use common::*;
use tesoro_plan::chart;
use tesoro_plan::montecarlo::McOptions;
use tesoro_plan::{accumulate, mining};

#[test]
fn mining_and_fan_charts_are_written() {
    let h = history();
    let plan = mining(&mining_text(1000.0, 17.5, 0.05, 0.08, true));
    let run = mining::backtest(&plan, &h, d("2024-01-01"), d("2024-12-31")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mining.svg");
    chart::draw_svg(&p, "mining", &chart::mining_panels(&run)).unwrap();
    let svg = std::fs::read_to_string(&p).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("Monthly cash flow") && svg.contains("Cumulative subsidy"));

    let mut o = McOptions::new(400);
    o.paths = 100;
    let mc = mining::monte_carlo(&plan, &h, d("2025-07-17"), &o, None).unwrap();
    let svg = chart::render_svg(
        "fan",
        &chart::fan_panels(
            &mc,
            &[("reserve_value_usd", "Value"), ("reserve_btc", "Holdings")],
        ),
    )
    .unwrap();
    assert!(svg.contains("p5–p95") && svg.contains("median") && svg.contains("<polygon"));

    let acc = accumulation("[plan]\nkind = \"accumulation\"\nname = \"a\"\nstart = 2023-01-01\n[rule]\nkind = \"fixed_btc\"\nbtc = 1\n");
    let run = accumulate::backtest(&acc, &h, d("2023-01-01"), d("2023-12-31")).unwrap();
    let svg = chart::render_svg("acc", &chart::accumulation_panels(&run)).unwrap();
    assert!(svg.contains("Holdings"));

    let e = chart::draw_svg(
        std::path::Path::new("/nonexistent/dir/x.svg"),
        "x",
        &chart::accumulation_panels(&run),
    )
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/dir/x.svg"));
}
