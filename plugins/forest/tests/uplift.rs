//! `forest.uplift_random_forest` against causalml 0.18: one tree, every feature, no bootstrap
//! is causalml's `UpliftTreeClassifier`; the fixture (`scripts/uplift_tree_fixture.py`) holds
//! its per-arm rates on test rows for each criterion, with and without normalisation, on a
//! three-arm problem.

use ndarray::Array2;
use promoml_core::{Dataset, FitContext, Model, ParamValue, Params, Predictions, Registry};
use serde_json::Value;

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
    let p = rows[0].len();
    Array2::from_shape_vec((rows.len(), p), rows.concat()).unwrap()
}

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/uplift_tree.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn model() -> std::sync::Arc<dyn Model> {
    let mut r = Registry::new();
    promoml_forest::register(&mut r);
    r.model("forest.uplift_random_forest").unwrap().clone()
}

fn data(f: &Value) -> (Dataset, Dataset) {
    let x = matrix(&f["x"]);
    let names: Vec<String> = (0..x.ncols()).map(|j| format!("x{j}")).collect();
    let mut ds = Dataset::from_x(x, names.clone());
    ds.y = Some(serde_json::from_value(f["y"].clone()).unwrap());
    ds.treatment = Some(serde_json::from_value(f["arm"].clone()).unwrap());
    (ds, Dataset::from_x(matrix(&f["x_test"]), names))
}

#[test]
fn one_tree_is_causalmls_uplift_tree_for_every_criterion() {
    let f = fixture();
    let (ds, test) = data(&f);
    let m = model();
    for case in f["cases"].as_array().unwrap() {
        let crit = case["criterion"].as_str().unwrap();
        let norm = case["normalization"].as_bool().unwrap();
        let int = |k: &str| ParamValue::Int(case[k].as_i64().unwrap());
        let params: Params = [
            ("n_trees".to_string(), ParamValue::Int(1)),
            ("bootstrap".into(), ParamValue::Bool(false)),
            ("max_features".into(), ParamValue::Int(0)),
            ("criterion".into(), ParamValue::Str(crit.into())),
            ("normalization".into(), ParamValue::Bool(norm)),
            ("max_depth".into(), int("max_depth")),
            ("min_samples_leaf".into(), int("min_samples_leaf")),
            ("min_samples_treatment".into(), int("min_samples_treatment")),
            ("n_reg".into(), int("n_reg")),
        ]
        .into_iter()
        .collect();
        let fitted = m.fit(&ds, &params, &FitContext::new(3)).unwrap();
        let Predictions::Proba(got) = fitted.predict(&test).unwrap() else { panic!("rates") };
        let want = matrix(&case["rates"]);
        assert_eq!(got.dim(), want.dim());
        for ((i, a), w) in want.indexed_iter() {
            let g = got[[i, a]];
            assert!((g - w).abs() < 1e-12, "{crit} normalization={norm}: row {i} arm {a}: {g} vs causalml {w}");
        }
        // Saved and loaded: the same rates, bit for bit.
        let again = m.load(&fitted.save().unwrap()).unwrap();
        let Predictions::Proba(back) = again.predict(&test).unwrap() else { panic!("rates") };
        assert_eq!(back, got);
    }
}

#[test]
fn a_forest_recovers_the_arms_effects_and_refuses_data_without_arms() {
    let f = fixture();
    let (ds, test) = data(&f);
    let m = model();
    let params: Params = [("n_trees".to_string(), ParamValue::Int(50))].into_iter().collect();
    let fitted = m.fit(&ds, &params, &FitContext::new(11)).unwrap();
    let Predictions::Proba(p) = fitted.predict(&test).unwrap() else { panic!("rates") };
    // Arm t1 lifts rows with x1 > 0, arm t2 rows with large x2 (and hurts small x2).
    let x = matrix(&f["x_test"]);
    let mean = |keep: &dyn Fn(usize) -> bool, a: usize| {
        let rows: Vec<usize> = (0..x.nrows()).filter(|&i| keep(i)).collect();
        rows.iter().map(|&i| p[[i, a]] - p[[i, 0]]).sum::<f64>() / rows.len() as f64
    };
    let lifted = mean(&|i| x[[i, 1]] > 0.5, 1);
    let flat = mean(&|i| x[[i, 1]] < -0.5, 1);
    assert!(lifted > flat + 0.05, "t1 effect with x1 > 0.5: {lifted}, with x1 < -0.5: {flat}");
    assert!(mean(&|i| x[[i, 2]] > 0.5, 2) > mean(&|i| x[[i, 2]] < -0.5, 2) + 0.05);
    // Fitted twice with the same seed: the same forest.
    let again = m.fit(&ds, &params, &FitContext::new(11)).unwrap();
    assert_eq!(again.predict(&test).unwrap(), fitted.predict(&test).unwrap());
    let mut plain = ds.clone();
    plain.treatment = None;
    let err = m.fit(&plain, &params, &FitContext::new(1)).err().unwrap().to_string();
    assert!(err.contains("each row's arm"), "{err}");
}
