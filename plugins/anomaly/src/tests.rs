use crate::steps::{Rule, flag};
use crate::*;
use ndarray::Array2;
use promoml_core::{Column, ColumnData, Frame, Metric, ParamValue, StepContext};
use rand::{Rng as _, SeedableRng};

/// `n` Gaussian rows in `d` dimensions, then `n_out` rows far out; labels 1 for the far rows.
fn problem(n: usize, n_out: usize, d: usize, seed: u64) -> (Array2<f64>, Vec<f64>) {
    let mut rng = promoml_core::Rng::seed_from_u64(seed);
    let mut normal = || {
        let u1: f64 = rng.random::<f64>().max(1e-300);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    };
    let mut x = Array2::zeros((n + n_out, d));
    let mut y = vec![0.0; n + n_out];
    for i in 0..n + n_out {
        for j in 0..d {
            x[[i, j]] = normal() * if j % 2 == 0 { 1.0 } else { 50.0 };
        }
        if i >= n {
            x[[i, i % d]] += if i % 2 == 0 { 6.0 } else { -6.0 } * if (i % d).is_multiple_of(2) { 1.0 } else { 50.0 };
            y[i] = 1.0;
        }
    }
    (x, y)
}

fn registry() -> Registry {
    let mut r = Registry::new();
    register(&mut r);
    r
}

fn fit_score(kind: &str, x: &Array2<f64>, given: &[(&str, ParamValue)], seed: u64) -> Vec<f64> {
    let r = registry();
    let d = r.detector(kind).unwrap();
    let params = promoml_core::testing::params(given);
    d.fit(x, &params, &FitContext::new(seed)).unwrap().score(x).unwrap()
}

