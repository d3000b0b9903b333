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
