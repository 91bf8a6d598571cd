#!/usr/bin/env bash
# `make test`: install what is missing, start a private Redis on a free loopback port, run the whole suite
# with its own kernel-name prefix and state directory, then remove everything it started or created.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

run_dir=$(mktemp -d /tmp/netdash-test.XXXXXX)
chmod 755 "$run_dir"  # dnsmasq drops privileges and must reach its state files
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prefix=$(.venv/bin/python -c 'import secrets, string; print("t" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(3)) + "-")')

cleanup() {
  scripts/redis.sh stop "$run_dir/redis" || true
  scripts/postgres.sh stop "$run_dir/pg" || true
  # Safety net: tests remove what they create; this catches anything a crashed test left behind.
  NETDASH_PREFIX="$prefix" NETDASH_STATE_DIR="$run_dir/state" NETDASH_VAR_DIR="$run_dir" \
    REDIS_URL="redis://127.0.0.1:$port/0" .venv/bin/python manage.py teardown_host --quiet 2>/dev/null || true
  rm -rf "$run_dir"
}
trap cleanup EXIT

scripts/redis.sh start "$port" "$run_dir/redis"
export REDIS_URL="redis://127.0.0.1:$port/0"
export NETDASH_PREFIX="$prefix"
export NETDASH_VAR_DIR="$run_dir"
export NETDASH_STATE_DIR="$run_dir/state"
export NETDASH_CHANNEL_PREFIX="netdash-test"
export ARTIFACTS_DIR="${ARTIFACTS_DIR:-$PWD/artifacts}"
mkdir -p "$ARTIFACTS_DIR"

if [ $# -eq 0 ]; then
  # The whole suite also checks lint and migrations; a run of selected tests (`scripts/test.sh tests/x`) does not.
  .venv/bin/ruff check .
  .venv/bin/lint-imports --no-cache  # the import contracts in pyproject.toml ([tool.importlinter])
  .venv/bin/python manage.py makemigrations --check --dry-run >/dev/null
fi
.venv/bin/pytest "$@"

if [ $# -eq 0 ]; then
  # Again on PostgreSQL, the multi-node database: the services, IPAM races, agent and load suites (50 concurrent
  # clients on one subnet, with a real agent), and three agents spanning a network over VXLAN with a node lost
  # (the multi-node database's own drill), where row locks really contend (SQLite serialises every write, so
  # there they cannot deadlock or interleave).
  pg_port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  scripts/postgres.sh start "$run_dir/pg" "$pg_port"
  # Its own artifacts directory: the fault reports are rewritten by each pytest run.
  DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/netdash" ARTIFACTS_DIR="$ARTIFACTS_DIR/postgres" \
    .venv/bin/pytest -p no:cacheprovider tests/foundation tests/agent tests/api tests/portal tests/router tests/faults/test_load.py \
    "tests/faults/test_three_node_agents.py::test_instances_on_two_nodes_lease_from_a_third_across_vxlan_and_two_tenants_on_one_cidr_stay_apart" \
    "tests/faults/test_three_node_agents.py::test_a_dhcp_node_lost_its_clients_renew_from_the_survivor_the_duty_moves_and_the_node_comes_back"
fi

