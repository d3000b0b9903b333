//! Meta-learners over any registered model: S, T, X, class transformation, doubly robust and R.
//! Each wraps base
//! models fitted through [`Model::fit`] on [`Dataset`]s, so every plugin's classifiers and
//! regressors can estimate effects.

use super::config::LearnerKind;
use crate::cv::derive_seed;
use ndarray::{Array2, Axis};
use promoml_core::{Dataset, Error, FitContext, FittedModel, Model, Params, Result, Task};

/// Training rows of an uplift problem.
pub struct UpliftData<'a> {
    /// Features (and the outcome in `y`).
    pub data: &'a Dataset,
    /// Arm per row: 0 = control, 1..=arms = treatment arms.
    pub arm: &'a [usize],
    /// Number of treatment arms (besides control).
    pub arms: usize,
    /// Propensity of each arm (control first) per row: `propensity[row][arm]`.
    pub propensity: &'a [Vec<f64>],
}

/// Predicted effects on some rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Effects {
    /// `tau[a][row]`: predicted effect of arm `a + 1` versus control.
    pub tau: Vec<Vec<f64>>,
    /// `mu[a][row]`: predicted outcome under arm `a` (control first), when the learner has an
    /// outcome model: the S- and T-learners' own predictions; for the X- and DR-learners the
    /// control outcome plus their effects, so that `mu_a - mu_0 = tau_a` always.
    pub mu: Option<Vec<Vec<f64>>>,
}

impl Effects {
    /// The mean of several effect predictions (the uplift ensemble); outcome models are averaged
    /// when all have one.
    pub fn average(all: &[&Effects]) -> Effects {
        let k = all.len() as f64;
        let mean = |get: &dyn Fn(&Effects) -> &Vec<Vec<f64>>| -> Vec<Vec<f64>> {
            let first = get(all[0]);
            (0..first.len())
                .map(|a| (0..first[a].len()).map(|i| all.iter().map(|e| get(e)[a][i]).sum::<f64>() / k).collect())
                .collect()
        };
        let tau = mean(&|e| &e.tau);
        let mu = all.iter().all(|e| e.mu.is_some()).then(|| mean(&|e| e.mu.as_ref().expect("checked")));
        Effects { tau, mu }
    }
}

/// A meta-learner fitted on training rows.
pub struct FittedLearner {
    kind: LearnerKind,
    outcome: Task,
    arms: usize,
    /// S: one model; T: one per arm (control first); X: T-models then (tau0, tau1) per arm;
    /// class transformation: one per arm; DR: the control outcome model of each of the three
    /// rotations, then per arm its three outcome models, then per arm its three effect models;
    /// R: one effect model per arm.
    models: Vec<Box<dyn FittedModel>>,
    /// X-learner blend weight of the control-side regressor per arm (training propensity share).
    blend: Vec<f64>,
}

fn base_dataset(x: Array2<f64>, names: &[String], y: Vec<f64>, task: Task) -> Dataset {
    let mut ds = Dataset::from_x(x, names.to_vec());
    ds.y = Some(y);
    if task == Task::Binary {
        ds.classes = vec!["0".into(), "1".into()];
    }
    ds
}

fn fit_base(
    model: &dyn Model,
    params: &Params,
    ds: &Dataset,
    task: Task,
    ctx: &FitContext,
    part: u64,
    what: &str,
) -> Result<Box<dyn FittedModel>> {
    // The outcome is encoded as numbers; a binary base model needs its two classes declared.
    let relabelled;
    let ds = if (task == Task::Binary) == ds.classes.is_empty() {
        let mut d = ds.clone();
        d.classes = if task == Task::Binary { vec!["0".into(), "1".into()] } else { vec![] };
        relabelled = d;
        &relabelled
    } else {
        ds
    };
    let n = ds.n_rows();
    if task == Task::Binary {
        let y = ds.target(model.kind())?;
        let pos = y.iter().filter(|&&v| v == 1.0).count();
        if pos == 0 || pos == n {
            return Err(Error::model(
                model.kind(),
                format!("{what}: all {n} rows have outcome {}; nothing to learn", if pos == 0 { 0 } else { 1 }),
            ));
        }
    }
    if n < 2 {
        return Err(Error::model(model.kind(), format!("{what}: only {n} training rows")));
    }
    let c = FitContext { seed: derive_seed(ctx.seed, &[part]), ..ctx.clone() };
    model.fit(ds, params, &c).map_err(|e| match e {
        Error::Model { model, message } => Error::model(model, format!("{what}: {message}")),
        other => other,
    })
}

