use super::*;
use ndarray::Array2;
use promoml_core::testing::{self, blobs, check_space, fit_predict, linear, params, rejects, score, split};
use promoml_core::{Dataset, FitContext, FittedModel, Metric, Model, ParamValue, Params, Predictions, Task};

/// XOR-like problem no linear model fits: class 1 when x0 and x1 have the same sign, two noise
/// features, 5% flipped labels (a fixed hash stands in for a generator).
fn xor(n: usize, seed: u64) -> Dataset {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut x = Array2::zeros((n, 4));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        for j in 0..4 {
            x[[i, j]] = next() * 2.0 - 1.0;
        }
        let mut c = x[[i, 0]] * x[[i, 1]] > 0.0;
        if next() < 0.05 {
            c = !c;
        }
        y.push(f64::from(u8::from(c)));
    }
    let mut d = Dataset::from_x(x, (0..4).map(|j| format!("x{j}")).collect());
    d.y = Some(y);
    d.classes = vec!["no".into(), "yes".into()];
    d
}

fn models() -> Vec<Box<dyn Model>> {
    vec![Box::new(Perpetual), Box::new(Forust)]
}

/// Small, quick settings for each kind.
fn quick(kind: &str) -> Params {
    match kind {
        "gbm.perpetual" => params(&[("budget", ParamValue::Float(0.5))]),
        _ => params(&[("n_estimators", ParamValue::Int(200)), ("learning_rate", ParamValue::Float(0.1))]),
    }
}

fn fit_with(model: &dyn Model, data: &Dataset, given: &Params, ctx: &FitContext) -> Box<dyn FittedModel> {
    let p = model.space().resolve(given, "params").unwrap();
    model.fit(data, &p, ctx).unwrap()
}

fn proba(p: Predictions) -> Array2<f64> {
    match p {
        Predictions::Proba(a) => a,
        Predictions::Values(_) => panic!("expected probabilities"),
    }
}

#[test]
fn spaces_are_consistent_and_registered() {
    let mut r = promoml_core::Registry::new();
    register(&mut r);
    for m in models() {
        check_space(m.as_ref());
        assert!(r.model(m.kind()).is_ok(), "{} not registered", m.kind());
    }
    rejects(&Perpetual, "budget", ParamValue::Float(0.0));
    rejects(&Perpetual, "max_bin", ParamValue::Int(70_000));
    rejects(&Forust, "learning_rate", ParamValue::Float(0.0));
    rejects(&Forust, "subsample", ParamValue::Float(1.5));
    rejects(&Forust, "grow_policy", ParamValue::Str("leafwise".into()));
    assert_eq!(Perpetual.tasks(), &[Task::Binary, Task::Multiclass, Task::Regression]);
    assert_eq!(Forust.tasks(), &[Task::Binary, Task::Regression]);
}

#[test]
fn both_learn_an_interaction_on_held_out_rows() {
    let (train, test) = split(&xor(3000, 1), 0.7);
    for m in models() {
        let pred = fit_predict(m.as_ref(), &train, &test, &quick(m.kind()), 3);
        let auc = score(Metric::RocAuc, &test, &pred);
        assert!(auc > 0.9, "{}: held-out roc_auc {auc}", m.kind());
    }
}

#[test]
fn both_fit_regression_close_to_the_noise_level() {
    // y = 3 x0 - 2 x1 + 0.5 x2 + 10 + N(0, 0.5²): the best possible RMSE is about 0.5, and
    // predicting the mean gives about 3.6.
    let (train, test) = split(&linear(3000, 5, 0.5, 2), 0.7);
    for m in models() {
        let pred = fit_predict(m.as_ref(), &train, &test, &quick(m.kind()), 3);
        let rmse = score(Metric::Rmse, &test, &pred);
        assert!(rmse < 1.0, "{}: held-out rmse {rmse}", m.kind());
    }
}

#[test]
fn perpetual_fits_multiclass_and_forust_refuses_it() {
    let (train, test) = split(&blobs(900, 4, 3, 3.0, 5), 0.7);
    let pred = fit_predict(&Perpetual, &train, &test, &quick("gbm.perpetual"), 3);
    let acc = score(Metric::Accuracy, &test, &pred);
    assert!(acc > 0.85, "held-out accuracy {acc}");
    let p = Forust.space().defaults();
    let e = Forust.fit(&train, &p, &FitContext::new(1)).err().expect("forust has no multiclass objective");
    assert!(e.to_string().contains("does not support multiclass"), "{e}");
}

