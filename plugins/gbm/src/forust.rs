//! `gbm.forust`: forust-ml's XGBoost-style gradient boosting with early stopping.

use crate::{MAX_SAVED_THREADS, check_tree, check_values, column_major, guarded, in_pool, seconds_left};
use forust_ml::gradientbooster::GrowPolicy;
use forust_ml::metric::Metric;
use forust_ml::objective::ObjectiveType;
use forust_ml::sampler::SampleMethod;
use forust_ml::{GradientBooster, Matrix};
use promoml_core::explain::{Explanations, ShapNode, Space, TreeShap};
use promoml_core::model_util::{check_features, check_task, class_targets, sigmoid, value_targets};
use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Predictions, Result, SearchSpace,
    Task,
};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

const KIND: &str = "gbm.forust";

/// Fewest rows on each side of the internal validation split; smaller data trains on every row
/// without early stopping.
const MIN_SPLIT_ROWS: usize = 10;

/// `gbm.forust`: gradient-boosted trees with the usual knobs and early stopping.
#[derive(Debug, Clone, Copy, Default)]
pub struct Forust;

/// Settings read from validated parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ForustConfig {
    /// Most boosting rounds (trees).
    pub n_estimators: usize,
    /// Shrinkage applied to each tree's leaf values.
    pub learning_rate: f32,
    /// Deepest a tree may grow.
    pub max_depth: usize,
    /// Most leaves of a tree (0 = no limit).
    pub max_leaves: usize,
    /// Grow level by level (`false`) or always split the leaf with the best gain (`true`).
    pub loss_guide: bool,
    /// Share of rows drawn (without replacement) for each tree.
    pub subsample: f32,
    /// Share of features drawn for each tree.
    pub colsample_bytree: f64,
    /// L2 penalty on leaf values.
    pub l2: f32,
    /// Smallest loss reduction a split must bring.
    pub gamma: f32,
    /// Smallest sum of hessians (weights) in a leaf.
    pub min_leaf_weight: f32,
    /// Histogram bins per feature.
    pub nbins: u16,
    /// Stop when the validation loss has not improved for this many rounds (0 = off).
    pub early_stopping_rounds: usize,
    /// Share of the training rows held out (stratified by class) to decide early stopping.
    pub validation_fraction: f64,
}

impl ForustConfig {
    /// Settings from parameters resolved against [`Forust::space`].
    pub fn from_params(params: &Params) -> Result<ForustConfig> {
        let nbins = params.usize("nbins")?;
        let loss_guide = match params.str("grow_policy")? {
            "depthwise" => false,
            "lossguide" => true,
            other => return Err(Error::config("grow_policy", format!("unknown option \"{other}\""))),
        };
        Ok(ForustConfig {
            n_estimators: params.usize("n_estimators")?,
            learning_rate: params.f64("learning_rate")? as f32,
            max_depth: params.usize("max_depth")?,
            max_leaves: params.usize("max_leaves")?,
            loss_guide,
            subsample: params.f64("subsample")? as f32,
            colsample_bytree: params.f64("colsample_bytree")?,
            l2: params.f64("l2")? as f32,
            gamma: params.f64("gamma")? as f32,
            min_leaf_weight: params.f64("min_leaf_weight")? as f32,
            nbins: u16::try_from(nbins)
                .map_err(|_| Error::config("nbins", format!("{nbins} does not fit in 16 bits")))?,
            early_stopping_rounds: params.usize("early_stopping_rounds")?,
            validation_fraction: params.f64("validation_fraction")?,
        })
    }
}

