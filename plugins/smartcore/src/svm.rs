//! `smartcore.svm_linear` and `smartcore.svm_rbf`: binary support vector classifiers with
//! Platt-scaled probabilities.
//!
//! smartcore's `SVC` borrows its parameters and training matrix for its whole life and its
//! kernel is not `Send`, so it cannot be stored in a fitted model. Instead the fitted machine is
//! read back through the public `decision_function` with a probing kernel: in "record" mode the
//! kernel returns 0 and records every support vector it is called with (the decision is then the
//! bias `b`); in "one-hot" mode it returns 1 only for the `r`-th support vector on probe row `r`
//! (the decision is then `b + w_r`). That relies only on the SVM's defining formula
//! `f(x) = b + sum_i w_i K(x, sv_i)`, and the copy predicts exactly like the original.

use crate::common::{Standardizer, check_features, check_task, class_targets, derive_seed, sc_err, sigmoid, to_dense};
use ndarray::{Array1, Array2, Axis};
use promoml_core::codec::{Decoder, Encoder};
use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Predictions, Result, SearchSpace,
    Task,
};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use smartcore::error::Failed;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::svm::Kernel;
use smartcore::svm::svc::{SVC, SVCParameters};
use std::cell::RefCell;
use std::rc::Rc;

/// Number of folds whose out-of-fold decision values calibrate the probabilities.
const CALIBRATION_FOLDS: usize = 3;

/// The kernel of a machine.
#[derive(Debug, Clone, Copy, PartialEq)]
enum KernelKind {
    /// `<a, b>`.
    Linear,
    /// `exp(-gamma |a - b|^2)`.
    Rbf(f64),
}

impl KernelKind {
    fn eval(self, a: &[f64], b: &[f64]) -> f64 {
        match self {
            KernelKind::Linear => a.iter().zip(b).map(|(x, y)| x * y).sum(),
            KernelKind::Rbf(g) => (-g * a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>()).exp(),
        }
    }
}

/// What the probing kernel does when smartcore calls it.
#[derive(Debug)]
enum Mode {
    /// The real kernel (training and cross-validated decisions).
    Real,
    /// Return 0 and record each support vector.
    Record(Vec<Vec<f64>>),
    /// Call `c` of the probe: 1 when support vector `c % n` is the probe row `c / n`, else 0.
    OneHot { n: usize, calls: usize },
}

/// A kernel whose behaviour can be switched after fitting (see the module docs).
#[derive(Debug)]
struct ProbeKernel {
    kind: KernelKind,
    mode: Rc<RefCell<Mode>>,
}

impl Kernel for ProbeKernel {
    fn apply(&self, x_i: &Vec<f64>, x_j: &Vec<f64>) -> std::result::Result<f64, Failed> {
        let mut mode = self.mode.borrow_mut();
        Ok(match &mut *mode {
            Mode::Real => self.kind.eval(x_i, x_j),
            Mode::Record(svs) => {
                svs.push(x_j.clone());
                0.0
            }
            Mode::OneHot { n, calls } => {
                let c = *calls;
                *calls += 1;
                if c / *n == c % *n { 1.0 } else { 0.0 }
            }
        })
    }
}

/// Solver settings of one machine.
#[derive(Debug, Clone, Copy)]
struct Settings {
    c: f64,
    tol: f64,
    epochs: usize,
    kernel: KernelKind,
}

type Params4 = SVCParameters<f64, i32, DenseMatrix<f64>, Vec<i32>>;

fn svc_params(s: &Settings, seed: u64, mode: &Rc<RefCell<Mode>>) -> Params4 {
    SVCParameters::default()
        .with_c(s.c)
        .with_tol(s.tol)
        .with_epoch(s.epochs)
        .with_seed(Some(seed))
        .with_kernel(ProbeKernel { kind: s.kernel, mode: Rc::clone(mode) })
}

/// Fit on `x`/`y` and return the decision values of `eval`.
fn fit_decide(kind: &str, x: &Array2<f64>, y: &[i32], eval: &Array2<f64>, s: &Settings, seed: u64) -> Result<Vec<f64>> {
    let xm = to_dense(kind, x)?;
    let em = to_dense(kind, eval)?;
    let yv = y.to_vec();
    let mode = Rc::new(RefCell::new(Mode::Real));
    let params = svc_params(s, seed, &mode);
    let svc = SVC::fit(&xm, &yv, &params).map_err(sc_err(kind))?;
    svc.decision_function(&em).map_err(sc_err(kind))
}

