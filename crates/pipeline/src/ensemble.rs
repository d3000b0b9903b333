//! Ensembles of the best candidates, learnt from their out-of-fold predictions.
//!
//! * **Greedy selection** (Caruana et al. 2004, as in auto-sklearn): start empty, repeatedly add
//!   (with replacement) the candidate whose addition most improves the ranking metric of the
//!   averaged predictions; keep the best prefix of that sequence. Weights are selection counts.
//! * **Stacking**: a meta-learner with non-negative weights. Classification: a log-linear pool
//!   `p(c) ∝ exp(b_c + Σ_m w_m log p_m(c))` fitted by cross-entropy with an L2 penalty on `w`
//!   (for binary tasks, logistic regression on the candidates' logits). Regression: ridge with
//!   non-negative weights and a free intercept.
//!
//! The ensemble's cross-validation score is nested: for each fold the combiner is fitted on the
//! out-of-fold rows of the other folds and scored on this fold's rows, so it is never scored on
//! rows it was fitted on.

use crate::plan::{EnsembleKind, EnsemblePlan};
use crate::search::score_all;
use ndarray::{Array2, Axis};
use promoml_core::{Dataset, Error, Metric, Predictions, Result, Task};
use promoml_report::Scores;

/// A fitted combiner: one weight per member (and intercepts for stacking).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Combiner {
    /// Weight per member, in member order (non-negative).
    pub weights: Vec<f64>,
    /// Stacking intercepts: one per class (classification) or one (regression); empty for greedy.
    pub intercepts: Vec<f64>,
    pub(crate) stacking: bool,
}

const EPS: f64 = 1e-6;

fn proba(p: &Predictions) -> Option<&Array2<f64>> {
    match p {
        Predictions::Proba(a) => Some(a),
        Predictions::Values(_) => None,
    }
}

fn values(p: &Predictions) -> &[f64] {
    match p {
        Predictions::Values(v) => v,
        Predictions::Proba(_) => &[],
    }
}

fn subset(p: &Predictions, rows: &[usize]) -> Predictions {
    match p {
        Predictions::Proba(a) => Predictions::Proba(a.select(ndarray::Axis(0), rows)),
        Predictions::Values(v) => Predictions::Values(rows.iter().map(|&i| v[i]).collect()),
    }
}

impl Combiner {
    /// Whether the combiner fits `members` members that predict `classes` probability columns
    /// (0: values): one finite weight per member and, for stacking, one finite intercept per
    /// class (one for values). The error says what does not fit.
    pub(crate) fn check(&self, members: usize, classes: usize) -> std::result::Result<(), String> {
        if self.weights.len() != members {
            return Err(format!("has {} weights for {members} members", self.weights.len()));
        }
        let intercepts = if self.stacking { classes.max(1) } else { 0 };
        if self.intercepts.len() != intercepts {
            return Err(format!("has {} intercepts, not {intercepts}", self.intercepts.len()));
        }
        if self.weights.iter().chain(&self.intercepts).any(|v| !v.is_finite()) {
            return Err("has a weight or intercept that is not a finite number".into());
        }
        Ok(())
    }
    /// Whether it is a stacking combiner (a log-linear pool or ridge with intercepts) rather
    /// than greedy selection (a weighted mean).
    pub fn is_stacking(&self) -> bool {
        self.stacking
    }
    /// Combine the members' predictions (same rows, member order) with the fitted weights.
    /// Members with weight 0 are not read: any prediction of the right shape may stand in.
    pub fn combine(&self, preds: &[&Predictions]) -> Predictions {
        match preds[0] {
            Predictions::Values(first) => {
                let mut out = vec![self.intercepts.first().copied().unwrap_or(0.0); first.len()];
                for (w, p) in self.weights.iter().zip(preds) {
                    // A member with weight 0 is left out (so it need not even be predicted).
                    if *w == 0.0 {
                        continue;
                    }
                    for (o, v) in out.iter_mut().zip(values(p)) {
                        *o += w * v;
                    }
                }
                Predictions::Values(out)
            }
            Predictions::Proba(first) => {
                let (n, c) = first.dim();
                if self.stacking {
                    let mut z = Array2::from_shape_fn((n, c), |(_, k)| self.intercepts[k]);
                    for (w, p) in self.weights.iter().zip(preds) {
                        if *w == 0.0 {
                            continue;
                        }
                        let a = proba(p).expect("classification members give probabilities");
                        z.zip_mut_with(a, |zv, &pv| *zv += w * pv.max(EPS).ln());
                    }
                    softmax_rows(&mut z);
                    Predictions::Proba(z)
                } else {
                    let total: f64 = self.weights.iter().sum();
                    let mut out = Array2::zeros((n, c));
                    for (w, p) in self.weights.iter().zip(preds) {
                        if *w > 0.0 {
                            out.scaled_add(w / total, proba(p).expect("classification members give probabilities"));
                        }
                    }
                    Predictions::Proba(out)
                }
            }
        }
    }
}

