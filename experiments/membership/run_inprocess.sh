#!/bin/sh
# In-process acceptance runs: the membership scenario twice per method (same metrics expected)
# and the static run of the same length. Usage: sh experiments/membership/run_inprocess.sh OUT
set -e
out=${1:-experiments/membership/results}
for m in sgp dpsgd; do
  for k in 1 2; do
    /usr/bin/time -f "%e s" rumor launch --inprocess experiments/membership/churn.json --no-progress \
      --set method.name=$m --set output.dir=$out/inprocess-$m-$k
  done
  /usr/bin/time -f "%e s" rumor launch --inprocess experiments/membership/static.json --no-progress \
    --set method.name=$m --set output.dir=$out/inprocess-static-$m
done
