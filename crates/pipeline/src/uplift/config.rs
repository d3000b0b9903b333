//! The `[data] treatment`, `[uplift]` and `[policy]` sections validated into an [`UpliftPlan`]
//! (as written in TOML, they are the serde structs of [`super::spec`]).

use super::spec::{BudgetSpec, PolicySpec};
use crate::error::Result;
use crate::limits;
use crate::spec::{PipelineSpec, Source};
use promoml_core::{Model, Registry, Task};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A meta-learner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnerKind {
    /// One model on features plus treatment indicators; effect = prediction with the arm minus
    /// prediction with control.
    S,
    /// One model per arm (control included); effect = difference of their predictions.
    T,
    /// T-learner first, then regressors on imputed individual effects, blended by propensity.
    X,
    /// Class transformation (binary outcomes): one classifier of "treated responder or control
    /// non-responder"; effect = 2 p - 1.
    ClassTransformation,
    /// Doubly robust learner (Kennedy 2020), cross-fitted as causalml's `BaseDRLearner`: three
    /// partitions in rotation; outcome models on one, the doubly robust pseudo-outcome
    /// `mu_a - mu_0 + (w - e) / (e (1 - e)) (y - mu_w)` on the next, and a regressor of it there;
    /// effects, and outcomes, are the means of the three rotations.
    Dr,
    /// R-learner (Nie & Wager 2021), as causalml's `BaseRLearner`: out-of-fold predictions
    /// `m(x)` of the outcome from a model of all rows (five folds stratified by arm), then per
    /// arm a regressor of `(y - m) / (w - e)` with row weights `(w - e)²` (the R-loss); effects
    /// are its predictions. Its base model must honour row weights.
    R,
    /// A model that estimates effects itself (its tasks include `uplift`, e.g.
    /// `forest.uplift_random_forest`): fitted on the features, each row's arm and the outcome,
    /// it predicts the outcome under every arm. Not listed in `learners`: every such model in
    /// `[[models]]` is a candidate of its own.
    Direct,
}

impl LearnerKind {
    /// Short name, as in TOML and on the leaderboard.
    pub fn name(self) -> &'static str {
        match self {
            LearnerKind::S => "s",
            LearnerKind::T => "t",
            LearnerKind::X => "x",
            LearnerKind::ClassTransformation => "ct",
            LearnerKind::Dr => "dr",
            LearnerKind::R => "r",
            LearnerKind::Direct => "direct",
        }
    }
    /// The learner a [`LearnerKind::name`] names.
    pub fn from_name(name: &str) -> Option<LearnerKind> {
        [
            LearnerKind::S,
            LearnerKind::T,
            LearnerKind::X,
            LearnerKind::ClassTransformation,
            LearnerKind::Dr,
            LearnerKind::R,
            LearnerKind::Direct,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
    /// Tasks its base model must support, for an outcome fitted as `outcome`.
    pub fn base_tasks(self, outcome: Task) -> Vec<Task> {
        match self {
            LearnerKind::S | LearnerKind::T => vec![outcome],
            LearnerKind::X | LearnerKind::Dr | LearnerKind::R if outcome == Task::Regression => {
                vec![Task::Regression]
            }
            LearnerKind::X | LearnerKind::Dr | LearnerKind::R => vec![outcome, Task::Regression],
            LearnerKind::ClassTransformation => vec![Task::Binary],
            LearnerKind::Direct => vec![Task::Uplift],
        }
    }
}

/// How propensities (probability of each arm given the features) are known.
#[derive(Clone)]
pub enum Propensity {
    /// Randomised: each arm's share of the training rows.
    Frequency,
    /// Given per arm (normalised over the modelled arms and control).
    Given(BTreeMap<String, f64>),
    /// Estimated by a classifier of the arm.
    Model(Arc<dyn Model>),
}

/// The budget of a policy.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// No limit.
    None,
    /// At most this share of customers treated.
    TreatedShare(f64),
    /// At most this total cost.
    TotalCost(f64),
}

/// The validated `[policy]`.
#[derive(Debug, Clone)]
pub struct PolicyPlan {
    /// Value per unit of outcome, by arm (control included); `default_value` for arms not listed.
    pub value: BTreeMap<String, f64>,
    /// Value per unit of outcome for arms not in `value`.
    pub default_value: f64,
    /// Cost per customer, by arm.
    pub cost: BTreeMap<String, f64>,
    /// Budget.
    pub budget: Budget,
    /// True expected outcome columns by arm (simulated data).
    pub true_outcome: BTreeMap<String, String>,
    /// Key column for the assignment CSV.
    pub key: Option<String>,
    /// Whether to write `assignments.csv`.
    pub write_assignments: bool,
    /// Whether effect levels are calibrated on out-of-fold predictions before optimising.
    pub calibrate: bool,
}

