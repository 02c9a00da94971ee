#!/usr/bin/env bash
# SQuARM vs D-PSGD at the same budget of local steps (5000 per node), ring8, Fashion-MNIST,
# Dirichlet alpha 0.5, mlp; then SQuARM's trigger threshold c0 swept, in the paper's units
# (c_t lr^2) and with the paper's unscaled Nesterov steps. In-process (the
# figures do not depend on it: the same seed gives the same metrics over TCP).
set -euo pipefail
cd "$(dirname "$0")/../.."
R=${RUMOR:-build/release/rumor}
B=experiments/squarm-budget/base.json
$R launch $B --inprocess --no-progress
for c0 in 2 1000 10000 30000 100000; do
  $R launch $B --inprocess --no-progress --set method.name=squarm --set 'codec=topk:0.1|sign' \
    --set local_steps=5 --set rounds=1000 --set eval.every=100 --set optimizer.lr=0.02 \
    --set method.c0=$c0 \
    --set method.c_units=lr2 --set method.scale_lr=false \
    --set method.gamma=0.4 --set method.lr_schedule=optimizer
done
