//! promoml plugin: models built on [smartcore](https://smartcorelib.org).
//!
//! Registered kinds:
//!
//! | kind | tasks | notes |
//! | --- | --- | --- |
//! | `smartcore.logistic_regression` | binary, multiclass | L2 penalty `alpha`; standardised features |
//! | `smartcore.svm_linear` | binary | Platt-calibrated on 3-fold out-of-fold decisions |
//! | `smartcore.svm_rbf` | binary | as above, RBF kernel `gamma`; subsamples to `max_rows` |
//! | `smartcore.knn` | binary, multiclass, regression | vote shares / neighbour mean |
//! | `smartcore.ridge` | regression | L2 penalty `alpha`; standardised features |
//! | `smartcore.random_forest` | binary, multiclass, regression | smartcore trees fitted in parallel |
//!
//! Row weights ([`Dataset::weights`](promoml_core::Dataset::weights)) are ignored by these
//! models.

mod common;
mod forest;
mod knn;
mod logistic;
mod ridge;
mod svm;

pub use forest::RandomForest;
pub use knn::Knn;
pub use logistic::LogisticRegression;
pub use ridge::Ridge;
pub use svm::Svm;

/// Add every smartcore model kind to `registry`.
pub fn register(registry: &mut promoml_core::Registry) {
    registry.add_model(LogisticRegression);
    registry.add_model(Svm::linear());
    registry.add_model(Svm::rbf());
    registry.add_model(Knn);
    registry.add_model(Ridge);
    registry.add_model(RandomForest);
}

#[cfg(test)]
mod tests {
    use promoml_core::Registry;

    #[test]
    fn registers_every_kind() {
        let mut r = Registry::new();
        super::register(&mut r);
        let kinds: Vec<String> = r.models().map(|m| m.kind().to_string()).collect();
        assert_eq!(
            kinds,
            [
                "smartcore.knn",
                "smartcore.logistic_regression",
                "smartcore.random_forest",
                "smartcore.ridge",
                "smartcore.svm_linear",
                "smartcore.svm_rbf"
            ]
        );
        for m in r.models() {
            assert!(!m.tasks().is_empty() && !m.description().is_empty());
        }
    }
}

#[cfg(test)]
mod bench {
    //! `cargo test -p promoml-smartcore -- --ignored --nocapture bench` scores every model on
    //! the online-shoppers benchmark.

    use crate::common::testutil::{bench, params};
    use promoml_core::{ParamValue, Params};

    #[test]
    #[ignore = "benchmark, not a test: slow; run with --ignored --nocapture to print timings on ../shared/data"]
    fn bench_online_shoppers() {
        bench(&crate::LogisticRegression, &Params::new());
        bench(&crate::Knn, &Params::new());
        bench(&crate::Svm::linear(), &Params::new());
        bench(&crate::Svm::rbf(), &Params::new());
        bench(&crate::RandomForest, &params(&[("n_trees", ParamValue::Int(100))]));
        bench(&crate::RandomForest, &Params::new());
    }
}

#[cfg(test)]
mod robustness {
    //! Degenerate data must give predictions or clear errors, never panics.

    use ndarray::Array2;
    use promoml_core::{Dataset, FitContext, Registry};

    fn cases() -> Vec<(&'static str, Dataset)> {
        let mk = |x: Array2<f64>, y: Vec<f64>, k: usize| {
            let mut d = Dataset::from_x(x.clone(), (0..x.ncols()).map(|j| format!("f{j}")).collect());
            d.y = Some(y);
            d.classes = (0..k).map(|c| format!("c{c}")).collect();
            d
        };
        let n = 12;
        let alt: Vec<f64> = (0..n).map(|i| (i % 2) as f64).collect();
        vec![
            ("constant features", mk(Array2::from_elem((n, 3), 5.0), alt.clone(), 2)),
            ("identical rows per class", mk(Array2::from_shape_fn((n, 2), |(i, _)| (i % 2) as f64), alt.clone(), 2)),
            (
                "more features than rows",
                mk(Array2::from_shape_fn((n, 30), |(i, j)| ((i * j) % 7) as f64), alt.clone(), 2),
            ),
            ("two rows", mk(Array2::from_shape_vec((2, 1), vec![0.0, 1.0]).unwrap(), vec![0.0, 1.0], 2)),
            (
                "huge values",
                mk(Array2::from_shape_fn((n, 2), |(i, j)| (i as f64 - 6.0) * 1e150 * (j + 1) as f64), alt.clone(), 2),
            ),
            ("regression constant", mk(Array2::from_shape_fn((n, 2), |(i, _)| i as f64), vec![3.0; n], 0)),
            ("regression one row", mk(Array2::from_elem((1, 2), 1.0), vec![3.0], 0)),
            ("one class absent", mk(Array2::from_shape_fn((n, 2), |(i, j)| (i + j) as f64), alt, 3)),
        ]
    }

    #[test]
    fn no_panics_on_degenerate_data() {
        let mut r = Registry::new();
        super::register(&mut r);
        for (name, data) in cases() {
            for m in r.models() {
                let task = promoml_core::model_util::task_of(&data);
                if !m.tasks().contains(&task) {
                    continue;
                }
                let p = m.space().defaults();
                match m.fit(&data, &p, &FitContext::new(1)) {
                    Ok(f) => {
                        let pred = f.predict(&data).unwrap_or_else(|e| panic!("{} on {name}: {e}", m.kind()));
                        pred.check(data.n_rows(), m.kind()).unwrap_or_else(|e| panic!("{name}: {e}"));
                    }
                    Err(e) => println!("{} on {name}: {e}", m.kind()),
                }
            }
        }
    }
}
