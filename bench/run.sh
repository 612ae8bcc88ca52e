#!/usr/bin/env bash
# `make bench`: starts a throwaway cluster, runs the scan and CLI benchmarks side by side, and
# writes the figures to docs/bench.md (with the machine described). Takes about ten minutes,
# more the first time (bench/big_bench.py generates its Django projects under /var/tmp once).
#
#   BENCH_RUNS=3           samples per figure (medians)
#   BENCH_BIG_APPS=4,40    sizes of the generated projects, in apps of 125 migrations each
#   BENCH_BIG_TIMEOUT=180  seconds after which a command on a generated project is stopped
#   BENCH_BIG_PRIME=1      export the generated projects without a limit first (once per
#                          version of the generator and exporter; long)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=/var/tmp/django-migrator-bench
PORT=${BENCH_PORT:-55470}
bash scripts/cluster.sh stop "$DIR" >/dev/null 2>&1 || true
trap 'bash scripts/cluster.sh stop "$DIR"' EXIT
bash scripts/cluster.sh start "$DIR" "$PORT"
scan=$(.venv/bin/python bench/scan_bench.py "host=$DIR/sock port=$PORT user=postgres dbname=postgres")
cli=$(.venv/bin/python bench/cli_bench.py "$DIR/sock" "$PORT")
big=$(.venv/bin/python bench/big_bench.py "$DIR/sock" "$PORT")
.venv/bin/python bench/report.py "$scan" "$cli" "$big" > docs/bench.md
cat docs/bench.md
