//! Benchmark of `gbm.perpetual` and `gbm.forust` on the online-shoppers bench split
//! (`../shared/data/bench/online-shoppers`, read by `promoml_core::testing::online_shoppers`:
//! numeric columns as they are, `Month` and `VisitorType` one-hot, `Weekend` 0/1).
//!
//! ```text
//! cargo run --release -p promoml-gbm --example gbm_bench -- [--threads 2] [--runs 3] [--only perpetual|forust]
//! ```
//!
//! Each configuration is fitted `--runs` times with seed 42 on `--threads` threads; the line shows
//! the median fit time (wall clock, and CPU seconds of all threads), each run's wall time, the
//! predict time of the last run, the test ROC-AUC and log loss (both on the test rows, never the
//! training rows) and the trees kept.

use promoml_core::testing::online_shoppers;
use promoml_core::{Dataset, FitContext, FittedModel, Metric, Model, ParamValue, Params, Predictions};
use promoml_gbm::{Forust, ForustConfig, Perpetual, PerpetualConfig, fit_forust, fit_perpetual};
use std::time::Instant;

struct Args {
    threads: usize,
    runs: usize,
    only: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { threads: 2, runs: 3, only: None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--threads" => args.threads = value("--threads")?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--runs" => args.runs = value("--runs")?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--only" => args.only = Some(value("--only")?),
            s => return Err(format!("unknown option {s}")),
        }
    }
    Ok(args)
}

fn params(model: &dyn Model, pairs: &[(&str, ParamValue)]) -> Params {
    let given: Params = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    model.space().resolve(&given, "params").expect("valid parameters")
}

/// CPU seconds used so far by this process, all threads (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which is in parentheses): utime and stime are 14 and 15,
    // in USER_HZ (100) ticks.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().skip(11).take(2).filter_map(|v| v.parse().ok()).collect();
    f.iter().sum::<f64>() / 100.0
}

/// Fit `runs` times; the median fit time (wall and CPU), the last fitted model and its test
/// scores.
fn measure<F: FittedModel>(
    label: &str,
    runs: usize,
    test: &Dataset,
    mut fit: impl FnMut() -> F,
    trees: impl Fn(&F) -> String,
) {
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        let f = fit();
        times.push(t0.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c0);
        last = Some(f);
    }
    let all: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let f = last.expect("at least one run");
    let t1 = Instant::now();
    let pred: Predictions = f.predict(test).expect("predict");
    let predict_s = t1.elapsed().as_secs_f64();
    let y = test.y.as_ref().expect("test labels");
    let auc = Metric::RocAuc.score(y, &pred).expect("roc_auc");
    let ll = Metric::LogLoss.score(y, &pred).expect("log_loss");
    println!(
        "{label:50} fit {:5.2}s cpu {:5.2}s (runs {}) predict {predict_s:4.2}s roc_auc {auc:.4} log_loss {ll:.4} trees {}",
        times[times.len() / 2],
        cpu[cpu.len() / 2],
        all.join("/"),
        trees(&f)
    );
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gbm_bench: {e}");
            std::process::exit(2);
        }
    };
    let Some((train, test)) = online_shoppers() else {
        eprintln!("gbm_bench: ../shared/data/bench/online-shoppers not found");
        std::process::exit(1);
    };
    println!(
        "online-shoppers: train {}x{}, test {} rows, {} threads, {} runs, seed 42",
        train.n_rows(),
        train.n_features(),
        test.n_rows(),
        args.threads,
        args.runs
    );
    let ctx = FitContext { threads: args.threads, ..FitContext::new(42) };
    let want = |name: &str| args.only.as_deref().is_none_or(|o| o == name);
    use ParamValue::{Bool, Float, Int};

    if want("perpetual") {
        let configs: Vec<(&str, Vec<(&str, ParamValue)>)> = vec![
            ("budget 0.5 (default)", vec![]),
            ("budget 0.5, balance_classes", vec![("balance_classes", Bool(true))]),
            ("budget 1.0", vec![("budget", Float(1.0))]),
            ("budget 1.5", vec![("budget", Float(1.5))]),
        ];
        for (label, pairs) in configs {
            let cfg = PerpetualConfig::from_params(&params(&Perpetual, &pairs)).expect("config");
            measure(
                &format!("gbm.perpetual {label}"),
                args.runs,
                &test,
                || fit_perpetual(&train, &cfg, &ctx).expect("fit"),
                |f| f.n_trees().to_string(),
            );
        }
    }
    if want("forust") {
        let configs: Vec<(&str, Vec<(&str, ParamValue)>)> = vec![
            ("defaults (lr 0.05, depth 6, early stop 50)", vec![]),
            ("lr 0.1, depth 4", vec![("learning_rate", Float(0.1)), ("max_depth", Int(4))]),
            (
                "lr 0.05, depth 6, subsample 0.8, colsample 0.8",
                vec![("subsample", Float(0.8)), ("colsample_bytree", Float(0.8))],
            ),
            ("300 rounds, lr 0.05, no early stop", vec![("n_estimators", Int(300)), ("early_stopping_rounds", Int(0))]),
        ];
        for (label, pairs) in configs {
            let cfg = ForustConfig::from_params(&params(&Forust, &pairs)).expect("config");
            measure(
                &format!("gbm.forust {label}"),
                args.runs,
                &test,
                || fit_forust(&train, &cfg, &ctx).expect("fit"),
                |f| format!("{} of {}", f.rounds().1, f.rounds().0),
            );
        }
    }
}