fn softmax_rows(z: &mut Array2<f64>) {
    for mut row in z.rows_mut() {
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        row.mapv_inplace(|v| (v - m).exp());
        let s: f64 = row.sum();
        row.mapv_inplace(|v| v / s);
    }
}

/// Fit a combiner of `preds` (one per member, all rows) on the rows `rows` with targets `y`
/// (indexed like the predictions).
pub fn fit(
    kind: &EnsembleKind,
    task: Task,
    metric: Metric,
    preds: &[&Predictions],
    y: &[f64],
    rows: &[usize],
) -> Result<Combiner> {
    if preds.is_empty() {
        return Err(Error::model("ensemble", "no members to combine"));
    }
    let sub: Vec<Predictions> = preds.iter().map(|p| subset(p, rows)).collect();
    let ys: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
    match kind {
        EnsembleKind::Greedy { size } => greedy(&sub, &ys, metric, *size),
        EnsembleKind::Stacking { l2, .. } => {
            if task == Task::Regression {
                Ok(nn_ridge(&sub, &ys, *l2))
            } else {
                Ok(log_linear_pool(&sub, &ys, *l2))
            }
        }
    }
}

fn greedy(preds: &[Predictions], y: &[f64], metric: Metric, size: usize) -> Result<Combiner> {
    let m = preds.len();
    let better = |a: f64, b: f64| if metric.higher_is_better() { a > b } else { a < b };
    let mut counts = vec![0usize; m];
    let mut sum: Option<Predictions> = None;
    let mut best_prefix: Option<(f64, Vec<usize>)> = None;
    for round in 0..size {
        let mut pick: Option<(usize, f64)> = None;
        for (j, p) in preds.iter().enumerate() {
            let cand = add_scaled(sum.as_ref(), p, round);
            let s = metric.score(y, &cand)?;
            if pick.is_none_or(|(_, b)| better(s, b)) {
                pick = Some((j, s));
            }
        }
        let (j, s) = pick.expect("at least one member");
        sum = Some(add_scaled(sum.as_ref(), &preds[j], round));
        counts[j] += 1;
        if best_prefix.as_ref().is_none_or(|(b, _)| better(s, *b)) {
            best_prefix = Some((s, counts.clone()));
        }
    }
    let counts = best_prefix.map(|(_, c)| c).unwrap_or(counts);
    let total: usize = counts.iter().sum();
    Ok(Combiner {
        weights: counts.iter().map(|&c| c as f64 / total.max(1) as f64).collect(),
        intercepts: vec![],
        stacking: false,
    })
}

/// The running mean after adding `p` to a mean of `k` members.
fn add_scaled(mean: Option<&Predictions>, p: &Predictions, k: usize) -> Predictions {
    let kf = k as f64;
    match (mean, p) {
        (None, p) => p.clone(),
        (Some(Predictions::Proba(a)), Predictions::Proba(b)) => Predictions::Proba((a * kf + b) / (kf + 1.0)),
        (Some(Predictions::Values(a)), Predictions::Values(b)) => {
            Predictions::Values(a.iter().zip(b).map(|(x, y)| (x * kf + y) / (kf + 1.0)).collect())
        }
        _ => p.clone(),
    }
}

