//! The TPE optimiser: history, encoding of parameters into the internal scale, the
//! below/above split and the choice among candidates.

use crate::parzen::{DimKind, KernelRules, Mixture, NumDomain, Obs};
use promoml_core::search::sample_space;
use promoml_core::{Domain, Error, Optimizer, ParamSpec, ParamValue, Params, Result, Rng, SearchSpace};

/// Settings of a [`Tpe`] optimiser. The defaults are Optuna 5.0's `TPESampler` defaults for a
/// single objective (multivariate, constant liar on).
#[derive(Debug, Clone, PartialEq)]
pub struct TpeConfig {
    /// Trials sampled at random (like random search) before the model is used.
    pub n_startup_trials: usize,
    /// Candidates drawn from `l(x)` per parameter (or per joint draw); the one with the largest
    /// `l(x) / g(x)` is proposed.
    pub n_ei_candidates: usize,
    /// Weight of the prior kernel in every estimator, relative to one observation.
    pub prior_weight: f64,
    /// Optuna's "magic clip" of bandwidths from below (`range / min(100, 1 + kernels)`).
    pub consider_magic_clip: bool,
    /// Let the outermost kernels' bandwidths reach the ends of the domain.
    pub consider_endpoints: bool,
    /// Model the always-active parameters jointly (Falkner et al. 2018; Optuna's
    /// `multivariate=True`); conditional parameters stay univariate.
    pub multivariate: bool,
    /// Count trials asked but not yet told as bad ones ("above"), so parallel asks spread out.
    pub constant_liar: bool,
}

impl Default for TpeConfig {
    fn default() -> Self {
        TpeConfig {
            n_startup_trials: 10,
            n_ei_candidates: 24,
            prior_weight: 1.0,
            consider_magic_clip: true,
            consider_endpoints: false,
            multivariate: true,
            constant_liar: true,
        }
    }
}

impl TpeConfig {
    /// Check the settings; errors name the setting at fault.
    pub fn validate(&self) -> Result<()> {
        if self.n_ei_candidates == 0 {
            return Err(Error::config("tpe.n_ei_candidates", "must be at least 1"));
        }
        if !(self.prior_weight.is_finite() && self.prior_weight > 0.0) {
            return Err(Error::config(
                "tpe.prior_weight",
                format!("must be a positive finite number, got {}", self.prior_weight),
            ));
        }
        Ok(())
    }
}

/// Optuna's default `gamma`: the best `min(ceil(0.1 n), 25)` of `n` finished trials form the
/// "below" group.
pub fn default_gamma(n: usize) -> usize {
    n.div_ceil(10).min(25)
}

/// One told trial.
#[derive(Debug, Clone)]
struct Told {
    params: Params,
    /// `None` when the trial failed: ranked after every finished one.
    value: Option<f64>,
}

/// How a searched parameter is represented inside the model.
#[derive(Debug, Clone, Copy)]
enum Enc {
    /// Real number, `ln` of the value when `log`.
    Float { low: f64, high: f64, log: bool },
    /// Integer; `log` ones are modelled as continuous in `ln` space on `[low - 0.5, high + 0.5]`.
    Int { low: i64, high: i64, log: bool },
    /// Option index.
    Cat(usize),
    /// `false` = 0, `true` = 1.
    Bool,
}

impl Enc {
    fn of(d: &Domain) -> Enc {
        match d {
            Domain::Float { low, high, log } => Enc::Float { low: *low, high: *high, log: *log && *low > 0.0 },
            Domain::Int { low, high, log } => Enc::Int { low: *low, high: *high, log: *log && *low > 0 },
            Domain::Categorical(o) => Enc::Cat(o.len()),
            Domain::Bool => Enc::Bool,
        }
    }

    /// The model's view of this dimension, or `None` when it has a single value.
    fn kind(&self) -> Option<DimKind> {
        Some(match *self {
            Enc::Float { low, high, log } if high > low => {
                if log {
                    DimKind::Num(NumDomain { low: low.ln(), high: high.ln(), step: 0.0 })
                } else {
                    DimKind::Num(NumDomain { low, high, step: 0.0 })
                }
            }
            Enc::Int { low, high, log } if high > low => {
                if log {
                    let (lo, hi) = (((low as f64) - 0.5).max(0.5).ln(), ((high as f64) + 0.5).ln());
                    DimKind::Num(NumDomain { low: lo, high: hi, step: 0.0 })
                } else {
                    DimKind::Num(NumDomain { low: low as f64, high: high as f64, step: 1.0 })
                }
            }
            Enc::Cat(n) if n > 1 => DimKind::Cat(n),
            Enc::Bool => DimKind::Cat(2),
            _ => return None,
        })
    }

