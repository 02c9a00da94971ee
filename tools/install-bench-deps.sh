#!/usr/bin/env bash
# What the comparison baselines of BENCHMARKS.md need: bench/iperf_loopback.sh (iperf3) and
# bench/gloo_gossip.py (python3-torch: torch.distributed with gloo, run by /usr/bin/python3).
# Both are in install-deps.sh now (python3-torch is also a test dependency); this stays as
# the one command to name for benchmarks. Idempotent.
set -euo pipefail
exec "$(dirname "$0")/install-deps.sh"