#[test]
fn same_seed_gives_identical_predictions() {
    let data = xor(1500, 4);
    // Subsampling makes forust's fit depend on its seed; perpetual draws from its seed too.
    let given = |kind: &str| {
        let mut p = quick(kind);
        if kind == "gbm.forust" {
            p.insert("subsample".into(), ParamValue::Float(0.7));
            p.insert("colsample_bytree".into(), ParamValue::Float(0.5));
        }
        p
    };
    for m in models() {
        let run = |seed: u64, threads: usize| {
            let ctx = FitContext { threads, ..FitContext::new(seed) };
            proba(fit_with(m.as_ref(), &data, &given(m.kind()), &ctx).predict(&data).unwrap())
        };
        let a = run(7, 2);
        assert_eq!(a, run(7, 2), "{}: same seed, different predictions", m.kind());
        assert_eq!(a, run(7, 1), "{}: one thread and two differ", m.kind());
        if m.kind() == "gbm.forust" {
            assert_ne!(a, run(8, 2), "{}: the seed is ignored", m.kind());
        }
    }
}

#[test]
fn saved_models_predict_bit_identically() {
    let (train_b, test_b) = split(&xor(800, 6), 0.7);
    let (train_r, test_r) = split(&linear(800, 4, 0.3, 6), 0.7);
    let (train_m, test_m) = split(&blobs(600, 3, 3, 2.5, 6), 0.7);
    let mut cases: Vec<(&dyn Model, &Dataset, &Dataset)> = vec![
        (&Perpetual, &train_b, &test_b),
        (&Perpetual, &train_r, &test_r),
        (&Perpetual, &train_m, &test_m),
        (&Forust, &train_b, &test_b),
        (&Forust, &train_r, &test_r),
    ];
    // And forust without the validation split.
    let no_es = params(&[("n_estimators", ParamValue::Int(50)), ("early_stopping_rounds", ParamValue::Int(0))]);
    for (m, train, test) in cases.drain(..) {
        let fitted = fit_with(m, train, &quick(m.kind()), &FitContext::new(9));
        let bytes = fitted.save().unwrap();
        let loaded = m.load(&bytes).unwrap();
        assert_eq!(fitted.predict(test).unwrap(), loaded.predict(test).unwrap(), "{}: round trip differs", m.kind());
        // Perpetual keeps tree nodes in hash maps, so a re-save may order them differently; the
        // predictions of a re-loaded re-save must still be the same.
        let again = m.load(&loaded.save().unwrap()).unwrap();
        assert!(
            fitted.predict(test).unwrap() == again.predict(test).unwrap(),
            "{}: second round trip differs",
            m.kind()
        );
    }
    let fitted = fit_with(&Forust, &train_b, &no_es, &FitContext::new(9));
    let loaded = Forust.load(&fitted.save().unwrap()).unwrap();
    assert_eq!(fitted.predict(&test_b).unwrap(), loaded.predict(&test_b).unwrap());
}

#[test]
fn loading_rejects_other_bytes() {
    let data = xor(200, 3);
    let saved = fit_with(&Forust, &data, &quick("gbm.forust"), &FitContext::new(1)).save().unwrap();
    let e = Perpetual.load(&saved).err().expect("a forust model is not a perpetual one").to_string();
    assert!(e.contains("gbm.perpetual") && e.contains("cannot read the saved model"), "{e}");
    for m in models() {
        let e = m.load(b"not json").err().expect("garbage").to_string();
        assert!(e.contains("cannot read the saved model"), "{e}");
    }
}

#[test]
fn forust_early_stopping_keeps_the_best_round() {
    let data = xor(2000, 8);
    let ctx = FitContext::new(2);
    let p = |pairs: &[(&str, ParamValue)]| Forust.space().resolve(&params(pairs), "params").unwrap();
    let cfg = ForustConfig::from_params(&p(&[
        ("n_estimators", ParamValue::Int(2000)),
        ("learning_rate", ParamValue::Float(0.3)),
        ("early_stopping_rounds", ParamValue::Int(20)),
    ]))
    .unwrap();
    let (trained, kept) = fit_forust(&data, &cfg, &ctx).unwrap().rounds();
    assert!(trained < 2000, "early stopping never triggered: {trained} rounds");
    assert_eq!(trained, kept + 20, "kept round {kept} is not 20 before the last {trained}");
    let cfg = ForustConfig::from_params(&p(&[
        ("n_estimators", ParamValue::Int(30)),
        ("early_stopping_rounds", ParamValue::Int(0)),
    ]))
    .unwrap();
    assert_eq!(fit_forust(&data, &cfg, &ctx).unwrap().rounds(), (30, 30));
}

#[test]
fn perpetual_iteration_limit_caps_the_trees() {
    let data = xor(1000, 9);
    let given = params(&[("budget", ParamValue::Float(1.0)), ("iteration_limit", ParamValue::Int(5))]);
    let cfg = PerpetualConfig::from_params(&Perpetual.space().resolve(&given, "params").unwrap()).unwrap();
    let f = fit_perpetual(&data, &cfg, &FitContext::new(1)).unwrap();
    assert!(f.n_trees() <= 5, "{} trees", f.n_trees());
}

