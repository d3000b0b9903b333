//! Prediction throughput of a model artifact: rows per second of cleaning, features and the
//! final model (an ensemble scores every member; an uplift model every learner and its policy;
//! an anomaly model its detector) on the rows of an input file, repeated. For an event-log
//! pipeline the input is the event log, scored once per run, and rows are entities.
//!
//! ```text
//! cargo run --release -p promoml --example predict_bench -- OUT/model.promoml test.csv [copies] [runs]
//! ```
//! Reading the CSV is timed apart (once). Threads: rayon's default (all cores), or
//! `RAYON_NUM_THREADS`.

use promoml_pipeline::artifact::Artifact;
use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: predict_bench ARTIFACT INPUT [copies=10] [runs=5]".into());
    }
    let copies: usize = args.get(3).map_or(Ok(10), |s| s.parse())?;
    let runs: usize = args.get(4).map_or(Ok(5), |s| s.parse())?;
    let registry = promoml_cli::registry_with(&[]);
    let t = Instant::now();
    let artifact = Artifact::read(Path::new(&args[1]), &registry)?;
    let load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let frame = artifact.read_input(Path::new(&args[2]))?;
    let read_s = t.elapsed().as_secs_f64();
    let n = frame.n_rows();
    // An event log is scored once per run (copies would only repeat the same entities): the
    // timed work includes turning the events into one row and sequence per entity.
    let copies = if artifact.reads_event_log() { 1 } else { copies };
    let rows: Vec<usize> = (0..copies).flat_map(|_| 0..n).collect();
    let big = frame.take(&rows);
    let mut times = Vec::new();
    let mut scored_rows = rows.len();
    for _ in 0..runs {
        let t = Instant::now();
        scored_rows = if artifact.reads_event_log() {
            artifact.score_events(big.clone(), None, "benchmark")?.1
        } else {
            artifact.score_frame(big.clone(), "benchmark")?;
            rows.len()
        };
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "artifact {} ({}{}): load {load_s:.3} s; read {n} rows {read_s:.3} s; score {scored_rows} rows: median {median:.3} s of {runs} runs (min {:.3}, max {:.3}) = {:.0} rows/s; cores {}",
        args[1],
        artifact.task(),
        if artifact.reads_event_log() { ", event log: rows are entities" } else { "" },
        times[0],
        times[times.len() - 1],
        scored_rows as f64 / median,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}
