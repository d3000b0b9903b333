//! Rendering of the optional `uplift` and `policy` sections (written by the uplift runner as
//! JSON): per-arm metric tables, Qini and uplift curves, and policy value against the share of
//! customers treated. Fields are read defensively: a missing or mistyped field leaves its cell
//! or curve out rather than failing the report.

use crate::plot::{PALETTE, REFERENCE, Series, Style, XyChart};
use serde_json::Value;

/// A `{value, low, high}` interval as `v [low, high]` (or just `v`).
pub(crate) fn interval(v: &Value) -> String {
    let Some(value) = v.get("value").and_then(Value::as_f64) else {
        return v.as_f64().map(|x| format!("{x:.4}")).unwrap_or_else(|| "—".into());
    };
    match (v.get("low").and_then(Value::as_f64), v.get("high").and_then(Value::as_f64)) {
        (Some(l), Some(h)) => format!("{value:.4} [{l:.4}, {h:.4}]"),
        _ => format!("{value:.4}"),
    }
}

fn points(v: &Value) -> Vec<(f64, f64)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "—".into(),
        Some(x) => x.to_string(),
    }
}

/// Per-arm metrics table: header and rows of plain text cells.
pub(crate) fn arm_table(uplift: &Value) -> (Vec<String>, Vec<Vec<String>>) {
    let k = uplift.get("k").and_then(Value::as_f64).map(|k| format!("uplift@{k}")).unwrap_or("uplift@k".into());
    let head = ["arm", "test rows", "Qini AUC", "uplift AUC", &k, "ATE observed", "ATE predicted"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows = arms(uplift)
        .iter()
        .map(|m| {
            vec![
                text(m, "arm"),
                text(m, "test_rows"),
                interval(m.get("qini_auc").unwrap_or(&Value::Null)),
                interval(m.get("uplift_auc").unwrap_or(&Value::Null)),
                interval(m.get("uplift_at_k").unwrap_or(&Value::Null)),
                interval(m.get("ate_observed").unwrap_or(&Value::Null)),
                interval(m.get("ate_predicted").unwrap_or(&Value::Null)),
            ]
        })
        .collect();
    (head, rows)
}

fn arms(uplift: &Value) -> Vec<&Value> {
    uplift.get("metrics").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default()
}

/// Policies table: header and rows.
pub(crate) fn policy_table(policy: &Value) -> (Vec<String>, Vec<Vec<String>>) {
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
    let rows = policies(policy)
        .iter()
        .map(|p| {
            vec![
                text(p, "policy"),
                interval(p.get("ipw").unwrap_or(&Value::Null)),
                interval(p.get("dr").unwrap_or(&Value::Null)),
                interval(p.get("incremental_ipw").unwrap_or(&Value::Null)),
                p.get("treated_share").and_then(Value::as_f64).map(|x| format!("{x:.3}")).unwrap_or("—".into()),
                p.get("cost_per_customer").and_then(Value::as_f64).map(|x| format!("{x:.4}")).unwrap_or("—".into()),
                interval(p.get("true_value").unwrap_or(&Value::Null)),
            ]
        })
        .collect();
    (head, rows)
}

fn policies(policy: &Value) -> Vec<&Value> {
    policy.get("policies").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default()
}

/// Qini and uplift curve charts, two per arm, with their captions.
pub(crate) fn curve_charts(uplift: &Value) -> Vec<(String, XyChart, String)> {
    let outcome = uplift.get("outcome").and_then(Value::as_str).unwrap_or("outcome");
    let mut out = Vec::new();
    for (i, m) in arms(uplift).into_iter().enumerate() {
        let arm = m.get("arm").and_then(Value::as_str).unwrap_or("treatment");
        let color = PALETTE[i % PALETTE.len()];
        let qini = points(m.get("qini_curve").unwrap_or(&Value::Null));
        if let Some(&(x_end, y_end)) = qini.last() {
            let mut series = vec![Series {
                name: format!("model (Qini AUC {})", interval(m.get("qini_auc").unwrap_or(&Value::Null))),
                points: qini.clone(),
                color,
                style: Style::Line,
            }];
            let perfect = points(m.get("perfect_qini_curve").unwrap_or(&Value::Null));
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
        let up = points(m.get("uplift_curve").unwrap_or(&Value::Null));
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
pub(crate) fn value_vs_budget(policy: &Value) -> Option<(XyChart, String)> {
    let mut series = Vec::new();
    for (i, p) in policies(policy).into_iter().enumerate() {
        let (Some(x), Some(ipw)) = (p.get("treated_share").and_then(Value::as_f64), p.get("ipw")) else {
            continue;
        };
        let Some(v) = ipw.get("value").and_then(Value::as_f64).or_else(|| ipw.as_f64()) else { continue };
        let color = PALETTE[i % PALETTE.len()];
        let name = p.get("policy").and_then(Value::as_str).unwrap_or("policy").to_string();
        series.push(Series { name, points: vec![(x, v)], color, style: Style::Points });
        if let (Some(l), Some(h)) = (ipw.get("low").and_then(Value::as_f64), ipw.get("high").and_then(Value::as_f64)) {
            series.push(Series { name: String::new(), points: vec![(x, l), (x, h)], color, style: Style::Line });
        }
    }
    if series.is_empty() {
        return None;
    }
    let budget = policy.get("budget").and_then(Value::as_str).unwrap_or("none");
    let mut caption = format!(
        "Net value per customer of each policy on the test rows (inverse-propensity weighted, bars: bootstrap 95 % interval) against the share of customers it treats; budget: {budget}."
    );
    if let Some(arm) = policy.get("best_single_arm").and_then(Value::as_str) {
        caption.push_str(&format!(
            " Gain over the best single arm ({arm}): {}.",
            interval(policy.get("gain_vs_best_single_arm_ipw").unwrap_or(&Value::Null))
        ));
    }
    if let Some(base) = policy.get("best_baseline").and_then(Value::as_str) {
        caption.push_str(&format!(
            " Gain over the best baseline without a model ({base}): {}.",
            interval(policy.get("gain_vs_best_baseline_ipw").unwrap_or(&Value::Null))
        ));
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

    /// An uplift and a policy section shaped like the uplift runner's.
    pub(crate) fn sample() -> (Value, Value) {
        let curve =
            |f: f64| serde_json::json!((0..=10).map(|i| [i as f64 * 100.0, f * (i as f64).sqrt()]).collect::<Vec<_>>());
        let uplift = serde_json::json!({
            "treatment": "segment", "control": "No E-Mail", "arms": ["No E-Mail", "Mens E-Mail"],
            "outcome": "spend", "k": 0.3, "bootstrap": 200,
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
            "model": "t.rf", "budget": "none", "customers": 1000,
            "policies": [
                {"policy": "model", "ipw": {"value": 0.31, "low": 0.2, "high": 0.4}, "incremental_ipw": {"value": 0.1},
                 "treated_share": 0.6, "cost_per_customer": 0.06, "arm_shares": {}},
                {"policy": "treat none", "ipw": {"value": 0.2}, "incremental_ipw": {"value": 0.0},
                 "treated_share": 0.0, "cost_per_customer": 0.0, "arm_shares": {}}
            ],
            "best_single_arm": "Mens E-Mail", "gain_vs_best_single_arm_ipw": {"value": 0.02, "low": -0.01, "high": 0.05}
        });
        (uplift, policy)
    }

    #[test]
    fn tables_and_charts_from_runner_shaped_json() {
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
        let (chart, caption) = value_vs_budget(&p).unwrap();
        assert_eq!(chart.series.len(), 3, "two policies, one interval bar");
        assert!(caption.contains("0.0200 [-0.0100, 0.0500]"), "{caption}");
        // Malformed sections draw nothing instead of failing.
        assert!(curve_charts(&serde_json::json!({"metrics": [{"arm": 3}]})).is_empty());
        assert!(value_vs_budget(&serde_json::json!({"policies": "x"})).is_none());
    }
}