impl Model for Forust {
    fn kind(&self) -> &str {
        KIND
    }
    fn description(&self) -> &str {
        "forust gradient boosting: XGBoost-style histogram trees, early stopping on a held-out share"
    }
    fn tasks(&self) -> &[Task] {
        // forust-ml has log loss and squared loss only: no multiclass objective.
        &[Task::Binary, Task::Regression]
    }
    fn honours_weights(&self) -> bool {
        true
    }
    fn space(&self) -> SearchSpace {
        SearchSpace::new(vec![
            ParamSpec::int(
                "n_estimators",
                "most boosting rounds; with early stopping the best round on the validation rows is kept",
                1000,
                1,
                20_000,
            )
            .search_int(100, 2000, true),
            ParamSpec::float("learning_rate", "shrinkage of each tree's contribution", 0.05, 0.0001, 1.0)
                .search_float(0.01, 0.3, true),
            ParamSpec::int("max_depth", "deepest a tree may grow", 6, 1, 32).search_int(2, 10, false),
            ParamSpec::int("max_leaves", "most leaves of a tree; 0 = no limit besides max_depth", 0, 0, 65_536)
                .search_int(4, 256, true),
            ParamSpec::choice(
                "grow_policy",
                "depthwise grows level by level; lossguide always splits the leaf with the best gain \
                 (bound it with max_leaves)",
                "depthwise",
                &["depthwise", "lossguide"],
            ),
            ParamSpec::float("subsample", "share of the rows drawn for each tree", 1.0, 0.01, 1.0)
                .search_float(0.5, 1.0, false),
            ParamSpec::float(
                "colsample_bytree",
                "share of the features drawn for each tree (at least one)",
                1.0,
                0.01,
                1.0,
            )
            .search_float(0.5, 1.0, false),
            ParamSpec::float("l2", "L2 penalty on leaf values", 1.0, 0.0, 10_000.0).search_float(0.01, 10.0, true),
            ParamSpec::float("gamma", "smallest loss reduction a split must bring", 0.0, 0.0, 10_000.0),
            ParamSpec::float(
                "min_leaf_weight",
                "smallest sum of hessians in a leaf (rows for squared loss, p(1-p) per row for log loss)",
                1.0,
                0.0,
                100_000.0,
            )
            .search_float(0.1, 50.0, true),
            ParamSpec::int(
                "nbins",
                "histogram bins per feature (features with fewer distinct values keep one bin per value)",
                256,
                4,
                1024,
            ),
            ParamSpec::int(
                "early_stopping_rounds",
                "stop after this many rounds without improvement of the validation loss (log loss or \
                 RMSE); 0 trains every round on all rows",
                50,
                0,
                10_000,
            ),
            ParamSpec::float(
                "validation_fraction",
                "share of the training rows held out (stratified by class, seeded) for early stopping",
                0.1,
                0.01,
                0.5,
            ),
        ])
    }
    fn cost(&self, rows: usize, features: usize, params: &Params) -> f64 {
        // Histogram boosting: every round scans each feature's histogram once; early stopping
        // usually ends well before `n_estimators` (factor calibrated on measured fits).
        self.space().number(params, "n_estimators", 1000.0).min(300.0) * rows as f64 * features.max(1) as f64 * 0.4
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        let params = self.space().resolve(params, &format!("{KIND}.params"))?;
        let cfg = ForustConfig::from_params(&params)?;
        Ok(Box::new(fit_forust(data, &cfg, ctx)?))
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedModel>> {
        Ok(Box::new(FittedForust::from_bytes(bytes)?))
    }
}

/// A fitted `gbm.forust` model.
pub struct FittedForust {
    binary: bool,
    n_features: usize,
    threads: usize,
    rounds: (usize, usize),
    booster: GradientBooster,
}

/// The artifact layout: forust's own JSON for the booster, beside what promoml needs.
#[derive(Serialize, Deserialize)]
struct Saved {
    kind: String,
    binary: bool,
    n_features: usize,
    threads: usize,
    rounds: (usize, usize),
    booster_json: String,
}

/// Rows to train on and rows to validate on: a seeded shuffle, per class for classification
/// so both sides keep the class shares. `None` when the data is too small to split.
fn validation_split(
    labels: Option<&[usize]>,
    n: usize,
    fraction: f64,
    ctx: &FitContext,
) -> Option<(Vec<usize>, Vec<usize>)> {
    let mut rng = ctx.rng();
    let groups: Vec<Vec<usize>> = match labels {
        Some(y) => {
            let k = y.iter().max().map_or(0, |m| m + 1);
            let mut g = vec![Vec::new(); k];
            for (i, &c) in y.iter().enumerate() {
                g[c].push(i);
            }
            g
        }
        None => vec![(0..n).collect()],
    };
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for mut g in groups {
        g.shuffle(&mut rng);
        let cut = (g.len() as f64 * fraction).round() as usize;
        valid.extend_from_slice(&g[..cut]);
        train.extend_from_slice(&g[cut..]);
    }
    if train.len() < MIN_SPLIT_ROWS || valid.len() < MIN_SPLIT_ROWS {
        return None;
    }
    train.sort_unstable();
    valid.sort_unstable();
    Some((train, valid))
}

/// Fit `gbm.forust` on `data` with settings `cfg`.
pub fn fit_forust(data: &Dataset, cfg: &ForustConfig, ctx: &FitContext) -> Result<FittedForust> {
    let task = check_task(KIND, &[Task::Binary, Task::Regression], data)?;
    check_values(KIND, &data.x)?;
    let (labels, y): (Option<Vec<usize>>, Vec<f64>) = match task {
        Task::Binary => {
            let c = class_targets(KIND, data)?;
            let y = c.iter().map(|&v| v as f64).collect();
            (Some(c), y)
        }
        _ => (None, value_targets(KIND, data)?),
    };
    let weights = match &data.weights {
        Some(w) => {
            if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(Error::model(
                    KIND,
                    format!("row {i}: sample weight {} is not a finite non-negative number", w[i]),
                ));
            }
            w.clone()
        }
        None => vec![1.0; data.n_rows()],
    };
    seconds_left(KIND, ctx)?;
    let cols = data.n_features();
    // forust draws floor(cols * colsample) features; keep at least one.
    let colsample = if (cols as f64 * cfg.colsample_bytree).floor() < 1.0 {
        (1.5 / cols as f64).min(1.0)
    } else {
        cfg.colsample_bytree
    };
    let split = if cfg.early_stopping_rounds > 0 {
        validation_split(labels.as_deref(), data.n_rows(), cfg.validation_fraction, ctx)
    } else {
        None
    };
    let mut booster = GradientBooster::default()
        .set_objective_type(if labels.is_some() { ObjectiveType::LogLoss } else { ObjectiveType::SquaredLoss })
        .set_iterations(cfg.n_estimators)
        .set_learning_rate(cfg.learning_rate)
        .set_max_depth(cfg.max_depth)
        .set_max_leaves(if cfg.max_leaves == 0 { usize::MAX } else { cfg.max_leaves })
        .set_l2(cfg.l2)
        .set_gamma(cfg.gamma)
        .set_min_leaf_weight(cfg.min_leaf_weight)
        .set_nbins(cfg.nbins)
        .set_initialize_base_score(true)
        .set_subsample(cfg.subsample)
        .set_sample_method(if cfg.subsample < 1.0 { SampleMethod::Random } else { SampleMethod::None })
        .set_colsample_bytree(colsample)
        .set_seed(ctx.seed)
        .set_parallel(ctx.threads != 1)
        .set_num_threads((ctx.threads > 1).then_some(ctx.threads));
    booster.grow_policy = if cfg.loss_guide { GrowPolicy::LossGuide } else { GrowPolicy::DepthWise };
    if split.is_some() {
        booster = booster
            .set_evaluation_metric(Some(if labels.is_some() { Metric::LogLoss } else { Metric::RootMeanSquaredError }))
            .set_early_stopping_rounds(Some(cfg.early_stopping_rounds));
    }

