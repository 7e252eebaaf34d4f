"""Ranked against consistent extraction of trained srmp/mrmp runs, side by side, no retraining.

For every srmp or mrmp run directory given (for instance those of a `gcnprune bench accuracy`
folder) and each of its trained rates at or above `--min-rate`, the model is extracted twice at
the same weight count: keeping the largest-ranked weights (the published selection) and keeping
the best-ranked topologically consistent subnetwork (`extraction_masks(consistent=True)`, the
package's default). Both are recalibrated and measured on the run's validation part and test
split. Each measurement is one JSON line of OUT, written as soon as it is made; a rerun skips
those already there. Prints a table of means and the consistent extraction's lead.

    python benchmarks/extraction.py --out runs/extraction.jsonl \
        runs/bench/accuracy/runs/mrmp_*/*/seed* runs/bench/accuracy/runs/srmp_0.9[89]/*/seed*
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from keras_gcnprune.pruning import extract
from keras_gcnprune.training.directory import load_run
from keras_gcnprune.training.extraction import recorded_extraction
from keras_gcnprune.training.run import extracted_metrics, run_data

HOWS = ("ranked", "consistent")


def measurements(run: str, min_rate: float, done: set, datasets: dict):
    """(rate, how, metrics) of every extraction of `run` not in `done`."""
    model, info = load_run(run)
    pruning = info.pruning
    rates = [r for r in (pruning["rates"] or [pruning["rate"]]) if r >= min_rate]
    if all((run, rate, how) in done for rate in rates for how in HOWS):
        return
    name = info.config["dataset"]
    _, data = run_data(info, on_error="skip", loaded=datasets.get(name))
    datasets[name] = data.dataset
    for rate in rates:
        for how in HOWS:
            if (run, rate, how) in done:
                continue
            options = {**recorded_extraction(pruning), "consistent": how == "consistent"}
            extracted = extract(model, rate, calibration_data=data.train[0], **options)
            yield rate, how, pruning["method"], extracted_metrics(extracted, data, np.nan)


def table(rows: list[dict]) -> str:
    groups = defaultdict(list)
    for row in rows:
        groups[(row["method"], row["rate"], row["how"])].append(row)
    lines = ["| method | rate | runs | ranked val / test % | consistent val / test % | lead "
             "val / test |", "|---|---|---|---|---|---|"]
    for method, rate in sorted({(m, r) for m, r, _ in groups}):
        means = {how: [100 * np.mean([r[key] for r in groups[(method, rate, how)]])
                       for key in ("validation_accuracy", "test_accuracy")] for how in HOWS
                 if groups[(method, rate, how)]}
        if len(means) < 2:
            continue
        (rv, rt), (cv, ct) = means["ranked"], means["consistent"]
        runs = len(groups[(method, rate, "consistent")])
        lines.append(f"| {method} | {rate:.1%} | {runs} | {rv:.2f} / {rt:.2f} | {cv:.2f} / "
                     f"{ct:.2f} | {cv - rv:+.2f} / {ct - rt:+.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="srmp or mrmp run directories")
    parser.add_argument("--out", required=True, type=Path, help="JSON lines, one per extraction")
    parser.add_argument("--min-rate", type=float, default=0.98)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.out.read_text().splitlines()] \
        if args.out.exists() else []
    done = {(row["run"], row["rate"], row["how"]) for row in rows}
    datasets: dict = {}
    for run in args.runs:
        for rate, how, method, metrics in measurements(run, args.min_rate, done, datasets):
            row = {"run": run, "rate": rate, "how": how, "method": method,
                   **{k: metrics[k] for k in ("test_accuracy", "validation_accuracy",
                                              "kept_weights", "disconnected_fraction")}}
            with args.out.open("a") as file:
                file.write(json.dumps(row) + "\n")
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
