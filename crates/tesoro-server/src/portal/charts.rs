//! SVG charts for the portal, drawn server-side with plotters (no font library: the
//! browser sets the text, plotters only estimates its size), so pages read without
//! JavaScript. Every chart is inlined with `role="img"` and a text label, and each page
//! also carries the same figures as a table.

use plotters::prelude::*;
use time::Date;

/// Dark enough on white for WCAG AA (4.5:1) even as thin lines and legend text.
const BLUE: RGBColor = RGBColor(0x1f, 0x4e, 0x79);
const ORANGE: RGBColor = RGBColor(0xa8, 0x4a, 0x00);
const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// Chart width and height in SVG units; the page scales it to its column.
const SIZE: (u32, u32) = (900, 320);

/// A dated series of one line.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend text.
    pub name: String,
    /// (day, value) in date order.
    pub points: Vec<(Date, f64)>,
}

pub use tesoro_plan::chart::si;

/// Makes plotters' fixed-size SVG scale with the page and announce itself to screen readers.
fn accessible(svg: String, label: &str) -> String {
    let label = escape_attr(label);
    svg.replacen(
        &format!(
            "<svg width=\"{}\" height=\"{}\" ",
            SIZE.0, SIZE.1
        ),
        &format!(
            "<svg class=\"chart\" role=\"img\" aria-label=\"{label}\" preserveAspectRatio=\"xMidYMid meet\" "
        ),
        1,
    )
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn x_of(first: Date, d: Date) -> f64 {
    (d - first).whole_days() as f64
}

fn month_label(first: Date, x: f64) -> String {
    let d = first + time::Duration::days(x.round() as i64);
    format!("{}-{:02}", d.year(), u8::from(d.month()))
}

/// A line chart of dated series (the first drawn as a filled area), labelled `label` for
/// assistive technology. An empty series gives a chart that says so.
pub fn lines(label: &str, unit: &str, series: &[Line]) -> String {
    let mut s = String::new();
    let drawn = draw_lines(&mut s, unit, series);
    if drawn.is_err() {
        s.clear();
        let _ = draw_message(&mut s, "chart could not be drawn");
    }
    accessible(s, label)
}

fn draw_message(s: &mut String, msg: &str) -> Result<(), String> {
    let root = SVGBackend::with_string(s, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    root.draw(&Text::new(
        msg.to_string(),
        (SIZE.0 as i32 / 2 - 120, SIZE.1 as i32 / 2),
        ("sans-serif", 18).into_font().color(&GREY),
    ))
    .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

fn draw_lines(s: &mut String, unit: &str, series: &[Line]) -> Result<(), String> {
    let first = series
        .iter()
        .filter_map(|l| l.points.first())
        .map(|p| p.0)
        .min();
    let last = series
        .iter()
        .filter_map(|l| l.points.last())
        .map(|p| p.0)
        .max();
    let (Some(first), Some(last)) = (first, last) else {
        return draw_message(s, "no data for this period yet");
    };
    let hi = series
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let hi = if hi <= 0.0 { 1.0 } else { hi * 1.08 };
    let xmax = x_of(first, last).max(1.0);
    let root = SVGBackend::with_string(s, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..xmax, 0f64..hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(6)
        .y_desc(unit)
        .label_style(("sans-serif", 14).into_font().color(&BLACK))
        .light_line_style(RGBColor(0xe6, 0xe6, 0xe6))
        .x_label_formatter(&|x| month_label(first, *x))
        .y_label_formatter(&|y| si(*y))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, line) in series.iter().enumerate() {
        let c = if i == 0 { BLUE } else { ORANGE };
        let pts: Vec<(f64, f64)> = line
            .points
            .iter()
            .map(|(d, v)| (x_of(first, *d), *v))
            .collect();
        if i == 0 {
            chart
                .draw_series(AreaSeries::new(pts.iter().copied(), 0.0, c.mix(0.15)))
                .map_err(|e| e.to_string())?;
        }
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(line.name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c.stroke_width(3)));
    }
    if series.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.9))
            .border_style(GREY)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

/// One period's bars.
#[derive(Debug, Clone)]
pub struct Bars {
    /// First day of the period.
    pub start: Date,
    /// One value per series, in the order of the series names.
    pub values: Vec<f64>,
}

/// Grouped bars per period (for acquisitions beside internal transfers).
pub fn grouped_bars(label: &str, unit: &str, names: &[&str], periods: &[Bars]) -> String {
    let mut s = String::new();
    if draw_bars(&mut s, unit, names, periods).is_err() {
        s.clear();
        let _ = draw_message(&mut s, "chart could not be drawn");
    }
    accessible(s, label)
}

fn draw_bars(s: &mut String, unit: &str, names: &[&str], periods: &[Bars]) -> Result<(), String> {
    if periods.is_empty() {
        return draw_message(s, "no movements in this period");
    }
    let hi = periods
        .iter()
        .flat_map(|p| p.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let hi = if hi <= 0.0 { 1.0 } else { hi * 1.1 };
    let n = periods.len();
    let k = names.len().max(1);
    let root = SVGBackend::with_string(s, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..n as f64, 0f64..hi)
        .map_err(|e| e.to_string())?;
    let starts: Vec<Date> = periods.iter().map(|p| p.start).collect();
    let label_every = n.div_ceil(10).max(1);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.min(12) + 1)
        .y_labels(6)
        .y_desc(unit)
        .label_style(("sans-serif", 14).into_font().color(&BLACK))
        .light_line_style(RGBColor(0xe6, 0xe6, 0xe6))
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            match starts.get(i) {
                Some(d) if i.is_multiple_of(label_every) => {
                    format!("{}-{:02}", d.year(), u8::from(d.month()))
                }
                _ => String::new(),
            }
        })
        .y_label_formatter(&|y| si(*y))
        .draw()
        .map_err(|e| e.to_string())?;
    let width = 0.8 / k as f64;
    for (j, name) in names.iter().enumerate() {
        let c = if j == 0 { BLUE } else { ORANGE };
        chart
            .draw_series(periods.iter().enumerate().filter_map(|(i, p)| {
                let v = *p.values.get(j)?;
                let x0 = i as f64 + 0.1 + width * j as f64;
                Some(Rectangle::new([(x0, 0.0), (x0 + width, v)], c.filled()))
            }))
            .map_err(|e| e.to_string())?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.9))
        .border_style(GREY)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn line_chart_is_scalable_labelled_svg_with_text_labels() {
        let svg = lines(
            "Holdings <BTC> & more",
            "BTC",
            &[Line {
                name: "holdings".into(),
                points: vec![
                    (date!(2024 - 01 - 01), 1.0),
                    (date!(2024 - 06 - 01), 5748.76),
                ],
            }],
        );
        assert!(
            svg.starts_with("<svg class=\"chart\" role=\"img\""),
            "{svg}"
        );
        assert!(svg.contains("aria-label=\"Holdings &lt;BTC&gt; &amp; more\""));
        assert!(svg.contains("viewBox=\"0 0 900 320\""));
        // The fixed size is gone from the root element (the page scales it).
        let root = svg.split('>').next().unwrap_or("");
        assert!(!root.contains("width="), "{root}");
        // Axis labels are SVG text the browser sets; no font library was needed.
        assert!(svg.contains("<text"), "{svg}");
        assert!(svg.contains("2024-01"));
        assert!(
            // si() keeps plain numbers below 10,000, so the top tick reads 6000.
            svg.contains(">\n6000\n") || svg.contains(">6000<"),
            "{svg}"
        );
    }

    #[test]
    fn empty_inputs_draw_a_message_not_a_panic() {
        let svg = lines("empty", "BTC", &[]);
        assert!(svg.contains("no data"));
        let svg = grouped_bars("empty", "BTC", &["a", "b"], &[]);
        assert!(svg.contains("no movements"));
        let svg = lines(
            "nan",
            "USD",
            &[Line {
                name: "x".into(),
                points: vec![(date!(2024 - 01 - 01), f64::NAN)],
            }],
        );
        assert!(svg.contains("<svg"));
    }

    #[test]
    fn bars_have_one_rectangle_per_value() {
        let svg = grouped_bars(
            "acq",
            "BTC",
            &["acquisitions", "internal"],
            &[
                Bars {
                    start: date!(2024 - 01 - 01),
                    values: vec![1.0, 2.0],
                },
                Bars {
                    start: date!(2024 - 02 - 01),
                    values: vec![3.0, 0.5],
                },
            ],
        );
        assert!(svg.contains("acquisitions") && svg.contains("internal"));
        assert!(svg.matches("<rect").count() >= 4);
    }
}
