//! promoml plugin: fast, parallel, deterministic tree ensembles.
//!
//! * `forest.random_forest`: Breiman's random forest (bootstrap samples, best split among a
//!   random subset of features at every node).
//! * `forest.extra_trees`: extremely randomised trees (one random threshold per candidate
//!   feature, the whole training set per tree by default).
//! * `forest.uplift_random_forest`: uplift trees split on the divergence between the arms'
//!   outcome rates (KL, Euclidean, chi-square), as causalml's `UpliftRandomForestClassifier`;
//!   for uplift pipelines (see the [`uplift`] module).
//!
//! Both handle binary and multiclass classification (probabilities are the mean over trees of
//! the leaves' class frequencies) and regression (the mean of the leaves' means).
//!
//! How it works: each feature is cut once per fit into at most `max_bins` quantile bins and the
//! training matrix becomes one byte per value, column-major. Trees search splits over these
//! codes with per-node histograms (small nodes sort their few rows instead), are grown in
//! parallel with rayon, and each tree draws its randomness from its own ChaCha8 stream derived
//! from the fit's seed and the tree's index, so a fit gives the same forest on any number of
//! threads. Fitted trees keep raw-value thresholds, so prediction needs no binning.
//!
//! ```
//! use promoml_core::{Dataset, FitContext, Params, Predictions, Registry};
//! use ndarray::array;
//!
//! let mut registry = Registry::new();
//! promoml_forest::register(&mut registry);
//! let model = registry.model("forest.random_forest").unwrap();
//! let mut data = Dataset::from_x(array![[0.0], [1.0], [2.0], [3.0]], vec!["x".into()]);
//! data.y = Some(vec![0.0, 0.0, 1.0, 1.0]);
//! data.classes = vec!["no".into(), "yes".into()];
//! let params = model.space().resolve(&Params::new(), "params").unwrap();
//! let fitted = model.fit(&data, &params, &FitContext::new(7)).unwrap();
//! let Predictions::Proba(p) = fitted.predict(&data).unwrap() else { unreachable!() };
//! assert!(p[[3, 1]] > 0.5 && p[[0, 1]] < 0.5);
//! ```

mod bins;
mod forest;
mod tree;
pub mod uplift;

#[cfg(test)]
mod tests;

pub use forest::{FittedForest, ForestConfig, MaxFeatures, SplitCriterion, fit_forest};

use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Registry, Result, SearchSpace, Task,
};

/// Register `forest.random_forest`, `forest.extra_trees` and `forest.uplift_random_forest`.
pub fn register(registry: &mut Registry) {
    registry.add_model(Forest::random_forest());
    registry.add_model(Forest::extra_trees());
    registry.add_model(uplift::UpliftForest);
}

/// A tree-ensemble model kind: random forest or extremely randomised trees.
#[derive(Debug, Clone)]
pub struct Forest {
    kind: &'static str,
    description: &'static str,
    random_splits: bool,
}

impl Forest {
    /// `forest.random_forest`.
    pub fn random_forest() -> Forest {
        Forest {
            kind: "forest.random_forest",
            description: "random forest: bootstrap samples, best histogram split over random feature subsets",
            random_splits: false,
        }
    }
    /// `forest.extra_trees`.
    pub fn extra_trees() -> Forest {
        Forest {
            kind: "forest.extra_trees",
            description: "extremely randomised trees: one random threshold per candidate feature",
            random_splits: true,
        }
    }
    /// The defaults of this kind.
    fn defaults(&self) -> ForestConfig {
        if self.random_splits { ForestConfig::extra_trees() } else { ForestConfig::random_forest() }
    }
    /// Settings from validated parameters (as returned by `space().resolve`).
    pub fn config(&self, params: &Params) -> Result<ForestConfig> {
        let max_features = match params.str("max_features")? {
            "auto" => MaxFeatures::Auto,
            "sqrt" => MaxFeatures::Sqrt,
            "log2" => MaxFeatures::Log2,
            "all" => MaxFeatures::All,
            "fraction" => MaxFeatures::Fraction(params.f64("max_features_fraction")?),
            other => return Err(Error::config("max_features", format!("unknown option \"{other}\""))),
        };
        let criterion = match params.str("criterion")? {
            "gini" => SplitCriterion::Gini,
            "entropy" => SplitCriterion::Entropy,
            other => return Err(Error::config("criterion", format!("unknown option \"{other}\""))),
        };
        Ok(ForestConfig {
            n_trees: params.usize("n_trees")?,
            max_depth: params.usize("max_depth")?,
            min_samples_leaf: params.usize("min_samples_leaf")?,
            max_features,
            bootstrap: params.bool("bootstrap")?,
            sample_fraction: params.f64("sample_fraction")?,
            max_bins: params.usize("max_bins")?,
            criterion,
            random_splits: self.random_splits,
        })
    }
}

