//! Benchmark of the forest plugin on a train/test split with a binary `Revenue` target
//! (online-shoppers), against smartcore's random forest.
//!
//! ```text
//! cargo run --release -p promoml-forest --example forest_bench -- /work/shared/data/bench/online-shoppers \
//!     [--trees 500] [--threads 2] [--runs 3] [--smartcore-trees 100] [--no-smartcore] [--only random_forest]
//! ```
//!
//! Categorical columns get ordinal codes in the order their levels first appear in the training
//! file (test levels are mapped to the same codes), booleans are 0/1: the same encoding as
//! `scripts/sklearn_rf_bench.py`, so the numbers compare.

use ndarray::Array2;
use promoml_core::io::{CsvOptions, read_csv};
use promoml_core::{
    ColumnData, Dataset, FitContext, FittedModel, Frame, Metric, Model, ParamValue, Params, Predictions,
};
use promoml_forest::{Forest, fit_forest};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

const TARGET: &str = "Revenue";

struct Args {
    dir: PathBuf,
    trees: i64,
    threads: usize,
    runs: usize,
    smartcore_trees: u16,
    smartcore: bool,
    only: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/bench/online-shoppers")),
        trees: 500,
        threads: 2,
        runs: 3,
        smartcore_trees: 100,
        smartcore: true,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--trees" => args.trees = value("--trees")?.parse().map_err(|e| format!("--trees: {e}"))?,
            "--threads" => args.threads = value("--threads")?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--runs" => args.runs = value("--runs")?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--smartcore-trees" => {
                args.smartcore_trees = value("--smartcore-trees")?.parse().map_err(|e| format!("{e}"))?
            }
            "--no-smartcore" => args.smartcore = false,
            "--only" => args.only = Some(value("--only")?),
            s if !s.starts_with("--") => args.dir = PathBuf::from(s),
            s => return Err(format!("unknown option {s}")),
        }
    }
    Ok(args)
}

/// Ordinal codes of categorical levels per column, in training first-seen order.
type Levels = HashMap<String, HashMap<String, f64>>;

fn levels_of(train: &Frame) -> Levels {
    let mut out = Levels::new();
    for c in train.columns() {
        if let ColumnData::Categorical { levels, .. } = &c.data {
            out.insert(c.name.clone(), levels.iter().enumerate().map(|(i, l)| (l.clone(), i as f64)).collect());
        }
    }
    out
}

fn to_dataset(frame: &Frame, levels: &Levels) -> Result<Dataset, String> {
    let features: Vec<_> = frame.columns().iter().filter(|c| c.name != TARGET).collect();
    let n = frame.n_rows();
    let mut x = Array2::zeros((n, features.len()));
    for (j, c) in features.iter().enumerate() {
        for i in 0..n {
            x[[i, j]] = match (&c.data, levels.get(&c.name)) {
                (ColumnData::Categorical { .. }, Some(map)) => {
                    let s = c.data.value_string(i).ok_or(format!("missing value in `{}`", c.name))?;
                    map.get(&s).copied().unwrap_or(map.len() as f64)
                }
                (d, _) => d.value_f64(i),
            };
            if !x[[i, j]].is_finite() {
                return Err(format!("missing value in `{}` row {i}", c.name));
            }
        }
    }
    let target = &frame.require(TARGET, "target").map_err(|e| e.to_string())?.data;
    let y = (0..n)
        .map(|i| match target.value_string(i).as_deref() {
            Some("TRUE") | Some("true") | Some("1") => Ok(1.0),
            Some("FALSE") | Some("false") | Some("0") => Ok(0.0),
            other => Err(format!("unexpected target {other:?} in row {i}")),
        })
        .collect::<Result<Vec<f64>, String>>()?;
    let mut d = Dataset::from_x(x, features.iter().map(|c| c.name.clone()).collect());
    d.y = Some(y);
    d.classes = vec!["FALSE".into(), "TRUE".into()];
    Ok(d)
}

