//! The `[data] treatment`, `[uplift]` and `[policy]` sections as written in TOML: serde structs
//! that reject unknown keys. [`super::config`] validates them into an [`super::UpliftPlan`].

use serde::Deserialize;
use std::collections::BTreeMap;

/// `[data] treatment = { column, control, arms }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreatmentSpec {
    /// The column holding each row's arm.
    pub column: String,
    /// The value of `column` that marks control rows.
    pub control: String,
    /// The treatment arms to model (default: every other value in the training rows). Rows of
    /// arms not listed are left out of training and test.
    #[serde(default)]
    pub arms: Vec<String>,
}

/// `[uplift]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpliftSpec {
    /// Meta-learners: `s`, `t`, `x`, `ct` (class transformation, binary outcomes). Default `["s", "t"]`.
    pub learners: Option<Vec<String>>,
    /// `binary` (0/1 or true/false; default) or `continuous` (e.g. spend).
    pub outcome: Option<String>,
    /// `"frequency"` (default: randomised, propensity = arm share of the training rows),
    /// `"model"` (estimated by `propensity_model`), or a table arm → probability (given).
    pub propensity: Option<toml::Value>,
    /// Classifier kind that estimates propensities when `propensity = "model"`.
    pub propensity_model: Option<String>,
    /// Average the uplift of the best `ensemble` learner×model candidates (by CV) into one more
    /// candidate; 0 or 1 turns it off. Default 3.
    pub ensemble: Option<usize>,
    /// Bootstrap resamples of the test rows for intervals (default 200; 0 turns them off).
    pub bootstrap: Option<usize>,
    /// Share targeted by `uplift_at_k` (default 0.3; reported as `uplift_at_30`).
    pub k: Option<f64>,
    /// Points per curve in the report (default 101).
    pub curve_points: Option<usize>,
    /// Campaign KPI columns observed per arm on the test rows: `participation` (e.g. `visit`),
    /// `conversion`, `order_value` (e.g. `spend`). They are kept out of the features.
    #[serde(default)]
    pub kpis: BTreeMap<String, String>,
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Value of one unit of outcome: a number for every arm, or a table arm → value (the margin
    /// left at that arm's price, for discount arms). Default 1.
    pub value_per_outcome: Option<toml::Value>,
    /// Cost of giving one customer an arm, arm → cost (default 0).
    #[serde(default)]
    pub cost: BTreeMap<String, f64>,
    /// `{ max_treated_share = 0.5 }` or `{ max_total_cost = 1000.0 }` (over the customers the
    /// policy is applied to). Default: no budget.
    pub budget: Option<BudgetSpec>,
    /// Columns with each row's true expected outcome under each arm, arm → column (simulated
    /// data only); they are kept out of the features and give the policy's true value.
    #[serde(default)]
    pub true_outcome: BTreeMap<String, String>,
    /// A column written into the assignment CSV to identify customers (kept out of the
    /// features). Without it the CSV identifies rows by their position in the test split.
    pub key: Option<String>,
    /// Write `assignments.csv` (default true).
    pub assignments: Option<bool>,
    /// Map each arm's predicted effects by a line fitted on the training rows' out-of-fold
    /// predictions (observed against predicted effect in ten bins) before optimising (default
    /// true): meta-learners shrink or inflate effect levels, and the policy compares them with
    /// costs.
    pub calibrate: Option<bool>,
}

/// `[policy] budget`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// Largest share of customers given any treatment arm.
    pub max_treated_share: Option<f64>,
    /// Largest total cost over the customers the policy is applied to.
    pub max_total_cost: Option<f64>,
}
