//! `smartcore.random_forest`: a random forest of smartcore trees fitted in parallel.

use crate::common::{check_features, check_task, class_targets, derive_seed, in_pool, sc_err, to_dense, value_targets};
use ndarray::{Array2, Axis};
use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Predictions, Result, SearchSpace,
    Task,
};
use rayon::prelude::*;
use smartcore::ensemble::random_forest_classifier::{RandomForestClassifier, RandomForestClassifierParameters};
use smartcore::ensemble::random_forest_regressor::{RandomForestRegressor, RandomForestRegressorParameters};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::tree::decision_tree_classifier::SplitCriterion;

const KIND: &str = "smartcore.random_forest";
/// Rows predicted at a time (bounds the memory of per-tree predictions).
const CHUNK: usize = 4096;

type Clf = RandomForestClassifier<f64, i32, DenseMatrix<f64>, Vec<i32>>;
type Reg = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// A random forest: `n_trees` smartcore decision trees, each on its own bootstrap sample,
/// fitted in parallel with rayon; classification averages the trees' votes (each smartcore tree
/// predicts its leaf's majority class, so probabilities are vote shares), regression averages
/// their predictions.
///
/// smartcore's `DecisionTreeClassifier`/`DecisionTreeRegressor` cannot sample features per
/// split through their public API, but a one-tree smartcore `RandomForest*` can: every tree here
/// is such a one-tree forest, which draws its bootstrap sample (stratified by class for
/// classification) and tries `max_features` randomly chosen features at each split. Tree `t` is
/// seeded from `(seed, t)` alone, so the forest does not depend on thread scheduling.
///
/// smartcore's tree scans every training row at every node, so a fully grown tree costs about
/// O(n² · features tried) on `n` rows; limit `max_depth` or raise `min_samples_leaf` on large
/// data.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomForest;

impl Model for RandomForest {
    fn kind(&self) -> &str {
        KIND
    }
    fn description(&self) -> &str {
        "random forest of smartcore trees (bootstrap, features sampled per split), fitted in parallel"
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Binary, Task::Multiclass, Task::Regression]
    }
    fn space(&self) -> SearchSpace {
        SearchSpace::new(vec![
            ParamSpec::int("n_trees", "number of trees", 300, 1, 5000).search_int(100, 800, true),
            ParamSpec::int("max_depth", "maximum depth of a tree; 0 = unlimited", 0, 0, 64).search_int(4, 40, true),
            ParamSpec::int("min_samples_leaf", "minimum (bootstrap-weighted) rows in a leaf", 1, 1, 1000)
                .search_int(1, 50, true),
            ParamSpec::float(
                "max_features",
                "share of the features tried at each split (at least one); 0 = sqrt(n_features) for \
                 classification, n_features/3 for regression",
                0.0,
                0.0,
                1.0,
            )
            .search_float(0.05, 1.0, false),
            ParamSpec::choice("criterion", "split quality (classification only)", "gini", &["gini", "entropy"])
                .searched(),
        ])
    }
    fn cost(&self, rows: usize, features: usize, params: &Params) -> f64 {
        let lg = (rows.max(2) as f64).log2();
        self.space().number(params, "n_trees", 100.0) * rows as f64 * lg * (features.max(1) as f64).sqrt() * 10.0
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        let task = check_task(KIND, self.tasks(), data)?;
        let n_trees = params.usize("n_trees")?;
        let max_depth = params.usize("max_depth")?;
        let min_leaf = params.usize("min_samples_leaf")?;
        let share = params.f64("max_features")?;
        let p = data.n_features();
        let mtry = if share > 0.0 {
            ((share * p as f64).round() as usize).clamp(1, p)
        } else if task.is_classification() {
            ((p as f64).sqrt().round() as usize).clamp(1, p)
        } else {
            (p / 3).clamp(1, p)
        };
        let x = to_dense(KIND, &data.x)?;
        let trees: Vec<Tree> = if task.is_classification() {
            let y: Vec<i32> = class_targets(KIND, data)?.into_iter().map(|c| c as i32).collect();
            let criterion = match params.str("criterion")? {
                "entropy" => SplitCriterion::Entropy,
                _ => SplitCriterion::Gini,
            };
            in_pool(KIND, ctx.threads, || {
                (0..n_trees)
                    .into_par_iter()
                    .map(|t| {
                        ctx.check_deadline(KIND)?;
                        let mut prm = RandomForestClassifierParameters::default()
                            .with_n_trees(1)
                            .with_m(mtry)
                            .with_min_samples_leaf(min_leaf)
                            .with_criterion(criterion.clone())
                            .with_seed(derive_seed(ctx.seed, t as u64));
                        if max_depth > 0 {
                            prm = prm.with_max_depth(max_depth as u16);
                        }
                        Ok(Tree::Clf(Clf::fit(&x, &y, prm).map_err(sc_err(KIND))?))
                    })
                    .collect::<Result<Vec<Tree>>>()
            })??
        } else {
            let y = value_targets(KIND, data)?;
            in_pool(KIND, ctx.threads, || {
                (0..n_trees)
                    .into_par_iter()
                    .map(|t| {
                        ctx.check_deadline(KIND)?;
                        let mut prm = RandomForestRegressorParameters::default()
                            .with_n_trees(1)
                            .with_m(mtry)
                            .with_min_samples_leaf(min_leaf)
                            .with_seed(derive_seed(ctx.seed, t as u64));
                        if max_depth > 0 {
                            prm = prm.with_max_depth(max_depth as u16);
                        }
                        Ok(Tree::Reg(Reg::fit(&x, &y, prm).map_err(sc_err(KIND))?))
                    })
                    .collect::<Result<Vec<Tree>>>()
            })??
        };
        Ok(Box::new(FittedForest { trees, n_features: p, n_classes: data.n_classes() }))
    }
}

