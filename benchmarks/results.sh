#!/usr/bin/env bash
# Regenerates docs/results.md: accuracy against pruning rate on SBU (5 folds), MSR Action3D
# (cross-subject) and JHMDB (3 splits), 3 seeds, then the speed and export benchmarks: TCP
# against TCP in channel blocks (tcp_block) on SBU at the export rates (AttentionGCN, 5 folds;
# ST-GCN, fold 1), their trained models exported, and both model families exported with masks
# selected on initial weights.
# 40 epochs and 3 rates keep the 297 trainings to about 2 hours on 2 CPU cores; the full
# preset (`gcnprune bench accuracy --dataset D`: 80 epochs, 7 rates) takes about 3x longer.
# Resumable: rerun it and finished runs are skipped. Runs go to $RUNS (default runs/results).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-runs/results}"
ACCURACY=(--methods dense,small_dense,magnitude,tcp,srmp,mrmp --rates 0.9,0.98,0.995 --unseen 0.95,0.99
          --seeds 3 --epochs 40)
for dataset in sbu msr jhmdb; do
    gcnprune bench accuracy --dataset "$dataset" --out "$RUNS/$dataset" "${ACCURACY[@]}"
done
gcnprune bench accuracy --dataset sbu --out "$RUNS/sbu_block" --methods dense,tcp,tcp_block \
    --rates 0.9,0.95,0.98,0.99 --seeds 1 --epochs 40
gcnprune bench accuracy --dataset sbu --model stgcn --protocol fold1 --out "$RUNS/sbu_stgcn" \
    --methods dense,tcp,tcp_block --rates 0.95,0.99 --seeds 1 --epochs 40
gcnprune bench speed --out "$RUNS/speed"
gcnprune bench export --runs "$RUNS/sbu_block" --out "$RUNS/export"
gcnprune bench export --runs "$RUNS/sbu_stgcn" --out "$RUNS/export_stgcn"
gcnprune bench export --out "$RUNS/export_untrained"
gcnprune bench docs "$RUNS/sbu" "$RUNS/msr" "$RUNS/jhmdb" "$RUNS/sbu_block" "$RUNS/sbu_stgcn" \
    "$RUNS/speed" "$RUNS/export" "$RUNS/export_stgcn" "$RUNS/export_untrained" \
    --to docs/results.md