/// CPU seconds used so far by this process, all threads (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().skip(11).take(2).filter_map(|v| v.parse().ok()).collect();
    f.iter().sum::<f64>() / 100.0
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let read = |f: &str| read_csv(&args.dir.join(f), &CsvOptions::default()).map_err(|e| e.to_string());
    let (train_frame, test_frame) = (read("train.csv")?, read("test.csv")?);
    let levels = levels_of(&train_frame);
    let train = to_dataset(&train_frame, &levels)?;
    let test = to_dataset(&test_frame, &levels)?;
    let y_test = test.y.clone().unwrap_or_default();
    let positives = train.y.as_ref().map_or(0.0, |y| y.iter().sum::<f64>());
    println!(
        "data: {} train rows ({positives} positive), {} test rows, {} features; {} trees, {} threads, {} runs",
        train.n_rows(),
        test.n_rows(),
        train.n_features(),
        args.trees,
        args.threads,
        args.runs
    );

    println!(
        "{:<28} {:>4} {:>9} {:>9} {:>11} {:>8} {:>9}",
        "model", "run", "fit s", "fit cpu s", "predict s", "roc_auc", "nodes"
    );
    for model in [Forest::random_forest(), Forest::extra_trees()] {
        let kind = model.kind();
        if args.only.as_ref().is_some_and(|o| !kind.contains(o.as_str())) {
            continue;
        }
        // scikit-learn's defaults: unlimited depth, one row per leaf, sqrt(features) per node.
        let mut given = Params::new();
        given.insert("n_trees".into(), ParamValue::Int(args.trees));
        given.insert("max_features".into(), ParamValue::Str("sqrt".into()));
        given.insert("max_depth".into(), ParamValue::Int(0));
        given.insert("min_samples_leaf".into(), ParamValue::Int(1));
        let params = model.space().resolve(&given, kind).map_err(|e| e.to_string())?;
        let cfg = model.config(&params).map_err(|e| e.to_string())?;
        for run in 0..args.runs {
            let ctx = FitContext { threads: args.threads, ..FitContext::new(run as u64) };
            let (t, cpu) = (Instant::now(), cpu_seconds());
            let fitted = fit_forest(kind, &train, &cfg, &ctx).map_err(|e| e.to_string())?;
            let (fit_s, fit_cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
            let t = Instant::now();
            let pred = rayon::ThreadPoolBuilder::new()
                .num_threads(args.threads)
                .build()
                .map_err(|e| e.to_string())?
                .install(|| fitted.predict(&test))
                .map_err(|e| e.to_string())?;
            let predict_s = t.elapsed().as_secs_f64();
            let auc = Metric::RocAuc.score(&y_test, &pred).map_err(|e| e.to_string())?;
            println!(
                "{kind:<28} {run:>4} {fit_s:>9.3} {fit_cpu:>9.2} {predict_s:>11.3} {auc:>8.4} {:>9}",
                fitted.n_nodes()
            );
            if run == 0 && kind == "forest.random_forest" {
                let mut imp: Vec<(f64, &str)> = fitted
                    .feature_importances()
                    .iter()
                    .zip(&train.feature_names)
                    .map(|(&v, n)| (v, n.as_str()))
                    .collect();
                imp.sort_by(|a, b| b.0.total_cmp(&a.0));
                let top: Vec<String> = imp.iter().take(5).map(|(v, n)| format!("{n} {v:.3}")).collect();
                println!("    top importances: {}", top.join(", "));
            }
        }
    }

    if args.smartcore {
        use smartcore::ensemble::random_forest_classifier::{RandomForestClassifier, RandomForestClassifierParameters};
        use smartcore::linalg::basic::matrix::DenseMatrix;
        let dense = |d: &Dataset| {
            let (n, p) = d.x.dim();
            DenseMatrix::new(n, p, d.x.iter().copied().collect(), false).map_err(|e| e.to_string())
        };
        let (xtr, xte) = (dense(&train)?, dense(&test)?);
        let ytr: Vec<u32> = train.y.as_ref().map_or(Vec::new(), |y| y.iter().map(|&v| v as u32).collect());
        let m = (train.n_features() as f64).sqrt().floor() as usize;
        let label = format!("smartcore rf ({} trees)", args.smartcore_trees);
        for run in 0..args.runs {
            let params = RandomForestClassifierParameters::default()
                .with_n_trees(args.smartcore_trees)
                .with_m(m)
                .with_seed(run as u64);
            let (t, cpu) = (Instant::now(), cpu_seconds());
            let rf = RandomForestClassifier::fit(&xtr, &ytr, params).map_err(|e| e.to_string())?;
            let (fit_s, fit_cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
            let t = Instant::now();
            let labels: Vec<u32> = rf.predict(&xte).map_err(|e| e.to_string())?;
            let predict_s = t.elapsed().as_secs_f64();
            let pred = Predictions::binary(labels.iter().map(|&l| f64::from(l)));
            let auc = Metric::RocAuc.score(&y_test, &pred).map_err(|e| e.to_string())?;
            println!("{label:<28} {run:>4} {fit_s:>9.3} {fit_cpu:>9.2} {predict_s:>11.3} {auc:>8.4} {:>9}", "-");
        }
    }
    Ok(())
}
