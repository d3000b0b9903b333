//! SVG charts for `report.html`, drawn with plotters' SVG backend. Text is written as SVG
//! `<text>` elements (no font files are read); the browser picks the font.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// Chart size in pixels.
pub(crate) const SIZE: (u32, u32) = (520, 380);

/// Colours for series, in order (colour-blind-safe "Tableau 10" start).
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Grey for reference lines (chance diagonal, perfect calibration).
pub(crate) const REFERENCE: RGBColor = RGBColor(150, 150, 150);

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Style {
    /// A solid line.
    Line,
    /// A dashed reference line.
    Dashed,
    /// Markers only.
    Points,
    /// Hollow markers only.
    HollowPoints,
    /// A line with markers.
    LinePoints,
}

/// One series of an x–y chart.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Legend text; empty for no legend entry.
    pub name: String,
    /// Points in data coordinates.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Drawing style.
    pub style: Style,
}

/// An x–y chart.
#[derive(Debug, Clone)]
pub(crate) struct XyChart {
    /// Caption above the chart.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// x range; `None` fits the data.
    pub x: Option<Range<f64>>,
    /// y range; `None` fits the data.
    pub y: Option<Range<f64>>,
    /// Series, drawn in order.
    pub series: Vec<Series>,
    /// Where the legend goes.
    pub legend: SeriesLabelPosition,
    /// Label only whole numbers on the x axis (trial numbers).
    pub integer_x: bool,
}

/// A finite, non-empty range covering `values`, padded by 5 % on each side.
pub(crate) fn fit_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let span = hi - lo;
    let pad = if span > 0.0 { span * 0.05 } else { lo.abs().max(1.0) * 0.05 };
    (lo - pad)..(hi + pad)
}

/// Tick labels for an axis over `range`: as many decimals as its tick spacing (about a tenth
/// of the range) needs, so that labels over a tiny range (0.93410 to 0.93415) stay distinct.
pub(crate) fn tick_labels(range: &Range<f64>) -> impl Fn(&f64) -> String + use<> {
    let span = (range.end - range.start).abs();
    let decimals =
        if span > 0.0 && span.is_finite() { (-(span / 10.0).log10().floor()).clamp(0.0, 12.0) as usize } else { 4 };
    move |v: &f64| {
        let text = format!("{v:.decimals$}");
        // No "-0.000".
        if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
            text[1..].to_string()
        } else {
            text
        }
    }
}

/// Draw an x–y chart as an SVG document.
pub(crate) fn xy(c: &XyChart) -> Result<String, String> {
    let x = c.x.clone().unwrap_or_else(|| fit_range(c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0))));
    let y = c.y.clone().unwrap_or_else(|| fit_range(c.series.iter().flat_map(|s| s.points.iter().map(|p| p.1))));
    let (x_range, y_range) = (x.clone(), y.clone());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(58)
            .build_cartesian_2d(x, y)
            .map_err(|e| e.to_string())?;
        let whole =
            |v: &f64| if (v - v.round()).abs() < 1e-9 { format!("{}", v.round() as i64) } else { String::new() };
        let (x_ticks, plain) = (tick_labels(&x_range), tick_labels(&y_range));
        let fx: &dyn Fn(&f64) -> String = if c.integer_x { &whole } else { &x_ticks };
        chart
            .configure_mesh()
            .x_desc(c.x_label.as_str())
            .y_desc(c.y_label.as_str())
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .x_label_formatter(fx)
            .y_label_formatter(&plain)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        let mut legend = false;
        for s in &c.series {
            let color = s.color;
            let pts = s.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite());
            let ann = match s.style {
                Style::Line => chart.draw_series(LineSeries::new(pts, color.stroke_width(2))),
                Style::Dashed => chart.draw_series(DashedLineSeries::new(pts, 6, 4, color.stroke_width(1))),
                Style::Points => chart.draw_series(pts.map(|p| Circle::new(p, 4, color.filled()))),
                Style::HollowPoints => chart.draw_series(pts.map(|p| Circle::new(p, 4, color.stroke_width(1)))),
                Style::LinePoints => chart.draw_series(LineSeries::new(pts, color.stroke_width(2)).point_size(3)),
            }
            .map_err(|e| e.to_string())?;
            if !s.name.is_empty() {
                legend = true;
                ann.label(s.name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            }
        }
        if legend {
            chart
                .configure_series_labels()
                .position(c.legend.clone())
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// One bar of a horizontal bar chart.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    /// Label left of the bar.
    pub label: String,
    /// Length of the bar.
    pub value: f64,
    /// Half-width of the error whisker (0 for none).
    pub err: f64,
}

