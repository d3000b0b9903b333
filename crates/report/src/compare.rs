//! The CI regression gate: compare a current report with a baseline, metric by metric and
//! candidate by candidate, and decide whether the run regressed.
//!
//! A run regresses when the final model's headline test metric (the report's `metric`) is worse
//! than the baseline's by more than the tolerance (direction-aware: lower is better for
//! `rmse`, `mae` and `log_loss`), or when a candidate of the baseline's leaderboard is missing
//! from the current one. Everything else (other metrics, other candidates, timings) is shown
//! but does not fail the gate.

use crate::Report;
use crate::folds::PairedDifference;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Default tolerance of `promoml compare --max-drop`.
pub const DEFAULT_MAX_DROP: f64 = 0.005;

/// Slack for floating-point noise when comparing a drop with the tolerance.
const EPS: f64 = 1e-12;

/// Whether larger values of a metric are better (false for the losses `rmse`, `mae`,
/// `log_loss`).
pub fn higher_is_better(metric: &str) -> bool {
    !matches!(metric, "rmse" | "mae" | "log_loss")
}

/// Why two reports cannot be compared at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompareError {
    /// The tolerance is negative or not a number.
    #[error("--max-drop {0} must be a finite number >= 0")]
    Tolerance(f64),
    /// The reports rank by different metrics or solve different tasks.
    #[error("{what} differs: baseline has `{baseline}`, current has `{current}`; the reports are not comparable")]
    Mismatch {
        /// What differs.
        what: &'static str,
        /// Baseline's value.
        baseline: String,
        /// Current's value.
        current: String,
    },
    /// The baseline has no test value of its own headline metric.
    #[error("baseline has no test value of its headline metric `{0}`")]
    NoBaselineHeadline(String),
}

/// Outcome of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Why the gate fails; empty when it passes.
    pub regressions: Vec<String>,
    /// The Markdown diff (paste-ready for a PR comment).
    pub markdown: String,
}

impl Comparison {
    /// True when nothing regressed.
    pub fn passed(&self) -> bool {
        self.regressions.is_empty()
    }
}

/// How much worse `current` is than `baseline` (positive = worse), given the direction.
fn worsening(baseline: f64, current: f64, higher_better: bool) -> f64 {
    if higher_better { baseline - current } else { current - baseline }
}

fn change(baseline: Option<f64>, current: Option<f64>, higher_better: Option<bool>) -> String {
    match (baseline, current) {
        (Some(b), Some(c)) => {
            let d = c - b;
            if d.abs() < 5e-5 {
                "=".into()
            } else {
                let word = match higher_better {
                    Some(h) if worsening(b, c, h) > 0.0 => " worse",
                    Some(_) => " better",
                    None => "",
                };
                format!("{d:+.4}{word}")
            }
        }
        (Some(_), None) => "**missing**".into(),
        (None, Some(_)) => "new".into(),
        (None, None) => String::new(),
    }
}

fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "—".into())
}

/// The final model's headline metric paired by fold, current − baseline, when both reports ran
/// the same outer folds (same K, same headline metric).
fn paired_folds(baseline: &Report, current: &Report) -> Option<PairedDifference> {
    let (b, c) = (baseline.folds.as_ref()?, current.folds.as_ref()?);
    if b.k != c.k || b.metric != c.metric || b.metric != baseline.metric {
        return None;
    }
    let (bv, cv) = (b.headline()?, c.headline()?);
    (bv.len() == b.k && cv.len() == c.k).then(|| PairedDifference::new(&b.metric, "current", "baseline", cv, bv))
}

