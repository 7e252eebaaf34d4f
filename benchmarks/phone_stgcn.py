"""ST-GCN configured for phones: accuracy, TFLite file size and LiteRT latency against dense.

Trains on one SBU fold a dense ST-GCN with a fixed adjacency (a learned one adds a distinct
`V x V` constant per layer and subset to the file), then TCP in channel blocks at 95% with block
densities 0.5 and 0.75, compacts the pruned models and exports all three to verified float32
TFLite files at batch 1; latencies are timed in the same run (interleaved rounds, median).

    python benchmarks/phone_stgcn.py --out runs/phone_stgcn

Prints the results as JSON and as a Markdown table, and writes OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import keras

from keras_gcnprune.data import Preprocessing
from keras_gcnprune.export import compact, export_tflite, litert_latency_ms
from keras_gcnprune.training import PruningConfig, TrainConfig, train

DENSITIES = (0.5, 0.75)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/phone_stgcn")
    parser.add_argument("--dataset", default="sbu")
    parser.add_argument("--protocol", default="fold1")
    parser.add_argument("--rate", type=float, default=0.95)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    out = Path(args.out)
    common = dict(dataset=args.dataset, protocol=args.protocol, model="stgcn",
                  epochs=args.epochs, preprocessing=Preprocessing(frames=32),
                  model_options={"learnable_adjacency": False})
    runs = {"dense": None, **{f"tcp_block_{d:g}": PruningConfig(
        method="tcp", rate=args.rate, block_density=d) for d in DENSITIES}}
    results, files = {}, {}
    for name, pruning in runs.items():
        metrics = train(TrainConfig(pruning=pruning, **common), out / name, verbose=0)
        model = keras.models.load_model(out / name / "model.keras")
        files[name] = out / f"{name}.tflite"
        size = export_tflite(model if pruning is None else compact(model), files[name]).size_bytes
        results[name] = {"top1": round(100 * metrics["test_accuracy"], 2), "bytes": size}
    times = {name: [] for name in files}
    for _ in range(args.rounds):
        for name, path in files.items():
            times[name].append(litert_latency_ms(path, runs=50))
    for name, row in results.items():
        row["latency_ms"] = round(statistics.median(times[name]), 4)
        row["size_ratio"] = round(row["bytes"] / results["dense"]["bytes"], 3)
        row["latency_ratio"] = round(row["latency_ms"] / results["dense"]["latency_ms"], 3)
    (out / "results.json").write_text(json.dumps({"settings": vars(args), "rows": results},
                                                 indent=2))
    print(json.dumps(results, indent=2))
    print(f"\n| model ({args.rate:.0%}) | top-1 % | file KiB | file / dense | latency ms "
          "| latency / dense |\n|---|---|---|---|---|---|")
    for name, row in results.items():
        print(f"| {name} | {row['top1']:.2f} | {row['bytes'] / 1024:.0f} | "
              f"{row['size_ratio']:.2f}x | {row['latency_ms']:.3f} | {row['latency_ratio']:.2f}x |")


if __name__ == "__main__":
    main()
