#!/usr/bin/env bash
# Regenerates docs/frontier.md: accuracy against nonzero weights on SBU (5 folds, 1 seed, 80
# epochs), every method next to small_dense (dense models of the same weights, the shape chosen
# on validation), at rates that leave 2.7% to 11.6% of the AttentionGCN's weights.
# About 3 hours on 2 CPU cores; resumable: rerun it and finished runs are skipped.
# The published run trained the same runs in three commands (small_dense's shapes were added
# after its first pass, at rates 0.9 and 0.95 only: below, every shape is the smallest model),
# so its results.json names the last of them.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-runs/frontier}"
gcnprune bench accuracy --dataset sbu --methods dense,small_dense,magnitude,tcp,srmp,mrmp \
    --rates 0.9,0.95,0.98,0.99 --seeds 1 --epochs 80 --out "$RUNS/sbu_frontier"
gcnprune bench docs "$RUNS/sbu_frontier" --to docs/frontier.md
