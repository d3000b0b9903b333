//! promoml-report: the `report.json` contract that CI and other tools read, and its Markdown
//! rendering.
//!
//! The schema is versioned by [`SCHEMA_VERSION`]; a field is only ever added, never renamed or
//! removed, within one version. The README documents every field.

pub mod compare;
pub mod curves;
pub mod folds;
pub mod html;
mod plot;
pub mod sections;
pub mod shap;
mod uplift_view;

pub use compare::{Comparison, compare};

/// `n` and a noun, plural unless `n` is 1: `1 shuffle`, `2 shuffles`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}
pub use curves::{CalibrationBin, Curves};
pub use folds::{FoldScores, FoldsSection, MeanInterval, PairedDifference};
pub use sections::{
    AnomalySection, ArmKpis, ArmMetrics, Calibration, DetectorSummary, Interval, PolicyRow, PolicySection, Quantiles,
    Selection, UpliftSection,
};
pub use shap::{ShapBin, ShapFeature, ShapSummary};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Version of the `report.json` schema written by this crate. Version 2 typed the `uplift`,
/// `policy` and `anomaly` sections ([`sections`]) with the JSON of version 1, which is still read.
pub const SCHEMA_VERSION: u32 = 2;
/// The oldest schema version [`Report::from_json`] reads.
pub const OLDEST_READABLE_SCHEMA: u32 = 1;

/// Features listed in report.md's importance table (report.html draws up to
/// [`html::MAX_IMPORTANCE_BARS`], report.json keeps all).
pub const MARKDOWN_TOP_FEATURES: usize = 10;

/// Metric name → value.
pub type Scores = BTreeMap<String, f64>;

/// A whole run's report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// promoml version that wrote it.
    pub promoml_version: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Task (`binary`, `multiclass`, `regression`).
    pub task: String,
    /// Seed of the run.
    pub seed: u64,
    /// The metric that ranks candidates.
    pub metric: String,
    /// Whether larger values of `metric` are better.
    pub higher_is_better: bool,
    /// Name of the final model (the best candidate by cross-validation).
    pub final_model: String,
    /// Test metrics of the final model, computed on rows nothing was fitted on.
    pub test: Scores,
    /// Every candidate, best first by cross-validation.
    pub leaderboard: Vec<LeaderboardEntry>,
    /// Every trial of the search.
    pub trials: Vec<Trial>,
    /// Candidates that failed, with the reason.
    pub failures: Vec<Failure>,
    /// What the data looked like.
    pub data: DataSummary,
    /// Where the time went.
    pub timing: Timing,
    /// The ensemble of the best candidates, when `[ensemble]` asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensemble: Option<EnsembleSummary>,
    /// ROC, precision–recall and calibration points of the final model on the test rows
    /// (binary tasks); aggregate points only, no rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curves: Option<Curves>,
    /// Permutation feature importance of the final model on the test rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_importance: Option<PermutationImportance>,
    /// SHAP summary of the final model on the test rows (tree and linear final models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shap: Option<ShapSummary>,
    /// Uplift tasks: per-arm test metrics with bootstrap intervals, Qini and uplift curves,
    /// average treatment effects and campaign KPIs (the README documents the fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uplift: Option<UpliftSection>,
    /// Uplift tasks with `[policy]`: the optimised policy's off-policy value next to the
    /// treat-none, treat-all and random policies, with bootstrap intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySection>,
    /// Anomaly detection: for `task = "anomaly"` the protocol, label and each detector's
    /// threshold, flagged rows and score quantiles; for any task, what `anomaly.*` steps did
    /// (scores, thresholds, dropped or corrupted training rows). The README documents the fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<AnomalySection>,
    /// Binary tasks: the final model's decision threshold, how it was chosen, and the share of
    /// positive training rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_threshold: Option<DecisionThreshold>,
    /// `[evaluation] outer_folds = K`: the whole pipeline run on K outer folds of the table (the
    /// rest of this report is the last fold's), each fold's test metrics per candidate with
    /// their mean and standard deviation, and paired comparisons of the headline metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds: Option<FoldsSection>,
    /// Extra files written beside `report.json` (name, content), e.g. a policy's
    /// `assignments.csv`; not part of the JSON.
    #[serde(skip)]
    pub files: Vec<(String, String)>,
}

