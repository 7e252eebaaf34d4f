"""Dense baselines on the real datasets: AttentionGCN and STGCN side by side, every fold.

Usage (from the repository root, with the real data at $GCNPRUNE_DATA or ../shared/data):

    python benchmarks/baseline_accuracy.py --datasets sbu,jhmdb,msr --out runs/baselines

Prints one JSON line per finished run, then a table of the mean and standard deviation of top-1
accuracy over the folds or splits of each dataset's protocol, the parameter counts, and the wall
time of each model as a ratio to AttentionGCN's in the same run. Finished runs are kept in
`--out/<dataset>/<model>/<protocol>/metrics.json` and skipped when the command is rerun.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from keras_gcnprune.data import Preprocessing, load_dataset, protocol_names
from keras_gcnprune.training import TrainConfig, train

# Per-dataset settings of the baseline runs (frames near each dataset's median length).
SETTINGS = {
    "sbu": {"frames": 32, "streams": ("joint",)},
    "jhmdb": {"frames": 32, "streams": ("joint",)},
    "msr": {"frames": 32, "streams": ("joint",)},
}


def run_all(datasets: list[str], model_names: list[str], epochs: int, out: Path) -> list[dict]:
    results = []
    for name in datasets:
        dataset = load_dataset(name, on_error="skip")
        settings = SETTINGS.get(name, {"frames": 32, "streams": ("joint",)})
        prep = Preprocessing(frames=settings["frames"], streams=settings["streams"])
        for model in model_names:
            for protocol in protocol_names(dataset.name):
                run_dir = out / name / model / protocol
                metrics_file = run_dir / "metrics.json"
                if metrics_file.exists():
                    metrics = json.loads(metrics_file.read_text())
                else:
                    config = TrainConfig(dataset=name, protocol=protocol, model=model,
                                         epochs=epochs, preprocessing=prep, on_error="skip")
                    metrics = train(config, run_dir, dataset=dataset, verbose=0)
                row = {"dataset": name, "model": model, "protocol": protocol,
                       **{k: metrics[k] for k in ("test_accuracy", "parameters", "wall_time_s",
                                                  "epochs")}}
                print(json.dumps(row), flush=True)
                results.append(row)
    return results


def summarise(results: list[dict], reference: str) -> list[dict]:
    rows = []
    for name in dict.fromkeys(r["dataset"] for r in results):
        runs = [r for r in results if r["dataset"] == name]
        reference_time = sum(r["wall_time_s"] for r in runs if r["model"] == reference)
        for model in dict.fromkeys(r["model"] for r in runs):
            mine = [r for r in runs if r["model"] == model]
            accuracy = np.array([r["test_accuracy"] for r in mine]) * 100
            wall = sum(r["wall_time_s"] for r in mine)
            rows.append({
                "dataset": name, "model": model, "runs": len(mine),
                "mean_top1": round(float(accuracy.mean()), 2),
                "std_top1": round(float(accuracy.std()), 2),
                "per_split": [round(float(a), 1) for a in accuracy],
                "parameters": mine[0]["parameters"],
                "wall_time_s": round(wall, 1),
                "time_vs_" + reference: round(wall / reference_time, 2) if reference_time else None,
            })
    return rows


def print_table(rows: list[dict], reference: str) -> None:
    ratio = "time_vs_" + reference
    print(f"\n| dataset | model | splits | top-1 mean | std | per split | params | "
          f"wall s | time vs {reference} |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['model']} | {r['runs']} | {r['mean_top1']:.2f} | "
              f"{r['std_top1']:.2f} | {r['per_split']} | {r['parameters']:,} | "
              f"{r['wall_time_s']} | {r[ratio]} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="sbu,jhmdb,msr")
    parser.add_argument("--models", default="attention_gcn,stgcn")
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--out", type=Path, default=Path("runs/baselines"))
    args = parser.parse_args(argv)
    model_names = args.models.split(",")
    results = run_all(args.datasets.split(","), model_names, args.epochs, args.out)
    rows = summarise(results, model_names[0])
    print(json.dumps({"summary": rows}))
    print_table(rows, model_names[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