enum Tree {
    Clf(Clf),
    Reg(Reg),
}

struct FittedForest {
    trees: Vec<Tree>,
    n_features: usize,
    n_classes: usize,
}

impl FittedModel for FittedForest {
    fn save(&self) -> Result<Vec<u8>> {
        Err(Error::model(
            KIND,
            "cannot go into a model artifact: smartcore does not expose its fitted trees (use forest.random_forest)",
        ))
    }
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        check_features(KIND, self.n_features, data)?;
        let n = data.n_rows();
        let t = self.trees.len() as f64;
        let mut proba = Array2::zeros((n, self.n_classes));
        let mut values = vec![0.0; n];
        for (c, chunk) in data.x.axis_chunks_iter(Axis(0), CHUNK).enumerate() {
            if chunk.nrows() == 0 {
                continue;
            }
            let xm = to_dense(KIND, &chunk.to_owned())?;
            let per_tree: Vec<Vec<f64>> = self
                .trees
                .par_iter()
                .map(|tree| match tree {
                    Tree::Clf(m) => Ok(m.predict(&xm).map_err(sc_err(KIND))?.into_iter().map(|v| v as f64).collect()),
                    Tree::Reg(m) => m.predict(&xm).map_err(sc_err(KIND)),
                })
                .collect::<Result<_>>()?;
            let base = c * CHUNK;
            // Sum in tree order, so the result does not depend on scheduling.
            for pred in &per_tree {
                for (i, v) in pred.iter().enumerate() {
                    if self.n_classes > 0 {
                        proba[[base + i, *v as usize]] += 1.0;
                    } else {
                        values[base + i] += v;
                    }
                }
            }
        }
        if self.n_classes > 0 {
            proba /= t;
            Ok(Predictions::Proba(proba))
        } else {
            Ok(Predictions::Values(values.into_iter().map(|v| v / t).collect()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testutil::*;
    use promoml_core::{Metric, ParamValue};

    fn small(n_trees: i64) -> Params {
        params(&[("n_trees", ParamValue::Int(n_trees)), ("max_depth", ParamValue::Int(8))])
    }

    #[test]
    fn binary_and_multiclass_hold_out() {
        let ds = blobs(500, 5, 2, 2.0, 1);
        let (train, test) = split(&ds, 0.7);
        let pred = fit_predict(&RandomForest, &train, &test, &small(40), 1);
        let auc = score(Metric::RocAuc, &test, &pred);
        assert!(auc > 0.9, "auc {auc}");
        let multi = blobs(600, 4, 3, 3.0, 2);
        let (train, test) = split(&multi, 0.7);
        let given = params(&[("n_trees", ParamValue::Int(30)), ("criterion", ParamValue::Str("entropy".into()))]);
        let pred = fit_predict(&RandomForest, &train, &test, &given, 1);
        assert!(score(Metric::Accuracy, &test, &pred) > 0.85);
    }

    #[test]
    fn regression_hold_out() {
        let ds = linear(500, 3, 0.3, 4);
        let (train, test) = split(&ds, 0.75);
        let pred = fit_predict(&RandomForest, &train, &test, &small(40), 1);
        let r2 = score(Metric::R2, &test, &pred);
        assert!(r2 > 0.8, "r2 {r2}");
    }

    #[test]
    fn identical_regardless_of_threads() {
        let ds = blobs(300, 4, 2, 1.0, 5);
        let (train, test) = split(&ds, 0.7);
        let p = RandomForest.space().resolve(&small(24), "m").unwrap();
        let run = |threads: usize, seed: u64| {
            let ctx = FitContext { threads, ..FitContext::new(seed) };
            let mut q = test.clone();
            q.y = None;
            RandomForest.fit(&train, &p, &ctx).unwrap().predict(&q).unwrap()
        };
        let a = run(1, 3);
        assert_eq!(a, run(2, 3));
        assert_eq!(a, run(0, 3));
        assert_ne!(a, run(1, 4));
    }

    #[test]
    fn params_checked_and_errors() {
        check_space(&RandomForest);
        rejects(&RandomForest, "n_trees", ParamValue::Int(0));
        rejects(&RandomForest, "max_depth", ParamValue::Int(65));
        rejects(&RandomForest, "max_features", ParamValue::Float(1.5));
        rejects(&RandomForest, "criterion", ParamValue::Str("mse".into()));
        let ds = blobs(40, 2, 2, 1.0, 1);
        let only0: Vec<usize> = (0..40).step_by(2).collect();
        let e = RandomForest.fit(&ds.subset(&only0), &RandomForest.space().defaults(), &FitContext::new(0));
        assert!(e.err().unwrap().to_string().contains("at least two distinct classes"));
    }
}
