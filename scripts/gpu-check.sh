#!/usr/bin/env bash
# GPU check for the burn models: build promoml with CUDA (promoml-burn's `cuda` feature, burn's
# CubeCL CUDA backend), then
#   1. the LSTM/GRU/transformer training throughput on the CDNOW sequences on the GPU
#      (`--example throughput -- --device cuda:0`), next to the same on the CPU;
#   2. the CDNOW pipeline (pipelines/cdnow-repurchase.toml) with every burn model on "cuda:0",
#      printing its wall time and leaderboard.
# Run from the repository root on a machine with an NVIDIA GPU and the CUDA toolkit (nvcc, the
# driver's libcuda). Needs ../shared/data beside the checkout, as the tests do.
#   bash scripts/gpu-check.sh [out-dir]        (default out/gpu-check)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/gpu-check}
mkdir -p "$out"
export CARGO_TERM_COLOR=never

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
  || echo "warning: nvidia-smi not found; the CUDA runtime may still work"

echo "== build (release, --features cuda)"
cargo build --release -q -p promoml --features cuda
cargo build --release -q -p promoml-burn --features cuda --example throughput

echo "== training throughput on CDNOW sequences (sequences per second, training loop only)"
for device in cuda:0 cpu; do
  cargo run --release -q -p promoml-burn --features cuda --example throughput -- \
    --device "$device" --epochs 3 --models lstm,gru,transformer | tee -a "$out/throughput.txt"
done

pipeline=pipelines/cdnow-repurchase.toml
if [ ! -f "$pipeline" ]; then
  echo "$pipeline not found: skipping the pipeline run"
  exit 0
fi
echo "== $pipeline with the burn models on cuda:0 (--device: every fit gets the device; only burn models use it)"
start=$(date +%s.%N)
./target/release/promoml run "$pipeline" --out "$out/cdnow" --device cuda:0
end=$(date +%s.%N)
python3 - "$out/cdnow/report.json" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"pipeline wall time {float(sys.argv[3]) - float(sys.argv[2]):.1f} s")
for e in r.get("leaderboard", []):
    print(f"  {str(e.get('name')):32} test {e.get('test')}")
PY
