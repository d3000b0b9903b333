//! TPE against random search on standard test functions, and the latency of one `ask()` with
//! 1,000 finished trials in the study.
//!
//! ```text
//! cargo run --release -p promoml-tpe --example tpe_bench -- [--seeds 20] [--trials 100] \
//!     [--latency-trials 1000] [--latency-reps 300] [--only branin|hartmann6|rosenbrock10] [--variants]
//! ```
//!
//! Functions and domains (as in ../shared/data/README.md): Branin on x1 in [-5, 10], x2 in
//! [0, 15] (minimum 0.397887); Hartmann-6 on [0, 1]^6 (minimum -3.32237); Rosenbrock in 10
//! dimensions on [-5, 10]^10 (minimum 0). Every optimiser starts with 10 random trials (Optuna's
//! default), seeds are 0..seeds, and the figure is the median over seeds of the best value
//! after `trials` trials. `tpe` is the joint (multivariate) model, `tpe.univariate` one
//! parameter at a time, `tpe.crate` the `tpe` crate (crates.io) behind our trait. `--variants` adds `consider_endpoints = true` and no-magic-clip runs.

use promoml_core::search::RandomSearch;
use promoml_core::{Optimizer, ParamSpec, Params, ParamsExt, Rng, SearchSpace};
use promoml_tpe::{CrateTpe, Tpe, TpeConfig};
use rand::SeedableRng;
use std::f64::consts::PI;
use std::time::Instant;

struct Args {
    seeds: u64,
    trials: usize,
    latency_trials: usize,
    latency_reps: usize,
    only: Option<String>,
    variants: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { seeds: 20, trials: 100, latency_trials: 1000, latency_reps: 300, only: None, variants: false };
    let mut it = std::env::args().skip(1);
    while let Some(s) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match s.as_str() {
            "--seeds" => a.seeds = value("--seeds")?.parse().map_err(|e| format!("--seeds: {e}"))?,
            "--trials" => a.trials = value("--trials")?.parse().map_err(|e| format!("--trials: {e}"))?,
            "--latency-trials" => {
                a.latency_trials = value("--latency-trials")?.parse().map_err(|e| format!("--latency-trials: {e}"))?
            }
            "--latency-reps" => {
                a.latency_reps = value("--latency-reps")?.parse().map_err(|e| format!("--latency-reps: {e}"))?
            }
            "--only" => a.only = Some(value("--only")?),
            "--variants" => a.variants = true,
            s => return Err(format!("unknown option {s}")),
        }
    }
    Ok(a)
}

struct Problem {
    name: &'static str,
    space: SearchSpace,
    f: fn(&[f64]) -> f64,
    optuna: [f64; 3],
}

fn space(bounds: &[(f64, f64)]) -> SearchSpace {
    SearchSpace::new(
        bounds
            .iter()
            .enumerate()
            .map(|(i, &(lo, hi))| ParamSpec::float(&format!("x{i:02}"), "", lo, lo, hi).search_float(lo, hi, false))
            .collect(),
    )
}

fn branin(x: &[f64]) -> f64 {
    let (b, c, t) = (5.1 / (4.0 * PI * PI), 5.0 / PI, 1.0 / (8.0 * PI));
    (x[1] - b * x[0] * x[0] + c * x[0] - 6.0).powi(2) + 10.0 * (1.0 - t) * x[0].cos() + 10.0
}

fn hartmann6(x: &[f64]) -> f64 {
    const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
    const A: [[f64; 6]; 4] = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    const P: [[f64; 6]; 4] = [
        [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
        [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
        [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
        [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
    ];
    -(0..4).map(|i| ALPHA[i] * (-(0..6).map(|j| A[i][j] * (x[j] - P[i][j]).powi(2)).sum::<f64>()).exp()).sum::<f64>()
}

fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2).map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2)).sum()
}

fn values(p: &Params, space: &SearchSpace) -> Vec<f64> {
    space.params.iter().map(|s| p.f64(&s.name).expect("searched float")).collect()
}

fn run(opt: &mut dyn Optimizer, pb: &Problem, trials: usize, seed: u64) -> f64 {
    let mut rng = Rng::seed_from_u64(seed);
    let mut best = f64::INFINITY;
    for _ in 0..trials {
        let p = opt.ask(&pb.space, &mut rng);
        let v = (pb.f)(&values(&p, &pb.space));
        best = best.min(v);
        opt.tell(&p, Some(v));
    }
    best
}

