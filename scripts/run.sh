#!/usr/bin/env bash
# `make run`: install what is missing, start Redis, the host agent and daphne, seed the demo, print the URL.
# Ctrl-C stops everything it started and removes the host state it made (the database keeps the networks;
# the next `make run` rebuilds them through reconcile).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

export NETDASH_VAR_DIR="${NETDASH_VAR_DIR:-$PWD/var}"
PORT=${PORT:-8000}
HOST=${HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
mkdir -p "$NETDASH_VAR_DIR"

pids=()
started_redis=0
cleanup() {
  trap - INT TERM EXIT
  echo; echo "netdash: stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  .venv/bin/python manage.py teardown_host --quiet || true
  if [ "$started_redis" = 1 ]; then scripts/redis.sh stop "$NETDASH_VAR_DIR/redis"; fi
}
trap cleanup INT TERM EXIT

if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
  scripts/redis.sh start "$REDIS_PORT" "$NETDASH_VAR_DIR/redis"
  started_redis=1
fi

.venv/bin/python manage.py migrate --noinput >/dev/null
.venv/bin/python manage.py collectstatic --noinput >/dev/null
.venv/bin/python manage.py agent &
pids+=($!)
.venv/bin/python manage.py seed_demo
.venv/bin/daphne -b "$HOST" -p "$PORT" netdash.asgi:application &
pids+=($!)

echo
echo "netdash is running at http://$HOST:$PORT/  (admin: http://$HOST:$PORT/admin/)  — Ctrl-C stops it"
wait -n "${pids[@]}" || true
