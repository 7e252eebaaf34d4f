"""Magnitude pruning and TCP side by side at several rates, on every fold of a dataset.

Usage (from the repository root, with the real data at $GCNPRUNE_DATA or ../shared/data):

    python benchmarks/pruning_rates.py --dataset sbu --rates 0.9,0.95,0.98,0.99,0.995 \
        --out runs/pruning_rates

Each (method, rate, fold) run trains AttentionGCN from scratch with pruning ramped over the
first 60% of training, then reports top-1 accuracy, the realized rate and the fraction of kept
weights that lie on no input-to-output path. Methods are `magnitude`, `tcp` (supervised by both
propagations) and the TCP ablations `tcp_<supervision>` with supervision `accessibility`,
`coaccessibility`, `feedback` or `none` (selection only). Finished runs are kept under --out and
skipped when the command is rerun. Prints one JSON line per run, then a table of means over the
folds, each method's lead over magnitude pruning at each rate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from keras_gcnprune.data import Preprocessing, load_dataset, protocol_names
from keras_gcnprune.training import PruningConfig, TrainConfig, train


def pruning_config(method: str, rate: float) -> PruningConfig:
    name, _, supervision = method.partition("_")
    return PruningConfig(method=name, rate=rate, supervision=supervision or "both")


def run(dataset_name: str, methods: list[str], rates: list[float], epochs: int,
        protocols: list[str] | None, out: Path) -> list[dict]:
    dataset = load_dataset(dataset_name, on_error="skip")
    rows = []
    for protocol in protocols or protocol_names(dataset.name):
        for rate in rates:
            for method in methods:
                run_dir = out / dataset_name / f"{method}_{rate}" / protocol
                metrics_file = run_dir / "metrics.json"
                if metrics_file.exists():
                    metrics = json.loads(metrics_file.read_text())
                else:
                    config = TrainConfig(
                        dataset=dataset_name, protocol=protocol, epochs=epochs,
                        preprocessing=Preprocessing(frames=32), on_error="skip",
                        pruning=pruning_config(method, rate),
                    )
                    metrics = train(config, run_dir, dataset=dataset, verbose=0)
                row = {"method": method, "rate": rate, "protocol": protocol,
                       **{k: metrics[k] for k in ("test_accuracy", "realized_rate",
                                                  "disconnected_fraction", "kept_weights",
                                                  "wall_time_s")}}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def summarise(rows: list[dict], methods: list[str], rates: list[float]) -> list[dict]:
    summary = []
    for rate in rates:
        entry = {"rate": rate}
        for method in methods:
            runs = [r for r in rows if r["rate"] == rate and r["method"] == method]
            accuracy = np.array([r["test_accuracy"] for r in runs]) * 100
            entry[method] = {
                "mean_top1": round(float(accuracy.mean()), 2),
                "std_top1": round(float(accuracy.std()), 2),
                "realized_rate": round(float(np.mean([r["realized_rate"] for r in runs])), 4),
                "disconnected": round(float(np.mean([r["disconnected_fraction"]
                                                     for r in runs])), 4),
                "kept_weights": int(np.mean([r["kept_weights"] for r in runs])),
            }
            if method != "magnitude" and "magnitude" in methods:
                entry[method]["minus_magnitude"] = round(
                    entry[method]["mean_top1"] - entry["magnitude"]["mean_top1"], 2)
        summary.append(entry)
    return summary


def print_table(summary: list[dict], methods: list[str]) -> None:
    print("\n| rate | kept weights | " + " | ".join(f"{m} top-1" for m in methods) + " | "
          + " | ".join(f"{m}: disconnected" for m in methods) + " |")
    print("|---|---|" + "---|" * 2 * len(methods))
    for s in summary:
        cells = []
        for method in methods:
            result = s[method]
            lead = result.get("minus_magnitude")
            cells.append(f"{result['mean_top1']:.2f} ± {result['std_top1']:.2f}"
                         + ("" if lead is None else f" ({lead:+.2f})"))
        cells += [f"{s[m]['disconnected']:.1%}" for m in methods]
        print(f"| {s['rate']:.1%} | {s[methods[0]]['kept_weights']} | " + " | ".join(cells)
              + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="sbu")
    parser.add_argument("--methods", default="magnitude,tcp")
    parser.add_argument("--rates", default="0.9,0.95,0.98,0.99,0.995")
    parser.add_argument("--protocols", default=None,
                        help="Comma-separated folds or splits (default: all of the dataset's).")
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--out", type=Path, default=Path("runs/pruning_rates"))
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    methods = args.methods.split(",")
    protocols = args.protocols.split(",") if args.protocols else None
    rows = run(args.dataset, methods, rates, args.epochs, protocols, args.out)
    summary = summarise(rows, methods, rates)
    print(json.dumps({"summary": summary}))
    print_table(summary, methods)
    return 0


if __name__ == "__main__":
    sys.exit(main())
