//! promoml plugin: models built on [linfa](https://github.com/rust-ml/linfa).
//!
//! Registered kinds:
//!
//! | kind | tasks | notes |
//! | --- | --- | --- |
//! | `linfa.decision_tree` | binary, multiclass | leaf class frequencies as probabilities; uses row weights |
//! | `linfa.logistic_regression` | binary, multiclass | L2 penalty `alpha`; standardised features |
//! | `linfa.elastic_net` | regression | `penalty`, `l1_ratio`; standardised features |
//!
//! Row weights are used by `linfa.decision_tree` only.

#[cfg(test)]
mod artifact_tests;
mod common;
mod elasticnet;
mod logistic;
mod tree;

pub use elasticnet::ElasticNet;
pub use logistic::LogisticRegression;
pub use tree::DecisionTree;

/// Add every linfa model kind to `registry`.
pub fn register(registry: &mut promoml_core::Registry) {
    registry.add_model(DecisionTree);
    registry.add_model(LogisticRegression);
    registry.add_model(ElasticNet);
}

#[cfg(test)]
mod tests {
    use promoml_core::Registry;

    #[test]
    fn registers_every_kind() {
        let mut r = Registry::new();
        super::register(&mut r);
        let kinds: Vec<String> = r.models().map(|m| m.kind().to_string()).collect();
        assert_eq!(kinds, ["linfa.decision_tree", "linfa.elastic_net", "linfa.logistic_regression"]);
    }
}

#[cfg(test)]
mod bench {
    //! `cargo test -p promoml-linfa -- --ignored --nocapture bench` scores the classifiers on
    //! the online-shoppers benchmark.

    use crate::common::testutil::{bench, params};
    use promoml_core::{ParamValue, Params};

    #[test]
    #[ignore = "benchmark, not a test: slow; run with --ignored --nocapture to print timings on ../shared/data"]
    fn bench_online_shoppers() {
        bench(&crate::LogisticRegression, &Params::new());
        bench(&crate::DecisionTree, &Params::new());
        bench(
            &crate::DecisionTree,
            &params(&[("max_depth", ParamValue::Int(5)), ("min_weight_leaf", ParamValue::Float(20.0))]),
        );
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
