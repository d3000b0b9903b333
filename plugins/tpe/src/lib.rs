//! promoml plugin: the Tree-structured Parzen Estimator (TPE) hyper-parameter optimiser.
//!
//! * `tpe`: TPE with Optuna 5.0's defaults for one objective: the always-active parameters
//!   modelled jointly (multivariate TPE, Falkner et al. 2018), conditional ones one by one;
//!   `startup_trials` random trials first, `gamma(n) = min(ceil(0.1 n), 25)`, 24 candidates,
//!   prior weight 1, magic clip, Optuna's observation weights and bandwidths, and a constant
//!   liar for trials asked and not yet told.
//! * `tpe.univariate`: the same with every parameter modelled on its own (Bergstra et al.
//!   2011; Optuna's `multivariate=False`).
//! * `tpe.crate`: the `tpe` crate from crates.io (sile/tpe 0.3) behind the same trait, for
//!   comparison: one crate optimiser per parameter, the crate's own estimators and defaults
//!   ([`CrateTpe`] documents how each domain is mapped and what the crate cannot express).
//!
//! `tpe` is the joint model because it measured better on every benchmark function
//! (`cargo run --release -p promoml-tpe --example tpe_bench`, reports/benchmarks/tpe.md):
//! median best after 100 trials over 20 seeds, Branin 0.419 vs 0.453, Hartmann-6 -3.229 vs
//! -3.061, 10-D Rosenbrock 2,822 vs 13,449, and its ask is cheaper (one exp per kernel instead
//! of one per kernel and parameter).
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

mod crate_tpe;
mod parzen;
mod tpe;

#[cfg(test)]
mod crate_tests;
#[cfg(test)]
mod tests;

pub use crate_tpe::{Bridge, CrateTpe, CrateTpeFactory};
pub use tpe::{Tpe, TpeConfig, default_gamma};

use promoml_core::{Optimizer, OptimizerFactory, Registry};

/// Register `tpe` (multivariate), `tpe.univariate` and `tpe.crate` (the `tpe` crate).
pub fn register(registry: &mut Registry) {
    registry.add_optimizer(TpeFactory::multivariate());
    registry.add_optimizer(TpeFactory::univariate());
    registry.add_optimizer(CrateTpeFactory);
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
    /// `tpe`: always-active parameters modelled jointly (Optuna 5.0's default).
    pub fn multivariate() -> TpeFactory {
        TpeFactory {
            kind: "tpe",
            description: "Tree-structured Parzen Estimator, joint over always-active parameters (Optuna 5.0 defaults)",
            config: TpeConfig::default(),
        }
    }
    /// `tpe.univariate`: every parameter modelled on its own.
    pub fn univariate() -> TpeFactory {
        TpeFactory {
            kind: "tpe.univariate",
            description: "Tree-structured Parzen Estimator, one parameter at a time (Optuna's multivariate=False)",
            config: TpeConfig { multivariate: false, ..TpeConfig::default() },
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
