//! promoml-report: the `report.json` contract that CI and other tools read, and its Markdown
//! rendering.
//!
//! The schema is versioned by [`SCHEMA_VERSION`]; a field is only ever added, never renamed or
//! removed, within one version. The README documents every field.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Version of the `report.json` schema written by this crate.
pub const SCHEMA_VERSION: u32 = 1;

/// Metric name → value.
pub type Scores = BTreeMap<String, f64>;

/// A whole run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    #[error("{path}: report schema version {found}, this promoml reads version {expected}")]
    Version {
        /// The file.
        path: String,
        /// Version in the file.
        found: u64,
        /// Version this build reads.
        expected: u32,
    },
}

impl Report {
    /// Parse a report, checking its schema version first.
    pub fn from_json(text: &str, path: &str) -> Result<Report, ReportError> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ReportError::Invalid { path: path.into(), message: e.to_string() })?;
        let found = v.get("schema_version").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if found != u64::from(SCHEMA_VERSION) {
            return Err(ReportError::Version { path: path.into(), found, expected: SCHEMA_VERSION });
        }
        serde_json::from_value(v).map_err(|e| ReportError::Invalid { path: path.into(), message: e.to_string() })
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
            let _ = writeln!(s, " {:.2} | {} | {} |", e.fit_s, e.n_trials, params.join(", "));
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
        let t = &self.timing;
        let _ = writeln!(s, "\n## Timing\n");
        let _ = writeln!(
            s,
            "Total {:.1} s: load {:.2} s, prepare {:.2} s, search {:.1} s, refit and test {:.1} s.",
            t.total_s, t.load_s, t.prepare_s, t.search_s, t.refit_s
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
            }],
            trials: vec![],
            failures: vec![],
            data: DataSummary::default(),
            timing: Timing::default(),
        }
    }

    #[test]
    fn round_trips_and_checks_version() {
        let r = sample();
        assert_eq!(Report::from_json(&r.to_json(), "r.json").unwrap(), r);
        let old = r.to_json().replace("\"schema_version\": 1", "\"schema_version\": 0");
        let e = Report::from_json(&old, "r.json").unwrap_err().to_string();
        assert_eq!(e, "r.json: report schema version 0, this promoml reads version 1");
        assert!(Report::from_json("{", "r.json").unwrap_err().to_string().contains("not a promoml report"));
    }

    #[test]
    fn markdown_has_leaderboard_row() {
        let md = sample().to_markdown();
        assert!(md.contains("| 1 | rf | `forest.random_forest` | 0.9100 ± 0.0100 | 0.9000 |"), "{md}");
    }
}
