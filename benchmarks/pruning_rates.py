"""Pruning methods side by side at several rates, on every fold of a dataset.

Usage (from the repository root, with the real data at $GCNPRUNE_DATA or ../shared/data):

    python benchmarks/pruning_rates.py --dataset sbu --rates 0.9,0.95,0.98,0.99,0.995 \
        --methods magnitude,tcp,srmp,mrmp --out runs/pruning_rates

Each (method, rate, fold) run trains AttentionGCN from scratch with pruning ramped over the
first 60% of training, then reports top-1 accuracy, the realized rate and the fraction of kept
weights that lie on no input-to-output path. Methods are `magnitude`, `tcp` (supervised by both
propagations), the TCP ablations `tcp_<supervision>` with supervision `accessibility`,
`coaccessibility`, `feedback` or `none` (selection only), `srmp` (one training per rate) and
`mrmp` (ONE training per fold for all of --mrmp-rates, default --rates; every rate of --rates
is then extracted from it, recalibrated, and --unseen rates too, to check realized rates).
Finished runs are kept under --out and skipped when the command is rerun. Prints one JSON line
per run, then a table of means over the folds, each method's lead over magnitude pruning at each
rate, and the training time of each method as a ratio to one srmp training, measured in the
same run.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from keras_gcnprune.data import Preprocessing, load_dataset, protocol_names
from keras_gcnprune.training import PruningConfig, TrainConfig, extract_run, train


def pruning_config(method: str, rate: float) -> PruningConfig:
    """`magnitude`, `srmp`, `tcp` or `tcp_<supervision>` at a rate."""
    name, _, supervision = method.partition("_")
    return PruningConfig(method=name, rate=rate, supervision=supervision or "both")


METRICS = ("test_accuracy", "realized_rate", "disconnected_fraction", "kept_weights")


def run(dataset_name: str, methods: list[str], rates: list[float], epochs: int,
        protocols: list[str] | None, out: Path, mrmp: dict) -> list[dict]:
    dataset = load_dataset(dataset_name, on_error="skip")
    rows = []
    for protocol in protocols or protocol_names(dataset.name):
        trained = trainer(dataset, TrainConfig(
            dataset=dataset_name, protocol=protocol, epochs=epochs,
            preprocessing=Preprocessing(frames=32), on_error="skip"))
        if "mrmp" in methods:
            rows += mrmp_rows(trained, out / dataset_name, protocol, rates, mrmp)
        for rate in rates:
            for method in (m for m in methods if m != "mrmp"):
                metrics = trained(out / dataset_name / f"{method}_{rate}" / protocol,
                                  pruning_config(method, rate))
                rows.append(_row(method, rate, protocol, metrics,
                                 metrics.get("train_time_s", metrics["wall_time_s"])))
    return rows


def trainer(dataset, base: TrainConfig):
    """`trained(run_dir, pruning) -> metrics`: trains `base` with `pruning` once per run_dir."""
    def trained(run_dir: Path, pruning: PruningConfig) -> dict:
        metrics_file = run_dir / "metrics.json"
        if metrics_file.exists():
            return json.loads(metrics_file.read_text())
        return train(replace(base, pruning=pruning), run_dir, dataset=dataset, verbose=0)
    return trained


def mrmp_rows(trained, out: Path, protocol: str, rates: list[float], mrmp: dict) -> list[dict]:
    name = "mrmp_" + "_".join(f"{r:g}" for r in mrmp["rates"])
    if mrmp["rates_per_step"]:
        name += f"_k{mrmp['rates_per_step']}"
    run_dir = out / name / protocol
    metrics = trained(run_dir, PruningConfig(method="mrmp", rates=tuple(mrmp["rates"]),
                                             rates_per_step=mrmp["rates_per_step"]))
    extracted = {float(r): row for r, row in metrics["rates"].items()}
    missing = [r for r in rates + mrmp["unseen"] if r not in extracted]
    if missing:
        extracted_file = run_dir / f"extracted_{'_'.join(f'{r:g}' for r in missing)}.json"
        if not extracted_file.exists():
            found = extract_run(run_dir, missing, run_dir / "extracted")
            extracted_file.write_text(json.dumps(found))
        extracted.update({r["rate"]: r for r in json.loads(extracted_file.read_text())})
    rows = [_row("mrmp", rate, protocol, extracted[rate], metrics["train_time_s"])
            for rate in rates]
    for rate in sorted(set(mrmp["rates"]) | set(mrmp["unseen"])):
        print(json.dumps({"mrmp_realized": rate, "protocol": protocol,
                          "trained": rate in mrmp["rates"],
                          "realized_rate": extracted[rate]["realized_rate"]}), flush=True)
    return rows


def _row(method: str, rate: float, protocol: str, metrics: dict, train_time: float) -> dict:
    row = {"method": method, "rate": rate, "protocol": protocol,
           **{k: metrics[k] for k in METRICS}, "train_time_s": train_time}
    print(json.dumps(row), flush=True)
    return row


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
    parser.add_argument("--mrmp-rates", default=None,
                        help="Rates of the one MRMP training per fold (default: --rates).")
    parser.add_argument("--unseen", default="",
                        help="Rates never trained, extracted from MRMP to check realized rates.")
    parser.add_argument("--rates-per-step", type=int, default=None,
                        help="MRMP: rates evaluated per step (default: all).")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    methods = args.methods.split(",")
    protocols = args.protocols.split(",") if args.protocols else None
    mrmp = {"rates": [float(r) for r in (args.mrmp_rates or args.rates).split(",")],
            "unseen": [float(r) for r in args.unseen.split(",") if r],
            "rates_per_step": args.rates_per_step}
    rows = run(args.dataset, methods, rates, args.epochs, protocols, args.out, mrmp)
    summary = summarise(rows, methods, rates)
    print(json.dumps({"summary": summary, "train_time": train_times(rows, methods)}))
    print_table(summary, methods)
    print_train_times(train_times(rows, methods))
    return 0


def train_times(rows: list[dict], methods: list[str]) -> dict:
    """Mean training time of one training of each method (mrmp: one per fold for all rates),
    and its ratio to one srmp training when srmp ran."""
    times = {}
    for method in methods:
        runs = {(r["protocol"], r["rate"] if method != "mrmp" else None): r["train_time_s"]
                for r in rows if r["method"] == method}
        times[method] = {"mean_s": round(float(np.mean(list(runs.values()))), 2)}
    if "srmp" in times:
        for entry in times.values():
            entry["ratio_to_srmp"] = round(entry["mean_s"] / times["srmp"]["mean_s"], 2)
    return times


def print_train_times(times: dict) -> None:
    print("\n| method | one training (s) | ratio to one srmp training |\n|---|---|---|")
    for method, entry in times.items():
        ratio = entry.get("ratio_to_srmp")
        print(f"| {method} | {entry['mean_s']:.1f} | "
              f"{'' if ratio is None else f'{ratio:.2f}x'} |")


if __name__ == "__main__":
    sys.exit(main())
