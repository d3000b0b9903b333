//! `smartcore.ridge`: L2-penalised least squares.

use crate::common::{Standardizer, check_features, check_task, sc_err, to_dense, value_targets};
use ndarray::{Array1, Axis};
use promoml_core::codec::{Decoder, Encoder};
use promoml_core::{
    Dataset, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Predictions, Result, SearchSpace, Task,
};
use smartcore::linalg::basic::arrays::Array as _;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::ridge_regression::{RidgeRegression, RidgeRegressionParameters, RidgeRegressionSolverName};

const KIND: &str = "smartcore.ridge";

/// Ridge regression (smartcore): minimises `|y - X w|^2 + alpha |w|^2` on standardised features
/// with a centred target (so the intercept is the training mean and is not penalised).
///
/// Columns that are constant in the training rows are left out. smartcore solves the normal
/// equations by Cholesky decomposition (SVD when `alpha` is 0) and needs more rows than features.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ridge;

impl Model for Ridge {
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedModel>> {
        let mut d = Decoder::new(bytes, KIND)?;
        let st = Standardizer::decode(&mut d)?;
        let keep = d.usizes("kept columns")?;
        let w = Array1::from(d.f64s("coefficients")?);
        let mean = d.f64("intercept")?;
        d.finish()?;
        if w.len() != keep.len() || keep.iter().any(|&j| j >= st.n_features()) {
            return Err(promoml_core::Error::model(KIND, "saved parameters are corrupt: shapes do not agree"));
        }
        Ok(Box::new(FittedRidge { st, keep, w, mean }))
    }
    fn kind(&self) -> &str {
        KIND
    }
    fn description(&self) -> &str {
        "ridge regression (smartcore) on standardised features"
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Regression]
    }
    fn honours_weights(&self) -> bool {
        true
    }
    fn space(&self) -> SearchSpace {
        SearchSpace::new(vec![
            ParamSpec::float(
                "alpha",
                "L2 penalty on the coefficients of the standardised features (added to the summed squared error)",
                1.0,
                0.0,
                1e6,
            )
            .search_float(1e-3, 1e3, true),
        ])
    }
    fn cost(&self, rows: usize, features: usize, _params: &Params) -> f64 {
        // The normal equations: Xᵀ X, then a features × features solve.
        let f = features.max(1) as f64;
        rows as f64 * f * f + f * f * f
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        check_task(KIND, self.tasks(), data)?;
        let y = value_targets(KIND, data)?;
        let alpha = params.f64("alpha")?;
        let st = Standardizer::fit(&data.x);
        let keep: Vec<usize> = (0..data.n_features()).filter(|&j| !st.constant()[j]).collect();
        // Row weights: weighted least squares, by centring on the weighted means and scaling
        // each row by the square root of its weight (the normal equations of Σ w (y - ŷ)²).
        let weights = row_weights(data)?;
        let total: f64 = weights.as_ref().map_or(y.len() as f64, |w| w.iter().sum());
        let weight = |i: usize| weights.as_ref().map_or(1.0, |w| w[i]);
        let mut mean = (0..y.len()).map(|i| weight(i) * y[i]).sum::<f64>() / total;
        let mut w = Array1::zeros(keep.len());
        if !keep.is_empty() {
            let mut z = st.transform(&data.x).select(Axis(1), &keep);
            let mut yc: Vec<f64> = y.iter().map(|v| v - mean).collect();
            let mut z_mean = Array1::zeros(keep.len());
            if let Some(wt) = &weights {
                z_mean = z.t().dot(&Array1::from(wt.clone())) / total;
                for (i, mut row) in z.rows_mut().into_iter().enumerate() {
                    let r = wt[i].sqrt();
                    row -= &z_mean;
                    row *= r;
                    yc[i] *= r;
                }
            }
            let x = to_dense(KIND, &z)?;
            let solver = if alpha > 0.0 { RidgeRegressionSolverName::Cholesky } else { RidgeRegressionSolverName::SVD };
            let p = RidgeRegressionParameters::default().with_alpha(alpha).with_normalize(false).with_solver(solver);
            ctx.check_deadline(KIND)?;
            let m: RidgeRegression<f64, f64, DenseMatrix<f64>, Vec<f64>> =
                RidgeRegression::fit(&x, &yc, p).map_err(sc_err(KIND))?;
            let coef = m.coefficients();
            for (j, wj) in w.iter_mut().enumerate() {
                *wj = *coef.get((j, 0));
            }
            if w.iter().any(|v: &f64| !v.is_finite()) {
                return Err(promoml_core::Error::model(KIND, "singular system; use alpha > 0"));
            }
            // The prediction is `z · w + mean`: the intercept absorbs the weighted centring.
            mean -= z_mean.dot(&w);
        }
        Ok(Box::new(FittedRidge { st, keep, w, mean }))
    }
}

