"""LiteRT CPU latency and file size of TCP-pruned models, compacted or not, against dense.

Usage (from the repository root):

    python benchmarks/export_latency.py --models attention_gcn,stgcn --rates 0.9,0.95,0.98,0.99
    python benchmarks/export_latency.py --models attention_gcn \
        --trained runs/pruning_rates/sbu/tcp_{rate}/fold1/model.keras

For each model (SBU-sized input: 32 frames, 30 joints), the dense model and TCP-pruned copies at
each rate, as they are and compacted (`keras_gcnprune.export.compact`), are exported to verified
float32 TFLite files at batch 1, then timed in LiteRT on the CPU (one thread, interleaved
rounds, median) in the same run. Pruned models get TCP masks selected on the initial weights, or
come from trained runs with `--trained` (a path pattern with `{rate}`). Unstructured pruning
leaves every tensor dense in the file; only compaction narrows the layers. Prints one JSON
object and a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import keras

from keras_gcnprune import models
from keras_gcnprune.export import compact, export_tflite, litert_latency_ms
from keras_gcnprune.pruning import prunable_weights, topologically_consistent_masks


def pruned_copy(model: keras.Model, rate: float, trained: str | None) -> keras.Model:
    if trained and rate > 0:
        return keras.models.load_model(trained.format(rate=rate))
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    if rate > 0:
        masks = topologically_consistent_masks(copy, rate)
        for weight in prunable_weights(copy):
            weight.mask.assign(masks[weight.mask.path])
    return copy


def measure(name: str, rates: list[float], rounds: int, runs: int, folder: Path,
            trained: str | None) -> dict:
    keras.utils.set_random_seed(0)
    model = models.build(name, "sbu_pair", num_classes=8, frames=32)
    files = {}
    for rate in [0.0, *rates]:
        pruned = pruned_copy(model, rate, trained)
        for variant, exported in (("pruned", pruned), ("compacted", compact(pruned))):
            if rate == 0.0 and variant == "compacted":
                continue
            path = folder / f"{name}_{rate}_{variant}.tflite"
            report = export_tflite(exported, path)
            files[(rate, variant)] = (path, report.size_bytes, len(report.gpu_findings))
    times = {key: [] for key in files}
    for _ in range(rounds):
        for key, (path, _, _) in files.items():
            times[key].append(litert_latency_ms(path, runs=runs))
    rows = []
    dense_size = files[(0.0, "pruned")][1]
    dense_ms = statistics.median(times[(0.0, "pruned")])
    for (rate, variant), (_, size, findings) in files.items():
        latency = statistics.median(times[(rate, variant)])
        rows.append({
            "model": name, "rate": rate, "variant": variant if rate else "dense", "bytes": size,
            "size_ratio": round(size / dense_size, 3), "latency_ms": round(latency, 4),
            "latency_ratio": round(latency / dense_ms, 3), "gpu_findings": findings,
        })
    return {"model": name, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="attention_gcn,stgcn")
    parser.add_argument("--rates", default="0.9,0.95,0.98,0.99")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50, help="Invocations per timing.")
    parser.add_argument("--trained", default=None,
                        help="Pattern of trained pruned models, with {rate}.")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        results = [measure(name, rates, args.rounds, args.runs, Path(folder), args.trained)
                   for name in args.models.split(",")]
    print(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                      "keras": keras.__version__, "rounds": args.rounds, "results": results}))
    print("\n| model | rate | variant | file | file / dense | latency ms | latency / dense "
          "| GPU findings |")
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        for r in result["rows"]:
            print(f"| {r['model']} | {r['rate']:.1%} | {r['variant']} | "
                  f"{r['bytes'] / 1024:.0f} KiB | {r['size_ratio']:.2f}x | {r['latency_ms']:.3f} | "
                  f"{r['latency_ratio']:.2f}x | {r['gpu_findings']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