/// A fitted machine read back from smartcore: `f(x) = b + sum_i coef_i K(x, sv_i)`.
#[derive(Debug, Clone)]
struct Machine {
    sv: Array2<f64>,
    coef: Vec<f64>,
    b: f64,
}

/// Fit on all of `x`/`y` and read the machine back through probing.
fn fit_machine(kind: &str, x: &Array2<f64>, y: &[i32], s: &Settings, seed: u64) -> Result<Machine> {
    let xm = to_dense(kind, x)?;
    let yv = y.to_vec();
    let mode = Rc::new(RefCell::new(Mode::Real));
    let params = svc_params(s, seed, &mode);
    let svc = SVC::fit(&xm, &yv, &params).map_err(sc_err(kind))?;
    // The probing kernel ignores the probe rows' values, so one column is enough.
    let one = DenseMatrix::new(1, 1, vec![0.0], false).map_err(sc_err(kind))?;
    *mode.borrow_mut() = Mode::Record(Vec::new());
    let b = svc.decision_function(&one).map_err(sc_err(kind))?[0];
    let svs = match std::mem::replace(&mut *mode.borrow_mut(), Mode::Real) {
        Mode::Record(v) => v,
        _ => Vec::new(),
    };
    let p = x.ncols();
    let n_sv = svs.len();
    if svs.iter().any(|v| v.len() != p) {
        return Err(Error::model(kind, "smartcore returned support vectors of the wrong length"));
    }
    let mut coef = Vec::with_capacity(n_sv);
    if n_sv > 0 {
        let probe = DenseMatrix::new(n_sv, 1, vec![0.0; n_sv], false).map_err(sc_err(kind))?;
        *mode.borrow_mut() = Mode::OneHot { n: n_sv, calls: 0 };
        let f = svc.decision_function(&probe).map_err(sc_err(kind))?;
        *mode.borrow_mut() = Mode::Real;
        coef.extend(f.iter().map(|v| v - b));
    }
    let sv = Array2::from_shape_fn((n_sv, p), |(i, j)| svs[i][j]);
    if !b.is_finite() || coef.iter().any(|c| !c.is_finite()) {
        return Err(Error::model(kind, "the solver produced non-finite weights"));
    }
    Ok(Machine { sv, coef, b })
}

/// Platt's sigmoid `P(y=1 | f) = 1 / (1 + exp(a f + b))`, fitted by Newton's method with
/// backtracking on smoothed targets (Lin, Lin and Weng, 2007).
pub(crate) fn platt(dec: &[f64], positive: &[bool]) -> (f64, f64) {
    let prior1 = positive.iter().filter(|p| **p).count() as f64;
    let prior0 = dec.len() as f64 - prior1;
    let hi = (prior1 + 1.0) / (prior1 + 2.0);
    let lo = 1.0 / (prior0 + 2.0);
    let t: Vec<f64> = positive.iter().map(|&p| if p { hi } else { lo }).collect();
    let objective = |a: f64, b: f64| -> f64 {
        dec.iter()
            .zip(&t)
            .map(|(&d, &ti)| {
                let f = d * a + b;
                if f >= 0.0 { ti * f + (-f).exp().ln_1p() } else { (ti - 1.0) * f + f.exp().ln_1p() }
            })
            .sum()
    };
    let (mut a, mut b) = (0.0, ((prior0 + 1.0) / (prior1 + 1.0)).ln());
    let mut fval = objective(a, b);
    for _ in 0..100 {
        let (mut h11, mut h22, mut h21, mut g1, mut g2) = (1e-12, 1e-12, 0.0, 0.0, 0.0);
        for (&d, &ti) in dec.iter().zip(&t) {
            let f = d * a + b;
            let (p, q) = if f >= 0.0 {
                let e = (-f).exp();
                (e / (1.0 + e), 1.0 / (1.0 + e))
            } else {
                let e = f.exp();
                (1.0 / (1.0 + e), e / (1.0 + e))
            };
            let d2 = p * q;
            h11 += d * d * d2;
            h22 += d2;
            h21 += d * d2;
            let d1 = ti - p;
            g1 += d * d1;
            g2 += d1;
        }
        if g1.abs() < 1e-5 && g2.abs() < 1e-5 {
            break;
        }
        let det = h11 * h22 - h21 * h21;
        let da = -(h22 * g1 - h21 * g2) / det;
        let db = -(-h21 * g1 + h11 * g2) / det;
        let gd = g1 * da + g2 * db;
        let mut step = 1.0;
        while step >= 1e-10 {
            let (na, nb) = (a + step * da, b + step * db);
            let nf = objective(na, nb);
            if nf < fval + 1e-4 * step * gd {
                a = na;
                b = nb;
                fval = nf;
                break;
            }
            step /= 2.0;
        }
        if step < 1e-10 {
            break;
        }
    }
    (a, b)
}

