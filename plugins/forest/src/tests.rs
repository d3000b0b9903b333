use super::*;
use ndarray::Array2;
use promoml_core::{Metric, ParamValue, Predictions};
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// XOR-like problem a linear model cannot fit: class 1 when x0 and x1 have the same sign,
/// plus two noise features and 5% flipped labels.
fn xor(n: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::<f64>::zeros((n, 4));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        for j in 0..4 {
            x[[i, j]] = rng.random_range(-1.0..1.0);
        }
        let mut c = x[[i, 0]] * x[[i, 1]] > 0.0;
        if rng.random_bool(0.05) {
            c = !c;
        }
        y.push(f64::from(u8::from(c)));
    }
    let mut d = Dataset::from_x(x, (0..4).map(|j| format!("x{j}")).collect());
    d.y = Some(y);
    d.classes = vec!["no".into(), "yes".into()];
    d
}

/// Three classes by radius (rings), two features.
fn rings(n: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::zeros((n, 2));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let (a, b): (f64, f64) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
        x[[i, 0]] = a;
        x[[i, 1]] = b;
        let r = (a * a + b * b).sqrt();
        y.push(if r < 0.45 {
            0.0
        } else if r < 0.8 {
            1.0
        } else {
            2.0
        });
    }
    let mut d = Dataset::from_x(x, vec!["a".into(), "b".into()]);
    d.y = Some(y);
    d.classes = vec!["inner".into(), "middle".into(), "outer".into()];
    d
}

/// y = sin(3 x0) + x1² + small noise, with one noise feature.
fn wave(n: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::<f64>::zeros((n, 3));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        for j in 0..3 {
            x[[i, j]] = rng.random_range(-1.0..1.0);
        }
        y.push((3.0 * x[[i, 0]]).sin() + x[[i, 1]] * x[[i, 1]] + rng.random_range(-0.1..0.1));
    }
    let mut d = Dataset::from_x(x, vec!["x0".into(), "x1".into(), "noise".into()]);
    d.y = Some(y);
    d
}

fn params(pairs: &[(&str, ParamValue)]) -> Params {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn fit(model: &Forest, data: &Dataset, given: &Params, seed: u64) -> Box<dyn FittedModel> {
    let p = model.space().resolve(given, "test").unwrap();
    model.fit(data, &p, &FitContext::new(seed)).unwrap()
}

fn small() -> Params {
    params(&[("n_trees", ParamValue::Int(40))])
}

#[test]
fn random_forest_and_extra_trees_learn_xor() {
    let (train, test) = (xor(800, 1), xor(400, 2));
    for model in [Forest::random_forest(), Forest::extra_trees()] {
        let pred = fit(&model, &train, &small(), 3).predict(&test).unwrap();
        pred.check(test.n_rows(), model.kind()).unwrap();
        let auc = Metric::RocAuc.score(test.y.as_ref().unwrap(), &pred).unwrap();
        assert!(auc > 0.9, "{}: auc {auc}", model.kind());
    }
}

#[test]
fn regression_fits_a_nonlinear_function() {
    let (train, test) = (wave(800, 4), wave(400, 5));
    for model in [Forest::random_forest(), Forest::extra_trees()] {
        let pred = fit(&model, &train, &small(), 6).predict(&test).unwrap();
        assert!(matches!(pred, Predictions::Values(_)));
        let r2 = Metric::R2.score(test.y.as_ref().unwrap(), &pred).unwrap();
        assert!(r2 > 0.8, "{}: r2 {r2}", model.kind());
    }
}

#[test]
fn multiclass_probabilities_sum_to_one() {
    let (train, test) = (rings(600, 7), rings(300, 8));
    for model in [Forest::random_forest(), Forest::extra_trees()] {
        let crit = if model.random_splits { "gini" } else { "entropy" };
        let given = params(&[("n_trees", ParamValue::Int(30)), ("criterion", ParamValue::Str(crit.into()))]);
        let pred = fit(&model, &train, &given, 9).predict(&test).unwrap();
        let Predictions::Proba(p) = &pred else { panic!("expected probabilities") };
        assert_eq!(p.dim(), (300, 3));
        for row in p.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-9, "{row}");
            assert!(row.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        let auc = Metric::RocAuc.score(test.y.as_ref().unwrap(), &pred).unwrap();
        assert!(auc > 0.9, "{}: auc {auc}", model.kind());
    }
}

#[test]
fn same_seed_same_forest_on_any_number_of_threads() {
    let (train, test) = (xor(300, 10), xor(100, 11));
    for model in [Forest::random_forest(), Forest::extra_trees()] {
        let given = params(&[("n_trees", ParamValue::Int(24)), ("max_features", ParamValue::Str("sqrt".into()))]);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| fit(&model, &train, &given, 42).predict(&test).unwrap())
        };
        let one = run(1);
        assert_eq!(one, run(2), "{}", model.kind());
        // ctx.threads builds its own pool.
        let p = model.space().resolve(&given, "test").unwrap();
        let ctx = FitContext { threads: 2, ..FitContext::new(42) };
        assert_eq!(one, model.fit(&train, &p, &ctx).unwrap().predict(&test).unwrap());
        // Another seed gives another forest.
        assert_ne!(one, fit(&model, &train, &given, 43).predict(&test).unwrap());
    }
}