fn predict_base(m: &dyn FittedModel, ds: &Dataset, who: &str) -> Result<Vec<f64>> {
    let p = m.predict(ds)?;
    p.check(ds.n_rows(), who)?;
    Ok(p.scores())
}

fn rows_where(arm: &[usize], keep: impl Fn(usize) -> bool) -> Vec<usize> {
    (0..arm.len()).filter(|&i| keep(arm[i])).collect()
}

/// Features plus one indicator column per treatment arm (the S-learner's input).
fn with_arm(x: &Array2<f64>, arms: usize, arm_of_row: impl Fn(usize) -> usize) -> Array2<f64> {
    let n = x.nrows();
    let mut out = Array2::zeros((n, x.ncols() + arms));
    for ((i, j), v) in x.indexed_iter() {
        out[[i, j]] = *v;
    }
    for i in 0..n {
        let a = arm_of_row(i);
        if a > 0 {
            out[[i, x.ncols() + a - 1]] = 1.0;
        }
    }
    out
}

fn arm_names(names: &[String], arms: usize) -> Vec<String> {
    let mut v = names.to_vec();
    v.extend((1..=arms).map(|a| format!("__arm_{a}")));
    v
}

/// Fit a meta-learner with base model `model` and its parameters.
pub fn fit(
    kind: LearnerKind,
    model: &dyn Model,
    params: &Params,
    outcome: Task,
    d: &UpliftData<'_>,
    ctx: &FitContext,
) -> Result<FittedLearner> {
    let ds = d.data;
    let y = ds.target("uplift learner")?;
    let names = &ds.feature_names;
    let k = d.arms;
    let mut models = Vec::new();
    let mut blend = Vec::new();
    match kind {
        LearnerKind::S => {
            let x = with_arm(&ds.x, k, |i| d.arm[i]);
            let base = base_dataset(x, &arm_names(names, k), y.to_vec(), outcome);
            models.push(fit_base(model, params, &base, outcome, ctx, 0, "S-learner")?);
        }
        LearnerKind::Direct => {
            let mut direct = Dataset::from_x(ds.x.clone(), names.clone());
            direct.y = Some(y.to_vec());
            direct.classes = vec!["0".into(), "1".into()];
            direct.treatment = Some(d.arm.to_vec());
            models.push(model.fit(&direct, params, ctx)?);
        }
        LearnerKind::T | LearnerKind::X => {
            for a in 0..=k {
                let rows = rows_where(d.arm, |v| v == a);
                let sub = ds.subset(&rows);
                let what = format!("{}-learner, arm {a} model", kind.name().to_uppercase());
                models.push(fit_base(model, params, &sub, outcome, ctx, a as u64, &what)?);
            }
            if kind == LearnerKind::X {
                for a in 1..=k {
                    let treated = rows_where(d.arm, |v| v == a);
                    let control = rows_where(d.arm, |v| v == 0);
                    let xt = ds.x.select(Axis(0), &treated);
                    let xc = ds.x.select(Axis(0), &control);
                    let plain = |x: &Array2<f64>| Dataset::from_x(x.clone(), names.clone());
                    let mu0_t = predict_base(models[0].as_ref(), &plain(&xt), model.kind())?;
                    let mua_c = predict_base(models[a].as_ref(), &plain(&xc), model.kind())?;
                    let d1: Vec<f64> = treated.iter().zip(&mu0_t).map(|(&i, m)| y[i] - m).collect();
                    let d0: Vec<f64> = control.iter().zip(&mua_c).map(|(&i, m)| m - y[i]).collect();
                    let tau0 = base_dataset(xc, names, d0, Task::Regression);
                    let tau1 = base_dataset(xt, names, d1, Task::Regression);
                    let part = 100 + 2 * a as u64;
                    models.push(fit_base(
                        model,
                        params,
                        &tau0,
                        Task::Regression,
                        ctx,
                        part,
                        "X-learner, control effects",
                    )?);
                    models.push(fit_base(
                        model,
                        params,
                        &tau1,
                        Task::Regression,
                        ctx,
                        part + 1,
                        "X-learner, treated effects",
                    )?);
                    // g = e_a / (e_a + e_0): weight of the control-side estimate.
                    let g: f64 = (0..ds.n_rows())
                        .filter(|&i| d.arm[i] == 0 || d.arm[i] == a)
                        .map(|i| d.propensity[i][a] / (d.propensity[i][a] + d.propensity[i][0]))
                        .sum::<f64>()
                        / (treated.len() + control.len()) as f64;
                    blend.push(g);
                }
            }
        }
        LearnerKind::Dr => {
            let splits = dr_splits(ds.n_rows(), derive_seed(ctx.seed, &[300]));
            models = fit_dr(model, params, outcome, d, ctx, &splits)?;
        }
        LearnerKind::R => {
            let folds = r_folds(d.arm, R_FOLDS, derive_seed(ctx.seed, &[600]));
            models = fit_r(model, params, outcome, d, ctx, &folds)?;
        }
        LearnerKind::ClassTransformation => {
            for a in 1..=k {
                let rows = rows_where(d.arm, |v| v == 0 || v == a);
                let mut sub = ds.subset(&rows);
                let z: Vec<f64> = rows
                    .iter()
                    .map(|&i| {
                        let treated = d.arm[i] == a;
                        f64::from(u8::from((treated && y[i] == 1.0) || (!treated && y[i] == 0.0)))
                    })
                    .collect();
                sub.y = Some(z);
                sub.classes = vec!["0".into(), "1".into()];
                models.push(fit_base(model, params, &sub, Task::Binary, ctx, a as u64, "class transformation")?);
            }
        }
    }
    Ok(FittedLearner { kind, outcome, arms: k, models, blend })
}