/// Stratified subsample of at most `max_rows` row indices (sorted), keeping class shares.
fn subsample(y: &[usize], max_rows: usize, rng: &mut promoml_core::Rng) -> Vec<usize> {
    if y.len() <= max_rows {
        return (0..y.len()).collect();
    }
    let mut out = Vec::with_capacity(max_rows);
    for c in 0..2 {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == c).collect();
        idx.shuffle(rng);
        let take = ((idx.len() as f64 * max_rows as f64 / y.len() as f64).round() as usize).max(idx.len().min(3));
        out.extend_from_slice(&idx[..take.min(idx.len())]);
    }
    out.sort_unstable();
    out
}

/// Stratified fold number of each row.
fn folds(y: &[usize], k: usize, rng: &mut promoml_core::Rng) -> Vec<usize> {
    let mut fold = vec![0; y.len()];
    for c in 0..2 {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == c).collect();
        idx.shuffle(rng);
        for (pos, i) in idx.into_iter().enumerate() {
            fold[i] = pos % k;
        }
    }
    fold
}

/// A binary support vector classifier (linear or RBF kernel) from smartcore.
///
/// Features are standardised with the training mean and standard deviation. Training rows
/// beyond `max_rows` are dropped by a seeded stratified subsample: smartcore's SMO solver scales
/// worse than O(n²) (on a 28-feature benchmark one linear machine took 1.6 s on 1000 rows and
/// 26 s on 2000; larger `c` is slower still), so the default is 1000 rows. Probabilities come from Platt scaling: a sigmoid fitted on out-of-fold decision values
/// of a stratified 3-fold cross-validation of the (subsampled) training rows; the final machine
/// is then fitted on all of them. So a fit trains four machines.
#[derive(Debug, Clone, Copy)]
pub struct Svm {
    rbf: bool,
}

impl Svm {
    /// The linear-kernel machine, `smartcore.svm_linear`.
    pub fn linear() -> Svm {
        Svm { rbf: false }
    }
    /// The RBF-kernel machine, `smartcore.svm_rbf`.
    pub fn rbf() -> Svm {
        Svm { rbf: true }
    }
}