/// CPU time of this thread in seconds: on a shared machine it excludes the time other
/// processes held the core.
fn thread_cpu_seconds() -> f64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tpe_bench: {e}");
            std::process::exit(2);
        }
    };
    let problems = [
        Problem {
            name: "branin",
            space: space(&[(-5.0, 10.0), (0.0, 15.0)]),
            f: branin,
            optuna: [0.778, 0.448, 0.417],
        },
        Problem { name: "hartmann6", space: space(&[(0.0, 1.0); 6]), f: hartmann6, optuna: [-2.123, -2.996, -3.228] },
        Problem {
            name: "rosenbrock10",
            space: space(&[(-5.0, 10.0); 10]),
            f: rosenbrock,
            optuna: [96_366.0, 10_513.0, 3_050.0],
        },
    ];
    let tpe = |c: TpeConfig| move || -> Box<dyn Optimizer> { Box::new(Tpe::new(c.clone()).expect("valid config")) };
    let base = TpeConfig { n_startup_trials: 10, ..TpeConfig::default() };
    type Make = Box<dyn Fn() -> Box<dyn Optimizer>>;
    let mut contenders: Vec<(&str, Make)> = vec![
        ("random", Box::new(|| -> Box<dyn Optimizer> { Box::new(RandomSearch) })),
        ("tpe", Box::new(tpe(base.clone()))),
        ("tpe.univariate", Box::new(tpe(TpeConfig { multivariate: false, ..base.clone() }))),
        ("tpe.crate", Box::new(|| -> Box<dyn Optimizer> { Box::new(CrateTpe::new(10)) })),
    ];
    if args.variants {
        contenders.push(("tpe endpoints", Box::new(tpe(TpeConfig { consider_endpoints: true, ..base.clone() }))));
        contenders.push(("tpe no-clip", Box::new(tpe(TpeConfig { consider_magic_clip: false, ..base.clone() }))));
        contenders.push((
            "tpe.univariate endpoints",
            Box::new(tpe(TpeConfig { multivariate: false, consider_endpoints: true, ..base.clone() })),
        ));
    }
    println!(
        "median best value after {} trials over {} seeds (10 random start-up trials; lower is better)",
        args.trials, args.seeds
    );
    println!("| function | optimiser | median | min | max | Optuna 5.0 | seconds |");
    println!("|---|---|---|---|---|---|---|");
    for pb in problems.iter().filter(|p| args.only.as_deref().is_none_or(|o| o == p.name)) {
        for (name, make) in &contenders {
            let started = Instant::now();
            let mut bests: Vec<f64> = (0..args.seeds).map(|s| run(make().as_mut(), pb, args.trials, s)).collect();
            let secs = started.elapsed().as_secs_f64();
            let m = median(&mut bests);
            let optuna = match *name {
                "random" => format!("{} (random)", pb.optuna[0]),
                "tpe.univariate" => format!("{} (univariate)", pb.optuna[1]),
                "tpe" => format!("{} (multivariate)", pb.optuna[2]),
                _ => "".into(),
            };
            println!(
                "| {} | {name} | {m:.4} | {:.4} | {:.4} | {optuna} | {secs:.2} |",
                pb.name,
                bests[0],
                bests[bests.len() - 1]
            );
        }
    }

    println!();
    println!(
        "ask() latency with {} finished trials in the study ({} asks each)",
        args.latency_trials, args.latency_reps
    );
    println!(
        "| function | optimiser | whole study (s) | median ask, wall (ms) | p90 ask, wall (ms) | median ask, thread CPU (ms) |"
    );
    println!("|---|---|---|---|---|---|");
    for pb in problems.iter().filter(|p| p.name != "branin" && args.only.as_deref().is_none_or(|o| o == p.name)) {
        let (joint, univariate) = (base.clone(), TpeConfig { multivariate: false, ..base.clone() });
        latency("tpe", || Tpe::new(joint.clone()).expect("valid config"), pb, &args);
        latency("tpe.univariate", || Tpe::new(univariate.clone()).expect("valid config"), pb, &args);
        latency("tpe.crate", || CrateTpe::new(10), pb, &args);
    }
}

/// Time `args.latency_reps` asks of an optimiser holding `args.latency_trials` finished trials
/// of its own study on `pb` (seed 0), and print one table row.
fn latency<O: Optimizer + Clone + 'static>(name: &str, make: impl Fn() -> O, pb: &Problem, args: &Args) {
    let mut opt = make();
    let started = Instant::now();
    run(&mut opt, pb, args.latency_trials, 0);
    let whole = started.elapsed().as_secs_f64();
    let mut rng = Rng::seed_from_u64(1);
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    while wall.len() < args.latency_reps {
        // Copies made ahead, so every timed ask sees exactly the same finished trials and none
        // pays for copying or freeing the history.
        let mut copies: Vec<O> = (0..10).map(|_| opt.clone()).collect();
        for o in &mut copies {
            let (t, c) = (Instant::now(), thread_cpu_seconds());
            let p = o.ask(&pb.space, &mut rng);
            wall.push(t.elapsed().as_secs_f64() * 1e3);
            cpu.push((thread_cpu_seconds() - c) * 1e3);
            std::hint::black_box(p);
        }
    }
    let (med, p90, med_cpu) = (median(&mut wall), quantile(&mut wall, 0.9), median(&mut cpu));
    println!("| {} | {name} | {whole:.2} | {med:.3} | {p90:.3} | {med_cpu:.3} |", pb.name);
}
