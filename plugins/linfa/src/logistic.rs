//! `linfa.logistic_regression`: L2-penalised logistic regression from linfa-logistic.

use crate::common::{Standardizer, check_task, class_targets};
use linfa::prelude::*;
use linfa_logistic::{LogisticRegression as Binary, MultiLogisticRegression as Multi};
use ndarray::Array1;
use promoml_core::model_util::LinearClassifier;
use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Result, SearchSpace, Task,
};

const KIND: &str = "linfa.logistic_regression";

/// Logistic regression fitted by linfa-logistic (L-BFGS with a More-Thuente line search) on
/// standardised features: `LogisticRegression` when the training rows hold two classes,
/// `MultiLogisticRegression` (softmax) otherwise.
///
/// linfa minimises the *summed* log-loss plus `alpha/2 * |w|^2`. Its binary model labels the
/// more frequent class as "positive", so probabilities are mapped back to class indices here.
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
        "L2-penalised logistic regression (linfa, L-BFGS) on standardised features; binary and multinomial"
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
            ParamSpec::int("max_iterations", "maximum L-BFGS iterations", 100, 1, 100_000),
        ])
    }
    fn cost(&self, rows: usize, features: usize, params: &Params) -> f64 {
        self.space().number(params, "max_iterations", 100.0) * rows as f64 * features.max(1) as f64
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        check_task(KIND, self.tasks(), data)?;
        let y = class_targets(KIND, data)?;
        let alpha = params.f64("alpha")?;
        let iters = params.usize("max_iterations")? as u64;
        let st = Standardizer::fit(&data.x);
        let z = st.transform(&data.x);
        let mut present = y.clone();
        present.sort_unstable();
        present.dedup();
        let ds = linfa::Dataset::new(z, Array1::from(y));
        let err = |e: linfa_logistic::error::Error| Error::model(KIND, format!("linfa: {e}"));
        ctx.check_deadline(KIND)?;
        let (weights, bias, classes) = if present.len() == 2 {
            let m = Binary::default().alpha(alpha).max_iterations(iters).fit(&ds).map_err(err)?;
            let w = m.params().clone().insert_axis(ndarray::Axis(0));
            // Sigmoid of the score is the probability of `labels().pos`.
            (w, vec![m.intercept()], vec![m.labels().neg.class, m.labels().pos.class])
        } else {
            let m = Multi::default().alpha(alpha).max_iterations(iters).fit(&ds).map_err(err)?;
            (m.params().t().to_owned(), m.intercept().to_vec(), m.classes().to_vec())
        };
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
    use promoml_core::{Metric, ParamValue};

    #[test]
    fn binary_hold_out_both_majorities() {
        // Class 1 the majority in one data set, class 0 in the other: linfa's "positive" label
        // follows the majority, the predicted column must not.
        for (keep_every, seed) in [(3, 1), (1, 2)] {
            let ds = blobs(900, 5, 2, 2.0, seed);
            let rows: Vec<usize> = (0..900).filter(|i| i % 2 == 1 || i % (2 * keep_every) == 0).collect();
            let (train, test) = split(&ds.subset(&rows), 0.7);
            let pred = fit_predict(&LogisticRegression, &train, &test, &Params::new(), 1);
            let auc = score(Metric::RocAuc, &test, &pred);
            assert!(auc > 0.9, "auc {auc}");
            assert!(score(Metric::Accuracy, &test, &pred) > 0.8);
        }
    }

    #[test]
    fn multiclass_hold_out_and_determinism() {
        let ds = blobs(600, 4, 3, 3.0, 2);
        let (train, test) = split(&ds, 0.7);
        let given = params(&[("alpha", ParamValue::Float(0.1))]);
        let pred = fit_predict(&LogisticRegression, &train, &test, &given, 1);
        assert!(score(Metric::RocAuc, &test, &pred) > 0.95);
        assert!(score(Metric::Accuracy, &test, &pred) > 0.85);
        assert_eq!(pred, fit_predict(&LogisticRegression, &train, &test, &given, 1));
    }

    #[test]
    fn params_checked_and_errors() {
        check_space(&LogisticRegression);
        rejects(&LogisticRegression, "alpha", ParamValue::Float(-1.0));
        rejects(&LogisticRegression, "max_iterations", ParamValue::Int(0));
        let ds = blobs(40, 2, 2, 1.0, 1);
        let only1: Vec<usize> = (1..40).step_by(2).collect();
        let e = LogisticRegression.fit(&ds.subset(&only1), &LogisticRegression.space().defaults(), &FitContext::new(0));
        assert!(e.err().unwrap().to_string().contains("at least two distinct classes"));
    }
}
