#!/usr/bin/env bash
# What tools/bench.py and the comparison baselines of BENCHMARKS.md need on Debian 12, on top
# of the build: bench/iperf_loopback.sh (iperf3; iproute2's `ss` to see the server listen),
# bench/gloo_gossip.py (python3-torch: torch.distributed with gloo, run by /usr/bin/python3)
# and tools/bench.py itself (python3, standard library only). iperf3 and python3-torch are
# in install-deps.sh too (python3-torch is also a test dependency); this stays the one
# command to name for benchmarks. Idempotent.
set -euo pipefail
exec "$(dirname "$0")/install-deps.sh" iproute2 "$@"