/// The DR-learner's three partitions: the rows shuffled with `seed` and cut in three, the
/// first `n % 3` one row longer (as scikit-learn's `KFold(n_splits=3, shuffle=True)`), each in
/// row order.
pub(crate) fn dr_splits(n: usize, seed: u64) -> Vec<Vec<usize>> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut promoml_core::Rng::seed_from_u64(seed));
    let mut out = Vec::new();
    let mut start = 0;
    for f in 0..3 {
        let len = n / 3 + usize::from(f < n % 3);
        let mut part = order[start..start + len].to_vec();
        part.sort_unstable();
        out.push(part);
        start += len;
    }
    out
}

/// Fit the DR-learner's base models on the partitions `splits` (see [`LearnerKind::Dr`]), in
/// the order [`FittedLearner::models`] keeps them. Propensity of arm `a` against control:
/// `e = p_a / (p_a + p_0)`.
pub(crate) fn fit_dr(
    model: &dyn Model,
    params: &Params,
    outcome: Task,
    d: &UpliftData<'_>,
    ctx: &FitContext,
    splits: &[Vec<usize>],
) -> Result<Vec<Box<dyn FittedModel>>> {
    let ds = d.data;
    let y = ds.target("uplift learner")?;
    let names = &ds.feature_names;
    let k = d.arms;
    let mut mu: Vec<Vec<Box<dyn FittedModel>>> = (0..=k).map(|_| Vec::new()).collect();
    let mut tau: Vec<Vec<Box<dyn FittedModel>>> = (0..k).map(|_| Vec::new()).collect();
    for r in 0..3 {
        let (outcome_rows, tau_rows) = (&splits[(r + 1) % 3], &splits[(r + 2) % 3]);
        for (a, models) in mu.iter_mut().enumerate() {
            let rows: Vec<usize> = outcome_rows.iter().copied().filter(|&i| d.arm[i] == a).collect();
            let what = format!("DR-learner, rotation {}, arm {a} outcome model", r + 1);
            models.push(fit_base(
                model,
                params,
                &ds.subset(&rows),
                outcome,
                ctx,
                400 + 10 * a as u64 + r as u64,
                &what,
            )?);
        }
        for a in 1..=k {
            let rows: Vec<usize> = tau_rows.iter().copied().filter(|&i| d.arm[i] == 0 || d.arm[i] == a).collect();
            let x = ds.x.select(Axis(0), &rows);
            let plain = Dataset::from_x(x.clone(), names.clone());
            let mu_t = predict_base(mu[a][r].as_ref(), &plain, model.kind())?;
            let mu_c = predict_base(mu[0][r].as_ref(), &plain, model.kind())?;
            let pseudo: Vec<f64> = rows
                .iter()
                .enumerate()
                .map(|(j, &i)| {
                    let w = f64::from(u8::from(d.arm[i] == a));
                    let p = d.propensity[i][a] / (d.propensity[i][a] + d.propensity[i][0]);
                    (w - p) / p / (1.0 - p) * (y[i] - mu_t[j] * w - mu_c[j] * (1.0 - w)) + mu_t[j] - mu_c[j]
                })
                .collect();
            let what = format!("DR-learner, rotation {}, arm {a} effect model", r + 1);
            let part = 500 + 10 * a as u64 + r as u64;
            let base = base_dataset(x, names, pseudo, Task::Regression);
            tau[a - 1].push(fit_base(model, params, &base, Task::Regression, ctx, part, &what)?);
        }
    }
    Ok(mu.into_iter().chain(tau).flatten().collect())
}

