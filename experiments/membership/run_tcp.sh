#!/bin/sh
# TCP acceptance runs on loopback: the membership scenario per method, then the static run
# of the same length. Usage: sh experiments/membership/run_tcp.sh OUT
set -e
out=${1:-experiments/membership/results}
for m in sgp dpsgd; do
  /usr/bin/time -f "%e s" rumor launch experiments/membership/churn.json --no-progress \
    --set method.name=$m --set output.dir=$out/tcp-$m
  /usr/bin/time -f "%e s" rumor launch experiments/membership/static.json --no-progress \
    --set method.name=$m --set output.dir=$out/tcp-static-$m
done
