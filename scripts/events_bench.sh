#!/usr/bin/env bash
# The event-log data stage side by side with Polars and pandas (issue 16's benchmark, written up
# in reports/benchmarks/events.md). A bench command, not a test: timings depend on the machine.
#
#   cargo build --release -p promoml-pipeline --example events_stage
#   ../shared/checks/gen_events.sh 500000 40 /tmp/events20m.txt     # 20 M events, 500 k customers
#   scripts/events_bench.sh /tmp/events20m.txt [more logs...]
#
# For each log: promoml's data stage (`events_stage`: load + prepare of the CDNOW event plan, as
# `promoml run` reports it), then ../shared/peers/events_polars.py and scripts/events_pandas.py
# computing the same group-bys. Peak RSS from /usr/bin/time (promoml) or the script's own
# getrusage (Polars, pandas). PYTHON selects the interpreter (it needs polars and pandas);
# SKIP="pandas" leaves tools out (e.g. pandas on logs that do not fit in memory).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
STAGE=${STAGE:-target/release/examples/events_stage}
PEERS=${PEERS:-../shared/peers}
SKIP=${SKIP:-}
[ -x "$STAGE" ] || { echo "build it first: cargo build --release -p promoml-pipeline --example events_stage" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "| log | events | tool | data stage s | peak RSS MB |"
echo "|---|---|---|---|---|"
for log in "$@"; do
  events=$(( $(wc -l < "$log") - 1 ))
  cat > "$tmp/p.toml" <<TOML
[pipeline]
name = "events-bench"
task = "binary"
[data]
path = "$(realpath "$log")"
delimiter = "whitespace"
timestamp_format = "%Y%m%d"
types = { customer_id = "numeric", date = "timestamp" }
target = "buys_again"
positive = "TRUE"
split = { kind = "modulo", modulo = 5, remainder = 4, column = "customer_id" }
[data.events]
entity = "customer_id"
time = "date"
values = ["number_of_cds", "dollar_value"]
start = "1997-01-01"
cutoff = "1997-09-30"
horizon_end = "1998-06-30"
label = "any"
encoding = "bins"
bin = "week"
recent_days = [30, 60, 90, 180]
periods = 9
period_days = 30
[[models]]
kind = "gbm.forust"
TOML
  /usr/bin/time -f "%M" -o "$tmp/rss" "$STAGE" "$tmp/p.toml" > "$tmp/out"
  s=$(sed -n 's/.*data stage \([0-9.]*\) s.*/\1/p' "$tmp/out")
  echo "| $(basename "$log") | $events | promoml | $s | $(( $(cat "$tmp/rss") / 1024 )) |"
  for tool in polars pandas; do
    case " $SKIP " in *" $tool "*) continue ;; esac
    script="$PEERS/events_polars.py"; [ "$tool" = pandas ] && script=scripts/events_pandas.py
    line=$("$PYTHON" "$script" "$log")
    s=$(sed -n 's/.*, \([0-9.]*\) s, peak RSS.*/\1/p' <<<"$line"); m=$(sed -n 's/.*peak RSS \([0-9]*\) MB.*/\1/p' <<<"$line")
    echo "| $(basename "$log") | $events | $tool | $s | $m |"
  done
done
