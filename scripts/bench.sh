#!/usr/bin/env bash
# Run the benchmarks; each prints its figures (they are measurements, not pass/fail tests).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || bash scripts/setup.sh --test
echo "== router: throughput and added latency"
.venv/bin/python scripts/bench_router.py "$@"
echo "== screen: log flood, key latency, memory, first paint"
.venv/bin/python scripts/bench_ui.py
echo "== logs end to end: service pipes -> supervision -> LogHub -> panes -> screen"
.venv/bin/python scripts/bench_logs.py