impl PolicyPlan {
    /// Value per unit of outcome under `arm`.
    pub fn value_of(&self, arm: &str) -> f64 {
        self.value.get(arm).copied().unwrap_or(self.default_value)
    }
    /// Cost of giving `arm` to one customer.
    pub fn cost_of(&self, arm: &str) -> f64 {
        self.cost.get(arm).copied().unwrap_or(0.0)
    }
}

/// The validated uplift settings of a pipeline.
#[derive(Clone)]
pub struct UpliftPlan {
    /// Treatment column.
    pub column: String,
    /// Control value.
    pub control: String,
    /// Arms to model (empty: every non-control value of the training rows).
    pub arms: Vec<String>,
    /// `Task::Binary` for 0/1 outcomes, `Task::Regression` for continuous ones: the task the base
    /// models are fitted for.
    pub outcome: Task,
    /// Meta-learners to try.
    pub learners: Vec<LearnerKind>,
    /// Propensities.
    pub propensity: Propensity,
    /// Metric that ranks candidates by cross-validation.
    pub metric: UpliftMetric,
    /// Share for `uplift_at_k`.
    pub k: f64,
    /// Candidates averaged into the uplift ensemble (0: none).
    pub ensemble: usize,
    /// Bootstrap resamples.
    pub bootstrap: usize,
    /// Points per curve.
    pub curve_points: usize,
    /// KPI name (`participation`, `conversion`, `order_value`) → column.
    pub kpis: BTreeMap<String, String>,
    /// The policy, if declared.
    pub policy: Option<PolicyPlan>,
}

/// The metric ranking uplift candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpliftMetric {
    /// `qini_auc`.
    QiniAuc,
    /// `uplift_auc` (binary outcomes).
    UpliftAuc,
    /// `uplift_at_30` (the configured k).
    UpliftAtK,
    /// `policy_value`: the inverse-propensity weighted value per customer of the assignment the
    /// predicted outcomes make under the `[policy]` (its values, costs and budget) on the
    /// held-out rows. Needs a `[policy]` table.
    PolicyValue,
}

impl UpliftMetric {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            UpliftMetric::QiniAuc => "qini_auc",
            UpliftMetric::UpliftAuc => "uplift_auc",
            UpliftMetric::UpliftAtK => "uplift_at_k",
            UpliftMetric::PolicyValue => "policy_value",
        }
    }
}

impl UpliftPlan {
    /// Columns the uplift runner keeps out of the features (treatment, KPIs, truth, key).
    pub fn reserved_columns(&self) -> Vec<String> {
        let mut v = vec![self.column.clone()];
        v.extend(self.kpis.values().cloned());
        if let Some(p) = &self.policy {
            v.extend(p.true_outcome.values().cloned());
            v.extend(p.key.iter().cloned());
        }
        v.sort();
        v.dedup();
        v
    }
}

/// Whether `model` predicts effects itself (it lists [`Task::Uplift`]): such a model is an uplift
/// candidate of its own (learner kind `direct`) instead of a base model of the meta-learners.
pub fn models_effects(model: &dyn Model) -> bool {
    model.tasks().contains(&Task::Uplift)
}

