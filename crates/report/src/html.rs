//! `report.html`: one self-contained file (inline CSS and inline SVG; no script, no link, no
//! image, nothing fetched) with the tables of `report.md` and plots: ROC, precision–recall and
//! calibration of the final model on test, the optimisation history of every candidate,
//! permutation feature importance, the ensemble's weights, and for uplift tasks the Qini and
//! uplift curves of every arm and the policies' value against the share of customers treated.

use crate::plot::{self, Bar, PALETTE, REFERENCE, Series, Style, XyChart};
use crate::{Report, ReportError, uplift_view};
use plotters::chart::SeriesLabelPosition;
use std::fmt::Write as _;

/// Most features drawn in the importance chart (the rest are listed in report.json).
pub const MAX_IMPORTANCE_BARS: usize = 25;

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}\
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}\
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}\
th{background:#f4f4f4}td.p{max-width:22rem;overflow-wrap:anywhere}td.p details{font-size:.8rem;color:#444}td.p summary{cursor:pointer;color:#666}.wide{overflow-x:auto}td.n{text-align:right;font-variant-numeric:tabular-nums}tr.final td{font-weight:600}\
.plots{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;border:1px solid #eee;padding:.3rem}\
figcaption{font-size:.85rem;color:#555;max-width:520px}code{background:#f4f4f4;padding:0 .2rem}.muted{color:#666}";

/// A plot with a caption.
struct Figure {
    svg: String,
    caption: String,
}

fn chart(name: &str, c: &XyChart) -> Result<String, ReportError> {
    plot::xy(c).map_err(|message| ReportError::Plot { plot: name.to_string(), message })
}

fn push_figures(h: &mut String, figures: &[Figure]) {
    h.push_str("<div class=\"plots\">\n");
    for f in figures {
        let _ = writeln!(h, "<figure>{}<figcaption>{}</figcaption></figure>", f.svg, escape(&f.caption));
    }
    h.push_str("</div>\n");
}

fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "—".into())
}

/// Render the report as one self-contained HTML page.
pub fn render(r: &Report) -> Result<String, ReportError> {
    let mut h = String::new();
    let title = format!("promoml report: {}", r.pipeline);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let _ = writeln!(h, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        h,
        "<p>Task <code>{}</code>, seed {}, ranked by <code>{}</code> ({}). Final model: <strong>{}</strong>. promoml {}, report schema {}.</p>",
        escape(&r.task),
        r.seed,
        escape(&r.metric),
        if r.higher_is_better { "higher is better" } else { "lower is better" },
        escape(&r.final_model),
        escape(&r.promoml_version),
        r.schema_version
    );

    let _ = writeln!(h, "<h2>Test metrics of the final model</h2>\n<table><tr><th>metric</th><th>value</th></tr>");
    for (m, v) in &r.test {
        let _ = writeln!(h, "<tr><td>{}</td><td class=\"n\">{v:.4}</td></tr>", escape(m));
    }
    h.push_str("</table>\n");
    if let Some(t) = &r.decision_threshold {
        let _ = writeln!(h, "<p class=\"muted\">{}</p>", escape(&t.sentence()).replace('`', ""));
    }

    leaderboard(&mut h, r);
    ensemble(&mut h, r)?;
    uplift(&mut h, r)?;
    if let Some(f) = &r.folds {
        let _ = writeln!(h, "<h2>Outer folds (test)</h2>\n<p>{}</p>", escape(&f.sentence()));
        let (head, rows) = f.table();
        table(&mut h, &head, &rows);
        if !f.incomplete.is_empty() {
            let _ = writeln!(
                h,
                "<p class=\"muted\">Missing on some fold (failed there), left out: {}.</p>",
                escape(&f.incomplete.join(", "))
            );
        }
        if !f.paired.is_empty() {
            let _ = writeln!(h, "<h3>Paired differences of test <code>{}</code> by fold</h3>", escape(&f.metric));
            let (head, rows) = f.paired_table();
            table(&mut h, &head, &rows);
        }
    }

    let mut figures = Vec::new();
    if let Some(c) = &r.curves {
        let auc = r.test.get("roc_auc").copied().unwrap_or_else(|| c.roc_area());
        let name = format!("{} (AUC {auc:.3})", c.model);
        figures.push(Figure {
            svg: chart(
                "ROC curve",
                &XyChart {
                    title: "ROC curve (test)".into(),
                    x_label: "false positive rate".into(),
                    y_label: "true positive rate".into(),
                    x: Some(0.0..1.0),
                    y: Some(0.0..1.0),
                    series: vec![
                        Series { name, points: pairs(&c.roc), color: PALETTE[0], style: Style::Line },
                        Series {
                            name: "chance".into(),
                            points: vec![(0.0, 0.0), (1.0, 1.0)],
                            color: REFERENCE,
                            style: Style::Dashed,
                        },
                    ],
                    legend: SeriesLabelPosition::LowerRight,
                    integer_x: false,
                },
            )?,
            caption: format!("ROC of {} on {} positive and {} negative test rows.", c.model, c.positives, c.negatives),
        });
        let base_rate = c.positives as f64 / (c.positives + c.negatives) as f64;
        let ap = r.test.get("pr_auc").map(|v| format!(" (AP {v:.3})")).unwrap_or_default();
        figures.push(Figure {
            svg: chart(
                "precision-recall curve",
                &XyChart {
                    title: "Precision–recall curve (test)".into(),
                    x_label: "recall".into(),
                    y_label: "precision".into(),
                    x: Some(0.0..1.0),
                    y: Some(0.0..1.02),
                    series: vec![
                        Series {
                            name: format!("{}{ap}", c.model),
                            points: pairs(&c.pr),
                            color: PALETTE[0],
                            style: Style::Line,
                        },
                        Series {
                            name: format!("base rate {base_rate:.3}"),
                            points: vec![(0.0, base_rate), (1.0, base_rate)],
                            color: REFERENCE,
                            style: Style::Dashed,
                        },
                    ],
                    legend: SeriesLabelPosition::UpperRight,
                    integer_x: false,
                },
            )?,
            caption: format!("Precision against recall of {} on the test rows, by decreasing threshold.", c.model),
        });
        let cal: Vec<(f64, f64)> = c.calibration.iter().map(|b| (b.mean_predicted, b.observed)).collect();
        let counts: Vec<String> =
            c.calibration.iter().map(|b| format!("{:.1}–{:.1}: {}", b.lower, b.lower + 0.1, b.count)).collect();
        figures.push(Figure {
            svg: chart(
                "calibration",
                &XyChart {
                    title: "Calibration (test)".into(),
                    x_label: "mean predicted probability".into(),
                    y_label: "observed positive rate".into(),
                    x: Some(0.0..1.0),
                    y: Some(0.0..1.0),
                    series: vec![
                        Series { name: c.model.clone(), points: cal, color: PALETTE[1], style: Style::LinePoints },
                        Series {
                            name: "perfect".into(),
                            points: vec![(0.0, 0.0), (1.0, 1.0)],
                            color: REFERENCE,
                            style: Style::Dashed,
                        },
                    ],
                    legend: SeriesLabelPosition::UpperLeft,
                    integer_x: false,
                },
            )?,
            caption: format!("Reliability of {}: rows per probability bin {}.", c.model, counts.join(", ")),
        });
    }
    if let Some(fi) = &r.feature_importance {
        let bars: Vec<Bar> = fi
            .features
            .iter()
            .take(MAX_IMPORTANCE_BARS)
            .map(|f| Bar { label: f.feature.clone(), value: f.importance, err: f.std })
            .collect();
        let svg = plot::hbars("Permutation feature importance (test)", &format!("worsening of {}", fi.metric), &bars)
            .map_err(|message| ReportError::Plot { plot: "feature importance".into(), message })?;
        let more = fi.features.len().saturating_sub(MAX_IMPORTANCE_BARS);
        figures.push(Figure {
            svg,
            caption: format!(
                "How much the test {} of {} worsens when one feature is shuffled ({}; whiskers ± 1 sd){}{}.",
                fi.metric,
                fi.model,
                crate::count(fi.repeats, "shuffle"),
                if more > 0 { format!("; {more} more features in report.json") } else { String::new() },
                if fi.unmeasured.is_empty() {
                    String::new()
                } else {
                    format!("; {} features not measured (the time budget ran out)", fi.unmeasured.len())
                }
            ),
        });
    }
    if let Some(sh) = &r.shap {
        let svg = crate::shap::beeswarm(sh, MAX_IMPORTANCE_BARS)
            .map_err(|message| ReportError::Plot { plot: "SHAP summary".into(), message })?;
        let more = sh.features.len().saturating_sub(MAX_IMPORTANCE_BARS);
        figures.push(Figure {
            svg,
            caption: format!(
                "Each input's contributions to {} ({}, {} explanations) over {}: dots stack where contributions \
                 fall, blue for low and red for high input values, grey for grouped one-hot inputs; base value {:.4}{}.",
                sh.model,
                sh.space.replace('_', "-"),
                sh.method,
                crate::count(sh.rows, "test row"),
                sh.base_value,
                if more > 0 { format!("; {more} more inputs in report.json") } else { String::new() },
            ),
        });
    }
    if !figures.is_empty() {
        let _ = writeln!(h, "<h2>Final model on the test rows</h2>");
        push_figures(&mut h, &figures);
    }

    history(&mut h, r)?;

    if let Some(a) = &r.anomaly {
        let _ = writeln!(h, "<h2>Anomaly detection</h2>");
        if let Some(p) = &a.protocol {
            let _ = writeln!(h, "<p>{}</p>", escape(p));
        }
        if let Some(s) = &a.selection {
            let _ = writeln!(h, "<p>Final detector: {} ({}).</p>", escape(&s.rule), escape(&s.detail));
        }
        if !a.detectors.is_empty() {
            let head: Vec<String> = ["detector", "threshold", "flagged test rows", "test score p50", "test score p99"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let rows: Vec<Vec<String>> = a
                .detectors
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        d.threshold.map_or_else(|| "—".into(), |t| format!("{t:.4}")),
                        d.flagged_test_rows.map_or_else(|| "—".into(), |n| n.to_string()),
                        format!("{:.4}", d.test_scores.p50),
                        format!("{:.4}", d.test_scores.p99),
                    ]
                })
                .collect();
            table(&mut h, &head, &rows);
        }
        let pretty = serde_json::to_string_pretty(a).unwrap_or_default();
        let _ = writeln!(
            h,
            "<details><summary>The report's <code>anomaly</code> section</summary><pre>{}</pre></details>",
            escape(&pretty)
        );
    }

    if !r.failures.is_empty() {
        let _ = writeln!(h, "<h2>Failed candidates</h2>\n<ul>");
        for f in &r.failures {
            let _ = writeln!(h, "<li><strong>{}</strong>: {}</li>", escape(&f.model), escape(&f.error));
        }
        h.push_str("</ul>\n");
    }
    let d = &r.data;
    let _ = writeln!(h, "<h2>Data</h2>\n<table>");
    for (k, v) in [
        ("source", escape(&d.source)),
        ("training rows", d.train_rows.to_string()),
        ("dropped by cleaners", d.dropped_train_rows.to_string()),
        ("test rows", d.test_rows.to_string()),
        ("columns", d.columns.to_string()),
        ("missing cells (training)", d.missing_cells.to_string()),
        ("model features", d.features.to_string()),
    ] {
        let _ = writeln!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    if !d.classes.is_empty() {
        let c: Vec<String> = d.classes.iter().map(|(k, v)| format!("{}: {v}", escape(k))).collect();
        let _ = writeln!(h, "<tr><th>training classes</th><td>{}</td></tr>", c.join(", "));
    }
    for l in &d.suspected_leaks {
        let _ = writeln!(
            h,
            "<tr><th>possible leak</th><td><strong>{}</strong> alone separates the target on the training rows (AUC {:.3}); is it known before the outcome?</td></tr>",
            escape(&l.feature),
            l.auc
        );
    }
    if !d.identifier_columns.is_empty() {
        let c: Vec<String> = d.identifier_columns.iter().map(|c| escape(c)).collect();
        let _ = writeln!(h, "<tr><th>left out as identifiers</th><td>{}</td></tr>", c.join(", "));
    }
    if !d.bad_values_as_missing.is_empty() {
        let c: Vec<String> = d.bad_values_as_missing.iter().map(|(k, v)| format!("{}: {v}", escape(k))).collect();
        let _ = writeln!(h, "<tr><th>unreadable values read as missing</th><td>{}</td></tr>", c.join(", "));
    }
    h.push_str("</table>\n");
    let t = &r.timing;
    let _ = writeln!(h, "<h2>Timing</h2>\n<table><tr><th>stage</th><th>seconds</th></tr>");
    for (k, v) in [
        ("total", t.total_s),
        ("load", t.load_s),
        ("prepare", t.prepare_s),
        ("search", t.search_s),
        ("refit and test", t.refit_s),
        ("permutation importance", t.importance_s),
    ] {
        let _ = writeln!(h, "<tr><td>{k}</td><td class=\"n\">{v:.2}</td></tr>");
    }
    h.push_str("</table>\n</body></html>\n");
    Ok(h)
}

