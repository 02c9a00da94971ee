#!/bin/sh
# TCP acceptance runs on loopback: the membership scenario per method, then the static run
# of the same length; then the scenario with a 25 s pause. Usage: sh experiments/membership/run_tcp.sh OUT
set -e
out=${1:-experiments/membership/results}
for m in sgp dpsgd; do
  /usr/bin/time -f "%e s" rumor launch experiments/membership/churn.json --no-progress \
    --set method.name=$m --set output.dir=$out/tcp-$m
  /usr/bin/time -f "%e s" rumor launch experiments/membership/static.json --no-progress \
    --set method.name=$m --set output.dir=$out/tcp-static-$m
done
# A pause longer than the links' 10 s heartbeat: the neighbours leave node 5 out, and it is
# let back in at their round.
for m in sgp dpsgd; do
  /usr/bin/time -f "%e s" rumor launch experiments/membership/churn.json --no-progress \
    --set method.name=$m --set 'faults.pause=[{"node": 5, "round": 500, "seconds": 25}]' \
    --set output.dir=$out/tcp-pause25-$m
done
