use super::*;
use crate::data::{BatchInputs, SeqBatch};
use burn::tensor::{Tensor, TensorData};
use ndarray::{Array2, Array3};
use promoml_core::testing::{check_space, params};
use promoml_core::{
    AnomalyDetector, Dataset, Error, FitContext, Metric, Model, ParamValue, Params, Predictions, Sequences,
};
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Rows with a history of 2..=`steps` valid steps (2 channels, zero padding after) and one
/// tabular feature of pure noise. Binary label: the sign of channel 0 at the *last valid*
/// step, so a model that reads the padding instead of the last valid step cannot learn it.
/// Regression target: the sum of channel 0 over the valid steps.
fn sequences(n: usize, steps: usize, regression: bool, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = Array3::<f32>::zeros((n, steps, 2));
    let mut lengths = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let len = rng.random_range(2..=steps);
        let mut sum = 0.0;
        for t in 0..len {
            data[[i, t, 0]] = rng.random_range(-1.0..1.0);
            data[[i, t, 1]] = rng.random_range(0.0..5.0);
            sum += data[[i, t, 0]] as f64;
        }
        lengths.push(len);
        y.push(if regression { sum } else { f64::from(u8::from(data[[i, len - 1, 0]] > 0.0)) });
    }
    let x = Array2::from_shape_fn((n, 1), |_| rng.random_range(-1.0..1.0));
    let mut d = Dataset::from_x(x, vec!["noise".into()]);
    d.y = Some(y);
    if !regression {
        d.classes = vec!["no".into(), "yes".into()];
    }
    d.sequences = Some(Sequences { data, lengths, channels: vec!["amount".into(), "count".into()] });
    d
}

fn fit(model: &dyn Model, data: &Dataset, given: &Params, seed: u64) -> Box<dyn promoml_core::FittedModel> {
    let p = model.space().resolve(given, "test").unwrap();
    model.fit(data, &p, &FitContext::new(seed)).unwrap()
}

fn auc(test: &Dataset, pred: &Predictions) -> f64 {
    Metric::RocAuc.score(test.y.as_ref().unwrap(), pred).unwrap()
}

fn small(extra: &[(&str, ParamValue)]) -> Params {
    let mut p = params(&[
        ("hidden_size", ParamValue::Int(16)),
        ("epochs", ParamValue::Int(25)),
        ("batch_size", ParamValue::Int(32)),
        ("learning_rate", ParamValue::Float(0.01)),
        ("dropout", ParamValue::Float(0.0)),
    ]);
    for (k, v) in extra {
        p.insert(k.to_string(), v.clone());
    }
    p
}

#[test]
fn spaces_are_valid_and_kinds_registered() {
    let mut r = promoml_core::Registry::new();
    register(&mut r);
    for kind in ["burn.lstm", "burn.gru", "burn.transformer", "burn.mlp"] {
        check_space(r.model(kind).unwrap().as_ref());
    }
    assert_eq!(r.model("burn.lstm").unwrap().input(), promoml_core::InputKind::Sequence);
    assert_eq!(r.model("burn.mlp").unwrap().input(), promoml_core::InputKind::Tabular);
    let ae = r.detector("burn.autoencoder").unwrap();
    ae.space().resolve(&Params::new(), "p").unwrap();
}

#[test]
fn recurrent_models_read_the_last_valid_step() {
    let (train, test) = (sequences(600, 10, false, 1), sequences(300, 10, false, 2));
    for model in [BurnModel::lstm(), BurnModel::gru()] {
        let pred = fit(&model, &train, &small(&[]), 3).predict(&test).unwrap();
        let a = auc(&test, &pred);
        assert!(a > 0.95, "{}: auc {a}", model.kind());
    }
}

#[test]
fn transformer_learns_a_sequence_label() {
    let (train, test) = (sequences(600, 10, false, 4), sequences(300, 10, false, 5));
    let given = small(&[("positional", ParamValue::Str("learned".into())), ("epochs", ParamValue::Int(30))]);
    let pred = fit(&BurnModel::transformer(), &train, &given, 6).predict(&test).unwrap();
    let a = auc(&test, &pred);
    assert!(a > 0.8, "transformer (learned positions): auc {a}");
}