/// Permutation feature importance: how much the test metric worsens when one feature's values
/// are shuffled across the test rows (model-agnostic, so it also works for an ensemble).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermutationImportance {
    /// The model measured (normally the final model).
    pub model: String,
    /// The metric whose drop is measured.
    pub metric: String,
    /// Shuffles per feature.
    pub repeats: usize,
    /// Features, most important first.
    pub features: Vec<FeatureImportance>,
    /// Features not measured because the time budget ran out before their first shuffle (left
    /// out of the file when every feature was measured).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmeasured: Vec<String>,
}

/// One feature's permutation importance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureImportance {
    /// Feature name (after cleaning and feature steps).
    pub feature: String,
    /// Mean worsening of the metric over the shuffles (positive = the feature helps),
    /// oriented so that larger is more important whatever the metric's direction.
    pub importance: f64,
    /// Standard deviation of the worsening over the shuffles.
    pub std: f64,
}

/// An ensemble of candidates: how it was built and with what weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleSummary {
    /// Leaderboard name.
    pub name: String,
    /// `stacking` or `greedy`.
    pub kind: String,
    /// Members with their weights (non-negative), in leaderboard order of the members.
    pub members: Vec<EnsembleMember>,
    /// Stacking intercepts (one per class, or one for regression); empty for greedy selection.
    #[serde(default)]
    pub intercepts: Vec<f64>,
    /// Layers of models (1, or 2 when layer 2 refits models on features plus layer-1 predictions).
    pub layers: usize,
}

/// One member of an ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleMember {
    /// Candidate name.
    pub name: String,
    /// Its weight.
    pub weight: f64,
}

/// One candidate model: its best trial, refitted on all training rows and scored on test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderboardEntry {
    /// Name on the leaderboard.
    pub name: String,
    /// Registered model kind.
    pub kind: String,
    /// Hyper-parameters of the best trial.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Mean cross-validation metrics of the best trial.
    pub cv: Scores,
    /// Standard deviation over folds of the ranking metric.
    pub cv_std: f64,
    /// Test metrics of the refitted model.
    pub test: Scores,
    /// Seconds to refit on all training rows.
    pub fit_s: f64,
    /// Trials run for this candidate.
    pub n_trials: usize,
    /// Binary tasks: the decision threshold (positive-class probability) at which this
    /// candidate's test `accuracy` and `f1` are computed, chosen on its out-of-fold predictions
    /// (`search.threshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// One trial of the search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Candidate name.
    pub model: String,
    /// Trial number within the candidate, from 0.
    pub number: usize,
    /// Parameters tried.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Ranking metric per fold.
    pub fold_scores: Vec<f64>,
    /// Mean of `fold_scores`; absent when the trial failed.
    pub score: Option<f64>,
    /// Seconds the trial took.
    pub seconds: f64,
    /// Why the trial failed, if it did.
    pub error: Option<String>,
    /// Stopped after `fold_scores.len()` folds by the pruner (its `score` is the mean so far).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pruned: bool,
}

/// A candidate with no successful trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// Candidate name.
    pub model: String,
    /// The last error.
    pub error: String,
}

/// Shape of the data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Where the data came from.
    pub source: String,
    /// Training rows as loaded.
    pub train_rows: usize,
    /// Test rows.
    pub test_rows: usize,
    /// Training rows removed by cleaners (duplicates, filters).
    pub dropped_train_rows: usize,
    /// Columns as loaded.
    pub columns: usize,
    /// Missing cells in the loaded training data.
    pub missing_cells: usize,
    /// Model features after cleaning and feature steps.
    pub features: usize,
    /// Class labels and their training counts (classification).
    pub classes: BTreeMap<String, usize>,
    /// Per column named in `data.on_bad_value = { column = "missing" }`, how many unreadable
    /// values were read as missing (all rows loaded, train and test).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bad_values_as_missing: BTreeMap<String, usize>,
    /// Text columns left out of the features because they look like identifiers (unique on
    /// nearly every row).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier_columns: Vec<String>,
    /// Features that alone separate the target almost perfectly on the training rows
    /// (univariate ROC AUC, or 1 − AUC, at least 0.95; binary tasks): likely leaks of the outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspected_leaks: Vec<SuspectedLeak>,
}

