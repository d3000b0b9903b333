//! The SHAP summary of the final model on the test rows: each input's mean |contribution| and,
//! for the beeswarm-style chart, how its contributions spread. Only aggregates are kept (per
//! input, the number of test rows whose contribution falls in each of a few bins and their mean
//! scaled input value), never rows.

use crate::plot::{PALETTE, fit_range, tick_labels};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

/// SHAP summary of the final model (tree and linear models, whose explanations are exact).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapSummary {
    /// The model explained (the final model).
    pub model: String,
    /// How: `exact` (TreeSHAP, linear) or `ensemble` (exact members through a linear combiner).
    pub method: String,
    /// The space of the contributions: `log_odds`, `probability` or `value`.
    pub space: String,
    /// Test rows explained.
    pub rows: usize,
    /// The base value (mean over the rows explained).
    pub base_value: f64,
    /// Inputs, largest mean |contribution| first.
    pub features: Vec<ShapFeature>,
}

/// One input's contributions over the test rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapFeature {
    /// Input column (one-hot features added up per column).
    pub feature: String,
    /// Mean |contribution|.
    pub mean_abs: f64,
    /// Contributions in bins of equal width over the summary's range: bin centre, rows in the
    /// bin, and their mean input value scaled to [0, 1] (`None` for a grouped or missing input).
    pub bins: Vec<ShapBin>,
}

/// Rows whose contribution falls in one bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapBin {
    /// Centre of the bin.
    pub contribution: f64,
    /// Rows in it.
    pub count: usize,
    /// Their mean input value, scaled to [0, 1] over the rows explained.
    pub value: Option<f64>,
}

/// Bins per input.
pub const SHAP_BINS: usize = 40;

impl ShapSummary {
    /// Summarise `contributions[input][row]` with each input's scaled values per row
    /// (`values[input]`, `None` when the input has no single value), inputs named `names`.
    pub fn from_contributions(
        model: &str,
        method: &str,
        space: &str,
        base_value: f64,
        names: &[String],
        contributions: &[Vec<f64>],
        values: &[Option<Vec<f64>>],
    ) -> ShapSummary {
        let rows = contributions.first().map_or(0, Vec::len);
        let all = contributions.iter().flatten().copied().filter(|v| v.is_finite());
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = if lo < hi { (lo, hi) } else { (lo.min(0.0) - 0.5, hi.max(0.0) + 0.5) };
        let width = (hi - lo) / SHAP_BINS as f64;
        let mut features: Vec<ShapFeature> = names
            .iter()
            .zip(contributions)
            .zip(values)
            .map(|((name, c), v)| {
                let mut count = vec![0usize; SHAP_BINS];
                let mut sum = vec![0.0; SHAP_BINS];
                let mut seen = vec![0usize; SHAP_BINS];
                for (i, &x) in c.iter().enumerate() {
                    let b = (((x - lo) / width) as usize).min(SHAP_BINS - 1);
                    count[b] += 1;
                    if let Some(val) = v.as_ref().map(|v| v[i]).filter(|x| x.is_finite()) {
                        sum[b] += val;
                        seen[b] += 1;
                    }
                }
                let bins = (0..SHAP_BINS)
                    .filter(|&b| count[b] > 0)
                    .map(|b| ShapBin {
                        contribution: lo + (b as f64 + 0.5) * width,
                        count: count[b],
                        value: (seen[b] > 0).then(|| sum[b] / seen[b] as f64),
                    })
                    .collect();
                let mean_abs = c.iter().map(|x| x.abs()).sum::<f64>() / c.len().max(1) as f64;
                ShapFeature { feature: name.clone(), mean_abs, bins }
            })
            .collect();
        features.sort_by(|a, b| b.mean_abs.total_cmp(&a.mean_abs).then_with(|| a.feature.cmp(&b.feature)));
        ShapSummary { model: model.into(), method: method.into(), space: space.into(), rows, base_value, features }
    }
}

/// Colour of a scaled input value: blue (low) to red (high); grey without one.
fn value_color(v: Option<f64>) -> RGBColor {
    match v {
        None => RGBColor(150, 150, 150),
        Some(t) => {
            let t = t.clamp(0.0, 1.0);
            let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
            RGBColor(mix(30, 220), mix(110, 40), mix(230, 60))
        }
    }
}

/// The beeswarm-style chart: one row per input (largest mean |contribution| on top, at most
/// `max`), each bin a stack of dots (one dot per `rows / 60` rows at most) at its contribution,
/// coloured by the bin's mean input value.
pub(crate) fn beeswarm(s: &ShapSummary, max: usize) -> Result<String, String> {
    let feats: Vec<&ShapFeature> = s.features.iter().take(max).collect();
    let n = feats.len().max(1);
    let height = (90 + 34 * n as u32).max(220);
    let label_w = feats.iter().map(|f| f.feature.chars().count()).max().unwrap_or(4).clamp(4, 40) as u32 * 7 + 16;
    let x = fit_range(feats.iter().flat_map(|f| f.bins.iter().map(|b| b.contribution)).chain(std::iter::once(0.0)));
    let x0 = x.start;
    let most = feats.iter().flat_map(|f| f.bins.iter().map(|b| b.count)).max().unwrap_or(1);
    // Dots per bin: proportional to its rows, at most 12 on a side.
    let dots = |count: usize| ((count as f64 / most as f64) * 12.0).ceil().max(1.0) as usize;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (crate::plot::SIZE.0 + label_w, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption("SHAP summary (test)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(label_w)
            .build_cartesian_2d(x.clone(), -0.5..(n as f64 - 0.5))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(format!("contribution ({})", s.space.replace('_', "-")))
            .x_label_formatter(&tick_labels(&x))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .disable_y_mesh()
            .y_labels(0)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        let row = |i: usize| (n - 1 - i) as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, -0.5), (0.0, n as f64 - 0.5)],
                PALETTE[7].stroke_width(1),
            )))
            .map_err(|e| e.to_string())?;
        for (i, f) in feats.iter().enumerate() {
            let points = f.bins.iter().flat_map(|b| {
                let k = dots(b.count);
                (0..k).map(move |j| {
                    // Alternate above and below the row's centre line.
                    let off = if j % 2 == 0 { j as f64 / 2.0 } else { -((j + 1) as f64) / 2.0 };
                    (b.contribution, row(i) + off * 0.035, value_color(b.value))
                })
            });
            chart.draw_series(points.map(|(x, y, c)| Circle::new((x, y), 3, c.filled()))).map_err(|e| e.to_string())?;
        }
        let style = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
        for (i, f) in feats.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(x0, row(i)));
            root.draw(&Text::new(f.feature.clone(), (px - 6, py), style.clone())).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_orders_inputs_and_bins_contributions() {
        let names = vec!["a".to_string(), "b".to_string()];
        let c = vec![vec![0.1, -0.1, 0.2, 0.0], vec![1.0, -2.0, 0.5, 1.5]];
        let values = vec![Some(vec![0.0, 0.5, 1.0, 0.25]), None];
        let s = ShapSummary::from_contributions("m", "exact", "log_odds", 0.3, &names, &c, &values);
        assert_eq!(s.rows, 4);
        assert_eq!(s.features[0].feature, "b");
        assert_eq!(s.features[0].mean_abs, 1.25);
        assert_eq!(s.features[1].bins.iter().map(|b| b.count).sum::<usize>(), 4);
        assert!(s.features[0].bins.iter().all(|b| b.value.is_none()));
        assert!(s.features[1].bins.iter().all(|b| b.value.is_some()));
        let svg = beeswarm(&s, 10).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("SHAP summary") && svg.contains("<circle"));
    }
}