#[test]
fn invalid_params_are_rejected_by_the_space() {
    let space = Forest::random_forest().space();
    let bad = [
        ("n_trees", ParamValue::Int(0)),
        ("n_trees", ParamValue::Int(10_001)),
        ("max_depth", ParamValue::Int(-1)),
        ("max_depth", ParamValue::Int(129)),
        ("min_samples_leaf", ParamValue::Int(0)),
        ("max_features", ParamValue::Str("sqr".into())),
        ("max_features", ParamValue::Float(0.5)),
        ("max_features_fraction", ParamValue::Float(0.0)),
        ("max_features_fraction", ParamValue::Float(1.5)),
        ("bootstrap", ParamValue::Str("yes".into())),
        ("sample_fraction", ParamValue::Float(0.0)),
        ("max_bins", ParamValue::Int(15)),
        ("max_bins", ParamValue::Int(256)),
        ("criterion", ParamValue::Str("mse".into())),
        ("n_tree", ParamValue::Int(10)),
    ];
    for (k, v) in bad {
        let e = space.resolve(&params(&[(k, v.clone())]), "models[0].params");
        assert!(e.is_err(), "{k} = {v} was accepted");
    }
    let e = space.resolve(&params(&[("max_features", ParamValue::Str("sqr".into()))]), "m").unwrap_err();
    assert!(e.to_string().contains("did you mean \"sqrt\""), "{e}");
    let ok = params(&[
        ("max_features", ParamValue::Str("fraction".into())),
        ("max_features_fraction", ParamValue::Int(1)),
        ("max_depth", ParamValue::Int(0)),
        ("max_bins", ParamValue::Int(16)),
    ]);
    let p = space.resolve(&ok, "m").unwrap();
    assert_eq!(Forest::random_forest().config(&p).unwrap().max_features, MaxFeatures::Fraction(1.0));
}

#[test]
fn search_ranges_lie_within_valid_ranges_and_defaults_differ_by_kind() {
    for model in [Forest::random_forest(), Forest::extra_trees()] {
        let space = model.space();
        for p in &space.params {
            assert!(p.valid.check(&p.default).is_ok(), "{}", p.name);
            if let Some(s) = &p.search {
                assert!(p.valid.contains_domain(s), "{}", p.name);
            }
        }
        assert_eq!(space.get("n_trees").unwrap().default, ParamValue::Int(300));
    }
    let rf = Forest::random_forest().space();
    let et = Forest::extra_trees().space();
    assert_eq!(rf.get("bootstrap").unwrap().default, ParamValue::Bool(true));
    assert_eq!(et.get("bootstrap").unwrap().default, ParamValue::Bool(false));
}

