//! `gbm.perpetual`: perpetual's budget-driven gradient boosting machine.

use crate::{MAX_SAVED_THREADS, check_tree, check_values, column_major, guarded, in_pool, seconds_left};
use ndarray::Array2;
use perpetual::booster::config::{BoosterIO, MissingNodeTreatment};
use perpetual::objective::Objective;
use perpetual::{Matrix, MultiOutputBooster, PerpetualBooster};
use promoml_core::model_util::{check_features, check_task, class_targets, value_targets};
use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Predictions, Result, SearchSpace,
    Task,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

const KIND: &str = "gbm.perpetual";

/// `gbm.perpetual`: a self-generalising booster steered by one `budget` parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Perpetual;

/// Settings read from validated parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PerpetualConfig {
    /// How hard to fit: perpetual's learning rate is `10^-budget`, so higher budgets grow more,
    /// smaller steps (slower, usually better up to a plateau).
    pub budget: f32,
    /// Histogram bins per feature.
    pub max_bin: u16,
    /// Most boosting rounds (0 = no limit besides perpetual's own stopping rule).
    pub iteration_limit: usize,
    /// Binary tasks: reweight the classes to equal total weight (perpetual's default). Off by
    /// default here, since it biases probabilities towards the rare class.
    pub balance_classes: bool,
}

impl PerpetualConfig {
    /// Settings from parameters resolved against [`Perpetual::space`].
    pub fn from_params(params: &Params) -> Result<PerpetualConfig> {
        let max_bin = params.usize("max_bin")?;
        Ok(PerpetualConfig {
            budget: params.f64("budget")? as f32,
            max_bin: u16::try_from(max_bin)
                .map_err(|_| Error::config("max_bin", format!("{max_bin} does not fit in 16 bits")))?,
            iteration_limit: params.usize("iteration_limit")?,
            balance_classes: params.bool("balance_classes")?,
        })
    }
}

impl Model for Perpetual {
    fn kind(&self) -> &str {
        KIND
    }
    fn description(&self) -> &str {
        "perpetual gradient boosting: one `budget` knob, learning rate and rounds chosen by the algorithm"
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Binary, Task::Multiclass, Task::Regression]
    }
    fn honours_weights(&self) -> bool {
        true
    }
    fn space(&self) -> SearchSpace {
        SearchSpace::new(vec![
            ParamSpec::float(
                "budget",
                "fitting budget: the learning rate is 10^-budget and the rounds grow to match, so a higher \
                 budget fits more closely and takes longer (0.5 is a quick start, 1.0-1.5 usually better)",
                0.5,
                0.05,
                3.0,
            )
            .search_float(0.3, 1.5, false),
            ParamSpec::int(
                "max_bin",
                "histogram bins per feature (features with fewer distinct values keep one bin per value)",
                256,
                4,
                1024,
            ),
            ParamSpec::int(
                "iteration_limit",
                "most boosting rounds; 0 leaves the number to perpetual's own stopping rule",
                0,
                0,
                100_000,
            ),
            ParamSpec::flag(
                "balance_classes",
                "binary tasks: weight both classes equally (raises the rare class's probabilities; AUC \
                 rarely changes, log loss usually worsens)",
                false,
            ),
        ])
    }
    fn cost(&self, rows: usize, features: usize, params: &Params) -> f64 {
        // Rounds grow with the budget (the learning rate is 10^-budget).
        1200.0 * self.space().number(params, "budget", 0.5) * rows as f64 * features.max(1) as f64
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        let params = self.space().resolve(params, &format!("{KIND}.params"))?;
        let cfg = PerpetualConfig::from_params(&params)?;
        Ok(Box::new(fit_perpetual(data, &cfg, ctx)?))
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedModel>> {
        Ok(Box::new(FittedPerpetual::from_bytes(bytes)?))
    }
}

/// The fitted booster of one task.
enum Booster {
    /// Log-loss booster on the positive class.
    Binary(PerpetualBooster),
    /// One booster per class (or perpetual's native multiclass model).
    Multiclass(MultiOutputBooster),
    /// Squared-loss booster.
    Regression(PerpetualBooster),
}

/// A fitted `gbm.perpetual` model.
pub struct FittedPerpetual {
    n_features: usize,
    n_classes: usize,
    threads: usize,
    booster: Booster,
}

/// The artifact layout: perpetual's own JSON for the booster, beside what promoml needs.
#[derive(Serialize, Deserialize)]
struct Saved {
    kind: String,
    task: String,
    n_features: usize,
    n_classes: usize,
    threads: usize,
    booster_json: String,
}

