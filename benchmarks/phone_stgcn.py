"""ST-GCN configured for phones: accuracy, TFLite file size and LiteRT latency against dense.

Trains on one SBU fold a dense ST-GCN with a fixed adjacency (a learned one adds a distinct
`V x V` constant per layer and subset to the file) and TCP in channel blocks of density 0.75 at
90, 95, 98 and 99%, plus the default density 0.5 at 95% for comparison. Every pruned model is
exported uncompacted and compacted to verified float32 TFLite files at batch 1 (parity with
Keras and zero GPU-delegate findings are checked by the export); latencies are timed in the same
run (interleaved rounds, median), so every ratio to dense is taken under the same load.

    python benchmarks/phone_stgcn.py --out runs/phone_stgcn

Prints the results as JSON and as a Markdown table, and writes OUT/results.json. Finished
trainings in OUT are reused, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import keras

from keras_gcnprune.bench.results import machine
from keras_gcnprune.data import Preprocessing
from keras_gcnprune.export import compact, export_tflite, litert_latency_ms, model_costs
from keras_gcnprune.training import PruningConfig, TrainConfig, train

PHONE_DENSITY = 0.75
DEFAULT_DENSITY_AT = (0.5, 0.95)


def pruned_runs(rates: list[float]) -> dict[str, PruningConfig | None]:
    runs = {"dense": None}
    for density, rate in [(PHONE_DENSITY, r) for r in rates] + [DEFAULT_DENSITY_AT]:
        runs[f"tcp_block{density:g}_{rate:g}"] = PruningConfig(
            method="tcp", rate=rate, block_density=density)
    return runs


def trained_model(config: TrainConfig, run_dir: Path) -> tuple[keras.Model, float]:
    metrics_file = run_dir / "metrics.json"
    if metrics_file.exists():
        metrics = json.loads(metrics_file.read_text())
    else:
        metrics = train(config, run_dir, verbose=0)
    return keras.models.load_model(run_dir / "model.keras"), metrics["test_accuracy"]


def export_row(model: keras.Model, path: Path) -> dict:
    report = export_tflite(model, path)
    return {"path": str(path), "bytes": report.size_bytes,
            "max_abs_diff": report.max_abs_diff, "gpu_findings": len(report.gpu_findings)}


def time_interleaved(paths: dict[str, Path], rounds: int) -> dict[str, float]:
    times = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            times[name].append(litert_latency_ms(path, runs=50))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/phone_stgcn")
    parser.add_argument("--dataset", default="sbu")
    parser.add_argument("--protocol", default="fold1")
    parser.add_argument("--rates", default="0.9,0.95,0.98,0.99")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    out = Path(args.out)
    common = dict(dataset=args.dataset, protocol=args.protocol, model="stgcn",
                  epochs=args.epochs, preprocessing=Preprocessing(frames=32),
                  model_options={"learnable_adjacency": False})
    rows = {}
    for name, pruning in pruned_runs([float(r) for r in args.rates.split(",")]).items():
        model, accuracy = trained_model(TrainConfig(pruning=pruning, **common), out / name)
        exports = {"dense": model} if pruning is None else {
            "pruned": model, "compacted": compact(model)}
        for kind, exported in exports.items():
            costs = model_costs(exported)
            row = {"top1": round(100 * accuracy, 2), "parameters": costs["parameters"],
                   "kept_parameters": costs["kept_parameters"], "kept_macs": costs["kept_macs"]}
            rows[f"{name} {kind}"] = row | export_row(exported, out / f"{name}_{kind}.tflite")
    latencies = time_interleaved({key: Path(row["path"]) for key, row in rows.items()},
                                 args.rounds)
    dense = rows["dense dense"]
    for key, row in rows.items():
        row["latency_ms"] = round(latencies[key], 4)
        row["size_ratio"] = round(row["bytes"] / dense["bytes"], 3)
        row["latency_ratio"] = round(latencies[key] / latencies["dense dense"], 3)
    (out / "results.json").write_text(json.dumps(
        {"settings": vars(args), "machine": machine(), "rows": rows}, indent=2))
    print(json.dumps(rows, indent=2))
    print("\n| model | top-1 % | params (kept) | file KiB | file / dense | latency ms "
          "| latency / dense | max abs diff | GPU findings |\n" + "|---" * 9 + "|")
    for key, row in rows.items():
        print(f"| {key} | {row['top1']:.2f} | {row['parameters']} ({row['kept_parameters']}) | "
              f"{row['bytes'] / 1024:.0f} | {row['size_ratio']:.3f}x | {row['latency_ms']:.3f} | "
              f"{row['latency_ratio']:.3f}x | {row['max_abs_diff']:.1e} | {row['gpu_findings']} |")


if __name__ == "__main__":
    main()
