//! promoml plugin: the Tree-structured Parzen Estimator (TPE) hyper-parameter optimiser.
//!
//! * `tpe`: univariate TPE with Optuna's defaults (10 random start-up trials, `gamma(n) =
//!   min(ceil(0.1 n), 25)`, 24 candidates, prior weight 1, magic clip, Optuna's observation
//!   weights), plus a constant liar for trials asked and not yet told.
//! * `tpe.multivariate`: the same, with the always-active parameters modelled jointly
//!   (Falkner et al. 2018; Optuna's `multivariate=True`).
//!
//! Both minimise; float (linear and log), integer (linear and log), categorical and boolean
//! domains are supported, conditional parameters are sampled and modelled only where their
//! condition holds, and proposals always lie inside each parameter's searched domain. Given the
//! same generator and the same sequence of asks and tells, the proposals are the same.
//!
//! ```
//! use promoml_core::{Optimizer, ParamSpec, Params, ParamsExt, Registry, Rng, SearchSpace};
//! use rand::SeedableRng;
//!
//! let mut registry = Registry::new();
//! promoml_tpe::register(&mut registry);
//! let mut opt = registry.optimizer("tpe").unwrap().build(5);
//! let space = SearchSpace::new(vec![ParamSpec::float("x", "a number", 0.0, -5.0, 5.0).search_float(-5.0, 5.0, false)]);
//! let mut rng = Rng::seed_from_u64(1);
//! let mut best = f64::INFINITY;
//! for _ in 0..40 {
//!     let p = opt.ask(&space, &mut rng);
//!     let x = p.f64("x").unwrap();
//!     opt.tell(&p, Some((x - 1.0).powi(2)));
//!     best = best.min((x - 1.0).powi(2));
//! }
//! assert!(best < 0.05);
//! ```

mod parzen;
mod tpe;

#[cfg(test)]
mod tests;

pub use tpe::{Tpe, TpeConfig, default_gamma};

use promoml_core::{Optimizer, OptimizerFactory, Registry};

/// Register `tpe` (univariate) and `tpe.multivariate`.
pub fn register(registry: &mut Registry) {
    registry.add_optimizer(TpeFactory::univariate());
    registry.add_optimizer(TpeFactory::multivariate());
}

/// Builds [`Tpe`] optimisers with a fixed configuration (the start-up count comes from the
/// pipeline).
#[derive(Debug, Clone)]
pub struct TpeFactory {
    kind: &'static str,
    description: &'static str,
    config: TpeConfig,
}

impl TpeFactory {
    /// `tpe`: univariate TPE with Optuna's defaults.
    pub fn univariate() -> TpeFactory {
        TpeFactory {
            kind: "tpe",
            description: "Tree-structured Parzen Estimator, univariate (Optuna's TPESampler defaults)",
            config: TpeConfig::default(),
        }
    }
    /// `tpe.multivariate`: always-active parameters modelled jointly.
    pub fn multivariate() -> TpeFactory {
        TpeFactory {
            kind: "tpe.multivariate",
            description: "Tree-structured Parzen Estimator, joint over always-active parameters (Optuna's multivariate=True)",
            config: TpeConfig { multivariate: true, ..TpeConfig::default() },
        }
    }
    /// A factory registered as `kind` building optimisers with `config`; errors when `config`
    /// is invalid.
    pub fn new(kind: &'static str, description: &'static str, config: TpeConfig) -> promoml_core::Result<TpeFactory> {
        config.validate()?;
        Ok(TpeFactory { kind, description, config })
    }
}

impl OptimizerFactory for TpeFactory {
    fn kind(&self) -> &str {
        self.kind
    }
    fn description(&self) -> &str {
        self.description
    }
    fn build(&self, startup_trials: usize) -> Box<dyn Optimizer> {
        let config = TpeConfig { n_startup_trials: startup_trials, ..self.config.clone() };
        Box::new(Tpe::new(config).expect("factory configurations are validated when built"))
    }
}