#[test]
fn detectors_rank_planted_outliers_first() {
    let (x, y) = problem(500, 25, 6, 1);
    for kind in ["anomaly.isolation_forest", "anomaly.ecod"] {
        let s = fit_score(kind, &x, &[], 3);
        let auc = promoml_core::metrics::roc_auc(&y, &s).unwrap();
        assert!(auc > 0.85, "{kind}: roc_auc {auc}");
        assert!(s.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn isolation_forest_is_deterministic_and_independent_of_threads() {
    let (x, _) = problem(400, 10, 5, 2);
    let a = fit_score("anomaly.isolation_forest", &x, &[], 9);
    let b = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| fit_score("anomaly.isolation_forest", &x, &[], 9));
    assert_eq!(a, b);
    let c = fit_score("anomaly.isolation_forest", &x, &[], 10);
    assert_ne!(a, c, "another seed draws other trees");
    // Scores are in (0, 1].
    assert!(a.iter().all(|&s| s > 0.0 && s <= 1.0));
}

#[test]
fn isolation_forest_parameters_are_used() {
    let (x, _) = problem(300, 10, 4, 3);
    let r = registry();
    let d = r.detector("anomaly.isolation_forest").unwrap();
    let p = promoml_core::testing::params(&[("n_trees", ParamValue::Int(7)), ("max_samples", ParamValue::Int(32))]);
    let f = crate::iforest::fit_isolation_forest(
        "t",
        &x,
        &IsolationForest::config(&d.space().resolve(&p, "p").unwrap()).unwrap(),
        &FitContext::new(1),
    )
    .unwrap();
    assert_eq!(f.n_trees(), 7);
    let bad = promoml_core::testing::params(&[("max_samples", ParamValue::Int(1))]);
    let e = d.fit(&x, &bad, &FitContext::new(1)).err().unwrap().to_string();
    assert!(e.contains("max_samples"), "{e}");
}

#[test]
fn average_path_length_matches_scikit_learn() {
    // sklearn.ensemble._iforest._average_path_length([1, 2, 256])
    assert_eq!(crate::iforest::average_path_length(1), 0.0);
    assert_eq!(crate::iforest::average_path_length(2), 1.0);
    assert!((crate::iforest::average_path_length(256) - 10.244_770_920_116_851).abs() < 1e-9);
}

#[test]
fn ecod_matches_hand_computed_scores() {
    // One feature 1, 2, 3, 4, 10: right-skewed, so the right tail counts. For 10 (the largest):
    // U_l = -ln(5/5) = 0, U_r = -ln(1/5), U_s = U_r -> score ln 5.
    let x = Array2::from_shape_vec((5, 1), vec![1.0, 2.0, 3.0, 4.0, 10.0]).unwrap();
    let s = fit_score("anomaly.ecod", &x, &[], 0);
    assert!((s[4] - 5f64.ln()).abs() < 1e-12, "{s:?}");
    // For 1 (the smallest): U_l = ln 5, U_r = 0, U_s = 0 -> max = ln 5 as well.
    assert!((s[0] - 5f64.ln()).abs() < 1e-12);
    // 3: U_l = -ln(3/5), U_r = -ln(3/5).
    assert!((s[2] - (5.0f64 / 3.0).ln()).abs() < 1e-12);
    // A new value beyond the sample gets the smallest tail probability, 1/n.
    let r = registry();
    let f = r.detector("anomaly.ecod").unwrap().fit(&x, &Params::new(), &FitContext::new(0)).unwrap();
    let far = f.score(&Array2::from_shape_vec((1, 1), vec![100.0]).unwrap()).unwrap();
    assert!((far[0] - 5f64.ln()).abs() < 1e-12);
}

#[test]
fn saved_detectors_score_bit_identically() {
    let (x, _) = problem(200, 10, 4, 4);
    let r = registry();
    for kind in ["anomaly.isolation_forest", "anomaly.ecod"] {
        let d = r.detector(kind).unwrap();
        let f = d.fit(&x, &Params::new(), &FitContext::new(5)).unwrap();
        let bytes = f.save().unwrap();
        let g = d.load(&bytes).unwrap();
        let (a, b) = (f.score(&x).unwrap(), g.score(&x).unwrap());
        assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "{kind}");
        let e = d.load(b"{\"not\": 1}").err().unwrap().to_string();
        assert!(e.contains(kind), "{e}");
    }
}

#[test]
fn detectors_reject_bad_input_with_clear_errors() {
    let r = registry();
    for kind in ["anomaly.isolation_forest", "anomaly.ecod"] {
        let d = r.detector(kind).unwrap();
        let one = Array2::zeros((1, 3));
        assert!(
            d.fit(&one, &Params::new(), &FitContext::new(0)).err().unwrap().to_string().contains("2 training rows")
        );
        let mut nan = Array2::zeros((5, 2));
        nan[[3, 1]] = f64::NAN;
        let e = d.fit(&nan, &Params::new(), &FitContext::new(0)).err().unwrap().to_string();
        assert!(e.contains("row 4, feature 2"), "{e}");
        let f = d.fit(&Array2::zeros((5, 2)), &Params::new(), &FitContext::new(0)).unwrap();
        let e = f.score(&Array2::zeros((2, 3))).unwrap_err().to_string();
        assert!(e.contains("fitted on 2 features"), "{e}");
        // Constant data: finite scores, no panic.
        assert!(f.score(&Array2::ones((2, 2))).unwrap().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn flag_rules() {
    let s = [0.1, 0.9, 0.2, 0.8, 0.2, 0.3, 0.25, 0.15, 0.22, 5.0];
    let (f, t) = flag(&s, Rule::Contamination(0.2));
    assert_eq!(f.iter().filter(|&&b| b).count(), 2);
    assert!(f[9] && f[1] && t == 0.9);
    let (f, t) = flag(&s, Rule::Score(0.5));
    assert_eq!((f.iter().filter(|&&b| b).count(), t), (3, 0.5));
    let (f, t) = flag(&s, Rule::Auto(3.0));
    assert!(f[9] && !f[0] && t > 0.3 && t < 5.0, "{t}");
    // All scores equal: the automatic rule flags nothing.
    let (f, _) = flag(&[1.0; 6], Rule::Auto(3.0));
    assert!(f.iter().all(|&b| !b));
}

fn frame(x: &Array2<f64>, y: &[f64]) -> Frame {
    let mut cols: Vec<Column> = (0..x.ncols())
        .map(|j| Column { name: format!("f{j}"), data: ColumnData::Numeric(x.column(j).to_vec()) })
        .collect();
    cols.push(Column { name: "label".into(), data: ColumnData::Boolean(y.iter().map(|&v| Some(v == 1.0)).collect()) });
    Frame::new(cols).unwrap()
}

fn ctx() -> StepContext {
    StepContext { target: Some("label".into()), protected: vec!["label".into()], seed: 3, ..StepContext::default() }
}

#[test]
fn filter_drops_training_rows_only_and_reports() {
    let (x, y) = problem(190, 10, 3, 6);
    let train = frame(&x, &y);
    let r = registry();
    let factory = r.cleaner("anomaly.filter").unwrap();
    let settings = serde_json::json!({"detector": "anomaly.isolation_forest", "contamination": 0.05});
    let step = factory.build_with(&settings, &r).unwrap();
    let fitted = step.fit(&train, &ctx()).unwrap();
    let cleaned = fitted.apply_train(train.clone()).unwrap();
    assert_eq!(cleaned.n_rows(), 190);
    // Most dropped rows are the planted ones.
    let kept_out = cleaned.column("label").unwrap().data.clone();
    let planted_left = (0..cleaned.n_rows()).filter(|&i| kept_out.value_f64(i) == 1.0).count();
    assert!(planted_left <= 3, "{planted_left} planted rows survived");
    assert_eq!(fitted.apply_predict(train.clone()).unwrap().n_rows(), 200);
    let summary = fitted.summary().unwrap();
    assert_eq!(summary["dropped"], 10);
    assert_eq!(summary["rule"], "contamination");
    assert!(summary["threshold"].as_f64().is_some());
    // The automatic threshold is reported too.
    let auto = factory.build_with(&serde_json::json!({"threshold": "auto"}), &r).unwrap();
    let s = auto.fit(&train, &ctx()).unwrap().summary().unwrap();
    assert_eq!(s["rule"], "auto");
    assert!(s["dropped"].as_u64().unwrap() > 0 && s["threshold"].as_f64().is_some());
}

#[test]
fn filter_and_score_settings_are_validated() {
    let r = registry();
    let f = r.cleaner("anomaly.filter").unwrap();
    let err = |v: serde_json::Value| f.build_with(&v, &r).err().unwrap().to_string();
    assert!(err(serde_json::json!({"detector": "anomaly.ecodd"})).contains("did you mean `anomaly.ecod`"));
    assert!(err(serde_json::json!({"contamination": 0.7})).contains("not in (0, 0.5]"));
    assert!(err(serde_json::json!({"contamination": 0.1, "threshold": 1.0})).contains("not both"));
    assert!(err(serde_json::json!({"threshold": "median"})).contains("neither a number"));
    assert!(err(serde_json::json!({"params": {"n_tres": 3}})).contains("did you mean `n_trees`"));
    assert!(err(serde_json::json!({"contamnation": 0.1})).contains("contamnation"));
    assert!(f.build(&serde_json::json!({})).is_err(), "needs the registry");
    let (x, y) = problem(50, 2, 2, 1);
    let step = f.build_with(&serde_json::json!({"columns": ["label"]}), &r).unwrap();
    let e = step.fit(&frame(&x, &y), &ctx()).err().unwrap().to_string();
    assert!(e.contains("never see labels"), "{e}");
}

#[test]
fn score_feature_adds_a_column_on_every_frame() {
    let (x, y) = problem(100, 5, 3, 7);
    let train = frame(&x, &y);
    let r = registry();
    let step =
        r.feature("anomaly.score").unwrap().build_with(&serde_json::json!({"params": {"n_trees": 50}}), &r).unwrap();
    let fitted = step.fit(&train, &ctx()).unwrap();
    let out = fitted.transform(train.clone()).unwrap();
    let s = &out.column("anomaly_score").unwrap().data;
    assert_eq!(s.len(), 105);
    let scores: Vec<f64> = (0..105).map(|i| s.value_f64(i)).collect();
    assert!(Metric::RocAuc.score(&y, &promoml_core::Predictions::binary(scores)).unwrap() > 0.9);
    // New rows with a missing value read it as the training median.
    let mut new = train.take(&[0, 1]);
    new.set("f0", ColumnData::Numeric(vec![f64::NAN, 1.0])).unwrap();
    assert_eq!(fitted.transform(new).unwrap().n_rows(), 2);
    assert_eq!(fitted.summary().unwrap()["column"], "anomaly_score");
}

#[test]
fn corrupt_is_seeded_recorded_and_training_only() {
    let (x, y) = problem(200, 0, 3, 8);
    let train = frame(&x, &y);
    let r = registry();
    let step = r.cleaner("anomaly.corrupt").unwrap().build(&serde_json::json!({"share": 0.05, "seed": 11})).unwrap();
    let a = step.fit(&train, &ctx()).unwrap();
    let b = step.fit(&train, &ctx()).unwrap();
    let (ca, cb) = (a.apply_train(train.clone()).unwrap(), b.apply_train(train.clone()).unwrap());
    assert_eq!(ca, cb, "same seed, same corruption");
    let summary = a.summary().unwrap();
    let rows: Vec<usize> = serde_json::from_value(summary["rows"].clone()).unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(summary["labels_flipped"], 10);
    let label = &ca.column("label").unwrap().data;
    for (i, &yi) in y.iter().enumerate() {
        let flipped = label.value_f64(i) != yi;
        assert_eq!(flipped, rows.contains(&i), "row {i}");
    }
    assert_eq!(a.apply_predict(train.clone()).unwrap(), train);
    // An isolation-forest filter then finds most corrupted rows.
    let filter = r.cleaner("anomaly.filter").unwrap();
    let fs = filter.build_with(&serde_json::json!({"contamination": 0.05}), &r).unwrap();
    let cleaned = fs.fit(&ca, &ctx()).unwrap().apply_train(ca.clone()).unwrap();
    let label = &cleaned.column("label").unwrap().data;
    let flipped_left = (0..cleaned.n_rows()).filter(|&i| label.value_f64(i) == 1.0).count();
    assert!(flipped_left <= 3, "{flipped_left} corrupted rows survived");
}

#[test]
fn no_panics_on_degenerate_data() {
    let r = registry();
    for (name, ds) in promoml_core::testing::degenerate_cases() {
        for d in r.detectors() {
            let params = d.space().defaults();
            if let Ok(f) = d.fit(&ds.x, &params, &FitContext::new(1)) {
                let s = f.score(&ds.x);
                assert!(s.is_ok(), "{} on {name}: {s:?}", d.kind());
            }
        }
    }
}

#[test]
fn steps_reload_from_artifacts_for_prediction() {
    let (x, y) = problem(150, 6, 3, 9);
    let train = frame(&x, &y);
    let r = registry();
    // Training-only cleaners keep nothing of the training rows: rows to predict pass untouched.
    let corrupt = r.cleaner("anomaly.corrupt").unwrap();
    let filter = r.cleaner("anomaly.filter").unwrap();
    let fitted = [
        (corrupt, corrupt.build(&serde_json::json!({"share": 0.05})).unwrap().fit(&train, &ctx()).unwrap()),
        (
            filter,
            filter.build_with(&serde_json::json!({"contamination": 0.05}), &r).unwrap().fit(&train, &ctx()).unwrap(),
        ),
    ];
    for (factory, f) in fitted {
        let bytes = f.save().unwrap();
        assert!(bytes.len() < 100, "{}: {} bytes saved", factory.kind(), bytes.len());
        let back = factory.load(&bytes).unwrap();
        assert_eq!(back.apply_predict(train.clone()).unwrap(), train);
        let e = back.apply_train(train.clone()).err().unwrap().to_string();
        assert!(e.contains("reloaded") && e.contains(factory.kind()), "{e}");
        assert!(r.cleaner("anomaly.filter").unwrap().load(b"{\"kind\":\"other\"}").is_err());
    }
    // The score feature reloads its detector: the same scores, bit for bit.
    for detector in ["anomaly.isolation_forest", "anomaly.ecod"] {
        let step = r.feature("anomaly.score").unwrap();
        let f = step.build_with(&serde_json::json!({"detector": detector}), &r).unwrap().fit(&train, &ctx()).unwrap();
        let back = step.load(&f.save().unwrap()).unwrap();
        let (a, b) = (f.transform(train.clone()).unwrap(), back.transform(train.clone()).unwrap());
        let bits = |fr: &Frame| {
            let c = &fr.column("anomaly_score").unwrap().data;
            (0..c.len()).map(|i| c.value_f64(i).to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(bits(&a), bits(&b), "{detector}");
        assert!(step.load(&[1, 0]).is_err());
    }
}
