#!/usr/bin/env bash
# The loopback ceiling for any TCP transport on this machine: iperf3 server and client on
# 127.0.0.1, one JSON line on stdout (GB/s = 1e9 bytes per second, so it compares directly
# with `rumor bench net --mode pair`'s gbps).
#
# Usage: bench/iperf_loopback.sh [SECONDS=5] [PORT=5301] [STREAMS=1]
# Needs iperf3 (tools/install-deps.sh installs it).
set -euo pipefail

seconds=${1:-5}
port=${2:-5301}
streams=${3:-1}

if ! command -v iperf3 >/dev/null 2>&1; then
  echo "iperf_loopback: iperf3 is not installed; run tools/install-deps.sh (Debian package iperf3)" >&2
  exit 1
fi
if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
  echo "iperf_loopback: port $port on 127.0.0.1 is taken; give a free one as the second argument" >&2
  exit 1
fi

work=$(mktemp -d)
server=""
cleanup() {
  # Only the server this script started; it exits by itself after one test (-1).
  [[ -n "$server" ]] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

iperf3 --server --bind 127.0.0.1 --port "$port" --one-off >"$work/server.log" 2>&1 &
server=$!
# Wait (at most 5 s) until the server listens, instead of a fixed sleep.
for _ in $(seq 50); do
  ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && break
  sleep 0.1
done

iperf3 --client 127.0.0.1 --port "$port" --time "$seconds" --parallel "$streams" --json \
  >"$work/client.json" || {
  echo "iperf_loopback: the iperf3 client failed; server log:" >&2
  cat "$work/server.log" >&2
  exit 1
}
wait "$server" 2>/dev/null || true
server=""

python3 - "$work/client.json" <<'PY'
import json, statistics, sys

report = json.load(open(sys.argv[1]))
# One figure per 1-second interval (summed over streams), in GB/s.
per_second = [iv["sum"]["bits_per_second"] / 8e9 for iv in report["intervals"]]
received = report["end"]["sum_received"]
print(json.dumps({
    "bench": "iperf3_loopback",
    "streams": report["start"]["test_start"]["num_streams"],
    "seconds": len(per_second),
    "gbps_median": round(statistics.median(per_second), 4),
    "gbps_min": round(min(per_second), 4),
    "gbps_max": round(max(per_second), 4),
    "gbps_overall": round(received["bits_per_second"] / 8e9, 4),
}))
PY
