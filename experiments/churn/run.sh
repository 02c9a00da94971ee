#!/bin/sh
# The churn experiment, in-process: the run with churn and the static run, for sgp and dpsgd,
# each timed. Usage: sh experiments/churn/run.sh OUT [--set KEY=VALUE ...]
# then: python3 experiments/churn/analyze.py OUT
set -e
out=${1:-experiments/churn/results}
[ $# -gt 0 ] && shift
for m in sgp dpsgd; do
  for c in churn static; do
    /usr/bin/time -f "$c-$m: %e s wall, %U s user" rumor launch --inprocess \
      experiments/churn/$c.json --no-progress --set method.name=$m \
      --set output.dir=$out/$c-$m "$@"
  done
done