    guarded(KIND, "fitting", || {
        let to_err = |e: forust_ml::errors::ForustError| Error::model(KIND, format!("forust: {e}"));
        match &split {
            Some((train_rows, valid_rows)) => {
                let (tr, va) =
                    (data.x.select(ndarray::Axis(0), train_rows), data.x.select(ndarray::Axis(0), valid_rows));
                let (tv, vv) = (column_major(&tr), column_major(&va));
                let pick = |v: &[f64], rows: &[usize]| rows.iter().map(|&i| v[i]).collect::<Vec<f64>>();
                let (ty, vy) = (pick(&y, train_rows), pick(&y, valid_rows));
                let (tw, vw) = (pick(&weights, train_rows), pick(&weights, valid_rows));
                let eval = vec![(Matrix::new(&vv, valid_rows.len(), cols), vy.as_slice(), vw.as_slice())];
                booster.fit(&Matrix::new(&tv, train_rows.len(), cols), &ty, &tw, Some(eval)).map_err(to_err)
            }
            None => {
                let values = column_major(&data.x);
                booster.fit(&Matrix::new(&values, data.n_rows(), cols), &y, &weights, None).map_err(to_err)
            }
        }
    })?;
    let trained = booster.trees.len();
    let kept = booster.prediction_iteration.unwrap_or(trained);
    Ok(FittedForust {
        binary: labels.is_some(),
        n_features: cols,
        threads: ctx.threads,
        rounds: (trained, kept),
        booster,
    })
}

