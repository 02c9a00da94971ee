#!/usr/bin/env bash
# Optional: what only the comparison baselines of BENCHMARKS.md need (not to build or test
# rumor): python3-torch for ../shared/bench/gloo_gossip.py (torch.distributed with gloo).
# iperf3 for ../shared/bench/iperf_loopback.sh is already in install-deps.sh. Idempotent.
set -euo pipefail
exec "$(dirname "$0")/install-deps.sh" python3-torch