/// Folds of the R-learner's out-of-fold outcome predictions (causalml's default: five).
const R_FOLDS: usize = 5;

/// The R-learner's folds, stratified by arm (as causalml's `StratifiedKFold(shuffle=True)` on
/// the treatment): each arm's rows shuffled with `seed` and dealt to the folds in turn; each
/// fold in row order.
pub(crate) fn r_folds(arm: &[usize], folds: usize, seed: u64) -> Vec<Vec<usize>> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut rng = promoml_core::Rng::seed_from_u64(seed);
    let mut out = vec![Vec::new(); folds];
    let arms = arm.iter().copied().max().map_or(0, |m| m + 1);
    let mut next = 0;
    for a in 0..arms {
        let mut rows = rows_where(arm, |v| v == a);
        rows.shuffle(&mut rng);
        for i in rows {
            out[next % folds].push(i);
            next += 1;
        }
    }
    for f in &mut out {
        f.sort_unstable();
    }
    out
}

/// Fit the R-learner's effect models (see [`LearnerKind::R`]), one per arm, with the outcome
/// predicted out of fold on `folds` (each row in one fold's validation rows). Propensity of arm
/// `a` against control: `e = p_a / (p_a + p_0)`.
pub(crate) fn fit_r(
    model: &dyn Model,
    params: &Params,
    outcome: Task,
    d: &UpliftData<'_>,
    ctx: &FitContext,
    folds: &[Vec<usize>],
) -> Result<Vec<Box<dyn FittedModel>>> {
    if !model.honours_weights() {
        return Err(Error::model(
            model.kind(),
            "the R-learner fits its effect model with row weights (w - e)², and this model ignores row weights",
        ));
    }
    let ds = d.data;
    let y = ds.target("uplift learner")?;
    let names = &ds.feature_names;
    let n = ds.n_rows();
    // m(x): the outcome of every row, predicted by a model that did not see it.
    let mut fold_of = vec![usize::MAX; n];
    for (f, rows) in folds.iter().enumerate() {
        for &i in rows {
            fold_of[i] = f;
        }
    }
    if let Some(i) = fold_of.iter().position(|&f| f == usize::MAX) {
        return Err(Error::data(format!("R-learner: row {i} is in no fold")));
    }
    let mut m = vec![0.0; n];
    for (f, rows) in folds.iter().enumerate() {
        let train: Vec<usize> = (0..n).filter(|&i| fold_of[i] != f).collect();
        let what = format!("R-learner, fold {} outcome model", f + 1);
        let fitted = fit_base(model, params, &ds.subset(&train), outcome, ctx, 600 + f as u64, &what)?;
        let x = Dataset::from_x(ds.x.select(Axis(0), rows), names.clone());
        for (&i, v) in rows.iter().zip(predict_base(fitted.as_ref(), &x, model.kind())?) {
            m[i] = v;
        }
    }
    let mut out = Vec::new();
    for a in 1..=d.arms {
        let rows = rows_where(d.arm, |v| v == 0 || v == a);
        let (mut pseudo, mut weight) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
        for &i in &rows {
            let w = f64::from(u8::from(d.arm[i] == a));
            let e = d.propensity[i][a] / (d.propensity[i][a] + d.propensity[i][0]);
            pseudo.push((y[i] - m[i]) / (w - e));
            weight.push((w - e) * (w - e));
        }
        let mut base = base_dataset(ds.x.select(Axis(0), &rows), names, pseudo, Task::Regression);
        base.weights = Some(weight);
        let what = format!("R-learner, arm {a} effect model");
        out.push(fit_base(model, params, &base, Task::Regression, ctx, 700 + a as u64, &what)?);
    }
    Ok(out)
}

/// The mean of three predictions per row, as NumPy's `mean(axis=0)`.
fn mean3(models: &[Box<dyn FittedModel>], ds: &Dataset, who: &str) -> Result<Vec<f64>> {
    let p: Vec<Vec<f64>> = models.iter().map(|m| predict_base(m.as_ref(), ds, who)).collect::<Result<_>>()?;
    Ok((0..ds.n_rows()).map(|i| (p[0][i] + p[1][i] + p[2][i]) / 3.0).collect())
}

