//! `tpe.crate`: the `tpe` crate (crates.io, by sile; `sile_tpe` in Cargo.toml) behind our
//! [`Optimizer`] trait, as a second TPE to compare ours against.
//!
//! The crate optimises one parameter per `TpeOptimizer` (independent, univariate TPE as in
//! Bergstra et al. 2011), with its own Parzen estimator for numbers and a histogram for
//! options. How our search spaces map onto it:
//!
//! | our domain | the crate's range | proposal |
//! |---|---|---|
//! | float `[low, high]` | `parzen_estimator()` on `[low, high)` | the value, clamped to `[low, high]` |
//! | float, `log` | `parzen_estimator()` on `[ln low, ln high)` | `exp` of it |
//! | int `[low, high]` | `parzen_estimator()` on `[low − 0.5, high + 0.5)` | rounded, clamped |
//! | int, `log` | `parzen_estimator()` on `[ln max(low − 0.5, 0.5), ln(high + 0.5))` | `exp`, rounded |
//! | categorical (n options), boolean | `histogram_estimator()` on `categorical_range(n)` | the option at that index |
//!
//! What the crate cannot express, and what is done instead:
//!
//! * **Conditional parameters**: the crate has no notion of them, but takes NaN for "not used
//!   in this trial". A parameter whose condition does not hold is told NaN (so its estimator
//!   ignores that trial) and is not asked (it keeps its default), exactly as `tpe` treats it.
//! * **Failed or pruned trials** (`tell(…, None)`) and NaN scores are told `+∞`: ranked after
//!   every finished trial, as in `tpe`.
//! * **Start-up trials**: the crate has none; the first `startup_trials` asks sample the space
//!   at random (like `random`) and are told to the crate like any other trial.
//! * **Trials asked and not yet told** (parallel trials): the crate has no constant liar, so
//!   parallel asks are independent draws from the same estimators.
//! * **Values outside the searched range** (a model's default trial, a fixed value) are told
//!   NaN for that parameter: the crate refuses them, and `tpe` ignores them too.
//! * The crate's `gamma` is a fixed share (0.1 of the trials form the "good" group, rounded
//!   up, no cap at 25) and its bandwidths have no prior weight setting; both keep the crate's
//!   defaults, as do its 24 candidates.
//!
//! Randomness: the crate draws from a `rand` 0.10 generator; [`Bridge`] hands it the
//! generator passed to [`Optimizer::ask`] (seeded from the pipeline's seed), so the same seed
//! and the same tells give the same proposals.

use promoml_core::search::sample_space;
use promoml_core::{Domain, Optimizer, OptimizerFactory, ParamValue, Params, Rng, SearchSpace};
use rand::RngCore as _;
use sile_tpe::{TpeOptimizer, categorical_range, histogram_estimator, parzen_estimator, range};

/// The generator passed to [`Optimizer::ask`], seen as a `rand` 0.10 generator by the `tpe`
/// crate (which depends on `rand` 0.10, while promoml uses 0.9). Every draw comes from the
/// wrapped generator, so nothing random escapes the pipeline's seed.
pub struct Bridge<'a>(pub &'a mut Rng);

impl rand_core_010::TryRng for Bridge<'_> {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

/// How one searched parameter is represented in the crate's scale.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    /// Real number (`ln` of it when `log`), clamped to `[low, high]` on the way back.
    Float { low: f64, high: f64, log: bool },
    /// Integer, modelled as a real on the half-open cell around each value (`ln` when `log`).
    Int { low: i64, high: i64, log: bool },
    /// Index of one of `n` options (a boolean is two: false, true).
    Options(usize),
}

impl Scale {
    fn of(d: &Domain) -> Scale {
        match d {
            Domain::Float { low, high, log } => Scale::Float { low: *low, high: *high, log: *log && *low > 0.0 },
            Domain::Int { low, high, log } => Scale::Int { low: *low, high: *high, log: *log && *low > 0 },
            Domain::Categorical(o) => Scale::Options(o.len()),
            Domain::Bool => Scale::Options(2),
        }
    }