/// A booster configured like perpetual's defaults except where `cfg` and `ctx` say otherwise.
fn booster(
    objective: Objective,
    cfg: &PerpetualConfig,
    ctx: &FitContext,
    timeout: Option<f32>,
) -> Result<PerpetualBooster> {
    let mut b = PerpetualBooster::new(
        objective,
        cfg.budget,
        f64::NAN,
        cfg.max_bin,
        threads_option(ctx.threads),
        None,
        None,
        false,
        f64::NAN,
        true,
        false,
        HashSet::new(),
        MissingNodeTreatment::AssignToParent,
        0,
        ctx.seed,
        None,
        None,
        timeout,
        (cfg.iteration_limit > 0).then_some(cfg.iteration_limit),
        None,
        None,
        false,
    )
    .map_err(|e| Error::model(KIND, format!("invalid settings: {e}")))?;
    b.cfg.auto_class_weights = cfg.balance_classes;
    Ok(b)
}

fn threads_option(threads: usize) -> Option<usize> {
    (threads > 0).then_some(threads)
}

/// Fit `gbm.perpetual` on `data` with settings `cfg`.
pub fn fit_perpetual(data: &Dataset, cfg: &PerpetualConfig, ctx: &FitContext) -> Result<FittedPerpetual> {
    let task = check_task(KIND, &[Task::Binary, Task::Multiclass, Task::Regression], data)?;
    check_values(KIND, &data.x)?;
    if let Some(w) = &data.weights
        && let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0))
    {
        return Err(Error::model(KIND, format!("row {i}: sample weight {} is not a finite non-negative number", w[i])));
    }
    let timeout = seconds_left(KIND, ctx)?;
    let (rows, cols) = data.x.dim();
    let values = column_major(&data.x);
    let weights = data.weights.as_deref();
    let booster = match task {
        Task::Binary => {
            let y: Vec<f64> = class_targets(KIND, data)?.into_iter().map(|c| c as f64).collect();
            let mut b = booster(Objective::LogLoss, cfg, ctx, timeout)?;
            guarded(KIND, "fitting", || b.fit(&Matrix::new(&values, rows, cols), &y, weights, None).map_err(perp_err))?;
            Booster::Binary(b)
        }
        Task::Multiclass => {
            let k = data.n_classes();
            let classes = class_targets(KIND, data)?;
            let mut onehot = vec![0.0; rows * k];
            for (i, &c) in classes.iter().enumerate() {
                onehot[c * rows + i] = 1.0;
            }
            let mut m = MultiOutputBooster::new(
                k,
                Objective::LogLoss,
                cfg.budget,
                cfg.max_bin,
                threads_option(ctx.threads),
                None,
                None,
                false,
                f64::NAN,
                true,
                false,
                HashSet::new(),
                MissingNodeTreatment::AssignToParent,
                0,
                ctx.seed,
                None,
                None,
                timeout,
                (cfg.iteration_limit > 0).then_some(cfg.iteration_limit),
                None,
                None,
                false,
            )
            .map_err(|e| Error::model(KIND, format!("invalid settings: {e}")))?;
            guarded(KIND, "fitting", || {
                m.fit(&Matrix::new(&values, rows, cols), &Matrix::new(&onehot, rows, k), weights, None)
                    .map_err(perp_err)
            })?;
            Booster::Multiclass(m)
        }
        Task::Regression => {
            let y = value_targets(KIND, data)?;
            let mut b = booster(Objective::SquaredLoss, cfg, ctx, timeout)?;
            guarded(KIND, "fitting", || b.fit(&Matrix::new(&values, rows, cols), &y, weights, None).map_err(perp_err))?;
            Booster::Regression(b)
        }
        other => return Err(Error::model(KIND, format!("does not support {} tasks", other.name()))),
    };
    Ok(FittedPerpetual { n_features: cols, n_classes: data.n_classes(), threads: ctx.threads, booster })
}

fn perp_err(e: perpetual::errors::PerpetualError) -> Error {
    Error::model(KIND, format!("perpetual: {e}"))
}

impl FittedPerpetual {
    /// The number of trees fitted (summed over classes for multiclass models).
    pub fn n_trees(&self) -> usize {
        match &self.booster {
            Booster::Binary(b) | Booster::Regression(b) => b.get_prediction_trees().len(),
            Booster::Multiclass(m) => m.get_boosters().iter().map(|b| b.get_prediction_trees().len()).sum(),
        }
    }