/// The row weights of `data`, checked (finite, at least 0, not all 0); `None` when absent.
fn row_weights(data: &Dataset) -> Result<Option<Vec<f64>>> {
    let Some(w) = &data.weights else { return Ok(None) };
    let n = data.n_rows();
    if w.len() != n {
        return Err(promoml_core::Error::model(KIND, format!("{} row weights for {n} rows", w.len())));
    }
    if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(promoml_core::Error::model(
            KIND,
            format!("row weight {} in row {i} is not a finite number >= 0", w[i]),
        ));
    }
    if !w.iter().any(|&v| v > 0.0) {
        return Err(promoml_core::Error::model(KIND, "every row weight is zero"));
    }
    Ok(Some(w.clone()))
}

struct FittedRidge {
    st: Standardizer,
    keep: Vec<usize>,
    w: Array1<f64>,
    mean: f64,
}

impl FittedModel for FittedRidge {
    fn save(&self) -> Result<Vec<u8>> {
        let mut e = Encoder::new(KIND);
        self.st.encode(&mut e);
        e.usizes(&self.keep);
        e.f64s(&self.w.to_vec());
        e.f64(self.mean);
        Ok(e.finish())
    }
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        check_features(KIND, self.st.n_features(), data)?;
        if self.keep.is_empty() {
            return Ok(Predictions::Values(vec![self.mean; data.n_rows()]));
        }
        let z = self.st.transform(&data.x).select(Axis(1), &self.keep);
        Ok(Predictions::Values(z.dot(&self.w).iter().map(|v| v + self.mean).collect()))
    }
    fn n_classes(&self) -> Option<usize> {
        Some(0)
    }
    /// Exact: the prediction is linear in the features (0 weight on the dropped ones).
    fn explain(&self, data: &Dataset, baseline: &[f64]) -> Option<Result<promoml_core::explain::Explanations>> {
        let mut w = vec![0.0; self.st.n_features()];
        for (&j, &v) in self.keep.iter().zip(&self.w) {
            *w.get_mut(j)? = v;
        }
        self.st.explain_linear(data, &w, self.mean, baseline, promoml_core::explain::Space::Value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testutil::*;
    use promoml_core::{Metric, ParamValue};

    #[test]
    fn hold_out_quality_and_constant_columns() {
        let mut ds = linear(400, 5, 0.5, 1);
        ds.x.column_mut(4).fill(7.0); // constant column
        let (train, test) = split(&ds, 0.75);
        let pred = fit_predict(&Ridge, &train, &test, &Params::new(), 1);
        let r2 = score(Metric::R2, &test, &pred);
        assert!(r2 > 0.95, "r2 {r2}");
        let rmse = score(Metric::Rmse, &test, &pred);
        assert!(rmse < 0.65, "rmse {rmse}");
        let ols = fit_predict(&Ridge, &train, &test, &params(&[("alpha", ParamValue::Float(0.0))]), 1);
        assert!(score(Metric::R2, &test, &ols) > 0.95);
        assert_eq!(pred, fit_predict(&Ridge, &train, &test, &Params::new(), 1));
    }

    /// Integer row weights give the least-squares fit of the table with each row repeated that
    /// many times (weight 0: left out); bad weights are refused.
    #[test]
    fn row_weights_count_as_repeated_rows() {
        let ds = linear(120, 3, 0.5, 4);
        let counts: Vec<usize> = (0..120).map(|i| i * 7 % 4).collect();
        let mut weighted = ds.clone();
        weighted.weights = Some(counts.iter().map(|&c| c as f64).collect());
        let rows: Vec<usize> = counts.iter().enumerate().flat_map(|(i, &c)| std::iter::repeat_n(i, c)).collect();
        let repeated = ds.subset(&rows);
        assert!(Ridge.honours_weights());
        let p = params(&[("alpha", ParamValue::Float(0.0))]);
        let fit = |d: &Dataset| Ridge.fit(d, &p, &FitContext::new(0)).unwrap().predict(&ds).unwrap().scores();
        let (a, b, plain) = (fit(&weighted), fit(&repeated), fit(&ds));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-9, "{x} vs {y}");
        }
        assert!(a.iter().zip(&plain).any(|(x, y)| (x - y).abs() > 1e-6), "the weights change the fit");
        let mut bad = ds.clone();
        bad.weights = Some(vec![-1.0; 120]);
        let e = Ridge.fit(&bad, &p, &FitContext::new(0)).err().unwrap().to_string();
        assert!(e.contains("row weight -1"), "{e}");
    }

    #[test]
    fn params_and_task_checked() {
        check_space(&Ridge);
        rejects(&Ridge, "alpha", ParamValue::Float(-0.1));
        rejects(&Ridge, "lambda", ParamValue::Float(1.0));
        let e = Ridge.fit(&blobs(40, 2, 2, 1.0, 1), &Ridge.space().defaults(), &FitContext::new(0)).err().unwrap();
        assert!(e.to_string().contains("does not support binary"), "{e}");
    }
}
