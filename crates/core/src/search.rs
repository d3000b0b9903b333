//! Sampling from a [`SearchSpace`] and the random-search optimiser (the baseline every other
//! optimiser must beat).

use crate::component::{Optimizer, OptimizerFactory, Rng};
use crate::{Domain, ParamValue, Params, SearchSpace};
use rand::Rng as _;

/// Draw one value uniformly (or log-uniformly) from `d`.
pub fn sample_domain(d: &Domain, rng: &mut Rng) -> ParamValue {
    match d {
        Domain::Float { low, high, log } => {
            let u: f64 = rng.random();
            ParamValue::Float(if *log && *low > 0.0 {
                (low.ln() + u * (high.ln() - low.ln())).exp()
            } else {
                low + u * (high - low)
            })
        }
        Domain::Int { low, high, log } => {
            if *log && *low > 0 {
                let u: f64 = rng.random();
                let lo = (*low as f64 - 0.5).max(0.5).ln();
                let hi = (*high as f64 + 0.5).ln();
                ParamValue::Int(((lo + u * (hi - lo)).exp().round() as i64).clamp(*low, *high))
            } else {
                ParamValue::Int(rng.random_range(*low..=*high))
            }
        }
        Domain::Categorical(opts) => ParamValue::Str(opts[rng.random_range(0..opts.len())].clone()),
        Domain::Bool => ParamValue::Bool(rng.random()),
    }
}

/// Sample every searched parameter of `space` (others keep `fixed` or their default).
/// Parameters whose condition does not hold are left at their defaults.
pub fn sample_space(space: &SearchSpace, fixed: &Params, rng: &mut Rng) -> Params {
    let mut p = space.defaults();
    p.extend(fixed.clone());
    for spec in &space.params {
        if let Some(d) = &spec.search
            && !fixed.contains_key(&spec.name)
            && space.is_active(spec, &p)
        {
            p.insert(spec.name.clone(), sample_domain(d, rng));
        }
    }
    p
}

/// Random search: every trial independent and uniform over the space.
#[derive(Debug, Default)]
pub struct RandomSearch;

impl Optimizer for RandomSearch {
    fn ask(&mut self, space: &SearchSpace, rng: &mut Rng) -> Params {
        sample_space(space, &Params::new(), rng)
    }
    fn tell(&mut self, _params: &Params, _value: Option<f64>) {}
}

/// Registers [`RandomSearch`] as `random`.
#[derive(Debug, Default)]
pub struct RandomSearchFactory;

impl OptimizerFactory for RandomSearchFactory {
    fn kind(&self) -> &str {
        "random"
    }
    fn description(&self) -> &str {
        "random search: independent uniform (or log-uniform) samples of the search space"
    }
    fn build(&self, _startup_trials: usize) -> Box<dyn Optimizer> {
        Box::new(RandomSearch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamSpec;
    use rand::SeedableRng;

    #[test]
    fn samples_stay_in_range_and_respect_conditions() {
        let space = SearchSpace::new(vec![
            ParamSpec::int("k", "", 5, 1, 100).search_int(1, 50, true),
            ParamSpec::choice("kernel", "", "linear", &["linear", "rbf"]).searched(),
            ParamSpec::float("gamma", "", 0.1, 1e-6, 1e3)
                .search_float(1e-4, 10.0, true)
                .when("kernel", ParamValue::Str("rbf".into())),
        ]);
        let mut rng = Rng::seed_from_u64(7);
        let mut saw_gamma_changed = false;
        for _ in 0..200 {
            let p = sample_space(&space, &Params::new(), &mut rng);
            let ParamValue::Int(k) = p["k"] else { panic!() };
            assert!((1..=50).contains(&k));
            let ParamValue::Float(g) = p["gamma"] else { panic!() };
            if p["kernel"] == ParamValue::Str("linear".into()) {
                assert_eq!(g, 0.1);
            } else if g != 0.1 {
                saw_gamma_changed = true;
                assert!((1e-4..=10.0).contains(&g));
            }
        }
        assert!(saw_gamma_changed);
    }
}
