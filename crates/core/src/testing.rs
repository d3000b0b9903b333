//! Seeded synthetic problems for the tests of every model.

use crate::{Dataset, FitContext, Metric, Model, ParamValue, Params, Predictions};
use ndarray::Array2;
use rand::{Rng, SeedableRng};

fn normal(rng: &mut rand_chacha::ChaCha8Rng) -> f64 {
    // Box-Muller; rand_distr is not a dependency of the plugin.
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `k` Gaussian blobs in `d` dimensions (centres `sep` apart on the first axes), `n` rows,
/// features on very different scales so that standardisation matters.
pub fn blobs(n: usize, d: usize, k: usize, sep: f64, seed: u64) -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::zeros((n, d));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % k;
        for j in 0..d {
            let centre = if j < k && j == c { sep } else { 0.0 };
            let scale = if j % 2 == 0 { 1.0 } else { 100.0 };
            x[[i, j]] = (centre + normal(&mut rng)) * scale + if j == 1 { 1000.0 } else { 0.0 };
        }
        y.push(c as f64);
    }
    let mut ds = Dataset::from_x(x, (0..d).map(|j| format!("f{j}")).collect());
    ds.y = Some(y);
    ds.classes = (0..k).map(|c| format!("c{c}")).collect();
    ds
}

/// `y = 3 x0 - 2 x1 + 0.5 x2 + 10 + noise` with `d >= 3` features.
pub fn linear(n: usize, d: usize, noise: f64, seed: u64) -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::zeros((n, d));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        for j in 0..d {
            x[[i, j]] = normal(&mut rng);
        }
        y.push(3.0 * x[[i, 0]] - 2.0 * x[[i, 1]] + 0.5 * x[[i, 2]] + 10.0 + noise * normal(&mut rng));
    }
    let mut ds = Dataset::from_x(x, (0..d).map(|j| format!("f{j}")).collect());
    ds.y = Some(y);
    ds
}

/// Rows `[0, cut)` and `[cut, n)`.
pub fn split(ds: &Dataset, frac: f64) -> (Dataset, Dataset) {
    let cut = (ds.n_rows() as f64 * frac) as usize;
    let a: Vec<usize> = (0..cut).collect();
    let b: Vec<usize> = (cut..ds.n_rows()).collect();
    (ds.subset(&a), ds.subset(&b))
}

/// Parameters from name/value pairs.
pub fn params(pairs: &[(&str, ParamValue)]) -> Params {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Fit `model` on `train` with `given` parameters (validated) and predict `test`, checking
/// shapes and that probability rows sum to one.
pub fn fit_predict(model: &dyn Model, train: &Dataset, test: &Dataset, given: &Params, seed: u64) -> Predictions {
    let p = model.space().resolve(given, "params").expect("valid params");
    let fitted = model.fit(train, &p, &crate::FitContext::new(seed)).expect("fit");
    let mut x_only = test.clone();
    x_only.y = None;
    let pred = fitted.predict(&x_only).expect("predict");
    pred.check(test.n_rows(), model.kind()).expect("valid predictions");
    if let Predictions::Proba(pr) = &pred {
        assert_eq!(pr.ncols(), train.n_classes());
        for row in pr.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-9, "row sums to {}", row.sum());
        }
    }
    pred
}

/// Score on held-out rows.
pub fn score(metric: Metric, test: &Dataset, pred: &Predictions) -> f64 {
    metric.score(test.y.as_ref().unwrap(), pred).unwrap()
}

/// Every declared search range lies in the valid range, and defaults are valid.
pub fn check_space(model: &dyn Model) {
    let space = model.space();
    for p in &space.params {
        assert!(p.valid.check(&p.default).is_ok(), "{}: default {} invalid", p.name, p.default);
        if let Some(s) = &p.search {
            assert!(p.valid.contains_domain(s), "{}: search range outside valid range", p.name);
        }
        assert!(!p.doc.is_empty());
    }
    space.resolve(&Params::new(), "params").unwrap();
}

/// `resolve` rejects `value` for parameter `name`.
pub fn rejects(model: &dyn Model, name: &str, value: ParamValue) {
    let given = params(&[(name, value.clone())]);
    let e = model.space().resolve(&given, "m");
    assert!(e.is_err(), "{} accepted {name} = {value}", model.kind());
}