impl FittedForust {
    /// The fitted forust booster.
    pub fn booster(&self) -> &GradientBooster {
        &self.booster
    }
    /// Boosting rounds trained, and the rounds used to predict (fewer when early stopping
    /// found an earlier best round).
    pub fn rounds(&self) -> (usize, usize) {
        self.rounds
    }

    /// The trees it predicts with, for TreeSHAP: raw output = base score + Σ leaf weights.
    fn tree_shap(&self) -> Result<TreeShap> {
        let rounds = self.booster.prediction_iteration.unwrap_or(self.booster.trees.len());
        let trees = self.booster.trees[..rounds]
            .iter()
            .map(|t| {
                t.nodes
                    .iter()
                    .map(|n| {
                        let cover = f64::from(n.hessian_sum);
                        if n.is_leaf {
                            ShapNode::leaf(f64::from(n.weight_value), cover)
                        } else {
                            let children = [n.left_child, n.right_child, n.missing_node];
                            ShapNode::split(n.split_feature, n.split_value, false, children, cover)
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(TreeShap::new(trees, self.n_features)?.with_output(self.booster.base_score, 1.0))
    }

    fn from_bytes(bytes: &[u8]) -> Result<FittedForust> {
        let bad = |e: String| Error::model(KIND, format!("cannot read the saved model: {e}"));
        let s: Saved = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if s.kind != KIND {
            return Err(bad(format!("it was saved by `{}`", s.kind)));
        }
        let booster = GradientBooster::from_json(&s.booster_json).map_err(|e| bad(e.to_string()))?;
        // forust walks its trees and slices them by `prediction_iteration` without checks.
        if s.threads > MAX_SAVED_THREADS || booster.num_threads.is_some_and(|n| n > MAX_SAVED_THREADS) {
            return Err(bad(format!("it asks for more than {MAX_SAVED_THREADS} worker threads")));
        }
        if booster.prediction_iteration.is_some_and(|n| n > booster.trees.len()) {
            return Err(bad(format!("it predicts with more rounds than its {} trees", booster.trees.len())));
        }
        for (t, tree) in booster.trees.iter().enumerate() {
            let nodes = &tree.nodes;
            let walk = nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (i, n.is_leaf, n.split_feature, [n.left_child, n.right_child, n.missing_node]));
            check_tree(KIND, t, s.n_features, walk, |c| c < nodes.len())?;
        }
        Ok(FittedForust { binary: s.binary, n_features: s.n_features, threads: s.threads, rounds: s.rounds, booster })
    }
}

impl FittedModel for FittedForust {
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        check_features(KIND, self.n_features, data)?;
        let values = column_major(&data.x);
        let m = Matrix::new(&values, data.n_rows(), self.n_features);
        let raw = in_pool(KIND, self.threads, || self.booster.predict(&m, self.threads != 1))?;
        Ok(if self.binary { Predictions::binary(raw.into_iter().map(sigmoid)) } else { Predictions::Values(raw) })
    }
    fn n_classes(&self) -> Option<usize> {
        Some(if self.binary { 2 } else { 0 })
    }
    /// Exact path-dependent TreeSHAP over the rounds it predicts with, in log-odds (binary)
    /// or the outcome (regression); the covers are forust's hessian sums.
    fn explain(&self, data: &Dataset, _baseline: &[f64]) -> Option<Result<Explanations>> {
        // TreeSHAP routes NaN to the missing branch, as forust does when NaN marks missing.
        if !self.booster.missing.is_nan() {
            return None;
        }
        let space = if self.binary { Space::LogOdds } else { Space::Value };
        Some(check_features(KIND, self.n_features, data).and_then(|()| self.tree_shap()?.explain(data, space)))
    }

    fn save(&self) -> Result<Vec<u8>> {
        let err = |e: String| Error::model(KIND, format!("cannot save the model: {e}"));
        let s = Saved {
            kind: KIND.into(),
            binary: self.binary,
            n_features: self.n_features,
            threads: self.threads,
            rounds: self.rounds,
            booster_json: self.booster.json_dump().map_err(|e| err(e.to_string()))?,
        };
        serde_json::to_vec(&s).map_err(|e| err(e.to_string()))
    }
}
