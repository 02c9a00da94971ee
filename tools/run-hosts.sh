#!/usr/bin/env bash
# Start every node of a run on its own, as mpirun or srun would on a cluster: one
# `rumor node CONFIG` process per node, its id from RANK, no launcher. Waits for all of
# them (at most --timeout seconds; past it, stops them), then runs `rumor summarize` on the
# run directory they share.
#
#   tools/run-hosts.sh CONFIG [--timeout S] [--rumor PATH] [--wrap PROGRAM] [--set key=value ...]
#   tools/run-hosts.sh experiments/quickstart.json --set topology=topologies/ring8-hosts.json
#
# --wrap "PROGRAM ARGS" starts each node as `PROGRAM ARGS rumor node ...` (RANK set), e.g. to put it
# in a network namespace of its own (tools/run-netns.sh).
#
# The node count, run id and run directory come from `rumor launch CONFIG --dry-run`, so
# they are the ones the nodes compute. Each node's stdout/stderr goes to
# <run dir>/node-<i>.out; its log to <run dir>/node-<i>.log. Exit status: 0 when every
# node finished and summarize succeeded, 1 otherwise.
#
# Like `rumor launch`, it makes a fresh secret for the run (<run dir>/secret, made by
# `rumor secret new`) and gives it to every node, unless the config names its own
# network.secret_file.
set -euo pipefail

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 2
}

config=""
timeout_s=3600
rumor="$(cd "$(dirname "$0")/.." && pwd)/build/release/rumor"
overrides=()
wrap=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --timeout) timeout_s="$2"; shift 2 ;;
    --rumor) rumor="$2"; shift 2 ;;
    --set) overrides+=(--set "$2"); shift 2 ;;
    --wrap) read -r -a wrap <<<"$2"; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "run-hosts: unknown option '$1'" >&2; usage ;;
    *) [[ -z "$config" ]] || usage; config="$1"; shift ;;
  esac
done
[[ -n "$config" ]] || usage
[[ -x "$rumor" ]] || { echo "run-hosts: no rumor executable at '$rumor' (use --rumor PATH)" >&2; exit 2; }

dry="$("$rumor" launch "$config" "${overrides[@]}" --dry-run 2>&1)" || {
  echo "run-hosts: rumor launch --dry-run refused the config:" >&2
  echo "$dry" >&2
  exit 2
}
nodes="$(sed -n 's/^topology [^:]*: \([0-9][0-9]*\) nodes.*/\1/p' <<<"$dry" | head -n1)"
run_id="$(sed -n 's/^ *"run_id": "\(.*\)",\{0,1\}$/\1/p' <<<"$dry" | head -n1)"
out_dir="$(sed -n 's/^ *"dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$dry" | head -n1)"
if [[ -z "$nodes" || -z "$run_id" || -z "$out_dir" ]]; then
  echo "run-hosts: cannot read the node count, run id or output.dir from --dry-run" >&2
  exit 2
fi
run_dir="$out_dir/$run_id"
mkdir -p "$run_dir"
if ! grep -q '"secret_file": "' <<<"$dry"; then
  "$rumor" secret new -o "$run_dir/secret" 2>/dev/null
  overrides+=(--set "network.secret_file=$run_dir/secret")
fi
echo "run-hosts: run $run_id, $nodes nodes started independently, results in $run_dir" >&2

pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop_all; exit 130' INT TERM
for ((i = 0; i < nodes; i++)); do
  RANK=$i "${wrap[@]}" "$rumor" node "$config" "${overrides[@]}" >"$run_dir/node-$i.out" 2>&1 &
  pids+=($!)
done

# Bounded wait: poll until every node has exited or the deadline passes.
deadline=$((SECONDS + timeout_s))
status=0
declare -A done_pids=()
while ((${#done_pids[@]} < nodes)); do
  for i in "${!pids[@]}"; do
    pid=${pids[$i]}
    [[ -n "${done_pids[$pid]:-}" ]] && continue
    if ! kill -0 "$pid" 2>/dev/null; then
      rc=0
      wait "$pid" || rc=$?
      done_pids[$pid]=1
      if ((rc != 0)); then
        echo "run-hosts: node $i (pid $pid) exited with status $rc; see $run_dir/node-$i.out and node-$i.log" >&2
        status=1
      fi
    fi
  done
  if ((SECONDS >= deadline)); then
    echo "run-hosts: not finished after ${timeout_s}s; stopping the nodes still running" >&2
    stop_all
    status=1
    break
  fi
  sleep 0.2
done
trap - INT TERM

"$rumor" summarize "$run_dir" || status=1
exit $status