/// The online-shoppers benchmark (`../shared/data/bench/online-shoppers` beside the workspace), if present:
/// numeric columns as they are, `Month` and `VisitorType` one-hot, `Weekend` 0/1, target
/// `Revenue`.
pub fn online_shoppers() -> Option<(Dataset, Dataset)> {
    let dir = &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/bench/online-shoppers");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let (train, test) = (read("train.csv")?, read("test.csv")?);
    let header: Vec<String> = train.lines().next()?.split(',').map(str::to_string).collect();
    let cats = ["Month", "VisitorType"];
    let mut levels: Vec<Vec<String>> = vec![Vec::new(); header.len()];
    for line in train.lines().skip(1) {
        for (j, v) in line.split(',').enumerate() {
            if cats.contains(&header[j].as_str()) && !levels[j].iter().any(|l| l == v) {
                levels[j].push(v.to_string());
            }
        }
    }
    let parse = |text: &str| {
        let mut rows: Vec<Vec<f64>> = Vec::new();
        let mut y = Vec::new();
        for line in text.lines().skip(1) {
            let mut row = Vec::new();
            for (j, v) in line.split(',').enumerate() {
                match header[j].as_str() {
                    "Revenue" => y.push(if v == "TRUE" { 1.0 } else { 0.0 }),
                    "Weekend" => row.push(if v == "TRUE" { 1.0 } else { 0.0 }),
                    h if cats.contains(&h) => row.extend(levels[j].iter().map(|l| f64::from(u8::from(l == v)))),
                    _ => row.push(v.parse::<f64>().unwrap_or(0.0)),
                }
            }
            rows.push(row);
        }
        let p = rows[0].len();
        let x = Array2::from_shape_fn((rows.len(), p), |(i, j)| rows[i][j]);
        let mut ds = Dataset::from_x(x, (0..p).map(|j| format!("f{j}")).collect());
        ds.y = Some(y);
        ds.classes = vec!["no".into(), "yes".into()];
        ds
    };
    Some((parse(&train), parse(&test)))
}

/// Fit and score `model` with `given` on the benchmark, printing times and scores.
pub fn bench(model: &dyn Model, given: &Params) {
    let Some((train, test)) = online_shoppers() else {
        eprintln!("online-shoppers data not found; skipped");
        return;
    };
    let p = model.space().resolve(given, "params").unwrap();
    let t0 = std::time::Instant::now();
    let fitted = model.fit(&train, &p, &crate::FitContext::new(42)).unwrap();
    let fit_s = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let pred = fitted.predict(&test).unwrap();
    let pred_s = t1.elapsed().as_secs_f64();
    println!(
        "BENCH {:32} {:40} rows {}x{} fit {:7.2}s predict {:6.2}s roc_auc {:.4} log_loss {:.4}",
        model.kind(),
        format!("{given:?}"),
        train.n_rows(),
        train.n_features(),
        fit_s,
        pred_s,
        score(Metric::RocAuc, &test, &pred),
        score(Metric::LogLoss, &test, &pred)
    );
}

