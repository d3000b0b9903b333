//! Storage overhead per trial: what a study store adds to every trial, apart from fitting.
//!
//! ```text
//! cargo run --release -p promoml-pipeline --example study_bench -- URL TRIALS PROCESSES
//! ```
//!
//! `URL` is `sqlite:PATH`, `postgresql://USER@HOST:PORT/DB`, or `local:PATH` for a run's own
//! `OUT/study.db` (one process appending, the default of `promoml run`) and `jsonl:PATH` for
//! the trial-log export alone. For shared stores, `PROCESSES` threads, each with its own
//! connection, claim and finish `TRIALS` trials in all (claim + finish = one trial's overhead);
//! prints milliseconds per trial (wall time / trials) and per claim+finish round trip.

use promoml_pipeline::study::open_store;
use promoml_pipeline::study::shared::{Budget, ClaimView, Decision, TrialState};
use promoml_pipeline::study::sqlite::SqliteStorage;
use promoml_pipeline::study::{JsonlStorage, StudyHeader, StudyStorage, TRIAL_LOG_VERSION, TrialRecord};
use promoml_report::Trial;
use std::time::Instant;

fn record(number: usize) -> TrialRecord {
    // A trial as big as a real one: 8 parameters, 5 fold scores, 6 metrics.
    TrialRecord {
        trial: Trial {
            model: "gradient_boosting".into(),
            number,
            params: (0..8)
                .map(|i| (format!("param_{i}"), serde_json::json!(number as f64 * 0.37 + i as f64)))
                .collect(),
            fold_scores: vec![0.91, 0.92, 0.93, 0.905, 0.915],
            score: Some(0.916),
            seconds: 3.2,
            error: None,
            pruned: false,
        },
        cv: ["roc_auc", "log_loss", "accuracy", "f1", "precision", "recall"]
            .iter()
            .map(|m| (m.to_string(), 0.5))
            .collect(),
    }
}

fn next(view: &ClaimView<'_>) -> promoml_core::Result<Decision> {
    if let Some(t) = view.trials.iter().find(|t| t.state == TrialState::Waiting) {
        return Ok(Decision::TakeOver { model: t.model.clone(), number: t.number });
    }
    let n = view.trials.len();
    Ok(if n < view.budget.trials["gradient_boosting"] {
        Decision::New { model: "gradient_boosting".into(), number: n, params: record(n).trial.params }
    } else {
        Decision::Nothing
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, trials, procs) = match args.as_slice() {
        [_, u, t, p] => (u.clone(), t.parse::<usize>().expect("TRIALS"), p.parse::<usize>().expect("PROCESSES")),
        _ => {
            eprintln!("usage: study_bench URL TRIALS PROCESSES");
            std::process::exit(2);
        }
    };
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let header = StudyHeader {
        trial_log_version: TRIAL_LOG_VERSION,
        pipeline: format!("study-bench-{nonce}"),
        seed: 1,
        promoml_version: env!("CARGO_PKG_VERSION").into(),
        data_sha256: "ab".repeat(32),
        settings: Default::default(),
    };
    let t0 = Instant::now();
    if let Some(path) = url.strip_prefix("local:").or_else(|| url.strip_prefix("jsonl:")) {
        let path = std::path::Path::new(path);
        let mut s: Box<dyn StudyStorage> = if url.starts_with("local:") {
            Box::new(SqliteStorage::create(path, &header).unwrap())
        } else {
            Box::new(JsonlStorage::create(path, &header).unwrap())
        };
        let t0 = Instant::now();
        for i in 0..trials {
            s.append(&record(i)).unwrap();
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0 / trials as f64;
        println!("{url}: {trials} appends, {ms:.3} ms per trial");
        return;
    }
    let budget = Budget { trials: [("gradient_boosting".to_string(), trials)].into(), folds: 5, ..Budget::default() };
    let study = open_store(&url).unwrap().create_study(&header, &budget).unwrap();
    let handles: Vec<_> = (0..procs)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut store = open_store(&url).unwrap();
                let me = format!("bench-{w}");
                let mut round_trips = Vec::new();
                loop {
                    let t = Instant::now();
                    let Some(c) = store.claim(study, &me, 60.0, &mut next).unwrap() else { break };
                    assert!(store.finish(study, &me, &record(c.number)).unwrap());
                    round_trips.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                round_trips
            })
        })
        .collect();
    let mut all: Vec<f64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let wall = t0.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let median = all[all.len() / 2];
    let p99 = all[(all.len() * 99 / 100).min(all.len() - 1)];
    println!(
        "{}: {trials} trials by {procs} process(es): {:.3} ms per trial (wall / trials); claim+finish median {median:.3} ms, p99 {p99:.3} ms",
        promoml_pipeline::study::shared::redact(&url),
        wall * 1000.0 / trials as f64
    );
}