#[test]
fn bad_inputs_are_clear_errors() {
    let data = xor(200, 10);
    for m in models() {
        let fitted = fit_with(m.as_ref(), &data, &quick(m.kind()), &FitContext::new(1));
        let narrow = Dataset::from_x(Array2::zeros((3, 2)), vec!["a".into(), "b".into()]);
        let e = fitted.predict(&narrow).expect_err("wrong width").to_string();
        assert!(e.contains("fitted on 4 features") && e.contains(m.kind()), "{e}");

        let mut inf = data.clone();
        inf.x[[5, 2]] = f64::INFINITY;
        let e = m.fit(&inf, &m.space().defaults(), &FitContext::new(1)).err().expect("infinite").to_string();
        assert!(e.contains("row 5, feature 2") && e.contains("infinite"), "{e}");

        let mut w = data.clone();
        w.weights = Some((0..200).map(|i| if i == 7 { f64::NAN } else { 1.0 }).collect());
        let e = m.fit(&w, &m.space().defaults(), &FitContext::new(1)).err().expect("NaN weight").to_string();
        assert!(e.contains("row 7") && e.contains("weight"), "{e}");

        let late = FitContext { deadline: Some(std::time::Instant::now()), ..FitContext::new(1) };
        std::thread::sleep(std::time::Duration::from_millis(2));
        let e = m.fit(&data, &m.space().defaults(), &late).err().expect("past the deadline");
        assert!(matches!(e, promoml_core::Error::Budget(_)), "{e}");
    }
}

#[test]
fn missing_values_are_routed_not_rejected() {
    let (train, test) = split(&xor(2000, 11), 0.7);
    let mut holes = train.clone();
    for i in (0..holes.n_rows()).step_by(7) {
        holes.x[[i, 0]] = f64::NAN;
    }
    for m in models() {
        let pred = fit_predict(m.as_ref(), &holes, &test, &quick(m.kind()), 3);
        let auc = score(Metric::RocAuc, &test, &pred);
        assert!(auc > 0.85, "{}: held-out roc_auc {auc} with NaN in training rows", m.kind());
    }
}

#[test]
fn weights_change_the_fit() {
    let data = xor(600, 12);
    let mut weighted = data.clone();
    weighted.weights = Some((0..600).map(|i| if i % 3 == 0 { 5.0 } else { 1.0 }).collect());
    for m in models() {
        let a = proba(fit_with(m.as_ref(), &data, &quick(m.kind()), &FitContext::new(1)).predict(&data).unwrap());
        let b = proba(fit_with(m.as_ref(), &weighted, &quick(m.kind()), &FitContext::new(1)).predict(&data).unwrap());
        assert_ne!(a, b, "{}: sample weights are ignored", m.kind());
    }
}

#[test]
fn degenerate_data_never_panics() {
    testing::assert_no_panics_on_degenerate_data(register);
}

#[test]
#[ignore = "benchmark, not a test: slow; run with --ignored --nocapture to print timings on ../shared/data"]
fn bench_online_shoppers() {
    for m in models() {
        testing::bench(m.as_ref(), &Params::new());
    }
}

/// TreeSHAP of `gbm.forust` is locally accurate (base + contributions = log-odds of the
/// score, missing values included) and equals forust's own Shapley contributions.
#[test]
fn forust_tree_shap_is_additive_and_matches_forust_shapley() {
    let mut ds = xor(600, 11);
    for i in (0..600).step_by(7) {
        ds.x[[i, i % 4]] = f64::NAN;
    }
    let cfg = ForustConfig::from_params(&Forust.space().resolve(&quick("gbm.forust"), "params").unwrap()).unwrap();
    let fitted = forust::fit_forust(&ds, &cfg, &FitContext::new(3)).unwrap();
    let rows = ds.subset(&(0..60).collect::<Vec<_>>());
    let e = fitted.explain(&rows, &[]).expect("forust has TreeSHAP").unwrap();
    assert_eq!(e.space, promoml_core::explain::Space::LogOdds);
    let p = proba(fitted.predict(&rows).unwrap());
    let values = column_major(&rows.x);
    let m = forust_ml::Matrix::new(&values, 60, 4);
    let theirs =
        fitted.booster().predict_contributions(&m, forust_ml::gradientbooster::ContributionsMethod::Shapley, false);
    for i in 0..60 {
        let logit = (p[[i, 1]] / p[[i, 0]]).ln();
        assert!((e.total(i) - logit).abs() < 1e-9, "row {i}: {} vs {logit}", e.total(i));
        for j in 0..4 {
            let t = theirs[i * 5 + j];
            assert!(
                (e.contributions[[i, j]] - t).abs() < 1e-6,
                "row {i} feature {j}: {} vs forust's {t}",
                e.contributions[[i, j]]
            );
        }
    }
}