impl FittedLearner {
    /// Predicted effects (and outcomes, where the learner has them) on `ds`'s rows.
    pub fn effects(&self, ds: &Dataset) -> Result<Effects> {
        let who = format!("{}-learner", self.kind.name());
        let k = self.arms;
        let plain = Dataset::from_x(ds.x.clone(), ds.feature_names.clone());
        match self.kind {
            LearnerKind::S => {
                let names = arm_names(&ds.feature_names, k);
                let mut mu = Vec::new();
                for a in 0..=k {
                    let x = with_arm(&ds.x, k, |_| a);
                    mu.push(predict_base(self.models[0].as_ref(), &Dataset::from_x(x, names.clone()), &who)?);
                }
                Ok(from_mu(mu))
            }
            LearnerKind::T => {
                let mu = (0..=k).map(|a| predict_base(self.models[a].as_ref(), &plain, &who)).collect::<Result<_>>()?;
                Ok(from_mu(mu))
            }
            LearnerKind::X => {
                let mu0 = predict_base(self.models[0].as_ref(), &plain, &who)?;
                let mut tau = Vec::new();
                for a in 1..=k {
                    let t0 = predict_base(self.models[k + 1 + 2 * (a - 1)].as_ref(), &plain, &who)?;
                    let t1 = predict_base(self.models[k + 2 + 2 * (a - 1)].as_ref(), &plain, &who)?;
                    let g = self.blend[a - 1];
                    tau.push(t0.iter().zip(&t1).map(|(x0, x1)| g * x0 + (1.0 - g) * x1).collect());
                }
                Ok(levels(&mu0, tau))
            }
            LearnerKind::Dr => {
                let m = &self.models;
                let mu0 = mean3(&m[0..3], &plain, &who)?;
                let first_tau = 3 * (k + 1);
                let tau = (0..k)
                    .map(|a| mean3(&m[first_tau + 3 * a..first_tau + 3 * a + 3], &plain, &who))
                    .collect::<Result<_>>()?;
                Ok(levels(&mu0, tau))
            }
            LearnerKind::R => {
                let tau = (0..k).map(|a| predict_base(self.models[a].as_ref(), &plain, &who)).collect::<Result<_>>()?;
                Ok(Effects { tau, mu: None })
            }
            LearnerKind::Direct => {
                let p = self.models[0].predict(&plain)?;
                p.check(plain.n_rows(), &who)?;
                let promoml_core::Predictions::Proba(p) = p else {
                    return Err(Error::model(&who, "a model of effects must predict one outcome rate per arm"));
                };
                if p.ncols() != k + 1 {
                    return Err(Error::model(
                        &who,
                        format!("predicted {} arms' outcomes, the pipeline has {}", p.ncols(), k + 1),
                    ));
                }
                Ok(from_mu((0..=k).map(|a| p.column(a).to_vec()).collect()))
            }
            LearnerKind::ClassTransformation => {
                let tau = (1..=k)
                    .map(|a| {
                        Ok(predict_base(self.models[a - 1].as_ref(), &plain, &who)?
                            .iter()
                            .map(|p| 2.0 * p - 1.0)
                            .collect())
                    })
                    .collect::<Result<_>>()?;
                Ok(Effects { tau, mu: None })
            }
        }
    }

    /// The outcome task of the base models.
    pub fn outcome(&self) -> Task {
        self.outcome
    }

    /// The meta-learner.
    pub fn kind(&self) -> LearnerKind {
        self.kind
    }

    /// Number of treatment arms (besides control).
    pub fn arms(&self) -> usize {
        self.arms
    }

    /// The fitted base models, in the order [`FittedLearner::from_parts`] takes them.
    pub fn models(&self) -> &[Box<dyn FittedModel>] {
        &self.models
    }

    /// The X-learner's blend weight per arm (empty for other learners).
    pub fn blend(&self) -> &[f64] {
        &self.blend
    }

    /// Rebuild a fitted learner from what [`FittedLearner::models`] and
    /// [`FittedLearner::blend`] returned (a model artifact being reloaded). Fails when the
    /// number of models or blend weights does not fit the learner and arms.
    pub fn from_parts(
        kind: LearnerKind,
        outcome: Task,
        arms: usize,
        models: Vec<Box<dyn FittedModel>>,
        blend: Vec<f64>,
    ) -> Result<FittedLearner> {
        let (want_models, want_blend) = match kind {
            LearnerKind::S => (1, 0),
            LearnerKind::T => (arms + 1, 0),
            LearnerKind::X => (arms + 1 + 2 * arms, arms),
            LearnerKind::ClassTransformation => (arms, 0),
            LearnerKind::Dr => (3 * (arms + 1) + 3 * arms, 0),
            LearnerKind::R => (arms, 0),
            LearnerKind::Direct => (1, 0),
        };
        if arms == 0 || models.len() != want_models || blend.len() != want_blend {
            return Err(Error::data(format!(
                "{}-learner with {arms} treatment arm(s) needs {want_models} base model(s) and {want_blend} blend weight(s), got {} and {}",
                kind.name(),
                models.len(),
                blend.len()
            )));
        }
        Ok(FittedLearner { kind, outcome, arms, models, blend })
    }
}

