#!/usr/bin/env bash
# Regenerates docs/frontier.md: accuracy against nonzero weights (1 seed, 80 epochs), every
# method next to small_dense (dense models of the same weights, the shape chosen on validation),
# at rates that leave 1% to 12% of the AttentionGCN's weights: SBU (5 folds, about 3 hours on 2
# CPU cores), MSR Action3D (cross-subject, about 30 minutes with --jobs 2) and JHMDB (3 splits,
# about 1 hour with --jobs 2); `tcp_block` (TCP inside channel blocks) is compared with small_dense
# at compacted weights too. Then a model twice as wide on JHMDB, pruned to the budget of the
# default model at 90% (the smallest it can reach: its biases and normalization alone outweigh
# the 95% budget): large-sparse against small-dense. Last, the training step time of every
# method against dense (about 20 minutes). Resumable: rerun it and finished runs are skipped.
# The published SBU run trained the same runs in three commands (small_dense's shapes were added
# after its first pass, at rates 0.9 and 0.95 only: below, every shape is the smallest model),
# so its results.json names the last of them.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-runs/frontier}"
METHODS=dense,small_dense,magnitude,tcp,srmp,mrmp,tcp_block
for dataset in sbu msr jhmdb; do
    gcnprune bench accuracy --dataset "$dataset" --methods "$METHODS" \
        --rates 0.9,0.95,0.98,0.99 --seeds 1 --epochs 80 --jobs 2 --out "$RUNS/${dataset}_frontier"
done
gcnprune bench accuracy --dataset jhmdb --option heads=16 --option head_channels=16 \
    --option graph_channels=64 --methods dense,small_dense,magnitude,tcp,srmp --rates 0.99084 \
    --seeds 1 --epochs 80 --jobs 2 --out "$RUNS/jhmdb_wide2"
gcnprune bench speed --steps 30 --rounds 3 --no-tfmot --out "$RUNS/frontier_speed"
python benchmarks/results_page.py "$RUNS/sbu_frontier" "$RUNS/msr_frontier" "$RUNS/jhmdb_frontier" \
    "$RUNS/jhmdb_wide2" "$RUNS/frontier_speed" --to docs/frontier.md
