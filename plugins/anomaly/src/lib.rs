//! promoml plugin: unsupervised anomaly detectors, and pipeline steps that use any registered
//! detector.
//!
//! Detectors (behind [`promoml_core::AnomalyDetector`]: fitted on rows without labels, they score
//! any rows, higher = more abnormal):
//!
//! * `anomaly.isolation_forest`: isolation forest (our implementation, see [`iforest`]).
//! * `anomaly.ecod`: ECOD, empirical-CDF tail probabilities (see [`ecod`]); parameter-free.
//!
//! Pipeline steps ([`steps`]), which take the detector kind as a setting and so work with any
//! detector in the registry (the burn plugin's autoencoder included):
//!
//! * cleaner `anomaly.filter`: drop the most abnormal training rows (a contamination share, a
//!   score threshold, or an automatic threshold); rows to predict are never dropped.
//! * feature `anomaly.score`: an `anomaly_score` column on training and new rows alike.
//! * cleaner `anomaly.corrupt`: for robustness experiments, corrupt a seeded share of training
//!   rows (extreme values and flipped labels) and record which.
//!
//! Every detector also declares `contamination`, the share of rows expected to be abnormal: it
//! never changes the scores, only where a threshold is drawn (as in PyOD).
//!
//! ```
//! use promoml_core::{FitContext, Params, Registry};
//! use ndarray::array;
//!
//! let mut registry = Registry::new();
//! promoml_anomaly::register(&mut registry);
//! let detector = registry.detector("anomaly.ecod").unwrap();
//! let x = array![[0.0, 1.0], [0.1, 1.1], [0.2, 0.9], [-0.1, 1.0], [9.0, -8.0]];
//! let params = detector.space().resolve(&Params::new(), "params").unwrap();
//! let fitted = detector.fit(&x, &params, &FitContext::new(7)).unwrap();
//! let scores = fitted.score(&x).unwrap();
//! assert!(scores[4] > scores[0]);
//! ```

pub mod ecod;
pub mod iforest;
pub mod steps;

#[cfg(test)]
mod tests;

use ndarray::Array2;
use promoml_core::{
    AnomalyDetector, Error, FitContext, FittedDetector, ParamSpec, Params, ParamsExt, Registry, Result, SearchSpace,
};

pub use ecod::{FittedEcod, fit_ecod};
pub use iforest::{FittedIsolationForest, IsolationForestConfig, fit_isolation_forest};

/// Register the detectors and the `anomaly.*` pipeline steps.
pub fn register(registry: &mut Registry) {
    registry.add_detector(IsolationForest);
    registry.add_detector(Ecod);
    registry.add_cleaner(steps::FilterFactory);
    registry.add_cleaner(steps::CorruptFactory);
    registry.add_feature(steps::ScoreFactory);
}

/// An error unless `x` has `expected` columns and only finite values.
pub(crate) fn check_width(kind: &str, expected: usize, x: &Array2<f64>) -> Result<()> {
    if x.ncols() != expected {
        return Err(Error::model(kind, format!("fitted on {expected} features, asked to score {}", x.ncols())));
    }
    if let Some(((i, j), _)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::model(kind, format!("value at row {}, feature {} is not finite", i + 1, j + 1)));
    }
    Ok(())
}

fn contamination_spec() -> ParamSpec {
    ParamSpec::float(
        "contamination",
        "share of rows expected to be abnormal; sets where thresholds are drawn, never the scores",
        0.1,
        0.0001,
        0.5,
    )
}

/// `anomaly.isolation_forest`.
#[derive(Debug, Clone, Copy, Default)]
pub struct IsolationForest;

impl IsolationForest {
    /// Settings from validated parameters.
    pub fn config(params: &Params) -> Result<IsolationForestConfig> {
        Ok(IsolationForestConfig {
            n_trees: params.usize("n_trees")?,
            max_samples: params.usize("max_samples")?,
            max_features: params.f64("max_features")?,
        })
    }
}

impl AnomalyDetector for IsolationForest {
    fn kind(&self) -> &str {
        "anomaly.isolation_forest"
    }
    fn description(&self) -> &str {
        "isolation forest: random cuts isolate abnormal rows in few steps (Liu et al. 2008)"
    }
    fn space(&self) -> SearchSpace {
        let d = IsolationForestConfig::default();
        SearchSpace::new(vec![
            ParamSpec::int(
                "n_trees",
                "number of isolation trees; more trees, steadier scores",
                d.n_trees as i64,
                1,
                10_000,
            )
            .search_int(50, 1000, true),
            ParamSpec::int(
                "max_samples",
                "rows drawn without replacement per tree (capped at the training rows)",
                d.max_samples as i64,
                2,
                1_000_000,
            )
            .search_int(64, 1024, true),
            ParamSpec::float("max_features", "share of the features each tree may cut on", d.max_features, 0.01, 1.0)
                .search_float(0.3, 1.0, false),
            contamination_spec(),
        ])
    }
    fn fit(&self, x: &Array2<f64>, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedDetector>> {
        let params = self.space().resolve(params, &format!("{}.params", self.kind()))?;
        let cfg = IsolationForest::config(&params)?;
        Ok(Box::new(fit_isolation_forest(self.kind(), x, &cfg, ctx)?))
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedDetector>> {
        Ok(Box::new(FittedIsolationForest::from_bytes(self.kind(), bytes)?))
    }
}

/// `anomaly.ecod`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ecod;

impl AnomalyDetector for Ecod {
    fn kind(&self) -> &str {
        "anomaly.ecod"
    }
    fn description(&self) -> &str {
        "ECOD: summed empirical-CDF tail log-probabilities, skewness-corrected (Li et al. 2022); parameter-free"
    }
    fn space(&self) -> SearchSpace {
        SearchSpace::new(vec![contamination_spec()])
    }
    fn fit(&self, x: &Array2<f64>, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedDetector>> {
        self.space().resolve(params, &format!("{}.params", self.kind()))?;
        ctx.check_deadline(self.kind())?;
        Ok(Box::new(fit_ecod(self.kind(), x)?))
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedDetector>> {
        Ok(Box::new(FittedEcod::from_bytes(self.kind(), bytes)?))
    }
}