/// The decision threshold of a binary final model (see [`Report::decision_threshold`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionThreshold {
    /// Positive-class probability at or above which a row is predicted positive.
    pub value: f64,
    /// `max_f1` (maximum F1 on the out-of-fold predictions of the training rows) or `fixed`.
    pub rule: String,
    /// Share of positive rows in the training data.
    pub positive_rate: f64,
}

impl DecisionThreshold {
    /// The threshold in words, with a note on a rare positive class (under 5 % of the rows).
    pub fn sentence(&self) -> String {
        let how = if self.rule == "fixed" {
            "fixed by `search.threshold`".to_string()
        } else {
            "the maximum F1 on the out-of-fold predictions of the training rows".to_string()
        };
        let mut s = format!(
            "Decision threshold {:.4} ({how}): `accuracy` and `f1` count a row as positive when its probability is at least this.",
            self.value
        );
        if self.positive_rate < 0.05 {
            s.push_str(&format!(
                " Only {:.2} % of the training rows are positive: at 0.5 almost every row would be predicted negative (F1 near 0); rank-based metrics (roc_auc, pr_auc) are the ones to compare.",
                100.0 * self.positive_rate
            ));
        }
        s
    }
}

/// A feature that alone predicts the target almost perfectly (see [`DataSummary::suspected_leaks`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuspectedLeak {
    /// The model feature.
    pub feature: String,
    /// Its univariate ROC AUC on the training rows, oriented so that it is at least 0.5.
    pub auc: f64,
}

/// Wall-clock seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// The whole run.
    pub total_s: f64,
    /// Loading and splitting data.
    pub load_s: f64,
    /// Fitting cleaners and features.
    pub prepare_s: f64,
    /// Search (all trials).
    pub search_s: f64,
    /// Refitting candidates and scoring on test.
    pub refit_s: f64,
    /// Permutation feature importance of the final model.
    #[serde(default)]
    pub importance_s: f64,
}

/// Errors reading a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Not JSON, or not a report.
    #[error("{path}: not a promoml report: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// Written by another schema version.
    #[error(
        "{path}: report schema version {found}, this promoml reads versions {OLDEST_READABLE_SCHEMA} to {expected}"
    )]
    Version {
        /// The file.
        path: String,
        /// Version in the file.
        found: u64,
        /// Version this build reads.
        expected: u32,
    },
    /// A plot of report.html could not be drawn.
    #[error("report.html: cannot draw the {plot} plot: {message}")]
    Plot {
        /// Which plot.
        plot: String,
        /// The plotting library's message.
        message: String,
    },
}

