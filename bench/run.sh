#!/usr/bin/env bash
# Entry point for `make bench`: install peers (own venvs under bench/.venvs/), build the seeded corpus,
# run every tool, write bench/results.md + bench/results.json.
#   bash bench/run.sh                 # default: N=1000 files, 3 runs
#   bash bench/run.sh --quick         # N=100, 1 run (development)
#   BENCH_N=200 BENCH_RUNS=1 bash bench/run.sh --no-ocr --tools deidcli floor dicognito
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "bench: .venv missing (install the project first)" >&2; exit 2; }
bash bench/setup_peers.sh
exec "$PY" bench/run_bench.py --no-setup "$@"