    /// The crate's optimiser for this scale, or `None` when the domain holds one value only
    /// (nothing to search; the crate refuses empty ranges).
    fn optimizer(&self) -> Option<TpeOptimizer> {
        let made = match *self {
            Scale::Float { low, high, log: false } => {
                range(low, high).map(|r| TpeOptimizer::new(parzen_estimator(), r))
            }
            Scale::Float { low, high, log: true } => {
                range(low.ln(), high.ln()).map(|r| TpeOptimizer::new(parzen_estimator(), r))
            }
            Scale::Int { low, high, log: false } if high > low => {
                range(low as f64 - 0.5, high as f64 + 0.5).map(|r| TpeOptimizer::new(parzen_estimator(), r))
            }
            Scale::Int { low, high, log: true } if high > low => {
                range((low as f64 - 0.5).max(0.5).ln(), (high as f64 + 0.5).ln())
                    .map(|r| TpeOptimizer::new(parzen_estimator(), r))
            }
            Scale::Options(n) if n > 1 => categorical_range(n).map(|r| TpeOptimizer::new(histogram_estimator(), r)),
            _ => return None,
        };
        made.ok()
    }

    /// `v` in the crate's scale, or NaN when it is not a value of the searched domain.
    fn encode(&self, v: Option<&ParamValue>, domain: &Domain) -> f64 {
        let real = match v {
            Some(ParamValue::Float(x)) => Some(*x),
            Some(ParamValue::Int(i)) => Some(*i as f64),
            _ => None,
        };
        let x = match (*self, v) {
            (Scale::Float { low, high, log }, _) => match real {
                Some(x) if (low..=high).contains(&x) => {
                    if log {
                        x.ln()
                    } else {
                        x
                    }
                }
                _ => f64::NAN,
            },
            (Scale::Int { low, high, log }, Some(ParamValue::Int(i))) if (low..=high).contains(i) => {
                if log {
                    (*i as f64).ln()
                } else {
                    *i as f64
                }
            }
            (Scale::Options(_), Some(ParamValue::Str(s))) => match domain {
                Domain::Categorical(o) => o.iter().position(|x| x == s).map_or(f64::NAN, |i| i as f64),
                _ => f64::NAN,
            },
            (Scale::Options(_), Some(ParamValue::Bool(b))) => f64::from(u8::from(*b)),
            _ => f64::NAN,
        };
        // `high` itself lies at the end of the crate's half-open range: move it just inside.
        match *self {
            Scale::Float { high, log, .. } if x.is_finite() => {
                let end = if log { high.ln() } else { high };
                if x >= end { end.next_down() } else { x }
            }
            _ => x,
        }
    }

    /// The parameter value for the crate's proposal `x` (always inside the searched domain).
    fn decode(&self, x: f64, domain: &Domain) -> ParamValue {
        match *self {
            Scale::Float { low, high, log } => {
                let v = if log { x.exp() } else { x };
                ParamValue::Float(if v.is_finite() { v.clamp(low, high) } else { low })
            }
            Scale::Int { low, high, log } => {
                let v = if log { x.exp() } else { x };
                ParamValue::Int(if v.is_finite() { (v.round() as i64).clamp(low, high) } else { low })
            }
            Scale::Options(n) => {
                let i = if x.is_finite() { (x.max(0.0) as usize).min(n - 1) } else { 0 };
                match domain {
                    Domain::Categorical(o) => ParamValue::Str(o[i].clone()),
                    _ => ParamValue::Bool(i == 1),
                }
            }
        }
    }
}

/// One searched parameter: its scale and the crate's optimiser for it.
#[derive(Debug)]
struct Dim {
    name: String,
    domain: Domain,
    scale: Scale,
    /// `None` when the domain holds a single value.
    optimizer: Option<TpeOptimizer>,
}

/// `tpe.crate`: one `tpe::TpeOptimizer` per searched parameter (see the module docs for how
/// each domain is mapped), after `startup_trials` random trials.
#[derive(Debug)]
pub struct CrateTpe {
    startup_trials: usize,
    /// The space of the last ask; the dimensions below are built from it.
    space: Option<SearchSpace>,
    dims: Vec<Dim>,
    /// Every told trial, kept to rebuild the crate's optimisers for another space or a copy.
    history: Vec<(Params, Option<f64>)>,
}