/// Degenerate training sets: constant features, more features than rows, two rows, huge
/// values, a constant regression target, a class with no rows.
pub fn degenerate_cases() -> Vec<(&'static str, crate::Dataset)> {
    let mk = |x: ndarray::Array2<f64>, y: Vec<f64>, k: usize| {
        let mut d = crate::Dataset::from_x(x.clone(), (0..x.ncols()).map(|j| format!("f{j}")).collect());
        d.y = Some(y);
        d.classes = (0..k).map(|c| format!("c{c}")).collect();
        d
    };
    let n = 12;
    let alt: Vec<f64> = (0..n).map(|i| (i % 2) as f64).collect();
    vec![
        ("constant features", mk(ndarray::Array2::from_elem((n, 3), 5.0), alt.clone(), 2)),
        (
            "identical rows per class",
            mk(ndarray::Array2::from_shape_fn((n, 2), |(i, _)| (i % 2) as f64), alt.clone(), 2),
        ),
        (
            "more features than rows",
            mk(ndarray::Array2::from_shape_fn((n, 30), |(i, j)| ((i * j) % 7) as f64), alt.clone(), 2),
        ),
        ("two rows", mk(ndarray::Array2::from_shape_vec((2, 1), vec![0.0, 1.0]).unwrap(), vec![0.0, 1.0], 2)),
        (
            "huge values",
            mk(
                ndarray::Array2::from_shape_fn((n, 2), |(i, j)| (i as f64 - 6.0) * 1e150 * (j + 1) as f64),
                alt.clone(),
                2,
            ),
        ),
        ("regression constant", mk(ndarray::Array2::from_shape_fn((n, 2), |(i, _)| i as f64), vec![3.0; n], 0)),
        ("regression one row", mk(ndarray::Array2::from_elem((1, 2), 1.0), vec![3.0], 0)),
        ("one class absent", mk(ndarray::Array2::from_shape_fn((n, 2), |(i, j)| (i + j) as f64), alt, 3)),
    ]
}

/// Every model that `register` adds must predict or return a clear error on each degenerate
/// case, never panic.
pub fn assert_no_panics_on_degenerate_data(register: fn(&mut crate::Registry)) {
    let mut r = crate::Registry::new();
    register(&mut r);
    for (name, data) in degenerate_cases() {
        for m in r.models() {
            let task = crate::model_util::task_of(&data);
            if !m.tasks().contains(&task) {
                continue;
            }
            let p = m.space().defaults();
            match m.fit(&data, &p, &crate::FitContext::new(1)) {
                Ok(f) => {
                    let pred = f.predict(&data).unwrap_or_else(|e| panic!("{} on {name}: {e}", m.kind()));
                    pred.check(data.n_rows(), m.kind()).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
                Err(e) => println!("{} on {name}: {e}", m.kind()),
            }
        }
    }
}

/// Every value of `p` as raw bits, to compare predictions bit for bit.
pub fn bits(p: &Predictions) -> Vec<u64> {
    match p {
        Predictions::Proba(a) => a.iter().map(|v| v.to_bits()).collect(),
        Predictions::Values(v) => v.iter().map(|v| v.to_bits()).collect(),
    }
}

/// Artifact round trip of `model` with default parameters on `ds`: reloaded predictions are
/// bit-identical, saving again gives the same bytes, and truncated bytes are refused with an
/// error naming the model kind.
pub fn assert_round_trip(model: &dyn Model, ds: &Dataset) {
    let (train, test) = split(ds, 0.7);
    let fitted = model.fit(&train, &model.space().defaults(), &FitContext::new(3)).unwrap();
    let bytes = fitted.save().unwrap();
    let loaded = model.load(&bytes).unwrap();
    assert_eq!(bits(&fitted.predict(&test).unwrap()), bits(&loaded.predict(&test).unwrap()), "{}", model.kind());
    assert_eq!(loaded.save().unwrap(), bytes, "{}", model.kind());
    for cut in [0, bytes.len() / 2, bytes.len() - 1] {
        let e = model.load(&bytes[..cut]).err().unwrap().to_string();
        assert!(e.contains("truncated") && e.contains(model.kind()), "{}: {e}", model.kind());
    }
}

/// The PostgreSQL server the shared-study tests run against: `PROMOML_TEST_POSTGRES` (a
/// `postgresql://` URL; `.ci/run` starts a throw-away server and sets it). `None`, with a line
/// saying so, only when `PROMOML_SKIP_POSTGRES=1` asks to skip them knowingly; otherwise a
/// missing server fails the test instead of skipping it silently.
pub fn postgres_url() -> Option<String> {
    match std::env::var("PROMOML_TEST_POSTGRES") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("PROMOML_SKIP_POSTGRES").is_ok_and(|v| v == "1") => {
            eprintln!("PostgreSQL tests SKIPPED on request (PROMOML_SKIP_POSTGRES=1)");
            None
        }
        _ => panic!(
            "PROMOML_TEST_POSTGRES is not set: these tests need a real PostgreSQL server (`.ci/run` starts one; \
             or set PROMOML_SKIP_POSTGRES=1 to skip them knowingly)"
        ),
    }
}