fn pairs(p: &[[f64; 2]]) -> Vec<(f64, f64)> {
    p.iter().map(|p| (p[0], p[1])).collect()
}

/// A leaderboard parameter as shown: numbers to 4 significant digits (report.json keeps them
/// whole), text as is.
pub fn short_param(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => sig4(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `x` to 4 significant digits, without trailing zeros (`3.424`, `0.0001235`, `1.235e7`).
fn sig4(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    if (-5..6).contains(&mag) {
        let text = format!("{x:.*}", (3 - mag).max(0) as usize);
        if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
    } else {
        format!("{x:.3e}")
    }
}

/// The leaderboard: one compact row per candidate. The kind is shown under the name only when
/// it differs from it, and the parameters fold away under the name (open them with a click).
fn leaderboard(h: &mut String, r: &Report) {
    let metrics: Vec<&String> = r.test.keys().collect();
    let _ = write!(
        h,
        "<h2>Leaderboard</h2>\n<div class=\"wide\"><table class=\"lb\"><tr><th>#</th><th>model</th><th>cv {} (± sd)</th>",
        escape(&r.metric)
    );
    for m in &metrics {
        let _ = write!(h, "<th>test {}</th>", escape(m));
    }
    h.push_str("<th>fit s</th><th>trials</th></tr>\n");
    for (i, e) in r.leaderboard.iter().enumerate() {
        let cls = if e.name == r.final_model { " class=\"final\"" } else { "" };
        let kind =
            if e.kind == e.name { String::new() } else { format!(" <code class=\"muted\">{}</code>", escape(&e.kind)) };
        let params = if e.params.is_empty() {
            String::new()
        } else {
            let p: Vec<String> =
                e.params.iter().map(|(k, v)| format!("{}={}", escape(k), escape(&short_param(v)))).collect();
            format!("<details><summary>{}</summary>{}</details>", crate::count(e.params.len(), "param"), p.join(", "))
        };
        let _ = write!(
            h,
            "<tr{cls}><td>{}</td><td class=\"p\">{}{kind}{params}</td><td class=\"n\">{} ± {:.4}</td>",
            i + 1,
            escape(&e.name),
            num(e.cv.get(&r.metric).copied()),
            e.cv_std
        );
        for m in &metrics {
            let _ = write!(h, "<td class=\"n\">{}</td>", num(e.test.get(*m).copied()));
        }
        let _ = writeln!(h, "<td class=\"n\">{:.2}</td><td class=\"n\">{}</td></tr>", e.fit_s, e.n_trials);
    }
    h.push_str("</table></div>\n");
}

fn table(h: &mut String, head: &[String], rows: &[Vec<String>]) {
    h.push_str("<div class=\"wide\"><table><tr>");
    for c in head {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h.push_str("</tr>\n");
    for row in rows {
        h.push_str("<tr>");
        for c in row {
            let _ = write!(h, "<td>{}</td>", escape(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table></div>\n");
}

/// Uplift tasks: per-arm metrics, Qini and uplift curves; policy values against share treated.
fn uplift(h: &mut String, r: &Report) -> Result<(), ReportError> {
    if let Some(u) = &r.uplift {
        let _ = writeln!(h, "<h2>Uplift (test)</h2>");
        let (head, rows) = uplift_view::arm_table(u);
        table(h, &head, &rows);
        let mut figures = Vec::new();
        for (name, c, caption) in uplift_view::curve_charts(u) {
            figures.push(Figure { svg: chart(&name, &c)?, caption });
        }
        push_figures(h, &figures);
    }
    if let Some(p) = &r.policy {
        let _ = writeln!(h, "<h2>Policy (test)</h2>");
        let (head, rows) = uplift_view::policy_table(p);
        table(h, &head, &rows);
        if let Some((c, caption)) = uplift_view::value_vs_budget(p) {
            push_figures(h, &[Figure { svg: chart("policy value", &c)?, caption }]);
        }
    }
    Ok(())
}

fn ensemble(h: &mut String, r: &Report) -> Result<(), ReportError> {
    let Some(e) = &r.ensemble else { return Ok(()) };
    let _ = writeln!(
        h,
        "<h2>Ensemble</h2>\n<p><strong>{}</strong>: {} over {} layer(s).</p>\n<table><tr><th>member</th><th>weight</th></tr>",
        escape(&e.name),
        escape(&e.kind),
        e.layers
    );
    for m in &e.members {
        let _ = writeln!(h, "<tr><td>{}</td><td class=\"n\">{:.4}</td></tr>", escape(&m.name), m.weight);
    }
    h.push_str("</table>\n");
    if !e.intercepts.is_empty() {
        let i: Vec<String> = e.intercepts.iter().map(|v| format!("{v:.4}")).collect();
        let _ = writeln!(h, "<p class=\"muted\">Stacking intercepts: {}.</p>", i.join(", "));
    }
    if !e.members.is_empty() {
        let bars: Vec<Bar> =
            e.members.iter().map(|m| Bar { label: m.name.clone(), value: m.weight, err: 0.0 }).collect();
        let svg = plot::hbars("Ensemble weights", "weight", &bars)
            .map_err(|message| ReportError::Plot { plot: "ensemble weights".into(), message })?;
        push_figures(h, &[Figure { svg, caption: format!("Weights of the members of {}.", e.name) }]);
    }
    Ok(())
}

/// Optimisation history: one chart per candidate, trial score by trial number with the best so
/// far.
fn history(h: &mut String, r: &Report) -> Result<(), ReportError> {
    let mut names: Vec<&str> = r.leaderboard.iter().map(|e| e.name.as_str()).collect();
    for t in &r.trials {
        if !names.contains(&t.model.as_str()) {
            names.push(&t.model);
        }
    }
    let mut figures = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let trials: Vec<_> = r.trials.iter().filter(|t| t.model == *name).collect();
        if trials.is_empty() {
            continue;
        }
        let kind = r.leaderboard.iter().find(|e| e.name == *name).map(|e| e.kind.as_str()).unwrap_or("failed");
        let complete: Vec<(f64, f64)> =
            trials.iter().filter(|t| !t.pruned).filter_map(|t| t.score.map(|s| (t.number as f64, s))).collect();
        let pruned: Vec<(f64, f64)> =
            trials.iter().filter(|t| t.pruned).filter_map(|t| t.score.map(|s| (t.number as f64, s))).collect();
        let failed = trials.iter().filter(|t| t.score.is_none()).count();
        let mut best: Option<f64> = None;
        let mut running = Vec::new();
        let mut sorted = complete.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        // A step line: flat until a trial beats the best so far.
        for &(x, y) in &sorted {
            if let Some(b) = best {
                running.push((x, b));
            }
            if best.is_none_or(|b| if r.higher_is_better { y > b } else { y < b }) {
                best = Some(y);
            }
            running.push((x, best.unwrap_or(y)));
        }
        let color = PALETTE[i % PALETTE.len()];
        let mut series = vec![Series { name: "trial".into(), points: complete.clone(), color, style: Style::Points }];
        if !pruned.is_empty() {
            series.push(Series { name: "pruned".into(), points: pruned.clone(), color, style: Style::HollowPoints });
        }
        series.push(Series { name: "best so far".into(), points: running, color: REFERENCE, style: Style::Line });
        // Leave room for the legend below the points (above them for losses) so it hides none.
        let fit = plot::fit_range(complete.iter().chain(&pruned).map(|p| p.1));
        let room = (fit.end - fit.start) * 0.4;
        let y = if r.higher_is_better { (fit.start - room)..fit.end } else { fit.start..(fit.end + room) };
        let n_trials = trials.len();
        let x_hi = trials.iter().map(|t| t.number).max().unwrap_or(0) as f64;
        let svg = chart(
            &format!("optimisation history of {name}"),
            &XyChart {
                title: if *name == kind { name.to_string() } else { format!("{name} ({kind})") },
                x_label: "trial".into(),
                y_label: format!("cv {}", r.metric),
                x: Some(-0.5..(x_hi + 0.5)),
                y: Some(y),
                series,
                legend: if r.higher_is_better {
                    SeriesLabelPosition::LowerRight
                } else {
                    SeriesLabelPosition::UpperRight
                },
                integer_x: true,
            },
        )?;
        figures.push(Figure {
            svg,
            caption: format!(
                "{name}: {n_trials} trial(s), {} complete, {} pruned, {failed} failed; best cv {} {}.",
                complete.len(),
                pruned.len(),
                r.metric,
                num(best)
            ),
        });
    }
    if !figures.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Optimisation history</h2>\n<p class=\"muted\">Cross-validated <code>{}</code> of every trial by candidate; the grey line is the best so far.</p>",
            escape(&r.metric)
        );
        push_figures(h, &figures);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Curves, FeatureImportance, LeaderboardEntry, PermutationImportance, SCHEMA_VERSION, Trial};

    fn trial(model: &str, number: usize, score: Option<f64>) -> Trial {
        Trial {
            model: model.into(),
            number,
            params: Default::default(),
            fold_scores: score.into_iter().collect(),
            score,
            seconds: 0.1,
            error: score.is_none().then(|| "boom".into()),
            pruned: false,
        }
    }

    fn sample() -> Report {
        let labels: Vec<bool> = (0..200).map(|i| i % 3 == 0).collect();
        let scores: Vec<f64> =
            (0..200).map(|i| if i % 3 == 0 { 0.3 + (i % 7) as f64 / 10.0 } else { (i % 6) as f64 / 10.0 }).collect();
        Report {
            schema_version: SCHEMA_VERSION,
            pipeline: "shop <&> test".into(),
            task: "binary".into(),
            metric: "roc_auc".into(),
            higher_is_better: true,
            final_model: "rf".into(),
            test: [("roc_auc".to_string(), 0.9), ("pr_auc".to_string(), 0.7)].into(),
            leaderboard: vec![LeaderboardEntry {
                name: "rf".into(),
                kind: "forest.random_forest".into(),
                params: Default::default(),
                cv: [("roc_auc".to_string(), 0.91)].into(),
                cv_std: 0.01,
                test: [("roc_auc".to_string(), 0.9)].into(),
                fit_s: 1.0,
                n_trials: 3,
                threshold: None,
            }],
            trials: vec![
                trial("rf", 0, Some(0.88)),
                trial("rf", 1, None),
                trial("rf", 2, Some(0.91)),
                trial("knn", 0, None),
            ],
            curves: Some(Curves::from_scores("rf", &labels, &scores).unwrap()),
            feature_importance: Some(PermutationImportance {
                model: "rf".into(),
                metric: "roc_auc".into(),
                repeats: 5,
                features: vec![
                    FeatureImportance { feature: "PageValues".into(), importance: 0.2, std: 0.01 },
                    FeatureImportance { feature: "Month=Nov".into(), importance: 0.01, std: 0.002 },
                ],
                unmeasured: vec![],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn params_show_four_significant_digits() {
        let cases = [
            (serde_json::json!(3.4244415266737946), "3.424"),
            (serde_json::json!(0.000123456), "0.0001235"),
            (serde_json::json!(0.5), "0.5"),
            (serde_json::json!(1234.5678), "1235"),
            (serde_json::json!(12345678.9), "1.235e7"),
            (serde_json::json!(200), "200"),
            (serde_json::json!("fraction"), "fraction"),
            (serde_json::json!(true), "true"),
        ];
        for (v, want) in cases {
            assert_eq!(short_param(&v), want, "{v}");
        }
    }

    #[test]
    fn html_is_self_contained_with_one_svg_per_plot() {
        let html = render(&sample()).unwrap();
        // ROC, PR, calibration, importance, history of rf and of the failed knn.
        assert_eq!(html.matches("<svg").count(), 6, "{html}");
        for bad in ["<script", "<link", "<img", "<iframe", "src=", "href=", "url("] {
            assert!(!html.contains(bad), "report.html contains {bad}");
        }
        assert!(html.contains("promoml report: shop &lt;&amp;&gt; test"));
        assert!(html.contains("rf (AUC 0.900)"));
        assert!(html.contains("PageValues"));
        assert!(html.contains("rf: 3 trial(s), 2 complete, 0 pruned, 1 failed; best cv roc_auc 0.9100."), "{html}");
    }

    #[test]
    fn uplift_and_policy_sections_are_drawn() {
        let (u, p) = crate::uplift_view::tests::sample();
        let mut r = sample();
        r.curves = None;
        r.feature_importance = None;
        r.trials.clear();
        r.uplift = Some(u);
        r.policy = Some(p);
        let html = render(&r).unwrap();
        // Qini and uplift curves of one arm, policy value vs share treated.
        assert_eq!(html.matches("<svg").count(), 3, "{html}");
        assert!(html.contains("<h2>Uplift (test)</h2>") && html.contains("0.0500 [0.0100, 0.0900]"));
        assert!(html.contains("Policy value vs share treated (test)"));
    }

    #[test]
    fn html_without_optional_fields_still_renders() {
        let mut r = sample();
        r.curves = None;
        r.feature_importance = None;
        r.trials.clear();
        let html = render(&r).unwrap();
        assert_eq!(html.matches("<svg").count(), 0);
        assert!(html.contains("<h2>Leaderboard</h2>"));
    }
}
