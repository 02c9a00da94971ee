#!/usr/bin/env bash
# Run every node of a config in a network namespace of its own, the namespaces joined by
# veth pairs on a bridge: hosts that reach each other only over a (virtual) network.
# Everything lives inside one user + network + pid namespace this script creates
# (`unshare --user --net --map-root-user --pid --fork`), so it needs no root and leaves
# nothing behind: when the script ends, the kernel removes the namespaces, links and any
# process still in them.
#
#   tools/run-netns.sh CONFIG [--timeout S] [--rumor PATH] [--set key=value ...]
#
# Every node's topology host must be an IPv4 address, all in one /24 (e.g. 10.77.0.1 to
# 10.77.0.4); node i gets its host's address on its own interface. The nodes are started
# and summarized by tools/run-hosts.sh (same options). Exit status: 0 when the run
# completed, 77 when this machine cannot create the namespaces (the reason is printed),
# anything else on failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# One node, called by run-hosts.sh inside the outer namespace: give it a namespace and an
# interface with its address, then run the node command there.
if [[ "${1:-}" == "--node" ]]; then
  shift
  read -r -a host_list <<<"$RUMOR_NETNS_HOSTS"
  addr="${host_list[$RANK]}"
  outer="h$RANK" inner="n$RANK"
  ip link add "$outer" type veth peer name "$inner"
  ip link set "$outer" master rumorbr0 up
  # The child waits (bounded) for its interface to arrive, configures it, then runs the node.
  # shellcheck disable=SC2016  # the inner script expands its own arguments
  unshare --net -- bash -c '
    for ((k = 0; k < 100; k++)); do ip link show "$1" >/dev/null 2>&1 && break; sleep 0.05; done
    ip link set lo up && ip addr add "$2/24" dev "$1" && ip link set "$1" up || exit 70
    shift 2
    exec "$@"' netns-node "$inner" "$addr" "$@" &
  child=$!
  trap 'kill "$child" 2>/dev/null || true' TERM INT
  self_ns="$(readlink /proc/self/ns/net)"
  for ((k = 0; k < 100; k++)); do
    ns="$(readlink "/proc/$child/ns/net" 2>/dev/null || true)"
    [[ -n "$ns" && "$ns" != "$self_ns" ]] && break
    sleep 0.02
  done
  ip link set "$inner" netns "$child"
  rc=0
  wait "$child" || rc=$?
  exit $rc
fi

# Inside the outer namespace: a bridge the nodes' veth pairs attach to, then the run.
if [[ "${1:-}" == "--inside" ]]; then
  shift
  ip link set lo up
  ip link add rumorbr0 type bridge
  ip link set rumorbr0 up
  exec "$here/run-hosts.sh" --wrap "$here/run-netns.sh --node" "$@"
fi

skip() {
  echo "run-netns: skipped: $*" >&2
  exit 77
}
[[ $# -ge 1 && "$1" != -h && "$1" != --help ]] || {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 2
}
command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
command -v ip >/dev/null || skip "ip (iproute2) is not installed"
command -v python3 >/dev/null || skip "python3 (to read the topology's hosts) is not installed"
why="$(unshare --user --net --map-root-user --pid --fork -- sh -c \
  'ip link add rumorbr0 type bridge && ip link add rumorva type veth peer name rumorvb' 2>&1)" ||
  skip "cannot create a user + network namespace with a bridge and veth pairs here: $why"

# The hosts of the topology, in node order, from the resolved config.
rumor="$(cd "$here/.." && pwd)/build/release/rumor"
args=("$@")
for ((k = 0; k < ${#args[@]}; k++)); do
  [[ "${args[$k]}" == --rumor ]] && rumor="${args[$((k + 1))]}"
done
sets=()
for ((k = 0; k < ${#args[@]}; k++)); do
  [[ "${args[$k]}" == --set ]] && sets+=(--set "${args[$((k + 1))]}")
done
hosts="$("$rumor" launch "$1" "${sets[@]}" --dry-run 2>/dev/null | python3 -c '
import ipaddress, json, sys
cfg, _ = json.JSONDecoder().raw_decode(sys.stdin.read())
hosts = [n.get("host", "127.0.0.1") for n in sorted(cfg["topology"]["nodes"], key=lambda n: n["id"])]
nets = {ipaddress.ip_network(h + "/24", strict=False) for h in hosts}
if len(nets) != 1 or any(ipaddress.ip_address(h).is_loopback for h in hosts):
    sys.exit("run-netns: the topology hosts must be non-loopback IPv4 addresses in one /24, got " + " ".join(hosts))
print(" ".join(hosts))')" || { echo "run-netns: cannot read the topology hosts of $1" >&2; exit 2; }

export RUMOR_NETNS_HOSTS="$hosts"
exec unshare --user --net --map-root-user --pid --fork --kill-child -- "$0" --inside "$@"
