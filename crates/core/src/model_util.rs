//! Helpers for model plugins: task and target checks, feature standardisation, sigmoid and
//! softmax. Shared so every plugin checks its inputs the same way.

use crate::{Dataset, Error, Result, Task};
use ndarray::{Array1, Array2, Axis};

/// The task a dataset poses: no classes means regression.
pub fn task_of(data: &Dataset) -> Task {
    match data.n_classes() {
        0 => Task::Regression,
        2 => Task::Binary,
        _ => Task::Multiclass,
    }
}

/// The dataset's task, or an error when the model does not support it.
pub fn check_task(kind: &str, supported: &[Task], data: &Dataset) -> Result<Task> {
    let task = task_of(data);
    if data.n_classes() == 1 {
        return Err(Error::model(kind, "the target has a single class; classification needs at least two"));
    }
    if !supported.contains(&task) {
        let names: Vec<&str> = supported.iter().map(|t| t.name()).collect();
        return Err(Error::model(
            kind,
            format!("does not support {} tasks (supported: {})", task.name(), names.join(", ")),
        ));
    }
    if data.n_rows() == 0 || data.n_features() == 0 {
        return Err(Error::model(
            kind,
            format!("needs at least one row and one feature, got {}x{}", data.n_rows(), data.n_features()),
        ));
    }
    Ok(task)
}

/// Class indices of a classification target, checked to lie in `0..k`, with at least two
/// distinct classes present.
pub fn class_targets(kind: &str, data: &Dataset) -> Result<Vec<usize>> {
    let y = data.target(kind)?;
    let k = data.n_classes();
    if y.len() != data.n_rows() {
        return Err(Error::model(kind, format!("{} targets for {} rows", y.len(), data.n_rows())));
    }
    let mut present = vec![false; k];
    let mut out = Vec::with_capacity(y.len());
    for (i, &v) in y.iter().enumerate() {
        if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && (v as usize) < k) {
            return Err(Error::model(kind, format!("row {i}: target {v} is not a class index in 0..{k}")));
        }
        present[v as usize] = true;
        out.push(v as usize);
    }
    let n_present = present.iter().filter(|p| **p).count();
    if n_present < 2 {
        return Err(Error::model(
            kind,
            format!("the training rows hold {n_present} class(es); at least two distinct classes are needed"),
        ));
    }
    Ok(out)
}

/// A regression target, checked to be finite.
pub fn value_targets(kind: &str, data: &Dataset) -> Result<Vec<f64>> {
    let y = data.target(kind)?;
    if y.len() != data.n_rows() {
        return Err(Error::model(kind, format!("{} targets for {} rows", y.len(), data.n_rows())));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(Error::model(kind, format!("row {i}: target {} is not finite", y[i])));
    }
    Ok(y.to_vec())
}

/// An error when prediction data has a different number of features from training data.
pub fn check_features(kind: &str, expected: usize, data: &Dataset) -> Result<()> {
    if data.n_features() != expected {
        return Err(Error::model(
            kind,
            format!("was fitted on {expected} features but asked to predict rows with {}", data.n_features()),
        ));
    }
    Ok(())
}

/// Per-column centring and scaling learnt on training rows. Constant columns keep scale 1,
/// so they become all-zero columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    mean: Array1<f64>,
    scale: Array1<f64>,
    constant: Vec<bool>,
}

impl Standardizer {
    /// Learn means and standard deviations of the columns of `x`.
    pub fn fit(x: &Array2<f64>) -> Standardizer {
        let n = x.nrows().max(1) as f64;
        let mean = x.sum_axis(Axis(0)) / n;
        let mut scale = Array1::ones(x.ncols());
        let mut constant = vec![false; x.ncols()];
        for (j, col) in x.axis_iter(Axis(1)).enumerate() {
            let m = mean[j];
            let var = col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n;
            let sd = var.sqrt();
            if sd > 1e-12 * (1.0 + m.abs()) && sd.is_finite() {
                scale[j] = sd;
            } else {
                constant[j] = true;
            }
        }
        Standardizer { mean, scale, constant }
    }
    /// Number of columns it was fitted on.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }
    /// Which columns were constant in the training rows (they standardise to zero).
    pub fn constant(&self) -> &[bool] {
        &self.constant
    }
    /// Write the fitted means and scales (for artifacts).
    pub fn encode(&self, e: &mut crate::codec::Encoder) {
        e.f64s(self.mean.as_slice().expect("contiguous"));
        e.f64s(self.scale.as_slice().expect("contiguous"));
        e.bools(&self.constant);
    }
    /// Read what [`Standardizer::encode`] wrote.
    pub fn decode(d: &mut crate::codec::Decoder<'_>) -> Result<Standardizer> {
        let mean = d.f64s("standardizer means")?;
        let scale = d.f64s("standardizer scales")?;
        let constant = d.bools("standardizer constant flags")?;
        if scale.len() != mean.len() || constant.len() != mean.len() {
            return Err(d.corrupt("standardizer means, scales and flags differ in length"));
        }
        Ok(Standardizer { mean: Array1::from(mean), scale: Array1::from(scale), constant })
    }
    /// Exact explanations of a model linear in the standardised features,
    /// `raw = intercept + Σ_j w_j (x_j - mean_j) / scale_j` (see
    /// [`crate::explain::linear`]): the weights and intercept in the raw features' scale, then
    /// `w_j (x_j - baseline_j)` per feature. `None` without a baseline of the right length.
    pub fn explain_linear(
        &self,
        data: &Dataset,
        w: &[f64],
        intercept: f64,
        baseline: &[f64],
        space: crate::explain::Space,
    ) -> Option<Result<crate::explain::Explanations>> {
        if baseline.len() != self.n_features() || w.len() != self.n_features() {
            return None;
        }
        if let Err(e) = check_features("linear model", self.n_features(), data) {
            return Some(Err(e));
        }
        let raw_w: Vec<f64> = w.iter().zip(&self.scale).map(|(w, s)| w / s).collect();
        let raw_b = intercept - raw_w.iter().zip(&self.mean).map(|(w, m)| w * m).sum::<f64>();
        Some(crate::explain::linear(data, &raw_w, raw_b, baseline, space))
    }
    /// Standardised copy of `x`.
    pub fn transform(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut z = x.to_owned();
        for mut row in z.axis_iter_mut(Axis(0)) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - self.mean[j]) / self.scale[j];
            }
        }
        z
    }
}