/// Effects `tau` estimated apart from the outcome models (X- and DR-learners), with outcome
/// levels that agree with them: the control outcome `mu0`, and `mu0 + tau_a` under arm `a`. The
/// policy ranks arms by these levels, so it follows the learner's own effects, not the
/// difference of its nuisance outcome models.
fn levels(mu0: &[f64], tau: Vec<Vec<f64>>) -> Effects {
    let mu = crate::uplift::model::with_control(mu0.to_vec(), &Effects { tau: tau.clone(), mu: None });
    Effects { tau, mu: Some(mu) }
}

fn from_mu(mu: Vec<Vec<f64>>) -> Effects {
    let tau = mu[1..].iter().map(|m| m.iter().zip(&mu[0]).map(|(a, c)| a - c).collect()).collect();
    Effects { tau, mu: Some(mu) }
}

/// An outcome model for the control arm alone (the policy needs outcome levels when arms have
/// different values per unit and the learner has no outcome model).
pub fn fit_control_model(
    model: &dyn Model,
    params: &Params,
    outcome: Task,
    d: &UpliftData<'_>,
    ctx: &FitContext,
) -> Result<Box<dyn FittedModel>> {
    let rows = rows_where(d.arm, |v| v == 0);
    fit_base(model, params, &d.data.subset(&rows), outcome, ctx, 999, "control outcome model")
}

/// Predictions of a model fitted by [`fit_control_model`].
pub fn predict_control(m: &dyn FittedModel, ds: &Dataset) -> Result<Vec<f64>> {
    predict_base(m, &Dataset::from_x(ds.x.clone(), ds.feature_names.clone()), "control outcome model")
}

#[cfg(test)]
mod tests {
    use super::*;
    use promoml_core::{FittedModel, Predictions, SearchSpace};

    /// A base "model" that predicts the mean outcome of training rows with the same value of
    /// feature 0 (and, for the S-learner, the same arm indicators): exact on discrete data.
    struct CellMean;
    struct FittedCellMean(Vec<(Vec<i64>, f64)>, Task);
    impl Model for CellMean {
        fn kind(&self) -> &str {
            "test.cell_mean"
        }
        fn description(&self) -> &str {
            "mean outcome per cell"
        }
        fn tasks(&self) -> &[Task] {
            &[Task::Binary, Task::Regression]
        }
        fn space(&self) -> SearchSpace {
            SearchSpace::new(vec![])
        }
        fn fit(&self, data: &Dataset, _p: &Params, _c: &FitContext) -> Result<Box<dyn FittedModel>> {
            let y = data.target("cell")?;
            let key = |i: usize| data.x.row(i).iter().map(|v| (v * 1000.0) as i64).collect::<Vec<_>>();
            let mut cells: Vec<(Vec<i64>, f64, f64)> = Vec::new();
            #[allow(clippy::needless_range_loop)]
            for i in 0..data.n_rows() {
                let k = key(i);
                match cells.iter_mut().find(|c| c.0 == k) {
                    Some(c) => {
                        c.1 += y[i];
                        c.2 += 1.0;
                    }
                    None => cells.push((k, y[i], 1.0)),
                }
            }
            let task = if data.classes.is_empty() { Task::Regression } else { Task::Binary };
            Ok(Box::new(FittedCellMean(cells.into_iter().map(|c| (c.0, c.1 / c.2)).collect(), task)))
        }
    }
    impl FittedModel for FittedCellMean {
        fn predict(&self, data: &Dataset) -> Result<Predictions> {
            let v: Vec<f64> = (0..data.n_rows())
                .map(|i| {
                    let k: Vec<i64> = data.x.row(i).iter().map(|v| (v * 1000.0) as i64).collect();
                    self.0.iter().find(|c| c.0 == k).map_or(0.5, |c| c.1)
                })
                .collect();
            Ok(if self.1 == Task::Binary { Predictions::binary(v) } else { Predictions::Values(v) })
        }
    }

