#!/usr/bin/env bash
# Regenerates docs/results.md: accuracy against pruning rate on SBU (5 folds), MSR Action3D
# (cross-subject) and JHMDB (3 splits), 3 seeds, then the speed and export benchmarks.
# Resumable: rerun it and finished runs are skipped. Runs go to $RUNS (default runs/results).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-runs/results}"
ACCURACY=(--methods dense,magnitude,tcp,srmp,mrmp --rates 0.9,0.98,0.995 --unseen 0.95,0.99
          --seeds 3 --epochs 40)
gcnprune bench accuracy --dataset msr --out "$RUNS/msr" "${ACCURACY[@]}"
gcnprune bench accuracy --dataset sbu --out "$RUNS/sbu" "${ACCURACY[@]}"
gcnprune bench accuracy --dataset jhmdb --out "$RUNS/jhmdb" "${ACCURACY[@]}"
gcnprune bench speed --out "$RUNS/speed"
gcnprune bench export --out "$RUNS/export" --runs "$RUNS/sbu"
gcnprune bench docs "$RUNS/msr" "$RUNS/sbu" "$RUNS/jhmdb" "$RUNS/speed" "$RUNS/export" \
    --to docs/results.md