#[test]
fn sequence_regression_head_predicts_on_the_target_scale() {
    let (train, test) = (sequences(600, 8, true, 7), sequences(300, 8, true, 8));
    let pred = fit(&BurnModel::gru(), &train, &small(&[]), 9).predict(&test).unwrap();
    assert!(matches!(pred, Predictions::Values(_)));
    let r2 = Metric::R2.score(test.y.as_ref().unwrap(), &pred).unwrap();
    assert!(r2 > 0.8, "gru regression r2 {r2}");
}

#[test]
fn mlp_classifies_regresses_and_handles_multiclass() {
    let ds = promoml_core::testing::blobs(600, 4, 3, 3.0, 10);
    let (train, test) = promoml_core::testing::split(&ds, 0.7);
    let pred = promoml_core::testing::fit_predict(&BurnModel::mlp(), &train, &test, &small(&[]), 11);
    let acc = Metric::Accuracy.score(test.y.as_ref().unwrap(), &pred).unwrap();
    assert!(acc > 0.85, "mlp multiclass accuracy {acc}");

    let ds = promoml_core::testing::linear(600, 4, 0.1, 12);
    let (train, test) = promoml_core::testing::split(&ds, 0.7);
    let pred = promoml_core::testing::fit_predict(&BurnModel::mlp(), &train, &test, &small(&[]), 13);
    let r2 = Metric::R2.score(test.y.as_ref().unwrap(), &pred).unwrap();
    assert!(r2 > 0.95, "mlp regression r2 {r2}");
}

#[test]
fn fits_are_deterministic_under_the_seed() {
    let (train, test) = (sequences(200, 6, false, 14), sequences(50, 6, false, 15));
    let given = small(&[("epochs", ParamValue::Int(3)), ("dropout", ParamValue::Float(0.2))]);
    for model in [BurnModel::lstm(), BurnModel::transformer(), BurnModel::mlp()] {
        let a = fit(&model, &train, &given, 16).predict(&test).unwrap();
        let b = fit(&model, &train, &given, 16).predict(&test).unwrap();
        let c = fit(&model, &train, &given, 17).predict(&test).unwrap();
        assert_eq!(a, b, "{}: same seed, different predictions", model.kind());
        assert_ne!(a, c, "{}: another seed gave the same predictions", model.kind());
    }
}

#[test]
fn artifacts_round_trip_bit_identically() {
    let (train, test) = (sequences(120, 5, false, 18), sequences(40, 5, false, 19));
    let given = small(&[("epochs", ParamValue::Int(2))]);
    for model in [BurnModel::lstm(), BurnModel::gru(), BurnModel::transformer(), BurnModel::mlp()] {
        let fitted = fit(&model, &train, &given, 20);
        let bytes = fitted.save().unwrap();
        let loaded = model.load(&bytes).unwrap();
        assert_eq!(fitted.predict(&test).unwrap(), loaded.predict(&test).unwrap(), "{}", model.kind());
    }
    let (train, test) = (sequences(120, 5, true, 21), sequences(40, 5, true, 22));
    let fitted = fit(&BurnModel::gru(), &train, &given, 23);
    let loaded = BurnModel::gru().load(&fitted.save().unwrap()).unwrap();
    assert_eq!(fitted.predict(&test).unwrap(), loaded.predict(&test).unwrap());
    // A GRU artifact is not an LSTM, and garbage is not an artifact.
    let e = BurnModel::lstm().load(&fitted.save().unwrap()).err().unwrap().to_string();
    assert!(e.contains("holds a `burn.gru` model"), "{e}");
    let e = BurnModel::lstm().load(b"nonsense").err().unwrap().to_string();
    assert!(e.contains("not a promoml-burn artifact"), "{e}");
}

