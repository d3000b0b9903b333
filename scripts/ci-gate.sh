#!/usr/bin/env bash
# The CI regression gate: run every pipeline in pipelines/ in quick mode (2 trials per candidate,
# 3-fold CV, 2 importance shuffles, no time budget, the file's fixed seed; plus the overrides in
# reports/baselines/quick/<pipeline>.args, one KEY=VALUE per line, when that file exists) and
# compare each report.json with its committed baseline reports/baselines/quick/<pipeline>.json
# using `promoml compare`. Every run must also write report.md, report.html and model.promoml
# (the run itself checks that the reloaded artifact reproduces its test predictions bit for bit).
#
#   scripts/ci-gate.sh            # gate: exit 1 when any pipeline regressed or has no baseline
#   scripts/ci-gate.sh --update   # rewrite the quick baselines from this checkout (commit them on purpose)
#
# Env: BIN (default target/release/promoml, built if absent), OUT (default a temporary folder),
# MAX_DROP (default 0.005), PIPELINES (default every pipelines/*.toml), BASE (default
# reports/baselines/quick), JOBS (pipelines run at the same time, default 2: much of a run is
# single-threaded, and every result is independent of timing), SLOW_FIRST (the pipelines started
# first). The Markdown diffs are collected in $OUT/gate.md, in the order of PIPELINES.
set -uo pipefail
cd "$(dirname "$0")/.."
update=0
[ "${1:-}" = "--update" ] && update=1
BIN=${BIN:-target/release/promoml}
OUT=${OUT:-$(mktemp -d)}
MAX_DROP=${MAX_DROP:-0.005}
BASE=${BASE:-reports/baselines/quick}
PIPELINES=${PIPELINES:-$(ls pipelines/*.toml)}
JOBS=${JOBS:-2}
SLOW_FIRST=${SLOW_FIRST:-cdnow-repurchase seed-lstm}
# Quick mode, the same for every pipeline: small search, no wall-clock budget (a budget would
# make the result depend on the machine's speed).
QUICK=(--set search.trials=2 --set search.cv_folds=3 --set search.time_budget_s=100000
  --set report.importance_repeats=2)

if [ ! -x "$BIN" ]; then
  cargo build --release -q -p promoml || exit 2
fi
mkdir -p "$OUT" "$BASE"
: >"$OUT/gate.md"
# Run one pipeline into $OUT/<name>; its wall time in $OUT/<name>.secs, its exit status in
# $OUT/<name>.rc.
run_one() {
  local file=$1 name start extra=() line rc
  name=$(basename "$file" .toml)
  start=$(date +%s)
  if [ -f "$BASE/$name.args" ]; then
    while IFS= read -r line; do
      case "$line" in ''|'#'*) ;; *) extra+=(--set "$line") ;; esac
    done <"$BASE/$name.args"
  fi
  "$BIN" run "$file" --out "$OUT/$name" --quiet "${QUICK[@]}" "${extra[@]}" >"$OUT/$name.log" 2>&1
  rc=$?
  echo $(( $(date +%s) - start )) >"$OUT/$name.secs"
  echo "$rc" >"$OUT/$name.rc"
}
# The slowest pipelines first, so that the others fill the second slot beside them.
ordered=()
for slow in $SLOW_FIRST; do
  for file in $PIPELINES; do [ "$(basename "$file" .toml)" = "$slow" ] && ordered+=("$file"); done
done
for file in $PIPELINES; do
  case " $SLOW_FIRST " in *" $(basename "$file" .toml) "*) ;; *) ordered+=("$file") ;; esac
done
gate_start=$(date +%s)
for file in "${ordered[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  run_one "$file" &
done
wait
echo "ran ${#ordered[@]} pipelines, $JOBS at a time, in $(( $(date +%s) - gate_start )) s"
failed=()
for file in $PIPELINES; do
  name=$(basename "$file" .toml)
  secs=$(cat "$OUT/$name.secs" 2>/dev/null || echo "?")
  if [ "$(cat "$OUT/$name.rc" 2>/dev/null)" != 0 ]; then
    echo "$name: run failed: $(tail -3 "$OUT/$name.log" | tr '\n' ' ')"
    failed+=("$name (run failed)")
    continue
  fi
  missing=""
  for f in report.json report.md report.html model.promoml; do [ -s "$OUT/$name/$f" ] || missing="$missing $f"; done
  if [ -n "$missing" ]; then
    echo "$name: wrote no$missing"
    failed+=("$name (no$missing)")
    continue
  fi
  if [ "$update" -eq 1 ]; then
    cp "$OUT/$name/report.json" "$BASE/$name.json"
    echo "$name: baseline written ($secs s)"
    continue
  fi
  if [ ! -f "$BASE/$name.json" ]; then
    echo "$name: no baseline $BASE/$name.json (run scripts/ci-gate.sh --update and commit it)"
    failed+=("$name (no baseline)")
    continue
  fi
  "$BIN" compare "$BASE/$name.json" "$OUT/$name/report.json" --max-drop "$MAX_DROP" >>"$OUT/gate.md" 2>"$OUT/$name.compare.err"
  rc=$?
  echo >>"$OUT/gate.md"
  case $rc in
    0) echo "$name: ok ($secs s)" ;;
    1) echo "$name: REGRESSION: $(cat "$OUT/$name.compare.err")"; failed+=("$name") ;;
    *) echo "$name: compare failed: $(cat "$OUT/$name.compare.err")"; failed+=("$name (compare error)") ;;
  esac
done
echo "diffs: $OUT/gate.md"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "gate: ${#failed[@]} pipeline(s) failed: ${failed[*]}"
  exit 1
fi
echo "gate: every pipeline matches its baseline"