    /// `v` in the internal scale, or NaN when it is not a value of the searched domain.
    fn encode(&self, v: Option<&ParamValue>, domain: &Domain) -> f64 {
        match (*self, v) {
            (Enc::Float { low, high, log }, Some(ParamValue::Float(x))) if (low..=high).contains(x) => {
                if log {
                    x.ln()
                } else {
                    *x
                }
            }
            (Enc::Float { low, high, log }, Some(ParamValue::Int(i))) if (low..=high).contains(&(*i as f64)) => {
                if log {
                    (*i as f64).ln()
                } else {
                    *i as f64
                }
            }
            (Enc::Int { low, high, log }, Some(ParamValue::Int(i))) if (low..=high).contains(i) => {
                if log {
                    (*i as f64).ln()
                } else {
                    *i as f64
                }
            }
            (Enc::Cat(_), Some(ParamValue::Str(s))) => match domain {
                Domain::Categorical(o) => o.iter().position(|x| x == s).map_or(f64::NAN, |i| i as f64),
                _ => f64::NAN,
            },
            (Enc::Bool, Some(ParamValue::Bool(b))) => f64::from(u8::from(*b)),
            _ => f64::NAN,
        }
    }

    /// The parameter value for internal value `x` (always inside the searched domain).
    fn decode(&self, x: f64, domain: &Domain) -> ParamValue {
        match *self {
            Enc::Float { low, high, log } => {
                let v = if log { x.exp() } else { x };
                ParamValue::Float(if v.is_finite() { v.clamp(low, high) } else { low })
            }
            Enc::Int { low, high, log } => {
                let v = if log { x.exp() } else { x };
                ParamValue::Int(if v.is_finite() { (v.round() as i64).clamp(low, high) } else { low })
            }
            Enc::Cat(n) => match domain {
                Domain::Categorical(o) => ParamValue::Str(o[(x as usize).min(n.saturating_sub(1))].clone()),
                _ => unreachable!("Enc::Cat comes from a categorical domain"),
            },
            Enc::Bool => ParamValue::Bool(x >= 0.5),
        }
    }

    /// The value of a dimension with a single possible value.
    fn only_value(&self, domain: &Domain) -> ParamValue {
        self.decode(
            match *self {
                Enc::Float { low, log: true, .. } => low.ln(),
                Enc::Float { low, .. } => low,
                Enc::Int { low, log: true, .. } => (low as f64).ln(),
                Enc::Int { low, .. } => low as f64,
                _ => 0.0,
            },
            domain,
        )
    }
}

/// One searched parameter of the cached space.
#[derive(Debug, Clone)]
struct Column {
    /// Index into `SearchSpace::params`.
    spec: usize,
    domain: Domain,
    enc: Enc,
}

/// The history encoded for one search space, extended as trials are told.
#[derive(Debug, Clone)]
struct Encoded {
    space: SearchSpace,
    cols: Vec<Column>,
    /// Row-major, one row per told trial, NaN where a parameter was inactive or outside its
    /// searched domain.
    rows: Vec<f64>,
    /// Number of rows.
    n_rows: usize,
    /// Per column, the trials with a value there, ascending by value (ties by trial order):
    /// kept up to date by insertion so no ask has to sort the history.
    sorted: Vec<Vec<u32>>,
}

impl Encoded {
    fn new(space: &SearchSpace) -> Encoded {
        let cols = space
            .params
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.search.as_ref().map(|d| Column { spec: i, domain: d.clone(), enc: Enc::of(d) }))
            .collect();
        let sorted = vec![Vec::new(); space.params.iter().filter(|p| p.search.is_some()).count()];
        Encoded { space: space.clone(), cols, rows: Vec::new(), n_rows: 0, sorted }
    }

    /// Encode and index one more told trial.
    fn push(&mut self, params: &Params) {
        let m = self.cols.len();
        let i = self.n_rows;
        let mut row = Vec::with_capacity(m);
        self.encode_into(params, &mut row);
        for (j, &v) in row.iter().enumerate() {
            if !v.is_nan() {
                let rows = &self.rows;
                let at = self.sorted[j].partition_point(|&t| rows[t as usize * m + j] <= v);
                self.sorted[j].insert(at, i as u32);
            }
        }
        self.rows.extend(row);
        self.n_rows += 1;
    }

    fn encode_into(&self, params: &Params, out: &mut Vec<f64>) {
        for c in &self.cols {
            let spec: &ParamSpec = &self.space.params[c.spec];
            out.push(if self.space.is_active(spec, params) {
                c.enc.encode(params.get(&spec.name), &c.domain)
            } else {
                f64::NAN
            });
        }
    }
}

