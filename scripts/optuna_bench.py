"""Cross-check of plugins/tpe against Optuna: median best value after N trials over seeds on
Branin, Hartmann-6 and 10-D Rosenbrock (the domains of plugins/tpe/examples/tpe_bench.rs), and
the latency of one ask() with 1,000 finished trials in the study.

    python3 -m venv /tmp/optuna-venv && /tmp/optuna-venv/bin/pip install optuna
    /tmp/optuna-venv/bin/python scripts/optuna_bench.py [--seeds 20] [--trials 100] [--latency-trials 1000]

Not needed by the product: only a reference for reports/benchmarks/tpe.md.
"""

import argparse
import math
import statistics
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def branin(x):
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2 + 10 * (1 - t) * math.cos(x[0]) + 10


ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
P = [
    [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
    [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
    [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
    [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
]


def hartmann6(x):
    return -sum(
        ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j]) ** 2 for j in range(6))) for i in range(4)
    )


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


PROBLEMS = {
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)]),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6),
    "rosenbrock10": (rosenbrock, [(-5.0, 10.0)] * 10),
}


def sampler(kind, seed):
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=(kind == "tpe.multivariate"))


def study_for(kind, seed, f, bounds, trials):
    study = optuna.create_study(sampler=sampler(kind, seed))

    def objective(trial):
        return f([trial.suggest_float(f"x{i:02}", lo, hi) for i, (lo, hi) in enumerate(bounds)])

    study.optimize(objective, n_trials=trials)
    return study


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--latency-trials", type=int, default=1000)
    ap.add_argument("--latency-reps", type=int, default=30)
    ap.add_argument("--only")
    args = ap.parse_args()
    print(f"optuna {optuna.__version__}: median best after {args.trials} trials over {args.seeds} seeds")
    print("| function | optimiser | median | min | max | seconds |")
    print("|---|---|---|---|---|---|")
    for name, (f, bounds) in PROBLEMS.items():
        if args.only and args.only != name:
            continue
        for kind in ["random", "tpe", "tpe.multivariate"]:
            t = time.perf_counter()
            bests = [study_for(kind, s, f, bounds, args.trials).best_value for s in range(args.seeds)]
            secs = time.perf_counter() - t
            print(
                f"| {name} | {kind} | {statistics.median(bests):.4f} | {min(bests):.4f} | {max(bests):.4f} | {secs:.1f} |",
                flush=True,
            )
    if args.latency_trials > 0:
        print(f"\nask() latency with {args.latency_trials} finished trials ({args.latency_reps} asks)")
        print("| function | optimiser | whole study (s) | median ask (ms) |")
        print("|---|---|---|---|")
        f, bounds = PROBLEMS["hartmann6"]
        for kind in ["tpe", "tpe.multivariate"]:
            t = time.perf_counter()
            study = study_for(kind, 0, f, bounds, args.latency_trials)
            whole = time.perf_counter() - t
            dists = {
                f"x{i:02}": optuna.distributions.FloatDistribution(lo, hi) for i, (lo, hi) in enumerate(bounds)
            }
            times = []
            for _ in range(args.latency_reps):
                t = time.perf_counter()
                trial = study.ask(dists)
                times.append((time.perf_counter() - t) * 1e3)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            print(f"| hartmann6 | {kind} | {whole:.2f} | {statistics.median(times):.2f} |", flush=True)


if __name__ == "__main__":
    main()