impl Model for Forest {
    fn kind(&self) -> &str {
        self.kind
    }
    fn description(&self) -> &str {
        self.description
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Binary, Task::Multiclass, Task::Regression]
    }
    fn honours_weights(&self) -> bool {
        true
    }
    fn space(&self) -> SearchSpace {
        let d = self.defaults();
        SearchSpace::new(vec![
            ParamSpec::int("n_trees", "number of trees; more is never worse, only slower", d.n_trees as i64, 1, 10_000)
                .search_int(100, 1000, true),
            ParamSpec::int(
                "max_depth",
                "maximum depth of a tree; 0 grows until leaves are pure or min_samples_leaf stops them",
                0,
                0,
                128,
            ),
            ParamSpec::int("min_samples_leaf", "fewest training rows in a leaf", 1, 1, 10_000).search_int(1, 32, true),
            ParamSpec::choice(
                "max_features",
                "features drawn as split candidates at each node: auto (sqrt for classification, a third \
                 for regression), sqrt or log2 of the feature count, all, or fraction \
                 (max_features_fraction of them)",
                "auto",
                &["auto", "sqrt", "log2", "all", "fraction"],
            )
            .searched(),
            ParamSpec::float(
                "max_features_fraction",
                "share of the features drawn at each node when max_features = \"fraction\"",
                0.5,
                0.001,
                1.0,
            )
            .search_float(0.1, 1.0, false)
            .when("max_features", promoml_core::ParamValue::Str("fraction".into())),
            ParamSpec::flag(
                "bootstrap",
                "draw each tree's rows with replacement (otherwise each tree sees the rows once)",
                d.bootstrap,
            ),
            ParamSpec::float(
                "sample_fraction",
                "rows drawn per tree as a share of the training rows; below 1 fits large data faster",
                1.0,
                0.01,
                1.0,
            ),
            ParamSpec::int(
                "max_bins",
                "quantile bins per feature for split search (features with fewer distinct values keep one \
                 bin per value)",
                d.max_bins as i64,
                16,
                255,
            ),
            ParamSpec::choice(
                "criterion",
                "impurity for classification splits (regression always uses squared error)",
                "gini",
                &["gini", "entropy"],
            ),
        ])
    }
    fn cost(&self, rows: usize, features: usize, params: &Params) -> f64 {
        // Each tree goes through its rows at every level and tries about √features splits; the
        // factors are calibrated on measured fits (online-shoppers, 2 cores): extra trees grow
        // deeper trees and take about twice the time of a random forest.
        let lg = (rows.max(2) as f64).log2();
        let factor = if self.kind.ends_with("extra_trees") { 1.4 } else { 0.7 };
        self.space().number(params, "n_trees", 100.0) * rows as f64 * lg * (features.max(1) as f64).sqrt() * factor
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        let params = self.space().resolve(params, &format!("{}.params", self.kind))?;
        let cfg = self.config(&params)?;
        Ok(Box::new(fit_forest(self.kind, data, &cfg, ctx)?))
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedModel>> {
        Ok(Box::new(FittedForest::from_bytes(self.kind, bytes)?))
    }
}
