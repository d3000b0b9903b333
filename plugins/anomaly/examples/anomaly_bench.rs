//! Benchmark of the anomaly detectors on ODDS Cardio (1,831 rows, 21 features, 176 outliers,
//! label `class`) under the unsupervised protocol of PyOD's benchmark: fit on all rows without
//! the label, score the same rows, compare with the label.
//!
//! ```text
//! cargo run --release -p promoml-anomaly --example anomaly_bench -- \
//!     [--data ../shared/data/raw/anomaly/cardio.csv] [--seeds 5] [--trees 100] [--runs 5] [--threads 0]
//! ```
//!
//! Prints, per detector, ROC-AUC and PR-AUC (mean and range over seeds for the isolation forest)
//! and the fit and score times (median of `--runs` fits).

use ndarray::Array2;
use promoml_core::io::{ReadOptions, read_file};
use promoml_core::metrics::{average_precision, roc_auc};
use promoml_core::{AnomalyDetector, FitContext, ParamValue, Params};
use std::path::PathBuf;
use std::time::Instant;

struct Args {
    data: PathBuf,
    seeds: u64,
    trees: i64,
    runs: usize,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        data: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/raw/anomaly/cardio.csv")),
        seeds: 5,
        trees: 100,
        runs: 5,
        threads: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => a.data = PathBuf::from(value()?),
            "--seeds" => a.seeds = value()?.parse().map_err(|e| format!("--seeds: {e}"))?,
            "--trees" => a.trees = value()?.parse().map_err(|e| format!("--trees: {e}"))?,
            "--runs" => a.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--threads" => a.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    if args.threads > 0 {
        rayon::ThreadPoolBuilder::new().num_threads(args.threads).build_global()?;
    }
    let frame = read_file(&args.data, &ReadOptions::default())?;
    let label = frame.require("class", "label")?.data.clone();
    let features: Vec<&str> = frame.names().into_iter().filter(|n| *n != "class").collect();
    let n = frame.n_rows();
    let mut x = Array2::zeros((n, features.len()));
    for (j, name) in features.iter().enumerate() {
        let col = &frame.require(name, "feature")?.data;
        for i in 0..n {
            x[[i, j]] = col.value_f64(i);
        }
    }
    let y: Vec<f64> = (0..n).map(|i| label.value_f64(i)).collect();
    println!(
        "{}: {n} rows, {} features, {} outliers; threads: {}",
        args.data.display(),
        features.len(),
        y.iter().filter(|&&v| v == 1.0).count(),
        rayon::current_num_threads()
    );
    let detectors: Vec<(Box<dyn AnomalyDetector>, Params, u64)> = vec![
        (
            Box::new(promoml_anomaly::IsolationForest),
            promoml_core::Params::from([("n_trees".to_string(), ParamValue::Int(args.trees))]),
            args.seeds,
        ),
        (Box::new(promoml_anomaly::Ecod), Params::new(), 1),
    ];
    for (d, params, seeds) in detectors {
        let (mut aucs, mut aps, mut fit_s, mut score_s) = (vec![], vec![], vec![], vec![]);
        for seed in 0..seeds {
            let ctx = FitContext::new(seed);
            for _ in 0..args.runs {
                let t = Instant::now();
                let f = d.fit(&x, &params, &ctx)?;
                fit_s.push(t.elapsed().as_secs_f64());
                let t = Instant::now();
                let s = f.score(&x)?;
                score_s.push(t.elapsed().as_secs_f64());
                std::hint::black_box(&s);
            }
            let s = d.fit(&x, &params, &ctx)?.score(&x)?;
            aucs.push(roc_auc(&y, &s)?);
            aps.push(average_precision(&y, &s)?);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (lo, hi) = aucs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        println!(
            "{:26} roc_auc {:.4} (min {:.4}, max {:.4}, {} seeds)  pr_auc {:.4}  fit {:.1} ms  score {:.1} ms (median of {})",
            d.kind(),
            mean(&aucs),
            lo,
            hi,
            seeds,
            mean(&aps),
            1e3 * median(fit_s),
            1e3 * median(score_s),
            args.runs * seeds as usize
        );
    }
    Ok(())
}