/// Log-linear pool with non-negative member weights, fitted by projected gradient descent
/// with a backtracking line search on the mean cross-entropy plus `l2 * |w|^2`.
fn log_linear_pool(preds: &[Predictions], y: &[f64], l2: f64) -> Combiner {
    let m = preds.len();
    let logs: Vec<Array2<f64>> =
        preds.iter().map(|p| proba(p).expect("probabilities").mapv(|v| v.max(EPS).ln())).collect();
    let (n, c) = logs[0].dim();
    let labels: Vec<usize> = y.iter().map(|&v| v as usize).collect();
    // Parameters: w (m), b (c).
    let loss_grad = |w: &[f64], b: &[f64], want_grad: bool| -> (f64, Vec<f64>, Vec<f64>) {
        let mut z = Array2::from_shape_fn((n, c), |(_, k)| b[k]);
        for (wj, l) in w.iter().zip(&logs) {
            z.scaled_add(*wj, l);
        }
        softmax_rows(&mut z);
        let mut loss = 0.0;
        for (i, &yi) in labels.iter().enumerate() {
            loss -= z[[i, yi]].max(1e-300).ln();
        }
        loss = loss / n as f64 + l2 * w.iter().map(|v| v * v).sum::<f64>();
        if !want_grad {
            return (loss, vec![], vec![]);
        }
        // d/dz = p - onehot
        for (i, &yi) in labels.iter().enumerate() {
            z[[i, yi]] -= 1.0;
        }
        let gw: Vec<f64> = w.iter().zip(&logs).map(|(wj, l)| (&z * l).sum() / n as f64 + 2.0 * l2 * wj).collect();
        let gb: Vec<f64> = (0..c).map(|k| z.column(k).sum() / n as f64).collect();
        (loss, gw, gb)
    };
    let mut w = vec![1.0 / m as f64; m];
    let mut b = vec![0.0; c];
    let mut step = 1.0;
    let (mut loss, mut gw, mut gb) = loss_grad(&w, &b, true);
    for _ in 0..300 {
        let mut improved = false;
        for _ in 0..30 {
            let nw: Vec<f64> = w.iter().zip(&gw).map(|(v, g)| (v - step * g).max(0.0)).collect();
            let nb: Vec<f64> = b.iter().zip(&gb).map(|(v, g)| v - step * g).collect();
            let (nl, _, _) = loss_grad(&nw, &nb, false);
            if nl < loss - 1e-12 {
                w = nw;
                b = nb;
                improved = true;
                step *= 1.5;
                break;
            }
            step *= 0.5;
        }
        if !improved {
            break;
        }
        let prev = loss;
        (loss, gw, gb) = loss_grad(&w, &b, true);
        if prev - loss < 1e-10 {
            break;
        }
    }
    Combiner { weights: w, intercepts: b, stacking: true }
}

/// Ridge regression with non-negative weights and a free intercept, by coordinate descent.
fn nn_ridge(preds: &[Predictions], y: &[f64], l2: f64) -> Combiner {
    let xs: Vec<&[f64]> = preds.iter().map(values).collect();
    let n = y.len() as f64;
    let ym = y.iter().sum::<f64>() / n;
    let means: Vec<f64> = xs.iter().map(|x| x.iter().sum::<f64>() / n).collect();
    let centred: Vec<Vec<f64>> = xs.iter().zip(&means).map(|(x, m)| x.iter().map(|v| v - m).collect()).collect();
    let yc: Vec<f64> = y.iter().map(|v| v - ym).collect();
    let norms: Vec<f64> = centred.iter().map(|x| x.iter().map(|v| v * v).sum::<f64>()).collect();
    let scale = norms.iter().sum::<f64>() / norms.len() as f64;
    let penalty = l2 * scale.max(1e-12);
    let m = xs.len();
    let mut w = vec![0.0; m];
    let mut resid = yc.clone();
    for _ in 0..500 {
        let mut change: f64 = 0.0;
        for j in 0..m {
            if norms[j] <= 0.0 {
                continue;
            }
            let xj = &centred[j];
            let rho: f64 = xj.iter().zip(&resid).map(|(a, r)| a * r).sum::<f64>() + w[j] * norms[j];
            let nw = (rho / (norms[j] + penalty)).max(0.0);
            let d = nw - w[j];
            if d != 0.0 {
                for (r, a) in resid.iter_mut().zip(xj) {
                    *r -= d * a;
                }
                change = change.max(d.abs());
                w[j] = nw;
            }
        }
        if change < 1e-10 {
            break;
        }
    }
    let b = ym - w.iter().zip(&means).map(|(wj, mj)| wj * mj).sum::<f64>();
    Combiner { weights: w, intercepts: vec![b], stacking: true }
}