impl Model for Svm {
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedModel>> {
        let kind = self.kind_static();
        let mut d = Decoder::new(bytes, kind)?;
        let st = Standardizer::decode(&mut d)?;
        let p = st.n_features();
        let scorer = match d.u8("kernel")? {
            0 => Scorer::Linear { w: Array1::from(d.f64s("weights")?) },
            1 => {
                Scorer::Rbf { gamma: d.f64("gamma")?, sv: d.matrix("support vectors")?, coef: d.f64s("coefficients")? }
            }
            v => return Err(d.corrupt(format!("unknown kernel tag {v}"))),
        };
        let b = d.f64("bias")?;
        let platt = (d.f64("Platt A")?, d.f64("Platt B")?);
        d.finish()?;
        let ok = match &scorer {
            Scorer::Linear { w } => w.len() == p,
            Scorer::Rbf { sv, coef, .. } => sv.ncols() == p && coef.len() == sv.nrows(),
        };
        if !ok {
            return Err(promoml_core::Error::model(kind, "saved parameters are corrupt: shapes do not agree"));
        }
        Ok(Box::new(FittedSvm { kind, st, scorer, b, platt }))
    }
    fn kind(&self) -> &str {
        if self.rbf { "smartcore.svm_rbf" } else { "smartcore.svm_linear" }
    }
    fn description(&self) -> &str {
        if self.rbf {
            "support vector classifier with an RBF kernel (smartcore), Platt-calibrated probabilities; binary"
        } else {
            "support vector classifier with a linear kernel (smartcore), Platt-calibrated probabilities; binary"
        }
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Binary]
    }
    fn space(&self) -> SearchSpace {
        let mut params = vec![
            ParamSpec::float(
                "c",
                "penalty on margin violations (larger = fit the training rows harder)",
                1.0,
                1e-6,
                1e6,
            )
            .search_float(1e-2, 100.0, true),
        ];
        if self.rbf {
            params.push(
                ParamSpec::float(
                    "gamma",
                    "RBF kernel width: K(a, b) = exp(-gamma |a - b|^2) on standardised features; 0 = 1 / n_features",
                    0.0,
                    0.0,
                    1e4,
                )
                .search_float(1e-4, 10.0, true),
            );
        }
        params.extend([
            ParamSpec::int(
                "max_rows",
                "train on a seeded stratified subsample of at most this many rows (smartcore's solver \
                 slows down steeply with rows: seconds at 1000, minutes at 3000)",
                1000,
                20,
                1_000_000,
            ),
            ParamSpec::int("epochs", "passes of smartcore's SMO solver over the training rows", 2, 1, 100),
            ParamSpec::float("tol", "stopping tolerance of the solver", 1e-3, 1e-8, 1.0),
        ]);
        SearchSpace::new(params)
    }
    fn cost(&self, rows: usize, features: usize, params: &Params) -> f64 {
        // SMO over the (subsampled) rows: kernel rows against every support vector, per epoch.
        let m = (rows as f64).min(self.space().number(params, "max_rows", 1000.0));
        m * m * features.max(1) as f64 * self.space().number(params, "epochs", 2.0) * 2.0
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        let kind = self.kind();
        check_task(kind, self.tasks(), data)?;
        let y_all = class_targets(kind, data)?;
        let max_rows = params.usize("max_rows")?;
        let p = data.n_features();
        let gamma = if self.rbf {
            let g = params.f64("gamma")?;
            if g > 0.0 { g } else { 1.0 / p as f64 }
        } else {
            0.0
        };
        let settings = Settings {
            c: params.f64("c")?,
            tol: params.f64("tol")?,
            epochs: params.usize("epochs")?,
            kernel: if self.rbf { KernelKind::Rbf(gamma) } else { KernelKind::Linear },
        };
        let mut rng = ctx.rng();
        let rows = subsample(&y_all, max_rows, &mut rng);
        let y: Vec<usize> = rows.iter().map(|&i| y_all[i]).collect();
        let n_pos = y.iter().filter(|&&c| c == 1).count();
        let min_class = n_pos.min(y.len() - n_pos);
        if min_class < CALIBRATION_FOLDS {
            return Err(Error::model(
                kind,
                format!(
                    "needs at least {CALIBRATION_FOLDS} training rows of each class for probability calibration, \
                     the rarest class has {min_class}"
                ),
            ));
        }
        let train_fold_rows = y.len() - y.len().div_ceil(CALIBRATION_FOLDS);
        if train_fold_rows < p {
            // smartcore's SMO truncates feature vectors to the number of rows when there are
            // fewer rows than features, which would silently corrupt the model.
            return Err(Error::model(
                kind,
                format!("needs more training rows than features ({} rows for {p} features)", y.len()),
            ));
        }
        let st = Standardizer::fit(&data.x.select(Axis(0), &rows));
        let z = st.transform(&data.x.select(Axis(0), &rows));
        let yi: Vec<i32> = y.iter().map(|&c| c as i32).collect();
        let fold = folds(&y, CALIBRATION_FOLDS, &mut rng);
        let mut oof = vec![0.0; y.len()];
        for f in 0..CALIBRATION_FOLDS {
            ctx.check_deadline(kind)?;
            let tr: Vec<usize> = (0..y.len()).filter(|&i| fold[i] != f).collect();
            let te: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == f).collect();
            let ytr: Vec<i32> = tr.iter().map(|&i| yi[i]).collect();
            let dec = fit_decide(
                kind,
                &z.select(Axis(0), &tr),
                &ytr,
                &z.select(Axis(0), &te),
                &settings,
                derive_seed(ctx.seed, f as u64 + 1),
            )?;
            for (&i, d) in te.iter().zip(dec) {
                oof[i] = d;
            }
        }
        if oof.iter().any(|d| !d.is_finite()) {
            return Err(Error::model(kind, "the solver produced non-finite decision values"));
        }
        let positive: Vec<bool> = y.iter().map(|&c| c == 1).collect();
        let (a, b) = platt(&oof, &positive);
        ctx.check_deadline(kind)?;
        let m = fit_machine(kind, &z, &yi, &settings, derive_seed(ctx.seed, 0))?;
        let scorer = match settings.kernel {
            KernelKind::Linear => {
                let mut w = Array1::zeros(p);
                for (row, c) in m.sv.rows().into_iter().zip(&m.coef) {
                    w.scaled_add(*c, &row);
                }
                Scorer::Linear { w }
            }
            KernelKind::Rbf(g) => Scorer::Rbf { gamma: g, sv: m.sv, coef: m.coef },
        };
        Ok(Box::new(FittedSvm { kind: self.kind_static(), st, scorer, b: m.b, platt: (a, b) }))
    }
}