/// Fixed sinusoids are computed, not saved: a transformer over long sequences (where they would
/// outnumber the other weights) still loads from its artifact; learnt positions are saved.
#[test]
fn transformer_artifact_with_long_sequences_loads_with_either_positional_encoding() {
    let (train, test) = (sequences(60, 80, false, 31), sequences(20, 80, false, 32));
    for positional in ["sinusoidal", "learned"] {
        let given = small(&[
            ("epochs", ParamValue::Int(1)),
            ("use_tabular", ParamValue::Bool(false)),
            ("head_layers", ParamValue::Int(0)),
            ("positional", ParamValue::Str(positional.into())),
        ]);
        let model = BurnModel::transformer();
        let fitted = fit(&model, &train, &given, 33);
        let loaded = model.load(&fitted.save().unwrap()).unwrap_or_else(|e| panic!("{positional}: {e}"));
        assert_eq!(fitted.predict(&test).unwrap(), loaded.predict(&test).unwrap(), "{positional}");
    }
}

#[test]
fn padding_is_masked_out_of_every_sequence_network() {
    // Garbage in the padded steps must not change the output of any sequence network.
    let device = Default::default();
    for arch in [Arch::Lstm, Arch::Gru, Arch::Transformer] {
        let spec = NetSpec {
            arch,
            steps: 6,
            channels: 2,
            tab_in: 0,
            hidden: 8,
            layers: 2,
            heads: 2,
            positional: Positional::Sinusoidal,
            dense: vec![8],
            out: 1,
            dropout: 0.0,
        };
        let net = crate::train::fresh_net::<backend::Cpu>(&spec, &device);
        let lengths = [6usize, 3, 1];
        let run = |garbage: f32| {
            let mut values = vec![0.0f32; 3 * 6 * 2];
            let (mut last, mut valid) = (vec![0.0f32; 18], vec![0.0f32; 18]);
            for (i, &len) in lengths.iter().enumerate() {
                for t in 0..6 {
                    for c in 0..2 {
                        values[(i * 6 + t) * 2 + c] = if t < len { (i + t + c) as f32 * 0.3 - 1.0 } else { garbage };
                    }
                    valid[i * 6 + t] = f32::from(u8::from(t < len));
                }
                last[i * 6 + len - 1] = 1.0;
            }
            let pad: Vec<bool> = valid.iter().map(|v| *v == 0.0).collect();
            let input = BatchInputs {
                seq: Some(SeqBatch {
                    values: Tensor::from_data(TensorData::new(values, [3, 6, 2]), &device),
                    last: Tensor::from_data(TensorData::new(last, [3, 6]), &device),
                    valid: Tensor::from_data(TensorData::new(valid, [3, 6]), &device),
                    pad: Tensor::from_data(TensorData::new(pad, [3, 6]), &device),
                }),
                tab: None,
            };
            net.forward(input).into_data().iter::<f32>().collect::<Vec<_>>()
        };
        let (clean, dirty) = (run(0.0), run(7.5));
        for (a, b) in clean.iter().zip(&dirty) {
            assert!((a - b).abs() < 1e-5, "{arch:?}: padding changed the output: {clean:?} vs {dirty:?}");
        }
    }
}

#[test]
fn deadlines_stop_training() {
    let train = sequences(300, 8, false, 24);
    let model = BurnModel::lstm();
    let p = model.space().resolve(&small(&[]), "test").unwrap();
    let past = FitContext { deadline: Some(std::time::Instant::now()), ..FitContext::new(1) };
    assert!(matches!(model.fit(&train, &p, &past), Err(Error::Budget(_))));

    let p = model
        .space()
        .resolve(
            &small(&[
                ("epochs", ParamValue::Int(100_000)),
                ("valid_fraction", ParamValue::Float(0.0)),
                ("batch_size", ParamValue::Int(64)),
            ]),
            "test",
        )
        .unwrap();
    let soon = FitContext {
        deadline: Some(std::time::Instant::now() + std::time::Duration::from_millis(400)),
        ..FitContext::new(1)
    };
    let t0 = std::time::Instant::now();
    let fitted = crate::model::fit_network("burn.lstm", Arch::Lstm, &train, &p, &soon).unwrap();
    assert!(fitted.log().stopped_by_deadline && fitted.log().epochs < 100_000);
    assert!(t0.elapsed().as_secs_f64() < 30.0);
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    // Labels independent of the inputs: the validation loss stops improving quickly.
    let mut train = sequences(400, 5, false, 25);
    let mut rng = ChaCha8Rng::seed_from_u64(26);
    train.y = Some((0..400).map(|_| f64::from(u8::from(rng.random_bool(0.5)))).collect());
    let p = BurnModel::gru()
        .space()
        .resolve(&small(&[("epochs", ParamValue::Int(200)), ("patience", ParamValue::Int(3))]), "t")
        .unwrap();
    let fitted = crate::model::fit_network("burn.gru", Arch::Gru, &train, &p, &FitContext::new(27)).unwrap();
    let log = fitted.log();
    assert!(log.epochs < 200, "ran all {} epochs", log.epochs);
    assert_eq!(log.epochs, log.best_epoch + 3);
    assert_eq!(log.rows, (340, 60));
}