/// Compare `current` with `baseline`; `labels` name the two files in the Markdown. When both
/// reports have the same outer folds, the headline gate is the mean paired per-fold difference.
pub fn compare(
    baseline: &Report,
    current: &Report,
    max_drop: f64,
    labels: [&str; 2],
) -> Result<Comparison, CompareError> {
    if !max_drop.is_finite() || max_drop < 0.0 {
        return Err(CompareError::Tolerance(max_drop));
    }
    if baseline.task != current.task {
        return Err(CompareError::Mismatch {
            what: "task",
            baseline: baseline.task.clone(),
            current: current.task.clone(),
        });
    }
    if baseline.metric != current.metric {
        return Err(CompareError::Mismatch {
            what: "headline metric",
            baseline: baseline.metric.clone(),
            current: current.metric.clone(),
        });
    }
    let metric = &baseline.metric;
    let hib = baseline.higher_is_better;
    let base_head =
        baseline.test.get(metric).copied().ok_or_else(|| CompareError::NoBaselineHeadline(metric.clone()))?;

    let mut regressions = Vec::new();
    // Both reports ran the same outer folds: the gate is the mean of the paired per-fold
    // differences of the final model's headline metric, not the last fold alone.
    let paired = paired_folds(baseline, current);
    let mut fold_note = None;
    if let (Some(bf), Some(cf)) = (&baseline.folds, &current.folds)
        && paired.is_none()
    {
        fold_note = Some(format!(
            "Both reports have outer folds, but not the same ones (baseline: {} folds on `{}`, current: {} folds on `{}`): compared on the last fold's test rows only.",
            bf.k, bf.metric, cf.k, cf.metric
        ));
    } else if baseline.folds.is_some() != current.folds.is_some() {
        fold_note = Some(format!(
            "Only the {} report has outer folds: compared on the last fold's test rows only.",
            if baseline.folds.is_some() { "baseline" } else { "current" }
        ));
    }
    match (current.test.get(metric), &paired) {
        (_, Some(p)) => {
            // `differences` are current − baseline; the worsening is direction-aware.
            let w = if hib { -p.summary.mean } else { p.summary.mean };
            if !w.is_finite() || w > max_drop + EPS {
                regressions.push(format!(
                    "final model's test {metric} over {} outer folds: mean paired difference (current − baseline) {:+.4}, 95 % interval [{:+.4}, {:+.4}]: worse by {w:.4} on average, more than the tolerance {max_drop}",
                    p.differences.len(),
                    p.summary.mean,
                    p.summary.low,
                    p.summary.high
                ));
            }
        }
        (None, None) => regressions.push(format!("the final model has no test `{metric}`")),
        (Some(&cur), None) => {
            let w = worsening(base_head, cur, hib);
            if !cur.is_finite() || w > max_drop + EPS {
                regressions.push(format!(
                    "final model's test {metric} went from {base_head:.4} ({}) to {cur:.4} ({}): worse by {w:.4}, more than the tolerance {max_drop}",
                    baseline.final_model, current.final_model
                ));
            }
        }
    }
    let current_names: BTreeSet<&str> = current.leaderboard.iter().map(|e| e.name.as_str()).collect();
    for e in &baseline.leaderboard {
        if !current_names.contains(e.name.as_str()) {
            let why = current
                .failures
                .iter()
                .find(|f| f.model == e.name)
                .map(|f| format!(" (failed: {})", f.error))
                .unwrap_or_default();
            regressions.push(format!("candidate `{}` is missing from the current leaderboard{why}", e.name));
        }
    }

    let mut s = String::new();
    let _ = writeln!(s, "## promoml compare: `{}`\n", current.pipeline);
    let _ = writeln!(
        s,
        "Baseline `{}` vs current `{}`. Gate: the final model's test `{metric}` ({}){} may be worse by at most {max_drop}, and no candidate may disappear.\n",
        labels[0],
        labels[1],
        if hib { "higher is better" } else { "lower is better" },
        match &paired {
            Some(p) => format!(", on average over {} outer folds paired by fold,", p.differences.len()),
            None => String::new(),
        }
    );
    if regressions.is_empty() {
        let _ = writeln!(s, "**PASS**: no regression.\n");
    } else {
        let _ = writeln!(s, "**FAIL**:\n");
        for r in &regressions {
            let _ = writeln!(s, "- {r}");
        }
        let _ = writeln!(s);
    }

    if let Some(p) = &paired {
        let k = p.differences.len();
        let _ = writeln!(s, "### Outer folds: paired by fold\n");
        let _ = writeln!(
            s,
            "The gate uses the mean over the {k} folds of the final model's test `{metric}`, current − baseline on each fold, with its 95 % t-interval (mean ± t(0.975, {}) · sd / √{k}).\n",
            k - 1
        );
        let _ = writeln!(s, "| fold | baseline | current | difference |\n|---|---|---|---|");
        let (b, c) =
            (baseline.folds.as_ref().and_then(|f| f.headline()), current.folds.as_ref().and_then(|f| f.headline()));
        if let (Some(b), Some(c)) = (b, c) {
            for (r, ((x, y), d)) in b.iter().zip(c).zip(&p.differences).enumerate() {
                let _ = writeln!(s, "| {r} | {x:.4} | {y:.4} | {d:+.4} |");
            }
            let (bm, cm) = (crate::folds::mean_sd(b), crate::folds::mean_sd(c));
            let _ = writeln!(
                s,
                "| mean (sd) | {:.4} ({:.4}) | {:.4} ({:.4}) | {:+.4} ({:.4}) |",
                bm.0, bm.1, cm.0, cm.1, p.summary.mean, p.summary.sd
            );
        }
        let _ = writeln!(
            s,
            "\nMean difference {:+.4}, 95 % interval [{:+.4}, {:+.4}].\n",
            p.summary.mean, p.summary.low, p.summary.high
        );
    }
    if let Some(n) = &fold_note {
        let _ = writeln!(s, "{n}\n");
    }
    let _ = writeln!(
        s,
        "### Final model{}\n",
        if baseline.folds.is_some() || current.folds.is_some() { " (last fold)" } else { "" }
    );
    let _ = writeln!(s, "| | baseline | current | change |\n|---|---|---|---|");
    let _ = writeln!(
        s,
        "| final model | {} | {} | {} |",
        baseline.final_model,
        current.final_model,
        if baseline.final_model == current.final_model { "=" } else { "changed" }
    );
    let names: BTreeSet<&String> = baseline.test.keys().chain(current.test.keys()).collect();
    for m in names {
        let (b, c) = (baseline.test.get(m).copied(), current.test.get(m).copied());
        let head = if m == metric { " (headline)" } else { "" };
        let _ =
            writeln!(s, "| test {m}{head} | {} | {} | {} |", num(b), num(c), change(b, c, Some(higher_is_better(m))));
    }

    let _ = writeln!(s, "\n### Candidates\n");
    let _ = writeln!(s, "| candidate | measure | baseline | current | change |\n|---|---|---|---|---|");
    let mut order: Vec<&str> = baseline.leaderboard.iter().map(|e| e.name.as_str()).collect();
    for e in &current.leaderboard {
        if !order.contains(&e.name.as_str()) {
            order.push(&e.name);
        }
    }
    for name in order {
        let b = baseline.leaderboard.iter().find(|e| e.name == name);
        let c = current.leaderboard.iter().find(|e| e.name == name);
        match (b, c) {
            (Some(_), None) => {
                let _ = writeln!(s, "| {name} | — | present | **missing** | regression |");
                continue;
            }
            (None, Some(_)) => {
                let _ = writeln!(s, "| {name} | — | absent | present | new |");
            }
            _ => {}
        }
        let empty = Default::default();
        let (bcv, ccv) = (b.map_or(&empty, |e| &e.cv), c.map_or(&empty, |e| &e.cv));
        let (bt, ct) = (b.map_or(&empty, |e| &e.test), c.map_or(&empty, |e| &e.test));
        let rows = |s: &mut String, prefix: &str, bm: &crate::Scores, cm: &crate::Scores| {
            let keys: BTreeSet<&String> = bm.keys().chain(cm.keys()).collect();
            for m in keys {
                let (x, y) = (bm.get(m).copied(), cm.get(m).copied());
                let _ = writeln!(
                    s,
                    "| {name} | {prefix} {m} | {} | {} | {} |",
                    num(x),
                    num(y),
                    change(x, y, Some(higher_is_better(m)))
                );
            }
        };
        rows(&mut s, "cv", bcv, ccv);
        rows(&mut s, "test", bt, ct);
        let (bf, cf) = (b.map(|e| e.fit_s), c.map(|e| e.fit_s));
        let _ = writeln!(s, "| {name} | fit s | {} | {} | {} |", num(bf), num(cf), change(bf, cf, None));
    }
    if let (Some(be), Some(ce)) = (&baseline.ensemble, &current.ensemble) {
        let _ = writeln!(s, "\n### Ensemble\n");
        let _ = writeln!(s, "| member | baseline weight | current weight | change |\n|---|---|---|---|");
        let mut members: Vec<&str> = be.members.iter().map(|m| m.name.as_str()).collect();
        for m in &ce.members {
            if !members.contains(&m.name.as_str()) {
                members.push(&m.name);
            }
        }
        for m in members {
            let bw = be.members.iter().find(|x| x.name == m).map(|x| x.weight);
            let cw = ce.members.iter().find(|x| x.name == m).map(|x| x.weight);
            let _ = writeln!(s, "| {m} | {} | {} | {} |", num(bw), num(cw), change(bw, cw, None));
        }
    } else if baseline.ensemble.is_some() != current.ensemble.is_some() {
        let _ = writeln!(
            s,
            "\nEnsemble: {} in the baseline, {} in the current report.",
            if baseline.ensemble.is_some() { "present" } else { "absent" },
            if current.ensemble.is_some() { "present" } else { "absent" }
        );
    }
    let (bt, ct) = (&baseline.timing, &current.timing);
    let _ = writeln!(s, "\n### Timing (seconds; informational)\n");
    let _ = writeln!(s, "| stage | baseline | current | change |\n|---|---|---|---|");
    for (k, b, c) in [
        ("total", bt.total_s, ct.total_s),
        ("load", bt.load_s, ct.load_s),
        ("prepare", bt.prepare_s, ct.prepare_s),
        ("search", bt.search_s, ct.search_s),
        ("refit and test", bt.refit_s, ct.refit_s),
        ("permutation importance", bt.importance_s, ct.importance_s),
    ] {
        let _ = writeln!(s, "| {k} | {b:.2} | {c:.2} | {} |", change(Some(b), Some(c), None));
    }
    Ok(Comparison { regressions, markdown: s })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Failure, LeaderboardEntry, SCHEMA_VERSION};

    fn entry(name: &str, metric: &str, cv: f64, test: f64) -> LeaderboardEntry {
        LeaderboardEntry {
            name: name.into(),
            kind: format!("k.{name}"),
            params: Default::default(),
            cv: [(metric.to_string(), cv)].into(),
            cv_std: 0.01,
            test: [(metric.to_string(), test)].into(),
            fit_s: 0.5,
            n_trials: 2,
            threshold: None,
        }
    }

    fn report(metric: &str, higher: bool, head: f64) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            pipeline: "p".into(),
            task: if higher { "binary".into() } else { "regression".into() },
            metric: metric.into(),
            higher_is_better: higher,
            final_model: "a".into(),
            test: [(metric.to_string(), head)].into(),
            leaderboard: vec![entry("a", metric, head, head), entry("b", metric, head, head)],
            ..Default::default()
        }
    }

    #[test]
    fn identical_reports_pass() {
        let r = report("roc_auc", true, 0.93);
        let c = compare(&r, &r, DEFAULT_MAX_DROP, ["a.json", "a.json"]).unwrap();
        assert!(c.passed(), "{:?}", c.regressions);
        assert!(c.markdown.contains("**PASS**"), "{}", c.markdown);
        assert!(c.markdown.contains("| test roc_auc (headline) | 0.9300 | 0.9300 | = |"), "{}", c.markdown);
    }

    #[test]
    fn auc_drop_beyond_tolerance_fails_and_within_passes() {
        let base = report("roc_auc", true, 0.93);
        let mut cur = base.clone();
        *cur.test.get_mut("roc_auc").unwrap() -= 0.01;
        let c = compare(&base, &cur, DEFAULT_MAX_DROP, ["b", "c"]).unwrap();
        assert_eq!(c.regressions.len(), 1, "{:?}", c.regressions);
        assert!(c.regressions[0].contains("worse by 0.0100"), "{}", c.regressions[0]);
        assert!(c.markdown.contains("-0.0100 worse"), "{}", c.markdown);
        // Same drop under a looser tolerance, and an improvement, both pass.
        assert!(compare(&base, &cur, 0.02, ["b", "c"]).unwrap().passed());
        *cur.test.get_mut("roc_auc").unwrap() = 0.95;
        assert!(compare(&base, &cur, 0.0, ["b", "c"]).unwrap().passed());
    }

    #[test]
    fn losses_are_worse_when_they_rise() {
        let base = report("rmse", false, 10.0);
        let mut up = base.clone();
        *up.test.get_mut("rmse").unwrap() = 10.01;
        let c = compare(&base, &up, DEFAULT_MAX_DROP, ["b", "c"]).unwrap();
        assert!(!c.passed() && c.regressions[0].contains("test rmse"), "{:?}", c.regressions);
        let mut down = base.clone();
        *down.test.get_mut("rmse").unwrap() = 9.0;
        let c = compare(&base, &down, DEFAULT_MAX_DROP, ["b", "c"]).unwrap();
        assert!(c.passed(), "{:?}", c.regressions);
        assert!(c.markdown.contains("-1.0000 better"), "{}", c.markdown);
        assert!(!higher_is_better("log_loss") && !higher_is_better("mae") && higher_is_better("r2"));
    }

    #[test]
    fn a_missing_candidate_fails_with_its_failure() {
        let base = report("roc_auc", true, 0.93);
        let mut cur = base.clone();
        cur.leaderboard.pop();
        cur.failures.push(Failure { model: "b".into(), error: "out of memory".into() });
        let c = compare(&base, &cur, DEFAULT_MAX_DROP, ["b", "c"]).unwrap();
        assert_eq!(
            c.regressions,
            vec!["candidate `b` is missing from the current leaderboard (failed: out of memory)".to_string()]
        );
        assert!(c.markdown.contains("| b | — | present | **missing** | regression |"), "{}", c.markdown);
        // A new candidate is fine.
        let c = compare(&cur, &base, DEFAULT_MAX_DROP, ["c", "b"]).unwrap();
        assert!(c.passed() && c.markdown.contains("| b | — | absent | present | new |"), "{}", c.markdown);
    }

    fn with_folds(r: &Report, heads: &[f64]) -> Report {
        let folds: Vec<Report> = heads
            .iter()
            .map(|&h| {
                let mut f = r.clone();
                f.test.insert(r.metric.clone(), h);
                f
            })
            .collect();
        let mut out = folds.last().unwrap().clone();
        out.folds = Some(crate::FoldsSection::from_reports(&folds));
        out
    }

    #[test]
    fn outer_folds_are_compared_paired_by_fold() {
        let r = report("roc_auc", true, 0.9);
        let base = with_folds(&r, &[0.80, 0.90, 0.70, 0.85]);
        let c = compare(&base, &base, DEFAULT_MAX_DROP, ["b", "b"]).unwrap();
        assert!(c.passed(), "{:?}", c.regressions);
        assert!(c.markdown.contains("### Outer folds: paired by fold"), "{}", c.markdown);
        assert!(c.markdown.contains("on average over 4 outer folds paired by fold, may be worse"), "{}", c.markdown);
        assert!(c.markdown.contains("| 2 | 0.7000 | 0.7000 | +0.0000 |"), "{}", c.markdown);
        // The last fold is the same, but the mean over the folds dropped by 0.02: a regression.
        let worse = with_folds(&r, &[0.76, 0.88, 0.66, 0.85]);
        let c = compare(&base, &worse, DEFAULT_MAX_DROP, ["b", "c"]).unwrap();
        assert_eq!(c.regressions.len(), 1, "{:?}", c.regressions);
        assert!(
            c.regressions[0].contains("mean paired difference (current − baseline) -0.0250"),
            "{:?}",
            c.regressions
        );
        assert!(compare(&base, &worse, 0.03, ["b", "c"]).unwrap().passed());
        // Other folds, or folds on one side only: the last fold's value, as without folds.
        let three = with_folds(&r, &[0.5, 0.5, 0.85]);
        let c = compare(&base, &three, DEFAULT_MAX_DROP, ["b", "c"]).unwrap();
        assert!(c.passed() && c.markdown.contains("not the same ones"), "{}", c.markdown);
        let c = compare(&r, &worse, DEFAULT_MAX_DROP, ["b", "c"]).unwrap();
        assert!(!c.passed() && c.markdown.contains("Only the current report has outer folds"), "{}", c.markdown);
    }

    #[test]
    fn incomparable_inputs_are_errors() {
        let a = report("roc_auc", true, 0.9);
        let mut b = a.clone();
        b.metric = "log_loss".into();
        assert_eq!(
            compare(&a, &b, 0.005, ["a", "b"]).unwrap_err().to_string(),
            "headline metric differs: baseline has `roc_auc`, current has `log_loss`; the reports are not comparable"
        );
        assert!(compare(&a, &a, -1.0, ["a", "a"]).is_err());
        assert!(compare(&a, &a, f64::NAN, ["a", "a"]).is_err());
        let mut no_head = a.clone();
        no_head.test.clear();
        assert!(compare(&no_head, &a, 0.005, ["a", "b"]).unwrap_err().to_string().contains("baseline has no test"));
        // The current report lacking the headline is a regression, not an error.
        assert!(!compare(&a, &no_head, 0.005, ["a", "b"]).unwrap().passed());
    }
}
