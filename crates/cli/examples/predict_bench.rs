//! Prediction throughput of a model artifact: rows per second of cleaning, features and the
//! final model (an ensemble scores every member) on the rows of an input file, repeated.
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
    let rows: Vec<usize> = (0..copies).flat_map(|_| 0..n).collect();
    let big = frame.take(&rows);
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let p = artifact.predict_frame(big.clone(), "benchmark")?;
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(p.len(), rows.len());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "artifact {} ({}): load {load_s:.3} s; read {n} rows {read_s:.3} s; predict {} rows: median {median:.3} s of {runs} runs (min {:.3}, max {:.3}) = {:.0} rows/s; cores {}",
        args[1],
        artifact.task(),
        rows.len(),
        times[0],
        times[times.len() - 1],
        rows.len() as f64 / median,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}
