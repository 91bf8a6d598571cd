#!/usr/bin/env bash
# `make run`: install what is missing, start Redis, the host agent and daphne, seed the demo, print the URL.
# Ctrl-C stops everything it started and removes the host state it made (the database keeps the networks;
# the next `make run` rebuilds them through reconcile).
# `NODES=3 make run`: three simulated nodes on this machine instead of one agent: node1 and node2 run DHCP, node3
# instances; each agent has its own NETDASH_NODE, kernel-name prefix (<prefix>1- ...), state directory and VTEP
# (10.250.0.<i>) on one simulated fabric inside the project's own namespaces (NETDASH_FABRIC_PREFIX, nothing
# in the root namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

export NETDASH_VAR_DIR="${NETDASH_VAR_DIR:-$PWD/var}"
PORT=${PORT:-8000}
HOST=${HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
NODES=${NODES:-1}
export NETDASH_PREFIX="${NETDASH_PREFIX:-nd-}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
# The demo runs on the simulated underlay only: settings refuse NETDASH_UNDERLAY=host when this is set.
export NETDASH_DEMO=1
mkdir -p "$NETDASH_VAR_DIR"

pids=()
started_redis=0
cleanup() {
  trap - INT TERM EXIT
  echo; echo "netdash: stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$NODES" -gt 1 ]; then
    for i in $(seq "$NODES"); do env $(node_env "$i") .venv/bin/python manage.py teardown_host --quiet || true; done
  fi
  .venv/bin/python manage.py teardown_host --quiet || true  # this prefix's host state (several nodes: the fabric)
  if [ "$started_redis" = 1 ]; then scripts/redis.sh stop "$NETDASH_VAR_DIR/redis"; fi
}
trap cleanup INT TERM EXIT

# One simulated node's environment: the first two of several are DHCP nodes, the others compute (Neutron's
# network and compute nodes), so the demo's instances lease from DHCP servers on other nodes, over VXLAN.
node_env() {
  local i=$1 roles=compute base=${NETDASH_PREFIX%-}
  if [ "$i" -le 2 ] && [ "$i" -lt "$NODES" ]; then roles=dhcp; fi
  echo "NETDASH_NODE=node$i NETDASH_PREFIX=$base$i- NETDASH_FABRIC_PREFIX=$NETDASH_PREFIX" \
       "NETDASH_NODE_VTEP=10.250.0.$i NETDASH_NODE_ROLES=$roles"
}

if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
  scripts/redis.sh start "$REDIS_PORT" "$NETDASH_VAR_DIR/redis"
  started_redis=1
fi

.venv/bin/python manage.py migrate --noinput >/dev/null
.venv/bin/python manage.py collectstatic --noinput >/dev/null
if [ "$NODES" -gt 1 ]; then
  for i in $(seq "$NODES"); do
    env $(node_env "$i") .venv/bin/python manage.py agent &
    pids+=($!)
  done
  # The demo is scheduled across the nodes: wait until every agent has registered its node.
  for _ in $(seq 60); do
    .venv/bin/python manage.py shell -c "import sys; from tenants.nodes import live_nodes
sys.exit(live_nodes().count() < $NODES)" >/dev/null 2>&1 && break
    sleep 1
  done
else
  .venv/bin/python manage.py agent &
  pids+=($!)
fi
.venv/bin/python manage.py seed_demo
.venv/bin/daphne -b "$HOST" -p "$PORT" netdash.asgi:application &
pids+=($!)

echo
echo "netdash is running at http://$HOST:$PORT/  (admin: http://$HOST:$PORT/admin/)  — Ctrl-C stops it"
wait -n "${pids[@]}" || true
