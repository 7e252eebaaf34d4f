#!/usr/bin/env bash
# Regenerates docs/results.md: accuracy against pruning rate on MSR Action3D (cross-subject),
# JHMDB (3 splits) and SBU (5 folds), 3 seeds, 80 epochs (where dense has converged), every
# method beside the small dense models of each budget (every shape of the family trained,
# validation picks one) and TCP in channel blocks (tcp_block, compared at compacted weights);
# then ST-GCN on SBU fold 1, the speed and export benchmarks, and the smallest budgets from a
# start ten times the budget (benchmarks/small_budgets.sh's 3-seed folders, when present).
# About 6 hours with --jobs 2 on 2 CPU cores (MSR about 45 minutes, JHMDB 2 hours, SBU 3.5
# hours). Resumable: rerun it and finished runs are skipped. Runs go to $RUNS (default
# runs/results).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-runs/results}"
SMALL_BUDGETS="${SMALL_BUDGETS:-runs/small_budgets}"
ACCURACY=(--methods dense,small_dense,magnitude,tcp,srmp,mrmp,tcp_block --rates 0.9,0.95,0.98,0.99
          --seeds 3 --epochs 80 --jobs 2)
for dataset in msr jhmdb sbu; do
    gcnprune bench accuracy --dataset "$dataset" --out "$RUNS/$dataset" "${ACCURACY[@]}"
done
gcnprune bench accuracy --dataset sbu --model stgcn --protocol fold1 --out "$RUNS/sbu_stgcn" \
    --methods dense,tcp,tcp_block --rates 0.95,0.99 --seeds 1 --epochs 80 --jobs 2
gcnprune bench speed --out "$RUNS/speed"
gcnprune bench export --runs "$RUNS/sbu" --out "$RUNS/export"
gcnprune bench export --runs "$RUNS/sbu_stgcn" --out "$RUNS/export_stgcn"
gcnprune bench export --out "$RUNS/export_untrained"
pages=("$RUNS/msr" "$RUNS/jhmdb" "$RUNS/sbu")
for dataset in jhmdb msr sbu; do
    folder="$SMALL_BUDGETS/${dataset}_ratio10_3seeds"
    if [[ -f "$folder/results.json" ]]; then pages+=("$folder"); fi
done
gcnprune bench docs "${pages[@]}" "$RUNS/sbu_stgcn" "$RUNS/speed" "$RUNS/export" \
    "$RUNS/export_stgcn" "$RUNS/export_untrained" --to docs/results.md