    fn from_bytes(bytes: &[u8]) -> Result<FittedPerpetual> {
        let bad = |e: String| Error::model(KIND, format!("cannot read the saved model: {e}"));
        let s: Saved = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if s.kind != KIND {
            return Err(bad(format!("it was saved by `{}`", s.kind)));
        }
        let single = || PerpetualBooster::from_json(&s.booster_json).map_err(|e| bad(e.to_string()));
        let booster = match s.task.as_str() {
            "binary" => Booster::Binary(single()?),
            "regression" => Booster::Regression(single()?),
            "multiclass" => {
                Booster::Multiclass(MultiOutputBooster::from_json(&s.booster_json).map_err(|e| bad(e.to_string()))?)
            }
            other => return Err(bad(format!("unknown task `{other}`"))),
        };
        // perpetual walks its trees without checks: every tree must end, on columns that exist.
        let boosters: Vec<&PerpetualBooster> = match &booster {
            Booster::Binary(b) | Booster::Regression(b) => vec![b],
            Booster::Multiclass(m) => m.get_boosters().iter().collect(),
        };
        let threads = |b: &PerpetualBooster| b.cfg.num_threads.unwrap_or(0);
        if s.threads > MAX_SAVED_THREADS || boosters.iter().any(|b| threads(b) > MAX_SAVED_THREADS) {
            return Err(bad(format!("it asks for more than {MAX_SAVED_THREADS} worker threads")));
        }
        if let Booster::Multiclass(m) = &booster
            && (s.n_classes < 2 || m.get_boosters().len() != s.n_classes)
        {
            return Err(bad(format!("{} class boosters for {} classes", m.get_boosters().len(), s.n_classes)));
        }
        for b in boosters {
            for (t, tree) in b.get_prediction_trees().iter().enumerate() {
                let walk = tree
                    .nodes
                    .iter()
                    .map(|(&k, n)| (k, n.is_leaf, n.split_feature, [n.left_child, n.right_child, n.missing_node]));
                check_tree(KIND, t, s.n_features, walk, |c| tree.nodes.contains_key(&c))?;
            }
        }
        Ok(FittedPerpetual { n_features: s.n_features, n_classes: s.n_classes, threads: s.threads, booster })
    }
}

impl FittedModel for FittedPerpetual {
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        check_features(KIND, self.n_features, data)?;
        let rows = data.n_rows();
        let values = column_major(&data.x);
        let m = Matrix::new(&values, rows, self.n_features);
        let parallel = self.threads != 1;
        in_pool(KIND, self.threads, || match &self.booster {
            Booster::Binary(b) => Ok(Predictions::binary(b.predict_proba(&m, parallel, false))),
            Booster::Regression(b) => Ok(Predictions::Values(b.predict(&m, parallel))),
            Booster::Multiclass(b) => {
                let k = self.n_classes;
                let flat = b.predict_proba(&m, parallel);
                let mut p = Array2::from_shape_vec((rows, k), flat).map_err(|e| {
                    Error::model(KIND, format!("perpetual returned probabilities of the wrong shape: {e}"))
                })?;
                for mut row in p.rows_mut() {
                    row.mapv_inplace(|v| if v.is_finite() { v.max(0.0) } else { 0.0 });
                    let sum = row.sum();
                    if sum > 0.0 {
                        row /= sum;
                    } else {
                        row.fill(1.0 / k as f64);
                    }
                }
                Ok(Predictions::Proba(p))
            }
        })?
    }

    fn save(&self) -> Result<Vec<u8>> {
        let err = |e: String| Error::model(KIND, format!("cannot save the model: {e}"));
        let (task, booster_json) = match &self.booster {
            Booster::Binary(b) => ("binary", b.json_dump()),
            Booster::Regression(b) => ("regression", b.json_dump()),
            Booster::Multiclass(m) => ("multiclass", m.json_dump()),
        };
        let s = Saved {
            kind: KIND.into(),
            task: task.into(),
            n_features: self.n_features,
            n_classes: self.n_classes,
            threads: self.threads,
            booster_json: booster_json.map_err(|e| err(e.to_string()))?,
        };
        serde_json::to_vec(&s).map_err(|e| err(e.to_string()))
    }
    fn n_classes(&self) -> Option<usize> {
        Some(match &self.booster {
            Booster::Binary(_) => 2,
            Booster::Regression(_) => 0,
            Booster::Multiclass(_) => self.n_classes,
        })
    }
}
