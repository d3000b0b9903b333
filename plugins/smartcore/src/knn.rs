//! `smartcore.knn`: k-nearest neighbours for classification (vote shares) and regression (mean).

use crate::common::{Standardizer, check_features, check_task, class_targets, sc_err, to_dense, value_targets};
use ndarray::{Array2, Axis};
use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Predictions, Result, SearchSpace,
    Task,
};
use rayon::prelude::*;
use smartcore::algorithm::neighbour::KNNAlgorithmName;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::metrics::distance::euclidian::Euclidian;
use smartcore::neighbors::KNNWeightFunction;
use smartcore::neighbors::knn_classifier::{KNNClassifier, KNNClassifierParameters};
use smartcore::neighbors::knn_regressor::{KNNRegressor, KNNRegressorParameters};

const KIND: &str = "smartcore.knn";
/// Rows predicted per parallel task.
const CHUNK: usize = 256;

type Clf = KNNClassifier<f64, i32, DenseMatrix<f64>, Vec<i32>, Euclidian<f64>>;
type Reg = KNNRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>, Euclidian<f64>>;

/// k-nearest neighbours (smartcore) with Euclidean distance on standardised features.
///
/// Classification probabilities are the (optionally distance-weighted) vote shares of the `k`
/// neighbours; regression predicts their (weighted) mean. With `weights = "distance"`,
/// neighbours at distance 0 take all the weight. `k` larger than the training set uses every
/// training row.
#[derive(Debug, Clone, Copy, Default)]
pub struct Knn;

impl Model for Knn {
    fn kind(&self) -> &str {
        KIND
    }
    fn description(&self) -> &str {
        "k-nearest neighbours (smartcore) on standardised features: vote shares or neighbour mean"
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Binary, Task::Multiclass, Task::Regression]
    }
    fn space(&self) -> SearchSpace {
        SearchSpace::new(vec![
            ParamSpec::int("k", "number of neighbours", 15, 1, 500).search_int(3, 100, true),
            ParamSpec::choice(
                "weights",
                "\"uniform\": every neighbour counts the same; \"distance\": weight 1/distance",
                "uniform",
                &["uniform", "distance"],
            )
            .searched(),
            ParamSpec::choice(
                "algorithm",
                "neighbour search: \"linear\" (brute force, robust in many dimensions) or \"cover_tree\"",
                "linear",
                &["linear", "cover_tree"],
            ),
        ])
    }
    fn cost(&self, rows: usize, features: usize, _params: &Params) -> f64 {
        // Brute-force neighbours: predicting a fold's rows compares each with every training row.
        rows as f64 * rows as f64 * features.max(1) as f64 / 4.0
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        let task = check_task(KIND, self.tasks(), data)?;
        let k = params.usize("k")?.clamp(1, data.n_rows());
        let weight = match params.str("weights")? {
            "distance" => KNNWeightFunction::Distance,
            _ => KNNWeightFunction::Uniform,
        };
        let algorithm = match params.str("algorithm")? {
            "cover_tree" => KNNAlgorithmName::CoverTree,
            _ => KNNAlgorithmName::LinearSearch,
        };
        let st = Standardizer::fit(&data.x);
        let x = to_dense(KIND, &st.transform(&data.x))?;
        ctx.check_deadline(KIND)?;
        let inner = if task.is_classification() {
            let y: Vec<i32> = class_targets(KIND, data)?.into_iter().map(|c| c as i32).collect();
            let mut present: Vec<i32> = y.clone();
            present.sort_unstable();
            present.dedup();
            let p = KNNClassifierParameters::default().with_k(k).with_weight(weight).with_algorithm(algorithm);
            let m: Clf = KNNClassifier::fit(&x, &y, p).map_err(sc_err(KIND))?;
            Inner::Clf { m, classes: present.into_iter().map(|c| c as usize).collect(), k: data.n_classes() }
        } else {
            let y = value_targets(KIND, data)?;
            let p = KNNRegressorParameters::default().with_k(k).with_weight(weight).with_algorithm(algorithm);
            let m: Reg = KNNRegressor::fit(&x, &y, p).map_err(sc_err(KIND))?;
            Inner::Reg(m)
        };
        Ok(Box::new(FittedKnn { st, inner }))
    }
}

enum Inner {
    /// smartcore's classifier orders its probability columns by the sorted classes present in
    /// the training rows (`classes`); `k` is the task's number of classes.
    Clf {
        m: Clf,
        classes: Vec<usize>,
        k: usize,
    },
    Reg(Reg),
}

struct FittedKnn {
    st: Standardizer,
    inner: Inner,
}

