#!/usr/bin/env bash
# `make bench`: starts a throwaway cluster, runs the scan and CLI benchmarks side by side, and
# writes the figures to docs/bench.md (with the machine described). Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=/var/tmp/django-migrator-bench
PORT=${BENCH_PORT:-55470}
bash scripts/cluster.sh stop "$DIR" >/dev/null 2>&1 || true
trap 'bash scripts/cluster.sh stop "$DIR"' EXIT
bash scripts/cluster.sh start "$DIR" "$PORT"
scan=$(.venv/bin/python bench/scan_bench.py "host=$DIR/sock port=$PORT user=postgres dbname=postgres")
cli=$(.venv/bin/python bench/cli_bench.py "$DIR/sock" "$PORT")
.venv/bin/python bench/report.py "$scan" "$cli" > docs/bench.md
cat docs/bench.md
