#!/usr/bin/env bash
# Optional: packages for the comparison baselines of BENCHMARKS.md (not needed to build or
# test rumor): python3-torch for ../shared/bench/gloo_gossip.py (torch.distributed, gloo)
# and iperf3 for ../shared/bench/iperf_loopback.sh. Idempotent.
set -euo pipefail

PACKAGES=(python3 python3-torch iperf3)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-bench-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-bench-deps: installing ${missing[*]}"
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-bench-deps: error: run as root: $0" >&2; exit 1; }
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq ||
  { echo "install-bench-deps: error: apt-get update failed (network? apt sources?)" >&2; exit 1; }
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
  { echo "install-bench-deps: error: apt-get install failed for: ${missing[*]}" >&2; exit 1; }
echo "install-bench-deps: done"
