#!/usr/bin/env bash
# Start (or stop) a private redis-server on loopback: `redis.sh start PORT DIR` / `redis.sh stop DIR`.
# The project starts its own Redis so a fresh machine needs no service manager; it is stopped by its pid.
set -euo pipefail
cmd=${1:?start|stop}
if [ "$cmd" = start ]; then
  port=${2:?port}; dir=${3:?dir}
  mkdir -p "$dir"
  if redis-cli -p "$port" ping >/dev/null 2>&1; then
    echo "redis: already answering on 127.0.0.1:$port"; exit 0
  fi
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$dir/redis.pid" \
    --dir "$dir" --logfile "$dir/redis.log" --save "" --appendonly no --protected-mode yes >/dev/null
  for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && { echo "redis: 127.0.0.1:$port (pid $(cat "$dir/redis.pid"))"; exit 0; }
    sleep 0.05
  done
  echo "redis: did not start on port $port; see $dir/redis.log" >&2; exit 1
elif [ "$cmd" = stop ]; then
  dir=${2:?dir}
  if [ -f "$dir/redis.pid" ]; then
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    rm -f "$dir/redis.pid"
  fi
fi