impl Report {
    /// Parse a report, checking its schema version first.
    pub fn from_json(text: &str, path: &str) -> Result<Report, ReportError> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ReportError::Invalid { path: path.into(), message: e.to_string() })?;
        let found = v.get("schema_version").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if !(u64::from(OLDEST_READABLE_SCHEMA)..=u64::from(SCHEMA_VERSION)).contains(&found) {
            return Err(ReportError::Version { path: path.into(), found, expected: SCHEMA_VERSION });
        }
        serde_json::from_value(v).map_err(|e| ReportError::Invalid { path: path.into(), message: e.to_string() })
    }

    /// One self-contained HTML page with SVG plots (see [`html`]).
    pub fn to_html(&self) -> Result<String, ReportError> {
        html::render(self)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// A Markdown summary: headline, leaderboard, data, timings.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# promoml report: {}\n", self.pipeline);
        let _ = writeln!(
            s,
            "Task `{}`, seed {}, ranked by `{}` ({}). Final model: **{}**.\n",
            self.task,
            self.seed,
            self.metric,
            if self.higher_is_better { "higher is better" } else { "lower is better" },
            self.final_model
        );
        let metrics: Vec<&String> = self.test.keys().collect();
        let _ = writeln!(s, "## Test metrics of the final model\n");
        let _ = writeln!(s, "| metric | value |\n|---|---|");
        for m in &metrics {
            let _ = writeln!(s, "| {m} | {:.4} |", self.test[*m]);
        }
        if let Some(t) = &self.decision_threshold {
            let _ = writeln!(s, "\n{}", t.sentence());
        }
        let _ = writeln!(s, "\n## Leaderboard\n");
        let _ = write!(s, "| # | model | kind | cv {} (± sd) |", self.metric);
        for m in &metrics {
            let _ = write!(s, " test {m} |");
        }
        let _ = writeln!(s, " fit s | trials | params |");
        let _ = writeln!(s, "|{}", "---|".repeat(6 + metrics.len() + 1));
        for (i, e) in self.leaderboard.iter().enumerate() {
            let cv = e.cv.get(&self.metric).copied().unwrap_or(f64::NAN);
            let _ = write!(s, "| {} | {} | `{}` | {cv:.4} ± {:.4} |", i + 1, e.name, e.kind, e.cv_std);
            for m in &metrics {
                let _ = write!(s, " {:.4} |", e.test.get(*m).copied().unwrap_or(f64::NAN));
            }
            let params: Vec<String> = e.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(s, " {:.2} | {} | {} |", e.fit_s, e.n_trials, params.join(", ").replace('|', "\\|"));
        }
        if let Some(e) = &self.ensemble {
            let _ = writeln!(s, "\n## Ensemble\n");
            let _ = writeln!(s, "**{}**: {} over {} layer(s).\n", e.name, e.kind, e.layers);
            let _ = writeln!(s, "| member | weight |\n|---|---|");
            for m in &e.members {
                let _ = writeln!(s, "| {} | {:.4} |", m.name, m.weight);
            }
            if !e.intercepts.is_empty() {
                let i: Vec<String> = e.intercepts.iter().map(|v| format!("{v:.4}")).collect();
                let _ = writeln!(s, "\nStacking intercepts: {}.", i.join(", "));
            }
        }
        let md_table = |s: &mut String, (head, rows): (Vec<String>, Vec<Vec<String>>)| {
            let _ = writeln!(s, "| {} |\n|{}", head.join(" | "), "---|".repeat(head.len()));
            for r in rows {
                let _ = writeln!(s, "| {} |", r.join(" | ").replace('\n', " "));
            }
        };
        if let Some(u) = &self.uplift {
            let _ = writeln!(s, "\n## Uplift (test)\n");
            md_table(&mut s, uplift_view::arm_table(u));
        }
        if let Some(p) = &self.policy {
            let _ = writeln!(s, "\n## Policy (test)\n");
            md_table(&mut s, uplift_view::policy_table(p));
        }
        if let Some(f) = &self.folds {
            let _ = writeln!(s, "\n## Outer folds (test)\n");
            let _ = writeln!(s, "{}\n", f.sentence());
            md_table(&mut s, f.table());
            if !f.incomplete.is_empty() {
                let _ = writeln!(s, "\nMissing on some fold (failed there), left out: {}.", f.incomplete.join(", "));
            }
            if !f.paired.is_empty() {
                let _ = writeln!(s, "\n### Paired differences of test `{}` by fold\n", f.metric);
                md_table(&mut s, f.paired_table());
            }
        }
        if let Some(fi) = &self.feature_importance {
            let _ = writeln!(s, "\n## Permutation feature importance (test)\n");
            let _ = writeln!(
                s,
                "Worsening of test `{}` of {} when one feature is shuffled ({}); top {} of {}.{}\n",
                fi.metric,
                fi.model,
                count(fi.repeats, "shuffle"),
                fi.features.len().min(MARKDOWN_TOP_FEATURES),
                fi.features.len(),
                if fi.unmeasured.is_empty() {
                    String::new()
                } else {
                    format!(" {} features not measured: the time budget ran out.", fi.unmeasured.len())
                }
            );
            let _ = writeln!(s, "| feature | importance | sd |\n|---|---|---|");
            for f in fi.features.iter().take(MARKDOWN_TOP_FEATURES) {
                let _ = writeln!(s, "| {} | {:.4} | {:.4} |", f.feature, f.importance, f.std);
            }
        }
        if let Some(sh) = &self.shap {
            let _ = writeln!(s, "\n## SHAP summary (test)\n");
            let _ = writeln!(
                s,
                "Mean |contribution| of each input to {} ({}, {} explanations) over {}; base value {:.4}; top {} of {}.\n",
                sh.model,
                sh.space.replace('_', "-"),
                sh.method,
                count(sh.rows, "test row"),
                sh.base_value,
                sh.features.len().min(MARKDOWN_TOP_FEATURES),
                sh.features.len()
            );
            let _ = writeln!(s, "| input | mean abs contribution |\n|---|---|");
            for f in sh.features.iter().take(MARKDOWN_TOP_FEATURES) {
                let _ = writeln!(s, "| {} | {:.4} |", f.feature, f.mean_abs);
            }
        }
        if !self.failures.is_empty() {
            let _ = writeln!(s, "\n## Failed candidates\n");
            for f in &self.failures {
                let _ = writeln!(s, "- {}: {}", f.model, f.error);
            }
        }
        let d = &self.data;
        let _ = writeln!(s, "\n## Data\n");
        let _ = writeln!(
            s,
            "Source `{}`: {} training rows ({} dropped by cleaners), {} test rows, {} columns, {} missing cells in training data, {} model features.",
            d.source, d.train_rows, d.dropped_train_rows, d.test_rows, d.columns, d.missing_cells, d.features
        );
        if !d.classes.is_empty() {
            let c: Vec<String> = d.classes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let _ = writeln!(s, "Training classes: {}.", c.join(", "));
        }
        for l in &d.suspected_leaks {
            let _ = writeln!(
                s,
                "**Possible leak:** feature `{}` alone separates the target on the training rows (AUC {:.3}); is it known before the outcome?",
                l.feature, l.auc
            );
        }
        if !d.identifier_columns.is_empty() {
            let c: Vec<String> = d.identifier_columns.iter().map(|c| format!("`{c}`")).collect();
            let _ =
                writeln!(s, "Left out of the features as identifiers (unique on nearly every row): {}.", c.join(", "));
        }
        if !d.bad_values_as_missing.is_empty() {
            let c: Vec<String> = d.bad_values_as_missing.iter().map(|(k, v)| format!("`{k}`: {v}")).collect();
            let _ = writeln!(s, "Unreadable values read as missing (`data.on_bad_value`): {}.", c.join(", "));
        }
        let t = &self.timing;
        let _ = writeln!(s, "\n## Timing\n");
        let _ = writeln!(
            s,
            "Total {:.1} s: load {:.2} s, prepare {:.2} s, search {:.1} s, refit and test {:.1} s, \
             permutation importance {:.1} s.",
            t.total_s, t.load_s, t.prepare_s, t.search_s, t.refit_s, t.importance_s
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            promoml_version: "0.1.0".into(),
            pipeline: "p".into(),
            task: "binary".into(),
            seed: 1,
            metric: "roc_auc".into(),
            higher_is_better: true,
            final_model: "rf".into(),
            test: [("roc_auc".to_string(), 0.9)].into(),
            leaderboard: vec![LeaderboardEntry {
                name: "rf".into(),
                kind: "forest.random_forest".into(),
                params: [("n_trees".to_string(), serde_json::json!(100))].into(),
                cv: [("roc_auc".to_string(), 0.91)].into(),
                cv_std: 0.01,
                test: [("roc_auc".to_string(), 0.9)].into(),
                fit_s: 1.0,
                n_trials: 1,
                threshold: None,
            }],
            trials: vec![],
            failures: vec![],
            data: DataSummary::default(),
            timing: Timing::default(),
            // Optional sections: none (tests below set the ones they check).
            ..Default::default()
        }
    }

    #[test]
    fn round_trips_and_checks_version() {
        let r = sample();
        assert_eq!(Report::from_json(&r.to_json(), "r.json").unwrap(), r);
        let old = r.to_json().replace("\"schema_version\": 2", "\"schema_version\": 0");
        let e = Report::from_json(&old, "r.json").unwrap_err().to_string();
        assert_eq!(e, "r.json: report schema version 0, this promoml reads versions 1 to 2");
        // Version 1 (untyped task sections, same JSON) still reads.
        let v1 = r.to_json().replace("\"schema_version\": 2", "\"schema_version\": 1");
        assert_eq!(Report::from_json(&v1, "r.json").unwrap().schema_version, 1);
        assert!(Report::from_json("{", "r.json").unwrap_err().to_string().contains("not a promoml report"));
    }

    #[test]
    fn markdown_has_leaderboard_row() {
        let md = sample().to_markdown();
        assert!(md.contains("| 1 | rf | `forest.random_forest` | 0.9100 ± 0.0100 | 0.9000 |"), "{md}");
    }

    #[test]
    fn markdown_shows_ensemble_and_importance_when_present() {
        let mut r = sample();
        assert!(!r.to_markdown().contains("## Ensemble"));
        r.ensemble = Some(EnsembleSummary {
            name: "ensemble".into(),
            kind: "greedy".into(),
            members: vec![
                EnsembleMember { name: "rf".into(), weight: 0.75 },
                EnsembleMember { name: "lr".into(), weight: 0.25 },
            ],
            intercepts: vec![],
            layers: 1,
        });
        r.feature_importance = Some(PermutationImportance {
            model: "rf".into(),
            metric: "roc_auc".into(),
            repeats: 3,
            features: (0..12)
                .map(|i| FeatureImportance { feature: format!("f{i}"), importance: 0.1 / (i + 1) as f64, std: 0.01 })
                .collect(),
            unmeasured: vec![],
        });
        let md = r.to_markdown();
        assert!(md.contains("| rf | 0.7500 |\n| lr | 0.2500 |"), "{md}");
        assert!(
            md.contains("top 10 of 12") && md.contains("| f0 | 0.1000 | 0.0100 |") && !md.contains("| f10 |"),
            "{md}"
        );
        // Optional sections round-trip, and absent ones are not written.
        assert_eq!(Report::from_json(&r.to_json(), "r.json").unwrap(), r);
        assert!(!sample().to_json().contains("feature_importance"));
    }

    /// Every committed baseline (schema version 1 or 2, some written before later fields existed)
    /// still reads, typed task sections included, and renders: what `compare` and the CI gate
    /// need. The top-level ones also draw their optimisation history.
    #[test]
    fn committed_baselines_still_load_and_render() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../reports/baselines");
        for (dir, at_least, history) in [(root.clone(), 2, true), (root.join("quick"), 10, false)] {
            let mut n = 0;
            for f in std::fs::read_dir(&dir).unwrap() {
                let path = f.unwrap().path();
                if path.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let r = Report::from_json(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
                    // Version 1 (most baselines) and baselines regenerated since (version 2).
                    assert!(
                        (OLDEST_READABLE_SCHEMA..=SCHEMA_VERSION).contains(&r.schema_version),
                        "{}",
                        path.display()
                    );
                    assert!(r.to_markdown().contains("## Leaderboard"));
                    let html = r.to_html().unwrap();
                    assert!(!history || html.contains("<svg"), "{}: no optimisation history plot", path.display());
                    n += 1;
                }
            }
            assert!(n >= at_least, "expected the committed baselines in {}", dir.display());
        }
    }
}
