#!/usr/bin/env bash
# Loading a large plain table (`[data] path`, `train`/`test`) side by side with pandas and
# Polars (issue 16, item 2; written up in reports/benchmarks/events.md, "Plain tables"). A bench
# command, not a test: timings depend on the machine.
#
#   cargo build --release -p promoml-core --example read_table
#   scripts/gen_table.py 10000000 /tmp/t10m.csv          # 10 M rows, 14 columns, 813 MB
#   scripts/table_bench.sh /tmp/t10m.csv [more tables...]
#
# For each table: promoml's reader (`read_table`, what a pipeline's load stage runs), then
# scripts/table_pandas.py with pandas and with Polars. Wall time and peak RSS from /usr/bin/time.
# PYTHON selects the interpreter (it needs pandas and polars); SKIP="pandas polars" leaves
# tools out.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
READ=${READ:-target/release/examples/read_table}
SKIP=${SKIP:-}
[ -x "$READ" ] || { echo "build it first: cargo build --release -p promoml-core --example read_table" >&2; exit 1; }
measure() { # tool, command...: one table row
  local tool=$1; shift
  local t; t=$(mktemp)
  /usr/bin/time -f "%e %M" -o "$t" "$@" > /dev/null
  read -r secs kb < "$t"; rm -f "$t"
  echo "| $(basename "$table") | $rows | $tool | $secs | $((kb / 1024)) |"
}
echo "| table | rows | tool | wall s | peak RSS MB |"
echo "|---|---|---|---|---|"
for table in "$@"; do
  rows=$(( $(zcat -f "$table" | wc -l) - 1 ))
  measure promoml "$READ" "$table"
  for tool in pandas polars; do
    case " $SKIP " in *" $tool "*) continue ;; esac
    measure "$tool" "$PYTHON" scripts/table_pandas.py "$tool" "$table"
  done
done
