#!/usr/bin/env bash
# A throw-away InfluxDB 1.x (Debian's `influxd`) on loopback, for tests and benchmarks.
#
#   scripts/influxdb.sh start DIR PORT [RPC_PORT]   # config, data and pid file in DIR
#   scripts/influxdb.sh stop DIR
#
# `start` writes DIR/influxdb.conf (HTTP on 127.0.0.1:PORT, the RPC/backup listener on
# 127.0.0.1:RPC_PORT — default PORT+1 —, data under DIR, no usage reporting, no _internal
# monitoring), starts `influxd` in the background, waits until GET /ping answers 204 and
# writes DIR/influxd.pid. Starting again on the same DIR keeps the data (a restart).
# `stop` sends SIGTERM and waits for the process to exit. The binary is $PHARMATWIN_INFLUXD,
# else `influxd` on PATH (`scripts/test-deps.sh` installs it).
set -euo pipefail

log() { echo "[influxdb.sh] $*" >&2; }

usage() {
  echo "usage: $0 start DIR PORT [RPC_PORT] | stop DIR" >&2
  exit 2
}

ping_ok() {
  local port="$1"
  curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/ping" 2>/dev/null \
    | grep -q '^204$'
}

start() {
  local dir="$1" port="$2" rpc="${3:-$(($2 + 1))}"
  local bin="${PHARMATWIN_INFLUXD:-$(command -v influxd || true)}"
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    log "influxd not found: run scripts/test-deps.sh (installs Debian's influxdb)"
    exit 1
  fi
  mkdir -p "$dir/meta" "$dir/data" "$dir/wal"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/influxd.pid" ] && kill -0 "$(cat "$dir/influxd.pid")" 2>/dev/null; then
    log "already running in $dir (pid $(cat "$dir/influxd.pid"))"
    exit 1
  fi
  cat >"$dir/influxdb.conf" <<EOF
reporting-enabled = false
bind-address = "127.0.0.1:$rpc"

[meta]
  dir = "$dir/meta"

[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:$port"
  log-enabled = false

[logging]
  level = "warn"

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false
EOF
  "$bin" -config "$dir/influxdb.conf" >>"$dir/influxd.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/influxd.pid"
  for _ in $(seq 1 300); do
    if ping_ok "$port"; then
      log "influxd up on 127.0.0.1:$port (pid $pid, data in $dir)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "influxd exited during start-up; its log:"
      tail -n 30 "$dir/influxd.log" >&2 || true
      rm -f "$dir/influxd.pid"
      exit 1
    fi
    sleep 0.05
  done
  log "influxd did not answer /ping on port $port within 15 s"
  kill "$pid" 2>/dev/null || true
  exit 1
}

stop() {
  local dir="$1"
  local pidfile="$dir/influxd.pid"
  [ -f "$pidfile" ] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "influxd (pid $pid) ignored SIGTERM for 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start) [ $# -ge 3 ] || usage; start "$2" "$3" "${4:-}" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  *) usage ;;
esac