impl FittedModel for FittedKnn {
    fn save(&self) -> Result<Vec<u8>> {
        Err(Error::model(
            KIND,
            "cannot go into a model artifact: its parameters are the (standardised) training rows, and artifacts \
             hold no training rows; leave it out of pipelines whose model you want to save",
        ))
    }
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        check_features(KIND, self.st.n_features(), data)?;
        let z = self.st.transform(&data.x);
        let chunks: Vec<Array2<f64>> =
            z.axis_chunks_iter(Axis(0), CHUNK).map(|c| c.to_owned()).filter(|c| c.nrows() > 0).collect();
        match &self.inner {
            Inner::Clf { m, classes, k } => {
                let parts: Vec<Vec<Vec<f64>>> = chunks
                    .par_iter()
                    .map(|c| m.predict_proba(&to_dense(KIND, c)?).map_err(sc_err(KIND)))
                    .collect::<Result<_>>()?;
                let mut out = Array2::zeros((data.n_rows(), *k));
                for (i, row) in parts.into_iter().flatten().enumerate() {
                    if row.len() != classes.len() {
                        return Err(Error::model(KIND, "smartcore returned probabilities of the wrong width"));
                    }
                    for (c, p) in classes.iter().zip(row) {
                        out[[i, *c]] = p;
                    }
                }
                Ok(Predictions::Proba(out))
            }
            Inner::Reg(m) => {
                let parts: Vec<Vec<f64>> = chunks
                    .par_iter()
                    .map(|c| m.predict(&to_dense(KIND, c)?).map_err(sc_err(KIND)))
                    .collect::<Result<_>>()?;
                Ok(Predictions::Values(parts.into_iter().flatten().collect()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testutil::*;
    use promoml_core::{Metric, ParamValue};

    #[test]
    fn classification_hold_out() {
        let ds = blobs(600, 4, 2, 2.0, 1);
        let (train, test) = split(&ds, 0.7);
        for w in ["uniform", "distance"] {
            let given = params(&[("weights", ParamValue::Str(w.into()))]);
            let pred = fit_predict(&Knn, &train, &test, &given, 1);
            let auc = score(Metric::RocAuc, &test, &pred);
            assert!(auc > 0.9, "{w}: auc {auc}");
        }
        let multi = blobs(600, 4, 3, 3.0, 2);
        let (train, test) = split(&multi, 0.7);
        let given = params(&[("algorithm", ParamValue::Str("cover_tree".into()))]);
        let pred = fit_predict(&Knn, &train, &test, &given, 1);
        assert!(score(Metric::Accuracy, &test, &pred) > 0.85);
    }

    #[test]
    fn vote_shares_are_exact() {
        // 1-D: three class-0 points near 0, two class-1 points near 10; k = 5 covers them all.
        let x = Array2::from_shape_vec((5, 1), vec![0.0, 0.1, 0.2, 10.0, 10.1]).unwrap();
        let mut ds = Dataset::from_x(x, vec!["a".into()]);
        ds.y = Some(vec![0.0, 0.0, 0.0, 1.0, 1.0]);
        ds.classes = vec!["a".into(), "b".into(), "c".into()];
        let p = Knn.space().resolve(&params(&[("k", ParamValue::Int(5))]), "m").unwrap();
        let f = Knn.fit(&ds, &p, &FitContext::new(0)).unwrap();
        let q = Dataset::from_x(Array2::from_shape_vec((1, 1), vec![5.0]).unwrap(), vec!["a".into()]);
        let Predictions::Proba(pr) = f.predict(&q).unwrap() else { panic!() };
        for (got, want) in pr.row(0).iter().zip([0.6, 0.4, 0.0]) {
            assert!((got - want).abs() < 1e-12, "{:?}", pr.row(0));
        }
    }

    #[test]
    fn regression_hold_out_and_determinism() {
        let ds = linear(800, 3, 0.3, 3);
        let (train, test) = split(&ds, 0.75);
        let given = params(&[("k", ParamValue::Int(10)), ("weights", ParamValue::Str("distance".into()))]);
        let pred = fit_predict(&Knn, &train, &test, &given, 1);
        let r2 = score(Metric::R2, &test, &pred);
        assert!(r2 > 0.85, "r2 {r2}");
        assert_eq!(pred, fit_predict(&Knn, &train, &test, &given, 1));
        check_space(&Knn);
        rejects(&Knn, "k", ParamValue::Int(0));
        rejects(&Knn, "k", ParamValue::Int(501));
        rejects(&Knn, "weights", ParamValue::Str("uniformm".into()));
    }
}
