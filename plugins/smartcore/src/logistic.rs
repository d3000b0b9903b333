//! `smartcore.logistic_regression`: L2-penalised logistic regression (binary and multinomial).

use crate::common::{Standardizer, check_task, class_targets, sc_err, to_dense};
use ndarray::Array2;
use promoml_core::model_util::LinearClassifier;
use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Result, SearchSpace, Task,
};
use smartcore::linalg::basic::arrays::Array as _;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression as ScLogistic, LogisticRegressionParameters};

const KIND: &str = "smartcore.logistic_regression";

/// Logistic regression fitted by smartcore's L-BFGS on standardised features.
///
/// smartcore minimises `sum_i loss_i + alpha/2 * |w|^2` (the loss is *summed* over rows, so the
/// same `alpha` regularises less as the training set grows). Features are standardised with
/// the training mean and standard deviation first, which the solver needs to converge.
/// smartcore has no `predict_proba` for this model: probabilities are the sigmoid (binary) or
/// softmax (multiclass) of its fitted coefficients and intercepts.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogisticRegression;

impl Model for LogisticRegression {
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedModel>> {
        Ok(Box::new(LinearClassifier::from_bytes(KIND, bytes)?))
    }
    fn kind(&self) -> &str {
        KIND
    }
    fn description(&self) -> &str {
        "L2-penalised logistic regression (smartcore, L-BFGS) on standardised features; binary and multinomial"
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Binary, Task::Multiclass]
    }
    fn space(&self) -> SearchSpace {
        SearchSpace::new(vec![
            ParamSpec::float(
                "alpha",
                "L2 penalty on the coefficients (alpha/2 * |w|^2 added to the summed log-loss); 0 = none",
                1.0,
                0.0,
                1e6,
            )
            .search_float(1e-4, 100.0, true),
        ])
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        check_task(KIND, self.tasks(), data)?;
        let y = class_targets(KIND, data)?;
        let alpha = params.f64("alpha")?;
        let st = Standardizer::fit(&data.x);
        let x = to_dense(KIND, &st.transform(&data.x))?;
        let yi: Vec<i32> = y.iter().map(|&c| c as i32).collect();
        ctx.check_deadline(KIND)?;
        let model: ScLogistic<f64, i32, DenseMatrix<f64>, Vec<i32>> =
            ScLogistic::fit(&x, &yi, LogisticRegressionParameters::default().with_alpha(alpha))
                .map_err(sc_err(KIND))?;
        ctx.check_deadline(KIND)?;
        let classes: Vec<usize> = model.classes().iter().map(|&c| c as usize).collect();
        let coef = model.coefficients();
        let icpt = model.intercept();
        let (rows, p) = coef.shape();
        if p != data.n_features() {
            return Err(Error::model(
                KIND,
                format!("smartcore returned {p} coefficients for {} features", data.n_features()),
            ));
        }
        let weights = Array2::from_shape_fn((rows, p), |(i, j)| *coef.get((i, j)));
        let bias: Vec<f64> = (0..rows).map(|i| *icpt.get((i, 0))).collect();
        if weights.iter().chain(bias.iter()).any(|v| !v.is_finite()) {
            return Err(Error::model(KIND, "the solver diverged (non-finite coefficients); try a larger alpha"));
        }
        Ok(Box::new(LinearClassifier { kind: KIND, st, k: data.n_classes(), weights, bias, classes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testutil::*;
    use promoml_core::{Metric, ParamValue, Predictions};

    #[test]
    fn binary_blobs_hold_out_auc() {
        let ds = blobs(600, 5, 2, 2.0, 1);
        let (train, test) = split(&ds, 0.7);
        let pred = fit_predict(&LogisticRegression, &train, &test, &Params::new(), 7);
        let auc = score(Metric::RocAuc, &test, &pred);
        assert!(auc > 0.9, "auc {auc}");
        let acc = score(Metric::Accuracy, &test, &pred);
        assert!(acc > 0.8, "accuracy {acc}");
    }

    #[test]
    fn multiclass_blobs_and_probabilities() {
        let ds = blobs(600, 4, 3, 3.0, 2);
        let (train, test) = split(&ds, 0.7);
        let pred = fit_predict(&LogisticRegression, &train, &test, &params(&[("alpha", ParamValue::Float(0.1))]), 7);
        let auc = score(Metric::RocAuc, &test, &pred);
        assert!(auc > 0.95, "auc {auc}");
        let acc = score(Metric::Accuracy, &test, &pred);
        assert!(acc > 0.85, "accuracy {acc}");
    }

    #[test]
    fn deterministic_and_params_checked() {
        let ds = blobs(300, 3, 2, 1.5, 3);
        let (train, test) = split(&ds, 0.7);
        let a = fit_predict(&LogisticRegression, &train, &test, &Params::new(), 5);
        let b = fit_predict(&LogisticRegression, &train, &test, &Params::new(), 5);
        assert_eq!(a, b);
        check_space(&LogisticRegression);
        rejects(&LogisticRegression, "alpha", ParamValue::Float(-1.0));
        rejects(&LogisticRegression, "alpha", ParamValue::Float(2e6));
        rejects(&LogisticRegression, "alpha", ParamValue::Str("x".into()));
    }

    /// Exact linear explanations: base value + contributions = log-odds of class 1, for any
    /// baseline; the base value is the log-odds at the baseline.
    #[test]
    fn explanations_are_exact_log_odds() {
        let ds = blobs(300, 4, 2, 1.5, 4);
        let (train, test) = split(&ds, 0.7);
        let p = LogisticRegression.space().defaults();
        let fitted = LogisticRegression.fit(&train, &p, &FitContext::new(1)).unwrap();
        let baseline = [0.5, -0.25, 0.0, 1.0];
        let e = fitted.explain(&test, &baseline).expect("linear models explain exactly").unwrap();
        let Predictions::Proba(a) = fitted.predict(&test).unwrap() else { panic!("probabilities") };
        for i in 0..test.n_rows() {
            let logit = (a[[i, 1]] / a[[i, 0]]).ln();
            assert!((e.total(i) - logit).abs() < 1e-9, "row {i}: {} vs {logit}", e.total(i));
        }
        let at_base = Dataset::from_x(
            ndarray::Array2::from_shape_vec((1, 4), baseline.to_vec()).unwrap(),
            test.feature_names.clone(),
        );
        let Predictions::Proba(b) = fitted.predict(&at_base).unwrap() else { panic!("probabilities") };
        assert!((e.base[0] - (b[[0, 1]] / b[[0, 0]]).ln()).abs() < 1e-9);
        assert!(fitted.explain(&test, &[0.0]).is_none(), "a baseline of the wrong length is no baseline");
    }

    #[test]
    fn single_class_and_wrong_task_are_errors() {
        let ds = blobs(50, 3, 2, 1.5, 3);
        let only0: Vec<usize> = (0..50).filter(|i| i % 2 == 0).collect();
        let p = LogisticRegression.space().defaults();
        let e = LogisticRegression.fit(&ds.subset(&only0), &p, &FitContext::new(1)).err().unwrap().to_string();
        assert!(e.contains("at least two distinct classes"), "{e}");
        let reg = linear(50, 3, 0.1, 1);
        let e = LogisticRegression.fit(&reg, &p, &FitContext::new(1)).err().unwrap().to_string();
        assert!(e.contains("does not support regression"), "{e}");
    }
}