/// Tree-structured Parzen Estimator (Bergstra et al. 2011) with Optuna 5.0's estimator rules.
///
/// After `n_startup_trials` random trials, the finished trials are split into the best
/// `gamma(n)` ("below") and the rest ("above"; failed trials rank last, trials asked and not
/// yet told count as above under the constant liar). A Parzen estimator `l` is fitted to the
/// below values and `g` to the above ones (truncated Gaussians with neighbour-distance
/// bandwidths for numbers, smoothed histograms for options, each with a prior kernel);
/// `n_ei_candidates` points are drawn from `l` and the one with the largest `l / g` is
/// proposed. Multivariate: one joint estimator over the always-active parameters, then one
/// per active conditional parameter; univariate: one per parameter. It minimises.
#[derive(Debug, Clone)]
pub struct Tpe {
    config: TpeConfig,
    told: Vec<Told>,
    /// Asked and not yet told, oldest first.
    pending: Vec<Params>,
    cache: Option<Encoded>,
}

impl Tpe {
    /// A fresh optimiser; errors when `config` is invalid.
    pub fn new(config: TpeConfig) -> Result<Tpe> {
        config.validate()?;
        Ok(Tpe { config, told: Vec::new(), pending: Vec::new(), cache: None })
    }

    /// Its settings.
    pub fn config(&self) -> &TpeConfig {
        &self.config
    }

    /// Number of trials told so far (finished or failed).
    pub fn n_told(&self) -> usize {
        self.told.len()
    }

    /// Number of trials asked and not yet told.
    pub fn n_pending(&self) -> usize {
        self.pending.len()
    }

    fn rules(&self) -> KernelRules {
        KernelRules {
            prior_weight: self.config.prior_weight,
            magic_clip: self.config.consider_magic_clip,
            consider_endpoints: self.config.consider_endpoints,
        }
    }

    /// Bring the encoded history up to date for `space` (re-encoding all when it changed).
    fn refresh(&mut self, space: &SearchSpace) {
        if self.cache.as_ref().is_none_or(|c| c.space != *space) {
            self.cache = Some(Encoded::new(space));
        }
        let cache = self.cache.as_mut().expect("set above");
        for t in &self.told[cache.n_rows..] {
            cache.push(&t.params);
        }
    }

