#!/usr/bin/env bash
# Replays attacks on a TCP run from this machine and prints what the run did: its exit
# code, final mean test accuracy, node 1's peak memory, and the refusals summary.json counts.
#
#   tools/attack-probe.sh [--rumor PATH] [--attacker PATH] [--payload-bytes B] [--set key=value ...] PROBE...
#   tools/attack-probe.sh stranger wrong-size nan dup-seq far-future config
#
# Probes (node 0 is impersonated towards node 1; the run is experiments/quickstart.json with
# on_peer_failure continue and the adaptive deadline, plus any --set):
#   clean       no attack (the reference)
#   stranger    a connection without the run secret claiming node 0
#   wrong-size, nan, dup-seq, far-future
#               a peer that read RUNDIR/secret (when there is one) takes node 0's link over
#               and sends that (far-future: 96 frames of 16 MiB over up to 96 takeovers)
#   config      network.max_frame_mb 0 and 1e300, negative round and connect timeouts:
#               refused before anything starts?
# Node 1's peak memory is read from /proc while it runs (VmHWM), so the probe works with
# builds whose metrics lines do not carry it. --payload-bytes is the size of the run's gossip
# payload (default 814160: the quickstart MLP's 101770 parameters as fp64 running sums).
# The attacker is tests/cli/attack_peer.cpp
# (cmake --build --preset release --target attack_peer).
set -euo pipefail

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 2
}

root="$(cd "$(dirname "$0")/.." && pwd)"
rumor="$root/build/release/rumor"
attacker="$root/build/release/attack_peer"
payload=814160
config="$root/experiments/quickstart.json"
sets=(--set on_peer_failure=continue --set network.round_deadline=adaptive)
probes=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rumor) rumor="$2"; shift 2 ;;
    --attacker) attacker="$2"; shift 2 ;;
    --payload-bytes) payload="$2"; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -h | --help) usage ;;
    -*) echo "attack-probe: unknown option '$1'" >&2; usage ;;
    *) probes+=("$1"); shift ;;
  esac
done
((${#probes[@]} > 0)) || usage
work="$(mktemp -d /tmp/attack-probe.XXXXXX)"
echo "attack-probe: $("$rumor" --version 2>&1 | head -n1); work dir $work" >&2

# Peak resident memory (MB) of node 1's process while `launch` (pid $1) runs.
watch_node1() {
  local launch=$1 peak=0 pid kb
  for ((i = 0; i < 36000; i++)); do  # bounded: 30 min at 50 ms
    kill -0 "$launch" 2>/dev/null || break
    pid="$(ps -o pid=,args= --ppid "$launch" | awk '/ --id 1( |$)/ { print $1; exit }' || true)"
    if [[ -n "$pid" ]]; then
      kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)"
      if [[ -n "$kb" ]] && ((kb > peak)); then peak=$kb; fi
    fi
    sleep 0.05
  done
  echo $((peak / 1024))
}

attack_args() {
  local secret="$1/secret" key=()
  [[ -f "$secret" ]] && key=(--secret "$secret")
  case "$2" in
    stranger) echo "stranger --as 0 --target 1" ;;
    far-future)
      echo "far-future --as 0 --target 1 --frames 96 --mb 16 --takeovers 96 --payload-bytes $payload ${key[*]}"
      ;;
    *) echo "$2 --as 0 --target 1 --payload-bytes $payload ${key[*]}" ;;
  esac
}

run_probe() {
  local probe=$1 out="$work/$1"
  mkdir -p "$out"
  local start=$SECONDS
  "$rumor" launch "$config" "${sets[@]}" --set "output.dir=$out/runs" --no-progress \
    --log-level warn >"$out/launch.out" 2>&1 &
  local launch=$!
  watch_node1 "$launch" >"$out/rss_mb" &
  local watcher=$!
  local attack='{}'
  if [[ "$probe" != clean ]]; then
    local f=""
    for ((i = 0; i < 1200; i++)); do  # bounded: 60 s for node 1's first metrics line
      f="$(ls "$out"/runs/*/node-1.jsonl 2>/dev/null | head -n1 || true)"
      [[ -n "$f" && -s "$f" ]] && break
      sleep 0.05
    done
    # shellcheck disable=SC2046
    attack="$("$attacker" "$(dirname "$f")" $(attack_args "$(dirname "$f")" "$probe") 2>&1 || true)"
  fi
  local rc=0
  wait "$launch" || rc=$?
  wait "$watcher" || true
  local summary
  summary="$(ls "$out"/runs/*/summary.json 2>/dev/null | head -n1 || true)"
  python3 - "$probe" "$rc" "$((SECONDS - start))" "$(cat "$out/rss_mb")" "$summary" "$attack" \
    "$out/launch.out" <<'EOF'
import json, sys
probe, rc, secs, rss, summary, attack, log = sys.argv[1:8]
s = json.load(open(summary)) if summary else {}
final = s.get("final", {})
row = {"probe": probe, "exit": int(rc), "wall_s": int(secs), "node1_peak_rss_mb": int(rss),
       "test_acc_mean": final.get("test_acc_mean"), "nodes_finished": s.get("nodes_finished"),
       "msgs_rejected": s.get("msgs_rejected"),
       "rejected_by_node_1": s.get("rejected_by_node", {}).get("1"),
       "handshakes_refused": s.get("handshakes_refused"), "attacker": attack.strip()}
if int(rc) != 0:
    row["launch_said"] = open(log).read().strip().splitlines()[-3:]
print(json.dumps(row))
EOF
}

config_probe() {
  for kv in network.max_frame_mb=0 network.max_frame_mb=1e300 network.round_timeout_s=-1 \
    network.connect_timeout_s=-1; do
    local rc=0 said
    said="$("$rumor" launch "$config" --set "$kv" --dry-run 2>&1)" || rc=$?
    python3 -c 'import json,sys; print(json.dumps({"probe": "config " + sys.argv[1], "exit": int(sys.argv[2]), "said": sys.argv[3].strip().splitlines()[-1]}))' \
      "$kv" "$rc" "$said"
  done
}

for p in "${probes[@]}"; do
  case "$p" in
    config) config_probe ;;
    clean | stranger | wrong-size | nan | dup-seq | far-future) run_probe "$p" ;;
    *) echo "attack-probe: unknown probe '$p'" >&2; usage ;;
  esac
done
