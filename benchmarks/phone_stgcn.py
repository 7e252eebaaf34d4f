"""ST-GCN configured for phones: accuracy, TFLite file size and LiteRT latency against dense.

Trains on one SBU fold a dense ST-GCN with a fixed adjacency (a learned one adds a distinct
`V x V` constant per layer and subset to the file) and TCP in channel blocks of density 0.75 at
90, 95, 98 and 99%, plus the default density 0.5 at 95% for comparison. Every pruned model is
exported uncompacted and compacted to float32 TFLite files at batch 1, verified against Keras
and checked for GPU-delegate findings, then timed in the same run (interleaved rounds, median),
so every ratio to dense is taken under the same load
(`keras_gcnprune.bench.export.measure_exports`).

    python benchmarks/phone_stgcn.py --out runs/phone_stgcn

Prints the results as JSON and as a Markdown table, and writes OUT/results.json. Finished
trainings in OUT are reused, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import keras

from keras_gcnprune.bench.export import measure_exports
from keras_gcnprune.bench.results import machine
from keras_gcnprune.data import Preprocessing
from keras_gcnprune.training import PruningConfig, TrainConfig, train

PHONE_DENSITY = 0.75
DEFAULT_DENSITY_AT = (0.5, 0.95)


def pruned_runs(rates: list[float]) -> dict[tuple[str, float], PruningConfig | None]:
    runs = {("dense", 0.0): None}
    for density, rate in [(PHONE_DENSITY, r) for r in rates] + [DEFAULT_DENSITY_AT]:
        runs[(f"tcp_block{density:g}", rate)] = PruningConfig(
            method="tcp", rate=rate, block_density=density)
    return runs


def trained_model(config: TrainConfig, run_dir: Path) -> tuple[keras.Model, float]:
    metrics_file = run_dir / "metrics.json"
    if metrics_file.exists():
        metrics = json.loads(metrics_file.read_text())
    else:
        metrics = train(config, run_dir, verbose=0)
    return keras.models.load_model(run_dir / "model.keras"), metrics["test_accuracy"]


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
    trained, accuracy = {}, {}
    for (method, rate), pruning in pruned_runs([float(r) for r in args.rates.split(",")]).items():
        run_dir = out / (method if pruning is None else f"{method}_{rate:g}")
        trained[(method, rate)], accuracy[(method, rate)] = trained_model(
            TrainConfig(pruning=pruning, **common), run_dir)
    rows = measure_exports(trained, "stgcn", out, rounds=args.rounds)
    for row in rows:
        row["top1"] = round(100 * accuracy[(row["method"], row["rate"])], 2)
    (out / "results.json").write_text(json.dumps(
        {"settings": vars(args), "machine": machine(), "rows": rows}, indent=2))
    print(json.dumps(rows, indent=2))
    print("\n| model | top-1 % | params (kept) | file KiB | file / dense | latency ms "
          "| latency / dense | max abs diff | GPU findings |\n" + "|---" * 9 + "|")
    for row in rows:
        print(f"| {row['method']} {row['rate']:.0%} {row['variant']} | {row['top1']:.2f} | "
              f"{row['parameters']} ({row['kept_parameters']}) | {row['bytes'] / 1024:.0f} | "
              f"{row['size_ratio']:.3f}x | {row['latency_ms']:.3f} | "
              f"{row['latency_ratio']:.3f}x | {row['max_abs_diff']:.1e} | "
              f"{row['gpu_findings']} |")


if __name__ == "__main__":
    main()