/// Draw a horizontal bar chart (first bar on top) as an SVG document.
pub(crate) fn hbars(title: &str, x_label: &str, bars: &[Bar]) -> Result<String, String> {
    let n = bars.len().max(1);
    let height = (90 + 24 * n as u32).max(200);
    let label_w = bars.iter().map(|b| b.label.chars().count()).max().unwrap_or(4).clamp(4, 40) as u32 * 7 + 16;
    let x = fit_range(bars.iter().flat_map(|b| [b.value - b.err, b.value + b.err]).chain(std::iter::once(0.0)));
    let x0 = x.start;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0 + label_w, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(label_w)
            .build_cartesian_2d(x, -0.5..(n as f64 - 0.5))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .disable_y_mesh()
            .y_labels(0)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        // Row i from the top sits at y = n - 1 - i.
        let row = |i: usize| (n - 1 - i) as f64;
        let color = PALETTE[0];
        chart
            .draw_series(
                bars.iter()
                    .enumerate()
                    .map(|(i, b)| Rectangle::new([(0.0, row(i) - 0.35), (b.value, row(i) + 0.35)], color.filled())),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().filter(|(_, b)| b.err > 0.0).map(|(i, b)| {
                PathElement::new(vec![(b.value - b.err, row(i)), (b.value + b.err, row(i))], BLACK.stroke_width(1))
            }))
            .map_err(|e| e.to_string())?;
        let style = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
        for (i, b) in bars.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(x0, row(i)));
            root.draw(&Text::new(b.label.clone(), (px - 6, py), style.clone())).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xy_chart_is_svg_with_lines_and_escaped_text() {
        let svg = xy(&XyChart {
            title: "ROC <test> & more".into(),
            x_label: "false positive rate".into(),
            y_label: "true positive rate".into(),
            x: Some(0.0..1.0),
            y: Some(0.0..1.0),
            series: vec![
                Series {
                    name: "m".into(),
                    points: vec![(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)],
                    color: PALETTE[0],
                    style: Style::Line,
                },
                Series {
                    name: String::new(),
                    points: vec![(0.0, 0.0), (1.0, 1.0)],
                    color: REFERENCE,
                    style: Style::Dashed,
                },
            ],
            legend: SeriesLabelPosition::LowerRight,
            integer_x: false,
        })
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<polyline"), "{svg}");
        assert!(svg.contains("ROC &lt;test&gt; &amp; more"), "{svg}");
        assert!(!svg.contains("<image"));
    }

    #[test]
    fn bar_chart_labels_every_bar() {
        let bars = vec![
            Bar { label: "PageValues".into(), value: 0.12, err: 0.01 },
            Bar { label: "Month=Nov".into(), value: 0.01, err: 0.0 },
            Bar { label: "noise".into(), value: -0.002, err: 0.001 },
        ];
        let svg = hbars("Permutation importance", "drop in roc_auc", &bars).unwrap();
        for b in &bars {
            assert!(svg.contains(&b.label), "{svg}");
        }
        assert!(svg.matches("<rect").count() > 3, "{svg}");
    }

    #[test]
    fn tick_labels_stay_distinct_over_a_tiny_range() {
        let f = tick_labels(&(0.934_10..0.934_15));
        let ticks: Vec<String> = (0..=5).map(|i| f(&(0.934_10 + f64::from(i) * 0.000_01))).collect();
        let mut distinct = ticks.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), ticks.len(), "{ticks:?}");
        assert_eq!(tick_labels(&(0.0..1.0))(&0.5), "0.5");
        assert_eq!(tick_labels(&(0.0..1000.0))(&250.0), "250");
        assert_eq!(tick_labels(&(-1.0..1.0))(&-0.0001), "0.0");
    }

    #[test]
    fn fit_range_pads_and_handles_degenerate_input() {
        assert_eq!(fit_range([1.0, 1.0].into_iter()), 0.95..1.05);
        assert_eq!(fit_range(std::iter::empty()), 0.0..1.0);
        let r = fit_range([0.0, 10.0, f64::NAN].into_iter());
        assert!((r.start + 0.5).abs() < 1e-12 && (r.end - 10.5).abs() < 1e-12);
    }
}