impl Svm {
    fn kind_static(&self) -> &'static str {
        if self.rbf { "smartcore.svm_rbf" } else { "smartcore.svm_linear" }
    }
}

/// How a fitted machine computes decision values (without the bias).
#[derive(Debug, Clone)]
enum Scorer {
    /// `<w, x>`.
    Linear { w: Array1<f64> },
    /// `sum_i coef_i exp(-gamma |x - sv_i|^2)`.
    Rbf { gamma: f64, sv: Array2<f64>, coef: Vec<f64> },
}

#[derive(Debug, Clone)]
struct FittedSvm {
    kind: &'static str,
    st: Standardizer,
    scorer: Scorer,
    b: f64,
    platt: (f64, f64),
}

impl FittedSvm {
    fn decision(&self, z: &Array2<f64>) -> Vec<f64> {
        match &self.scorer {
            Scorer::Linear { w } => z.dot(w).iter().map(|v| v + self.b).collect(),
            Scorer::Rbf { gamma, sv, coef } => {
                let rows: Vec<_> = z.rows().into_iter().collect();
                rows.par_iter()
                    .map(|x| {
                        let mut f = self.b;
                        for (s, c) in sv.rows().into_iter().zip(coef) {
                            let d2: f64 = x.iter().zip(s.iter()).map(|(a, b)| (a - b) * (a - b)).sum();
                            f += c * (-gamma * d2).exp();
                        }
                        f
                    })
                    .collect()
            }
        }
    }
}

