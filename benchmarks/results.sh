#!/usr/bin/env bash
# Regenerates docs/results.md. First the dense models: training recipes and stream ensembles
# chosen on validation (AttentionGCN and ST-GCN, 3 seeds), beside each protocol's published
# numbers. Then accuracy against pruning rate on MSR Action3D (cross-subject), JHMDB (3 splits)
# and SBU (5 folds), 3 seeds, 80 epochs (where dense has converged), every method beside the
# small dense models of each budget (every shape of the family trained, validation picks one)
# and TCP in whole channels (tcp_block at block density 1, pruned to the rate whose compacted
# model has each budget's weights and compared at compacted weights: on MSR's validation density
# 1 beat 0.5 at every compacted size); the smallest budgets
# from a start ten times the budget (benchmarks/small_budgets.sh's 3-seed folders, when
# present); the speed and export benchmarks. (ST-GCN's frontier: docs/frontier_stgcn.md.)
# About 11 hours on 2 CPU cores (the dense recipes about 3 hours; pruning with --jobs 2: MSR
# about 45 minutes, JHMDB 2 hours, SBU 3.5 hours). Resumable: rerun it and finished runs are
# skipped. Runs go to $RUNS (default runs/results).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-runs/results}"
SMALL_BUDGETS="${SMALL_BUDGETS:-runs/small_budgets}"
recipes() { python benchmarks/dense_quality.py --seeds 3 --latency "$@"; }
recipes --out "$RUNS/dense_streams" --datasets jhmdb,msr,sbu \
    --recipes default,bone_only,motion_only,bone_motion \
    --ensembles default/bone_only/motion_only,default/bone_motion
recipes --out "$RUNS/dense_sbu160" --datasets sbu \
    --recipes default,epochs160,bone_only+epochs160,segments4+epochs160,motion_only+epochs160,shear+epochs160,bone_only+shear+epochs160,wide+shear+epochs160,dropout5+shear+epochs160 \
    --ensembles epochs160/bone_only+epochs160,epochs160/bone_only+epochs160/segments4+epochs160,epochs160/bone_only+epochs160/motion_only+epochs160,epochs160/motion_only+epochs160,shear+epochs160/bone_only+shear+epochs160,shear+epochs160/wide+shear+epochs160
recipes --model stgcn --out "$RUNS/dense_stgcn" --datasets jhmdb,msr \
    --recipes default,motion_only,bone_motion --ensembles motion_only/bone_motion
ACCURACY=(--methods dense,small_dense,magnitude,tcp,srmp,mrmp,tcp_block --rates 0.9,0.95,0.98,0.99
          --block-density 1 --seeds 3 --epochs 80 --jobs 2)
for dataset in msr jhmdb sbu; do
    gcnprune bench accuracy --dataset "$dataset" --out "$RUNS/$dataset" "${ACCURACY[@]}"
done
# The same with the ramp over the first 30% of training (better at 98-99% on validation)
for dataset in msr jhmdb; do
    gcnprune bench accuracy --dataset "$dataset" --out "$RUNS/${dataset}_ramp03" --ramp 0,0.3 \
        "${ACCURACY[@]}"
done
gcnprune bench speed --out "$RUNS/speed"
gcnprune bench export --runs "$RUNS/jhmdb_ramp03" --methods small_dense,tcp_block \
    --out "$RUNS/export_jhmdb_block"
gcnprune bench export --out "$RUNS/export_untrained"
pages=("$RUNS/dense_streams" "$RUNS/dense_sbu160" "$RUNS/dense_stgcn" "$RUNS/msr"
       "$RUNS/msr_ramp03" "$RUNS/jhmdb" "$RUNS/jhmdb_ramp03" "$RUNS/sbu")
for dataset in jhmdb msr sbu; do
    folder="$SMALL_BUDGETS/${dataset}_ratio10_3seeds"
    if [[ -f "$folder/results.json" ]]; then pages+=("$folder"); fi
done
python benchmarks/results_page.py "${pages[@]}" "$RUNS/speed" "$RUNS/export_jhmdb_block" \
    "$RUNS/export_untrained" --to docs/results.md