impl CrateTpe {
    /// A fresh optimiser that samples `startup_trials` trials at random before modelling.
    pub fn new(startup_trials: usize) -> CrateTpe {
        CrateTpe { startup_trials, space: None, dims: Vec::new(), history: Vec::new() }
    }

    /// Trials told so far.
    pub fn told(&self) -> usize {
        self.history.len()
    }

    /// Build one dimension per searched parameter of `space` and tell them the history.
    fn rebuild(&mut self, space: &SearchSpace) {
        self.dims = space
            .params
            .iter()
            .filter_map(|p| {
                let domain = p.search.clone()?;
                let scale = Scale::of(&domain);
                Some(Dim { name: p.name.clone(), optimizer: scale.optimizer(), domain, scale })
            })
            .collect();
        self.space = Some(space.clone());
        for (params, value) in std::mem::take(&mut self.history) {
            self.record(params, value);
        }
    }

    /// Tell every dimension one trial and keep it in the history.
    fn record(&mut self, params: Params, value: Option<f64>) {
        let loss = value.filter(|v| !v.is_nan()).unwrap_or(f64::INFINITY);
        if let Some(space) = &self.space {
            for dim in &mut self.dims {
                let Some(opt) = &mut dim.optimizer else { continue };
                let active = space.get(&dim.name).is_some_and(|spec| space.is_active(spec, &params));
                let x = if active { dim.scale.encode(params.get(&dim.name), &dim.domain) } else { f64::NAN };
                // Cannot fail: `x` is NaN or inside the range, and `loss` is not NaN.
                let _ = opt.tell(x, loss);
            }
        }
        self.history.push((params, value));
    }
}

impl Clone for CrateTpe {
    /// A copy with the same history (the crate's optimisers are not `Clone`: they are rebuilt
    /// by telling the copy every trial again).
    fn clone(&self) -> Self {
        let mut copy = CrateTpe {
            startup_trials: self.startup_trials,
            space: None,
            dims: Vec::new(),
            history: self.history.clone(),
        };
        if let Some(space) = &self.space {
            copy.rebuild(space);
        }
        copy
    }
}

impl Optimizer for CrateTpe {
    fn ask(&mut self, space: &SearchSpace, rng: &mut Rng) -> Params {
        if self.space.as_ref() != Some(space) {
            self.rebuild(space);
        }
        if self.history.len() < self.startup_trials {
            return sample_space(space, &Params::new(), rng);
        }
        let mut p = space.defaults();
        for spec in &space.params {
            if spec.search.is_none() || !space.is_active(spec, &p) {
                continue;
            }
            let Some(dim) = self.dims.iter_mut().find(|d| d.name == spec.name) else { continue };
            let value = match &mut dim.optimizer {
                Some(opt) => {
                    let Ok(x) = opt.ask(&mut Bridge(rng));
                    dim.scale.decode(x, &dim.domain)
                }
                // A single-value domain: its one value.
                None => dim.scale.decode(f64::NEG_INFINITY, &dim.domain),
            };
            p.insert(spec.name.clone(), value);
        }
        p
    }

    fn tell(&mut self, params: &Params, value: Option<f64>) {
        self.record(params.clone(), value);
    }
}

/// Registers [`CrateTpe`] as `tpe.crate`.
#[derive(Debug, Default)]
pub struct CrateTpeFactory;

impl OptimizerFactory for CrateTpeFactory {
    fn kind(&self) -> &str {
        "tpe.crate"
    }
    fn description(&self) -> &str {
        "the `tpe` crate 0.3 (sile): univariate TPE, one estimator per parameter, crate defaults (gamma 0.1, 24 candidates)"
    }
    fn build(&self, startup_trials: usize) -> Box<dyn Optimizer> {
        Box::new(CrateTpe::new(startup_trials))
    }
}