    /// Two segments (feature 0 = 0 or 1); the treatment lifts segment 1 from 0.2 to 0.6 and
    /// leaves segment 0 at 0.3. Outcomes are laid out to hit those rates exactly.
    fn problem() -> (Dataset, Vec<usize>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut arm = Vec::new();
        for seg in 0..2 {
            for a in 0..2usize {
                let rate = match (seg, a) {
                    (0, _) => 0.3,
                    (1, 0) => 0.2,
                    _ => 0.6,
                };
                for i in 0..10 {
                    x.push(seg as f64);
                    y.push(f64::from(u8::from((i as f64) < rate * 10.0)));
                    arm.push(a);
                }
            }
        }
        let mut ds = Dataset::from_x(Array2::from_shape_vec((40, 1), x).unwrap(), vec!["seg".into()]);
        ds.y = Some(y);
        ds.classes = vec!["0".into(), "1".into()];
        (ds, arm)
    }

    #[test]
    fn every_learner_recovers_segment_effects() {
        let (ds, arm) = problem();
        let prop = vec![vec![0.5, 0.5]; 40];
        let d = UpliftData { data: &ds, arm: &arm, arms: 1, propensity: &prop };
        let test = Dataset::from_x(Array2::from_shape_vec((2, 1), vec![0.0, 1.0]).unwrap(), vec!["seg".into()]);
        for kind in [LearnerKind::S, LearnerKind::T, LearnerKind::X, LearnerKind::ClassTransformation] {
            let f = fit(kind, &CellMean, &Params::new(), Task::Binary, &d, &FitContext::new(1)).unwrap();
            let e = f.effects(&test).unwrap();
            assert!((e.tau[0][0] - 0.0).abs() < 1e-9, "{kind:?} segment 0: {:?}", e.tau);
            assert!((e.tau[0][1] - 0.4).abs() < 1e-9, "{kind:?} segment 1: {:?}", e.tau);
            assert_eq!(e.mu.is_some(), kind != LearnerKind::ClassTransformation);
            // The outcome levels the policy ranks arms by agree with the effects.
            if let Some(mu) = &e.mu {
                for (i, ((m1, m0), t)) in mu[1].iter().zip(&mu[0]).zip(&e.tau[0]).enumerate() {
                    assert!((m1 - m0 - t).abs() < 1e-12, "{kind:?} row {i}");
                }
            }
        }
    }

