#!/usr/bin/env bash
# Regenerates the results pages in docs/ from the results kept in docs/results/ (what the
# benchmark scripts copied there), without training anything: run it after changing how
# benchmarks/results_page.py writes a page. Every folder of docs/results/ is on one page; the
# superseded ones left for docs/archive/ (their data is in git history).
set -euo pipefail
cd "$(dirname "$0")/.."
page() { local to=$1; shift; python benchmarks/results_page.py "${@/#/docs/results/}" --to "$to"; }
page docs/results.md dense_streams dense_sbu160 dense_stgcn_msr_3seeds dense_stgcn_jhmdb \
    jhmdb_ratio10_3seeds jhmdb_ratio10_cx jhmdb_ratio10_sd1 jhmdb_ratio10_sd4 \
    jhmdb_ratio10_ramp03 jhmdb_ratio10_rw11 jhmdb_ratio10_rw11_ramp03 msr_ratio10_cx \
    msr_ratio10_ramp03 msr_ratio10_s0.01 msr_ratio10_s0.1 msr_ratio10_ramp03_s0.01 \
    msr_ratio10_ramp03_s0.1 msr_ratio20 sbu_ratio10_cx sbu_ratio10_ramp03 sbu_ratio10_s0.01 \
    sbu_ratio10_s0.1 sbu_ratio20 msr msr_ramp03 msr_block msr_block_ramp03 msr_cx msr_sd1 \
    msr_sdnext1 jhmdb jhmdb_ramp03 jhmdb_block jhmdb_block_ramp03 jhmdb_cx jhmdb_sd1 jhmdb_sd4 \
    jhmdb_sdnext1 sbu sbu_cx sbu_block_ramp03 sbu_sd1 sbu_sd4 sbu_sdnext1 speed \
    export_jhmdb_block export_untrained
page docs/small_budgets.md jhmdb_default jhmdb_ratio4 jhmdb_ratio10 msr_default msr_ratio4 \
    msr_ratio10 sbu_default sbu_ratio4 sbu_ratio10 jhmdb_ratio10_3seeds msr_ratio10_3seeds \
    sbu_ratio10_3seeds
page docs/streaming.md stream_sbu_default stream_sbu_windows4 stream_sbu_windows8 \
    stream_msr_default stream_msr_windows4 stream_msr_windows8 stream_jhmdb_default \
    stream_jhmdb_windows4 stream_jhmdb_windows8 detect_shrec21
page docs/gpu_engine.md export_gpu_engine
page docs/frontier_stgcn.md frontier_jhmdb frontier_msr frontier_sbu frontier_shrec21 \
    fromdense_jhmdb fromdense_msr fromdense_sbu frontier_jhmdb_export frontier_msr_export \
    frontier_sbu_export frontier_shrec21_export fromdense_jhmdb_export fromdense_msr_export \
    fromdense_sbu_export
page docs/frontier_targets.md targets_fromdense_jhmdb targets_distill_jhmdb targets_fromdense_msr \
    targets_distill_msr targets_fromdense_sbu targets_distill_sbu targets_macs_distill_jhmdb \
    targets_macs_distill_msr targets_macs_distill_sbu targets_macs_distill_jhmdb_export \
    targets_macs_distill_msr_export targets_macs_distill_sbu_export targets_full_msr
