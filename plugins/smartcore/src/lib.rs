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
//! | `smartcore.ridge` | regression | L2 penalty `alpha`; standardised features; row weights |
//! | `smartcore.random_forest` | binary, multiclass, regression | smartcore trees fitted in parallel |
//!
//! Row weights ([`Dataset::weights`](promoml_core::Dataset::weights)) are honoured by
//! `smartcore.ridge` (weighted least squares) and ignored by the other models, which say so
//! ([`Model::honours_weights`](promoml_core::Model::honours_weights) is `false`).

#[cfg(test)]
mod artifact_tests;
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

    #[test]
    fn no_panics_on_degenerate_data() {
        promoml_core::testing::assert_no_panics_on_degenerate_data(super::register);
    }
}