#[test]
fn register_adds_both_kinds() {
    let mut r = Registry::new();
    register(&mut r);
    assert_eq!(r.model("forest.random_forest").unwrap().kind(), "forest.random_forest");
    assert_eq!(r.model("forest.extra_trees").unwrap().kind(), "forest.extra_trees");
}

#[test]
fn bad_training_data_gives_clear_errors() {
    let model = Forest::random_forest();
    let p = model.space().resolve(&small(), "test").unwrap();
    let ctx = FitContext::new(0);

    let mut one_class = xor(50, 1);
    one_class.y = Some(vec![1.0; 50]);
    let e = model.fit(&one_class, &p, &ctx).err().unwrap().to_string();
    assert!(e.contains("only one class (`yes`)") && e.contains("forest.random_forest"), "{e}");

    let mut no_target = xor(50, 1);
    no_target.y = None;
    assert!(model.fit(&no_target, &p, &ctx).is_err());

    let mut bad_label = xor(50, 1);
    bad_label.y.as_mut().unwrap()[3] = 2.0;
    let e = model.fit(&bad_label, &p, &ctx).err().unwrap().to_string();
    assert!(e.contains("row 3"), "{e}");

    let mut nan = xor(50, 1);
    nan.x[[4, 2]] = f64::NAN;
    let e = model.fit(&nan, &p, &ctx).err().unwrap().to_string();
    assert!(e.contains("`x2`") && e.contains("row 4"), "{e}");

    let empty = xor(0, 1);
    assert!(model.fit(&empty, &p, &ctx).is_err());

    let mut zero_w = xor(50, 1);
    zero_w.weights = Some(vec![0.0; 50]);
    assert!(model.fit(&zero_w, &p, &ctx).is_err());

    let mut bad_reg = wave(50, 1);
    bad_reg.y.as_mut().unwrap()[0] = f64::INFINITY;
    assert!(model.fit(&bad_reg, &p, &ctx).is_err());

    let past = FitContext { deadline: Some(std::time::Instant::now()), ..FitContext::new(0) };
    std::thread::sleep(std::time::Duration::from_millis(2));
    let e = model.fit(&xor(50, 1), &p, &past).err().unwrap();
    assert!(matches!(e, Error::Budget(_)), "{e}");
}