/// Validate the uplift sections of `spec` for an uplift task.
pub fn build(src: &Source, spec: &PipelineSpec, registry: &Registry) -> Result<UpliftPlan> {
    let t = spec.data.treatment.as_ref().ok_or_else(|| {
        src.error_at("data", "an uplift task needs `treatment = { column = \"...\", control = \"...\" }` in [data]")
    })?;
    if t.column.trim().is_empty() {
        return Err(src.error_at("data.treatment.column", "the treatment column name is empty"));
    }
    if t.arms.contains(&t.control) {
        return Err(src.error_at("data.treatment.arms", format!("\"{}\" is the control value, not an arm", t.control)));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(a) = t.arms.iter().find(|a| !seen.insert(a.as_str())) {
        return Err(src.error_at("data.treatment.arms", format!("arm \"{a}\" is listed twice")));
    }
    let u = spec.uplift.clone().unwrap_or_default();
    let outcome = match u.outcome.as_deref().unwrap_or("binary") {
        "binary" => Task::Binary,
        "continuous" => Task::Regression,
        other => {
            return Err(
                src.error_at("uplift.outcome", format!("unknown outcome \"{other}\" (known: binary, continuous)"))
            );
        }
    };
    let names = u.learners.clone().unwrap_or_else(|| vec!["s".into(), "t".into()]);
    if names.is_empty() {
        return Err(
            src.error_at("uplift.learners", "no learners: give some of \"s\", \"t\", \"x\", \"ct\", \"dr\", \"r\"")
        );
    }
    let mut learners = Vec::new();
    for n in &names {
        let l = match n.as_str() {
            "s" => LearnerKind::S,
            "t" => LearnerKind::T,
            "x" => LearnerKind::X,
            "ct" | "class_transformation" => LearnerKind::ClassTransformation,
            "dr" => LearnerKind::Dr,
            "r" => LearnerKind::R,
            "direct" => {
                return Err(src.error_at(
                    "uplift.learners",
                    "\"direct\" is not listed: a model of effects (e.g. forest.uplift_random_forest) in [[models]] is a candidate of its own",
                ));
            }
            other => {
                return Err(
                    src.error_at("uplift.learners", format!("unknown learner \"{other}\" (known: s, t, x, ct, dr, r)"))
                );
            }
        };
        if l == LearnerKind::ClassTransformation && outcome != Task::Binary {
            return Err(
                src.error_at("uplift.learners", "the class-transformation learner (\"ct\") needs a binary outcome")
            );
        }
        if !learners.contains(&l) {
            learners.push(l);
        }
    }
    for (i, m) in spec.models.iter().enumerate() {
        let Ok(model) = registry.model(&m.kind) else { continue };
        if models_effects(model.as_ref()) {
            // A model of effects: a candidate of its own, whatever the learners.
            if outcome != Task::Binary {
                return Err(src.error_at(
                    &format!("models[{i}].kind"),
                    format!("`{}` models binary outcomes only; this pipeline's outcome is continuous", m.kind),
                ));
            }
            continue;
        }
        for l in &learners {
            if *l == LearnerKind::R && !model.honours_weights() {
                return Err(src.error_at(
                    &format!("models[{i}].kind"),
                    format!(
                        "the `r` learner fits its effect model with row weights (w - e)² and `{}` ignores row \
                         weights: use a model that honours them (gbm.forust, gbm.perpetual, forest.*, \
                         smartcore.ridge, burn.*)",
                        m.kind
                    ),
                ));
            }
            for task in l.base_tasks(outcome) {
                if !model.tasks().contains(&task) {
                    return Err(src.error_at(
                        &format!("models[{i}].kind"),
                        format!(
                            "the `{}` learner needs a {} model and `{}` supports only {}",
                            l.name(),
                            task.name(),
                            m.kind,
                            model.tasks().iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
    }
    let propensity = match &u.propensity {
        None => Propensity::Frequency,
        Some(toml::Value::String(s)) if s == "frequency" => Propensity::Frequency,
        Some(toml::Value::String(s)) if s == "model" => {
            let kind = u.propensity_model.as_deref().ok_or_else(|| {
                src.error_at("uplift.propensity_model", "`propensity = \"model\"` needs a classifier kind here")
            })?;
            let model =
                registry.model(kind).map_err(|e| src.error_at("uplift.propensity_model", e.to_string()))?.clone();
            if !model.tasks().contains(&Task::Binary) || !model.tasks().contains(&Task::Multiclass) {
                return Err(src.error_at(
                    "uplift.propensity_model",
                    format!("`{kind}` must be a binary and multiclass classifier"),
                ));
            }
            Propensity::Model(model)
        }
        Some(toml::Value::Table(tab)) => {
            let mut given = BTreeMap::new();
            for (arm, v) in tab {
                let p = v.as_float().or_else(|| v.as_integer().map(|i| i as f64)).unwrap_or(f64::NAN);
                if !(p > 0.0 && p < 1.0) {
                    return Err(
                        src.error_at(&format!("uplift.propensity.{arm}"), "a propensity must be a number in (0, 1)")
                    );
                }
                given.insert(arm.clone(), p);
            }
            Propensity::Given(given)
        }
        Some(_) => {
            return Err(
                src.error_at("uplift.propensity", "expected \"frequency\", \"model\" or a table arm = probability")
            );
        }
    };
    if u.propensity_model.is_some() && !matches!(propensity, Propensity::Model(_)) {
        return Err(src.error_at("uplift.propensity_model", "only used with `propensity = \"model\"`"));
    }
    let metric = match spec.search.metric.as_deref().unwrap_or("qini_auc") {
        "qini_auc" => UpliftMetric::QiniAuc,
        "uplift_auc" if outcome == Task::Binary => UpliftMetric::UpliftAuc,
        "uplift_auc" => return Err(src.error_at("search.metric", "`uplift_auc` needs a binary outcome")),
        "uplift_at_k" | "uplift_at_30" => UpliftMetric::UpliftAtK,
        "policy_value" if spec.policy.is_some() => UpliftMetric::PolicyValue,
        "policy_value" => {
            return Err(src.error_at(
                "search.metric",
                "`policy_value` ranks candidates by the value of the assignment they make: add a [policy] table (values, costs, budget)",
            ));
        }
        other => {
            return Err(src.error_at(
                "search.metric",
                format!(
                    "`{other}` does not apply to an uplift task (use one of: qini_auc, uplift_auc, uplift_at_k, policy_value)"
                ),
            ));
        }
    };
    let k = u.k.unwrap_or(0.3);
    if !(k > 0.0 && k < 1.0) {
        return Err(src.error_at("uplift.k", format!("{k} is not in (0, 1)")));
    }
    for name in u.kpis.keys() {
        if !["participation", "conversion", "order_value"].contains(&name.as_str()) {
            return Err(src.error_at(
                &format!("uplift.kpis.{name}"),
                "unknown KPI (known: participation, conversion, order_value)",
            ));
        }
    }
    let policy = match &spec.policy {
        None => None,
        Some(p) => Some(policy_plan(src, p, &t.control)?),
    };
    let count = |key: &str, v: usize, min: usize, max: usize| -> Result<usize> {
        limits::count(v, min, max).map_err(|m| src.error_at(key, m))
    };
    let curve_points = count("uplift.curve_points", u.curve_points.unwrap_or(101), 2, limits::MAX_CURVE_POINTS)?;
    let ensemble = count("uplift.ensemble", u.ensemble.unwrap_or(3), 0, limits::MAX_MEMBERS)?;
    let bootstrap = count("uplift.bootstrap", u.bootstrap.unwrap_or(200), 0, limits::MAX_BOOTSTRAP)?;
    Ok(UpliftPlan {
        column: t.column.clone(),
        control: t.control.clone(),
        arms: t.arms.clone(),
        outcome,
        learners,
        propensity,
        metric,
        k,
        ensemble,
        bootstrap,
        curve_points,
        kpis: u.kpis.clone(),
        policy,
    })
}

fn policy_plan(src: &Source, p: &PolicySpec, control: &str) -> Result<PolicyPlan> {
    let amount = |key: &str, v: f64, low: f64| -> Result<f64> {
        limits::real(v, low, limits::MAX_AMOUNT).map_err(|m| src.error_at(key, m))
    };
    let finite = |key: &str, v: &toml::Value| -> Result<f64> {
        let x = v
            .as_float()
            .or_else(|| v.as_integer().map(|i| i as f64))
            .ok_or_else(|| src.error_at(key, "expected a number"))?;
        amount(key, x, -limits::MAX_AMOUNT)
    };
    let (value, default_value) = match &p.value_per_outcome {
        None => (BTreeMap::new(), 1.0),
        Some(toml::Value::Table(t)) => {
            let mut m = BTreeMap::new();
            for (arm, v) in t {
                m.insert(arm.clone(), finite(&format!("policy.value_per_outcome.{arm}"), v)?);
            }
            (m, 1.0)
        }
        Some(v) => (BTreeMap::new(), finite("policy.value_per_outcome", v)?),
    };
    for (arm, c) in &p.cost {
        amount(&format!("policy.cost.{arm}"), *c, 0.0)?;
        if arm == control && *c != 0.0 {
            return Err(src.error_at(&format!("policy.cost.{arm}"), "the control arm costs nothing"));
        }
    }
    let budget = match &p.budget {
        None => Budget::None,
        Some(BudgetSpec { max_treated_share: Some(s), max_total_cost: None }) => {
            if !(*s > 0.0 && *s <= 1.0) {
                return Err(src.error_at("policy.budget.max_treated_share", format!("{s} is not in (0, 1]")));
            }
            Budget::TreatedShare(*s)
        }
        Some(BudgetSpec { max_treated_share: None, max_total_cost: Some(c) }) => {
            amount("policy.budget.max_total_cost", *c, 0.0)?;
            if p.cost.values().all(|&c| c == 0.0) {
                return Err(src.error_at("policy.budget.max_total_cost", "no arm has a cost: set `policy.cost`"));
            }
            Budget::TotalCost(*c)
        }
        Some(_) => {
            return Err(src.error_at("policy.budget", "give exactly one of `max_treated_share` and `max_total_cost`"));
        }
    };
    Ok(PolicyPlan {
        value,
        default_value,
        cost: p.cost.clone(),
        budget,
        true_outcome: p.true_outcome.clone(),
        key: p.key.clone(),
        write_assignments: p.assignments.unwrap_or(true),
        calibrate: p.calibrate.unwrap_or(true),
    })
}