impl FittedModel for FittedSvm {
    fn save(&self) -> Result<Vec<u8>> {
        let mut e = Encoder::new(self.kind);
        self.st.encode(&mut e);
        match &self.scorer {
            Scorer::Linear { w } => {
                e.u8(0);
                e.f64s(&w.to_vec());
            }
            Scorer::Rbf { gamma, sv, coef } => {
                e.u8(1);
                e.f64(*gamma);
                e.matrix(sv);
                e.f64s(coef);
            }
        }
        e.f64(self.b);
        e.f64(self.platt.0);
        e.f64(self.platt.1);
        Ok(e.finish())
    }
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        check_features(self.kind, self.st.n_features(), data)?;
        let z = self.st.transform(&data.x);
        let (a, b) = self.platt;
        Ok(Predictions::binary(self.decision(&z).into_iter().map(|f| sigmoid(-(a * f + b)))))
    }
    fn n_classes(&self) -> Option<usize> {
        Some(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testutil::*;
    use promoml_core::{Metric, ParamValue};

    #[test]
    fn platt_recovers_a_sigmoid() {
        // Labels drawn from P(y=1|f) = sigmoid(2 f - 0.5): Platt's A ~ -2, B ~ 0.5.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let dec: Vec<f64> = (0..4000).map(|_| rng.random::<f64>() * 6.0 - 3.0).collect();
        let pos: Vec<bool> = dec.iter().map(|&f| rng.random::<f64>() < sigmoid(2.0 * f - 0.5)).collect();
        let (a, b) = platt(&dec, &pos);
        assert!((a + 2.0).abs() < 0.25 && (b - 0.5).abs() < 0.2, "a {a} b {b}");
    }

    #[test]
    fn probed_machine_matches_smartcore() {
        let ds = blobs(120, 3, 2, 1.0, 9);
        let st = Standardizer::fit(&ds.x);
        let z = st.transform(&ds.x);
        let y: Vec<i32> = ds.y.as_ref().unwrap().iter().map(|&v| v as i32).collect();
        for kernel in [KernelKind::Linear, KernelKind::Rbf(0.5)] {
            let s = Settings { c: 1.0, tol: 1e-3, epochs: 2, kernel };
            let direct = fit_decide("t", &z, &y, &z, &s, 11).unwrap();
            let m = fit_machine("t", &z, &y, &s, 11).unwrap();
            assert!(!m.coef.is_empty());
            for (i, row) in z.rows().into_iter().enumerate() {
                let row = row.to_vec();
                let f = m.b
                    + m.sv
                        .rows()
                        .into_iter()
                        .zip(&m.coef)
                        .map(|(s, c)| c * kernel.eval(&row, &s.to_vec()))
                        .sum::<f64>();
                assert!((f - direct[i]).abs() < 1e-9 * (1.0 + f.abs()), "{kernel:?} row {i}: {f} vs {}", direct[i]);
            }
        }
    }

    #[test]
    fn linear_and_rbf_hold_out_auc() {
        let ds = blobs(400, 4, 2, 2.0, 4);
        let (train, test) = split(&ds, 0.7);
        for model in [Svm::linear(), Svm::rbf()] {
            let pred = fit_predict(&model, &train, &test, &Params::new(), 3);
            let auc = score(Metric::RocAuc, &test, &pred);
            assert!(auc > 0.9, "{}: auc {auc}", model.kind());
            let ll = score(Metric::LogLoss, &test, &pred);
            assert!(ll < 0.45, "{}: log loss {ll}", model.kind());
        }
    }

    #[test]
    fn rbf_learns_a_ring() {
        // Class 1 inside the unit circle, class 0 outside: not linearly separable.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let n = 400;
        let mut x = Array2::zeros((n, 2));
        let mut y = Vec::new();
        for i in 0..n {
            let (a, b) = (rng.random::<f64>() * 4.0 - 2.0, rng.random::<f64>() * 4.0 - 2.0);
            x[[i, 0]] = a;
            x[[i, 1]] = b;
            y.push(if a * a + b * b < 1.5 { 1.0 } else { 0.0 });
        }
        let mut ds = Dataset::from_x(x, vec!["a".into(), "b".into()]);
        ds.y = Some(y);
        ds.classes = vec!["out".into(), "in".into()];
        let (train, test) = split(&ds, 0.7);
        let given = params(&[("gamma", ParamValue::Float(1.0)), ("c", ParamValue::Float(10.0))]);
        let pred = fit_predict(&Svm::rbf(), &train, &test, &given, 1);
        let auc = score(Metric::RocAuc, &test, &pred);
        assert!(auc > 0.95, "ring auc {auc}");
        let lin = fit_predict(&Svm::linear(), &train, &test, &Params::new(), 1);
        assert!(score(Metric::RocAuc, &test, &lin) < 0.8);
    }

    #[test]
    fn subsampling_deterministic_and_params_checked() {
        let ds = blobs(300, 3, 2, 1.5, 6);
        let (train, test) = split(&ds, 0.7);
        let given = params(&[("max_rows", ParamValue::Int(100))]);
        let a = fit_predict(&Svm::rbf(), &train, &test, &given, 8);
        let b = fit_predict(&Svm::rbf(), &train, &test, &given, 8);
        assert_eq!(a, b);
        assert!(score(Metric::RocAuc, &test, &a) > 0.85);
        for m in [Svm::linear(), Svm::rbf()] {
            check_space(&m);
            rejects(&m, "c", ParamValue::Float(0.0));
            rejects(&m, "max_rows", ParamValue::Int(5));
            rejects(&m, "epochs", ParamValue::Int(0));
        }
        rejects(&Svm::rbf(), "gamma", ParamValue::Float(-1.0));
        rejects(&Svm::linear(), "gamma", ParamValue::Float(1.0));
    }

    #[test]
    fn rejects_multiclass_and_tiny_classes() {
        let p = Svm::linear().space().defaults();
        let multi = blobs(90, 3, 3, 2.0, 1);
        let e = Svm::linear().fit(&multi, &p, &FitContext::new(1)).err().unwrap().to_string();
        assert!(e.contains("does not support multiclass"), "{e}");
        let ds = blobs(60, 2, 2, 2.0, 1);
        let keep: Vec<usize> = (0..60).filter(|i| i % 2 == 0 || *i < 4).collect();
        let e = Svm::rbf().fit(&ds.subset(&keep), &Svm::rbf().space().defaults(), &FitContext::new(1)).err().unwrap();
        assert!(e.to_string().contains("at least 3 training rows of each class"), "{e}");
    }
}
