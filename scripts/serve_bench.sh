#!/usr/bin/env bash
# Load test of `promoml serve` for reports/benchmarks/serve.md: fits the GBM, random-forest and
# stacking artifacts on the online-shoppers benchmark split, then drives each (and the FastAPI +
# uvicorn LightGBM peer of scripts/serve_peer_lightgbm.py) with single-row and 1,000-row requests
# from 1, 8 and 64 connections on loopback, SECONDS per cell.
#   scripts/serve_bench.sh [OUT=/tmp/serve-bench] [SECONDS=3]
set -euo pipefail
OUT=${1:-/tmp/serve-bench}; SECONDS_PER_CELL=${2:-3}
DATA=$(cd "$(dirname "$0")/../../shared/data/bench/online-shoppers" && pwd)
mkdir -p "$OUT"
cargo build --release -q -p promoml --bin promoml --example serve_bench
BIN=target/release/promoml; BENCH=target/release/examples/serve_bench
common() {  # the pipeline of pipelines/online-shoppers.toml, one model or the stack
  cat <<TOML
[pipeline]
name = "online-shoppers-$1"
task = "binary"
seed = 42
[data]
train = "$DATA/train.csv"
test = "$DATA/test.csv"
target = "Revenue"
positive = "TRUE"
types = { OperatingSystems = "categorical", Browser = "categorical", Region = "categorical", TrafficType = "categorical" }
[[clean]]
kind = "impute"
[[features]]
kind = "one_hot"
max_levels = 12
[[features]]
kind = "log1p"
columns = ["Administrative_Duration", "Informational_Duration", "ProductRelated_Duration", "PageValues", "ProductRelated"]
[[features]]
kind = "standardize"
[report]
importance_repeats = 0
TOML
}
{ common gbm; printf '[[models]]\nkind = "gbm.forust"\n[search]\ntrials = 1\ncv_folds = 3\n'; } > "$OUT/gbm.toml"
{ common rf; printf '[[models]]\nkind = "forest.random_forest"\nparams = { n_trees = 300 }\n[search]\ntrials = 1\ncv_folds = 3\n'; } > "$OUT/rf.toml"
"$BIN" run "$OUT/gbm.toml" --out "$OUT/gbm" --quiet
"$BIN" run "$OUT/rf.toml" --out "$OUT/rf" --quiet
# The stack: pipelines/online-shoppers.toml with a short search (6 trials, 3 folds).
"$BIN" run pipelines/online-shoppers.toml --out "$OUT/stack" --quiet --set search.trials=6 --set search.cv_folds=3
echo "| model | rows per request | connections | requests/s | rows/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|---|---|---|"
for m in gbm rf stack; do
  "$BENCH" --label "promoml $m" --model "$OUT/$m/model.promoml" --rows "$DATA/test.csv" --drop Revenue --seconds "$SECONDS_PER_CELL"
done
python3 scripts/serve_peer_lightgbm.py --train "$DATA/train.csv" --target Revenue --port 58800 > "$OUT/peer.log" 2>&1 & peer=$!
trap 'kill $peer 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:58800/healthz >/dev/null && break; sleep 0.2; done
"$BENCH" --label "LightGBM (FastAPI + uvicorn)" --url 127.0.0.1:58800 --rows "$DATA/test.csv" --drop Revenue --seconds "$SECONDS_PER_CELL"