/// Numerically stable logistic function.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// In-place softmax of one row of scores.
pub fn softmax(v: &mut [f64]) {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// A fitted linear classifier on standardised features, shared by the plugins whose logistic
/// regressions reduce to it: one logit row for two classes (sigmoid), one row per class
/// otherwise (softmax). Classes absent from the training rows get probability 0. Saved as the
/// standardiser, the class count, the weights, the intercepts and the class of each row.
#[derive(Debug, Clone)]
pub struct LinearClassifier {
    /// Model kind written into (and checked when reading) saved bytes and named in errors.
    pub kind: &'static str,
    /// Standardisation learnt on the training rows.
    pub st: Standardizer,
    /// Number of classes of the task.
    pub k: usize,
    /// Rows of coefficients (standardised scale).
    pub weights: Array2<f64>,
    /// One intercept per row of `weights`.
    pub bias: Vec<f64>,
    /// The class index of each logit (binary: `[negative, positive]`).
    pub classes: Vec<usize>,
}

impl LinearClassifier {
    /// Read what [`FittedModel::save`] wrote for model kind `kind`.
    pub fn from_bytes(kind: &'static str, bytes: &[u8]) -> Result<LinearClassifier> {
        let mut d = crate::codec::Decoder::new(bytes, kind)?;
        let st = Standardizer::decode(&mut d)?;
        let k = d.usize("class count")?;
        let weights = d.matrix("weights")?;
        let bias = d.f64s("intercepts")?;
        let classes = d.usizes("classes")?;
        d.finish()?;
        let rows = weights.nrows();
        let ok = weights.ncols() == st.n_features()
            && bias.len() == rows
            && k >= 2
            && classes.iter().all(|&c| c < k)
            && (classes.len() == rows || (rows == 1 && classes.len() == 2));
        if !ok {
            return Err(Error::model(kind, "saved parameters are corrupt: shapes do not agree"));
        }
        Ok(LinearClassifier { kind, st, k, weights, bias, classes })
    }
}

impl crate::FittedModel for LinearClassifier {
    fn save(&self) -> Result<Vec<u8>> {
        let mut e = crate::codec::Encoder::new(self.kind);
        self.st.encode(&mut e);
        e.usize(self.k);
        e.matrix(&self.weights);
        e.f64s(&self.bias);
        e.usizes(&self.classes);
        Ok(e.finish())
    }
    fn n_classes(&self) -> Option<usize> {
        Some(self.k)
    }
    /// Binary models: exact contributions to the log-odds of class 1 (linear in the features).
    fn explain(&self, data: &Dataset, baseline: &[f64]) -> Option<Result<crate::explain::Explanations>> {
        if self.k != 2 {
            return None;
        }
        let (w, b): (Vec<f64>, f64) = if self.weights.nrows() == 1 && self.classes.len() == 2 {
            // One logit for classes[1] against classes[0].
            let sign = if self.classes[1] == 1 { 1.0 } else { -1.0 };
            (self.weights.row(0).iter().map(|v| sign * v).collect(), sign * self.bias[0])
        } else {
            let row = |c: usize| self.classes.iter().position(|&x| x == c);
            let (r1, r0) = (row(1)?, row(0)?);
            let w = self.weights.row(r1).iter().zip(self.weights.row(r0)).map(|(a, b)| a - b).collect();
            (w, self.bias[r1] - self.bias[r0])
        };
        self.st.explain_linear(data, &w, b, baseline, crate::explain::Space::LogOdds)
    }
    fn predict(&self, data: &Dataset) -> Result<crate::Predictions> {
        check_features(self.kind, self.st.n_features(), data)?;
        let z = self.st.transform(&data.x);
        let mut scores = z.dot(&self.weights.t());
        for mut row in scores.rows_mut() {
            for (s, b) in row.iter_mut().zip(&self.bias) {
                *s += b;
            }
        }
        let mut out = Array2::zeros((data.n_rows(), self.k));
        let sigmoid_form = self.weights.nrows() == 1 && self.classes.len() == 2;
        let mut buf = vec![0.0; self.weights.nrows()];
        for (i, row) in scores.rows().into_iter().enumerate() {
            if sigmoid_form {
                let p1 = sigmoid(row[0]);
                out[[i, self.classes[1]]] = p1;
                out[[i, self.classes[0]]] = 1.0 - p1;
            } else {
                buf.iter_mut().zip(row.iter()).for_each(|(b, s)| *b = *s);
                softmax(&mut buf);
                for (c, p) in self.classes.iter().zip(&buf) {
                    out[[i, *c]] = *p;
                }
            }
        }
        Ok(crate::Predictions::Proba(out))
    }
}