#[test]
fn prediction_checks_its_input() {
    let model = Forest::random_forest();
    let fitted = fit(&model, &xor(100, 1), &small(), 0);
    let narrow = Dataset::from_x(Array2::zeros((3, 2)), vec!["a".into(), "b".into()]);
    assert!(fitted.predict(&narrow).is_err());
    let mut nan = xor(10, 2);
    nan.x[[0, 0]] = f64::NAN;
    assert!(fitted.predict(&nan).is_err());
    let empty = fitted.predict(&xor(0, 3)).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn importances_favour_informative_features() {
    let data = xor(600, 12);
    for cfg in [ForestConfig::random_forest(), ForestConfig::extra_trees()] {
        let cfg = ForestConfig { n_trees: 30, ..cfg };
        let f = fit_forest("t", &data, &cfg, &FitContext::new(1)).unwrap();
        let imp = f.feature_importances();
        assert_eq!(imp.len(), 4);
        assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(imp[0].min(imp[1]) > imp[2].max(imp[3]), "{imp:?}");
        assert_eq!(f.n_trees(), 30);
        assert_eq!(f.n_classes(), 2);
    }
    let reg = fit_forest(
        "t",
        &wave(400, 3),
        &ForestConfig { n_trees: 20, ..ForestConfig::random_forest() },
        &FitContext::new(1),
    )
    .unwrap();
    let imp = reg.feature_importances();
    assert!(imp[0] > imp[2] && imp[1] > imp[2], "{imp:?}");
    assert_eq!(reg.n_classes(), 0);
}

#[test]
fn depth_and_leaf_size_limits_hold() {
    let data = xor(400, 13);
    let cfg = ForestConfig { n_trees: 5, max_depth: 3, ..ForestConfig::random_forest() };
    let f = fit_forest("t", &data, &cfg, &FitContext::new(2)).unwrap();
    assert!(f.trees().iter().all(|t| t.depth() <= 3));
    assert!(f.trees().iter().any(|t| t.depth() == 3));

    // Without bootstrap every training row is in every tree, so leaf sizes are exact.
    let rows: Vec<Vec<f64>> = data.x.rows().into_iter().map(|r| r.to_vec()).collect();
    for random_splits in [false, true] {
        let cfg = ForestConfig {
            n_trees: 3,
            min_samples_leaf: 20,
            bootstrap: false,
            random_splits,
            ..ForestConfig::random_forest()
        };
        let f = fit_forest("t", &data, &cfg, &FitContext::new(2)).unwrap();
        for t in f.trees() {
            let mut counts = std::collections::HashMap::new();
            for r in &rows {
                *counts.entry(t.leaf(r)).or_insert(0) += 1;
            }
            assert!(counts.len() > 3 && counts.values().all(|&c| c >= 20), "{counts:?}");
        }
    }
    // A single unlimited tree without bootstrap and with all features memorises the data.
    let cfg =
        ForestConfig { n_trees: 1, bootstrap: false, max_features: MaxFeatures::All, ..ForestConfig::random_forest() };
    let f = fit_forest("t", &data, &cfg, &FitContext::new(2)).unwrap();
    let acc = Metric::Accuracy.score(data.y.as_ref().unwrap(), &f.predict(&data).unwrap()).unwrap();
    assert_eq!(acc, 1.0);
}

#[test]
fn weights_and_subsampling_work() {
    let (mut train, test) = (xor(600, 14), xor(300, 15));
    // Zero weight on half the rows: the rest still learn the problem.
    train.weights = Some((0..600).map(|i| if i % 2 == 0 { 0.0 } else { 2.0 }).collect());
    for sample_fraction in [1.0, 0.5] {
        for bootstrap in [true, false] {
            let cfg = ForestConfig { n_trees: 30, sample_fraction, bootstrap, ..ForestConfig::random_forest() };
            let pred = fit_forest("t", &train, &cfg, &FitContext::new(3)).unwrap().predict(&test).unwrap();
            let auc = Metric::RocAuc.score(test.y.as_ref().unwrap(), &pred).unwrap();
            assert!(auc > 0.85, "{sample_fraction} {bootstrap}: {auc}");
        }
    }
}

#[test]
fn constant_and_few_valued_features_are_fine() {
    let mut data = xor(200, 16);
    data.x.column_mut(2).fill(5.0);
    data.x.column_mut(3).mapv_inplace(|v| if v > 0.0 { 1.0 } else { 0.0 });
    let f = fit_forest("t", &data, &ForestConfig { n_trees: 10, ..ForestConfig::random_forest() }, &FitContext::new(0))
        .unwrap();
    assert_eq!(f.feature_importances()[2], 0.0);
    f.predict(&data).unwrap().check(200, "t").unwrap();
    // Only a constant feature: every tree is a single leaf predicting the class shares.
    let mut flat = xor(50, 17);
    flat.x = Array2::from_elem((50, 1), 1.0);
    flat.feature_names = vec!["c".into()];
    let f = fit_forest("t", &flat, &ForestConfig { n_trees: 3, ..ForestConfig::random_forest() }, &FitContext::new(0))
        .unwrap();
    assert_eq!(f.n_nodes(), 3);
    f.predict(&flat).unwrap().check(50, "t").unwrap();
}

/// Every prediction's bits, so that a round trip is checked bit for bit (NaN included).
fn bits(p: &Predictions) -> Vec<u64> {
    match p {
        Predictions::Proba(a) => a.iter().map(|v| v.to_bits()).collect(),
        Predictions::Values(v) => v.iter().map(|v| v.to_bits()).collect(),
    }
}

#[test]
fn save_load_round_trip_is_bit_identical_and_rejects_bad_bytes() {
    let cases = [(xor(500, 1), xor(200, 2)), (rings(500, 3), rings(200, 4)), (wave(500, 5), wave(200, 6))];
    for (train, test) in cases {
        for model in [Forest::random_forest(), Forest::extra_trees()] {
            let fitted = fit(&model, &train, &small(), 7);
            let bytes = fitted.save().unwrap();
            let loaded = model.load(&bytes).unwrap();
            assert_eq!(bits(&fitted.predict(&test).unwrap()), bits(&loaded.predict(&test).unwrap()));
            assert_eq!(loaded.save().unwrap(), bytes, "{}: saving a loaded forest changes nothing", model.kind());
            let e = model.load(&bytes[..bytes.len() - 3]).err().unwrap().to_string();
            assert!(e.contains("truncated"), "{e}");
            let other =
                if model.kind() == "forest.random_forest" { Forest::extra_trees() } else { Forest::random_forest() };
            let e = other.load(&bytes).err().unwrap().to_string();
            assert!(e.contains("saved by"), "{e}");
        }
    }
    // A node pointing outside its tree is rejected, not followed.
    let fitted = fit(&Forest::random_forest(), &xor(200, 1), &params(&[("n_trees", ParamValue::Int(1))]), 1);
    let mut bytes = fitted.save().unwrap();
    // Layout after the tag: n_features, width, flag, importances (len + 4), tree count, then
    // the first tree's thresholds (len + values) and features (len + values).
    let tag = 8 + "forest.random_forest".len();
    let thresholds_at = tag + 8 + 8 + 1 + 8 + 4 * 8 + 8;
    let n_nodes = u64::from_le_bytes(bytes[thresholds_at..thresholds_at + 8].try_into().unwrap()) as usize;
    let first_feature = thresholds_at + 8 + n_nodes * 8 + 8;
    bytes[first_feature..first_feature + 4].copy_from_slice(&77u32.to_le_bytes());
    let e = Forest::random_forest().load(&bytes).err().unwrap().to_string();
    assert!(e.contains("points outside"), "{e}");
}

/// TreeSHAP of both kinds is locally accurate (binary: the positive-class probability;
/// regression: the value), survives a save/load round trip, and forests saved without node
/// covers (older artifacts) have no exact method.
#[test]
fn tree_shap_is_additive_and_round_trips() {
    let cases = [(xor(500, 1), xor(100, 2)), (wave(500, 5), wave(100, 6))];
    for (train, test) in cases {
        for model in [Forest::random_forest(), Forest::extra_trees()] {
            let fitted = fit(&model, &train, &small(), 7);
            let e = fitted.explain(&test, &[]).expect("forests have TreeSHAP").unwrap();
            let want = fitted.predict(&test).unwrap().scores();
            for (i, w) in want.iter().enumerate() {
                assert!((e.total(i) - w).abs() < 1e-9, "{} row {i}: {} vs {w}", model.kind(), e.total(i));
            }
            let loaded = model.load(&fitted.save().unwrap()).unwrap();
            assert_eq!(loaded.explain(&test, &[]).unwrap().unwrap(), e);
        }
    }
    // Without the trailing covers section (as written before covers were kept).
    let fitted = fit(&Forest::random_forest(), &xor(200, 1), &params(&[("n_trees", ParamValue::Int(1))]), 1);
    let bytes = fitted.save().unwrap();
    let nodes = fitted.explain(&xor(5, 3), &[]).unwrap().unwrap();
    assert_eq!(nodes.contributions.nrows(), 5);
    let old = &bytes[..bytes.len() - 8 - 8 * count_nodes(&bytes)];
    let loaded = Forest::random_forest().load(old).unwrap();
    assert!(loaded.explain(&xor(5, 3), &[]).is_none());
    assert_eq!(bits(&loaded.predict(&xor(5, 3)).unwrap()), bits(&fitted.predict(&xor(5, 3)).unwrap()));
}

/// Node count of the single tree of saved forest bytes (the length prefix of its thresholds).
fn count_nodes(bytes: &[u8]) -> usize {
    let tag = 8 + "forest.random_forest".len();
    let thresholds_at = tag + 8 + 8 + 1 + 8 + 4 * 8 + 8;
    u64::from_le_bytes(bytes[thresholds_at..thresholds_at + 8].try_into().unwrap()) as usize
}
