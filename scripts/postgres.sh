#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for the test suite: `postgres.sh start DIR PORT` / `postgres.sh stop DIR`.
# PostgreSQL is the database of multi-node installs; the row-lock and concurrency tests only bite there.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?dir}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "postgres: no server installed (Debian package postgresql)" >&2; exit 1; }
if [ "$cmd" = start ]; then
  port=${3:?port}
  mkdir -p "$dir"
  chown postgres "$dir"
  runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  echo "postgres: 127.0.0.1:$port"
elif [ "$cmd" = stop ]; then
  [ -d "$dir/data" ] && runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
fi