/// Nested cross-validation of an ensemble: per fold, fit on the other folds' out-of-fold rows
/// and score this fold's rows. Returns the per-fold scores of every metric.
pub fn nested_cv(
    plan: &EnsemblePlan,
    task: Task,
    metric: Metric,
    metrics: &[Metric],
    oof: &[&Predictions],
    y: &[f64],
    folds: &[Vec<usize>],
) -> Result<Vec<Scores>> {
    let n = y.len();
    folds
        .iter()
        .map(|val| {
            let tr = crate::cv::complement(n, val);
            let comb = fit(&plan.kind, task, metric, oof, y, &tr)?;
            let sub: Vec<Predictions> = oof.iter().map(|p| subset(p, val)).collect();
            let refs: Vec<&Predictions> = sub.iter().collect();
            let pred = comb.combine(&refs);
            let yv: Vec<f64> = val.iter().map(|&i| y[i]).collect();
            score_all(metrics, &yv, &pred)
        })
        .collect()
}

/// Columns that carry one model's predictions as features for the next layer: the logit of the
/// positive class (binary), the log-probability of each class (multiclass) or the value.
fn prediction_columns(name: &str, pred: &Predictions) -> (Vec<String>, Array2<f64>) {
    const EPS: f64 = 1e-6;
    match pred {
        Predictions::Values(v) => (vec![format!("layer1:{name}")], Array2::from_shape_fn((v.len(), 1), |(i, _)| v[i])),
        Predictions::Proba(a) if a.ncols() == 2 => (
            vec![format!("layer1:{name}")],
            Array2::from_shape_fn((a.nrows(), 1), |(i, _)| {
                let q = a[[i, 1]].clamp(EPS, 1.0 - EPS);
                (q / (1.0 - q)).ln()
            }),
        ),
        Predictions::Proba(a) => {
            ((0..a.ncols()).map(|c| format!("layer1:{name}:{c}")).collect(), a.mapv(|q| q.max(EPS).ln()))
        }
    }
}