    #[test]
    fn a_single_class_arm_is_a_clear_error() {
        let (mut ds, arm) = problem();
        ds.y = Some(arm.iter().map(|&a| a as f64).collect());
        let prop = vec![vec![0.5, 0.5]; 40];
        let d = UpliftData { data: &ds, arm: &arm, arms: 1, propensity: &prop };
        let e = fit(LearnerKind::T, &CellMean, &Params::new(), Task::Binary, &d, &FitContext::new(1))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("T-learner, arm 0 model: all 20 rows have outcome 0"), "{e}");
    }

    /// causalml's `BaseDRRegressor` with scikit-learn's `LinearRegression`, on the committed
    /// fixture of `scripts/dr_fixture.py` (two treatment arms, causalml's own KFold partitions):
    /// the DR-learner over `smartcore.ridge` with `alpha = 0` (least squares) gives the same
    /// effects and outcomes.
    /// A causalml fixture (`scripts/dr_fixture.py`, `scripts/r_fixture.py`): the JSON, the
    /// training rows (3 features, outcome), arms, propensities and the test rows.
    #[allow(clippy::type_complexity)]
    fn causalml_fixture(name: &str) -> (serde_json::Value, Dataset, Vec<usize>, Vec<Vec<f64>>, Dataset) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
        let f: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let matrix = |v: &serde_json::Value| {
            let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
            let cols = rows[0].len();
            Array2::from_shape_vec((rows.len(), cols), rows.concat()).unwrap()
        };
        let names: Vec<String> = (0..3).map(|j| format!("x{j}")).collect();
        let mut ds = Dataset::from_x(matrix(&f["x"]), names.clone());
        ds.y = Some(serde_json::from_value(f["y"].clone()).unwrap());
        let arm: Vec<usize> = serde_json::from_value(f["arm"].clone()).unwrap();
        let prop: Vec<Vec<f64>> = serde_json::from_value(f["propensity"].clone()).unwrap();
        let test = Dataset::from_x(matrix(&f["x_test"]), names);
        (f, ds, arm, prop, test)
    }

    #[test]
    fn dr_learner_matches_causalml_on_its_fixture() {
        let (f, ds, arm, prop, test) = causalml_fixture("dr_learner.json");
        let splits: Vec<Vec<usize>> = serde_json::from_value(f["splits"].clone()).unwrap();
        let d = UpliftData { data: &ds, arm: &arm, arms: 2, propensity: &prop };
        let ols = promoml_smartcore::Ridge;
        let params: Params = [("alpha".to_string(), promoml_core::ParamValue::Float(0.0))].into_iter().collect();
        let models = fit_dr(&ols, &params, Task::Regression, &d, &FitContext::new(1), &splits).unwrap();
        let fitted = FittedLearner::from_parts(LearnerKind::Dr, Task::Regression, 2, models, vec![]).unwrap();
        let e = fitted.effects(&test).unwrap();
        let tau: Vec<Vec<f64>> = serde_json::from_value(f["tau"].clone()).unwrap();
        let mu: Vec<Vec<f64>> = serde_json::from_value(f["mu"].clone()).unwrap();
        let close = |got: &[f64], want: &[f64], what: &str| {
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!((g - w).abs() < 1e-9, "{what} row {i}: {g} vs causalml {w}");
            }
        };
        for (a, (got, want)) in e.tau.iter().zip(&tau).enumerate() {
            close(got, want, &format!("effect of arm {}", a + 1));
        }
        // The control outcome is causalml's; the levels under the arms follow the effects (the
        // arms' outcome models are nuisances, checked through the effects they produce).
        let levels = e.mu.as_ref().unwrap();
        close(&levels[0], &mu[0], "outcome under control");
        for a in 1..levels.len() {
            let implied: Vec<f64> = levels[0].iter().zip(&e.tau[a - 1]).map(|(m, t)| m + t).collect();
            close(&levels[a], &implied, &format!("outcome under arm {a}"));
        }
        // Its own partitions: as KFold's sizes, every row once, in row order.
        let own = dr_splits(301, 9);
        assert_eq!(own.iter().map(Vec::len).collect::<Vec<_>>(), [101, 100, 100]);
        let mut all: Vec<usize> = own.concat();
        assert!(own.iter().all(|s| s.windows(2).all(|w| w[0] < w[1])));
        all.sort_unstable();
        assert_eq!(all, (0..301).collect::<Vec<_>>());
    }

    /// causalml 0.18's `BaseRRegressor` with `LinearRegression` (outcome model, and the weighted
    /// effect models) on a committed fixture (`scripts/r_fixture.py`), given its folds; ours is
    /// `smartcore.ridge` with alpha 0, which honours row weights.
    #[test]
    fn r_learner_matches_causalml_on_its_fixture() {
        let (f, ds, arm, prop, test) = causalml_fixture("r_learner.json");
        let folds: Vec<Vec<usize>> = serde_json::from_value(f["folds"].clone()).unwrap();
        let d = UpliftData { data: &ds, arm: &arm, arms: 2, propensity: &prop };
        let ols = promoml_smartcore::Ridge;
        let params: Params = [("alpha".to_string(), promoml_core::ParamValue::Float(0.0))].into_iter().collect();
        let models = fit_r(&ols, &params, Task::Regression, &d, &FitContext::new(1), &folds).unwrap();
        let fitted = FittedLearner::from_parts(LearnerKind::R, Task::Regression, 2, models, vec![]).unwrap();
        let e = fitted.effects(&test).unwrap();
        assert!(e.mu.is_none());
        let tau: Vec<Vec<f64>> = serde_json::from_value(f["tau"].clone()).unwrap();
        for (a, (got, want)) in e.tau.iter().zip(&tau).enumerate() {
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!((g - w).abs() < 1e-9, "effect of arm {} row {i}: {g} vs causalml {w}", a + 1);
            }
        }
        // A model that ignores row weights is refused, not silently fitted unweighted.
        let knn = promoml_smartcore::Knn;
        let e = fit_r(&knn, &knn.space().defaults(), Task::Regression, &d, &FitContext::new(1), &folds)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("ignores row weights"), "{e}");
        // Its own folds: stratified by arm (each fold holds each arm's rows within one), every
        // row once, in row order.
        let own = r_folds(&arm, 5, 3);
        let mut all: Vec<usize> = own.concat();
        assert!(own.iter().all(|s| s.windows(2).all(|w| w[0] < w[1])));
        for a in 0..3 {
            let sizes: Vec<usize> = own.iter().map(|f| f.iter().filter(|&&i| arm[i] == a).count()).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "arm {a}: {sizes:?}");
        }
        all.sort_unstable();
        assert_eq!(all, (0..300).collect::<Vec<_>>());
    }
}
