#!/usr/bin/env bash
# `make bench`: install what is missing, then run `manage.py bench` at a small size (a few minutes).
# The command starts its own Redis, agent and daphne with its own prefixes, database and state directory, so a
# running `make run` is untouched, and removes everything it created even on Ctrl-C.
# Full run (the README figures): .venv/bin/python manage.py bench --json artifacts/bench/full.json
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
out=${ARTIFACTS_DIR:-$PWD/artifacts}/bench
mkdir -p "$out"
exec .venv/bin/python manage.py bench --sizes "${BENCH_SIZES:-20,50}" --latency-n "${BENCH_LATENCY_N:-30}" \
  --burst "${BENCH_BURST:-20}" --reconcile-instances "${BENCH_RECONCILE_INSTANCES:-10}" --router-n "${BENCH_ROUTER_N:-5}" \
  --json "$out/bench.json" "$@"