/// `ds` with the layer-1 predictions of its rows (`rows` of `preds`, or all) appended as features.
pub(crate) fn with_predictions(
    ds: &Dataset,
    names: &[String],
    preds: &[&Predictions],
    rows: Option<&[usize]>,
) -> Dataset {
    let mut out = ds.clone();
    let mut x = ds.x.clone();
    for (name, pred) in names.iter().zip(preds) {
        let (cols, values) = prediction_columns(name, pred);
        let values = match rows {
            Some(r) => values.select(Axis(0), r),
            None => values,
        };
        x = ndarray::concatenate(Axis(1), &[x.view(), values.view()]).expect("same rows");
        out.feature_names.extend(cols);
    }
    out.x = x;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng as _, SeedableRng};

    /// Three binary "models": two informative with independent noise, one pure noise.
    fn fixture(n: usize) -> (Vec<Predictions>, Vec<f64>) {
        let mut rng = promoml_core::Rng::seed_from_u64(3);
        let mut y = Vec::new();
        let mut ps = vec![Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..n {
            let signal: f64 = rng.random_range(-2.0..2.0);
            let label = f64::from(u8::from(rng.random::<f64>() < promoml_core::model_util::sigmoid(2.0 * signal)));
            y.push(label);
            ps[0].push(promoml_core::model_util::sigmoid(signal + rng.random_range(-1.5..1.5)));
            ps[1].push(promoml_core::model_util::sigmoid(signal + rng.random_range(-1.5..1.5)));
            ps[2].push(rng.random::<f64>());
        }
        (ps.into_iter().map(Predictions::binary).collect(), y)
    }

    fn auc(y: &[f64], p: &Predictions) -> f64 {
        Metric::RocAuc.score(y, p).unwrap()
    }

    #[test]
    fn greedy_beats_members_and_ignores_noise() {
        let (preds, y) = fixture(4000);
        let refs: Vec<&Predictions> = preds.iter().collect();
        let rows: Vec<usize> = (0..y.len()).collect();
        let c = fit(&EnsembleKind::Greedy { size: 20 }, Task::Binary, Metric::RocAuc, &refs, &y, &rows).unwrap();
        assert!((c.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(c.weights[2] < 0.1, "noise member weight {:?}", c.weights);
        let combined = c.combine(&refs);
        assert!(auc(&y, &combined) > auc(&y, &preds[0]).max(auc(&y, &preds[1])));
    }

    #[test]
    fn stacking_weights_are_non_negative_and_help_on_held_out_rows() {
        let (preds, y) = fixture(6000);
        let refs: Vec<&Predictions> = preds.iter().collect();
        let train: Vec<usize> = (0..4000).collect();
        let test: Vec<usize> = (4000..6000).collect();
        let kind = EnsembleKind::Stacking { l2: 1e-3, layers: 1, layer2_models: 3 };
        let c = fit(&kind, Task::Binary, Metric::RocAuc, &refs, &y, &train).unwrap();
        assert!(c.weights.iter().all(|&w| w >= 0.0));
        assert!(c.weights[2] < 0.05 && c.weights[0] > 0.2 && c.weights[1] > 0.2, "{:?}", c.weights);
        let sub: Vec<Predictions> = preds.iter().map(|p| subset(p, &test)).collect();
        let sub_refs: Vec<&Predictions> = sub.iter().collect();
        let yt: Vec<f64> = test.iter().map(|&i| y[i]).collect();
        let stacked = c.combine(&sub_refs);
        assert!(auc(&yt, &stacked) > auc(&yt, &sub[0]).max(auc(&yt, &sub[1])));
        // Better calibrated than the plain average: lower log loss.
        let avg = add_scaled(Some(&sub[0]), &sub[1], 1);
        assert!(Metric::LogLoss.score(&yt, &stacked).unwrap() < Metric::LogLoss.score(&yt, &avg).unwrap());
    }

    #[test]
    fn non_negative_ridge_recovers_weights() {
        let mut rng = promoml_core::Rng::seed_from_u64(5);
        let n = 2000;
        let a: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let b: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let c: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        // y falls with c: unconstrained, c's weight would be -0.2; non-negative, it is 0.
        let y: Vec<f64> = (0..n).map(|i| 3.0 + 0.7 * a[i] + 0.3 * b[i] - 0.2 * c[i]).collect();
        // A member anti-correlated with y must get weight 0, not a negative one.
        let neg = c;
        let preds = [Predictions::Values(a), Predictions::Values(b), Predictions::Values(neg)];
        let refs: Vec<&Predictions> = preds.iter().collect();
        let rows: Vec<usize> = (0..n).collect();
        let kind = EnsembleKind::Stacking { l2: 0.0, layers: 1, layer2_models: 3 };
        let c = fit(&kind, Task::Regression, Metric::Rmse, &refs, &y, &rows).unwrap();
        assert!((c.weights[0] - 0.7).abs() < 0.02 && (c.weights[1] - 0.3).abs() < 0.02, "{:?}", c.weights);
        assert_eq!(c.weights[2], 0.0);
        assert!((c.intercepts[0] - 3.0).abs() < 0.02);
    }

    #[test]
    fn multiclass_pool_gives_distributions() {
        let mut rng = promoml_core::Rng::seed_from_u64(9);
        let n = 600;
        let y: Vec<f64> = (0..n).map(|i| (i % 3) as f64).collect();
        let mk = |rng: &mut promoml_core::Rng| {
            let mut a =
                Array2::from_shape_fn((n, 3), |(i, k)| if k == i % 3 { 2.0 } else { 1.0 } + rng.random::<f64>() * 2.0);
            for mut r in a.rows_mut() {
                let s = r.sum();
                r.mapv_inplace(|v| v / s);
            }
            Predictions::Proba(a)
        };
        let preds = [mk(&mut rng), mk(&mut rng)];
        let refs: Vec<&Predictions> = preds.iter().collect();
        let rows: Vec<usize> = (0..n).collect();
        for kind in
            [EnsembleKind::Stacking { l2: 1e-3, layers: 1, layer2_models: 3 }, EnsembleKind::Greedy { size: 10 }]
        {
            let c = fit(&kind, Task::Multiclass, Metric::Accuracy, &refs, &y, &rows).unwrap();
            let p = c.combine(&refs);
            p.check(n, "ensemble").unwrap();
        }
    }
}