#[test]
fn clear_errors_for_missing_sequences_and_cuda() {
    let tab = promoml_core::testing::blobs(50, 3, 2, 2.0, 28);
    let p = BurnModel::lstm().space().defaults();
    let e = BurnModel::lstm().fit(&tab, &p, &FitContext::new(1)).err().unwrap().to_string();
    assert!(e.contains("burn.lstm") && e.contains("sequences"), "{e}");

    let ctx = FitContext { device: promoml_core::Device::Cuda(0), ..FitContext::new(1) };
    let r = BurnModel::mlp().fit(&tab, &BurnModel::mlp().space().defaults(), &ctx);
    if cfg!(feature = "cuda") {
        // With CUDA compiled in, the fit either runs on a GPU or fails naming the device.
        if let Err(e) = r {
            assert!(e.to_string().contains("burn.mlp"), "{e}");
        }
    } else {
        let e = r.err().unwrap().to_string();
        assert!(e.contains("cuda:0") && e.contains("--features cuda"), "{e}");
    }
    let e = crate::backend::parse_device("tpu", "burn.mlp").unwrap_err().to_string();
    assert!(e.contains("unknown device \"tpu\""), "{e}");
}

#[test]
fn degenerate_data_gives_predictions_or_errors() {
    promoml_core::testing::assert_no_panics_on_degenerate_data(register);
}

#[test]
fn autoencoder_scores_outliers_higher_and_round_trips() {
    // Inliers on a 2-d plane inside 6-d space; outliers off the plane.
    let mut rng = ChaCha8Rng::seed_from_u64(29);
    let mut row = |outlier: bool| {
        let (a, b): (f64, f64) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
        let mut r = vec![a, b, a + b, a - b, 2.0 * a, -b];
        if outlier {
            for v in r.iter_mut().skip(2) {
                *v += rng.random_range(-3.0..3.0);
            }
        }
        r
    };
    let train: Vec<f64> = (0..500).flat_map(|_| row(false)).collect();
    let train = Array2::from_shape_vec((500, 6), train).unwrap();
    let test: Vec<f64> = (0..100).flat_map(|i| row(i < 10)).collect();
    let test = Array2::from_shape_vec((100, 6), test).unwrap();
    let det = detector::Autoencoder;
    let given = params(&[("epochs", ParamValue::Int(40)), ("learning_rate", ParamValue::Float(0.01))]);
    let p = det.space().resolve(&given, "t").unwrap();
    let fitted = det.fit(&train, &p, &FitContext::new(30)).unwrap();
    let scores = fitted.score(&test).unwrap();
    let labels: Vec<f64> = (0..100).map(|i| f64::from(u8::from(i < 10))).collect();
    let a = Metric::RocAuc.score(&labels, &Predictions::binary(scores.iter().map(|s| s / (1.0 + s)))).unwrap();
    assert!(a > 0.95, "autoencoder auc {a}");
    let loaded = det.load(&fitted.save().unwrap()).unwrap();
    assert_eq!(loaded.score(&test).unwrap(), scores);
    let again = det.fit(&train, &p, &FitContext::new(30)).unwrap();
    assert_eq!(again.score(&test).unwrap(), scores, "autoencoder not deterministic");
}
