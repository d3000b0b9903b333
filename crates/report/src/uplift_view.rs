//! Rendering of the `uplift` and `policy` sections ([`UpliftSection`], [`PolicySection`]):
//! per-arm metric tables, Qini and uplift curves, and policy value against the share of
//! customers treated.

use crate::plot::{PALETTE, REFERENCE, Series, Style, XyChart};
use crate::{Interval, PolicySection, UpliftSection};

fn points(v: &[[f64; 2]]) -> Vec<(f64, f64)> {
    v.iter().map(|p| (p[0], p[1])).filter(|p| p.0.is_finite() && p.1.is_finite()).collect()
}

fn opt_interval(v: Option<&Interval>) -> String {
    v.map_or_else(|| "—".into(), Interval::text)
}

fn number(v: f64) -> String {
    format!("{v:.4}")
}

/// Per-arm metrics table: header and rows of plain text cells.
pub(crate) fn arm_table(uplift: &UpliftSection) -> (Vec<String>, Vec<Vec<String>>) {
    let k = format!("uplift@{}", uplift.k);
    let head = ["arm", "test rows", "Qini AUC", "uplift AUC", &k, "ATE observed", "ATE predicted"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows = uplift
        .metrics
        .iter()
        .map(|m| {
            vec![
                m.arm.clone(),
                m.test_rows.to_string(),
                m.qini_auc.text(),
                opt_interval(m.uplift_auc.as_ref()),
                m.uplift_at_k.text(),
                m.ate_observed.text(),
                number(m.ate_predicted),
            ]
        })
        .collect();
    (head, rows)
}

/// Policies table: header and rows.
pub(crate) fn policy_table(policy: &PolicySection) -> (Vec<String>, Vec<Vec<String>>) {
    let head = [
        "policy",
        "value per customer (IPW)",
        "value (doubly robust)",
        "incremental (IPW)",
        "treated share",
        "cost per customer",
        "true value",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows = policy
        .policies
        .iter()
        .map(|p| {
            vec![
                p.policy.clone(),
                p.ipw.text(),
                opt_interval(p.dr.as_ref()),
                p.incremental_ipw.text(),
                format!("{:.3}", p.treated_share),
                number(p.cost_per_customer),
                p.true_value.map_or_else(|| "—".into(), number),
            ]
        })
        .collect();
    (head, rows)
}

/// Qini and uplift curve charts, two per arm, with their captions.
pub(crate) fn curve_charts(uplift: &UpliftSection) -> Vec<(String, XyChart, String)> {
    let outcome = &uplift.outcome;
    let mut out = Vec::new();
    for (i, m) in uplift.metrics.iter().enumerate() {
        let arm = &m.arm;
        let color = PALETTE[i % PALETTE.len()];
        let qini = points(&m.qini_curve);
        if let Some(&(x_end, y_end)) = qini.last() {
            let mut series = vec![Series {
                name: format!("model (Qini AUC {})", m.qini_auc.text()),
                points: qini.clone(),
                color,
                style: Style::Line,
            }];
            let perfect = points(&m.perfect_qini_curve);
            if !perfect.is_empty() {
                series.push(Series {
                    name: "perfect".into(),
                    points: perfect,
                    color: PALETTE[2],
                    style: Style::Dashed,
                });
            }
            series.push(Series {
                name: "random".into(),
                points: vec![(0.0, 0.0), (x_end, y_end)],
                color: REFERENCE,
                style: Style::Dashed,
            });
            out.push((
                format!("Qini curve of {arm}"),
                XyChart {
                    title: format!("Qini curve: {arm} (test)"),
                    x_label: "customers targeted, by predicted uplift".into(),
                    y_label: format!("incremental {outcome}"),
                    x: None,
                    y: None,
                    series,
                    legend: plotters::chart::SeriesLabelPosition::UpperLeft,
                    integer_x: false,
                },
                format!(
                    "Qini curve of {arm} against control on the test rows: incremental {outcome} among the customers with the highest predicted uplift, against targeting at random."
                ),
            ));
        }
        let up = points(&m.uplift_curve);
        if let Some(&(x_end, y_end)) = up.last() {
            out.push((
                format!("uplift curve of {arm}"),
                XyChart {
                    title: format!("Uplift curve: {arm} (test)"),
                    x_label: "customers targeted, by predicted uplift".into(),
                    y_label: format!("uplift × customers ({outcome})"),
                    x: None,
                    y: None,
                    series: vec![
                        Series { name: "model".into(), points: up, color, style: Style::Line },
                        Series {
                            name: "random".into(),
                            points: vec![(0.0, 0.0), (x_end, y_end)],
                            color: REFERENCE,
                            style: Style::Dashed,
                        },
                    ],
                    legend: plotters::chart::SeriesLabelPosition::UpperLeft,
                    integer_x: false,
                },
                format!(
                    "Uplift curve of {arm}: difference of mean {outcome} (treated minus control) among the customers targeted, times their number."
                ),
            ));
        }
    }
    out
}

/// Policy value (IPW, with its bootstrap interval) against the share of customers treated.
pub(crate) fn value_vs_budget(policy: &PolicySection) -> Option<(XyChart, String)> {
    let mut series = Vec::new();
    for (i, p) in policy.policies.iter().enumerate() {
        let (x, v) = (p.treated_share, p.ipw.value);
        if !x.is_finite() || !v.is_finite() {
            continue;
        }
        let color = PALETTE[i % PALETTE.len()];
        series.push(Series { name: p.policy.clone(), points: vec![(x, v)], color, style: Style::Points });
        if let (Some(l), Some(h)) = (p.ipw.low, p.ipw.high) {
            series.push(Series { name: String::new(), points: vec![(x, l), (x, h)], color, style: Style::Line });
        }
    }
    if series.is_empty() {
        return None;
    }
    let mut caption = format!(
        "Net value per customer of each policy on the test rows (inverse-propensity weighted, bars: bootstrap 95 % interval) against the share of customers it treats; budget: {}.",
        policy.budget
    );
    caption.push_str(&format!(
        " Gain over the best single arm ({}): {}.",
        policy.best_single_arm,
        policy.gain_vs_best_single_arm_ipw.text()
    ));
    if let (Some(base), Some(gain)) = (&policy.best_baseline, &policy.gain_vs_best_baseline_ipw) {
        caption.push_str(&format!(" Gain over the best baseline without a model ({base}): {}.", gain.text()));
    }
    Some((
        XyChart {
            title: "Policy value vs share treated (test)".into(),
            x_label: "share of customers treated".into(),
            y_label: "value per customer".into(),
            x: Some(-0.05..1.05),
            y: None,
            series,
            legend: plotters::chart::SeriesLabelPosition::LowerRight,
            integer_x: false,
        },
        caption,
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An uplift and a policy section, read from JSON shaped like the uplift task's (the JSON
    /// of schema version 1, which wrote them untyped).
    pub(crate) fn sample() -> (UpliftSection, PolicySection) {
        let curve =
            |f: f64| serde_json::json!((0..=10).map(|i| [i as f64 * 100.0, f * (i as f64).sqrt()]).collect::<Vec<_>>());
        let uplift = serde_json::json!({
            "treatment": "segment", "control": "No E-Mail", "arms": ["Mens E-Mail"],
            "outcome": "spend", "outcome_kind": "continuous", "propensity": {"No E-Mail": 0.5, "Mens E-Mail": 0.5},
            "propensity_source": "frequency", "final_model": "T-learner/rf", "k": 0.3, "bootstrap": 200,
            "metrics": [{
                "arm": "Mens E-Mail", "test_rows": 1000,
                "qini_auc": {"value": 0.05, "low": 0.01, "high": 0.09},
                "uplift_at_k": {"value": 0.8}, "ate_observed": {"value": 0.7, "low": 0.2, "high": 1.2},
                "ate_predicted": 0.65,
                "qini_curve": curve(10.0), "uplift_curve": curve(8.0), "perfect_qini_curve": curve(30.0)
            }],
            "kpis": []
        });
        let policy = serde_json::json!({
            "model": "t.rf", "budget": "none", "lambda": 0.0, "customers": 1000,
            "value_per_outcome": {"Mens E-Mail": 1.0}, "cost": {"Mens E-Mail": 0.1},
            "policies": [
                {"policy": "model", "ipw": {"value": 0.31, "low": 0.2, "high": 0.4}, "incremental_ipw": {"value": 0.1},
                 "treated_share": 0.6, "cost_per_customer": 0.06, "arm_shares": {}},
                {"policy": "treat none", "ipw": {"value": 0.2}, "incremental_ipw": {"value": 0.0},
                 "treated_share": 0.0, "cost_per_customer": 0.0, "arm_shares": {}}
            ],
            "best_single_arm": "Mens E-Mail", "gain_vs_best_single_arm_ipw": {"value": 0.02, "low": -0.01, "high": 0.05},
            "best_baseline": "treat none", "gain_vs_best_baseline_ipw": {"value": 0.11}
        });
        (serde_json::from_value(uplift).unwrap(), serde_json::from_value(policy).unwrap())
    }

    #[test]
    fn tables_and_charts_from_the_sections() {
        let (u, p) = sample();
        let (head, rows) = arm_table(&u);
        assert_eq!(head[4], "uplift@0.3");
        assert_eq!(rows[0][2], "0.0500 [0.0100, 0.0900]");
        assert_eq!(rows[0][3], "—");
        assert_eq!(rows[0][6], "0.6500");
        let charts = curve_charts(&u);
        assert_eq!(charts.len(), 2);
        assert_eq!(charts[0].1.series.len(), 3, "model, perfect, random");
        let (_, prow) = policy_table(&p);
        assert_eq!(prow[1][0], "treat none");
        assert_eq!(prow[0][6], "—");
        let (chart, caption) = value_vs_budget(&p).unwrap();
        assert_eq!(chart.series.len(), 3, "two policies, one interval bar");
        assert!(caption.contains("0.0200 [-0.0100, 0.0500]"), "{caption}");
        assert!(caption.contains("(treat none): 0.1100"), "{caption}");
        // No curve points, no chart; non-finite policy values are left out.
        let mut empty = u.clone();
        empty.metrics[0].qini_curve.clear();
        empty.metrics[0].uplift_curve.clear();
        assert!(curve_charts(&empty).is_empty());
        let mut nan = p.clone();
        for r in &mut nan.policies {
            r.ipw.value = f64::NAN;
        }
        assert!(value_vs_budget(&nan).is_none());
    }
}
