//! The task sections of a report: `uplift` and `policy` (uplift tasks) and `anomaly` (anomaly
//! tasks, and `anomaly.*` steps in any task), typed. Their JSON is the same as in schema
//! version 1, which wrote them untyped, so reports of that version still read.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A value with its bootstrap 95 % interval (absent without resamples, or when fewer than half
/// of them gave a value).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The value on the test rows.
    pub value: f64,
    /// 2.5 % percentile of the resampled values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    /// 97.5 % percentile of the resampled values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
}

impl Interval {
    /// `v [low, high]` (or just `v`), 4 decimals.
    pub fn text(&self) -> String {
        match (self.low, self.high) {
            (Some(l), Some(h)) => format!("{:.4} [{l:.4}, {h:.4}]", self.value),
            _ => format!("{:.4}", self.value),
        }
    }
}

/// Uplift tasks: per-arm test metrics, curves and campaign KPIs of the final model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpliftSection {
    /// The treatment column.
    pub treatment: String,
    /// Its control value.
    pub control: String,
    /// The treatment arms (control excluded).
    pub arms: Vec<String>,
    /// The outcome column.
    pub outcome: String,
    /// `binary` or `continuous`.
    pub outcome_kind: String,
    /// Mean propensity of each arm (control included) on the training rows.
    pub propensity: BTreeMap<String, f64>,
    /// Where propensities came from: `frequency`, `given` (a column) or `model`.
    pub propensity_source: String,
    /// The final model's name.
    pub final_model: String,
    /// The share targeted by `uplift_at_k`.
    pub k: f64,
    /// Bootstrap resamples behind the intervals.
    pub bootstrap: usize,
    /// Test metrics per arm, each against control.
    pub metrics: Vec<ArmMetrics>,
    /// Campaign KPIs per arm (control first).
    pub kpis: Vec<ArmKpis>,
}

/// One arm's test metrics against control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmMetrics {
    /// The arm.
    pub arm: String,
    /// Test rows in this arm or control.
    pub test_rows: usize,
    /// Area under the Qini curve (scikit-uplift's `qini_auc_score`).
    pub qini_auc: Interval,
    /// Area under the uplift curve (binary outcomes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uplift_auc: Option<Interval>,
    /// Uplift among the top `k` share by predicted effect.
    pub uplift_at_k: Interval,
    /// Observed average treatment effect (treated mean minus control mean).
    pub ate_observed: Interval,
    /// Mean predicted effect over the test rows.
    pub ate_predicted: f64,
    /// Qini curve points (customers targeted, incremental outcome), thinned.
    pub qini_curve: Vec<[f64; 2]>,
    /// Uplift curve points, thinned.
    pub uplift_curve: Vec<[f64; 2]>,
    /// Qini curve of a perfect ranking, thinned.
    pub perfect_qini_curve: Vec<[f64; 2]>,
}

/// Campaign KPIs of one arm on the test rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmKpis {
    /// The arm (or control).
    pub arm: String,
    /// Test customers in it.
    pub customers: usize,
    /// Their mean outcome.
    pub outcome_mean: f64,
    /// The model's mean predicted outcome for every test customer under this arm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_outcome_mean: Option<f64>,
    /// Share that took part (a `kpis.participation` column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participation_rate: Option<f64>,
    /// Share that converted (a `kpis.conversion` column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_rate: Option<f64>,
    /// Mean order value of the converters (a `kpis.revenue` column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_order_value: Option<f64>,
    /// Revenue per customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue_per_customer: Option<f64>,
}

/// Calibrated effect = `intercept + slope * predicted`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Intercept.
    pub intercept: f64,
    /// Slope.
    pub slope: f64,
}

/// Uplift tasks with `[policy]`: the optimised policy's off-policy value next to the policies
/// that need no model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicySection {
    /// The model whose effects the policy optimises.
    pub model: String,
    /// The budget, as text.
    pub budget: String,
    /// The budget constraint's multiplier.
    pub lambda: f64,
    /// Per arm, the linear map applied to predicted effects before optimising.
    #[serde(default)]
    pub effect_calibration: BTreeMap<String, Calibration>,
    /// Value of one unit of outcome, per arm.
    pub value_per_outcome: BTreeMap<String, f64>,
    /// Cost per treated customer, per arm.
    pub cost: BTreeMap<String, f64>,
    /// Test customers the policies are valued on.
    pub customers: usize,
    /// Every policy valued.
    pub policies: Vec<PolicyRow>,
    /// The arm whose treat-all policy is worth most.
    pub best_single_arm: String,
    /// The model policy's gain over treating everyone with that arm (IPW).
    pub gain_vs_best_single_arm_ipw: Interval,
    /// The same, doubly robust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gain_vs_best_single_arm_dr: Option<Interval>,
    /// The best policy that needs no model, by IPW value: "treat none" or "treat all: ARM"
    /// (absent in reports written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_baseline: Option<String>,
    /// The model policy's gain over it (IPW).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gain_vs_best_baseline_ipw: Option<Interval>,
    /// The same, doubly robust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gain_vs_best_baseline_dr: Option<Interval>,
    /// Value of the oracle policy (synthetic data with known outcomes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle_true_value: Option<f64>,
    /// Share of the oracle's value the model policy recovers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle_share_recovered: Option<f64>,
    /// The file with each test customer's assigned arm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignments_file: Option<String>,
}

/// One policy's value on the test rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRow {
    /// The policy: `model`, `treat none`, `treat all: ARM`, `random`.
    pub policy: String,
    /// Net value per customer, inverse-propensity weighted.
    pub ipw: Interval,
    /// Net value per customer, doubly robust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr: Option<Interval>,
    /// Value per customer over treating none (IPW).
    pub incremental_ipw: Interval,
    /// Share of customers treated.
    pub treated_share: f64,
    /// Mean cost per customer.
    pub cost_per_customer: f64,
    /// Share of customers per arm.
    pub arm_shares: BTreeMap<String, f64>,
    /// True value (synthetic data with known outcomes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub true_value: Option<f64>,
}

/// Anomaly detection: for `task = "anomaly"` the protocol, the label, how the final detector
/// was chosen and each detector's threshold and scores; for any task, what `anomaly.*` steps did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnomalySection {
    /// What was fitted on which rows, and scored on which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The label column that scores the detectors (none: unlabelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// How the final detector was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
    /// Every detector that scored the test rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detectors: Vec<DetectorSummary>,
    /// What each `anomaly.*` cleaner or feature step did, as the step reports it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<serde_json::Value>,
}

/// How an anomaly task chose its final detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// `cross-validation` or `first listed`.
    pub rule: String,
    /// The metric (cross-validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// The folds (cross-validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds: Option<usize>,
    /// In words.
    pub detail: String,
}

/// One detector of an anomaly task on the test rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorSummary {
    /// Leaderboard name.
    pub name: String,
    /// Registry kind.
    pub kind: String,
    /// Its `contamination` parameter, if it has one.
    pub contamination: Option<f64>,
    /// Score above which a row is flagged: the training scores' (1 - contamination) quantile.
    pub threshold: Option<f64>,
    /// Test rows flagged.
    pub flagged_test_rows: Option<usize>,
    /// Seconds to score the training and test rows.
    pub score_s: f64,
    /// Quantiles of the training rows' scores.
    pub train_scores: Quantiles,
    /// Quantiles of the test rows' scores.
    pub test_scores: Quantiles,
}

/// Quantiles of anomaly scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}