    /// Propose parameters with the model (after the start-up trials).
    fn propose(&self, space: &SearchSpace, rng: &mut Rng) -> Params {
        let cache = self.cache.as_ref().expect("refreshed before proposing");
        let m = cache.cols.len();
        let n = self.told.len();
        // Rank: finished trials by value (ties by age), failed ones after them.
        let mut order: Vec<(f64, u32)> = self
            .told
            .iter()
            .enumerate()
            .map(|(i, t)| (t.value.filter(|v| !v.is_nan()).unwrap_or(f64::INFINITY), i as u32))
            .collect();
        let failed_last = |a: &(f64, u32), b: &(f64, u32)| {
            let fa = self.told[a.1 as usize].value.is_none_or(f64::is_nan);
            let fb = self.told[b.1 as usize].value.is_none_or(f64::is_nan);
            fa.cmp(&fb).then(a.0.total_cmp(&b.0)).then(a.1.cmp(&b.1))
        };
        let n_below = default_gamma(n);
        if n_below > 0 && n_below < n {
            order.select_nth_unstable_by(n_below - 1, failed_last);
        }
        let mut below = vec![false; n];
        for &(_, i) in &order[..n_below] {
            below[i as usize] = true;
        }
        let mut pending_rows = Vec::new();
        if self.config.constant_liar {
            for p in &self.pending {
                cache.encode_into(p, &mut pending_rows);
            }
        }
        let n_pending = pending_rows.len() / m.max(1);
        let value =
            |i: usize, j: usize| -> f64 { if i < n { cache.rows[i * m + j] } else { pending_rows[(i - n) * m + j] } };
        // Observations of column `j` from the trials (told, then pending) that `take` accepts
        // and that have a value there, with their sorted order taken from the index.
        let obs = |j: usize, take: &dyn Fn(usize) -> bool| -> Obs {
            let mut pos = vec![u32::MAX; n];
            let mut values = Vec::new();
            for (i, p) in pos.iter_mut().enumerate() {
                let v = cache.rows[i * m + j];
                if !v.is_nan() && take(i) {
                    *p = values.len() as u32;
                    values.push(v);
                }
            }
            let mut order: Vec<u32> =
                cache.sorted[j].iter().filter_map(|&t| Some(pos[t as usize]).filter(|&p| p != u32::MAX)).collect();
            let told_len = values.len();
            for i in n..n + n_pending {
                let v = value(i, j);
                if !v.is_nan() && take(i) {
                    values.push(v);
                }
            }
            if values.len() > told_len {
                // Merge the few pending values into the order (after told ones on ties).
                let mut extra: Vec<u32> = (told_len as u32..values.len() as u32).collect();
                extra.sort_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]).then(a.cmp(&b)));
                let mut merged = Vec::with_capacity(values.len());
                let mut e = extra.into_iter().peekable();
                for p in order {
                    while let Some(&x) = e.peek().filter(|&&x| values[x as usize] < values[p as usize]) {
                        merged.push(x);
                        e.next();
                    }
                    merged.push(p);
                }
                merged.extend(e);
                order = merged;
            }
            Obs { values, order }
        };

        let mut params = space.defaults();
        let mut done = vec![false; m];
        if self.config.multivariate {
            // Joint model over the parameters that are always active.
            let joint: Vec<usize> = (0..m)
                .filter(|&j| space.params[cache.cols[j].spec].condition.is_none())
                .filter(|&j| cache.cols[j].enc.kind().is_some())
                .collect();
            if joint.len() > 1 {
                let kinds: Vec<DimKind> = joint.iter().map(|&j| cache.cols[j].enc.kind().expect("filtered")).collect();
                let complete = |i: usize| joint.iter().all(|&j| !value(i, j).is_nan());
                let below_cols: Vec<Obs> =
                    joint.iter().map(|&j| obs(j, &|i| i < n && below[i] && complete(i))).collect();
                let above_cols: Vec<Obs> =
                    joint.iter().map(|&j| obs(j, &|i| (i >= n || !below[i]) && complete(i))).collect();
                let l = Mixture::build(&below_cols, &kinds, self.rules());
                let g = Mixture::build(&above_cols, &kinds, self.rules());
                let best = pick(&l, &g, rng, self.config.n_ei_candidates);
                for (&j, &x) in joint.iter().zip(&best) {
                    let c = &cache.cols[j];
                    params.insert(space.params[c.spec].name.clone(), c.enc.decode(x, &c.domain));
                    done[j] = true;
                }
            }
        }
        for (j, c) in cache.cols.iter().enumerate() {
            let spec = &space.params[c.spec];
            if done[j] || !space.is_active(spec, &params) {
                continue;
            }
            let Some(kind) = c.enc.kind() else {
                params.insert(spec.name.clone(), c.enc.only_value(&c.domain));
                continue;
            };
            let l = Mixture::build(&[obs(j, &|i| i < n && below[i])], &[kind], self.rules());
            let g = Mixture::build(&[obs(j, &|i| i >= n || !below[i])], &[kind], self.rules());
            let best = pick(&l, &g, rng, self.config.n_ei_candidates);
            params.insert(spec.name.clone(), c.enc.decode(best[0], &c.domain));
        }
        params
    }
}

/// Draw candidates from `l` and return the one with the largest `ln l - ln g` (the first on
/// ties).
fn pick(l: &Mixture, g: &Mixture, rng: &mut Rng, count: usize) -> Vec<f64> {
    let cands = l.sample(rng, count);
    let (ll, lg) = (l.log_pdf(&cands), g.log_pdf(&cands));
    let mut best = 0;
    let mut best_v = f64::NEG_INFINITY;
    for (i, (a, b)) in ll.iter().zip(&lg).enumerate() {
        let v = a - b;
        if v > best_v {
            best_v = v;
            best = i;
        }
    }
    cands.into_iter().nth(best).expect("at least one candidate")
}

impl Optimizer for Tpe {
    fn ask(&mut self, space: &SearchSpace, rng: &mut Rng) -> Params {
        let params = if self.told.len() < self.config.n_startup_trials {
            sample_space(space, &Params::new(), rng)
        } else {
            self.refresh(space);
            self.propose(space, rng)
        };
        self.pending.push(params.clone());
        params
    }

    fn tell(&mut self, params: &Params, value: Option<f64>) {
        if let Some(i) = self.pending.iter().position(|p| p == params) {
            self.pending.remove(i);
        }
        self.told.push(Told { params: params.clone(), value });
    }
}
